"""Processing element of the FP16 training array: the pipelined binary16 MAC with interleaved sums.

The same protocol as :class:`rtl.pe.ProcessingElement` (docs/architecture.md, "The PE seam"),
with 16-bit operands, no mode inputs (for FP16 the three GEMMs of a training step are the same
multiply-add on different operands) and ``SUMS`` outputs instead of one. The arithmetic is
:class:`rtl.fp16_pipe_mac.Fp16PipeMac`'s, bit-exact to :mod:`golden.fp16` (product, then sum,
each rounded to nearest even; subnormals, Inf, canonical NaN, sticky ``invalid``/``overflow``):
a five-stage multiplier and a six-stage adder ring that holds ``SUMS`` running sums, the term of
cycle t joining sum t mod ``SUMS``. The array feeds the operands of its ``SUMS`` output rows in
turn, each in its own cycle of the ring, so every sum still adds its own terms in ascending k.
"""

from amaranth import Module, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .fp16_pipe_mac import Fp16PipeMac

#: A finished sum: the binary16 pattern and its sticky flags.
SHADOW_LAYOUT = data.StructLayout({"acc": 16, "invalid": 1, "overflow": 1})


class Fp16ProcessingElement(wiring.Component):
    """``SUMS`` outputs of an output-stationary FP16 array: a pipelined MAC, operand registers, shadows.

    Timing: operands on ``a``/``b`` and their ``valid``/``first`` in cycle t (they join the sum
    of ring slot t mod ``SUMS``); that sum including the term is visible to ``capture`` in t + 11
    (``SUM_LATENCY``). The ``SUMS`` shadow entries form this PE's part of its column's output
    chain: entry 0 is ``shadow``, entry l shifts from entry l + 1, the last from ``shift_in``.

    Members
    -------
    a, b : In(16)
        Operand bit patterns (IEEE binary16).
    valid : In(1)
        Add the product of this cycle's operands to this cycle's sum.
    first : In(1)
        Start this cycle's sum anew (+0, flags cleared); with ``valid`` the product is its first term.
    capture : In(SUMS)
        Bit l: copy the sum leaving the ring (with its flags) into shadow entry l.
    shift : In(SUMS)
        Bit l: load shadow entry l from the next entry (when not capturing): the output chain.
    shift_in : In(SHADOW_LAYOUT)
        The ``shadow`` of the PE below (next in the chain).
    a_out, b_out : Out(16)
        ``a`` and ``b`` delayed by one cycle, for the next PE of the row and of the column.
    shadow : Out(SHADOW_LAYOUT)
        Shadow entry 0: the next finished sum of this PE to move up.
    """

    SUMS = Fp16PipeMac.SUMS
    SUM_LATENCY = Fp16PipeMac.LATENCY

    a: In(16)
    b: In(16)
    valid: In(1)
    first: In(1)
    capture: In(SUMS)
    shift: In(SUMS)
    shift_in: In(SHADOW_LAYOUT)
    a_out: Out(16)
    b_out: Out(16)
    shadow: Out(SHADOW_LAYOUT)

    def elaborate(self, platform):
        m = Module()
        m.d.sync += [self.a_out.eq(self.a), self.b_out.eq(self.b)]
        m.submodules.mac = mac = Fp16PipeMac()
        m.d.comb += [mac.a.eq(self.a), mac.b.eq(self.b), mac.valid.eq(self.valid), mac.clear.eq(self.first)]
        finished = Signal(SHADOW_LAYOUT)
        m.d.comb += [finished.acc.eq(mac.acc), finished.invalid.eq(mac.invalid), finished.overflow.eq(mac.overflow)]
        entries = [Signal(SHADOW_LAYOUT, name=f"shadow_{entry}") for entry in range(self.SUMS)]
        for entry, source, capture, shift in zip(entries, entries[1:] + [self.shift_in], self.capture, self.shift):
            with m.If(capture):
                m.d.sync += entry.eq(finished)
            with m.Elif(shift):
                m.d.sync += entry.eq(source)
        m.d.comb += self.shadow.eq(entries[0])
        return m
