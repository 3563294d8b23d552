"""The block-scaled (MXFP4 / NVFP4) PE of the training array and the float32 unit its row shares.

An :class:`MxArrayProcessingElement` sums the exact E2M1 products of one block (the
:class:`rtl.mx_pe.MxProcessingElement`) and, when the block is finished, offers its block sum with
the block's two scale codes on ``term``. Along a row of the output-stationary array the PEs finish
the same block one cycle apart (column j at distance d = R - 1 - i + j), and blocks are at least
16 beats long, so one :class:`MxRowUnit` per row takes the terms of all C <= block columns without
ever seeing two in one cycle: an OR of the gated ``term`` ports is its input. The unit forms the
term (``rtl.mx_row.block_term``), adds it to the column's float32 sum in an
:class:`rtl.fp32_scaled_add.Fp32ScaledAdd` and broadcasts the result on ``result``: a sum
that is not final goes into a queue (in column order, which is also the order the next block
reads it), a tile's final sums into the PEs' shadows (``capture``). docs/architecture.md, "The MX
array", has the timing.
"""

from amaranth import Cat, Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.wiring import In, Out

from .fp32_scaled_add import Fp32ScaledAdd
from .mx_pe import MxProcessingElement, sum_shape
from .mx_row import FORMATS, TERM_STAGES, TERM_WIDTHS, block_term

#: Bits of one operand lane: the E2M1 code in bits 3..0, the block's scale code in bits 11..4.
LANE_WIDTH = 12
#: Cycles from a block's last operands at a PE to its term on the row's bus (the PE's sum latency).
TERM_DELAY = MxProcessingElement.LATENCY
#: Cycles from a block's last operands at a PE to the float32 sum including it on ``result``: the
#: PE, the bus register, the term stages and the float32 unit.
SUM_LATENCY = TERM_DELAY + 1 + TERM_STAGES + Fp32ScaledAdd.LATENCY


def term_layout(block):
    """A finished block of one PE: its exact sum, scale codes and place in the tile."""
    return data.StructLayout({"valid": 1, "sum": sum_shape(block), "a_scale": 8, "b_scale": 8,
                              "first": 1, "final": 1})


class MxArrayProcessingElement(wiring.Component):
    """One output of the MX array: exact block sums, operand registers and a float32 shadow.

    Timing: operands on ``a``/``b`` with ``valid`` and the beat flags in cycle t; with the block's
    last beat the block's term is on ``term`` in t + 2 (``TERM_DELAY``, for one cycle) and the
    float32 sum including it on the row's ``result`` in t + ``SUM_LATENCY``, when ``capture``
    copies a tile's final sum into ``shadow``.

    Parameters
    ----------
    block : int
        Block size: 32 (MXFP4) or 16 (NVFP4).

    Members
    -------
    a, b : In(12)
        E2M1 code (bits 3..0) and the scale code of its block (bits 11..4, read with the block's
        last beat).
    valid : In(1)
        The operands are a beat.
    first : In(1)
        The tile's first beat (unused: every block sum starts from 0, the first block's term from +0).
    last, block_last, first_block : In(1)
        With ``valid``: the tile's last beat; the block's last beat; a beat of the tile's first block.
    capture : In(1)
        Copy ``result`` into ``shadow``.
    shift : In(1)
        Load ``shadow`` from ``shift_in`` (when not capturing).
    shift_in : In(32)
        The neighbour's ``shadow``.
    result : In(32)
        The row unit's latest float32 sum.
    a_out, b_out : Out(12)
        ``a`` and ``b`` delayed by one cycle.
    term : Out(term_layout(block))
        The finished block, all bits 0 except in the cycle it is offered (so a row can OR them).
    shadow : Out(32)
        A tile's finished float32 sum waiting to be shifted out.
    """

    def __init__(self, block):
        self.block = block
        super().__init__({
            "a": In(LANE_WIDTH), "b": In(LANE_WIDTH), "valid": In(1), "first": In(1), "last": In(1),
            "block_last": In(1), "first_block": In(1), "capture": In(1), "shift": In(1),
            "shift_in": In(32), "result": In(32),
            "a_out": Out(LANE_WIDTH), "b_out": Out(LANE_WIDTH), "term": Out(term_layout(block)),
            "shadow": Out(32),
        })

    def elaborate(self, platform):
        m = Module()
        m.d.sync += [self.a_out.eq(self.a), self.b_out.eq(self.b)]
        m.submodules.sums = sums = MxProcessingElement(self.block)
        m.d.comb += [sums.a.eq(self.a[:4]), sums.b.eq(self.b[:4]), sums.valid.eq(self.valid),
                     sums.last.eq(self.block_last)]
        # What the term needs besides the sum, kept from the block's last beat until it is offered.
        held = Signal(data.StructLayout({"a_scale": 8, "b_scale": 8, "first": 1, "final": 1}))
        with m.If(self.valid & self.block_last):
            m.d.sync += held.eq(Cat(self.a[4:], self.b[4:], self.first_block, self.last))
        offered = Cat(sums.done, sums.block_sum, held.as_value())
        m.d.comb += self.term.as_value().eq(offered & sums.done.replicate(len(offered)))
        with m.If(self.capture):
            m.d.sync += self.shadow.eq(self.result)
        with m.Elif(self.shift):
            m.d.sync += self.shadow.eq(self.shift_in)
        return m


class MxRowUnit(wiring.Component):
    """The float32 accumulate shared by a row of ``columns`` MX PEs.

    The OR of the PEs' ``term`` ports is registered, becomes the term ``sig * 2**exp`` after
    ``TERM_STAGES`` registers and is added to +0 (the tile's first block) or to the column's sum
    from the queue; the rounded sum leaves on ``result`` ``Fp32ScaledAdd.LATENCY`` cycles later and
    goes back into the queue unless its block is the tile's final one. The queue holds at most one
    sum per column: a block's terms arrive in column order, one per cycle.

    Parameters
    ----------
    fmt : str
        "mxfp4" or "nvfp4".
    columns : int
        PEs in the row (2..block).

    Members
    -------
    terms : In(term_layout(block)) per column
        The PEs' ``term`` ports.
    result : Out(32)
        The float32 sum of the term that left the unit in this cycle.
    """

    def __init__(self, fmt, columns):
        self.fmt, self.columns = fmt, columns
        block = FORMATS[fmt]
        super().__init__({"terms": In(term_layout(block)).array(columns), "result": Out(32)})

    def elaborate(self, platform):
        m = Module()
        bus = Signal(term_layout(FORMATS[self.fmt]))
        any_term = 0
        for term in self.terms:
            any_term = any_term | term.as_value()
        m.d.sync += bus.eq(any_term)
        sig, exp, nan = block_term(m, self.fmt, bus.sum, bus.a_scale, bus.b_scale)
        flags = Cat(bus.valid, bus.first, bus.final)
        for stage in range(TERM_STAGES):
            delayed = Signal(3, name=f"flags{stage}")
            m.d.sync += delayed.eq(flags)
            flags = delayed
        valid, first, final = flags

        m.submodules.unit = unit = Fp32ScaledAdd(*TERM_WIDTHS[self.fmt])
        m.submodules.sums = sums = SyncFIFO(width=32, depth=self.columns)
        p = unit.i.payload
        m.d.comb += [
            unit.i.valid.eq(valid), p.acc.eq(Mux(first, 0, sums.r_data)), p.sig.eq(sig), p.exp.eq(exp),
            p.nan.eq(nan), sums.r_en.eq(valid & ~first), unit.o.ready.eq(1),
        ]
        # whether each sum in the unit is a tile's final one, delayed to meet it
        finals = valid & final
        for stage in range(Fp32ScaledAdd.LATENCY):
            delayed = Signal(name=f"final{stage}")
            m.d.sync += delayed.eq(finals)
            finals = delayed
        m.d.comb += [self.result.eq(unit.o.payload.sum), sums.w_data.eq(unit.o.payload.sum),
                     sums.w_en.eq(unit.o.valid & ~finals)]
        return m
