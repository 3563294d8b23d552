"""Radix-4 logarithmic FP4 gradient format (docs/numerics.md, sections 3-6).

A code is 4 bits: bit 3 is the sign, bits 2..0 the exponent field ``e``. ``e = 0`` is zero;
for ``e >= 1`` the magnitude is ``2**(s + 2*(e - 7) - phase)`` where ``s`` is the layer's
GradScale exponent and ``phase`` the two-phase-rounding (TPR) phase.
"""

import functools
from typing import NamedTuple

import numpy as np

from ._checks import as_float16, as_int_array, check_int

E_MAX = 7
SIGN_BIT = 0b1000
S_MIN, S_MAX = -32, 31
PHASES = (0, 1)


class QuantFlags(NamedTuple):
    """Per-element flags of :func:`quantize`."""

    overflow: np.ndarray  #: saturation changed the result (|x| >= 2.5 * top level, or +-Inf)
    invalid: np.ndarray   #: the input was NaN (the code is 0)


class GradScaleResult(NamedTuple):
    """What the GradScale hardware reports for one tensor."""

    s: int                #: smallest integer with 2**s >= max|g| over the finite values (0 if none is non-zero)
    nonfinite: bool       #: some value was NaN or +-Inf (ignored by the max)


def check_scale(s):
    return check_int("s", s, S_MIN, S_MAX)


def check_phase(phase):
    return check_int("phase", phase, 0, 1)


def level_exponent(e, s, phase):
    """log2 of the magnitude of exponent field ``e`` (1..7)."""
    return s + 2 * (np.asarray(e) - E_MAX) - phase


def thresholds(s, phase):
    """The 7 rounding thresholds on |x|: |x| >= thresholds[i] means e > i.

    thresholds[0] is half the smallest level (flush below it); thresholds[e] for e = 1..6 is the
    midpoint 2.5 * level(e) between level(e) and level(e + 1) = 4 * level(e). All are exact in float64.
    """
    s, phase = check_scale(s), check_phase(phase)
    smallest = 2.0 ** level_exponent(1, s, phase)
    levels = smallest * 4.0 ** np.arange(E_MAX - 1)
    return np.concatenate(([smallest / 2], 2.5 * levels))


def quantize(x, s, phase):
    """Quantize float16 gradients onto the phase-``phase`` grid of scale ``s``.

    Round to the nearest level in linear value, ties away from zero; flush to code 0 below half the
    smallest level; saturate at e = 7. Returns ``(codes, flags)`` with ``codes`` uint8 of x's shape.
    """
    x = as_float16("x", x)
    packed = np.take(_quantize_table(check_scale(s), check_phase(phase)), x.view(np.uint16))
    return packed & 0b1111, QuantFlags(overflow=(packed & _OVERFLOW) != 0, invalid=packed == _INVALID)


_OVERFLOW, _INVALID = 0b10000, 0b100000


@functools.lru_cache(maxsize=128)
def _quantize_table(s, phase):
    """:func:`quantize` of every float16 bit pattern, packed as code | overflow << 4 | invalid << 5.

    quantize is elementwise, so looking its result up by bit pattern is exact; the table is built by
    :func:`_quantize_values`, the definition.
    """
    codes, flags = _quantize_values(np.arange(1 << 16, dtype=np.uint16).view(np.float16), s, phase)
    table = codes | flags.overflow.astype(np.uint8) << 4 | flags.invalid.astype(np.uint8) << 5
    table.flags.writeable = False
    return table


def _quantize_values(x, s, phase):
    """The rounding rule of :func:`quantize` on float16 ``x``, computed with the thresholds."""
    limits = thresholds(s, phase)
    mag = np.abs(x.astype(np.float64))
    invalid = np.isnan(mag)
    mag = np.where(invalid, 0.0, mag)
    e = np.searchsorted(limits, mag, side="right").astype(np.uint8)
    top_limit = 2.5 * 2.0 ** level_exponent(E_MAX, s, phase)
    overflow = mag >= top_limit
    sign = np.signbit(x) & (e > 0)
    codes = np.where(sign, SIGN_BIT, 0).astype(np.uint8) | e
    return codes, QuantFlags(overflow=overflow, invalid=invalid)


def code_multiplier(codes, phase):
    """Signed integer value of each code in units of 2**(s - 13): +-2**(2e - 1 - phase), 0 for e = 0.

    Code 0b1000 (negative zero) is never produced by :func:`quantize`; like the hardware, it reads as 0.
    """
    codes = as_int_array("codes", codes, 0, 15)
    return np.asarray(_MULTIPLIERS[check_phase(phase)][codes])


def _multipliers(phase):
    """code_multiplier of the 16 codes (int64)."""
    codes = np.arange(16)
    e = codes & 0b111
    magnitude = np.where(e > 0, np.left_shift(1, np.maximum(2 * e - 1 - phase, 0)), 0)
    return np.where(codes & SIGN_BIT, -magnitude, magnitude).astype(np.int64)


_MULTIPLIERS = tuple(_multipliers(phase) for phase in PHASES)


def decode(codes, s, phase):
    """The real value of each code as float64 (exact)."""
    s = check_scale(s)
    return code_multiplier(codes, phase) * 2.0 ** (s - 13)


def grad_scale_unit(g):
    """Bit-level model of the GradScale reducer: scale of the finite values plus a non-finite flag."""
    g = as_float16("g", g)
    # |g| as bit patterns: ordered like the magnitudes, 0x7C00 is Inf and above it NaN
    mag = g.view(np.uint16) & np.uint16(0x7FFF)
    top = int(mag.max(initial=0))
    nonfinite = top >= _FLOAT16_INF
    if nonfinite:
        top = int(np.where(mag < _FLOAT16_INF, mag, 0).max(initial=0))
    peak = float(np.uint16(top).view(np.float16))
    if peak == 0.0:
        s = 0
    else:
        mantissa, exponent = np.frexp(peak)
        s = int(exponent) - 1 if mantissa == 0.5 else int(exponent)
    return GradScaleResult(s=s, nonfinite=nonfinite)


_FLOAT16_INF = 0x7C00


def grad_scale(g):
    """GradScale: the smallest integer s with 2**s >= max|g| (0 for an all-zero tensor).

    Raises ValueError for NaN/Inf gradients (the hardware flags them instead, see grad_scale_unit).
    """
    result = grad_scale_unit(g)
    if result.nonfinite:
        bad = np.asarray(g).flat[np.flatnonzero(~np.isfinite(np.asarray(g, dtype=np.float64)))[0]]
        raise ValueError(f"g contains a non-finite gradient ({bad}); GradScale is undefined")
    return result.s
