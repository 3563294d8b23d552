"""Two INT4 x INT4 MACs on one hard multiplier: operands packed with guard bits (golden.units.int4_pair_products)."""

from amaranth import Module, Signal, signed, unsigned
from amaranth.lib.wiring import In

from golden.units import FWD_WIDTH, PAIR_SHIFT

from .mac import SaturatingMac
from .params import check_bool


class Int4MacPairDsp(SaturatingMac):
    __doc__ = SaturatingMac.document(description="""\
Two Int4Mac lanes sharing operand B and one multiply: ``acc<i> = saturate(acc<i> + a<i>*b)``.

    The packed operand a0 + a1 * 2**8 times b is a single 13 x 4-bit multiply, which Yosys maps
    to one ECP5 MULT18X18D (and, without DSPs, as on iCE40, to LUTs: no vendor primitive is
    instantiated). Every INT4 product lies in -120..120, so the low 8 bits of the result are
    a0*b and the bits above, plus the sign of the low part as the carry-in of lane 1's adder,
    are a1*b: both sums are exact. Each lane has the protocol, ports and LATENCY of
    :class:`rtl.int4_mac.Int4Mac`; ``valid`` and ``clear`` are shared.""",
        width="24, the forward GEMM width", flag="signed_a",
        flag_doc="Operands A are signed -8..7 (True) or unsigned 0..15 (False, PACT activation codes).",
        operands="""a0, a1 : In(4)
        Operand A of lane 0 and of lane 1 (``signed(4)`` if ``signed_a``).
    b : In(signed(4))
        Operand B of both lanes, -8..7.""", lanes=("0", "1"))

    def __init__(self, width=FWD_WIDTH, signed_a=False):
        self.signed_a = check_bool("signed_a", signed_a)
        operand = signed(4) if signed_a else unsigned(4)
        super().__init__(width, {"a0": In(operand), "a1": In(operand), "b": In(signed(4))}, lanes=("0", "1"))

    def elaborate(self, platform):
        m = Module()
        packed = Signal(signed(PAIR_SHIFT + 5))
        product = Signal(signed(PAIR_SHIFT + 9))
        m.d.comb += [
            packed.eq(self.a0 + (self.a1 << PAIR_SHIFT)),  # a plain concatenation for unsigned A
            product.eq(packed * self.b),
        ]
        low, high = product[:PAIR_SHIFT].as_signed(), product[PAIR_SHIFT:].as_signed()
        self.accumulate(m, low, 0, self.valid, lane="0")
        self.accumulate(m, high, low[-1], self.valid, lane="1")
        return m
