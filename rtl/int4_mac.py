"""INT4 x INT4 multiply-accumulate processing element (golden.units.int4_mac)."""

from amaranth import Module, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from golden.units import FWD_WIDTH, WIDTH_MAX, WIDTH_MIN

from .accumulator import SaturatingAccumulator
from .params import check_bool, check_int

PRODUCT_SHAPE = signed(8)  # every product lies in -120..120


class Int4Mac(wiring.Component):
    """One MAC per cycle: ``acc = saturate(acc + a*b)`` in a W-bit accumulator with sticky overflow.

    Pipeline: product register, then accumulator register. The effect of the inputs of cycle t
    is visible on ``acc``/``overflow`` in cycle t + LATENCY.

    Parameters
    ----------
    width : int
        Accumulator width W, 8..64 (default 24, the forward GEMM width).
    signed_a : bool
        Operand A is signed -8..7 (True) or unsigned 0..15 (False, PACT activation codes).

    Members
    -------
    a : In(4)
        Operand A (``signed(4)`` if ``signed_a``).
    b : In(signed(4))
        Operand B, signed -8..7 (SAWB weight codes use -7..7).
    valid : In(1)
        Accumulate ``a*b`` this cycle.
    clear : In(1)
        Start a new sum (``acc`` and ``overflow`` reset); if ``valid`` is also high, ``a*b`` is
        the first term of the new sum.
    acc : Out(signed(width))
        Saturated running sum.
    overflow : Out(1)
        Sticky: a sum was clamped since the last ``clear``.

    Raises
    ------
    TypeError, ValueError
        For a ``width`` that is not an int in 8..64 or a ``signed_a`` that is not a bool.
    """

    LATENCY = 2

    def __init__(self, width=FWD_WIDTH, signed_a=False):
        self.width = check_int("width", width, WIDTH_MIN, WIDTH_MAX)
        self.signed_a = check_bool("signed_a", signed_a)
        super().__init__({
            "a": In(signed(4) if signed_a else unsigned(4)),
            "b": In(signed(4)),
            "valid": In(1),
            "clear": In(1),
            "acc": Out(signed(width)),
            "overflow": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.accumulator = accumulator = SaturatingAccumulator(self.width, PRODUCT_SHAPE)
        product = Signal(PRODUCT_SHAPE)
        valid = Signal()
        clear = Signal()
        m.d.sync += [product.eq(self.a * self.b), valid.eq(self.valid), clear.eq(self.clear)]
        m.d.comb += [
            accumulator.term.eq(product),
            accumulator.valid.eq(valid),
            accumulator.clear.eq(clear),
            self.acc.eq(accumulator.acc),
            self.overflow.eq(accumulator.overflow),
        ]
        return m
