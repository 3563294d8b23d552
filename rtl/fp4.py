"""Radix-4 FP4 gradient code layout (docs/numerics.md, section 3) and its multiplier as a shift."""

from amaranth import Cat
from amaranth.lib import data

#: One FP4 code: exponent field ``exp`` (0 means zero, 1..7 a level) and ``sign``, packed LSB first,
#: so the 4-bit value equals the integer code of ``golden.fp4`` (bit 3 = sign, bits 2..0 = exp).
Fp4Code = data.StructLayout({"exp": 3, "sign": 1})

#: Largest shift amount: exp 7 in phase 0.
SHIFT_MAX = 13


def shift_amount(code, phase):
    """The left shift 2*exp - 1 - phase (0..13) that multiplies by a nonzero code's magnitude.

    Written as 2*(exp - 1) + (1 - phase): the phase is bit 0 and exp - 1 bits 3..1, no adder
    beyond the 3-bit decrement. Meaningless for exp == 0 (see :func:`is_nonzero`).
    """
    return Cat(~phase, (code.exp - 1)[:3])


def is_nonzero(code):
    """The code multiplies by a level, not by 0 (exp != 0; so code 0b1000 reads as 0)."""
    return code.exp.any()
