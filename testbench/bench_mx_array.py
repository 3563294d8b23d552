"""cocotb bench of the MX training array (rtl.array.MxTrainingArray) against golden.mx_tiling.

The array is the simulation top, driven through its streams by the FP16 array's driver with
12-bit block-scaled lanes (code | block scale << 4): GEMMs of all three modes with random shapes
(M, N not multiples of R, C), K of 1..4 blocks, random scales (some at the ends of the range, a
few NaN) and zero blocks, random valid gaps and back-pressure, several GEMMs back to back so that
mode changes meet busy tiles; GEMMs of corner classes (NaN scales, overflow to +-Inf, subnormal
and vanishing sums, all-zero blocks, ties in the float32 add); the cycle of every output row
against the timing formula. Every output row is checked against golden.mx_tiling.output_beats
(float32 bits, invalid, overflow, row, last, mode, s).
"""

import numpy as np

from golden import mx_tiling
from golden.tiling import Mode
from rtl.array import SCALE_SHAPE
from rtl.array_pe import MxPe

from .array_driver import RATES, random_size
from .bench_fp16_array import Fp16ArrayBench, Fp16ArrayDriver
from .bench_training_array import documented_timing
from .checks import bench_test
from .mx_vectors import block_operands
from .payloads import mx_commands_and_beats

RANDOM_GEMMS = {"quick": 6, "full": 30, "long": 100}
CORNER_GEMMS = {"quick": 3, "full": 10, "long": 30}


class MxArrayDriver(Fp16ArrayDriver):
    """:class:`Fp16ArrayDriver` for block-scaled lanes and the float32 output beat (golden.mx_tiling)."""

    def __init__(self, dut, ctx, valid_rate=1.0, ready_rate=1.0):
        super().__init__(dut, ctx, valid_rate, ready_rate)
        self.fmt = ctx.params["fmt"]
        self.block = mx_tiling.FORMATS[self.fmt][0]
        self.layout = MxPe(self.fmt).output_layout(self.rows, self.cols, SCALE_SHAPE)

    def tiles(self, mode, operands, s=0):
        return mx_tiling.tiles(self.fmt, *operands, self.rows, self.cols, mode, s)

    def payloads(self, tiles):
        return mx_commands_and_beats(tiles)

    def expected(self, tiles):
        return mx_tiling.output_beats(tiles)

    def _decode(self, index, bits):
        row = self.layout.from_bits(bits)
        return mx_tiling.MxOutputBeat(index // self.rows, int(row.row), bool(row.last), int(row.mode), int(row.s),
                                      np.array(list(row.acc), np.int64), np.array(list(row.invalid), bool),
                                      np.array(list(row.overflow), bool))

    def _describe(self, tiles, expected, index):
        beat, col = divmod(index, self.cols)
        want = expected[beat]
        tile = tiles[want.tile]
        return (f"output beat {beat} = tile {want.tile} ({Mode(tile.mode).name}, k={len(tile.a_beats)}, s={tile.s}, "
                f"output rows {tile.row0}.., columns {tile.col0}..) row {want.row} column {col}; A lane {want.row}: "
                f"codes {tile.a_beats[:, want.row].tolist()}, block scales {tile.a_scale_beats[:, want.row].tolist()}; "
                f"B lane {col}: codes {tile.b_beats[:, col].tolist()}, block scales {tile.b_scale_beats[:, col].tolist()}")


class MxArrayBench(Fp16ArrayBench):
    def driver(self, valid_rate=1.0, ready_rate=1.0):
        return MxArrayDriver(self.dut, self.ctx, valid_rate, ready_rate)


async def run_random(bench, count, **draw):
    """``count`` GEMMs of random modes, shapes, K (1..4 blocks) and s, 1-3 per run back to back,
    random rates; ``draw`` goes to :func:`testbench.mx_vectors.block_operands`. Returns the tiles."""
    rng, rows, cols = bench.ctx.rng, bench.rows, bench.cols
    done, sent = 0, []
    while done < count:
        driver = bench.driver(*RATES[int(rng.integers(len(RATES)))])
        tiles = []
        for mode in rng.permutation(list(Mode))[:min(count - done, int(rng.integers(1, 4)))]:
            k = driver.block * int(rng.integers(1, 5))
            m, n = random_size(rng, rows), random_size(rng, cols)
            operands = block_operands(rng, driver.fmt, m, k, n, **draw)
            tiles += driver.tiles(Mode(int(mode)), operands, int(rng.integers(-32, 32)))
            done += 1
        await driver.run(tiles)
        sent += tiles
    return sent


@bench_test(MxArrayBench)
async def random_gemms(bench):
    """Random GEMMs of every mode; 10 % of the scales at the ends of the range, 1 % NaN, 10 % zero blocks."""
    await run_random(bench, RANDOM_GEMMS[bench.ctx.level])


@bench_test(MxArrayBench)
async def corner_classes(bench):
    """GEMMs with most scales at the ends of the range, NaN scales and zero blocks, then the
    float32 ties; the sums must include NaN, zeros, normal numbers and (MXFP4) +-Inf and subnormals."""
    tiles = await run_random(bench, CORNER_GEMMS[bench.ctx.level], extreme=0.6, nan=0.05, zero_blocks=0.3)
    driver = bench.driver()
    await driver.run(driver.tiles(Mode.BWD_DATA, tie_operands(driver.fmt, driver.block, bench.cols)))
    sums = np.concatenate([tile.sums.ravel() for tile in tiles])
    exponent, fraction = sums & 0x7F800000, sums & 0x007FFFFF
    classes = {"NaN": (exponent == 0x7F800000) & (fraction != 0), "Inf": (exponent == 0x7F800000) & (fraction == 0),
               "subnormal": (exponent == 0) & (fraction != 0), "zero": sums & 0x7FFFFFFF == 0,
               "normal": (exponent != 0) & (exponent != 0x7F800000)}
    if driver.fmt == "nvfp4":   # its terms lie within 2**-20..2**28: no float32 overflow or subnormal
        del classes["Inf"], classes["subnormal"]
    missing = [name for name, found in classes.items() if not found.any()]
    bench.ctx.expect(not missing, f"the corner GEMMs produced no {missing} sums")


def tie_operands(fmt, block, cols):
    """One output row whose blocks add 2**24, 1 and 3: 2**24 + 1 ties to 2**24 (even), 2**24 + 3
    to 2**24 + 4 (docs/numerics.md section 10); the other columns see the terms shifted by column."""
    a = np.zeros((1, 3 * block), np.uint8)
    a[0, [0, block, 2 * block]] = [2, 2, 5]                      # E2M1 codes of 1, 1, 3
    b = np.zeros((3 * block, cols), np.uint8)
    b[[0, block, 2 * block], :] = 2
    if fmt == "mxfp4":
        a_s = np.array([[127 + 24, 127, 127]], np.uint8)
        b_s = np.full((3, cols), 127, np.uint8)
        b_s[0] -= np.arange(cols, dtype=np.uint8)
    else:   # NVFP4 terms: 1 * 1 with scales 2**12 * 2**12 (E4M3 0x98 = 8 * 2**9), then 1 and 3 at scale 1
        a_s = np.array([[0x98, 0x38, 0x38]], np.uint8)
        b_s = np.full((3, cols), 0x38, np.uint8)
        b_s[0] = 0x98
    return a, a_s, b, b_s


@bench_test(MxArrayBench)
async def cycle_counts(bench):
    """Back-to-back tiles with mode changes, host never stalling: every command, beat and output row
    in the cycle of the array's timing formula (rtl.array.TrainingArray.timing)."""
    rng, driver = bench.ctx.rng, bench.driver()
    tiles = []
    for mode in (Mode.FWD, Mode.FWD, Mode.BWD_WEIGHT, Mode.BWD_DATA):
        k = driver.block * int(rng.integers(1, 3))
        tiles += driver.tiles(mode, block_operands(rng, driver.fmt, bench.rows, k, 2 * bench.cols, nan=0))
    transfers = await driver.run(tiles)
    plan = [(tile.mode, len(tile.a_beats)) for tile in tiles]
    want = documented_timing(plan, bench.rows, bench.cols, MxPe(driver.fmt).sum_latency)
    got = (transfers.cmd_cycles, transfers.beat_cycles, transfers.out_cycles)
    for name, expected, actual in zip(("command", "beat", "output row"), want, got):
        bench.ctx.compare({"cycle": np.array(expected)}, {"cycle": np.array(actual)},
                          lambda index, name=name: f"{name} {index[0]} of the tiles (mode, k) {plan}")
