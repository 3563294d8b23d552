"""W-bit two's-complement accumulator with saturation and a sticky overflow flag."""

from amaranth import Module, Mux, Shape, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out


class SaturatingAccumulator(wiring.Component):
    """Adds one term per valid cycle, clamping every sum to the W-bit limits (golden.units.accumulate).

    The result of the inputs of one cycle is visible on ``acc``/``overflow`` in the next cycle.

    Parameters
    ----------
    width : int
        Accumulator width W (the caller validates it).
    term_shape : signed shape
        Shape of ``term``; may be wider than ``width`` (a single term can saturate).

    Members
    -------
    term : In(term_shape)
        Value added when ``valid`` is high.
    valid : In(1)
        Add ``term`` this cycle.
    clear : In(1)
        Start a new sum: the running sum and ``overflow`` are dropped first, so a term valid in
        the same cycle becomes the first term of the new sum.
    acc : Out(signed(width))
        Running saturated sum.
    overflow : Out(1)
        Sticky: some addition since the last ``clear`` was clamped.
    """

    def __init__(self, width, term_shape):
        self.width = width
        super().__init__({
            "term": In(term_shape),
            "valid": In(1),
            "clear": In(1),
            "acc": Out(signed(width)),
            "overflow": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        lo, hi = -(1 << (self.width - 1)), (1 << (self.width - 1)) - 1
        base = Mux(self.clear, 0, self.acc)
        sticky = ~self.clear & self.overflow
        total_width = max(self.width, Shape.cast(self.term.shape()).width) + 1
        total = Signal(signed(total_width))
        m.d.comb += total.eq(base + self.term)

        with m.If(~self.valid):
            m.d.sync += [self.acc.eq(base), self.overflow.eq(sticky)]
        with m.Elif(total > hi):
            m.d.sync += [self.acc.eq(hi), self.overflow.eq(1)]
        with m.Elif(total < lo):
            m.d.sync += [self.acc.eq(lo), self.overflow.eq(1)]
        with m.Else():
            m.d.sync += [self.acc.eq(total), self.overflow.eq(sticky)]
        return m
