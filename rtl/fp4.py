"""Radix-4 FP4 gradient code layout (docs/numerics.md, section 3)."""

from amaranth.lib import data

#: One FP4 code: exponent field ``exp`` (0 means zero, 1..7 a level) and ``sign``, packed LSB first,
#: so the 4-bit value equals the integer code of ``golden.fp4`` (bit 3 = sign, bits 2..0 = exp).
Fp4Code = data.StructLayout({"exp": 3, "sign": 1})
