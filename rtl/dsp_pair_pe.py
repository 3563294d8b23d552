"""Two rows of the training array on one hard multiplier: the 3-mode PE with its INT4 products packed in pairs."""

from amaranth import C, Cat, Module, Mux, Shape, Signal, signed
from amaranth.lib import data, wiring

from golden.units import BWD_WIDTH, FWD_WIDTH, PAIR_SHIFT

from .params import check_int
from .pe import pe_members, set_widths, shadow_layout, sum_and_shadow


class DspPairProcessingElement(wiring.Component):
    """The outputs of ``rows`` (1 or 2) vertically adjacent :class:`rtl.pe.ProcessingElement`\\ s
    of one column, whose FWD products come from one multiply (golden.units.int4_pair_products).

    Both rows see the same operand ``b``: the lower row works one cycle later than in the LUT
    array (the array delays its A lane once more), so lane 0's ``a`` and lane 1's ``a`` meet the
    same ``b`` in the same cycle. The packed operand a0 + a1 * 2**8 times ``b`` is one 12 x 4-bit
    multiply, which Yosys maps to one ECP5 MULT18X18D (to LUTs where there is no DSP, as on
    iCE40: no vendor primitive is instantiated). Every INT4 product lies in -120..120, so the low
    8 bits of the result are a0 * b and the next 8 bits, plus the sign of the low part as the
    carry-in of lane 1's sum, are a1 * b: both sums are exact. The FP4 x INT4 products of the
    backward modes are the LUT shifts of :class:`rtl.pe.ProcessingElement`, one per lane.

    Timing: as :class:`rtl.pe.ProcessingElement` for all lanes, with ``b`` one cycle earlier per
    lane below the first (it passes ``rows`` registers on its way to ``b_out``).

    Parameters
    ----------
    rows : int
        Rows covered, 1 or 2 (1 for the last row of an array with an odd number of rows).
    fwd_width, bwd_width : int
        Accumulator widths (8..64) of the forward and of the backward modes.

    Members
    -------
    The per-lane ports ``a``, ``shift``, ``a_out`` and ``shadow`` are plain bit vectors, lane k in
    the k-th slice of one lane's width (:meth:`lanes` gives the lanes): with a
    ``data.ArrayLayout``, Amaranth names each lane ``a[k]`` beside the whole ``a``, and Yosys'
    ABC9 (0.70) gives bit 1 of ``a`` and the 4-bit ``a[1]`` one name and stops on an assertion
    (docs/rtl.md, "The DSP array and Yosys' ABC9").

    a : In(4 * rows)
        Operand A of each lane (lane 0 = the upper row), as ``ProcessingElement.a``.
    b : In(4)
        Operand B, as ``ProcessingElement.b``, ``rows - 1`` cycles before the lanes use it.
    fwd, signed_b, phase, valid, first, capture : In(1)
        As for ``ProcessingElement``, for every lane.
    shift : In(rows)
        Per lane: load its shadow from the lane below (the last lane: from ``shift_in``).
    shift_in : In(W + 1)
        The shadow of the PE below the last lane (the bits of a ``shadow_layout(W)``).
    a_out : Out(4 * rows)
        ``a`` delayed by one cycle, for the next PE of the row.
    b_out : Out(4)
        ``b`` delayed by ``rows`` cycles, for the PE above the first lane.
    shadow : Out(rows * (W + 1))
        Per lane, a finished sum (scaled) waiting to be shifted out (a ``shadow_layout(W)``).

    Raises
    ------
    TypeError, ValueError
        For ``rows`` not 1 or 2, or a width that is not an int in 8..64.
    """

    def __init__(self, rows=2, fwd_width=FWD_WIDTH, bwd_width=BWD_WIDTH):
        self.rows = check_int("rows", rows, 1, 2)
        set_widths(self, fwd_width, bwd_width)
        super().__init__(pe_members(self.width, lambda shape: rows * Shape.cast(shape).width))

    def lanes(self, name):
        """The per-lane values of port ``a``, ``shift``, ``a_out`` or ``shadow`` (a ``shadow_layout`` view), lane 0 first."""
        port = getattr(self, name)
        width = len(port) // self.rows
        values = [port[width * lane:width * (lane + 1)] for lane in range(self.rows)]
        return [data.View(shadow_layout(self.width), value) for value in values] if name == "shadow" else values

    def elaborate(self, platform):
        m = Module()
        rows = self.rows
        # One register (one Verilog process) for a_out and the b delay line.
        operands = Signal(8 * rows, reset_less=True)
        b_stages = [self.b] + [operands[4 * (rows + k):4 * (rows + k + 1)] for k in range(rows)]
        m.d.sync += operands.eq(Cat(self.a, *b_stages[:rows]))
        m.d.comb += [self.a_out.eq(operands[:4 * rows]), self.b_out.eq(b_stages[rows])]
        b_lanes = b_stages[rows - 1]
        a, shift, shadow = self.lanes("a"), self.lanes("shift"), self.lanes("shadow")

        # FWD: a0 * b and a1 * b from one multiply; lane 1 takes the low half's borrow as carry-in.
        packed = Cat(a[0], C(0, PAIR_SHIFT - 4), a[1]) if rows == 2 else a[0]
        product = Signal(signed(len(packed) + 5))
        m.d.comb += product.eq(packed * b_lanes.as_signed())
        low = product[:PAIR_SHIFT].as_signed()
        int4_terms = [(low, C(0, 1))]
        if rows == 2:
            int4_terms.append((product[PAIR_SHIFT:2 * PAIR_SHIFT].as_signed(), low[-1]))

        b = Signal(signed(5))
        m.d.comb += b.eq(Mux(self.signed_b, b_lanes.as_signed(), b_lanes))
        for lane in range(rows):
            shift_in = shadow[lane + 1] if lane + 1 < rows else self.shift_in
            sum_and_shadow(m, self, a[lane], b, int4_terms[lane], shift[lane], shift_in, shadow[lane])
        return m
