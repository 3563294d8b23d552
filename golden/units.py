"""Bit-level models of the hardware units (docs/numerics.md, section 7).

Everything here is integer arithmetic on int64 arrays; the RTL must match these results bit for bit.
Accumulators are W-bit two's complement, add terms in ascending k and clamp after every addition;
``overflow`` is sticky: it is set when any clamp changed the running sum.
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
    partial = np.cumsum(terms, axis=-1)
    unsafe = ((partial < lo) | (partial > hi)).any(axis=-1)
    acc = partial[..., -1] if terms.shape[-1] else np.zeros(terms.shape[:-1], np.int64)
    acc, overflow = np.array(acc, dtype=np.int64), np.zeros(acc.shape, bool)
    if unsafe.any():
        acc[unsafe], overflow[unsafe] = _clamped_sum(terms[unsafe], lo, hi)
    return Accumulated(acc, overflow)


def _clamped_sum(terms, lo, hi):
    """Sequential clamp over the last axis, vectorised over the rest (only for rows that saturate)."""
    acc = np.zeros(terms.shape[:-1], np.int64)
    overflow = np.zeros(terms.shape[:-1], bool)
    for k in range(terms.shape[-1]):
        total = acc + terms[..., k]
        acc = np.clip(total, lo, hi)
        overflow |= acc != total
    return acc, overflow


def _gemm(a_values, b_values, width):
    """Exact saturating GEMM of integer matrices; saturating entries are re-run sequentially."""
    lo, hi = acc_limits(width)
    # float64 matmul is exact here: every partial sum is an integer below 2**53 (checked by the bound).
    bound = np.abs(a_values).astype(np.float64) @ np.abs(b_values).astype(np.float64)
    if bound.size and bound.max() >= 2.0**53:
        raise ValueError("GEMM too large to evaluate exactly")
    acc = (a_values.astype(np.float64) @ b_values.astype(np.float64)).astype(np.int64)
    overflow = np.zeros(acc.shape, bool)
    risky = bound > min(-lo, hi)
    if risky.any():
        rows, cols = np.nonzero(risky)
        terms = a_values[rows, :] * b_values[:, cols].T
        acc[rows, cols], overflow[rows, cols] = _clamped_sum(terms, lo, hi)
    return Accumulated(acc, overflow)


def gemm_int4(a, b, signed_a=False, width=FWD_WIDTH):
    """Y[m, n] = sum_k a[m, k] * b[k, n] with 4-bit a (signed or unsigned) and signed 4-bit b."""
    a, b = int4_operand("a", a, signed_a), int4_operand("b", b, True)
    check_matmul_shapes("a", a, "b", b)
    return _gemm(a, b, width)


def gemm_fp4_int4(codes, phase, b, signed_b=True, width=BWD_WIDTH):
    """Y[m, n] = sum_k fp4(codes[m, k]) * b[k, n] in units of 2**(s - 13)."""
    multipliers = fp4.code_multiplier(codes, phase)
    b = int4_operand("b", b, signed_b)
    check_matmul_shapes("codes", multipliers, "b", b)
    return _gemm(multipliers, b, width)
