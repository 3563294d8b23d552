"""Processing element of the FP16 training array: one binary16 MAC per cycle, plus a shadow.

The same ports and protocol as :class:`rtl.pe.ProcessingElement` (docs/architecture.md, "The PE
seam") with 16-bit operands and no mode inputs: for FP16 the three GEMMs of a training step are
the same multiply-add on different operands. The arithmetic is :class:`rtl.fp16_mac.Fp16Mac`'s,
bit-exact to :mod:`golden.fp16` (product, then sum, each rounded to nearest even; subnormals,
Inf, canonical NaN, sticky ``invalid``/``overflow``): a two-stage multiplier and a one-cycle
adder around the running sum.
"""

from amaranth import Module, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .fp16_mac import Fp16Multiplier, accumulate_products

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
        acc = Signal(SHADOW_LAYOUT)
        accumulate_products(m, self.a, self.b, self.valid, self.first, acc.acc, acc.invalid, acc.overflow,
                            clear_name="first")
        with m.If(self.capture):
            m.d.sync += self.shadow.eq(acc)
        with m.Elif(self.shift):
            m.d.sync += self.shadow.eq(self.shift_in)
        return m
