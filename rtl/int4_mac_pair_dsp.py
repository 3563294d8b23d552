"""Two INT4 x INT4 MACs on one hard multiplier: operands packed with guard bits (golden.units.int4_pair_products)."""

from amaranth import Module, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from golden.units import FWD_WIDTH, PAIR_SHIFT, WIDTH_MAX, WIDTH_MIN

from .accumulator import SaturatingAccumulator
from .params import check_bool, check_int


class Int4MacPairDsp(wiring.Component):
    """Two Int4Mac lanes sharing operand B and one multiply: ``acc<i> = saturate(acc<i> + a<i>*b)``.

    The packed operand a0 + a1 * 2**8 times b is a single 13 x 4-bit multiply, which Yosys maps
    to one ECP5 MULT18X18D (and, without DSPs, as on iCE40, to LUTs: no vendor primitive is
    instantiated). Every INT4 product lies in -120..120, so the low 8 bits of the result are
    a0*b and the bits above, plus the sign of the low part as the carry-in of lane 1's adder,
    are a1*b: both sums are exact. Each lane has the protocol, ports and LATENCY of
    :class:`rtl.int4_mac.Int4Mac`; ``valid`` and ``clear`` are shared.

    Parameters
    ----------
    width : int
        Accumulator width W, 8..64 (default 24, the forward GEMM width).
    signed_a : bool
        Operands A are signed -8..7 (True) or unsigned 0..15 (False, PACT activation codes).

    Members
    -------
    a0, a1 : In(4)
        Operand A of lane 0 and of lane 1 (``signed(4)`` if ``signed_a``).
    b : In(signed(4))
        Operand B of both lanes, -8..7.
    valid, clear : In(1)
        As in Int4Mac, for both lanes.
    acc0, acc1 : Out(signed(width))
        Saturated running sum of each lane.
    overflow0, overflow1 : Out(1)
        Sticky clamp flag of each lane.

    Raises
    ------
    TypeError, ValueError
        For a ``width`` that is not an int in 8..64 or a ``signed_a`` that is not a bool.
    """

    LATENCY = SaturatingAccumulator.LATENCY

    def __init__(self, width=FWD_WIDTH, signed_a=False):
        self.width = check_int("width", width, WIDTH_MIN, WIDTH_MAX)
        self.signed_a = check_bool("signed_a", signed_a)
        operand = signed(4) if signed_a else unsigned(4)
        super().__init__({
            "a0": In(operand),
            "a1": In(operand),
            "b": In(signed(4)),
            "valid": In(1),
            "clear": In(1),
            "acc0": Out(signed(width)),
            "acc1": Out(signed(width)),
            "overflow0": Out(1),
            "overflow1": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        packed = Signal(signed(PAIR_SHIFT + 5))
        product = Signal(signed(PAIR_SHIFT + 9))
        m.d.comb += [
            packed.eq(self.a0 + (self.a1 << PAIR_SHIFT)),  # a plain concatenation for unsigned A
            product.eq(packed * self.b),
        ]
        low, high = product[:PAIR_SHIFT].as_signed(), product[PAIR_SHIFT:].as_signed()
        lanes = [(low, 0, self.acc0, self.overflow0), (high, low[-1], self.acc1, self.overflow1)]
        for lane, (term, carry, acc, overflow) in enumerate(lanes):
            accumulator = SaturatingAccumulator(self.width, term.shape())
            m.submodules[f"lane{lane}"] = accumulator
            m.d.comb += [
                accumulator.term.eq(term),
                accumulator.carry.eq(carry),
                accumulator.valid.eq(self.valid),
                accumulator.clear.eq(self.clear),
                acc.eq(accumulator.acc),
                overflow.eq(accumulator.overflow),
            ]
        return m
