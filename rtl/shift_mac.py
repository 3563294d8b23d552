"""FP4 x INT4 shift-and-add multiply-accumulate processing element (golden.units.shift_mac)."""

from amaranth import Module, Mux, Signal, signed, unsigned
from amaranth.lib.wiring import In

from golden.units import BWD_WIDTH

from .fp4 import Fp4Code, is_nonzero, shift_amount
from .mac import SaturatingMac
from .params import check_bool

PRODUCT_SHAPE = signed(18)  # |b << 13| <= 15 * 2**13 < 2**17


class ShiftMac(SaturatingMac):
    __doc__ = SaturatingMac.document(description="""\
One FP4 x INT4 MAC per cycle, in units of 2**(s - 13), without a multiplier.

    The product is ``+-(b << (2*exp - 1 - phase))`` with the code's sign, 0 when ``exp == 0``
    (so code 0b1000 reads as 0). The accumulator and LATENCY are those of
    :class:`rtl.int4_mac.Int4Mac`.""",
        width="32, the backward GEMM width", flag="signed_b",
        flag_doc="Operand B is signed -8..7 (True, weight codes) or unsigned 0..15 (False, activation codes).",
        operands="""code : In(Fp4Code)
        FP4 gradient code (``exp``, ``sign``).
    b : In(4)
        INT4 operand (``signed(4)`` if ``signed_b``).
    phase : In(1)
        Two-phase-rounding phase p of ``code``.""")

    def __init__(self, width=BWD_WIDTH, signed_b=True):
        self.signed_b = check_bool("signed_b", signed_b)
        super().__init__(width, {"code": In(Fp4Code), "b": In(signed(4) if signed_b else unsigned(4)), "phase": In(1)})

    def elaborate(self, platform):
        m = Module()
        code = self.code
        # -x = ~x + 1: the sign inverts the shifted operand and its +1 is the accumulator's carry-in.
        shifted = Signal(PRODUCT_SHAPE)
        m.d.comb += shifted.eq(self.b << shift_amount(code, self.phase))
        self.accumulate(m, Mux(code.sign, ~shifted, shifted), code.sign, self.valid & is_nonzero(code))
        return m
