"""cocotb bench of Int4Mac (rtl/int4_mac.py) against golden.units.int4_mac, in the batch wrapper."""

import numpy as np

import golden.units

from .checks import bench_test
from .mac_bench import MacBench, mac_tests


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


random_stream, saturation, direct_drive = mac_tests(Int4MacBench)
