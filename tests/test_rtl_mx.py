"""MxProcessingElement and MxRow in amaranth.sim against golden.mx_gemm: every E2M1 pair, random
tiles with zero blocks, NaN and extreme scales, back-to-back tiles and beat gaps, both formats."""

import numpy as np
import pytest

from golden import mx, mx_gemm
from rtl.mx_pe import MxProcessingElement
from rtl.mx_row import MxBlockTerm, MxRow
from testbench import mx_vectors
from testbench.sim import simulate


def pe_block_sums(blocks):
    """Run blocks of (a, b) code pairs, shape (n, block, 2), through a PE; its block sums."""
    dut = MxProcessingElement(blocks.shape[1])
    sums = []

    async def testbench(ctx):
        for block in blocks:
            for beat, (a, b) in enumerate(block):
                ctx.set(dut.a, int(a)); ctx.set(dut.b, int(b)); ctx.set(dut.valid, 1)
                ctx.set(dut.last, beat == len(block) - 1)
                _, _, done, value = await ctx.tick().sample(dut.done, dut.block_sum)
                if done:
                    sums.append(value)
            ctx.set(dut.valid, 0)
        for _ in range(3):
            _, _, done, value = await ctx.tick().sample(dut.done, dut.block_sum)
            if done:
                sums.append(value)

    simulate(dut, testbench)
    return np.array(sums)


def test_pe_every_e2m1_pair_and_random_blocks():
    """Each of the 256 pairs alone in a block of 16 (the rest zero codes, +0 and -0), then random
    blocks of 32 including the all-+-6 extremes."""
    rng = np.random.default_rng(5)
    pairs = np.stack(np.meshgrid(np.arange(16), np.arange(16), indexing="ij"), -1).reshape(256, 2)
    blocks = rng.choice([0, 8], (256, 16, 2))
    blocks[:, 3] = pairs
    got = pe_block_sums(blocks)
    want = mx_gemm.e2m1_products(pairs[:, 0], pairs[:, 1])
    assert (got == want).all(), f"first differing pair {pairs[np.argmax(got != want)]}"
    blocks = rng.integers(0, 16, (40, 32, 2))
    blocks[0], blocks[1] = 7, [[7, 15]] * 32                       # +4608 and -4608
    want = mx_gemm.e2m1_products(blocks[..., 0], blocks[..., 1]).sum(axis=1)
    got = pe_block_sums(blocks)
    assert (got == want).all(), f"seed 5: first differing block {np.argmax(got != want)}"


def run_row(fmt, columns, shared, tiles, gap_rate, rng):
    """Run tiles of (a (1, K), a_scales, b (K, C), b_scales) through an MxRow; o_sums per tile."""
    block = mx.MX_BLOCK if fmt == "mxfp4" else mx.NV_BLOCK
    dut = MxRow(fmt, columns, shared)
    outputs = []

    async def testbench(ctx):
        for a, a_s, b, b_s in tiles:
            k = a.shape[1]
            for t in range(k):
                while rng.random() < gap_rate:
                    ctx.set(dut.valid, 0)
                    await tick(ctx)
                end = t % block == block - 1
                ctx.set(dut.valid, 1); ctx.set(dut.a, int(a[0, t]))
                ctx.set(dut.b, sum(int(code) << (4 * c) for c, code in enumerate(b[t])))
                ctx.set(dut.last, end); ctx.set(dut.tile_last, t == k - 1)
                ctx.set(dut.a_scale, int(a_s[0, t // block]))
                ctx.set(dut.b_scales, sum(int(code) << (8 * c) for c, code in enumerate(b_s[t // block])))
                await tick(ctx)
        ctx.set(dut.valid, 0)
        for _ in range(block + 12):
            await tick(ctx)

    async def tick(ctx):
        _, _, valid, sums = await ctx.tick().sample(dut.o_valid, dut.o_sums)
        if valid:
            outputs.append([(sums >> (32 * c)) & 0xFFFFFFFF for c in range(columns)])

    simulate(dut, testbench)
    return np.array(outputs, np.int64)


def random_tiles(rng, fmt, columns, count):
    """Tiles of 1..3 blocks from :func:`testbench.mx_vectors.random_tiles`, NaN scales a little more often."""
    if fmt == "mxfp4":
        scales = np.array([127, 126, 130, 0, 1, 60, 200, 254])
    else:
        scales = np.concatenate([np.arange(0, 0x7F, 9), [0x7E, 0x80 | 0x38, 0xC0]])
    return mx_vectors.random_tiles(rng, fmt, columns, count, scales, max_blocks=3, p_nan=0.03)


@pytest.mark.parametrize("fmt, columns, shared", [("mxfp4", 4, True), ("mxfp4", 3, False), ("nvfp4", 5, True)])
def test_row_against_golden(fmt, columns, shared):
    seed = {"mxfp4": 10, "nvfp4": 20}[fmt] + columns
    rng = np.random.default_rng(seed)
    tiles = random_tiles(rng, fmt, columns, 12)
    got = run_row(fmt, columns, shared, tiles, gap_rate=0.1, rng=rng)
    gemm = mx_gemm.gemm_mxfp4 if fmt == "mxfp4" else mx_gemm.nvfp4_accumulate
    want = np.array([mx_gemm.float32_bits(gemm(*tile))[0] for tile in tiles], np.int64)
    assert got.shape == want.shape, f"seed {seed}: {len(got)} tiles came out, {len(want)} went in"
    bad = np.argwhere(got != want)
    assert bad.size == 0, (f"seed {seed}: tile {bad[0][0]} column {bad[0][1]}: got 0x{got[tuple(bad[0])]:08x}, "
                           f"want 0x{want[tuple(bad[0])]:08x}")


def test_parameters_are_checked():
    with pytest.raises(ValueError, match="block must be one of"):
        MxProcessingElement(8)
    with pytest.raises(ValueError, match="columns must lie in 2..16, got 17"):
        MxRow("nvfp4", columns=17)
    with pytest.raises(ValueError, match="fmt must be one of"):
        MxRow("fp4")
    with pytest.raises(ValueError, match=r"fmt must be one of \['mxfp4', 'nvfp4'\], got 'e5m2'"):
        MxBlockTerm("e5m2")
