"""cocotb bench of the training array (rtl/array.py) against golden.tiling and golden.units.

The array is the simulation top and is driven through its streams by
:class:`testbench.array_driver.ArrayDriver`: GEMMs of all three modes with random shapes (M, N
not multiples of R, C; K from 1 to a few hundred), random valid gaps and back-pressure, several
GEMMs back to back so that mode changes meet busy tiles. Every output row is checked against
golden.tiling.output_beats and every assembled GEMM against the untiled golden.units GEMM
(golden.tiling.gemm). Directed tests cover the corner codes (weight -8, FP4 0b1000, 15),
saturation at both limits (configurations whose widths allow it within a few hundred beats), bad
commands (K = 0, mode 3: sticky ``error``, no output) and the documented timing of mode changes
(docs/architecture.md).
"""

import json
import os

import numpy as np
from cocotb.triggers import ReadOnly, RisingEdge

from golden import tiling, units
from golden.tiling import Mode
from rtl.array import pack_command

from .array_driver import RATES, ArrayBench, assemble, measure_step, random_depth, random_size
from .bench_train_steps import step_gemms
from .checks import bench_test

RANDOM_GEMMS = {"quick": 12, "full": 24, "long": 150}
SATURATION_BEATS = {"quick": 400, "full": 400, "long": 4000}  # K budget of a saturation GEMM
TOP_FP4, NEG_TOP_FP4, NEG_ZERO_FP4 = 0b0111, 0b1111, 0b1000   # +top level, -top level, -0 (reads as 0)


def random_operands(rng, mode, m, k, n):
    """Uniform codes of ``mode``: A 0..15; B -8..7 (0..15 for BWD_WEIGHT)."""
    a = rng.integers(0, 16, (m, k))
    b = rng.integers(0, 16, (k, n)) if mode is Mode.BWD_WEIGHT else rng.integers(-8, 8, (k, n))
    return a, b


class Gemm:
    """One GEMM of a test: operands, its tiles and its place in a run's tile list."""

    def __init__(self, driver, mode, a, b, s):
        self.mode, self.a, self.b = mode, a, b
        self.tiles = driver.tiles(mode, a, b, s)

    def check(self, ctx, beats, first_tile, rows):
        """Assemble this GEMM from the run's output rows and compare with the untiled golden GEMM."""
        mine = beats[first_tile * rows:(first_tile + len(self.tiles)) * rows]
        got = assemble(self.tiles, mine, self.a.shape[0], self.b.shape[1])
        want = tiling.gemm(self.mode, self.a, self.b, ctx.params["fwd_width"], ctx.params["bwd_width"])
        ctx.compare({"acc": want.acc.ravel(), "overflow": want.overflow.ravel()},
                    {"acc": got.acc.ravel(), "overflow": got.overflow.ravel()},
                    lambda index: self._describe(index[0]))

    def _describe(self, index):
        i, j = divmod(index, self.b.shape[1])
        return (f"{self.mode.name} GEMM {self.a.shape[0]}x{self.a.shape[1]}x{self.b.shape[1]} output ({i}, {j}): "
                f"A row {self.a[i].tolist()}, B column {self.b[:, j].tolist()}")


async def run_gemms(driver, ctx, gemms, commands=None):
    """Stream the tiles of ``gemms`` back to back in one run and check every GEMM; returns the Transfers.

    ``commands`` optionally replaces the raw command payloads (bad commands inserted between the tiles' own).
    """
    tiles = [tile for gemm in gemms for tile in gemm.tiles]
    transfers = await driver.run(tiles, commands)
    first = 0
    for gemm in gemms:
        gemm.check(ctx, transfers.beats, first, driver.rows)
        first += len(gemm.tiles)
    return transfers


@bench_test(ArrayBench)
async def random_gemms(bench):
    """Random GEMMs of every mode, 1-3 per run back to back (mode changes while busy), random
    shapes, K and s, random gaps and back-pressure per run."""
    ctx = bench.ctx
    rng, rows, cols = ctx.rng, bench.rows, bench.cols
    count, done = RANDOM_GEMMS[ctx.level], 0
    while done < count:
        valid_rate, ready_rate = RATES[int(rng.integers(len(RATES)))]
        driver = bench.driver(valid_rate, ready_rate)
        gemms = []
        for mode in rng.permutation(list(Mode))[:min(count - done, int(rng.integers(1, 4)))]:
            mode = Mode(int(mode))
            k = random_depth(rng) if done or gemms else 1
            a, b = random_operands(rng, mode, random_size(rng, rows), k, random_size(rng, cols))
            gemms.append(Gemm(driver, mode, a, b, int(rng.integers(-32, 32))))
        await run_gemms(driver, ctx, gemms)
        done += len(gemms)


@bench_test(ArrayBench)
async def corner_codes(bench):
    """The extreme codes of every lane (weight -8, FP4 0b1000 = -0, 15, 0) in every mode; K = 1,
    K around the tile period R + C - 1, single rows/columns (M = 1, N = 1) and runs of K = 1 tiles."""
    ctx = bench.ctx
    rng, rows, cols = ctx.rng, bench.rows, bench.cols
    period = rows + cols - 1
    gemms = []
    driver = bench.driver(0.8, 0.7)
    for mode in Mode:
        a_codes = [0, 15, NEG_ZERO_FP4, NEG_TOP_FP4, TOP_FP4]
        b_codes = [0, 15, 1] if mode is Mode.BWD_WEIGHT else [-8, 7, -1, 0]
        for m, k, n in [(1, 1, 1), (rows + 1, period - 1, 1), (1, period, cols + 1), (rows, period + 1, cols),
                        (2 * rows - 1, 1, 2 * cols - 1)]:
            a = rng.choice(a_codes, (m, k))
            b = rng.choice(b_codes, (k, n))
            gemms.append(Gemm(driver, mode, a, b, int(rng.choice([-32, 31, 0]))))
    assert any((g.a == NEG_ZERO_FP4).any() for g in gemms if g.mode is not Mode.FWD), "FP4 code 0b1000 unused"
    assert any((g.b == -8).any() for g in gemms if g.mode is not Mode.BWD_WEIGHT), "weight -8 unused"
    await run_gemms(driver, ctx, gemms)


def _trajectories(k, k_up):
    """Per-beat steps of five saturating sums: +1 / -1 a large term up / down, +2 / -2 a small one,
    0 none. Up to the upper rail and down through the lower one; down to the lower rail and two
    small steps back off it; always up; always down; small steps alternating (stays inside)."""
    beats = np.arange(k)
    return np.stack([np.where(beats < k_up, 1, -1), np.where(beats < k_up, -1, np.where(beats < k_up + 2, 2, 0)),
                     np.ones(k, int), -np.ones(k, int), np.where(beats % 2, -2, 2)])


# Operand codes of each step of _trajectories, per mode: FWD steps live on the weights (A is
# unsigned), the backward steps on the FP4 codes (e = 7 large, e = 1 small, 0b1000 the other zero).
_FWD_WEIGHTS = {1: 7, -1: -8, 2: 1, -2: -1, 0: 0}
_FP4_CODES = {1: TOP_FP4, -1: NEG_TOP_FP4, 2: 0b0001, -2: 0b1001, 0: NEG_ZERO_FP4}


def saturating_operands(mode, fwd_width, bwd_width, budget):
    """(a, b) of ``mode`` whose outputs reach both rails, leave one and stay inside, or None when
    the width needs more than ``budget`` beats. M = 6, N = 5 (several tiles)."""
    width = fwd_width if mode is Mode.FWD else bwd_width
    magnitude = {Mode.FWD: 15 * 7, Mode.BWD_DATA: 7 << 13, Mode.BWD_WEIGHT: 15 << 12}[mode]
    k_up = -(-(1 << (width - 1)) // magnitude) + 1
    k = 3 * k_up + 2
    if k > budget:
        return None
    steps = _trajectories(k, k_up)
    if mode is Mode.FWD:
        a = np.full((6, k), 15)
        a[5] = 8
        b = np.vectorize(_FWD_WEIGHTS.get)(steps).T
    else:
        a = np.concatenate([np.vectorize(_FP4_CODES.get)(steps), np.full((1, k), TOP_FP4)])
        columns = (7, -8, 1, 7, -1) if mode is Mode.BWD_DATA else (15, 9, 15, 1, 0)
        b = np.stack([np.full(k, v) for v in columns], 1)
    return a, b


def _saturates_at_all():
    """Whether a mode of the configuration under test (FOURBIT_PARAMS) saturates within the long budget."""
    params = json.loads(os.environ.get("FOURBIT_PARAMS", "{}"))
    widths = params.get("fwd_width", units.FWD_WIDTH), params.get("bwd_width", units.BWD_WIDTH)
    return any(saturating_operands(mode, *widths, SATURATION_BEATS["long"]) is not None for mode in Mode)


@bench_test(ArrayBench, skip=not _saturates_at_all())
async def saturation(bench):
    """Sums that clamp at the upper and the lower rail, leave a rail (the flag stays), and stay
    inside, in every mode whose width saturates within the level's beat budget."""
    ctx, dut = bench.ctx, bench.dut
    limit_lo, limit_hi = {}, {}
    gemms = []
    driver = bench.driver(0.9, 0.8)
    for mode in Mode:
        operands = saturating_operands(mode, ctx.params["fwd_width"], ctx.params["bwd_width"],
                                       SATURATION_BEATS[ctx.level])
        if operands is None:
            dut._log.info("saturation: %s at this width needs more than %d beats; skipped", mode.name,
                          SATURATION_BEATS[ctx.level])
            continue
        gemm = Gemm(driver, mode, *operands, 0)
        want = tiling.gemm(mode, gemm.a, gemm.b, ctx.params["fwd_width"], ctx.params["bwd_width"])
        width = ctx.params["fwd_width"] if mode is Mode.FWD else ctx.params["bwd_width"]
        limit_lo[mode], limit_hi[mode] = units.acc_limits(width)
        at_hi, at_lo = want.overflow & (want.acc == limit_hi[mode]), want.overflow & (want.acc == limit_lo[mode])
        left = want.overflow & (want.acc != limit_hi[mode]) & (want.acc != limit_lo[mode])
        assert at_hi.any() and at_lo.any() and left.any() and (~want.overflow).any(), \
            f"{mode.name}: the directed operands no longer reach both rails, leave one and stay inside one"
        gemms.append(gemm)
    await run_gemms(driver, ctx, gemms)


async def _ready_highs(dut, cycles, names):
    """How many of ``cycles`` cycles each of the ``names`` signals was high (sampled in ReadOnly)."""
    highs = dict.fromkeys(names, 0)
    for _ in range(cycles):
        await RisingEdge(dut.clk)
        await ReadOnly()
        for name in names:
            highs[name] += int(getattr(dut, name).value)
    await RisingEdge(dut.clk)
    return highs


@bench_test(ArrayBench)
async def bad_input(bench):
    """Beats without a command and A without B are not taken; K = 0 and mode 3 are consumed
    without beats or output and set the sticky ``error`` (until reset); valid tiles around them
    are unaffected."""
    ctx, dut = bench.ctx, bench.dut
    rows, cols = bench.rows, bench.cols
    settle = 2 * (rows + cols + 2)

    dut.a__valid.value = dut.b__valid.value = 1
    highs = await _ready_highs(dut, settle, ["a__ready", "b__ready"])
    ctx.expect(highs == {"a__ready": 0, "b__ready": 0}, f"beats without a command were offered ready: {highs}")
    dut.b__valid.value = 0
    dut.cmd__payload.value = pack_command(Mode.FWD, 3, 0)
    dut.cmd__valid.value = 1
    highs = await _ready_highs(dut, settle, ["a__ready", "cmd__ready", "o__valid"])
    ctx.expect(highs == {"a__ready": 0, "cmd__ready": 0, "o__valid": 0},
            f"A without B (command K = 3 waiting) was taken or gave output: {highs}")
    dut.a__valid.value = dut.cmd__valid.value = 0
    await bench.reset()
    ctx.expect(int(dut.error.value) == 0, "error set after reset")

    rng = ctx.rng
    driver = bench.driver(0.8, 0.7)
    gemms = [Gemm(driver, mode, *random_operands(rng, mode, rows + 1, int(rng.integers(1, 40)), cols), 5)
             for mode in (Mode.FWD, Mode.BWD_WEIGHT, Mode.BWD_DATA)]
    await run_gemms(driver, ctx, gemms[:1])
    ctx.expect(int(dut.error.value) == 0, "error set by valid tiles")
    tiles = [tile for gemm in gemms for tile in gemm.tiles]
    bad = [pack_command(Mode.FWD, 0, 1), pack_command(3, 7, -2), pack_command(Mode.BWD_DATA, 0, 0),
           pack_command(3, 0, 0)]
    commands = [pack_command(tile.mode, tile.k, tile.s) for tile in tiles]
    for position, command in sorted(zip(rng.integers(0, len(commands) + 1, len(bad)), bad), reverse=True):
        commands.insert(position, command)
    transfers = await run_gemms(driver, ctx, gemms, commands)
    ctx.expect(len(transfers.cmd_cycles) == len(commands), f"{len(transfers.cmd_cycles)} of {len(commands)} "
            "commands consumed (bad ones must be consumed without beats)")
    ctx.expect(int(dut.error.value) == 1, "error not set by K = 0 / mode 3 commands")
    await run_gemms(driver, ctx, gemms[:1])
    ctx.expect(int(dut.error.value) == 1, "error is not sticky")
    await bench.reset()
    ctx.expect(int(dut.error.value) == 0, "error not cleared by reset")


def documented_timing(tiles, rows, cols, sum_latency=2, period_extra=0):
    """Cycles of every command, beat and output row for a host that never stalls, from the formula
    of docs/architecture.md (Timing) for ``tiles`` given as (mode, k): L = R + C + ``sum_latency``
    (2 for the 4-bit PE), tile period P = R + C - 1 + ``period_extra`` (0 for the 4-bit PE), F0 = 0,
    Fn = Tn-1 + 1 (same mode) or Tn-1 + L (mode change), Tn = max(Fn + Kn - 1, Tn-1 + P)
    (Fn = Tn for Kn = 1); beats Fn, Fn + 1, ..., Fn + Kn - 2, Tn; rows Tn + L + r."""
    latency, period = rows + cols + sum_latency, rows + cols - 1 + period_extra
    commands, beats, outputs = [], [], []
    for n, (mode, k) in enumerate(tiles):
        if n == 0:
            first, last = 0, k - 1
        else:
            first = commands[-1] + (1 if mode == tiles[n - 1][0] else latency)
            last = max(first + k - 1, commands[-1] + period)
            first = last if k == 1 else first
        commands.append(last)
        beats += [first + i for i in range(k - 1)] + [last]
        outputs += [last + latency + r for r in range(rows)]
    return commands, beats, outputs


@bench_test(ArrayBench)
async def mode_change_timing(bench):
    """With no gaps and no back-pressure, every command, beat and output row transfers in the cycle
    the documented timing formula gives; a tile of another mode waits L cycles after the busy one."""
    ctx = bench.ctx
    rng, rows, cols = ctx.rng, bench.rows, bench.cols
    period = rows + cols - 1
    plan = [(Mode.FWD, period + 3), (Mode.FWD, 1), (Mode.BWD_DATA, 2), (Mode.BWD_DATA, period),
            (Mode.BWD_WEIGHT, period + 5), (Mode.FWD, 1), (Mode.BWD_WEIGHT, 1), (Mode.BWD_WEIGHT, period - 2),
            (Mode.FWD, 2 * period)]
    driver = bench.driver()
    gemms = [Gemm(driver, mode, *random_operands(rng, mode, rows - 1, k, cols), int(rng.integers(-32, 32)))
             for mode, k in plan]
    transfers = await run_gemms(driver, ctx, gemms)
    tiles = [tile for gemm in gemms for tile in gemm.tiles]
    want = documented_timing([(tile.mode, tile.k) for tile in tiles], rows, cols)
    got = (transfers.cmd_cycles, transfers.beat_cycles, transfers.out_cycles)
    for name, expected, actual in zip(("command", "beat", "output row"), want, got):
        wrong = [i for i, (e, a) in enumerate(zip(expected, actual)) if e != a]
        ctx.expect(not wrong and len(expected) == len(actual),
                f"{name} transfer cycles differ from docs/architecture.md: first at {name} "
                f"{wrong[0] if wrong else min(len(expected), len(actual))}, expected {expected}, actual {actual}; "
                f"tiles (mode, k): {[(t.mode.name, t.k) for t in tiles]}")


@bench_test(ArrayBench, skip=True)
async def training_step(bench):
    """The array GEMMs of one digits-MLP training step (testbench.bench_train_steps) with their own
    operand codes, one after another; cycles against the timing model (run by name: synth.chip)."""
    await measure_step(bench.ctx, bench.driver(), step_gemms(bench.ctx.seed))
