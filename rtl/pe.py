"""Processing element of the training array: one INT4 x INT4 or FP4 x INT4 MAC per cycle, plus a shadow."""

from amaranth import Cat, Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from golden.units import BWD_WIDTH, FWD_WIDTH, WIDTH_MAX, WIDTH_MIN

from .accumulator import saturating_sum
from .fp4 import Fp4Code, is_nonzero, shift_amount
from .int4_mac import booth_product
from .params import check_int


def shadow_layout(width):
    """A finished sum: ``acc`` (scaled, see :class:`ProcessingElement`) and its sticky ``overflow``."""
    return data.StructLayout({"acc": signed(width), "overflow": 1})


def pe_members(width, per_row=lambda shape: shape):
    """The signature members of a 3-mode PE (:class:`ProcessingElement` documents them); ``per_row``
    maps the shape of one row's ``a``, ``shift``, ``a_out`` or ``shadow`` to the port's shape. The
    shadows are plain bits (a ``shadow_layout`` port is a Verilog wire per field, per PE of an array)."""
    layout = shadow_layout(width)
    return {
        "a": In(per_row(4)),
        "b": In(4),
        "fwd": In(1),
        "signed_b": In(1),
        "phase": In(1),
        "valid": In(1),
        "first": In(1),
        "capture": In(1),
        "shift": In(per_row(1)),
        "shift_in": In(layout.size),
        "a_out": Out(per_row(4)),
        "b_out": Out(4),
        "shadow": Out(per_row(layout.size)),
    }


def set_widths(pe, fwd_width, bwd_width):
    """Check the accumulator widths of a 3-mode PE and set its ``width`` W and the scales W - w."""
    pe.fwd_width = check_int("fwd_width", fwd_width, WIDTH_MIN, WIDTH_MAX)
    pe.bwd_width = check_int("bwd_width", bwd_width, WIDTH_MIN, WIDTH_MAX)
    pe.width = max(fwd_width, bwd_width)
    pe.fwd_scale = pe.width - fwd_width
    pe.bwd_scale = pe.width - bwd_width


class ProcessingElement(wiring.Component):
    """One output of an output-stationary array: a 3-mode MAC, systolic operand registers, a shadow.

    Products: ``a * b`` (INT4 x INT4, ``a`` unsigned, ``b`` signed) when ``fwd``; otherwise
    ``+-(b << (2*exp - 1 - phase))`` with ``a`` an FP4 code (``exp`` = bits 2..0, sign = bit 3;
    0 when ``exp == 0``) and ``b`` signed or unsigned by ``signed_b``. The product is registered,
    then added by a :class:`rtl.accumulator.SaturatingAccumulator` of width
    W = max(fwd_width, bwd_width).

    One physical accumulator serves both widths: a mode of width w < W adds its products
    scaled by 2**(W - w). The W-bit clamp then acts exactly like the w-bit clamp of the unscaled
    sum (every clamp to the upper limit leaves 2**(W - w) - 1 in the low bits, every clamp to the
    lower limit 0), so ``shadow.acc >> (W - w)`` is the w-bit saturated sum and ``overflow`` its flag.
    The array descales at its output.

    Timing: operands on ``a``/``b`` and their ``valid``/``first`` in cycle t (the product is
    registered with them); the sum including that term is visible to ``capture`` in t + 2 and in
    ``shadow`` from t + 3.

    Parameters
    ----------
    fwd_width, bwd_width : int
        Accumulator widths (8..64) of the forward and of the backward modes.

    Members
    -------
    a : In(4)
        Operand A: activation code 0..15 (``fwd``) or FP4 code.
    b : In(4)
        Operand B: two's complement -8..7 (``fwd`` or ``signed_b``), else unsigned 0..15.
    fwd, signed_b, phase : In(1)
        Mode: INT4 x INT4 product and ``fwd_width`` limits when ``fwd``; otherwise FP4 x INT4 with
        TPR phase ``phase`` and ``bwd_width`` limits. Held constant while terms are in flight.
    valid : In(1)
        Add the product of this cycle's operands to the sum.
    first : In(1)
        Start a new sum: the previous sum and overflow are dropped, so with ``valid`` the product is
        the new sum's first term.
    capture : In(1)
        Copy the running sum and its overflow flag into ``shadow``.
    shift : In(1)
        Load ``shadow`` from ``shift_in`` (when not capturing): the output shift chain.
    shift_in : In(W + 1)
        The neighbour's ``shadow`` in the shift chain.
    a_out, b_out : Out(4)
        ``a`` and ``b`` delayed by one cycle, for the next PE of the row and of the column.
    shadow : Out(W + 1)
        A finished sum (scaled) waiting to be shifted out, as the bits of a ``shadow_layout(W)``
        (:meth:`lanes` gives the view).

    Raises
    ------
    TypeError, ValueError
        For a width that is not an int in 8..64.
    """

    def __init__(self, fwd_width=FWD_WIDTH, bwd_width=BWD_WIDTH):
        set_widths(self, fwd_width, bwd_width)
        # |INT4 x INT4| <= 120 fits signed(8); |b << 13| <= 15 * 2**13 fits signed(18).
        self.product_shape = signed(max(8 + self.fwd_scale, 18 + self.bwd_scale))
        super().__init__(pe_members(self.width))

    def lanes(self, name):
        """Port ``a``, ``shift``, ``a_out`` or ``shadow`` (a ``shadow_layout`` view) as a list of one lane."""
        port = getattr(self, name)
        return [data.View(shadow_layout(self.width), port) if name == "shadow" else port]

    def elaborate(self, platform):
        m = Module()
        operands = Signal(8, reset_less=True)  # one register (one Verilog process) for a_out, b_out
        m.d.sync += operands.eq(Cat(self.a, self.b))
        m.d.comb += [self.a_out.eq(operands[:4]), self.b_out.eq(operands[4:])]
        # FWD: a * b (Booth, its +1 left for the carry-in).
        int4_product, int4_carry = booth_product(m, self.a, self.b.as_signed())
        b = Signal(signed(5))
        m.d.comb += b.eq(Mux(self.signed_b, self.b.as_signed(), self.b))
        sum_and_shadow(m, self, self.a, b, (int4_product, int4_carry), self.shift, self.shift_in, self.lanes("shadow")[0])
        return m


def sum_and_shadow(m, pe, a, b, int4_term, shift, shift_in, shadow):
    """One PE output, added to ``m``: the mode's term of code ``a`` and operand ``b``, its scaled
    saturating sum and the shadow register.

    ``pe`` gives the widths and the shared inputs (``fwd``, ``phase``, ``valid``, ``first``,
    ``capture``); ``int4_term`` is ``(p, c)`` with ``a * b == p + c`` (FWD, ``p`` signed, at most
    18 bits); ``b`` is the operand as ``signed(5)`` (``signed_b`` applied); ``shift`` loads
    ``shadow`` from ``shift_in`` when not capturing.
    """
    # Otherwise the FP4 code a shifts b, inverted for a negative code with the +1 as carry-in
    # (a zero code adds nothing).
    code = Fp4Code(a)
    fp4_shifted = Signal(signed(18))
    m.d.comb += fp4_shifted.eq(b << shift_amount(code, pe.phase))
    fp4_term = Mux(code.sign, ~fp4_shifted, fp4_shifted)

    # A mode of width w < W adds (x + c) * 2**(W - w): c fills the scaled-away low bits and
    # enters as carry-in, since (x + c) * 2**s == (x * 2**s + c * (2**s - 1)) + c.
    def scaled(term, carry, scale):
        return Cat(carry.replicate(scale), term) if scale else term

    int4_product, int4_carry = int4_term
    acc, overflow = saturating_sum(
        m, pe.width,
        Mux(pe.fwd, scaled(int4_product, int4_carry, pe.fwd_scale).as_signed(),
            scaled(fp4_term, code.sign, pe.bwd_scale).as_signed()),
        Mux(pe.fwd, int4_carry, code.sign),
        pe.valid & (pe.fwd | is_nonzero(code)),
        pe.first)
    with m.If(pe.capture):
        m.d.sync += [shadow.acc.eq(acc), shadow.overflow.eq(overflow)]
    with m.Elif(shift):
        m.d.sync += shadow.eq(shift_in)
