"""cocotb bench of Int4Mac (rtl/int4_mac.py) against golden.units.int4_mac, in the batch wrapper."""

import cocotb
import numpy as np

import golden.units

from .checks import BenchContext
from .mac_bench import MacBench

RANDOM_VECTORS = {"quick": 65_536, "full": 262_144, "long": 1_310_720}  # 85 % valid: long has >= 1M MACs
DIRECT_CYCLES = 3_000


def _bench(dut, test):
    ctx = BenchContext(dut, test)
    signed_a, width = ctx.params["signed_a"], ctx.params["width"]
    operands = {"a": (-8, 7) if signed_a else (0, 15), "b": (-8, 7)}

    def step(acc, ops):
        return golden.units.int4_mac(acc, ops["a"], ops["b"], signed_a, width)

    return ctx, MacBench(dut, ctx, operands, step)


@cocotb.test()
async def exhaustive_pairs(dut):
    """Every ordered pair of (a, b) operand pairs as a two-term sum (all 256 products, all 65,536 sums)."""
    ctx, bench = _bench(dut, "exhaustive_pairs")
    await bench.start()
    ops = bench.all_operands()
    count = ops["a"].size
    first = {name: np.repeat(values, count) for name, values in ops.items()}
    second = {name: np.tile(values, count) for name, values in ops.items()}
    await bench.check_batch(bench.sums(first, second))
    ctx.record()


@cocotb.test()
async def random_stream(dut):
    """Uniform random operands with valid gaps, clears and resets in the middle of sums."""
    ctx, bench = _bench(dut, "random_stream")
    await bench.start()
    await bench.check_batch(bench.columns(RANDOM_VECTORS[ctx.level] // bench.lanes))
    ctx.record()


@cocotb.test()
async def saturation(dut):
    """Saturation at both limits, sticky overflow, clear and reset after saturating, leaving the rail.

    Reaching the limit of a W-bit accumulator takes about 2**(W-1)/120 cycles or more, so the
    quick regression runs this only for W <= 16; W = 64 is out of reach.
    """
    ctx, bench = _bench(dut, "saturation")
    signed_a = ctx.params["signed_a"]
    extreme = bench.extremes(lambda ops: golden.units.int4_product(ops["a"], ops["b"], signed_a))
    columns = bench.saturating(extreme)
    if columns is not None and (bench.width <= 16 or ctx.level != "quick"):
        await bench.start()
        await bench.check_batch(columns)
    ctx.record()


@cocotb.test()
async def direct_drive(dut):
    """Cycle-by-cycle cocotb drive of lane 0 through the wrapper ports: cross-checks the batch path."""
    ctx, bench = _bench(dut, "direct_drive")
    await bench.start()
    await bench.check_direct(bench.columns(DIRECT_CYCLES, lanes=1, p_rst=1 / 500, p_clear=1 / 8))
    ctx.record()
