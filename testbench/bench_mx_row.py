"""cocotb bench of MxRow (rtl/mx_row.py): block-scaled GEMM rows against golden.mx_gemm.

The row is the simulation top and is driven beat by beat: each tile is one output row of a GEMM,
(1, K) codes of A times (K, columns) codes of B with their block scales; the scale codes go with
each block's last beat. Tiles follow each other without a gap, beats have random gaps, and every
tile's float32 sums are compared bit for bit with ``gemm_mxfp4`` / ``nvfp4_accumulate``.
"""

import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge

from golden import mx_gemm
from rtl.fp32_scaled_add import Fp32ScaledAdd

from . import mx_vectors
from .checks import bench_test
from .mx_vectors import BLOCK, NAN

PERIOD_NS = 10
RANDOM_TILES = {"quick": 40, "full": 400, "long": 2_000}
GAP_RATES = [0.0, 0.3]
ONE = {"mxfp4": 127, "nvfp4": 0x38}                       # scale codes of 1.0


class MxRowBench:
    """Clock, reset and tile runs for an MxRow."""

    def __init__(self, dut, ctx):
        self.dut, self.ctx = dut, ctx
        self.fmt = ctx.params["fmt"]
        self.columns = ctx.params["columns"]
        self.block = BLOCK[self.fmt]

    async def start(self):
        Clock(self.dut.clk, PERIOD_NS, unit="ns", impl="gpi").start()
        self.idle()
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, 2)
        self.dut.rst.value = 0

    def idle(self):
        for name in ("valid", "last", "tile_last", "a", "b", "a_scale", "b_scales"):
            getattr(self.dut, name).value = 0

    def beats(self, tiles, gap_rate):
        """Per-cycle input dicts (None for a gap) of ``tiles`` in order."""
        for a, a_s, b, b_s in tiles:
            k = a.shape[1]
            for t in range(k):
                while self.ctx.rng.random() < gap_rate:
                    yield None
                blk = t // self.block
                yield {"valid": 1, "a": int(a[0, t]), "b": sum(int(c) << (4 * j) for j, c in enumerate(b[t])),
                       "last": int(t % self.block == self.block - 1), "tile_last": int(t == k - 1),
                       "a_scale": int(a_s[0, blk]), "b_scales": sum(int(c) << (8 * j) for j, c in enumerate(b_s[blk]))}

    async def run(self, tiles, gap_rate=0.0):
        """Drive ``tiles``; return the sums of every finished tile, int64 (tiles, columns)."""
        dut, outputs = self.dut, []
        drain = [None] * (self.block + Fp32ScaledAdd.LATENCY + self.columns + 8)
        for beat in [*self.beats(tiles, gap_rate), *drain]:
            await RisingEdge(dut.clk)
            if beat is None:
                dut.valid.value = 0
            else:
                for name, value in beat.items():
                    getattr(dut, name).value = value
            await ReadOnly()
            if int(dut.o_valid.value):
                sums = int(dut.o_sums.value)
                outputs.append([(sums >> (32 * c)) & 0xFFFFFFFF for c in range(self.columns)])
        return np.array(outputs, np.int64).reshape(-1, self.columns)

    async def check(self, tiles, gap_rate=0.0):
        got = await self.run(tiles, gap_rate)
        if len(got) != len(tiles):
            self.ctx.fail(f"{len(got)} tiles came out for {len(tiles)} sent")
        gemm = mx_gemm.gemm_mxfp4 if self.fmt == "mxfp4" else mx_gemm.nvfp4_accumulate
        want = np.array([mx_gemm.float32_bits(gemm(*tile))[0] for tile in tiles], np.int64)
        self.ctx.compare({"sum": want.T}, {"sum": got.T}, lambda index: _describe(tiles, index))


def _describe(tiles, index):
    column, tile = index
    a, a_s, b, b_s = tiles[tile]
    return (f"tile {tile} column {column}: a codes {a[0].tolist()}, b codes {b[:, column].tolist()}, "
            f"a scales {a_s[0].tolist()}, b scales {b_s[:, column].tolist()}")


def tile(bench, a, b, a_scales, b_scales):
    """A tile from a (K,) and b (K, columns) code lists and per-block scale lists."""
    return (np.array([a], np.uint8), np.array([a_scales], np.uint8),
            np.array(b, np.uint8).reshape(-1, bench.columns), np.array(b_scales, np.uint8).reshape(-1, bench.columns))


def random_tiles(bench, count):
    """Tiles of 1..4 blocks (:func:`testbench.mx_vectors.random_tiles`), scales near 1, at both
    ends of the range (overflow, subnormals, underflow) and, rarely, NaN."""
    if bench.fmt == "mxfp4":
        scales = np.array([127, 126, 128, 131, 120, 0, 1, 10, 60, 200, 250, 254])
    else:
        scales = np.concatenate([np.arange(0, 0x7F, 7), [0x7E, 0x38, 0x80 | 0x38, 0xC0]])
    return mx_vectors.random_tiles(bench.ctx.rng, bench.fmt, bench.columns, count, scales)


@bench_test(MxRowBench)
async def every_e2m1_pair(bench):
    """Each of the 256 E2M1 pairs alone in a one-block tile (the rest +-0 codes): every product exact."""
    rng, block, cols = bench.ctx.rng, bench.block, bench.columns
    one = ONE[bench.fmt]
    tiles = []
    for a_code in range(16):
        for first in range(0, 16, cols):
            a = rng.choice([0, 8], block).astype(np.uint8)
            b = rng.choice([0, 8], (block, cols)).astype(np.uint8)
            beat = int(rng.integers(block))
            a[beat] = a_code
            b[beat] = [(first + c) % 16 for c in range(cols)]
            tiles.append(tile(bench, a, b, [one], [one] * cols))
    await bench.check(tiles)


@bench_test(MxRowBench)
async def corners(bench):
    """Zero tiles, NaN scales (also on a zero block), overflow to Inf (and staying Inf), results in
    the subnormal range and below it, the largest block sums, and ties in the float32 add."""
    block, cols, fmt = bench.block, bench.columns, bench.fmt
    one, nan = ONE[fmt], NAN[fmt]
    zeros, sixes = [0] * block, [7] * block
    # MX: 4608 * 2**(0 + 100 - 256) is subnormal; 2**(0 + 104 - 256) * 4 quarters is 2**-150, the tie
    # to +0, and the next columns 2**-149, 2**-148, ... (NVFP4 terms stay within 2**-20..2**28)
    big, tiny_a, tiny_b, tie_b = (254, 0, 100, 104) if fmt == "mxfp4" else (0x7E, 0x01, 0x01, 0x01)
    tiles = [
        tile(bench, zeros, [0] * block * cols, [one], [one] * cols),
        tile(bench, zeros, [0] * block * cols, [one], [nan] + [one] * (cols - 1)),
        tile(bench, sixes, [7, 15] * (block * cols // 2), [big], [big] * cols),
        tile(bench, sixes * 3, ([7] * cols) * block + ([15] * cols) * block * 2, [big] * 3, [big] * 3 * cols),
        tile(bench, sixes, [7] * block * cols, [tiny_a], [tiny_b] * cols),
        tile(bench, [2] + zeros[1:], [2] * block * cols, [tiny_a], list(range(tie_b, tie_b + cols))),
    ]
    # Ties: terms 2**24, then 1 (2**24 + 1 ties to 2**24), then 3 (2**24 + 3 ties to 2**24 + 4).
    if fmt == "mxfp4":
        a = [2] + zeros[1:] + [2] + zeros[1:] + [5] + zeros[1:]
        b = ([2] * cols + [0] * cols * (block - 1)) * 3
        tiles.append(tile(bench, a, b, [127 + 24, 127, 127], [127] * 3 * cols))
    else:   # 16 products of 4 * 4 with both scales 2**5 (code 0x78: q = 8, x = 5): 2**24
        a = [6] * block + [2] + zeros[1:] + [5] + zeros[1:]
        b = [6] * block * cols + ([2] * cols + [0] * cols * (block - 1)) * 2
        tiles.append(tile(bench, a, b, [0x78, one, one], [0x78] * cols + [one] * 2 * cols))
    await bench.check(tiles)


@bench_test(MxRowBench, ("gap_rate", GAP_RATES))
async def random_tiles_gaps(bench, gap_rate):
    """Random tiles back to back, with beat gaps at ``gap_rate``."""
    await bench.check(random_tiles(bench, RANDOM_TILES[bench.ctx.level]), gap_rate)
