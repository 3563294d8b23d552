"""golden.fp4 against an independent brute-force nearest-level search."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import ALL_FLOAT16
from golden import fp4

SCALES = [-32, -13, -1, 0, 5, 16, 31]


def brute_force(x, s, phase):
    """Nearest of the 8 magnitudes {0, 2^(s-12-p), ..., 2^(s-p)} in linear value, ties to the larger.

    Returns (code, overflow) built from the spec text, not from golden.fp4's thresholds.
    """
    mag = np.abs(x.astype(np.float64))
    levels = np.array([0.0] + [2.0 ** (s + 2 * (e - 7) - phase) for e in range(1, 8)])
    finite = np.where(np.isfinite(mag), mag, np.inf)
    distance = np.abs(np.where(np.isinf(finite), 1e300, finite)[..., None] - levels)
    # ties go to the larger level: pick the last minimum
    e = 7 - np.argmin(distance[..., ::-1], axis=-1)
    e = np.where(np.isnan(mag), 0, e)
    # an unbounded grid has an 8th level 4*top: overflow where it would win (ties away)
    top = levels[-1]
    overflow = (np.abs(finite - 4 * top) <= np.abs(finite - top)) & ~np.isnan(mag)
    sign = np.signbit(x) & (e > 0)
    return (np.where(sign, 8, 0) + e).astype(np.uint8), overflow


@pytest.mark.parametrize("phase", [0, 1])
@pytest.mark.parametrize("s", SCALES)
def test_all_float16_patterns_match_brute_force(s, phase):
    codes, flags = fp4.quantize(ALL_FLOAT16, s, phase)
    want_codes, want_overflow = brute_force(ALL_FLOAT16, s, phase)
    bad = np.flatnonzero((codes != want_codes) | (flags.overflow != want_overflow))
    assert bad.size == 0, (
        f"s={s} phase={phase}: first mismatch at pattern 0x{bad[0]:04x} ({ALL_FLOAT16[bad[0]]}): "
        f"code {codes[bad[0]]} overflow {flags.overflow[bad[0]]}, "
        f"want {want_codes[bad[0]]} overflow {want_overflow[bad[0]]}"
    )
    assert np.array_equal(flags.invalid, np.isnan(ALL_FLOAT16))


@pytest.mark.parametrize("phase", [0, 1])
def test_decode_of_quantize_is_nearest_level(phase):
    s = -3
    x = ALL_FLOAT16[np.isfinite(ALL_FLOAT16)]
    codes, _ = fp4.quantize(x, s, phase)
    got = fp4.decode(codes, s, phase)
    levels = fp4.decode(np.arange(16), s, phase)
    nearest = np.abs(x.astype(np.float64)[:, None] - levels).min(axis=1)
    assert np.array_equal(np.abs(x - got), nearest)


float16s = st.floats(width=16, allow_nan=True, allow_infinity=True)


@given(st.lists(float16s, min_size=2, max_size=64), st.integers(-32, 31), st.sampled_from([0, 1]))
def test_monotone(values, s, phase):
    x = np.sort(np.array([v for v in values if not np.isnan(v)] or [0.0], dtype=np.float16))
    decoded = fp4.decode(fp4.quantize(x, s, phase)[0], s, phase)
    assert np.all(np.diff(decoded) >= 0)


@given(float16s, st.integers(-32, 31), st.sampled_from([0, 1]))
def test_sign_symmetry(value, s, phase):
    x = np.float16(value)
    pos, _ = fp4.quantize(np.abs(x), s, phase)
    neg, neg_flags = fp4.quantize(-np.abs(x), s, phase)
    expected = pos | 8 if pos & 7 else pos
    assert neg == expected


@given(st.lists(float16s.filter(lambda v: v == v and abs(v) != float("inf")), min_size=1, max_size=64),
       st.sampled_from([0, 1]))
def test_grad_scale_never_overflows(values, phase):
    g = np.array(values, dtype=np.float16)
    s = fp4.grad_scale(g)
    assert 2.0**s >= np.abs(g.astype(np.float64)).max()
    assert s == 0 or 2.0 ** (s - 1) < np.abs(g.astype(np.float64)).max()
    assert not fp4.quantize(g, s, phase)[1].overflow.any()


def test_top_level_saturation_and_flags():
    s, phase = 2, 1
    top = 2.0 ** (s - phase)
    x = np.float16([top, 2 * top, 2.49 * top, 2.5 * top, 1000, -1000, np.inf, -np.inf])
    codes, flags = fp4.quantize(x, s, phase)
    assert codes.tolist() == [7, 7, 7, 7, 7, 15, 7, 15]
    assert flags.overflow.tolist() == [False, False, False, True, True, True, True, True]


def test_flush_boundary_and_negative_zero():
    s, phase = 0, 1
    smallest = 2.0 ** (s - 12 - phase)
    below = np.nextafter(np.float16(smallest / 2), np.float16(0))
    codes, _ = fp4.quantize(np.float16([smallest / 2, below, -smallest / 2, -below, -0.0]), s, phase)
    assert codes.tolist() == [1, 0, 9, 0, 0]


def test_code_multiplier_table():
    # +-2**(2e - 1 - p): e = 1, p = 1 gives 1 (shift 0); e = 7, p = 0 gives 2**13.
    assert fp4.code_multiplier(np.arange(8), 0).tolist() == [0, 2, 8, 32, 128, 512, 2048, 8192]
    assert fp4.code_multiplier(np.arange(8, 16), 1).tolist() == [0, -1, -4, -16, -64, -256, -1024, -4096]


def test_grad_scale_unit_flags_nonfinite():
    assert fp4.grad_scale_unit(np.float16([np.inf, -3.0])) == (2, True)
    assert fp4.grad_scale_unit(np.float16([np.nan])) == (0, True)
    assert fp4.grad_scale_unit(np.float16([2.0**-24])) == (-24, False)
    assert fp4.grad_scale_unit(np.float16([65504.0])) == (16, False)
    with pytest.raises(ValueError, match="non-finite gradient"):
        fp4.grad_scale(np.float16([1.0, np.nan]))


@pytest.mark.parametrize("call, error, message", [
    (lambda: fp4.quantize(np.float16([1]), 32, 0), ValueError, "s must lie in -32..31, got 32"),
    (lambda: fp4.quantize(np.float16([1]), -33, 0), ValueError, "got -33"),
    (lambda: fp4.quantize(np.float16([1]), 0, 2), ValueError, "phase must lie in 0..1, got 2"),
    (lambda: fp4.quantize(np.float16([1]), 0.5, 0), TypeError, "s must be an int"),
    (lambda: fp4.quantize(np.array(["a"]), 0, 0), TypeError, "dtype <U1"),
    (lambda: fp4.quantize(np.float64([0.1]), 0, 0), TypeError, "float64 and value"),
    (lambda: fp4.decode(np.array([16]), 0, 0), ValueError, "codes must lie in 0..15, got 16"),
    (lambda: fp4.decode(np.array([1.0]), 0, 0), TypeError, "codes must be an integer array"),
])
def test_bad_input(call, error, message):
    with pytest.raises(error, match=message.replace(".", r"\.").replace("(", r"\(")):
        call()


def test_exactly_castable_inputs_accepted():
    codes, _ = fp4.quantize(np.float64([0.625, 3]), 0, 0)
    assert codes.tolist() == [7, 7]
    codes, _ = fp4.quantize(np.array([1, -4]), 2, 0)
    assert codes.tolist() == [6, 15]
