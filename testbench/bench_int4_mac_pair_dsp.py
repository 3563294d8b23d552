"""cocotb bench of Int4MacPairDsp (rtl/int4_mac_pair_dsp.py): each lane against golden.units.int4_mac."""

import numpy as np

import golden.units

from .batch import as_signed
from .checks import bench_test
from .mac_bench import MacBench, mac_tests
from .mac_model import expected_outputs

LANE_OPERANDS = ("a0", "a1")


class Int4MacPairBench(MacBench):
    """Both lanes of the pair; the golden model of lane i is Int4Mac's with operands (a<i>, b)."""

    outputs = ("acc0", "overflow0", "acc1", "overflow1")

    def __init__(self, dut, ctx):
        self.signed_a = ctx.params["signed_a"]
        a_range = (-8, 7) if self.signed_a else (0, 15)
        super().__init__(dut, ctx, {"a0": a_range, "a1": a_range, "b": (-8, 7)})

    def lane_step(self, lane):
        name = LANE_OPERANDS[lane]
        return lambda acc, ops: golden.units.int4_mac(acc, ops[name], ops["b"], self.signed_a, self.width)

    def step(self, acc, ops):   # lane 0: sets how far saturation is
        return self.lane_step(0)(acc, ops)

    def product(self, ops):     # extremes of both lanes at once
        return sum(golden.units.int4_product(ops[name], ops["b"], self.signed_a) for name in LANE_OPERANDS)

    def expected(self, columns, gaps=()):
        result = {}
        for lane in range(2):
            acc, overflow = expected_outputs(columns, self.lane_step(lane), gaps=gaps)
            result.update({f"acc{lane}": acc, f"overflow{lane}": overflow})
        return result

    def decode(self, outputs):
        return {name: as_signed(outputs[name], self.width) if name.startswith("acc")
                else outputs[name].astype(bool) for name in self.outputs}


@bench_test(Int4MacPairBench)
async def exhaustive_pairs(bench):
    """Every (a, b) operand pair in each lane (all 256 products per lane, lane 1 in reverse order),
    followed by every other pair as a two-term sum in lane 0."""
    a_lo, a_hi = bench.operands["a0"]
    a, b = (v.ravel() for v in np.meshgrid(np.arange(a_lo, a_hi + 1), np.arange(-8, 8), indexing="ij"))
    count = a.size
    first = {"a0": np.repeat(a, count), "a1": np.repeat(a[::-1], count), "b": np.repeat(b, count)}
    second = {"a0": np.tile(a, count), "a1": np.tile(a[::-1], count), "b": np.tile(b, count)}
    await bench.check_batch(bench.sums(first, second))


random_stream, saturation, direct_drive = mac_tests(Int4MacPairBench)
