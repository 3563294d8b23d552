"""cocotb bench of Int4Mac (rtl/int4_mac.py) against golden.units.int4_mac, in the batch wrapper."""

import numpy as np

import golden.units

from .checks import bench_test
from .mac_bench import MacBench

RANDOM_VECTORS = {"quick": 65_536, "full": 262_144, "long": 1_310_720}  # 85 % valid: long has >= 1M MACs
DIRECT_CYCLES = 3_000


class Int4MacBench(MacBench):
    def __init__(self, dut, ctx):
        self.signed_a = ctx.params["signed_a"]
        super().__init__(dut, ctx, {"a": (-8, 7) if self.signed_a else (0, 15), "b": (-8, 7)})

    def step(self, acc, ops):
        return golden.units.int4_mac(acc, ops["a"], ops["b"], self.signed_a, self.width)

    def product(self, ops):
        return golden.units.int4_product(ops["a"], ops["b"], self.signed_a)


@bench_test(Int4MacBench)
async def exhaustive_pairs(bench):
    """Every ordered pair of (a, b) operand pairs as a two-term sum (all 256 products, all 65,536 sums)."""
    ops = bench.all_operands()
    count = ops["a"].size
    first = {name: np.repeat(values, count) for name, values in ops.items()}
    second = {name: np.tile(values, count) for name, values in ops.items()}
    await bench.check_batch(bench.sums(first, second))


@bench_test(Int4MacBench)
async def random_stream(bench):
    """Uniform random operands with valid gaps, clears and resets in the middle of sums."""
    await bench.check_batch(bench.columns(RANDOM_VECTORS[bench.ctx.level] // bench.lanes))


@bench_test(Int4MacBench)
async def saturation(bench):
    """Saturation at both limits, sticky overflow, clear and reset after saturating, leaving the rail.

    Reaching the limit of a W-bit accumulator takes about 2**(W-1)/120 cycles or more, so the
    quick regression runs this only for W <= 16; W = 64 is out of reach.
    """
    await bench.check_saturation()


@bench_test(Int4MacBench)
async def direct_drive(bench):
    """Cycle-by-cycle cocotb drive of lane 0 through the wrapper ports: cross-checks the batch path."""
    await bench.check_random_direct(DIRECT_CYCLES)
