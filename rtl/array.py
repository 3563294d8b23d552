"""The training array: an R x C output-stationary systolic array for the three GEMMs of a 4-bit step.

docs/architecture.md describes the dataflow, the ports and the timing; golden/tiling.py is the
bit-exact model of what the array emits.
"""

from amaranth import Cat, EnableInserter, Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.wiring import In, Out

from golden.fp4 import S_MAX
from golden.tiling import K_MAX, SIZE_MAX, SIZE_MIN
from golden.units import BWD_WIDTH, FWD_WIDTH, WIDTH_MAX, WIDTH_MIN

from .array_pe import FourBitDspPe, FourBitPe, Fp16PipePe, MxPe
from .mx_row import FORMATS
from .params import check_int

SCALE_SHAPE = signed(S_MAX.bit_length() + 1)  # the scale exponent range -32..31
CommandLayout = data.StructLayout({"mode": 2, "k": K_MAX.bit_length(), "s": SCALE_SHAPE})
_TileLayout = data.StructLayout({"mode": 2, "s": SCALE_SHAPE})   # what the output beats carry
META_DEPTH = 2   # tiles between their last beat and the start of their drain (at least)


def _beat_control(sums, fields, tag_width):
    """``valid``, ``first`` of a beat; ``last`` bit l: the beat is the last one of ring slot l's sum;
    ``tag``: its tile's mode tag (``PeKind.mode_tag``); the PE's own per-beat flags ``fields``."""
    tag = {"tag": tag_width} if tag_width else {}
    return data.StructLayout({"valid": 1, "first": 1, "last": sums, **tag, **{name: 1 for name in fields}})


def operand_skew(rows, cols, rows_per_pe=1):
    """Register stages of the operand skew: ``(a, b)``, A lane i delayed ``a[i]`` cycles (R - t, t the
    top row of its PE, whose rows all keep the top row's timing), B lane j ``b[j] = j + 1`` cycles."""
    return [rows - i + i % rows_per_pe for i in range(rows)], [j + 1 for j in range(cols)]


def pack_lanes(values):
    """Raw bits of one operand beat: lane i (4-bit two's complement or unsigned) at bits 4i..4i+3."""
    return sum((int(value) & 0xF) << (4 * lane) for lane, value in enumerate(values))


def pack_command(mode, k, s):
    """Raw bits of a command payload."""
    return CommandLayout.const({"mode": int(mode), "k": int(k), "s": int(s)}).as_bits()


def output_layout(rows, cols, width):
    """One output beat of the 4-bit array: a row of ``cols`` accumulators with flags, its row index
    and tile metadata."""
    return FourBitPe(width, width).output_layout(rows, cols, SCALE_SHAPE)


class TrainingArray(wiring.Component):
    """R x C processing elements computing one output tile per command, FWD / BWD_DATA / BWD_WEIGHT.

    A command ``(mode, k, s)`` on ``cmd`` stays valid while its K operand beats are taken; beat t
    is column t of the tile's A block on ``a`` together with row t of its B block on ``b`` (both
    streams are taken in the same cycle). The command is consumed with the tile's last beat. R + C
    + 2 cycles after that beat, the tile's R result rows leave on ``o`` in order (row 0 first),
    while the next tile accumulates. K is accumulated in ascending order. golden.tiling models
    the numerics and the beat order; docs/architecture.md the timing.

    Operand lanes are raw 4-bit codes: for FWD, A = activation codes 0..15 and B = weight codes
    -8..7 (two's complement; -8 is legal and multiplies exactly); for BWD_DATA, A = FP4 codes of
    dY (phase 0, code 0b1000 reads as 0) and B = weight codes -8..7; for BWD_WEIGHT, A = FP4 codes
    of dY^T (phase 1) and B = activation codes 0..15 (the array computes dW^T = dY^T . X).

    Flow control and bad input:

    * Input gaps become bubbles; only output back-pressure stalls the whole array, in lockstep:
      an output row offered and not taken waits in a skid register, and the array stands still
      from the next cycle until the cycle after that row is taken (``o.ready`` reaches no other
      logic in the same cycle).
    * A command with K = 0 or mode 3 is consumed at once, takes no beats, produces no output and
      sets the sticky ``error`` flag (cleared by reset only).
    * A command whose mode differs from the mode of the tiles still accumulating waits (no beat is
      taken) until those tiles have left the PEs.
    * The last beat of a tile is taken at least R + C - 1 cycles after the last beat of the
      previous tile, so that a tile's results never overtake the previous tile's drain.

    Parameters
    ----------
    rows, cols : int
        Array size R, C (2..32).
    fwd_width, bwd_width : int
        Accumulator widths (8..64) of FWD and of the backward modes.

    Members
    -------
    cmd : In(stream.Signature(CommandLayout))
        ``mode`` (a :class:`golden.tiling.Mode`), ``k`` (1..65535 beats), ``s`` (scale exponent,
        copied to the output beats). Must stay unchanged until consumed.
    a : In(stream.Signature(data.ArrayLayout(4, rows)))
        Lane i: A[i, k] of the current beat.
    b : In(stream.Signature(data.ArrayLayout(4, cols)))
        Lane j: B[k, j] of the current beat.
    o : Out(stream.Signature(output_layout(rows, cols, W)))
        ``acc[j]``, ``overflow[j]`` of output row ``row`` (``last`` on row R - 1); ``mode`` and
        ``s`` of its tile. W = max(fwd_width, bwd_width); FWD values are sign-extended.
    error : Out(1)
        Sticky: a command with K = 0 or mode 3 was dropped.

    Raises
    ------
    TypeError, ValueError
        For a parameter that is not an int in its range.
    """

    #: The latency depends on the size: see the ``latency`` attribute of an instance.
    LATENCY = None
    _pe_kind = FourBitPe

    def __init__(self, rows=8, cols=8, fwd_width=FWD_WIDTH, bwd_width=BWD_WIDTH):
        fwd_width = check_int("fwd_width", fwd_width, WIDTH_MIN, WIDTH_MAX)
        bwd_width = check_int("bwd_width", bwd_width, WIDTH_MIN, WIDTH_MAX)
        self.width = max(fwd_width, bwd_width)
        self._setup(rows, cols, self._pe_kind(fwd_width, bwd_width))

    def _setup(self, rows, cols, pe):
        """Size, PE kind (:mod:`rtl.array_pe`), timing and signature; the array is the same for every PE."""
        self.rows = check_int("rows", rows, SIZE_MIN, SIZE_MAX)
        self.cols = check_int("cols", cols, SIZE_MIN, SIZE_MAX)
        self.pe = pe
        #: Running sums per PE (L): a tile has L*R output rows and L beats per k.
        self.sums = pe.sums
        #: Output rows of a tile.
        self.tile_rows = rows * pe.sums
        #: Cycles from taking the last beat of a tile to its first output row (without stalls).
        self.latency = rows + cols + pe.sum_latency
        #: Minimum distance in cycles from the last beat of a tile to the first beat of the next
        #: tile's last k (its last beat when L = 1).
        self.tile_period = self.tile_rows + cols - 1 + pe.period_extra
        # A tile waits in the metadata queue from its last beat for rows + cols - 2 + sum_latency
        # cycles; last beats are at least max(tile_period, depth_step) cycles apart.
        spacing = max(self.tile_period, pe.depth_step)
        self.meta_depth = max(META_DEPTH, -(-(rows + cols - 2 + pe.sum_latency) // spacing))
        super().__init__({
            "cmd": In(stream.Signature(CommandLayout)),
            "a": In(stream.Signature(data.ArrayLayout(pe.operand_width, rows))),
            "b": In(stream.Signature(data.ArrayLayout(pe.operand_width, cols))),
            "o": Out(stream.Signature(pe.output_layout(self.tile_rows, cols, SCALE_SHAPE))),
            "error": Out(1),
        })

    def elaborate(self, platform):
        rows, cols, sums = self.rows, self.cols, self.sums
        m = Module()
        # Every register of the array advances together; the metadata queue is written and read
        # only in advancing cycles, so it needs no enable of its own. ``advance`` is a register:
        # an output beat not taken when it is offered waits in a skid register (``o`` shows it
        # while the array stands still), so that no path leads from ``o.ready`` to the intake.
        # It is replicated: the intake, the drain and the output use ``advance``; each row of PEs
        # (with its control and operand registers) and each unit the PEs share has a copy with the
        # same next state, so that no single net drives the enables of the whole array. The copies
        # are kept, else Yosys' opt_merge merges the equal registers back into one.
        core = Module()
        advance = Signal(init=1, attrs={"keep": 1})
        copies = [advance]

        def stall_copy():
            copy = Signal(init=1, name=f"advance_{len(copies)}", attrs={"keep": 1})
            copies.append(copy)
            return copy

        m.submodules.core = EnableInserter(advance)(core)
        # (mode, s) of each tile from its last beat until its drain starts; at most 2 are pending.
        m.submodules.meta = meta = SyncFIFO(width=_TileLayout.size, depth=self.meta_depth)

        # Command and beat intake. No adder between the command and ``take``: whether the tile has
        # started and whether its next step is the last are registered a step ahead.
        cmd = self.cmd.payload
        bad = (cmd.k == 0) | (cmd.mode == 3)  # 3 is the only 2-bit value that is not a Mode
        bad_depth = self.pe.bad_depth(cmd.k)
        if bad_depth is not None:
            bad = bad | bad_depth
        taken = Signal(len(cmd.k))
        ahead = Signal(len(cmd.k) + 1, init=2)   # taken + 2, so that next_last is a compare, no adder
        started = Signal()     # taken != 0
        next_last = Signal()   # taken == cmd.k - 1, once started
        cooldown = Signal(range(self.tile_period))
        mode = Signal(2)
        first, last = ~started, Mux(started, next_last, cmd.k == 1)   # of the k steps
        can_take = (advance & self.cmd.valid & ~bad & ((cmd.mode == mode) | (meta.level == 0))
                    & (~last | (cooldown == 0)))
        final = last    # the beat ends the tile
        if sums > 1:
            # Beat l of every k of a tile must join the same ring slot: after the tile's first beat
            # (which starts phase 0 whenever it is taken) beat l is taken only in cycles of phase l.
            phase, sub = Signal(range(sums), name="phase"), Signal(range(sums), name="sub")
            starts = first & (sub == 0)
            can_take &= (sub == phase) | starts
            step_done = sub == sums - 1
            final = last & step_done
        take = can_take & self.a.valid & self.b.valid
        if sums > 1:
            core.d.sync += phase.eq(Mux(take & starts, 1, Mux(phase == sums - 1, 0, phase + 1)))
        pending = data.View(_TileLayout, meta.w_data)
        m.d.comb += [
            self.a.ready.eq(can_take & self.b.valid),
            self.b.ready.eq(can_take & self.a.valid),
            self.cmd.ready.eq(bad | (take & final)),
            meta.w_en.eq(take & final),
            pending.mode.eq(cmd.mode),
            pending.s.eq(cmd.s),
        ]
        next_step = [taken.eq(Mux(last, 0, taken + 1)), ahead.eq(Mux(last, 2, ahead + 1)), started.eq(~last),
                     next_last.eq(ahead == cmd.k)]
        with core.If(take):
            if sums == 1:
                core.d.sync += [*next_step, mode.eq(cmd.mode)]
            else:
                core.d.sync += [mode.eq(cmd.mode), sub.eq(Mux(step_done, 0, sub + 1))]
                with core.If(step_done):
                    core.d.sync += next_step
        with core.If(take & final):
            core.d.sync += cooldown.eq(self.tile_period - 1)
        with core.Elif(cooldown != 0):
            core.d.sync += cooldown.eq(cooldown - 1)
        with m.If(self.cmd.valid & bad):
            m.d.sync += self.error.eq(1)

        # Control travels along the anti-diagonals: the control of a beat reaches the PEs at distance
        # d from the first PE (row R-1, column 0) together with its operands, d cycles after the
        # intake; a PE's sum holds that beat's term sum_latency cycles later. Each beat carries its
        # tile's mode tag, so that no mode register drives every PE. ctrl[d] (the control at
        # distance d) climbs column 0; every PE has its own control register, loaded from its left
        # neighbour's (column 0: from the chain), so that each register drives one PE and one
        # register. They are kept: else Yosys' opt_merge merges the registers of an anti-diagonal
        # (equal inputs) back into one that drives all its PEs across the die.
        lag = self.pe.sum_latency
        fields = self.pe.beat_fields(taken)
        tag = self.pe.mode_tag(cmd.mode)
        # Control words are plain bits seen through views: a layout signal is a Verilog wire per field.
        beat_control = _beat_control(sums, fields, len(tag))
        intake = data.View(beat_control, Signal(beat_control.size, name="intake"))
        ctrl = [data.View(beat_control, Signal(beat_control.size, name=f"ctrl{d}")) for d in range(rows - 1 + lag)]
        upstream = [intake, *ctrl]   # upstream[d]: the control that reaches distance d next cycle
        last_of_slot = take & last if sums == 1 else Cat(take & last & (sub == slot) for slot in range(sums))
        m.d.comb += [intake.valid.eq(take), intake.first.eq(take & first), intake.last.eq(last_of_slot)]
        if len(tag):
            m.d.comb += intake.tag.eq(tag)
        m.d.comb += [intake[name].eq(take & value) for name, value in fields.items()]
        core.d.sync += [ctrl[d].eq(upstream[d]) for d in range(len(ctrl))]
        read = ["valid", "first", *(["tag"] if len(tag) else []), *self.pe.beat_inputs]
        pe_control = data.StructLayout({**{name: len(intake[name]) for name in read}, "capture": sums})

        per_pe = self.pe.rows_per_pe
        spans = [range(top, min(top + per_pe, rows)) for top in range(0, rows, per_pe)]
        row_advance = [stall_copy() for _ in spans]
        a_skew, b_skew = operand_skew(rows, cols, per_pe)
        a_lanes, b_lanes = [], []
        for g, span in enumerate(spans):
            with m.If(row_advance[g]):
                a_lanes += [self._delay(m, self.a.payload[i], a_skew[i], f"a{i}_") for i in span]
        with m.If(row_advance[-1]):   # the bottom row takes the B lanes
            b_lanes = [self._delay(m, self.b.payload[j], b_skew[j], f"b{j}_") for j in range(cols)]

        control = [[data.View(pe_control, Signal(pe_control.size, name=f"ctrl_{span[0]}_{j}", attrs={"keep": 1}))
                    for j in range(cols)] for span in spans]
        start = control[0][cols - 1].capture[-1]  # the last PE (row 0, column C-1) captures its last sum

        # Drain: holding[p] marks shadow entry p of every column (entry l of PE row i at p = i*L + l,
        # output row p of the tile) as still holding the draining tile.
        holding = Signal(self.tile_rows)
        row = Signal(range(self.tile_rows))
        tile = Signal(_TileLayout)
        m.d.comb += meta.r_en.eq(start & advance)
        with core.If(start):
            core.d.sync += [holding.eq(-1), row.eq(0), tile.eq(meta.r_data)]
        with core.Elif(holding[0]):
            core.d.sync += [holding.eq(holding >> 1), row.eq(row + 1)]

        lanes = self.pe.lanes
        pes = [[self.pe.build(len(span)) for _ in range(cols)] for span in spans]
        for g, span in enumerate(spans):
            for j in range(cols):
                pe = pes[g][j]
                m.submodules[f"pe_{span[0]}_{j}"] = EnableInserter(row_advance[g])(pe)
                own = control[g][j]
                with m.If(row_advance[g]):
                    if j == 0:
                        distance = rows - 1 - span[0]
                        m.d.sync += [*(own[name].eq(upstream[distance][name]) for name in read),
                                     own.capture.eq(upstream[distance + lag].last)]
                    else:
                        m.d.sync += own.eq(control[g][j - 1])
                a_in = [a_lanes[i] for i in span] if j == 0 else lanes(pes[g][j - 1], "a_out")
                m.d.comb += [
                    *(port.eq(value) for port, value in zip(lanes(pe, "a"), a_in)),
                    pe.b.eq(b_lanes[j] if g == len(spans) - 1 else pes[g + 1][j].b_out),
                    *(getattr(pe, name).eq(value)
                      for name, value in (self.pe.mode_inputs(own.tag) if len(tag) else {}).items()),
                    *(getattr(pe, name).eq(own[name]) for name in self.pe.beat_inputs),
                    pe.valid.eq(own.valid),
                    pe.first.eq(own.first),
                    pe.capture.eq(own.capture),
                    *(port.eq(holding[i * sums:(i + 1) * sums]) for port, i in zip(lanes(pe, "shift"), span)),
                ]
                if g < len(spans) - 1:
                    m.d.comb += pe.shift_in.eq(lanes(pes[g + 1][j], "shadow")[0])
        self.pe.connect_rows(m, pes, lambda unit: EnableInserter(stall_copy())(unit))

        # The drain's beat, offered in advancing cycles (plain bits: no Verilog wire per field).
        beat = data.View(self.o.payload.shape(), Signal(self.o.payload.shape().size))
        m.d.comb += [beat.row.eq(row), beat.last.eq(~holding[1]), beat.mode.eq(tile.mode), beat.s.eq(tile.s)]
        for j, pe in enumerate(pes[0]):
            shadow = lanes(pe, "shadow")[0]
            m.d.comb += [beat[name][j].eq(value) for name, value in self.pe.outputs(shadow, tile.mode).items()]
        skid = Signal(self.o.payload.shape().size, reset_less=True)
        with m.If(advance & holding[0] & ~self.o.ready):
            m.d.sync += skid.eq(beat)
        # Low from the cycle after a row offered is not taken until the cycle after it is taken.
        m.d.sync += [copy.eq(self.o.ready | (copy & ~holding[0])) for copy in copies]
        m.d.comb += [
            self.o.valid.eq(~advance | holding[0]),
            self.o.payload.eq(Mux(advance, beat, skid)),
        ]
        return m

    def timing(self, commands):
        """Cycle numbers for a host that never stalls, per tile: (first beat, last beat, first output row).

        ``commands`` are the ``(mode, k)`` of valid commands, the first presented with its beats
        in cycle 0; ``o.ready`` is always high. Row r of a tile leaves in cycle first output row + r.
        A tile takes L beats per k; beat l of a k step is taken only in a cycle t with t - F = l
        (mod L), F the cycle of the tile's first beat.
        """
        sums = self.sums
        result = []
        for index, (mode, k) in enumerate(commands):
            if index == 0:
                first, last_step = 0, (k - 1) * sums
            else:
                prev_mode, (_, prev_last, _) = commands[index - 1][0], result[-1]
                first = prev_last + (1 if mode == prev_mode else self.latency)
                held = prev_last + self.tile_period   # the earliest beat of the last k step
                if k == 1:  # only a tile's last k step waits for the tile period
                    first = last_step = max(first, held)
                else:       # in its own phase
                    last_step = first + sums * max(k - 1, -(-(held - first) // sums))
            last = last_step + sums - 1
            result.append((first, last, last + self.latency))
        return result

    @staticmethod
    def _delay(module, value, cycles, prefix):
        """``value`` delayed by ``cycles`` registers of ``module``'s sync domain."""
        for stage in range(cycles):
            delayed = Signal(len(value), name=f"{prefix}{stage}")
            module.d.sync += delayed.eq(value)
            value = delayed
        return value


class DspTrainingArray(TrainingArray):
    """The same array, ports, timing and results, with the FWD products of two rows on one hard multiplier.

    Rows 2t and 2t + 1 of a column form one :class:`rtl.dsp_pair_pe.DspPairProcessingElement`
    (the last row of an odd R a 1-row one): their two INT4 x INT4 products are one 12 x 4-bit
    multiply, a MULT18X18D on the ECP5 (and LUTs on iCE40, from the same Verilog). The FP4 x INT4
    products of the backward modes stay LUT shifts. The lower row of a pair works one cycle
    later than in :class:`TrainingArray`, which no output, latency or tile period sees
    (docs/architecture.md). Parameters as :class:`TrainingArray`.
    """

    _pe_kind = FourBitDspPe


class Fp16TrainingArray(TrainingArray):
    """The same array with pipelined IEEE binary16 PEs (:class:`rtl.fp16_array_pe.Fp16ProcessingElement`).

    Everything in :class:`TrainingArray` holds with these differences: operand lanes are
    binary16 bit patterns (16 bits); each PE holds L = ``sums`` (6) interleaved running sums, so
    a command computes an L*R x C tile in L beats per k (beat l of a k step carries the A rows
    i*L + l and is taken only in a cycle of phase l, see docs/architecture.md) and R*L output rows;
    the output beat carries per column the binary16 sum ``acc`` with its sticky ``invalid`` and
    ``overflow`` flags (:mod:`golden.fp16`'s conventions); the three modes run the same FP16 GEMM
    (the mode still orders the tiles and travels to the output beats, as does ``s``); the latency
    is R + C + 11. golden.fp16_tiling models the numerics, the beats and the output rows.

    Parameters
    ----------
    rows, cols : int
        Array size R, C (2..32).
    """

    def __init__(self, rows=8, cols=8):
        self._setup(rows, cols, Fp16PipePe())


class MxTrainingArray(TrainingArray):
    """The same array with block-scaled E2M1 PEs (:class:`rtl.mx_array_pe.MxArrayProcessingElement`)
    and one float32 unit per group of rows (:class:`rtl.mx_array_pe.MxGroupUnit`).

    Everything in :class:`TrainingArray` holds with these differences (docs/architecture.md, "The
    MX array"): a lane is 12 bits, the E2M1 code in bits 3..0 and the scale code of its block
    (E8M0 for MXFP4, E4M3 for NVFP4) in bits 11..4, read with the block's last beat; K must be a
    multiple of the block (32 or 16), else the command is bad (dropped, ``error`` set); the output
    beat carries per column the float32 sum ``acc`` with ``invalid`` (it is NaN: a NaN scale) and
    ``overflow`` (it is +-Inf); the three modes run the same GEMM (each blocked along its own
    reduction axis by the host); latency and tile period grow by 17 and E = (G - 1)(C - 1), with
    G = block // C rows sharing one float32 unit (:class:`rtl.array_pe.MxPe`). golden.mx_tiling
    models the numerics and the beats (NVFP4: the sums before the tensor scales).

    Parameters
    ----------
    rows, cols : int
        Array size R, C: 2..32, and C at most the block size (one float32 unit serves a row).
    fmt : str
        "mxfp4" or "nvfp4".
    """

    def __init__(self, rows=8, cols=8, fmt="mxfp4"):
        if fmt not in FORMATS:
            raise ValueError(f"fmt must be one of {sorted(FORMATS)}, got {fmt!r}")
        check_int("rows", rows, SIZE_MIN, SIZE_MAX)
        check_int("cols", cols, SIZE_MIN, FORMATS[fmt])
        self.fmt = fmt
        self._setup(rows, cols, MxPe(fmt, rows, cols))
