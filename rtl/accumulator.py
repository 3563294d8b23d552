"""Registered term -> W-bit two's-complement accumulator with saturation and a sticky overflow flag."""

from amaranth import C, Module, Mux, Shape, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out


class SaturatingAccumulator(wiring.Component):
    """Registers one term per cycle and adds it, clamping every sum to the W-bit limits.

    The body shared by the MACs and the array PE (golden.units.accumulate): the inputs of cycle
    t are registered, added in cycle t + 1 and visible on ``acc``/``overflow`` from cycle t + 2
    (LATENCY = 2).

    How it stays small (for a term of T <= W bits, docs/rtl.md):

    * Overflow comes from the sign bits: operands of equal sign whose W-bit sum has the other
      sign. The adder is a plain W-bit carry chain, there is no comparator against the limits.
    * A clamp can only happen within 2**(T-1) of a limit, where bits T-1..W-1 of the running sum
      already equal those of the limit: those bits just keep their value (register enable),
      only bits 0..T-2 need a mux.
    * The running sum is kept twice: ``acc`` (the output) and a copy feeding the adder that is
      zeroed when ``clear`` is registered, so the first term of a sum needs no mux in front of
      the adder. An invalid term and its carry are registered as 0 (one register reset), which
      adds nothing.
    * The sticky flag is written only on an overflow or a registered ``clear`` (its enable) and
      takes ``overflow``, so no gate sits in front of its input.

    Parameters
    ----------
    width : int
        Accumulator width W (the caller validates it).
    term_shape : signed shape
        Shape of ``term``; may be wider than ``width`` (a single term can saturate). ``term`` +
        ``carry`` must fit it as well.

    Members
    -------
    term : In(term_shape)
        Value added when ``valid`` is high.
    carry : In(1)
        Added to ``term`` at weight 1 (the carry-in of the adder): a product can leave its
        two's-complement "+1" corrections here.
    valid : In(1)
        Add ``term`` + ``carry``.
    clear : In(1)
        Start a new sum: the running sum and ``overflow`` are dropped first, so a term valid in
        the same cycle becomes the first term of the new sum.
    acc : Out(signed(width))
        Running saturated sum.
    overflow : Out(1)
        Sticky: some addition since the last ``clear`` was clamped.
    """

    LATENCY = 2

    def __init__(self, width, term_shape):
        self.width = width
        self.term_width = Shape.cast(term_shape).width
        super().__init__({"term": In(term_shape), "carry": In(1), **accumulator_ports(width)})

    def elaborate(self, platform):
        m = Module()
        acc, overflow = saturating_sum(m, self.width, self.term, self.carry, self.valid, self.clear)
        m.d.comb += [self.acc.eq(acc), self.overflow.eq(overflow)]
        return m


def accumulator_ports(width, lanes=("",)):
    """The ports that follow a sum's inputs: ``valid``, ``clear``, then ``acc<lane>`` and
    ``overflow<lane>`` for each lane suffix in ``lanes``."""
    return {
        "valid": In(1),
        "clear": In(1),
        **{f"acc{lane}": Out(signed(width)) for lane in lanes},
        **{f"overflow{lane}": Out(1) for lane in lanes},
    }


def saturating_sum(m, width, term_in, carry_in, valid, clear_in):
    """The logic of :class:`SaturatingAccumulator`, added to module ``m``: returns ``(acc, overflow)``.

    The array PE calls this directly, so its accumulator is no Verilog module of its own (the
    array's Verilog is one module per instance).
    """
    term_width = len(term_in)
    # Few signals, few processes: the array's Verilog holds this once per PE.
    stage = Signal(term_width + 3)  # term, carry, clear, overflow flag
    term, carry, clear, flag = stage[:term_width].as_signed(), stage[-3], stage[-2], stage[-1]
    sums = Signal(2 * width)
    acc, running = sums[:width].as_signed(), sums[width:].as_signed()  # equal, except running is 0 after a clear
    valid_term = Signal()
    m.d.comb += valid_term.eq(valid)
    m.d.sync += [term.eq(Mux(valid_term, term_in, 0)), carry.eq(Mux(valid_term, carry_in, 0)), clear.eq(clear_in)]

    if term_width <= width:
        total = Signal(signed(width))
        overflow = Signal()
        sign = running[-1]
        m.d.comb += [
            total.eq(running + term + carry),
            # The overflow rule of an add with carry-in: equal operand signs, other sum sign.
            overflow.eq((sign == term[-1]) & (total[-1] != sign)),
        ]
        low = term_width - 1
        low_bits = Signal(low)
        m.d.comb += low_bits.eq(Mux(overflow, Mux(sign, C(0, low), C(-1, low)), total[:low]))
        m.d.sync += [running[:low].eq(low_bits), acc[:low].eq(low_bits)]
        with m.If(~overflow):
            m.d.sync += [running[low:].eq(total[low:]), acc[low:].eq(total[low:])]
    else:
        total = Signal(signed(term_width + 1))
        m.d.comb += total.eq(running + term + carry)
        top = total[width - 1:]
        overflow = top.any() & ~top.all()  # the sum does not sign-extend from W bits
        limit = Mux(total[-1], -(1 << (width - 1)), (1 << (width - 1)) - 1)
        value = Mux(overflow, limit, total[:width])
        m.d.sync += [running.eq(value), acc.eq(value)]
    with m.If(clear_in):
        m.d.sync += running.eq(0)
    with m.If(overflow | clear):
        m.d.sync += flag.eq(overflow)
    return acc, flag
