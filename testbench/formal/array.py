"""Properties of the training array (2 x 2, bounded): the output protocol, the error flag, mode changes."""

from amaranth import Cat, Signal
from amaranth.hdl import Assert, Cover

from golden.tiling import Mode
from rtl.array import TrainingArray

from .harness import CheckHarness, Dut, delayed, past_valid
from .streams import Scoreboard, source_rules, stream_rules

ROWS = COLS = 2
#: Tiles the array can hold at once: one accumulating, two waiting to drain, one draining.
TILES_IN_FLIGHT = 4


class ArrayHarness(CheckHarness):
    """TrainingArray 2 x 2 (8-bit accumulators) with any commands, operand gaps and back-pressure.

    ``check``:

    * ``protocol``: ``o`` holds while stalled; each tile's rows leave in order 0..R-1 with
      ``last`` on row R-1, exactly once, carrying the mode and s of their own command, tiles in
      command order; a beat is taken from ``a`` and ``b`` together; a command is consumed with
      its last beat, one with K = 0 or mode 3 at once unless ``o`` is stalled; ``error`` is exactly
      "a command with K = 0 or mode 3 was consumed" (sticky); a beat of another mode than the
      tiles still accumulating is never taken;
    * ``cover``: traces where a tile of each mode leaves completely.
    """

    def __init__(self, check, edit=None):
        super().__init__(check, Dut(TrainingArray(ROWS, COLS, 8, 8), "training_array_2x2", edit=edit))

    def elaborate(self, platform):
        m, p = self.dut_module()
        started = past_valid(m, 1)
        for name in ("cmd", "a", "b"):
            source_rules(m, getattr(p, name), started, name)

        cmd = p.cmd.payload
        bad = (cmd.k == 0) | (cmd.mode == 3)
        beat = p.a.valid & p.a.ready
        taken = Signal(len(cmd.k))                 # beats of the current command taken so far
        last_beat = beat & (taken == cmd.k - 1)
        with m.If(beat):
            m.d.sync += taken.eq(taken + 1)
        with m.If(last_beat):
            m.d.sync += taken.eq(0)
        out = p.o.valid & p.o.ready

        if self.check == "cover":
            for mode in (Mode.FWD, Mode.BWD_DATA, Mode.BWD_WEIGHT):
                m.d.comb += Cover(out & p.o.payload.last & (p.o.payload.mode == mode))
            return m

        stream_rules(m, p.o, started, "o")
        m.d.comb += Assert((p.a.valid & p.a.ready) == (p.b.valid & p.b.ready))
        m.d.comb += Assert(~(p.cmd.valid & p.cmd.ready & ~bad) | last_beat)   # consumed with its last beat
        can_move = ~p.o.valid | p.o.ready
        m.d.comb += Assert(~(p.cmd.valid & bad & can_move) | p.cmd.ready)      # a bad command: at once

        # Rows in order, each tile exactly once, with its own command's mode and s, tiles in order.
        row = Signal(range(ROWS))
        with m.If(out):
            m.d.sync += row.eq((row + 1) % ROWS)
        m.d.comb += Assert(~p.o.valid | ((p.o.payload.row == row) & (p.o.payload.last == (row == ROWS - 1))))
        tile = p.o.payload
        Scoreboard(m, 2 + len(cmd.s), TILES_IN_FLIGHT, last_beat, Cat(cmd.mode, cmd.s), out & tile.last,
                   Cat(tile.mode, tile.s))

        # error: sticky, set exactly by consuming a command with K = 0 or mode 3.
        error = Signal()
        m.d.sync += error.eq(error | (p.cmd.valid & p.cmd.ready & bad))
        m.d.comb += Assert(p.error == error)

        # A mode change waits until the tiles still accumulating have left the PEs, i.e. until
        # the drain of the last of them starts (its row 0 appears on o).
        accumulating = Signal(range(TILES_IN_FLIGHT + 1))
        mode = Signal(2)
        partial = Signal()
        row0_held = delayed(m, p.o.valid & ~p.o.ready & (p.o.payload.row == 0), 1, "row0_held")
        drain_starts = p.o.valid & (p.o.payload.row == 0) & ~row0_held
        m.d.sync += accumulating.eq(accumulating + last_beat - drain_starts)
        with m.If(beat):
            m.d.sync += [mode.eq(cmd.mode), partial.eq(~last_beat)]
        still = (accumulating != drain_starts) | partial        # a drain starting this cycle has left
        m.d.comb += Assert(~beat | ~still | (cmd.mode == mode))
        return m

