"""IEEE binary16 multiply-accumulate: bit-level model of the Fp16Mac baseline PE (docs/numerics.md).

Operands and results are uint16 arrays of binary16 bit patterns. One MAC step is
``acc' = fp16(acc + fp16(a * b))``: the product and then the sum are each rounded once to
nearest, ties to even, with gradual underflow (subnormals) and IEEE Inf/NaN/signed-zero rules.

Why float64 gives exactly these roundings: a binary16 value is an integer of at most 11 bits
times a power of two in 2**-24 .. 2**5, so a product of two is an integer of at most 22 bits
times 2**-48 .. 2**10 and a sum of two spans at most 2**-24 .. 2**17 (41 bits). Both fit the
53-bit float64 significand, so the float64 product and sum are exact, and the one cast to
float16 is the only rounding. (numpy converts float64 to float16 directly; even a detour through
float32 would be harmless: products fit its 24 bits, and for sums 24 >= 2*11 + 2 makes a double
rounding innocuous, Figueroa 1995. tests/test_fp16_golden.py checks the casts against an
integer-only reference, including ties and near-ties.)

Conventions of the hardware (and so of this model):

- Every NaN result is the canonical quiet NaN ``CANONICAL_NAN`` (0x7E00); NaN inputs of any
  payload or sign are accepted, all NaNs are treated as quiet.
- An exact zero sum is +0 unless both addends are -0; a product's zero keeps the XOR sign.
- ``invalid`` flags an operation that creates a NaN from non-NaN operands (0 * Inf, Inf - Inf);
  ``overflow`` flags a finite-operand operation whose rounded result is +-Inf.
- A cleared accumulator holds +0, so the first term of a sum is ``fp16(+0 + product)``.
"""

from typing import NamedTuple

import numpy as np

from ._checks import as_int_array

CANONICAL_NAN = 0x7E00
POS_ZERO = 0x0000
EXP_MASK = 0x7C00
MAG_MASK = 0x7FFF

#: 64 directed operand patterns for corner-class sweeps (all pairs): signed zeros, subnormals,
#: the normal boundary, ties around one, products near under/overflow, Inf and NaNs of several payloads.
CORNER_PATTERNS = np.array([
    0x0000, 0x8000,                                                   # zeros
    0x0001, 0x0002, 0x0003, 0x0155, 0x01FF, 0x0200, 0x02AB, 0x03FF,   # subnormals
    0x8001, 0x8200, 0x83FF,
    0x0400, 0x0401, 0x07FF, 0x0800, 0x8400, 0x8401,                   # smallest normals
    0x0C00, 0x0C01, 0x13FF, 0x1400, 0x2000, 0x8C00,                   # products reach the subnormals
    0x3800, 0x3801, 0x3BFF, 0x3C00, 0x3C01, 0x3C02, 0x3DFF, 0x3E00,   # around one
    0x3FFF, 0x4000, 0xBBFF, 0xBC00, 0xBC01, 0xC000,
    0x3555, 0x4248, 0xC248, 0x4900, 0x57FF, 0x5800, 0x5BFF, 0x5C00,   # products reach the top
    0x5C01, 0xDC00,
    0x7401, 0x7800, 0x7A00, 0x7BFE, 0x7BFF, 0xF800, 0xFBFF,           # largest finite
    0x7C00, 0xFC00,                                                   # infinities
    0x7C01, 0x7D55, 0x7E00, 0x7FFF, 0xFC01, 0xFE00,                   # NaNs
], dtype=np.uint16)


class Fp16Flags(NamedTuple):
    """IEEE exception flags of one operation (or, sticky, of a sequence)."""

    invalid: np.ndarray   #: a NaN was created from non-NaN operands (0 * Inf, Inf - Inf)
    overflow: np.ndarray  #: finite operands gave a result rounded to +-Inf


class MacTrace(NamedTuple):
    """State of an Fp16Mac after each input cycle."""

    acc: np.ndarray       #: uint16 accumulator bit pattern
    invalid: np.ndarray   #: sticky ``invalid`` since the last clear
    overflow: np.ndarray  #: sticky ``overflow`` since the last clear


def as_bits(name, value):
    """Check an array of binary16 bit patterns (integers 0..0xFFFF) and return it as uint16."""
    return as_int_array(name, value, 0, 0xFFFF).astype(np.uint16)


def to_float64(bits):
    """Exact float64 value of each binary16 bit pattern."""
    return _values(as_bits("bits", bits))


def from_float64(x):
    """Round float64 values to binary16 (nearest, ties to even); NaN becomes ``CANONICAL_NAN``."""
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(over="ignore"):
        half = x.astype(np.float16)
    return np.where(np.isnan(half), np.uint16(CANONICAL_NAN), half.view(np.uint16))


def _values(bits):
    return bits.view(np.float16).astype(np.float64)


def _is_inf(bits):
    return (bits & MAG_MASK) == EXP_MASK


def _is_zero(bits):
    return (bits & MAG_MASK) == 0


def _is_finite(bits):
    return (bits & EXP_MASK) != EXP_MASK


def _mul(a, b):
    with np.errstate(invalid="ignore"):
        return from_float64(_values(a) * _values(b))


def _add(a, b):
    with np.errstate(invalid="ignore"):
        return from_float64(_values(a) + _values(b))


def _mul_flags(a, b, product):
    invalid = (_is_inf(a) & _is_zero(b)) | (_is_zero(a) & _is_inf(b))
    return Fp16Flags(invalid, _is_finite(a) & _is_finite(b) & _is_inf(product))


def _add_flags(a, b, total):
    invalid = _is_inf(a) & _is_inf(b) & ((a ^ b) != 0)
    return Fp16Flags(invalid, _is_finite(a) & _is_finite(b) & _is_inf(total))


def fp16_mul(a, b):
    """Correctly rounded binary16 product of bit patterns ``a`` and ``b``."""
    return _mul(as_bits("a", a), as_bits("b", b))


def fp16_add(a, b):
    """Correctly rounded binary16 sum of bit patterns ``a`` and ``b``."""
    return _add(as_bits("a", a), as_bits("b", b))


def mul_flags(a, b):
    """Flags raised by :func:`fp16_mul`."""
    a, b = as_bits("a", a), as_bits("b", b)
    return _mul_flags(a, b, _mul(a, b))


def add_flags(a, b):
    """Flags raised by :func:`fp16_add`."""
    a, b = as_bits("a", a), as_bits("b", b)
    return _add_flags(a, b, _add(a, b))


def fp16_mac(acc, a, b):
    """One MAC step ``fp16(acc + fp16(a * b))`` on bit patterns."""
    return mac_step(acc, a, b)[0]


def mac_step(acc, a, b):
    """One MAC step; returns ``(acc', Fp16Flags)`` with the flags of the multiply and the add ORed."""
    acc, a, b = as_bits("acc", acc), as_bits("a", a), as_bits("b", b)
    product = _mul(a, b)
    total = _add(acc, product)
    m, s = _mul_flags(a, b, product), _add_flags(acc, product, total)
    return total, Fp16Flags(m.invalid | s.invalid, m.overflow | s.overflow)


def _as_control(name, value):
    arr = np.asarray(value)
    if arr.dtype == np.bool_:
        return arr
    return as_int_array(name, value, 0, 1).astype(bool)


def mac_sequence(a, b, valid, clear):
    """Cycle model of Fp16Mac over the last axis (time), vectorised over the leading axes.

    Starting from the reset state (+0, flags clear), each cycle first applies ``clear`` (accumulator
    to +0, flags cleared) and then, if ``valid``, one :func:`mac_step`. Returns a :class:`MacTrace`
    of the state after each cycle, all of the broadcast shape of the inputs.
    """
    a, b, valid, clear = np.broadcast_arrays(as_bits("a", a), as_bits("b", b),
                                             _as_control("valid", valid), _as_control("clear", clear))
    if a.ndim == 0:
        raise ValueError("a, b, valid and clear must broadcast to at least one dimension (time), got scalars")
    products = _mul(a, b)   # products do not depend on the accumulator: all at once
    product_flags = _mul_flags(a, b, products)
    addends = _values(products)
    finite_addends = _is_finite(products)
    acc = np.zeros(a.shape[:-1])              # float64 holds every binary16 value exactly
    invalid, overflow = np.zeros(a.shape[:-1], bool), np.zeros(a.shape[:-1], bool)
    acc_trace = np.empty(a.shape)
    trace = MacTrace(None, np.empty(a.shape, bool), np.empty(a.shape, bool))
    with np.errstate(invalid="ignore", over="ignore"):
        for t in range(a.shape[-1]):
            cleared, on, addend = clear[..., t], valid[..., t], addends[..., t]
            acc = np.where(cleared, 0.0, acc)
            total = (acc + addend).astype(np.float16).astype(np.float64)
            sum_invalid = np.isinf(acc) & (acc == -addend)
            sum_overflow = np.isinf(total) & np.isfinite(acc) & finite_addends[..., t]
            acc = np.where(on, total, acc)
            invalid = (invalid & ~cleared) | (on & (product_flags.invalid[..., t] | sum_invalid))
            overflow = (overflow & ~cleared) | (on & (product_flags.overflow[..., t] | sum_overflow))
            acc_trace[..., t], trace.invalid[..., t], trace.overflow[..., t] = acc, invalid, overflow
    return trace._replace(acc=from_float64(acc_trace))


def dot(a, b, axis=-1):
    """FP16 dot product as the MAC computes it: from +0, terms in ascending order along ``axis``.

    Returns a :class:`MacTrace` holding the final accumulator and sticky flags (``axis`` removed).
    """
    a, b = np.broadcast_arrays(as_bits("a", a), as_bits("b", b))
    if a.ndim == 0:
        raise ValueError(f"a and b must have at least one dimension, got shape {a.shape}")
    a, b = np.moveaxis(a, axis, -1), np.moveaxis(b, axis, -1)
    if a.shape[-1] == 0:
        zeros = np.zeros(a.shape[:-1], bool)
        return MacTrace(np.full(a.shape[:-1], POS_ZERO, np.uint16), zeros, zeros)
    trace = mac_sequence(a, b, valid=True, clear=False)
    return MacTrace(trace.acc[..., -1], trace.invalid[..., -1], trace.overflow[..., -1])


def interleaved_mac_sequence(a, b, valid, clear, sums):
    """Cycle model of ``sums`` running sums fed in turn, as in the pipelined Fp16PipeMac.

    The input of cycle ``t`` (last axis) belongs to sum ``t mod sums``; each sum follows
    :func:`mac_sequence` over its own cycles. Returns a :class:`MacTrace` whose entry ``t`` is
    the state of sum ``t mod sums`` after cycle ``t``.
    """
    if isinstance(sums, bool) or not isinstance(sums, (int, np.integer)) or sums < 1:
        raise ValueError(f"sums must be a positive integer, got {sums!r}")
    a, b, valid, clear = np.broadcast_arrays(as_bits("a", a), as_bits("b", b),
                                             _as_control("valid", valid), _as_control("clear", clear))
    if a.ndim == 0:
        raise ValueError("a, b, valid and clear must broadcast to at least one dimension (time), got scalars")
    cycles = a.shape[-1]
    rounds = -(-cycles // sums)
    pad = [(0, 0)] * (a.ndim - 1) + [(0, rounds * sums - cycles)]

    def by_sum(values):   # (..., cycles) -> (..., sums, rounds): row k holds the cycles of sum k
        return np.swapaxes(np.pad(values, pad).reshape(*a.shape[:-1], rounds, sums), -1, -2)

    trace = mac_sequence(by_sum(a), by_sum(b), by_sum(valid), by_sum(clear))
    return MacTrace(*(np.swapaxes(field, -1, -2).reshape(*a.shape[:-1], rounds * sums)[..., :cycles]
                      for field in trace))
