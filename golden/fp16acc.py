"""FP16 chunked accumulation: the GEMM backend of the fp16acc ablation (what the exact accumulator buys).

The products stay exact (golden.units operand checks, golden.fp4 multipliers); only the sum changes:
K is cut into chunks of ``chunk`` terms, each chunk is summed from +0 in ascending k with a rounding to
binary16 (nearest, ties to even) after every addition, and the chunk sums are then added in order the
same way (the paper's chunk-based FP16 accumulation). FP4 x INT4 products are accumulated in units of
2**s (the code multiplier times 2**-13, so every product is an exact binary16 value from 2**-13 to 15)
and the result is returned in the usual units of 2**(s - 13), so the layer's dequantization is unchanged.

Two shortcuts keep this fast and exact:

- A chunk sum needs no rounding when every partial sum is exactly representable: all products of a row
  are multiples of q (the lowest set bit of the row's integer operands times the unit), so every partial
  sum is too, and it is a binary16 value if its magnitude is below 2048 q (11 significant bits) and
  65504. Where the bound sum_k |a||b| proves that, the chunk sum is one exact float64 matmul; only the
  other elements are accumulated term by term.
- Rounding to binary16 is done on float32 bit patterns (:func:`round_to_binary16`). float32 arithmetic
  is enough: a product of a binary16 value and a 4-bit integer is exact in float32, and float32 has
  24 >= 2 * 11 + 2 significand bits, so rounding a float32 sum of two binary16 values to binary16 equals
  rounding the exact sum (Figueroa 1995; see golden/fp16.py).
"""

import numpy as np

from . import fp4, units
from ._checks import check_int, check_matmul_shapes

CHUNK = 64
FP4_UNIT_SHIFT = 13
FP16_MAX = 65504.0
FP16_MIN_NORMAL = 2.0**-14
FP16_DIGITS = 11


def round_to_binary16(x):
    """Round float32 values to the nearest binary16 value (ties to even), as float32; +-Inf beyond range."""
    x = np.asarray(x, np.float32)
    rounded = _round_normal(x, np.empty(x.shape, np.uint32))
    tiny = np.abs(x) < FP16_MIN_NORMAL
    if tiny.any():      # subnormal binary16: a fixed quantum of 2**-24, the float32 ulp in [0.5, 1)
        rounded = np.where(tiny, np.copysign((x + np.float32(0.75)) - np.float32(0.75), x), rounded)
    huge = np.abs(rounded) > FP16_MAX
    if huge.any():
        rounded = np.where(huge, np.copysign(np.float32(np.inf), x), rounded)
    return rounded


def _round_normal(x, scratch):
    """Round float32 ``x`` to 11 significant bits, ties to even, into ``scratch`` (viewed as float32).

    Correct for results in the normal binary16 range; adds half an ulp (minus one unless the kept LSB is
    odd, for ties to even) to the bit pattern and clears the 13 dropped fraction bits.
    """
    bits = x.view(np.uint32)
    np.right_shift(bits, 13, out=scratch)
    scratch &= np.uint32(1)
    scratch += np.uint32(0x0FFF)
    scratch += bits
    scratch &= np.uint32(0xFFFFE000)
    return scratch.view(np.float32)


def _row_quantum(a):
    """Per row: the lowest set bit over the row's non-zero integers (0 for an all-zero row)."""
    low = np.where(a != 0, a & -a, np.int64(1) << 62).min(axis=1)
    return np.where(low == np.int64(1) << 62, 0, low)


def chunked_fp16_matmul(a, b, unit=1.0, chunk=CHUNK):
    """``(a * unit) @ b`` with chunked binary16 accumulation, as float32 (binary16 values).

    a (M, K) and b (K, N) are int64 arrays; every product ``a*unit*b`` must be an exact binary16 value.
    """
    chunk = check_int("chunk", chunk, 1, 1 << 20)
    a, b = np.asarray(a, np.int64), np.asarray(b, np.int64)
    m, k = a.shape
    total = np.zeros((m, b.shape[1]), np.float32)
    with np.errstate(over="ignore", invalid="ignore"):
        for start in range(0, k, chunk):
            total = round_to_binary16(total + _chunk_sum(a[:, start:start + chunk], b[start:start + chunk], unit))
    return total


def _chunk_sum(a, b, unit):
    """Binary16 sum from +0 over the chunk's k, rounding after every addition (see module docstring)."""
    exact = (a.astype(np.float64) @ b.astype(np.float64)) * unit
    bound = (np.abs(a).astype(np.float64) @ np.abs(b).astype(np.float64)) * unit
    quantum = _row_quantum(a).astype(np.float64)[:, None] * unit
    risky = ((bound >= 2.0**FP16_DIGITS * quantum) & (bound > 0)) | (bound > FP16_MAX)
    result = exact.astype(np.float32)
    if risky.any():
        rows, cols = np.nonzero(risky)
        # (k, element) products in float32: a * unit and b are exact there, and so is their product
        terms = (a.astype(np.float32) * np.float32(unit))[rows, :].T * b.astype(np.float32)[:, cols]
        result[rows, cols] = _sequential_sum(terms, normal_only=unit >= FP16_MIN_NORMAL
                                             and bound[risky].max() <= FP16_MAX)
    return result


def _sequential_sum(terms, normal_only):
    """Binary16 running sum over axis 0; ``normal_only``: no partial sum can be subnormal or overflow."""
    acc = np.zeros(terms.shape[1], np.float32)
    scratch = np.empty(terms.shape[1], np.uint32)
    for term in terms:
        acc += term
        if normal_only:
            acc, scratch = _round_normal(acc, scratch), acc.view(np.uint32)
        else:
            acc = round_to_binary16(acc)
    return acc


class Fp16ChunkBackend:
    """GEMM backend with chunked FP16 accumulation; ``acc`` is float64, ``overflow`` marks +-Inf/NaN sums.

    The ``width`` arguments are accepted for interface compatibility and ignored (there is no integer
    accumulator).
    """

    def __init__(self, chunk=CHUNK):
        self.chunk = check_int("chunk", chunk, 1, 1 << 20)

    def gemm_int4(self, a, b, signed_a=False, width=units.FWD_WIDTH):
        a, b = units.int4_operand("a", a, signed_a), units.int4_operand("b", b, True)
        check_matmul_shapes("a", a, "b", b)
        return self._result(chunked_fp16_matmul(a, b, 1.0, self.chunk), 1.0)

    def gemm_fp4_int4(self, codes, phase, b, signed_b=True, width=units.BWD_WIDTH):
        multipliers = fp4.code_multiplier(codes, phase)
        b = units.int4_operand("b", b, signed_b)
        check_matmul_shapes("codes", multipliers, "b", b)
        unit = 2.0**-FP4_UNIT_SHIFT
        return self._result(chunked_fp16_matmul(multipliers, b, unit, self.chunk), 1 / unit)

    @staticmethod
    def _result(total, scale):
        acc = total.astype(np.float64) * scale
        return units.Accumulated(acc, ~np.isfinite(acc))
