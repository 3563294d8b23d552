"""The block-scaled (MXFP4 / NVFP4) PE of the training array and the float32 unit a group of rows shares.

An :class:`MxArrayProcessingElement` sums the exact E2M1 products of one block (the
:class:`rtl.mx_pe.MxProcessingElement`) and holds the finished block sum with the block's two
scale codes for almost a whole block. One :class:`MxGroupUnit` serves G rows of C PEs, G * C <=
block: when the group's first PE (its bottom row, column 0) finishes a block, the unit reads the
G * C block sums in turn, bottom row first, one per cycle, forms each term
(``rtl.mx_row.block_term``), adds it to +0 (a tile's first block) or to the PE's float32 sum from
its queue in an :class:`rtl.fp32_scaled_add.Fp32ScaledAdd`, and puts the rounded sum back into the
queue, or, for a tile's final block, into the PE's shadow (``store``). docs/architecture.md, "The
MX array", has the timing.
"""

from amaranth import Cat, Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from .fp32_scaled_add import Fp32ScaledAdd
from .mx_pe import BLOCKS, MxProcessingElement, sum_shape
from .mx_row import FORMATS, TERM_STAGES, TERM_WIDTHS, MxBlockTerm, check_format, select
from .params import check_int

#: Bits of one operand lane: the E2M1 code in bits 3..0, the block's scale code in bits 11..4.
LANE_WIDTH = 12
#: Cycles from a block's last operands at a PE to its finished block sum (``term.valid``).
TERM_DELAY = MxProcessingElement.LATENCY
#: Slots of the first level of the unit's read multiplexer (registered: a single multiplexer over
#: every PE of a group spanned the array in one cycle and limited its Fmax).
READ_SPAN = 4
#: Cycles from writing a sum into the group unit's queue to its output register.
QUEUE_DELAY = 2
#: Cycles from reading a block sum to its float32 sum on ``result``: the two read registers, the
#: term stages and the float32 unit.
UNIT_LATENCY = 2 + TERM_STAGES + Fp32ScaledAdd.LATENCY
#: The same from a block's last operands at the group's first PE (read as soon as it is finished).
SUM_LATENCY = TERM_DELAY + UNIT_LATENCY


def group_rows(block, cols):
    """Rows G served by one float32 unit: its G * C block sums must be read within one block."""
    return block // cols


def term_layout(block):
    """A finished block of one PE: its exact sum, scale codes and place in the tile."""
    return data.StructLayout({"valid": 1, "sum": sum_shape(block), "a_scale": 8, "b_scale": 8,
                              "first": 1, "final": 1})


class MxArrayProcessingElement(wiring.Component):
    """One output of the MX array: exact block sums, operand registers and a float32 shadow.

    Timing: operands on ``a``/``b`` with ``valid`` and the beat flags in cycle t; with the block's
    last beat, ``term.valid`` is high in t + 2 (``TERM_DELAY``) and the rest of ``term`` holds the
    block from t + 2 to t + block (until the next block's last beat is registered): the group's
    unit reads it in that window. ``store`` (from the unit) copies ``result`` into ``shadow``; the
    array's ``capture`` is not used (the unit knows when a PE's final sum is on ``result``).

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
    first, capture : In(1)
        Not used (every block sum starts from 0, the first block's term from +0; see ``store``).
    last, block_last, first_block : In(1)
        With ``valid``: the tile's last beat; the block's last beat; a beat of the tile's first block.
    store : In(1)
        Copy ``result`` into ``shadow``.
    shift : In(1)
        Load ``shadow`` from ``shift_in`` (when not storing).
    shift_in : In(32)
        The neighbour's ``shadow``.
    result : In(32)
        The group unit's latest float32 sum.
    a_out, b_out : Out(12)
        ``a`` and ``b`` delayed by one cycle.
    term : Out(term_layout(block))
        The last finished block; ``valid`` is high in the cycle it finishes.
    shadow : Out(32)
        A tile's finished float32 sum waiting to be shifted out.
    """

    def __init__(self, block):
        if block not in BLOCKS:
            raise ValueError(f"block must be one of {BLOCKS}, got {block!r}")
        self.block = block
        super().__init__({
            "a": In(LANE_WIDTH), "b": In(LANE_WIDTH), "valid": In(1), "first": In(1), "last": In(1),
            "block_last": In(1), "first_block": In(1), "capture": In(1), "store": In(1), "shift": In(1),
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
        # What the term needs besides the sum, kept from the block's last beat to the next one.
        held = Signal(data.StructLayout({"a_scale": 8, "b_scale": 8, "first": 1, "final": 1}))
        with m.If(self.valid & self.block_last):
            m.d.sync += held.eq(Cat(self.a[4:], self.b[4:], self.first_block, self.last))
        m.d.comb += self.term.as_value().eq(Cat(sums.done, sums.block_sum, held.as_value()))
        with m.If(self.store):
            m.d.sync += self.shadow.eq(self.result)
        with m.Elif(self.shift):
            m.d.sync += self.shadow.eq(self.shift_in)
        return m


class MxGroupUnit(wiring.Component):
    """The float32 accumulate shared by ``slots`` MX PEs (G rows of C, G * C <= block).

    ``start`` (the first PE's ``term.valid``) begins a pass: the unit reads ``terms[0]``,
    ``terms[1]``, ... one per cycle through two registered multiplexer levels, forms the term
    ``sig * 2**exp`` after ``TERM_STAGES`` registers and adds it to +0 (the tile's first block) or
    to that PE's sum from the queue; the rounded sum leaves on ``result``
    ``Fp32ScaledAdd.LATENCY`` cycles later and goes back into the queue, or, for a tile's final
    block, to the PE's shadow (``store[k]``). A pass reads the PEs in the same order every block,
    so the queue (``slots`` deep) hands each PE its own sum; the sum must be on the queue's output
    (``QUEUE_DELAY`` cycles after it is written) before the next block's pass pops it, at least
    ``block`` cycles after this one: Fp32ScaledAdd.LATENCY + QUEUE_DELAY <= block.

    Parameters
    ----------
    fmt : str
        "mxfp4" or "nvfp4".
    slots : int
        PEs served, in reading order (2..block).

    Members
    -------
    terms : In(term_layout(block)) per slot
        The PEs' ``term`` ports, in reading order.
    start : In(1)
        The first PE has finished a block.
    result : Out(32)
        The float32 sum leaving the unit in this cycle.
    store : Out(slots)
        Bit k: ``result`` is PE k's final sum of a tile.
    """

    def __init__(self, fmt, slots):
        check_format(fmt)
        check_int("slots", slots, 2, FORMATS[fmt])
        if Fp32ScaledAdd.LATENCY + QUEUE_DELAY > FORMATS[fmt]:
            raise ValueError(f"a {fmt} block of {FORMATS[fmt]} cycles is shorter than the float32 unit's "
                             f"latency {Fp32ScaledAdd.LATENCY} plus the queue's {QUEUE_DELAY}")
        self.fmt, self.slots = fmt, slots
        super().__init__({"terms": In(term_layout(FORMATS[fmt])).array(slots), "start": In(1),
                          "result": Out(32), "store": Out(slots)})

    def elaborate(self, platform):
        m = Module()
        count = self.slots
        # a pass reads slot 0 in the cycle of ``start``, then one slot per cycle; ``index`` is 0
        # between passes, so the read multiplexer is driven straight from a register
        busy, index = Signal(), Signal(range(count))
        reading, end = self.start | busy, index == count - 1
        with m.If(reading):
            m.d.sync += [index.eq(Mux(end, 0, index + 1)), busy.eq(~end)]
        # two registered levels: groups of READ_SPAN slots selected by the low bits of ``index``,
        # then the group by the rest
        terms = [term.as_value() for term in self.terms]
        low, high = Signal(range(READ_SPAN)), Signal(range(count))
        m.d.comb += [low.eq(index), high.eq(index >> low.shape().width)]
        parts = []
        for first_slot in range(0, count, READ_SPAN):
            part = Signal(len(terms[0]), name=f"part{first_slot // READ_SPAN}")
            m.d.sync += part.eq(select(terms[first_slot:first_slot + READ_SPAN], low))
            parts.append(part)
        part_index, part_reading, part_slot = Signal(range(len(parts))), Signal(), Signal(range(count))
        m.d.sync += [part_index.eq(high), part_reading.eq(reading), part_slot.eq(index)]
        bus = Signal(term_layout(FORMATS[self.fmt]))
        slot = Signal(range(count))
        m.d.sync += [bus.eq(select(parts, part_index)), bus.valid.eq(part_reading), slot.eq(part_slot)]
        m.submodules.term = term = MxBlockTerm(self.fmt)
        m.d.comb += [term.block_sum.eq(bus.sum), term.a_scale.eq(bus.a_scale), term.b_scale.eq(bus.b_scale)]
        sig, exp, nan = term.sig, term.exp, term.nan
        flags = Cat(bus.valid, bus.first, bus.final, slot)
        for stage in range(TERM_STAGES):
            delayed = Signal(len(flags), name=f"flags{stage}")
            m.d.sync += delayed.eq(flags)
            flags = delayed
        valid, first, final, slot = flags[0], flags[1], flags[2], flags[3:]

        m.submodules.unit = unit = Fp32ScaledAdd(*TERM_WIDTHS[self.fmt])
        m.submodules.sums = sums = SyncFIFOBuffered(width=32, depth=count)
        p = unit.i.payload
        m.d.comb += [
            unit.i.valid.eq(valid), p.acc.eq(Mux(first, 0, sums.r_data)), p.sig.eq(sig), p.exp.eq(exp),
            p.nan.eq(nan), sums.r_en.eq(valid & ~first), unit.o.ready.eq(1),
        ]
        # whether each sum in the unit is a tile's final one, and its slot, delayed to meet it
        tag = Cat(valid & final, slot)
        for stage in range(Fp32ScaledAdd.LATENCY):
            delayed = Signal(len(tag), name=f"tag{stage}")
            m.d.sync += delayed.eq(tag)
            tag = delayed
        final, slot = tag[0], tag[1:]
        m.d.comb += [self.result.eq(unit.o.payload.sum), sums.w_data.eq(unit.o.payload.sum),
                     sums.w_en.eq(unit.o.valid & ~final)]
        m.d.comb += [self.store[k].eq(unit.o.valid & final & (slot == k)) for k in range(count)]
        return m
