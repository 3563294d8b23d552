"""Bit-level unit models: saturating accumulation and the GEMMs, against plain references."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from golden import fp4, units


def reference_accumulate(terms, width):
    """Python-int reference: ascending k, clamp after every addition."""
    lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
    acc, overflow = 0, False
    for t in terms:
        total = acc + int(t)
        acc = min(max(total, lo), hi)
        overflow |= acc != total
    return acc, overflow


@given(st.lists(st.integers(-120, 120), min_size=1, max_size=60), st.integers(8, 12))
def test_accumulate_matches_reference(terms, width):
    acc, overflow = units.accumulate(np.array(terms), width)
    assert (int(acc), bool(overflow)) == reference_accumulate(terms, width)


def test_int4_mac_exhaustive_single_step():
    a, b = np.meshgrid(np.arange(-8, 8), np.arange(-8, 8))
    acc, flag = units.int4_mac(np.zeros_like(a), a, b, signed_a=True, width=8)
    assert np.array_equal(acc, a * b) and not flag.any()
    acc, flag = units.int4_mac(np.full(a.shape, 127), a, b, True, 8)
    assert np.array_equal(acc, np.minimum(127 + a * b, 127))
    assert np.array_equal(flag, a * b > 0)


@pytest.mark.parametrize("signed_a", [False, True])
def test_int4_pair_products_exhaustive(signed_a):
    """The packed multiply of a DSP pair gives both exact products for every (a0, a1, b)."""
    a_values = np.arange(-8, 8) if signed_a else np.arange(16)
    a0, a1, b = (v.ravel() for v in np.meshgrid(a_values, a_values, np.arange(-8, 8), indexing="ij"))
    p0, p1 = units.int4_pair_products(a0, a1, b, signed_a)
    assert np.array_equal(p0, a0 * b) and np.array_equal(p1, a1 * b)
    assert ((a0 + a1 * 256) * b == p0 + 256 * p1).all()  # a hand-checkable identity of the packing


def test_shift_mac_exhaustive_against_decode():
    codes, b = np.meshgrid(np.arange(16), np.arange(-8, 8))
    for phase in (0, 1):
        acc, flag = units.shift_mac(np.zeros_like(b), codes, phase, b, True, 32)
        exact = fp4.decode(codes, 13, phase) * b  # s = 13 makes one unit 2**0
        assert np.array_equal(acc, exact.astype(np.int64)) and not flag.any()


@pytest.mark.parametrize("width", [8, 12, 24])
def test_gemm_int4_matches_accumulate(rng, seed, width):
    a = rng.integers(0, 16, (9, 37))
    b = rng.integers(-7, 8, (37, 5))
    got = units.gemm_int4(a, b, signed_a=False, width=width)
    want = units.accumulate(a[:, :, None] * b[None, :, :], width, axis=1)
    bad = np.argwhere((got.acc != want.acc) | (got.overflow != want.overflow))
    assert bad.size == 0, f"seed={seed}: first mismatch at {bad[0]}"
    if width == 24:
        assert np.array_equal(got.acc, a @ b) and not got.overflow.any()
    if width == 8:
        assert got.overflow.any(), "the saturating path was not exercised"



@pytest.mark.parametrize("phase", [0, 1])
def test_gemm_fp4_matches_float_matmul_of_decoded(rng, seed, phase):
    s = -4
    g = rng.standard_normal((6, 50)).astype(np.float16) * np.float16(0.01)
    codes, _ = fp4.quantize(g, s, phase)
    x = rng.integers(0, 16, (50, 7))
    got = units.gemm_fp4_int4(codes, phase, x, signed_b=False, width=32)
    exact = fp4.decode(codes, s, phase) @ x
    assert not got.overflow.any()
    assert np.array_equal(got.acc * 2.0 ** (s - 13), exact), f"seed={seed}"


def test_gemm_fp4_saturates_both_ways():
    codes = np.array([[7] * 4, [15] * 4])
    b = np.full((4, 1), 7)
    got = units.gemm_fp4_int4(codes, 0, b, signed_b=True, width=16)
    assert got.acc.ravel().tolist() == [32767, -32768]
    assert got.overflow.all()


@pytest.mark.parametrize("call, error, message", [
    (lambda: units.gemm_int4(np.zeros((2, 3), int), np.zeros((4, 2), int)), ValueError, "inner dimensions differ"),
    (lambda: units.gemm_int4(np.zeros((2, 0), int), np.zeros((0, 2), int)), ValueError, "K must be at least 1"),
    (lambda: units.gemm_int4(np.array([[16]]), np.array([[1]])), ValueError, "a must lie in 0..15, got 16"),
    (lambda: units.gemm_int4(np.array([[1]]), np.array([[8]])), ValueError, "b must lie in -8..7, got 8"),
    (lambda: units.gemm_int4(np.array([[-1]]), np.array([[1]]), signed_a="yes"), TypeError, "signed_a must be a bool"),
    (lambda: units.gemm_int4(np.array([[1]]), np.array([[1]]), width=7), ValueError, "width must lie in 8..64, got 7"),
    (lambda: units.gemm_int4(np.array([[1]]), np.array([[1]]), width=65), ValueError, "got 65"),
    (lambda: units.gemm_fp4_int4(np.array([[1]]), 3, np.array([[1]])), ValueError, "phase must lie in 0..1, got 3"),
    (lambda: units.int4_mac(np.array([200]), 1, 1, True, 8), ValueError, "acc must lie in -128..127, got 200"),
    (lambda: units.int4_product(np.array([1.5]), 1), TypeError, "a must be an integer array, got dtype float64"),
])
def test_bad_input(call, error, message):
    with pytest.raises(error, match=message.replace(".", r"\.")):
        call()
