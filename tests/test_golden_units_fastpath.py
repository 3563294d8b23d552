"""The fast paths of the golden model against the reference computations they replace, bit for bit.

- golden.units GEMMs: one float32/float64 matmul where a cheap bound proves it exact and saturation-free,
  else the sequential clamp; checked against units.accumulate (ascending k, clamp after every addition)
  on random and adversarial inputs, including inputs right at every bound.
- golden.fp4: quantize by table lookup, GradScale on bit patterns, code multipliers from a table.
- golden.int4: SAWB and PACT without float64 copies; the reference is the float64 formula of the contract.
- golden.training.layers: the float32 -> float16 cast by integer operations, the float16 -> float32 lookup,
  and channels-last im2col/col2im.
"""

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from conftest import ALL_FLOAT16
from golden import fp4, int4, units
from golden.training import layers


def reference_gemm(a_values, b_values, width):
    """Every product, then the saturating ascending sum of units.accumulate."""
    terms = np.asarray(a_values, np.int64)[:, :, None] * np.asarray(b_values, np.int64)[None, :, :]
    return units.accumulate(terms, width, axis=1)


def assert_same(got, want, seed, context):
    assert got.acc.dtype == np.int64 and got.overflow.dtype == np.bool_
    assert got.acc.shape == want.acc.shape == got.overflow.shape
    bad = np.argwhere((got.acc != want.acc) | (got.overflow != want.overflow))
    assert bad.size == 0, (f"seed={seed} {context}: first mismatch at {tuple(bad[0])}: got "
                           f"{got.acc[tuple(bad[0])]}/{got.overflow[tuple(bad[0])]}, want "
                           f"{want.acc[tuple(bad[0])]}/{want.overflow[tuple(bad[0])]}")


def path_of(a_values, b_values, width):
    return units.matmul_dtype(units.partial_sum_bound(a_values, b_values), width)


# ---------------------------------------------------------------------------------------------------
# GEMMs

def test_random_gemms_take_every_path_and_match_the_sequential_sum(rng, seed):
    paths = set()
    for trial in range(120):
        m, k, n = rng.integers(1, 12), rng.integers(1, 300), rng.integers(1, 12)
        width = int(rng.choice([8, 10, 12, 16, 24, 32]))
        if trial % 2:
            signed_a = bool(rng.integers(2))
            a = rng.integers(-8 if signed_a else 0, 8 if signed_a else 16, (m, k))
            b = rng.integers(-8, 8, (k, n))
            got = units.gemm_int4(a.astype(np.int8 if signed_a else np.uint8), b.astype(np.int8), signed_a, width)
            want = reference_gemm(a, b, width)
            paths.add(path_of(a, b, width))
        else:
            phase, signed_b = int(rng.integers(2)), bool(rng.integers(2))
            if trial % 4 == 0:      # mostly small exponents, like real gradients
                codes = (rng.integers(0, 2, (m, k)) << 3) | np.minimum(rng.geometric(0.3, (m, k)), 7)
            else:                   # any code, long sums: partial sums above 2**24 at 32 bits
                k, width = int(rng.integers(1, 3000)), int(rng.choice([16, 32, 32]))
                codes = rng.integers(0, 16, (m, k))
            b = rng.integers(-8 if signed_b else 0, 8 if signed_b else 16, (k, n))
            got = units.gemm_fp4_int4(codes.astype(np.uint8), phase, b, signed_b, width)
            values = fp4.code_multiplier(codes, phase)
            want = reference_gemm(values, b, width)
            paths.add(path_of(values, b, width))
        assert_same(got, want, seed, f"trial {trial} width {width}")
    assert paths == {np.float32, np.float64, None}, f"seed={seed}: paths exercised {paths}"


def test_the_old_reference_path_matches_the_sequential_sum(rng, seed):
    for width in (8, 12, 24):
        a = rng.integers(0, 16, (7, 90))
        b = rng.integers(-8, 8, (90, 6))
        assert_same(units._gemm_reference(a, b, width), reference_gemm(a, b, width), seed, f"width {width}")


@pytest.mark.parametrize("width, a_value, b_value, k", [
    (8, 1, 1, 127), (10, 7, 1, 73), (12, 1, 1, 2047), (16, 7, 1, 4681), (16, 1, 7, 4681)])
def test_sums_right_at_the_saturation_bound(width, a_value, b_value, k):
    """max|a|*max|b|*K equal to the accumulator maximum: the fast path; one more term: the clamped path."""
    lo, hi = units.acc_limits(width)
    assert a_value * b_value * k == hi
    a, b = np.full((1, k), a_value), np.full((k, 1), b_value)
    assert units.matmul_dtype(units.partial_sum_bound(a, b), width) is np.float32
    assert units.gemm_int4(a, b, False, width) == (hi, False)
    a, b = np.full((2, k + 1), a_value), np.full((k + 1, 2), b_value)
    b[:, 1] = -b_value
    assert units.matmul_dtype(units.partial_sum_bound(a, b), width) is None
    got = units.gemm_int4(a, b, False, width)
    assert_same(got, reference_gemm(a, b, width), "-", "one term more")
    # +(hi + a*b) clamps to hi; -(hi + 1) is lo exactly and does not clamp
    assert got.acc.tolist() == [[hi, lo]] * 2 and got.overflow[:, 0].all()
    assert got.overflow[:, 1].tolist() == [a_value * b_value > 1] * 2


def test_a_clamp_in_the_middle_changes_the_result():
    # 49 + 49 + 49 clamps to 127 at 8 bits, then -49 -49: 29 (an unclamped sum would give 49)
    a = np.array([[7, 7, 7, 7, 7]])
    b = np.array([[7], [7], [7], [-7], [-7]])
    assert units.gemm_int4(a, b, True, 8) == (29, True)
    assert units.gemm_int4(a, b, True, 9) == (49, False)


def test_float32_is_used_only_below_2_pow_24():
    assert units.matmul_dtype(2**24 - 1, 32) is np.float32
    assert units.matmul_dtype(2**24, 32) is np.float64
    assert units.matmul_dtype(2**53 - 1, 64) is np.float64
    assert units.matmul_dtype(2**53, 64) is None
    assert units.matmul_dtype(2**31 - 1, 32) is np.float64 and units.matmul_dtype(2**31, 32) is None


def test_sums_right_at_the_float32_bound():
    # 15 * 7 * 159783 = 2**24 - 1: float32 is exact for every partial sum
    k = 159783
    a, b = np.full((1, k), 15), np.full((k, 1), 7)
    assert units.partial_sum_bound(a, b) == 2**24 - 1
    assert units.gemm_int4(a, b, False, 32) == (2**24 - 1, False)
    # two more unit terms: 2**24 + 1 is no float32, so this must not run in float32
    a, b = np.concatenate([a, [[1, 1]]], axis=1), np.concatenate([b, [[1], [1]]])
    assert units.partial_sum_bound(a, b) > 2**24
    assert int((a.astype(np.float32) @ b.astype(np.float32))[0, 0]) != 2**24 + 1, "float32 would be wrong here"
    assert units.gemm_int4(a, b, False, 32) == (2**24 + 1, False)


def test_the_tight_bound_keeps_float32_for_sparse_large_codes(rng, seed):
    """max|a|*max|b|*K is too large, the row sums are not: float32, exact."""
    codes = np.zeros((16, 4096), np.uint8)
    codes[np.arange(16), rng.integers(0, 4096, 16)] = 7              # one 2**13 per row
    b = rng.integers(-8, 8, (4096, 8))
    values = fp4.code_multiplier(codes, 0)
    assert 8192 * 8 * 4096 >= 2**24 and units.partial_sum_bound(values, b) == 8192 * 8
    assert path_of(values, b, 32) is np.float32
    assert_same(units.gemm_fp4_int4(codes, 0, b, True, 32), reference_gemm(values, b, 32), seed, "sparse")


def test_bound_is_an_upper_bound_of_every_partial_sum(rng, seed):
    for _ in range(50):
        a = rng.integers(-8192, 8193, (int(rng.integers(1, 6)), int(rng.integers(1, 200))))
        a[rng.random(a.shape) < 0.7] = 0
        b = rng.integers(-8, 16, (a.shape[1], int(rng.integers(1, 6))))
        exact = (np.abs(a) @ np.abs(b)).max()
        assert units.partial_sum_bound(a, b) >= exact, f"seed={seed}"


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.int64, np.uint64])
def test_operand_dtypes_and_layouts(rng, seed, dtype):
    codes = rng.integers(0, 16, (40, 30))
    x = rng.integers(0, 16, (40, 25))
    want = reference_gemm(fp4.code_multiplier(codes, 1).T, x, 32)
    for c in (codes.T.astype(dtype), np.ascontiguousarray(codes.T).astype(dtype)):   # the layer passes codes.T
        assert_same(units.gemm_fp4_int4(c, 1, x.astype(dtype), False, 32), want, seed, f"{dtype} layout")
    a = rng.integers(0, 16, (9, 30)).astype(dtype)
    w = rng.integers(-7, 8, (30, 5))
    assert_same(units.gemm_int4(a, w, False, 24), reference_gemm(a, w, 24), seed, f"{dtype}")


def test_empty_rows_and_columns():
    for m, n in ((0, 3), (3, 0), (0, 0)):
        got = units.gemm_int4(np.zeros((m, 4), np.uint8), np.zeros((4, n), np.int8))
        assert got.acc.shape == got.overflow.shape == (m, n) and got.acc.dtype == np.int64
        got = units.gemm_fp4_int4(np.zeros((m, 4), np.uint8), 0, np.zeros((4, n), np.int8))
        assert got.acc.shape == (m, n)


@pytest.mark.parametrize("call, error, message", [
    (lambda: units.gemm_fp4_int4(np.array([[16]], np.uint8), 0, np.array([[1]])), ValueError,
     "codes must lie in 0..15, got 16"),
    (lambda: units.gemm_fp4_int4(np.array([[1.0]]), 0, np.array([[1]])), TypeError, "codes must be an integer array"),
    (lambda: units.gemm_fp4_int4(np.array([[True]]), 0, np.array([[1]])), TypeError, "got dtype bool"),
    (lambda: units.gemm_fp4_int4(np.array([[1]]), 0, np.array([[-1]], np.int8), signed_b=False), ValueError,
     "b must lie in 0..15, got -1"),
    (lambda: units.gemm_int4(np.array([[-1]], np.int8), np.array([[1]])), ValueError, "a must lie in 0..15, got -1"),
    (lambda: units.gemm_int4(np.array([[1]], np.uint8), np.array([[200]], np.uint8)), ValueError,
     "b must lie in -8..7, got 200"),
    (lambda: units.gemm_fp4_int4(np.array([1, 2], np.uint8), 0, np.array([[1]])), ValueError, "must be 2-D"),
])
def test_bad_input_through_the_fast_checks(call, error, message):
    with pytest.raises(error, match=message.replace(".", r"\.")):
        call()


# ---------------------------------------------------------------------------------------------------
# golden.fp4

@pytest.mark.parametrize("phase", [0, 1])
def test_quantize_table_equals_the_rounding_rule_for_every_scale(phase):
    for s in range(fp4.S_MIN, fp4.S_MAX + 1):
        codes, flags = fp4.quantize(ALL_FLOAT16, s, phase)
        want_codes, want_flags = fp4._quantize_values(ALL_FLOAT16, s, phase)
        for name, got, want in (("codes", codes, want_codes), ("overflow", flags.overflow, want_flags.overflow),
                                ("invalid", flags.invalid, want_flags.invalid)):
            bad = np.flatnonzero(got != want)
            assert got.dtype == want.dtype and bad.size == 0, (
                f"s={s} phase={phase} {name}: first mismatch at pattern 0x{bad[0]:04x}")


def test_quantize_keeps_shapes_and_scalars(rng):
    g = rng.standard_normal((3, 4, 5)).astype(np.float16)
    for x in (g, g.transpose(2, 0, 1), g[:, ::2], g[0, 0, 0], np.float16(-0.25), np.array(0.5, np.float16)):
        got, want = fp4.quantize(x, -1, 1), fp4._quantize_values(np.asarray(x), -1, 1)
        assert type(got[0]) is type(want[0]) and np.array_equal(got[0], want[0])
        assert np.array_equal(got[1].overflow, want[1].overflow) and type(got[1].invalid) is type(want[1].invalid)


def reference_grad_scale_unit(g):
    """The float64 computation GradScale is defined by: ceil(log2(max finite |g|))."""
    mag = np.abs(g.astype(np.float64))
    finite = np.isfinite(mag)
    peak = mag[finite].max(initial=0.0)
    s = 0 if peak == 0 else int(np.ceil(np.log2(peak)))
    return s, bool((~finite).any())


def test_grad_scale_unit_on_bit_patterns(rng, seed):
    finite = ALL_FLOAT16[np.isfinite(ALL_FLOAT16)]
    for value in finite[::7]:                                 # every exponent, many fractions, both signs
        g = np.array([value, -value / 4, 0], np.float16)
        assert fp4.grad_scale_unit(g) == reference_grad_scale_unit(g), f"value {value}"
    for _ in range(200):
        g = rng.choice(ALL_FLOAT16, size=int(rng.integers(1, 40)))
        assert fp4.grad_scale_unit(g) == reference_grad_scale_unit(g), f"seed={seed} g={g.tolist()}"
    assert fp4.grad_scale_unit(np.float16([-0.0, 0.0])) == (0, False)
    assert fp4.grad_scale_unit(np.float16([np.nan, -np.inf, 2.0**-20])) == (-20, True)


def test_code_multiplier_table_is_the_formula():
    codes = np.arange(16)
    for phase in (0, 1):
        e = codes & 7
        want = np.where(e > 0, 2 ** np.maximum(2 * e - 1 - phase, 0), 0) * np.where(codes & 8, -1, 1)
        got = fp4.code_multiplier(codes.reshape(4, 4).T, phase)
        assert got.dtype == np.int64 and np.array_equal(got, want.reshape(4, 4).T)
    assert isinstance(fp4.code_multiplier(np.array(3), 0), np.ndarray)


# ---------------------------------------------------------------------------------------------------
# golden.int4: the float64 formulas of the contract

def reference_sawb_alpha(w):
    w = np.asarray(w, np.float64)
    alpha = int4.SAWB_C1 * np.sqrt(np.mean(w * w)) + int4.SAWB_C2 * np.mean(np.abs(w))
    return float(alpha if np.isfinite(alpha) and alpha > 0 else np.abs(w).max())


def reference_sawb(w):
    w = np.asarray(w, np.float64)
    alpha = reference_sawb_alpha(w)
    if alpha == 0:
        return np.zeros(w.shape, np.int8), 1.0
    step = alpha / 7
    return np.clip(np.rint(w / step), -7, 7).astype(np.int8), step


def reference_pact(x, alpha):
    x = np.asarray(x, np.float64)
    return np.rint(np.clip(x, 0.0, alpha) * 15 / alpha).astype(np.uint8), alpha / 15


def reference_pact_backward(x, alpha, grad_out):
    x, grad_out = np.asarray(x, np.float64), np.asarray(grad_out, np.float64)
    clipped = x >= alpha
    return np.where((x >= 0) & ~clipped, grad_out, 0.0), float(grad_out[clipped].sum())


def float_inputs(rng, shape):
    """The same random values as float16, float32 and float64, in several layouts."""
    base = rng.standard_normal(shape) * rng.choice([1e-3, 0.1, 3.0])
    for dtype in (np.float16, np.float32, np.float64):
        v = base.astype(dtype)
        yield from (v, v.T, v[::2], np.asfortranarray(v))


@pytest.mark.parametrize("shape", [(256, 256), (7, 300), (1, 1), (5,)])
def test_sawb_and_pact_equal_the_float64_formulas(rng, seed, shape):
    for x in float_inputs(rng, shape):
        codes, step = int4.sawb(x)
        want_codes, want_step = reference_sawb(x)
        assert codes.dtype == np.int8 and np.array_equal(codes, want_codes) and step == want_step, f"seed={seed}"
        assert int4.sawb_alpha(x) == reference_sawb_alpha(x)
        alpha = float(rng.uniform(0.05, 4.0))
        codes, step = int4.pact(x, alpha)
        want_codes, want_step = reference_pact(x, alpha)
        assert codes.dtype == np.uint8 and np.array_equal(codes, want_codes) and step == want_step, f"seed={seed}"
        grad = rng.standard_normal(x.shape).astype(np.float32)
        grad_x, grad_alpha = int4.pact_backward(x, alpha / 8, grad)
        want_x, want_alpha = reference_pact_backward(x, alpha / 8, grad)
        assert grad_x.dtype == np.float64 and np.array_equal(grad_x, want_x) and grad_alpha == want_alpha


def test_pact_compares_alpha_in_float64():
    # alpha = 0.1 is no float32; a float32 x just above it is clipped in float64, not in float32
    x = np.nextafter(np.float32(0.1), np.float32(1.0)) if np.float32(0.1) < 0.1 else np.float32(0.1)
    assert float(x) > 0.1
    _, grad_alpha = int4.pact_backward(np.array([x]), 0.1, np.array([1.0]))
    assert grad_alpha == 1.0
    x = np.float32(0.1) if np.float32(0.1) < 0.1 else np.nextafter(np.float32(0.1), np.float32(0))
    grad_x, grad_alpha = int4.pact_backward(np.array([x]), 0.1, np.array([1.0]))
    assert grad_x.tolist() == [1.0] and grad_alpha == 0.0


def test_scalar_inputs_give_scalars_like_the_formulas():
    for x in (np.float32(0.7), np.array(0.7), np.array(-2.5, np.float32)):
        for got, want in ((int4.pact(x, 1.0), reference_pact(x, 1.0)), (int4.sawb(x), reference_sawb(x))):
            assert type(got[0]) is type(want[0][()]) and got[0] == want[0] and got[1] == want[1]


# ---------------------------------------------------------------------------------------------------
# golden.training.layers

def float16_corner_patterns():
    """float32 bit patterns at every float16 rounding decision: each half, the midpoints to its
    neighbours and one float32 ulp either side, the subnormal/normal/overflow edges, Inf and NaNs."""
    halves = ALL_FLOAT16[np.isfinite(ALL_FLOAT16) & (ALL_FLOAT16 >= 0)].astype(np.float64)
    halves = np.unique(np.concatenate([halves, [65520.0]]))          # 65520: the midpoint to Inf
    mids = (halves[:-1] + halves[1:]) / 2
    points = np.concatenate([halves, mids]).astype(np.float32)
    bits = points.view(np.uint32)[:, None] + np.array([-1, 0, 1], np.int64)[None, :]
    bits = bits[(bits >= 0) & (bits < 0x7F800000)].astype(np.uint32)
    special = np.array([0x7F800000, 0x7F800001, 0x7FC00000, 0x7F801FFF, 0x7F802000, 0x7FFFFFFF, 0x00000001,
                        0x33000000, 0x33000001, 0x337FFFFF, 0x387FEFFF, 0x387FF000, 0x38800000, 0x477FEFFF,
                        0x477FF000, 0x47800000, 0x7F7FFFFF], np.uint32)
    bits = np.concatenate([bits, special])
    return np.concatenate([bits, bits | np.uint32(0x80000000)])


def test_float32_to_float16_equals_numpy_at_every_rounding_corner(rng, seed):
    bits = np.concatenate([float16_corner_patterns(), rng.integers(0, 1 << 32, 1 << 20, dtype=np.uint64)
                           .astype(np.uint32)])
    x = bits.view(np.float32)
    with np.errstate(all="ignore"):
        want = x.astype(np.float16).view(np.uint16)
    got = layers.to_float16(x)
    assert got.dtype == np.float16
    bad = np.flatnonzero(got.view(np.uint16) != want)
    assert bad.size == 0, (f"seed={seed}: float32 0x{bits[bad[0]]:08x} gives 0x{got.view(np.uint16)[bad[0]]:04x}, "
                           f"numpy 0x{want[bad[0]]:04x}")


def test_float16_conversions_keep_shapes_and_other_dtypes(rng):
    x = (rng.standard_normal((6, 5)) * 1e-4).astype(np.float32)
    for v in (x, x.T, x[::2], x.astype(np.float64), np.float32(1e6) * x):
        with np.errstate(over="ignore"):
            want = v.astype(np.float16)
        got = layers.to_float16(v)
        assert got.shape == want.shape and np.array_equal(got.view(np.uint16), want.view(np.uint16))
    got = layers.float16_to(ALL_FLOAT16.reshape(256, 256), np.float32)
    want = ALL_FLOAT16.reshape(256, 256).astype(np.float32)
    assert got.dtype == np.float32 and np.array_equal(got.view(np.uint32), want.view(np.uint32))
    assert layers.float16_to(ALL_FLOAT16[:9], np.float64).dtype == np.float64


def reference_im2col(x, kernel, stride, padding):
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    padded = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    windows = sliding_window_view(padded, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw]
    n, c, oh, ow = windows.shape[:4]
    return windows.transpose(0, 2, 3, 1, 4, 5).reshape(n * oh * ow, c * kh * kw)


def reference_col2im(cols, x_shape, kernel, stride, padding):
    """The NCHW sum in kernel-offset order (i, j)."""
    (n, c, h, w), (kh, kw), (sh, sw), (ph, pw) = x_shape, kernel, stride, padding
    oh, ow = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    patches = cols.reshape(n, oh, ow, c, kh, kw)
    grad = np.zeros((n, c, h + 2 * ph, w + 2 * pw), cols.dtype)
    for i in range(kh):
        for j in range(kw):
            grad[:, :, i:i + sh * oh:sh, j:j + sw * ow:sw] += patches[..., i, j].transpose(0, 3, 1, 2)
    return grad[:, :, ph:ph + h, pw:pw + w]


@pytest.mark.parametrize("x_shape, kernel, stride, padding", [
    ((4, 16, 8, 8), (3, 3), (2, 2), (1, 1)), ((3, 32, 4, 4), (3, 3), (1, 1), (1, 1)),
    ((5, 1, 1, 40), (1, 5), (1, 2), (0, 2)), ((2, 3, 5, 7), (2, 3), (1, 2), (0, 1)),
    ((2, 2, 6, 5), (3, 3), (3, 2), (2, 0))])
def test_channels_last_im2col_and_col2im_equal_the_nchw_versions(rng, seed, x_shape, kernel, stride, padding):
    for x in (rng.integers(0, 16, x_shape).astype(np.uint8), rng.standard_normal(x_shape).astype(np.float32)):
        cols = layers.im2col(x, kernel, stride, padding)
        assert cols.dtype == x.dtype and np.array_equal(cols, reference_im2col(x, kernel, stride, padding))
    grads = (rng.standard_normal(cols.shape) * 10.0 ** rng.integers(-6, 3, cols.shape)).astype(np.float32)
    got = layers.col2im(grads, x_shape, kernel, stride, padding)
    want = reference_col2im(grads, x_shape, kernel, stride, padding)
    assert got.shape == x_shape and np.array_equal(got.view(np.uint32), want.view(np.uint32)), f"seed={seed}"


# ---------------------------------------------------------------------------------------------------
# golden.training.bench_epoch: arguments only (timings are measured, never asserted)

@pytest.mark.parametrize("argv, message", [
    (["--pairs", "digits-resnet"], "must be one of digits-mlp, digits-cnn, mnist1d-cnn, mnist1d-mlp"),
    (["--repeats", "0"], "must be a positive integer, got 0"),
    (["--repeats", "x"], "must be a positive integer, got 'x'"),
])
def test_bench_epoch_rejects_bad_arguments(usage_error, argv, message):
    from golden.training import bench_epoch
    assert message in usage_error(bench_epoch.main, argv)
