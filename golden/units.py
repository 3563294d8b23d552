"""Bit-level models of the hardware units (docs/numerics.md, section 7).

Results are integers (int64 arrays); the RTL must match them bit for bit. Accumulators are W-bit two's
complement, add terms in ascending k and clamp after every addition; ``overflow`` is sticky: it is set
when any clamp changed the running sum.

The GEMMs run as one float32 or float64 matmul when a bound on every partial sum proves that no clamp
can fire and that every partial sum is an exactly representable integer (then the summation order does
not matter); only otherwise do they sum term by term (tests/test_golden_units_fastpath.py).
"""

from typing import NamedTuple

import numpy as np

from . import fp4
from ._checks import as_int_array, check_bool, check_int, check_matmul_shapes

WIDTH_MIN, WIDTH_MAX = 8, 64
FWD_WIDTH = 24
BWD_WIDTH = 32


class Accumulated(NamedTuple):
    acc: np.ndarray       #: int64 accumulator values
    overflow: np.ndarray  #: bool, sticky saturation flag


def acc_limits(width):
    width = check_int("width", width, WIDTH_MIN, WIDTH_MAX)
    return -(1 << (width - 1)), (1 << (width - 1)) - 1


def int4_operand(name, value, signed):
    """Check a 4-bit operand array: signed -8..7 or unsigned 0..15."""
    lo, hi = (-8, 7) if check_bool(f"signed_{name}", signed) else (0, 15)
    return as_int_array(name, value, lo, hi)


def int4_product(a, b, signed_a=True):
    """Exact product of 4-bit operand A (signed or unsigned) and signed 4-bit operand B."""
    return int4_operand("a", a, signed_a) * int4_operand("b", b, True)


def shift_product(codes, phase, b, signed_b=True):
    """Exact FP4 x INT4 product in units of 2**(s - 13): +-(b << (2e - 1 - phase)), 0 for e = 0."""
    return fp4.code_multiplier(codes, phase) * int4_operand("b", b, signed_b)


#: Bit position of the second 4-bit operand in the packed operand of :func:`int4_pair_products`.
PAIR_SHIFT = 8


def int4_pair_products(a0, a1, b, signed_a=True):
    """The products ``a0*b`` and ``a1*b`` from one multiply, as a DSP-packed pair of MACs forms them.

    P = (a0 + a1 * 2**8) * b. Every INT4 product lies in -120..120, so the low 8 bits of P read as
    two's complement are a0*b exactly; P >> 8 (floor) is a1*b minus 1 when that low part is
    negative (the borrow), which the hardware adds back as the carry-in of the second sum.
    Returns ``(p0, p1)`` as int64 arrays; equal to ``int4_product`` of each operand.
    """
    a0 = int4_operand("a0", a0, signed_a)
    a1 = int4_operand("a1", a1, signed_a)
    packed = (a0 + a1 * (1 << PAIR_SHIFT)) * int4_operand("b", b, True)
    half = 1 << (PAIR_SHIFT - 1)
    low = ((packed + half) & ((1 << PAIR_SHIFT) - 1)) - half
    return low, (packed >> PAIR_SHIFT) + (low < 0)


def saturate(value, width):
    """Clamp to the W-bit two's-complement range; returns ``(clamped, changed)``."""
    lo, hi = acc_limits(width)
    value = np.asarray(value, dtype=np.int64)
    clamped = np.clip(value, lo, hi)
    return clamped, clamped != value


def int4_mac(acc, a, b, signed_a, width):
    """One MAC step: ``saturate(acc + a*b)``; returns ``(acc, overflowed_now)``."""
    lo, hi = acc_limits(width)
    acc = as_int_array("acc", acc, lo, hi)
    return saturate(acc + int4_product(a, b, signed_a), width)


def shift_mac(acc, codes, phase, b, signed_b, width):
    """One shift-MAC step: ``saturate(acc + shift_product(codes, phase, b))``."""
    lo, hi = acc_limits(width)
    acc = as_int_array("acc", acc, lo, hi)
    return saturate(acc + shift_product(codes, phase, b, signed_b), width)


def accumulate(terms, width, axis=-1):
    """Saturating sum of ``terms`` along ``axis`` in ascending order, clamping after every addition."""
    terms = np.moveaxis(np.asarray(terms, dtype=np.int64), axis, -1)
    lo, hi = acc_limits(width)
    if terms.shape[-1] and np.abs(terms).max() * terms.shape[-1] >= 1 << 62:
        raise ValueError(f"terms too large to accumulate exactly in int64 (K = {terms.shape[-1]})")
    return Accumulated(*_saturating_sum(terms, lo, hi))


def _saturating_sum(terms, lo, hi):
    """Clamped ascending sum over the last axis; the sequential clamp runs only where a prefix sum
    leaves [lo, hi] (elsewhere no clamp fires and the plain sum is the result)."""
    partial = np.cumsum(terms, axis=-1)
    unsafe = ((partial < lo) | (partial > hi)).any(axis=-1)
    acc = partial[..., -1] if terms.shape[-1] else np.zeros(terms.shape[:-1], np.int64)
    acc, overflow = np.array(acc, dtype=np.int64), np.zeros(acc.shape, bool)
    if unsafe.any():
        acc[unsafe], overflow[unsafe] = _clamped_sum(terms[unsafe], lo, hi)
    return acc, overflow


def _clamped_sum(terms, lo, hi):
    """Sequential clamp over the last axis, vectorised over the rest (only for rows that saturate)."""
    acc = np.zeros(terms.shape[:-1], np.int64)
    overflow = np.zeros(terms.shape[:-1], bool)
    for k in range(terms.shape[-1]):
        total = acc + terms[..., k]
        acc = np.clip(total, lo, hi)
        overflow |= acc != total
    return acc, overflow


F32_EXACT = 1 << 24     # every integer of magnitude <= 2**24 is a float32, ...
F64_EXACT = 1 << 53     # ... and <= 2**53 a float64
_RISKY_TERMS = 1 << 22  # int64 terms materialised at once by the sequential path


def matmul_dtype(bound, width):
    """Float dtype whose matmul gives the exact saturating GEMM when no partial sum exceeds ``bound``.

    float32 below 2**24, float64 below 2**53, provided the W-bit accumulator cannot saturate
    (``bound`` <= its maximum, so no clamp can fire); None otherwise (the sequential path is needed).
    Any summation order is then exact, so the BLAS blocking does not matter.
    """
    if bound > acc_limits(width)[1]:
        return None
    if bound < F32_EXACT:
        return np.float32
    return np.float64 if bound < F64_EXACT else None


def _abs_max(values):
    """max |values| as a Python int (0 for an empty array)."""
    return max(int(values.max(initial=0)), -int(values.min(initial=0)))


def _abs_sums(values, axis):
    """Exact sums of |values| along ``axis`` as int64 (values are small integers, possibly as floats)."""
    return np.abs(values).astype(np.int64).sum(axis=axis)


def partial_sum_bound(a, b):
    """An int bounding |any partial sum| (any subset of the k terms) of every entry of ``a @ b``.

    The cheap max|a|*max|b|*K first; when that is not small enough for a float32 matmul, the tighter
    min(max_m sum_k |a[m, k]| * max|b|, max|a| * max_n sum_k |b[k, n]|) (still O(MK + KN)).
    """
    a_max, b_max = _abs_max(a), _abs_max(b)
    bound = a_max * b_max * a.shape[1]
    if bound >= F32_EXACT and a.size and b.size:
        bound = min(bound, int(_abs_sums(a, 1).max()) * b_max, a_max * int(_abs_sums(b, 0).max()))
    return bound


def _gemm(a, b, width):
    """Exact saturating GEMM of checked integer-valued matrices (int or float dtype, |values| < 2**53).

    One float matmul where :func:`partial_sum_bound` proves it exact and saturation-free; otherwise
    :func:`_gemm_reference`.
    """
    dtype = matmul_dtype(partial_sum_bound(a, b), width)
    if dtype is None:
        return _gemm_reference(a.astype(np.int64), b.astype(np.int64), width)
    acc = (a.astype(dtype, copy=False) @ b.astype(dtype, copy=False)).astype(np.int64)
    return Accumulated(acc, np.zeros(acc.shape, bool))


def _gemm_reference(a_values, b_values, width):
    """Exact saturating GEMM of int64 matrices; entries whose bound allows saturation are summed term by term."""
    lo, hi = acc_limits(width)
    # float64 matmul is exact here: every partial sum is an integer below 2**53 (checked by the bound).
    bound = np.abs(a_values).astype(np.float64) @ np.abs(b_values).astype(np.float64)
    if bound.size and bound.max() >= 2.0**53:
        raise ValueError("GEMM too large to evaluate exactly")
    acc = (a_values.astype(np.float64) @ b_values.astype(np.float64)).astype(np.int64)
    overflow = np.zeros(acc.shape, bool)
    rows, cols = np.nonzero(bound > min(-lo, hi))
    step = max(1, _RISKY_TERMS // a_values.shape[1])
    for start in range(0, len(rows), step):
        r, c = rows[start:start + step], cols[start:start + step]
        acc[r, c], overflow[r, c] = _saturating_sum(a_values[r, :] * b_values[:, c].T, lo, hi)
    return Accumulated(acc, overflow)


def _checked_operand(name, value, lo, hi):
    """``value`` as an integer array in lo..hi, in its own dtype when that is already one (else int64).

    Errors are those of :func:`golden._checks.as_int_array`.
    """
    arr = np.asarray(value)
    if arr.dtype.kind in "iu" and arr.size and arr.max() <= hi and (arr.dtype.kind == "u" or arr.min() >= lo):
        return arr
    return as_int_array(name, arr, lo, hi)


def _int4_operand(name, value, signed):
    lo, hi = (-8, 7) if check_bool(f"signed_{name}", signed) else (0, 15)
    return _checked_operand(name, value, lo, hi)


def gemm_int4(a, b, signed_a=False, width=FWD_WIDTH):
    """Y[m, n] = sum_k a[m, k] * b[k, n] with 4-bit a (signed or unsigned) and signed 4-bit b."""
    a, b = _int4_operand("a", a, signed_a), _int4_operand("b", b, True)
    check_matmul_shapes("a", a, "b", b)
    return _gemm(a, b, width)


# fp4.code_multiplier of every code, per phase, as float32 (exact: |multiplier| <= 2**13)
_FP4_MULTIPLIERS = tuple(fp4.code_multiplier(np.arange(16), phase).astype(np.float32) for phase in fp4.PHASES)


def _lookup(table, codes):
    """``table[codes]`` for codes already checked to be in range; transposed matrices are read as stored."""
    if codes.ndim == 2 and codes.T.flags.c_contiguous and not codes.flags.c_contiguous:
        return np.take(table, codes.T, mode="wrap").T
    return np.take(table, codes, mode="wrap")


def gemm_fp4_int4(codes, phase, b, signed_b=True, width=BWD_WIDTH):
    """Y[m, n] = sum_k fp4(codes[m, k]) * b[k, n] in units of 2**(s - 13)."""
    codes = _checked_operand("codes", codes, 0, 15)
    multipliers = _lookup(_FP4_MULTIPLIERS[fp4.check_phase(phase)], codes)
    b = _int4_operand("b", b, signed_b)
    check_matmul_shapes("codes", multipliers, "b", b)
    return _gemm(multipliers, b, width)
