"""Two rows of the training array on one hard multiplier: the 3-mode PE with its INT4 products packed in pairs."""

from amaranth import C, Cat, Module, Mux, Signal, signed
from amaranth.lib import data, wiring

from golden.units import BWD_WIDTH, FWD_WIDTH, PAIR_SHIFT

from .params import check_int
from .pe import pe_members, set_widths, sum_and_shadow


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
    a : In(data.ArrayLayout(4, rows))
        Operand A of each lane (lane 0 = the upper row), as ``ProcessingElement.a``.
    b : In(4)
        Operand B, as ``ProcessingElement.b``, ``rows - 1`` cycles before the lanes use it.
    fwd, signed_b, phase, valid, first, capture : In(1)
        As for ``ProcessingElement``, for every lane.
    shift : In(data.ArrayLayout(1, rows))
        Per lane: load its shadow from the lane below (the last lane: from ``shift_in``).
    shift_in : In(shadow_layout(W))
        The shadow of the PE below the last lane.
    a_out : Out(data.ArrayLayout(4, rows))
        ``a`` delayed by one cycle, for the next PE of the row.
    b_out : Out(4)
        ``b`` delayed by ``rows`` cycles, for the PE above the first lane.
    shadow : Out(data.ArrayLayout(shadow_layout(W), rows))
        Per lane, a finished sum (scaled) waiting to be shifted out.

    Raises
    ------
    TypeError, ValueError
        For ``rows`` not 1 or 2, or a width that is not an int in 8..64.
    """

    def __init__(self, rows=2, fwd_width=FWD_WIDTH, bwd_width=BWD_WIDTH):
        self.rows = check_int("rows", rows, 1, 2)
        set_widths(self, fwd_width, bwd_width)
        super().__init__(pe_members(self.width, lambda shape: data.ArrayLayout(shape, rows)))

    def elaborate(self, platform):
        m = Module()
        rows = self.rows
        # One register (one Verilog process) for a_out and the b delay line.
        operands = Signal(8 * rows, reset_less=True)
        b_stages = [self.b] + [operands[4 * (rows + k):4 * (rows + k + 1)] for k in range(rows)]
        m.d.sync += operands.eq(Cat(self.a, *b_stages[:rows]))
        m.d.comb += [self.a_out.eq(operands[:4 * rows]), self.b_out.eq(b_stages[rows])]
        b_lanes = b_stages[rows - 1]

        # FWD: a0 * b and a1 * b from one multiply; lane 1 takes the low half's borrow as carry-in.
        packed = Cat(self.a[0], C(0, PAIR_SHIFT - 4), self.a[1]) if rows == 2 else self.a[0]
        product = Signal(signed(len(packed) + 5))
        m.d.comb += product.eq(packed * b_lanes.as_signed())
        low = product[:PAIR_SHIFT].as_signed()
        int4_terms = [(low, C(0, 1))]
        if rows == 2:
            int4_terms.append((product[PAIR_SHIFT:2 * PAIR_SHIFT].as_signed(), low[-1]))

        b = Signal(signed(5))
        m.d.comb += b.eq(Mux(self.signed_b, b_lanes.as_signed(), b_lanes))
        for lane in range(rows):
            shift_in = self.shadow[lane + 1] if lane + 1 < rows else self.shift_in
            sum_and_shadow(m, self, self.a[lane], b, int4_terms[lane], self.shift[lane], shift_in,
                           self.shadow[lane])
        return m
