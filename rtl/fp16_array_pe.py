"""Processing element of the FP16 training array: one binary16 MAC per cycle, plus a shadow.

The same ports and protocol as :class:`rtl.pe.ProcessingElement` (docs/architecture.md, "The PE
seam") with 16-bit operands and no mode inputs: for FP16 the three GEMMs of a training step are
the same multiply-add on different operands. The arithmetic is :class:`rtl.fp16_mac.Fp16Mac`'s,
bit-exact to :mod:`golden.fp16` (product, then sum, each rounded to nearest even; subnormals,
Inf, canonical NaN, sticky ``invalid``/``overflow``): a two-stage multiplier and a one-cycle
adder around the running sum.
"""

from amaranth import Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .fp16_mac import Fp16Adder, Fp16Multiplier

#: A finished sum: the binary16 pattern and its sticky flags.
SHADOW_LAYOUT = data.StructLayout({"acc": 16, "invalid": 1, "overflow": 1})


class Fp16ProcessingElement(wiring.Component):
    """One output of an output-stationary FP16 array: a binary16 MAC, operand registers, a shadow.

    Timing: operands on ``a``/``b`` and their ``valid``/``first`` in cycle t (they travel with the
    two-cycle product); the sum including that term is visible to ``capture`` in t + 3
    (``SUM_LATENCY``) and in ``shadow`` from t + 4.

    Members
    -------
    a, b : In(16)
        Operand bit patterns (IEEE binary16).
    valid : In(1)
        Add the product of this cycle's operands to the sum.
    first : In(1)
        Start a new sum (+0, flags cleared); with ``valid`` the product is its first term.
    capture : In(1)
        Copy the running sum and its flags into ``shadow``.
    shift : In(1)
        Load ``shadow`` from ``shift_in`` (when not capturing): the output shift chain.
    shift_in : In(SHADOW_LAYOUT)
        The neighbour's ``shadow``.
    a_out, b_out : Out(16)
        ``a`` and ``b`` delayed by one cycle, for the next PE of the row and of the column.
    shadow : Out(SHADOW_LAYOUT)
        A finished sum waiting to be shifted out.
    """

    SUM_LATENCY = Fp16Multiplier.LATENCY + 1

    a: In(16)
    b: In(16)
    valid: In(1)
    first: In(1)
    capture: In(1)
    shift: In(1)
    shift_in: In(SHADOW_LAYOUT)
    a_out: Out(16)
    b_out: Out(16)
    shadow: Out(SHADOW_LAYOUT)

    def elaborate(self, platform):
        m = Module()
        m.d.sync += [self.a_out.eq(self.a), self.b_out.eq(self.b)]
        m.submodules.multiplier = multiplier = Fp16Multiplier()
        m.submodules.adder = adder = Fp16Adder()
        valid, first = self.valid, self.first
        for stage in range(Fp16Multiplier.LATENCY):
            valid_next, first_next = Signal(name=f"valid_{stage + 1}"), Signal(name=f"first_{stage + 1}")
            m.d.sync += [valid_next.eq(valid), first_next.eq(first)]
            valid, first = valid_next, first_next
        acc = Signal(SHADOW_LAYOUT)
        m.d.comb += [
            multiplier.a.eq(self.a),
            multiplier.b.eq(self.b),
            adder.x.eq(Mux(first, 0, acc.acc)),
            adder.y.eq(multiplier.p),
        ]
        step_invalid = valid & (multiplier.invalid | adder.invalid)
        step_overflow = valid & (multiplier.overflow | adder.overflow)
        with m.If(valid):
            m.d.sync += acc.acc.eq(adder.s)
        with m.Elif(first):
            m.d.sync += acc.acc.eq(0)
        m.d.sync += [
            acc.invalid.eq(Mux(first, 0, acc.invalid) | step_invalid),
            acc.overflow.eq(Mux(first, 0, acc.overflow) | step_overflow),
        ]
        with m.If(self.capture):
            m.d.sync += self.shadow.eq(acc)
        with m.Elif(self.shift):
            m.d.sync += self.shadow.eq(self.shift_in)
        return m
