"""INT4 x INT4 multiply-accumulate processing element (golden.units.int4_mac)."""

from amaranth import C, Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib.wiring import In

from golden.units import FWD_WIDTH

from .mac import SaturatingMac
from .params import check_bool

ONES = C(0b111111, 6)  # a Booth row's select mask


class Int4Mac(SaturatingMac):
    __doc__ = SaturatingMac.document(description="""\
One MAC per cycle: ``acc = saturate(acc + a*b)`` in a W-bit accumulator with sticky overflow.

    Pipeline: the product is registered, then added (:class:`rtl.accumulator.SaturatingAccumulator`).
    The effect of the inputs of cycle t is visible on ``acc``/``overflow`` in cycle t + LATENCY.""",
        width="24, the forward GEMM width", flag="signed_a",
        flag_doc="Operand A is signed -8..7 (True) or unsigned 0..15 (False, PACT activation codes).",
        operands="""a : In(4)
        Operand A (``signed(4)`` if ``signed_a``).
    b : In(signed(4))
        Operand B, signed -8..7 (SAWB weight codes use -7..7).""")

    def __init__(self, width=FWD_WIDTH, signed_a=False):
        self.signed_a = check_bool("signed_a", signed_a)
        super().__init__(width, {"a": In(signed(4) if signed_a else unsigned(4)), "b": In(signed(4))})

    def elaborate(self, platform):
        m = Module()
        product, carry = booth_product(m, self.a, self.b)
        self.accumulate(m, product, carry, self.valid)
        return m


def booth_product(m, a, b):
    """``(p, c)`` with ``a * b == p + c``: a 4-bit ``a`` (signed or unsigned) times a ``signed(4)`` ``b``.

    Radix-4 Booth on ``b``: digits d0 = b0 - 2*b1 and d1 = b1 + b2 - 2*b3 in -2..2 give two rows
    (0, a or 2a, inverted for a negative digit; each bit a LUT of 4 or 5 inputs) added by one
    6-bit carry chain over bits 7..2 (bits 1..0 are row 0's alone). An inverted row lacks its
    +1: row 1's (+4) is that chain's carry-in, row 0's is returned as ``c`` for the carry-in of
    the accumulator. ``p`` is ``signed(8)``; logic is added to ``m``'s comb domain.
    """
    multiplicand = a.as_signed() if a.shape().signed else a
    rows = []
    for k in range(2):
        low = b[2 * k - 1] if k else C(0, 1)
        mid, high = b[2 * k], b[2 * k + 1]
        two = Mux(high, ~(mid | low), mid & low)
        row = Signal(6)
        m.d.comb += row.eq(Mux(mid ^ low, multiplicand, Mux(two, multiplicand << 1, 0)) ^ Mux(high, ONES, 0))
        rows.append(row)
    # Row 1 starts at bit 2, so bits 1..0 are row 0's: one 6-bit chain adds row 0's bits 5..2
    # (sign-extended) and row 1, with row 1's +1 (weight 4) on its carry-in.
    high = Signal(signed(6))
    m.d.comb += high.eq(rows[0][2:].as_signed() + rows[1].as_signed() + b[3])
    negative0 = b[1]
    return Cat(rows[0][:2], high).as_signed(), negative0
