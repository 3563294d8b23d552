"""cocotb bench of the FP16 training array (rtl.array.Fp16TrainingArray) against golden.fp16_tiling.

The array is the simulation top, driven through its streams by the 4-bit array's
:class:`testbench.array_driver.ArrayDriver` with binary16 payloads in the array's interleaved
schedule (L beats per k, L*R output rows per tile): GEMMs of all three modes (for FP16 the
same GEMM on different operands) with random shapes (M, N not multiples of L*R, C),
K from 1 to a few hundred, random valid gaps and back-pressure, several GEMMs back to back so
that mode changes meet busy tiles, and GEMMs of corner operands (signed zeros, subnormals,
Inf, NaN of several payloads, values whose products and sums overflow). Every output row is
checked against golden.fp16_tiling.output_beats (sum pattern, sticky invalid and overflow,
row, last, mode, s).
"""

import numpy as np

from golden import fp16, fp16_tiling
from golden.tiling import Mode
from rtl.array import SCALE_SHAPE, pack_command
from rtl.array_pe import Fp16PipePe

from .array_driver import RATES, ArrayBench, ArrayDriver, measure_step, random_depth, random_size
from .bench_train_steps import step_gemms
from .checks import bench_test

RANDOM_GEMMS = {"quick": 9, "full": 18, "long": 120}
CORNER_GEMMS = {"quick": 3, "full": 12, "long": 30}
FIELDS = ("acc", "invalid", "overflow", "row", "last", "mode", "s")


def pack16(values):
    """Raw bits of one binary16 operand beat: lane i at bits 16i..16i+15."""
    return sum(int(value) << (16 * lane) for lane, value in enumerate(values))


def finite_operands(rng, shape):
    """Values 2**-6 .. 2**7 of either sign with often-short fractions (ties, cancellations); 2 %
    corner patterns."""
    keep = rng.integers(0, 11, shape)
    frac = rng.integers(0, 1 << 10, shape) & ~((1 << (10 - keep)) - 1)
    values = (rng.integers(0, 2, shape) << 15) | (rng.integers(9, 22, shape) << 10) | frac
    special = rng.random(shape) < 0.02
    values[special] = rng.choice(fp16.CORNER_PATTERNS, int(special.sum()))
    return values


class Fp16ArrayDriver(ArrayDriver):
    """:class:`ArrayDriver` for binary16 lanes and the FP16 output beat, checked against golden.fp16_tiling."""

    def __init__(self, dut, ctx, valid_rate=1.0, ready_rate=1.0):
        self.dut, self.ctx = dut, ctx
        self.rows, self.cols = ctx.params["rows"], ctx.params["cols"]
        self.valid_rate, self.ready_rate = valid_rate, ready_rate
        self.pe = Fp16PipePe()
        self.layout = self.pe.output_layout(self.rows * self.pe.sums, self.cols, SCALE_SHAPE)
        self.scoreboard = self
        self.records = []

    def tiles(self, mode, a, b, s=0):
        return fp16_tiling.tiles(mode, a, b, self.rows, self.cols, s, self.pe.sums)

    def payloads(self, tiles):
        return ([pack_command(tile.mode, tile.k, tile.s) for tile in tiles],
                [pack16(beat) for tile in tiles for beat in tile.a_beats],
                [pack16(beat) for tile in tiles for beat in tile.b_beats])

    def expected(self, tiles):
        """The golden output beats of ``tiles``."""
        return fp16_tiling.output_beats(tiles)

    def _decode(self, index, bits):
        row = self.layout.from_bits(bits)
        return fp16_tiling.Fp16OutputBeat(index // (self.rows * self.pe.sums), int(row.row), bool(row.last), int(row.mode),
                                          int(row.s), np.array(list(row.acc), np.int64),
                                          np.array(list(row.invalid), bool), np.array(list(row.overflow), bool))

    def check(self, tiles, beats):
        """Compare the emitted output rows with golden.fp16_tiling, one vector per sum."""
        expected = self.expected(tiles)
        if len(beats) != len(expected):
            self.ctx.fail(f"expected {len(expected)} output rows for {len(tiles)} tiles, got {len(beats)}")
        self.ctx.compare(self._fields(expected), self._fields(beats),
                         lambda index: self._describe(tiles, expected, index[0]))

    def _fields(self, beats):
        return {name: np.concatenate([np.broadcast_to(np.asarray(getattr(beat, name), np.int64), self.cols)
                                      for beat in beats]) for name in FIELDS}

    def _describe(self, tiles, expected, index):
        beat, col = divmod(index, self.cols)
        want = expected[beat]
        tile = tiles[want.tile]
        lane, slot = divmod(want.row, self.pe.sums)   # the output's PE row and ring slot
        lanes = (f"A lane {lane}: {[hex(v) for v in tile.a_beats[slot::self.pe.sums][:32, lane]]}, "
                 f"B lane {col}: {[hex(v) for v in tile.b_beats[slot::self.pe.sums][:32, col]]}")
        return (f"output beat {beat} = tile {want.tile} ({Mode(tile.mode).name}, k={tile.k}, s={tile.s}, output "
                f"rows {tile.row0}.., columns {tile.col0}..) row {want.row} column {col}; the first 32 k of "
                f"{lanes} (its beats l = {slot} of every k)")


class Fp16ArrayBench(ArrayBench):
    def driver(self, valid_rate=1.0, ready_rate=1.0):
        return Fp16ArrayDriver(self.dut, self.ctx, valid_rate, ready_rate)


async def run_random(bench, count, draw):
    """``count`` GEMMs of random modes, shapes, K and s, 1-3 per run back to back, random rates."""
    ctx = bench.ctx
    rng, rows, cols = ctx.rng, bench.rows, bench.cols
    done = 0
    while done < count:
        driver = bench.driver(*RATES[int(rng.integers(len(RATES)))])
        tiles = []
        for mode in rng.permutation(list(Mode))[:min(count - done, int(rng.integers(1, 4)))]:
            k = random_depth(rng) if done or tiles else 1
            if ctx.level != "long":   # L beats per k: as many beats per tile as a one-sum array's bench
                k = -(-k // driver.pe.sums)
            m, n = random_size(rng, rows * driver.pe.sums), random_size(rng, cols)
            tiles += driver.tiles(Mode(int(mode)), draw(rng, (m, k)), draw(rng, (k, n)), int(rng.integers(-32, 32)))
            done += 1
        await driver.run(tiles)


@bench_test(Fp16ArrayBench)
async def random_gemms(bench):
    """Random GEMMs of every mode with finite operands of similar magnitude (2 % corner patterns)."""
    await run_random(bench, RANDOM_GEMMS[bench.ctx.level], finite_operands)


@bench_test(Fp16ArrayBench)
async def corner_operands(bench):
    """GEMMs whose operands are all corner patterns: NaN, Inf, signed zeros, subnormals, overflow."""
    await run_random(bench, CORNER_GEMMS[bench.ctx.level],
                     lambda rng, shape: rng.choice(fp16.CORNER_PATTERNS, shape))


@bench_test(Fp16ArrayBench, skip=True)
async def training_step(bench):
    """The shapes of the array GEMMs of one digits-MLP training step (testbench.bench_train_steps) with
    random finite binary16 operands, one after another; cycles against the timing model (run by name:
    synth.chip)."""
    rng = bench.ctx.rng
    await measure_step(bench.ctx, bench.driver(), [(mode, finite_operands(rng, a.shape), finite_operands(rng, b.shape))
                                                   for mode, a, b in step_gemms(bench.ctx.seed)])
