"""Streaming FP16 -> radix-4 FP4 gradient quantizer, both TPR phases at once (golden.fp4.quantize)."""

from amaranth import Cat, Mux, Signal, signed
from amaranth.lib import data, stream
from amaranth.lib.wiring import In, Out

from golden.fp4 import E_MAX

from .fp16 import Fp16StreamUnit

InputLayout = data.StructLayout({"value": 16, "s": signed(6)})
OutputLayout = data.StructLayout({
    "code0": 4, "code1": 4, "overflow0": 1, "overflow1": 1, "invalid": 1,
})

# With L = floor(log2|x|), hi = (fraction of |x| above its leading one >= 1/4) and
# n = L - s + phase + 13:
#   |x| >= 2**(s - 13 - phase)  (half the smallest level)                  <=>  n >= 0
#   |x| >= 2.5 * level(e) = 5 * 2**(s + 2e - 15 - phase)  (e = 1..7)        <=>  n + hi >= 2e
# because |x| >= 5 * 2**k  <=>  L + hi >= k + 3 exactly (5 = 0b1.01 * 2**2), and |x| equal to a
# midpoint satisfies it (ties away from zero). So for n >= 0 the exponent field is
# e = max(1, ceil((n + hi) / 2)), and saturation changes the result (overflow) when
# n + hi >= 2 * E_MAX + 1. docs/rtl.md has the derivation.
FLUSH_OFFSET = 13
OVERFLOW_AT = 2 * E_MAX + 1
SCALED_SHAPE = signed(8)  # n = L - s + 13 lies in -42..60


class Radix4Quantizer(Fp16StreamUnit):
    """Quantizes one binary16 gradient per cycle to its phase-0 and phase-1 FP4 codes.

    Pure integer logic: the value's binary logarithm and two significand bits are compared with
    thresholds derived from ``s`` and the phase. Round to nearest level, ties away from zero,
    flush below half the smallest level, saturate at e = 7; NaN gives code 0 with ``invalid``,
    +-Inf gives +-top with both ``overflow`` flags.

    Two pipeline stages (decode, encode) with valid/ready; a stage holds its value while the
    next one is full and not draining, so back-pressure never loses or duplicates values.
    A value accepted in cycle t appears on ``o`` in cycle t + LATENCY when ``o`` is not stalled.

    Members
    -------
    i : In(stream.Signature(InputLayout))
        ``value``: binary16 bit pattern; ``s``: the layer's scale exponent, -32..31.
    o : Out(stream.Signature(OutputLayout))
        ``code0``/``code1``: FP4 codes (bit 3 sign, bits 2..0 exponent field) for phase 0/1;
        ``overflow0``/``overflow1``: saturation changed the code of that phase;
        ``invalid``: the value was NaN.
    """

    i: In(stream.Signature(InputLayout))
    o: Out(stream.Signature(OutputLayout))

    def stages(self, m, decode):

        # Stage 1: decoded value relative to the scale.
        full = Signal()
        sign, zero, inf, nan, hi = Signal(), Signal(), Signal(), Signal(), Signal()
        scaled = Signal(SCALED_SHAPE)
        drain = ~self.o.valid | self.o.ready
        advance = ~full | drain
        m.d.comb += self.i.ready.eq(advance)
        with m.If(advance):
            m.d.sync += [
                full.eq(self.i.valid),
                sign.eq(decode.sign),
                zero.eq(decode.zero),
                inf.eq(decode.inf),
                nan.eq(decode.nan),
                hi.eq(decode.frac != 0),
                scaled.eq(decode.log2 - self.i.payload.s + FLUSH_OFFSET),
            ]

        # Stage 2: both codes and flags, registered on the output stream.
        codes, overflows = [], []
        for phase in (0, 1):
            n = scaled + phase
            t = n + hi
            overflow = Signal(name=f"overflow{phase}")
            exp = Signal(3, name=f"exp{phase}")
            m.d.comb += overflow.eq(~zero & ~nan & (inf | (t >= OVERFLOW_AT)))
            with m.If(zero | nan | (~inf & (n < 0))):
                m.d.comb += exp.eq(0)
            with m.Elif(overflow):
                m.d.comb += exp.eq(E_MAX)
            with m.Else():
                m.d.comb += exp.eq(Mux(t == 0, 1, (t + 1) >> 1))
            codes.append(Cat(exp, sign & (exp != 0)))
            overflows.append(overflow)

        with m.If(drain):
            m.d.sync += [
                self.o.valid.eq(full),
                self.o.payload.code0.eq(codes[0]),
                self.o.payload.code1.eq(codes[1]),
                self.o.payload.overflow0.eq(overflows[0]),
                self.o.payload.overflow1.eq(overflows[1]),
                self.o.payload.invalid.eq(nan),
            ]
