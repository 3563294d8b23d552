"""Host-side driver of the training array (rtl/array.py) under cocotb: whole GEMMs, tile by tile.

:meth:`ArrayDriver.gemm` cuts an M x K x N GEMM into R x C tiles with golden.tiling (zero padding,
tile rows outer), streams each tile's command and its K operand beats into the array through
stream sources on ``cmd``, ``a`` and ``b`` (optional random valid gaps), collects the R output
rows of every tile with a sink on ``o`` (optional random back-pressure), checks them beat by
beat against golden.tiling (:class:`Scoreboard`) and assembles the cropped M x N result from
what the array emitted: a golden.units.Accumulated like golden.units.gemm_int4 /
gemm_fp4_int4 return. :class:`ArrayBackend` offers it as a golden.training.layers.GemmBackend to
training code that runs in a cocotb bridge thread.

The modes and operands are those of golden.tiling: FWD (A = activation codes 0..15, B = weight
codes), BWD_DATA (A = FP4 codes of dY in phase 0, B = weight codes of W^T) and BWD_WEIGHT (A =
FP4 codes of dY^T in phase 1, B = activation codes; the caller transposes dW^T).
"""

import json
import math
from collections import Counter
from pathlib import Path
from typing import NamedTuple

import numpy as np
from cocotb.clock import Clock
from cocotb.task import resume
from cocotb.triggers import ClockCycles

import rtl.generate
from golden import tiling
from golden.tiling import Mode
from rtl import tools
from rtl.array import output_layout

from .payloads import commands_and_beats
from .stream_bench import PERIOD_NS
from .streams import StreamSink, StreamSource, transfer

#: Where :func:`measure_step` writes the cycles of a training step, one file per array module.
STEP_DIR = Path(__file__).resolve().parents[1] / "build" / "chip" / "steps"
SHOWN_BEATS = 48           # operand beats printed per lane in a failure report
K_RANDOM_MAX = 300
RATES = [(1.0, 1.0), (0.7, 0.6), (0.9, 0.3), (0.5, 1.0)]   # (valid_rate, ready_rate) of a run


class CycleCounter:
    """A :class:`~testbench.streams.Streams` endpoint numbering the clock cycles: ``now`` is 0 in
    the first cycle after the streams start."""

    def __init__(self):
        self.now = -1

    def after_edge(self):
        self.now += 1

    def sample(self):
        pass

    def idle(self):
        pass


class TimedSource(StreamSource):
    """A stream source that also notes the cycle of every transfer in :attr:`cycles`."""

    def __init__(self, dut, port, rng, valid_rate, clock):
        super().__init__(dut, port, rng, valid_rate)
        self.clock, self.cycles = clock, []

    def sample(self):
        super().sample()
        if self.taken:
            self.cycles.append(self.clock.now)


class TimedSink(StreamSink):
    """A stream sink that also notes the cycle of every transfer in :attr:`cycles`."""

    def __init__(self, dut, port, rng, ready_rate, clock):
        super().__init__(dut, port, rng, ready_rate)
        self.clock, self.cycles = clock, []

    def sample(self):
        count = len(self.received)
        super().sample()
        if len(self.received) > count:
            self.cycles.append(self.clock.now)


class Transfers(NamedTuple):
    """What one :meth:`ArrayDriver.run` saw; cycles count from 0 = the first cycle of the run."""

    beats: list            #: golden.tiling.OutputBeat per output row, as the array emitted it
    out_cycles: list       #: cycle of each output row transfer
    beat_cycles: list      #: cycle of each operand beat (A and B transfer together)
    cmd_cycles: list       #: cycle of each command transfer
    cycles: int            #: cycles up to and including the last output row


class GemmRecord(NamedTuple):
    """Statistics of one GEMM run by :meth:`ArrayDriver.gemm`."""

    mode: Mode
    shape: tuple           #: (M, K, N)
    tiles: int
    cycles: int            #: array cycles from the first command to the last output row

    @property
    def macs(self):
        m, k, n = self.shape
        return m * k * n


class Scoreboard:
    """Compares the output beats of a run with golden.tiling.output_beats, through a BenchContext.

    Every accumulator of every output row is one vector (fields acc, overflow and the row's
    row, last, mode, s); a mismatch fails with the seed, the tile, the output beat, the tile's
    operand beats for that output, expected and actual values (:meth:`BenchContext.compare`).
    """

    def __init__(self, ctx):
        self.ctx = ctx

    def check(self, tiles, beats):
        """Compare ``beats`` (what the array emitted for ``tiles``, in order) with golden.tiling."""
        expected = tiling.output_beats(tiles)
        if len(beats) != len(expected):
            self.ctx.fail(f"expected {len(expected)} output rows for {len(tiles)} tiles, got {len(beats)}")
        self.ctx.compare(self._fields(expected), self._fields(beats),
                         lambda index: self._describe(tiles, expected, index[0]))

    def _fields(self, beats):
        cols = len(beats[0].acc)
        per_row = {name: np.repeat([int(getattr(beat, name)) for beat in beats], cols)
                   for name in ("row", "last", "mode", "s")}
        return {"acc": np.concatenate([np.asarray(beat.acc, np.int64) for beat in beats]),
                "overflow": np.concatenate([np.asarray(beat.overflow, bool) for beat in beats]), **per_row}

    @staticmethod
    def _describe(tiles, expected, index):
        cols = len(expected[0].acc)
        beat, col = divmod(index, cols)
        want = expected[beat]
        tile = tiles[want.tile]
        return (f"output beat {beat} = tile {want.tile} ({tile.mode.name}, k={tile.k}, s={tile.s}, output rows "
                f"{tile.row0}.., columns {tile.col0}..) row {want.row} column {col}; A lane {want.row} over "
                f"the beats {_shown(tile.a_beats[:, want.row])}, B lane {col} {_shown(tile.b_beats[:, col])}")


def _shown(values):
    values = [int(v) for v in values]
    more = f" ... ({len(values)} beats)" if len(values) > SHOWN_BEATS else ""
    return f"{values[:SHOWN_BEATS]}{more}"


class ArrayDriver:
    """Runs tiles and GEMMs on a TrainingArray (or a design with its ports) that is the cocotb top.

    Parameters
    ----------
    dut : cocotb handle
        With the array's ports ``cmd__*``, ``a__*``, ``b__*``, ``o__*``, ``clk``; clock running.
    ctx : testbench.checks.BenchContext
        Array parameters (``ctx.params``: rows, cols, fwd_width, bwd_width), the random generator
        and the comparisons.
    valid_rate : float
        Probability that an idle input stream offers its next payload in a cycle (1: no gaps).
    ready_rate : float
        Probability that ``o.ready`` is high in a cycle (1: no back-pressure).
    """

    def __init__(self, dut, ctx, valid_rate=1.0, ready_rate=1.0):
        self.dut, self.ctx = dut, ctx
        self.rows, self.cols = ctx.params["rows"], ctx.params["cols"]
        self.fwd_width, self.bwd_width = ctx.params["fwd_width"], ctx.params["bwd_width"]
        self.valid_rate, self.ready_rate = valid_rate, ready_rate
        self.layout = output_layout(self.rows, self.cols, max(self.fwd_width, self.bwd_width))
        self.scoreboard = Scoreboard(ctx)
        self.records = []

    def tiles(self, mode, a, b, s=0):
        """golden.tiling tiles of ``mode`` for this array's size and widths."""
        return tiling.tiles(mode, a, b, self.rows, self.cols, s, self.fwd_width, self.bwd_width)

    def expected(self, tiles):
        """The golden output beats of ``tiles``."""
        return tiling.output_beats(tiles)

    async def run(self, tiles, commands=None):
        """Stream ``tiles`` back to back, collect their output rows, check them; returns :class:`Transfers`.

        ``commands`` replaces the raw command payloads (e.g. with bad commands inserted, which take
        no beats). Fails when the rows do not all arrive in time or a surplus row follows.
        """
        packed, a_beats, b_beats = self.payloads(tiles)
        commands = packed if commands is None else commands
        expected = len(self.expected(tiles))
        rng, clock = self.ctx.rng, CycleCounter()
        cmd, a, b = (TimedSource(self.dut, port, rng, self.valid_rate, clock) for port in ("cmd", "a", "b"))
        out = TimedSink(self.dut, "o", rng, self.ready_rate, clock)
        slowest = min(self.valid_rate, self.ready_rate)
        budget = 200 + int(4 * (len(a_beats) + len(commands) * 3 * (self.rows + self.cols)) / slowest)
        received = await transfer(self.ctx, self.dut.clk, [(cmd, commands), (a, a_beats), (b, b_beats)], out,
                                  expected, budget, endpoints=[clock])
        if a.cycles != b.cycles:
            self.ctx.fail(f"A and B operand beats taken in different cycles: A {a.cycles}, B {b.cycles}")
        beats = [self._decode(n, bits) for n, bits in enumerate(received)]
        self.scoreboard.check(tiles, beats)
        return Transfers(beats, out.cycles, a.cycles, cmd.cycles, out.cycles[-1] + 1 if out.cycles else 0)

    def payloads(self, tiles):
        """Raw (commands, A beats, B beats) of ``tiles``."""
        return commands_and_beats(tiles)

    async def gemm(self, mode, a, b, s=0):
        """The GEMM ``a @ b`` of ``mode`` on the array; returns golden.units.Accumulated (int64, bool).

        Raises ValueError/TypeError (from golden.tiling) for bad modes, codes, shapes or s.
        """
        a, b = np.asarray(a), np.asarray(b)
        tiles = self.tiles(mode, a, b, s)
        transfers = await self.run(tiles)
        self.records.append(GemmRecord(Mode(mode), (a.shape[0], a.shape[1], b.shape[1]), len(tiles),
                                       transfers.cycles))
        return assemble(tiles, transfers.beats, a.shape[0], b.shape[1])

    def _decode(self, index, bits):
        row = self.layout.from_bits(bits)
        return tiling.OutputBeat(index // self.rows, int(row.row), bool(row.last), int(row.mode), int(row.s),
                                 np.array(list(row.acc), np.int64), np.array(list(row.overflow), bool))


def assemble(tiles, beats, m, n):
    """The cropped (m, n) result of ``tiles`` from the output rows ``beats`` the array emitted."""
    rows = len(tiles[0].acc)
    emitted = [tile._replace(acc=np.array([beat.acc for beat in beats[i * rows:(i + 1) * rows]]),
                             overflow=np.array([beat.overflow for beat in beats[i * rows:(i + 1) * rows]]))
               for i, tile in enumerate(tiles)]
    return tiling.assemble(emitted, m, n)


def cycles_by_mode(records):
    """Array cycles and MACs per GEMM mode name over ``records`` (GemmRecord list)."""
    cycles, macs = Counter(), Counter()
    for record in records:
        cycles[record.mode.name] += record.cycles
        macs[record.mode.name] += record.macs
    return dict(cycles), dict(macs)


class ArrayBackend:
    """A golden.training.layers.GemmBackend whose GEMMs run on the simulated array.

    For code running in a :func:`cocotb.task.bridge` thread: every call blocks until the array has
    computed the GEMM. Supported are the three GEMMs of the fourbit scheme at the array's widths:
    ``gemm_int4(signed_a=False)`` (FWD), ``gemm_fp4_int4(phase=0, signed_b=True)`` (BWD_DATA) and
    ``gemm_fp4_int4(phase=1, signed_b=False)`` (BWD_WEIGHT); anything else is a ValueError.
    """

    def __init__(self, driver):
        self.driver = driver
        self._gemm = resume(driver.gemm)

    def gemm_int4(self, a, b, signed_a, width):
        if signed_a is not False:
            raise ValueError(f"signed_a must be False (the array's A operand is unsigned in FWD), got {signed_a!r}")
        self._check_width(width, self.driver.fwd_width, "FWD")
        return self._gemm(Mode.FWD, a, b)

    def gemm_fp4_int4(self, codes, phase, b, signed_b, width):
        modes = {(0, True): Mode.BWD_DATA, (1, False): Mode.BWD_WEIGHT}
        mode = modes.get((phase, signed_b)) if isinstance(signed_b, bool) else None
        if mode is None:
            raise ValueError(f"(phase, signed_b) must be (0, True) for BWD_DATA or (1, False) for BWD_WEIGHT "
                             f"on the array, got ({phase!r}, {signed_b!r})")
        self._check_width(width, self.driver.bwd_width, mode.name)
        return self._gemm(mode, codes, b)

    @staticmethod
    def _check_width(width, array_width, mode):
        if width != array_width:
            raise ValueError(f"width must be the array's {mode} accumulator width {array_width}, got {width!r}")


class ArrayBench:
    """Clock and reset of the array as the simulation top; :class:`ArrayDriver` runs the GEMMs."""

    def __init__(self, dut, ctx):
        self.dut, self.ctx = dut, ctx
        self.rows, self.cols = ctx.params["rows"], ctx.params["cols"]

    async def start(self):
        """Clock and reset with every stream idle."""
        Clock(self.dut.clk, PERIOD_NS, unit="ns", impl="gpi").start()
        await self.reset()

    async def reset(self, cycles=2):
        for port in ("cmd", "a", "b"):
            getattr(self.dut, f"{port}__valid").value = 0
        self.dut.o__ready.value = 0
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, cycles)
        self.dut.rst.value = 0

    def driver(self, valid_rate=1.0, ready_rate=1.0):
        return ArrayDriver(self.dut, self.ctx, valid_rate, ready_rate)


def random_size(rng, lanes):
    """A GEMM dimension that is not a multiple of ``lanes``: 0..2 full tiles plus 1..lanes-1."""
    return lanes * int(rng.integers(0, 3)) + int(rng.integers(1, lanes))


def random_depth(rng):
    """K: 1, small, or up to K_RANDOM_MAX (mostly not a power of two)."""
    pick = rng.random()
    if pick < 0.15:
        return 1
    return int(rng.integers(2, 24)) if pick < 0.45 else int(rng.integers(24, K_RANDOM_MAX + 1))


def gemm_cycles(array, mode, m, k, n):
    """Cycles of one M x K x N GEMM alone on ``array`` (a TrainingArray) by its timing model: from the
    first command to the last output row, the host never stalling. A tile has ``tile_rows`` output
    rows where the array has them (PEs with several running sums), else R."""
    rows = getattr(array, "tile_rows", array.rows)
    tiles = math.ceil(m / rows) * math.ceil(n / array.cols)
    return array.timing([(mode, k)] * tiles)[-1][2] + rows


async def measure_step(ctx, driver, gemms):
    """Run ``gemms`` ((mode, A, B)) one after another on the array, each checked against golden, and
    write their cycles, measured and by the array's timing model, to STEP_DIR/<module>.json; a GEMM
    whose cycles differ from the model fails."""
    array = rtl.generate.build(ctx.unit, ctx.params)
    entries = []
    for mode, a, b in gemms:
        await driver.gemm(mode, a, b)
        record = driver.records[-1]
        model = gemm_cycles(array, record.mode, *record.shape)
        ctx.expect(record.cycles == model, f"{record.mode.name} GEMM {record.shape} took {record.cycles} cycles, "
                                           f"the timing model says {model}")
        entries.append({"mode": record.mode.name, "shape": list(record.shape), "tiles": record.tiles,
                        "cycles": record.cycles, "model_cycles": model})
    STEP_DIR.mkdir(parents=True, exist_ok=True)
    (STEP_DIR / f"{ctx.module}.json").write_text(json.dumps({
        "unit": ctx.unit, "params": ctx.params, "sim": ctx.sim, "seed": ctx.seed,
        "date": tools.utc_stamp(),
        "cycles": sum(e["cycles"] for e in entries), "model_cycles": sum(e["model_cycles"] for e in entries),
        "cycles_by_gemm": [e["cycles"] for e in entries],
        "macs": sum(int(np.prod(e["shape"])) for e in entries), "gemms": entries}, indent=2) + "\n")
