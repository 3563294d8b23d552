"""golden.mx against ml_dtypes casts (the independent reference) and the rules of docs/numerics.md section 9."""

import ml_dtypes
import numpy as np
import pytest

from golden import mx

F4 = ml_dtypes.float4_e2m1fn
E4M3 = ml_dtypes.float8_e4m3fn
E8M0 = ml_dtypes.float8_e8m0fnu
TIES_E2M1 = np.array([0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0])


def ml_e2m1(y):
    return y.astype(F4).view(np.uint8)


def ml_e4m3_value(codes):
    return codes.view(E4M3).astype(np.float32)


def ml_e8m0_value(codes):
    return codes.view(E8M0).astype(np.float32)


def assert_codes_equal(got, want, inputs, seed=None):
    bad = np.flatnonzero(got.ravel() != want.ravel())
    assert bad.size == 0, (f"seed {seed}: first difference at flat index {bad[0]}: input "
                           f"{inputs.ravel()[bad[0]]!r} gives {got.ravel()[bad[0]]}, reference {want.ravel()[bad[0]]}")


def around(values):
    """Each value and its float32 neighbours on both sides."""
    values = np.asarray(values, np.float32)
    return np.concatenate([values, np.nextafter(values, np.float32(np.inf)),
                           np.nextafter(values, np.float32(-np.inf))])


def random_finite_float32(rng, n):
    bits = rng.integers(0, 1 << 32, n, dtype=np.uint64).astype(np.uint32)
    x = bits.view(np.float32)
    return x[np.isfinite(x)]


# ---------------------------------------------------------------- every code


def test_every_e2m1_code_decodes_like_ml_dtypes():
    want = np.arange(16, dtype=np.uint8).view(F4).astype(np.float32)
    assert mx.E2M1_VALUES.view(np.uint32).tolist() == want.view(np.uint32).tolist()   # signed zeros too


def test_every_e4m3_code_decodes_like_ml_dtypes():
    codes = np.arange(256, dtype=np.uint8)
    got, want = mx.e4m3_decode(codes), ml_e4m3_value(codes)
    assert np.array_equal(np.isnan(got), np.isnan(want))
    finite = ~np.isnan(want)
    assert got[finite].view(np.uint32).tolist() == want[finite].view(np.uint32).tolist()


def test_every_e8m0_code_decodes_like_ml_dtypes():
    codes = np.arange(256, dtype=np.uint8)
    got, want = mx.e8m0_decode(codes), ml_e8m0_value(codes)
    assert np.isnan(got[255]) and np.isnan(want[255])
    assert got[:255].view(np.uint32).tolist() == want[:255].view(np.uint32).tolist()


def test_every_e2m1_and_e4m3_value_encodes_to_its_code():
    values = mx.E2M1_VALUES
    assert mx.e2m1_encode(values).tolist() == list(range(16))
    assert mx.e4m3_encode(mx.E4M3_GRID.astype(np.float32)).tolist() == list(range(0x7F))


# ---------------------------------------------------------------- element and scale conversions


@pytest.mark.parametrize("rounding", ["even", "away"])
def test_e2m1_ties_and_saturation(rounding):
    ties = np.concatenate([TIES_E2M1, -TIES_E2M1]).astype(np.float32)
    got = mx.E2M1_VALUES[mx.e2m1_encode(ties, rounding)]
    if rounding == "even":
        assert np.array_equal(got, ml_e2m1(ties).view(F4).astype(np.float32))
        assert got[:7].tolist() == [0, 1, 1, 2, 2, 4, 4]
    else:
        assert got[:7].tolist() == [0.5, 1, 1.5, 2, 3, 4, 6]
    assert np.array_equal(got[7:], -got[:7])
    big = np.float32([6, 6.5, 7, 1e30, np.finfo(np.float32).max])
    assert mx.E2M1_VALUES[mx.e2m1_encode(big, rounding)].tolist() == [6] * 5


def test_e2m1_matches_ml_dtypes_on_ties_edges_and_random_sweeps(rng, seed):
    edges = around(np.concatenate([TIES_E2M1, mx.E2M1_GRID, [6.0, 7.0, 1e-45]]))
    sweeps = [edges, -edges, rng.uniform(-8, 8, 1 << 20).astype(np.float32),
              (rng.integers(-32, 33, 1 << 16) / 8).astype(np.float32),            # many exact ties
              random_finite_float32(rng, 1 << 20)]
    for y in sweeps:
        assert_codes_equal(mx.e2m1_encode(y), ml_e2m1(y), y, seed)


def test_e4m3_matches_ml_dtypes_up_to_464(rng, seed):
    grid = mx.E4M3_GRID
    ties = (grid[1:] + grid[:-1]) / 2
    v = np.concatenate([around(np.concatenate([grid, ties, [2.0**-10, 464.0]])),
                        rng.uniform(0, 464, 1 << 20).astype(np.float32),
                        np.abs(random_finite_float32(rng, 1 << 20))])
    v = v[(v >= 0) & (v <= 464)]
    assert_codes_equal(mx.e4m3_encode(v), v.astype(E4M3).view(np.uint8), v, seed)


def test_e4m3_saturates_where_ml_dtypes_gives_nan():
    v = np.float32([464.00003, 480, 1e6, 3e38])
    assert np.isnan(ml_e4m3_value(v.astype(E4M3).view(np.uint8))).all()
    assert mx.e4m3_encode(v).tolist() == [0x7E] * 4


def mx_scale_from_ml_dtypes(amax):
    """The MX scale code from ml_dtypes' E8M0 cast, which rounds: step back where it rounded up."""
    code = amax.astype(E8M0).view(np.uint8).astype(np.int64)
    rounded_up = (ml_e8m0_value(code.astype(np.uint8)) > amax) | (code == 255)   # 255: rounded up past 2**127
    return np.where(amax == 0, 0, np.clip(code - rounded_up - 2, 0, 254))   # ml_dtypes: 0 -> NaN


def test_mx_scale_floors_where_ml_dtypes_rounds(rng, seed):
    amax = np.concatenate([np.float32([1, 1.4, 1.5, 1.9999999, 2, 3, 6, 7.9, 2.0**-125, 2.0**127]),
                           np.exp2(rng.uniform(-125, 127.9, 1 << 16)).astype(np.float32)])
    blocks = np.zeros((len(amax), 32), np.float32)
    blocks[:, 5] = amax
    blocks[:, 9] = -amax / 3
    _, scales = mx.mxfp4_quantize(blocks)
    assert_codes_equal(scales[:, 0], mx_scale_from_ml_dtypes(amax), amax, seed)
    # the difference, explicitly: ml_dtypes rounds 1.5 to 2 and 0 to NaN, MX floors and gives code 0
    assert np.float32([1.5, 0]).astype(E8M0).view(np.uint8).tolist() == [128, 255]
    assert mx.mxfp4_quantize(np.float32([1.5] + [0] * 31))[1].tolist() == [127 - 2]
    assert mx.mxfp4_quantize(np.zeros(32, np.float32))[1].tolist() == [0]


def random_blocks(rng, n_blocks, block, exponents=(-130, 120)):
    """Blocks mixing exact grid points, E2M1 ties and random values at a random scale, random signs."""
    scale = np.exp2(rng.integers(*exponents, (n_blocks, 1))).astype(np.float64)
    choice = rng.integers(0, 3, (n_blocks, block))
    values = np.select([choice == 0, choice == 1],
                       [rng.choice(mx.E2M1_GRID, (n_blocks, block)), rng.choice(TIES_E2M1, (n_blocks, block))],
                       rng.uniform(0, 8, (n_blocks, block)))
    signs = rng.choice([-1.0, 1.0], (n_blocks, block))
    return (values * scale * signs).astype(np.float32)


@pytest.mark.parametrize("rounding", ["even", "away"])
def test_mxfp4_equals_ml_dtypes_casts(rng, seed, rounding):
    x = random_blocks(rng, 4096, 32)
    x[:8] *= np.float32(2.0**-140)                                # the smallest scales (clamped to 2**-127)
    codes, scales = mx.mxfp4_quantize(x, rounding)
    scale = ml_e8m0_value(scales)
    assert_codes_equal(scales[:, 0], mx_scale_from_ml_dtypes(np.abs(x).max(axis=1)), x, seed)
    y = (x / scale).astype(np.float32)                            # exact: scale is a power of two
    if rounding == "even":
        assert_codes_equal(codes, ml_e2m1(y), x, seed)
    decoded = mx.mxfp4_decode(codes, scales)
    assert np.array_equal(decoded, codes.view(np.uint8).view(F4).astype(np.float32) * scale)
    if rounding == "away":
        differs = codes != ml_e2m1(y)
        assert np.isin(np.abs(y[differs]), TIES_E2M1).all()     # away differs from RNE only on ties
        assert (np.abs(decoded[differs]) > np.abs(ml_e2m1(y).view(F4).astype(np.float32)[differs] * scale.repeat(32, 1)[differs])).all()


def test_mxfp4_smallest_scale_is_clamped():
    x = np.zeros(32, np.float32)
    x[:3] = [2.0**-140, 1e-45, -3 * 2.0**-129]
    codes, scales = mx.mxfp4_quantize(x)
    assert scales.tolist() == [0]
    y = x / np.float32(2.0**-127)
    assert codes.tolist() == ml_e2m1(y).tolist()
    assert codes[2] == 0b1010 and codes[0] == 0                    # -3 * 2**-129 / 2**-127 = -0.75 -> -1 (even)


def test_nvfp4_equals_ml_dtypes_casts(rng, seed):
    x = random_blocks(rng, 4096, 16, exponents=(-12, 4)).reshape(64, 1024)
    x[1] *= np.float32(2.0**-14)             # rows whose blocks are far below their tensor's amax ...
    x[2] = 0
    x[2, :16] = 2.0**-30                     # ... down to E4M3 subnormal scales and scales that are 0
    x = x.reshape(-1, 16)
    x[np.abs(x).max(axis=1) == 0, 0] = 1e-3
    subnormal_scales = mx.nvfp4_quantize(x)[1]
    assert (subnormal_scales == 0).any() and ((subnormal_scales > 0) & (subnormal_scales < 8)).any()
    for tensor in (x, x * np.float32(2.0**-100), x * np.float32(2.0**100)):
        codes, block_scales, g = mx.nvfp4_quantize(tensor)
        amax = np.abs(tensor).max()
        assert g == np.float32(amax) / np.float32(2688)
        ratio = np.abs(tensor).max(axis=1) / np.float32(6) / g
        assert ratio.max() <= 464
        assert_codes_equal(block_scales[:, 0], ratio.astype(E4M3).view(np.uint8), tensor, seed)
        scale = ml_e4m3_value(block_scales[:, 0]) * g
        empty = scale == 0
        with np.errstate(divide="ignore", invalid="ignore"):
            y = np.where(empty[:, None], np.float32(0), tensor / scale[:, None]).astype(np.float32)
        assert_codes_equal(codes, ml_e2m1(y), tensor, seed)
        decoded = mx.nvfp4_decode(codes, block_scales, g)
        assert np.array_equal(decoded, codes.view(F4).astype(np.float32) * scale[:, None])


def test_nvfp4_zero_and_tiny_tensors():
    codes, block_scales, g = mx.nvfp4_quantize(np.zeros((2, 16), np.float32))
    assert g == 1 and not codes.any() and not block_scales.any()
    tiny = np.full(16, 1e-45, np.float32)                         # amax / 2688 underflows to 0: g = 1
    codes, block_scales, g = mx.nvfp4_quantize(tiny)
    assert g == 1 and not codes.any() and not block_scales.any()


def test_nan_and_inf_blocks_are_invalid_not_zero_like_ml_dtypes():
    x = np.ones((4, 32), np.float32)
    x[0, 3], x[1, 31], x[2, 0] = np.nan, np.inf, -np.inf
    # ml_dtypes casts NaN to E2M1 as +-0 and Inf to +-6 ...
    nans = np.copysign(np.float32([np.nan, np.nan]), np.float32([1, -1]))
    assert ml_e2m1(np.concatenate([nans, np.float32([np.inf, -np.inf])])).tolist() in ([0, 8, 7, 15], [8, 0, 7, 15])
    # ... here the whole block is invalid: NaN scale, zero elements, counted
    codes, scales = mx.mxfp4_quantize(x)
    assert scales.ravel().tolist() == [255, 255, 255, 125]
    assert not codes[:3].any() and mx.invalid_blocks(scales, "mxfp4") == 3
    assert np.isnan(mx.mxfp4_decode(codes, scales)[:3]).all()
    codes, block_scales, g = mx.nvfp4_quantize(x)
    assert block_scales.tolist() == [[0x7F, 0x7E], [0x7E, 0x7F], [0x7F, 0x7E], [0x7E, 0x7E]]
    assert g == np.float32(1) / np.float32(2688)                   # amax over the finite values
    assert mx.invalid_blocks(block_scales, "nvfp4") == 3
    assert not codes[0, :16].any() and codes[0, 16:].all()


# ---------------------------------------------------------------- stochastic rounding


def test_stochastic_rounding_probability_and_reproducibility():
    y = np.float32([0.1, 0.3, 1.25, 2.2, 5.0, -4.5, 3.0, 7.0])
    n = 20000
    codes = mx.e2m1_encode(np.tile(y, n), "stochastic", np.random.default_rng(7)).reshape(n, len(y))
    again = mx.e2m1_encode(np.tile(y, n), "stochastic", np.random.default_rng(7)).reshape(n, len(y))
    assert np.array_equal(codes, again)
    values = mx.E2M1_VALUES[codes]
    p_up = np.array([0.2, 0.6, 0.5, 0.2, 0.5, 0.25, 0.0, 0.0])    # (|y| - lo) / (hi - lo); 7 saturates
    lo = np.array([0, 0, 1, 2, 4, -4, 3, 6])
    hi = np.array([0.5, 0.5, 1.5, 3, 6, -6, 3, 6])
    assert np.isin(values, np.stack([lo, hi])).all()
    frequency = (values == hi).mean(axis=0)
    frequency[6:] = 0
    assert np.abs(frequency - p_up).max() < 0.015                # 4.5 standard deviations at n = 20000
    assert np.abs(values.mean(axis=0)[:6] - y[:6]).max() < 0.02


def test_stochastic_quantize_uses_the_generator(rng):
    x = rng.standard_normal((4, 64)).astype(np.float32)
    a = mx.nvfp4_quantize(x, "stochastic", np.random.default_rng(1))
    b = mx.nvfp4_quantize(x, "stochastic", np.random.default_rng(1))
    c = mx.nvfp4_quantize(x, "stochastic", np.random.default_rng(2))
    assert all(np.array_equal(u, v) for u, v in zip(a, b))
    assert np.array_equal(a[1], c[1]) and not np.array_equal(a[0], c[0])   # scales round to nearest


# ---------------------------------------------------------------- Hadamard


@pytest.mark.parametrize("n", [16, 32])
def test_hadamard_is_orthogonal_and_seeded(n, rng):
    h = mx.hadamard_matrix(n).astype(np.float64)
    assert np.abs(h @ h.T - np.eye(n)).max() < 1e-6
    signs = mx.random_signs(n, np.random.default_rng(3))
    assert np.array_equal(signs, mx.random_signs(n, np.random.default_rng(3))) and set(signs) == {-1, 1}
    a, b = rng.standard_normal((2, 5, 4 * n)).astype(np.float32)
    ha, hb = mx.hadamard(a, signs), mx.hadamard(b, signs)
    assert ha.shape == a.shape and ha.dtype == np.float32
    assert np.allclose((ha * hb).sum(-1), (a * b).sum(-1), rtol=1e-5, atol=1e-4)   # a float transform


def test_hadamard_spreads_an_outlier():
    x = np.zeros(16, np.float32)
    x[3] = 8
    assert np.abs(mx.hadamard(x, np.ones(16, np.float32))).tolist() == [2.0] * 16


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize("quantize", [mx.mxfp4_quantize, mx.nvfp4_quantize])
def test_bad_input_names_the_value(quantize):
    with pytest.raises(TypeError, match="float64"):
        quantize(np.zeros(32))
    with pytest.raises(TypeError, match="list"):
        quantize([0.0] * 32)
    with pytest.raises(ValueError, match=r"\(4, 24\)"):
        quantize(np.zeros((4, 24), np.float32))
    with pytest.raises(ValueError, match=r"shape \(\)"):
        quantize(np.ones((), np.float32))
    with pytest.raises(ValueError, match="'nearest'"):
        quantize(np.zeros(32, np.float32), rounding="nearest")
    with pytest.raises(TypeError, match="rng=None"):
        quantize(np.zeros(32, np.float32), rounding="stochastic")
    with pytest.raises(TypeError, match="rng=42"):
        quantize(np.zeros(32, np.float32), rounding="stochastic", rng=42)


def test_bad_decode_input():
    codes, scales = mx.mxfp4_quantize(np.ones((2, 64), np.float32))
    with pytest.raises(ValueError, match=r"scales must have shape \(2, 2\), got shape \(2, 1\)"):
        mx.mxfp4_decode(codes, scales[:, :1])
    with pytest.raises(TypeError, match="int64"):
        mx.mxfp4_decode(codes.astype(np.int64), scales)
    with pytest.raises(ValueError, match="got 2[0-9]"):
        mx.mxfp4_decode(codes | np.uint8(16), scales)
    codes, block_scales, g = mx.nvfp4_quantize(np.ones(16, np.float32))
    with pytest.raises(ValueError, match="global_scale.*-1.0"):
        mx.nvfp4_decode(codes, block_scales, -1.0)
    with pytest.raises(ValueError, match="'fp8'"):
        mx.invalid_blocks(block_scales, "fp8")
    with pytest.raises(ValueError, match=r"shape \(8,\)"):
        mx.hadamard(np.zeros(16, np.float32), np.ones(8, np.float32))


@pytest.mark.parametrize("fmt", ["mxfp4", "nvfp4"])
@pytest.mark.parametrize("rounding", ["even", "stochastic"])
def test_fake_quantize_equals_decode_of_quantize(rng, seed, fmt, rounding):
    quantize, decode = {"mxfp4": (mx.mxfp4_quantize, mx.mxfp4_decode), "nvfp4": (mx.nvfp4_quantize, mx.nvfp4_decode)}[fmt]
    x = random_blocks(rng, 2048, 32, exponents=(-30, 30) if fmt == "nvfp4" else (-140, 120)).reshape(64, 1024)
    x[0, :40] = 0
    x[1, :16] = -1e-30                                           # nvfp4: a block whose scale is 0 (+0 elements)
    x[2, 7], x[3, 100] = np.nan, -np.inf
    draws = (np.random.default_rng(seed), np.random.default_rng(seed)) if rounding == "stochastic" else (None, None)
    want = decode(*quantize(x, rounding, draws[0]))
    got, invalid = mx.fake_quantize(x, fmt, rounding, draws[1])
    assert invalid == 2
    assert_codes_equal(got.view(np.uint32), want.view(np.uint32), x, seed)
    if fmt == "nvfp4" and rounding == "even":
        w = x[8:40, :64].copy()
        want = mx.nvfp4_decode_2d(*mx.nvfp4_quantize_2d(w))
        assert_codes_equal(mx.fake_quantize(w, fmt, tiles_2d=True)[0].view(np.uint32), want.view(np.uint32), w, seed)
        assert np.array_equal(mx.nvfp4_quantize_2d(w.T.copy())[0], mx.nvfp4_quantize_2d(w)[0].T)


def test_fake_quantize_bad_input():
    with pytest.raises(ValueError, match="'away'"):
        mx.fake_quantize(np.zeros(32, np.float32), "mxfp4", "away")
    with pytest.raises(ValueError, match="'mxfp8'"):
        mx.fake_quantize(np.zeros(32, np.float32), "mxfp8")
    with pytest.raises(ValueError, match=r"\(16, 8\)"):
        mx.fake_quantize(np.zeros((16, 8), np.float32), "nvfp4", tiles_2d=True)
    with pytest.raises(ValueError, match=r"\(16, 8\)"):
        mx.nvfp4_quantize_2d(np.zeros((16, 8), np.float32))
