"""Radix-2 FP4 gradients [1,3,0]: the format of the radix-2 ablation (not part of the hardware contract).

Same code layout as :mod:`golden.fp4` (bit 3 sign, bits 2..0 exponent field ``e``, ``e = 0`` is zero),
but the magnitude of ``e >= 1`` is ``2**(s + e - 7)``: the grid {2**s, 2**(s-1), ..., 2**(s-6)} spans
2**6 where radix-4 spans 2**12. Rounding follows golden.fp4: nearest level in linear value, ties away
from zero (midpoint 1.5 g between g and 2 g, g1 / 2 below the smallest level), saturation at e = 7,
``overflow`` where saturation changed the result, NaN gives code 0 and ``invalid``.

Every radix-2 value is also a radix-4 value in units of 2**(s - 13) (2**(e + 6)), of phase 0 when e + 6
is odd and of phase 1 when it is even, so a radix-2 GEMM runs as two radix-4 GEMMs through the
unchanged golden.units (:func:`as_radix4_pair`, :class:`Radix2Gradients`).
"""

import numpy as np

from . import fp4
from ._checks import as_float16, as_int_array
from .units import BWD_WIDTH, Accumulated

E_MAX = 7


def thresholds(s):
    """The 7 rounding thresholds on |x|: |x| >= thresholds[i] means e > i."""
    s = fp4.check_scale(s)
    levels = 2.0 ** (s - 6 + np.arange(E_MAX - 1))
    return np.concatenate(([levels[0] / 2], 1.5 * levels))


def quantize(x, s):
    """Quantize float16 gradients onto the radix-2 grid of scale ``s``; returns ``(codes, QuantFlags)``."""
    x = as_float16("x", x)
    limits = thresholds(s)
    mag = np.abs(x.astype(np.float64))
    invalid = np.isnan(mag)
    mag = np.where(invalid, 0.0, mag)
    e = np.searchsorted(limits, mag, side="right").astype(np.uint8)
    overflow = mag >= 1.5 * 2.0**s
    sign = np.signbit(x) & (e > 0)
    codes = np.where(sign, fp4.SIGN_BIT, 0).astype(np.uint8) | e
    return codes, fp4.QuantFlags(overflow=overflow, invalid=invalid)


def decode(codes, s):
    """The real value of each radix-2 code as float64 (exact)."""
    codes = as_int_array("codes", codes, 0, 15)
    s = fp4.check_scale(s)
    e = codes & 0b111
    magnitude = np.where(e > 0, 2.0 ** (s + e - E_MAX), 0.0)
    return np.where(codes & fp4.SIGN_BIT, -magnitude, magnitude)


def as_radix4_pair(codes):
    """Split radix-2 codes into ``(phase-0 codes, phase-1 codes)`` of radix-4 with the same values.

    Each element is non-zero in at most one of the two; decode(codes, s) equals
    fp4.decode(pair[0], s, 0) + fp4.decode(pair[1], s, 1).
    """
    codes = as_int_array("codes", codes, 0, 15)
    e = codes & 0b111
    k = e + 6                              # log2 of the value in units of 2**(s - 13)
    odd = (k % 2 == 1) & (e > 0)
    even = (k % 2 == 0) & (e > 0)
    sign = codes & fp4.SIGN_BIT
    phase0 = np.where(odd, sign | ((k + 1) // 2), 0).astype(np.uint8)
    phase1 = np.where(even, sign | ((k + 2) // 2), 0).astype(np.uint8)
    return phase0, phase1


class Radix2Gradients:
    """Gradient format of the radix-2 ablation: one rounding (no TPR) feeds both backward GEMMs."""

    name = "radix2"
    phases = (0, 0)

    def quantize(self, g16, s, phase):
        return quantize(g16, s)

    def gemm(self, backend, codes, phase, b, signed_b, width=BWD_WIDTH):
        """Radix-2 GEMM as the sum of a phase-0 and a phase-1 radix-4 GEMM (exact: no term saturates)."""
        phase0, phase1 = as_radix4_pair(codes)
        first = backend.gemm_fp4_int4(phase0, 0, b, signed_b=signed_b, width=width)
        second = backend.gemm_fp4_int4(phase1, 1, b, signed_b=signed_b, width=width)
        return Accumulated(first.acc + second.acc, first.overflow | second.overflow)
