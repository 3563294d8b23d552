"""golden.mx_gemm against exact rational arithmetic, float64 references where those are exact, and
hand-worked values (docs/numerics.md section 10)."""

import math
from fractions import Fraction

import numpy as np
import pytest

from golden import mx
from golden import mx_gemm as g

F32_MAX_ULP_EXP = 127 - 23


def rne_float32(q):
    """Exact value ``q`` (a Fraction) rounded to float32, nearest even, subnormals, overflow to Inf."""
    if q == 0:
        return 0.0
    a = abs(q)
    e = a.numerator.bit_length() - a.denominator.bit_length()
    if Fraction(2) ** e > a:
        e -= 1
    ulp = Fraction(2) ** (max(e, -126) - 23)
    n = a / ulp
    whole = math.floor(n)
    rest = n - whole
    if rest > Fraction(1, 2) or (rest == Fraction(1, 2) and whole % 2):
        whole += 1
    value = whole * ulp
    result = math.inf if value >= Fraction(2) ** 128 else float(value)
    return -result if q < 0 else result


def e4m3_value(code):
    return Fraction(int(mx.E4M3_GRID[code & 0x7F] * 2**9), 2**9) * (-1 if code & 0x80 else 1)


def exact_gemm(a_codes, a_scales, b_codes, b_scales, fmt):
    """The rules of golden.mx_gemm in rational arithmetic, one output at a time."""
    block = mx.MX_BLOCK if fmt == "mxfp4" else mx.NV_BLOCK
    values = [Fraction(int(v * 2), 2) for v in mx.E2M1_VALUES]
    (m, k), n = a_codes.shape, b_codes.shape[1]
    out = np.zeros((m, n), np.float32)
    for i in range(m):
        for j in range(n):
            acc, nan = 0.0, False
            for blk in range(k // block):
                ks = range(blk * block, (blk + 1) * block)
                s = sum(values[a_codes[i, t]] * values[b_codes[t, j]] for t in ks)
                ca, cb = int(a_scales[i, blk]), int(b_scales[blk, j])
                if fmt == "mxfp4":
                    nan |= mx.E8M0_NAN in (ca, cb)
                    scale = Fraction(2) ** (ca + cb - 254)
                else:
                    nan |= (ca & 0x7F) == 0x7F or (cb & 0x7F) == 0x7F
                    scale = e4m3_value(ca) * e4m3_value(cb) if not nan else 0
                acc = acc if math.isinf(acc) else rne_float32(Fraction(acc) + s * scale)
            out[i, j] = np.nan if nan else acc
    return out


def assert_same_bits(got, want, context):
    got_bits, want_bits = g.float32_bits(got), g.float32_bits(want)
    bad = np.argwhere(got_bits != want_bits)
    assert bad.size == 0, (f"{context}: first difference at {tuple(bad[0])}: got {got[tuple(bad[0])]!r} "
                           f"(0x{int(got_bits[tuple(bad[0])]):08x}), want {want[tuple(bad[0])]!r} "
                           f"(0x{int(want_bits[tuple(bad[0])]):08x})")


def random_operands(rng, m, k, n, block, scale_codes):
    a = rng.integers(0, 16, (m, k), dtype=np.uint8)
    b = rng.integers(0, 16, (k, n), dtype=np.uint8)
    a_scales = rng.choice(scale_codes, (m, k // block)).astype(np.uint8)
    b_scales = rng.choice(scale_codes, (k // block, n)).astype(np.uint8)
    zero = rng.random((m, k // block)) < 0.1                      # some all-zero blocks
    a.reshape(m, k // block, block)[zero] = 0
    return a, a_scales, b, b_scales


def test_every_e2m1_product_is_exact_in_quarters():
    a, b = np.meshgrid(np.arange(16), np.arange(16), indexing="ij")
    want = mx.E2M1_VALUES[a].astype(np.float64) * mx.E2M1_VALUES[b] * 4
    got = g.e2m1_products(a, b)
    assert (got == want).all() and got.max() == 144 and got.min() == -144


def test_block_sum_limits_fit_14_and_13_bits():
    six = np.full((1, 32), 7, np.uint8)                            # code 7 = 6
    assert g.block_sums(six, six.T.copy(), 32)[0, 0, 0] == g.MX_SUM_MAX == 4608 < 1 << 13
    assert g.block_sums(six, (six | 8).T.copy(), 32)[0, 0, 0] == -4608
    assert g.block_sums(six[:, :16], six[:, :16].T.copy(), 16)[0, 0, 0] == g.NV_SUM_MAX == 2304 < 1 << 12


@pytest.mark.parametrize("seed", range(4))
def test_mxfp4_against_exact_arithmetic(seed):
    """Random codes with scales near 1, at the extremes (overflow, subnormal, underflow) and NaN."""
    rng = np.random.default_rng(seed)
    scales = [127, 126, 130, 100, 150, 0, 1, 20, 230, 254, 250] + ([255] if seed % 2 else [])
    a, a_s, b, b_s = random_operands(rng, 3, 32 * 6, 4, 32, scales)
    assert_same_bits(g.gemm_mxfp4(a, a_s, b, b_s), exact_gemm(a, a_s, b, b_s, "mxfp4"), f"seed {seed}")


@pytest.mark.parametrize("seed", range(4))
def test_nvfp4_against_exact_arithmetic(seed):
    rng = np.random.default_rng(100 + seed)
    scales = np.concatenate([rng.integers(0, 0x7F, 12), [0, 1, 0x7E, 0x38, 0x80 | 0x38, 0x86]])
    if seed % 2:
        scales = np.append(scales, [0x7F, 0xFF])
    a, a_s, b, b_s = random_operands(rng, 3, 16 * 8, 4, 16, scales)
    assert_same_bits(g.nvfp4_accumulate(a, a_s, b, b_s), exact_gemm(a, a_s, b, b_s, "nvfp4"), f"seed {seed}")


def test_scaled_add_ties_subnormals_and_overflow_exactly():
    """scaled_add against exact rounding on sums built to hit ties, subnormals and the overflow edge."""
    rng = np.random.default_rng(7)
    accs = np.array([0, 2**24, 2**24 + 2, 1.5, -3, 2.0**-149, 2.0**-126, -(2.0**-127), 3.4028235e38,
                     -3.4028235e38, 2.0**127, 1e-30], np.float32)
    sigs = np.array([1, 3, -1, 4608, -4608, 5, 1 << 19, 0, 4095])
    exps = np.array([-2, -1, 0, -150, -151, -160, -200, -256, 100, 104, 103, 252, -26, -24])
    acc, sig, exp = np.meshgrid(accs, sigs, exps, indexing="ij")
    extra = rng.standard_normal(2000).astype(np.float32)
    acc = np.concatenate([acc.ravel(), extra])
    sig = np.concatenate([sig.ravel(), rng.integers(-4608, 4609, 2000)])
    exp = np.concatenate([exp.ravel(), rng.integers(-30, 5, 2000)])
    got = g.scaled_add(acc, sig, exp)
    want = np.array([rne_float32(Fraction(float(a)) + Fraction(int(s)) * Fraction(2) ** int(e))
                     for a, s, e in zip(acc, sig, exp)], np.float32)
    assert_same_bits(got, want, "scaled_add")


def test_one_block_equals_the_rounded_float64_product_of_the_decoded_operands():
    """With one block per output the exact sum fits float64, so the float64 matmul of the decoded
    operands rounded once to float32 is an independent reference."""
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((16, 32)) * 2.0 ** rng.integers(-20, 20, (16, 1))).astype(np.float32)
    w = (rng.standard_normal((32, 9)) * 2.0 ** rng.integers(-20, 20, (1, 9))).astype(np.float32)
    a, a_s = mx.mxfp4_quantize(x)
    bt, bt_s = mx.mxfp4_quantize(np.ascontiguousarray(w.T))
    want = (mx.mxfp4_decode(a, a_s).astype(np.float64) @ mx.mxfp4_decode(bt, bt_s).astype(np.float64).T)
    assert_same_bits(g.gemm_mxfp4(a, a_s, bt.T.copy(), bt_s.T.copy()), want.astype(np.float32), "mxfp4")
    a, a_s, ga = mx.nvfp4_quantize(x[:, :16].copy())
    bt, bt_s, gb = mx.nvfp4_quantize(np.ascontiguousarray(w[:16].T))
    ea = (mx.e4m3_decode(a_s)[..., None] * mx.E2M1_VALUES[a.reshape(16, 1, 16)]).reshape(16, 16)
    eb = (mx.e4m3_decode(bt_s)[..., None] * mx.E2M1_VALUES[bt.reshape(9, 1, 16)]).reshape(9, 16)
    want = (ea.astype(np.float64) @ eb.astype(np.float64).T).astype(np.float32)
    assert_same_bits(g.nvfp4_accumulate(a, a_s, bt.T.copy(), bt_s.T.copy()), want, "nvfp4 accumulate")
    assert_same_bits(g.gemm_nvfp4(a, a_s, ga, bt.T.copy(), bt_s.T.copy(), gb), want * (ga * gb), "nvfp4")


def test_many_blocks_track_the_float64_result_closely():
    """Against the float64 product of the decoded operands: float32 accumulation over 16 blocks of
    normally distributed data stays within a few float32 ulps (a sanity check of the layout)."""
    rng = np.random.default_rng(4)
    x, w = rng.standard_normal((8, 512)).astype(np.float32), rng.standard_normal((512, 8)).astype(np.float32)
    a, a_s = mx.mxfp4_quantize(x)
    bt, bt_s = mx.mxfp4_quantize(np.ascontiguousarray(w.T))
    want = mx.mxfp4_decode(a, a_s).astype(np.float64) @ mx.mxfp4_decode(bt, bt_s).astype(np.float64).T
    got = g.gemm_mxfp4(a, a_s, bt.T.copy(), bt_s.T.copy())
    assert np.abs(got - want).max() <= 16 * np.spacing(np.float32(np.abs(want).max()))


def test_hand_worked_ties_in_the_float32_add():
    """Block 0 gives 2**24, block 1 adds 1 (a tie: stays 2**24, even), block 2 adds 3 (2**24 + 3 is
    a tie between 2**24 + 2 and 2**24 + 4: to the even 2**24 + 4)."""
    a = np.zeros((1, 96), np.uint8)
    a[0, [0, 32, 64]] = [2, 2, 5]                                   # 1, 1, 3
    b = np.zeros((96, 1), np.uint8)
    b[[0, 32, 64], 0] = 2                                           # 1
    a_s = np.array([[127 + 24, 127, 127]], np.uint8)
    b_s = np.full((3, 1), 127, np.uint8)
    assert g.gemm_mxfp4(a, a_s, b, b_s)[0, 0] == 2.0**24 + 4
    a_s[0, 2] = 126                                                 # adds 1.5: 2**24 + 1.5 -> 2**24 + 2
    assert g.gemm_mxfp4(a, a_s, b, b_s)[0, 0] == 2.0**24 + 2


def test_special_cases():
    ones = np.full((1, 32), 2, np.uint8)                            # 32 ones
    col = ones.T.copy()
    s = lambda code: np.array([[code]], np.uint8)                   # noqa: E731
    assert g.gemm_mxfp4(ones, s(127), col, s(127))[0, 0] == 32
    zero = g.gemm_mxfp4(np.zeros_like(ones), s(127), col, s(127))
    assert zero[0, 0] == 0 and not np.signbit(zero[0, 0])          # an empty block is +0
    neg = g.gemm_mxfp4(ones | 8, s(127), col, s(127))
    cancel = g.gemm_mxfp4(np.concatenate([ones, ones | 8], 1), np.array([[127, 127]], np.uint8),
                          np.concatenate([col, col]), np.array([[127], [127]], np.uint8))
    assert neg[0, 0] == -32 and cancel[0, 0] == 0 and not np.signbit(cancel[0, 0])
    assert np.isnan(g.gemm_mxfp4(np.zeros_like(ones), s(255), col, s(127))[0, 0])   # 0 * NaN is NaN
    assert g.gemm_mxfp4(ones, s(254), col, s(254))[0, 0] == np.inf                  # 32 * 2**254
    assert g.gemm_mxfp4(ones, s(0), col, s(100))[0, 0] == 2.0**-149                  # 32 * 2**-154
    assert g.gemm_mxfp4(ones, s(0), col, s(99))[0, 0] == 0                           # 2**-150: tie to even 0
    assert g.gemm_mxfp4(ones, s(0), col, s(98))[0, 0] == 0                           # underflow


@pytest.mark.parametrize("fmt", ["mxfp4", "nvfp4"])
def test_block_terms_of_every_scale_pair_are_the_exact_scaled_sum(fmt):
    """sig * 2**exp = (S / 4) * decode(ca) * decode(cb) for all 65,536 code pairs (float64 holds both
    sides exactly: |sig| < 2**21, exponents within -256..254), NaN flagged exactly where a code is NaN."""
    ca, cb = (axis.ravel() for axis in np.meshgrid(np.arange(256), np.arange(256), indexing="ij"))
    top = g.MX_SUM_MAX if fmt == "mxfp4" else g.NV_SUM_MAX
    sums = np.random.default_rng(3).integers(-top, top + 1, ca.size)
    sig, exp, nan = g.block_terms(fmt, sums, ca.astype(np.uint8), cb.astype(np.uint8))
    decode = mx.e8m0_decode if fmt == "mxfp4" else mx.e4m3_decode
    da, db = (decode(c.astype(np.uint8)).astype(np.float64) for c in (ca, cb))
    assert (nan == (np.isnan(da) | np.isnan(db))).all()
    ok = ~nan
    if fmt == "mxfp4":   # 2**(c - 127) for code 0 too (float32's decode of 2**-127 is exact)
        da, db = np.ldexp(1.0, ca - 127), np.ldexp(1.0, cb - 127)
    exact = sums[ok] / 4 * da[ok] * db[ok]
    assert (np.ldexp(sig[ok].astype(np.float64), exp[ok]) == exact).all()
    with pytest.raises(ValueError, match="fmt must be 'mxfp4' or 'nvfp4', got 'fp8'"):
        g.block_terms("fp8", sums, ca, cb)


def test_bad_input_names_the_value():
    a, s = np.zeros((2, 32), np.uint8), np.zeros((2, 1), np.uint8)
    with pytest.raises(TypeError, match="a_codes must be a uint8 numpy array, got int64"):
        g.gemm_mxfp4(a.astype(np.int64), s, a.T.copy(), s.T.copy())
    with pytest.raises(ValueError, match="b_codes must be E2M1 codes 0..15, got 16"):
        g.gemm_mxfp4(a, s, a.T + np.uint8(16), s.T.copy())
    with pytest.raises(ValueError, match=r"inner dimensions differ"):
        g.gemm_mxfp4(a, s, a[:, :16].T.copy(), s.T.copy())
    with pytest.raises(ValueError, match=r"positive multiple of the block size 16, got a_codes shape \(2, 8\)"):
        g.nvfp4_accumulate(a[:, :8], s, a[:, :8].T.copy(), s.T.copy())
    with pytest.raises(ValueError, match=r"b_scales must have shape \(1, 2\), got shape \(2, 1\)"):
        g.gemm_mxfp4(a, s, a.T.copy(), s)
    with pytest.raises(ValueError, match="a_global must be a finite float > 0, got np.float32\\(nan\\)"):
        g.gemm_nvfp4(a[:, :16], s, np.float32(np.nan), a[:, :16].T.copy(), s.T.copy(), np.float32(1))


def test_block_gemm_of_decoded_operands_is_the_gemm_of_their_codes():
    """BlockGemm (the training backend) quantizes decoded MXFP4 operands again: the same GEMM as their codes."""
    rng = np.random.default_rng(5)
    x = (rng.standard_normal((5, 64)) * 2.0 ** rng.integers(-20, 20, (5, 2)).repeat(32, axis=1)).astype(np.float32)
    w = rng.standard_normal((3, 64)).astype(np.float32)
    w[1, 32:] = 0                                                   # an all-zero block
    a_codes, a_scales = mx.mxfp4_quantize(x)
    b_codes, b_scales = mx.mxfp4_quantize(w)
    want = g.gemm_mxfp4(a_codes, a_scales, b_codes.T.copy(), b_scales.T.copy())
    got = g.BlockGemm().block_gemm(0, mx.mxfp4_decode(a_codes, a_scales), mx.mxfp4_decode(b_codes, b_scales))
    assert (g.float32_bits(got) == g.float32_bits(want)).all()
    with pytest.raises(ValueError, match=r"a must hold MXFP4 values in blocks of 32 along its rows, got 0.1"):
        g.mxfp4_operands(np.full((1, 32), 0.1, np.float32), w[:, :32])
