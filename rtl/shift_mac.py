"""FP4 x INT4 shift-and-add multiply-accumulate processing element (golden.units.shift_mac)."""

from amaranth import Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from golden.units import BWD_WIDTH, WIDTH_MAX, WIDTH_MIN

from .accumulator import SaturatingAccumulator
from .fp4 import Fp4Code, is_nonzero, shift_amount
from .params import check_bool, check_int

PRODUCT_SHAPE = signed(18)  # |b << 13| <= 15 * 2**13 < 2**17


class ShiftMac(wiring.Component):
    """One FP4 x INT4 MAC per cycle, in units of 2**(s - 13), without a multiplier.

    The product is ``+-(b << (2*exp - 1 - phase))`` with the code's sign, 0 when ``exp == 0``
    (so code 0b1000 reads as 0). Accumulator, ``valid``/``clear``/``overflow`` semantics and
    LATENCY are those of :class:`rtl.int4_mac.Int4Mac`.

    Parameters
    ----------
    width : int
        Accumulator width W, 8..64 (default 32, the backward GEMM width).
    signed_b : bool
        Operand B is signed -8..7 (True, weight codes) or unsigned 0..15 (False, activation codes).

    Members
    -------
    code : In(Fp4Code)
        FP4 gradient code (``exp``, ``sign``).
    b : In(4)
        INT4 operand (``signed(4)`` if ``signed_b``).
    phase : In(1)
        Two-phase-rounding phase p of ``code``.
    valid, clear : In(1)
        As in Int4Mac.
    acc : Out(signed(width))
        Saturated running sum.
    overflow : Out(1)
        Sticky: a sum was clamped since the last ``clear``.

    Raises
    ------
    TypeError, ValueError
        For a ``width`` that is not an int in 8..64 or a ``signed_b`` that is not a bool.
    """

    LATENCY = SaturatingAccumulator.LATENCY

    def __init__(self, width=BWD_WIDTH, signed_b=True):
        self.width = check_int("width", width, WIDTH_MIN, WIDTH_MAX)
        self.signed_b = check_bool("signed_b", signed_b)
        super().__init__({
            "code": In(Fp4Code),
            "b": In(signed(4) if signed_b else unsigned(4)),
            "phase": In(1),
            "valid": In(1),
            "clear": In(1),
            "acc": Out(signed(width)),
            "overflow": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.accumulator = accumulator = SaturatingAccumulator(self.width, PRODUCT_SHAPE)
        code = self.code
        # -x = ~x + 1: the sign inverts the shifted operand and its +1 is the accumulator's carry-in.
        shifted = Signal(PRODUCT_SHAPE)
        m.d.comb += shifted.eq(self.b << shift_amount(code, self.phase))
        m.d.comb += [
            accumulator.term.eq(Mux(code.sign, ~shifted, shifted)),
            accumulator.carry.eq(code.sign),
            accumulator.valid.eq(self.valid & is_nonzero(code)),
            accumulator.clear.eq(self.clear),
            self.acc.eq(accumulator.acc),
            self.overflow.eq(accumulator.overflow),
        ]
        return m
