"""cocotb bench of ShiftMac (rtl/shift_mac.py) against golden.units.shift_mac, in the batch wrapper."""

import numpy as np

import golden.units

from .checks import bench_test
from . import mac_bench
from .mac_bench import RANDOM_VECTORS, MacBench, mac_tests

PARTNERS = {"quick": 8, "full": 32, "long": None}  # second terms per first term in exhaustive_products


class ShiftMacBench(MacBench):
    def __init__(self, dut, ctx):
        self.signed_b = ctx.params["signed_b"]
        super().__init__(dut, ctx, {"code": (0, 15), "b": (-8, 7) if self.signed_b else (0, 15), "phase": (0, 1)})

    def step(self, acc, ops):
        # golden.units.shift_mac takes one phase per call; the unit takes it per cycle.
        acc_out = np.empty_like(acc)
        now = np.empty(acc.shape, bool)
        for phase in (0, 1):
            chosen = ops["phase"] == phase
            if chosen.any():
                acc_out[chosen], now[chosen] = golden.units.shift_mac(
                    acc[chosen], ops["code"][chosen], phase, ops["b"][chosen], self.signed_b, self.width)
        return acc_out, now

    def product(self, ops):
        product = np.empty(ops["code"].shape, np.int64)
        for phase in (0, 1):
            chosen = ops["phase"] == phase
            product[chosen] = golden.units.shift_product(ops["code"][chosen], phase, ops["b"][chosen], self.signed_b)
        return product


@bench_test(ShiftMacBench)
async def exhaustive_products(bench):
    """All 512 (code, b, phase) inputs as first term of a sum, each followed by second terms
    (8 / 32 random ones in the quick / full regression, all 512 in the long one)."""
    ops = bench.all_operands()
    count = ops["code"].size
    partners = PARTNERS[bench.ctx.level] or count
    second_index = (np.tile(np.arange(count), count) if partners == count
                    else bench.ctx.rng.integers(0, count, count * partners))
    first = {name: np.repeat(values, partners) for name, values in ops.items()}
    second = {name: values[second_index] for name, values in ops.items()}
    await bench.check_batch(bench.sums(first, second))


@bench_test(ShiftMacBench, ("phase", ["0", "1", "per-cycle"]))
async def random_stream(bench, phase):
    """Uniform random codes and operands with valid gaps, clears and resets; phase fixed or random per cycle."""
    columns = bench.columns(RANDOM_VECTORS[bench.ctx.level] // 3 // bench.lanes)
    if phase != "per-cycle":
        columns["phase"][:] = int(phase)
    await bench.check_batch(columns)


saturation, direct_drive = mac_tests(ShiftMacBench, mac_bench.saturation, mac_bench.direct_drive)
