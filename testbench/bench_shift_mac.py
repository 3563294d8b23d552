"""cocotb bench of ShiftMac (rtl/shift_mac.py) against golden.units.shift_mac, in the batch wrapper."""

import cocotb
import numpy as np

import golden.units

from .checks import BenchContext
from .mac_bench import MacBench

RANDOM_VECTORS = {"quick": 65_536, "full": 262_144, "long": 1_310_720}  # 85 % valid: long has >= 1M MACs
PARTNERS = {"quick": 8, "full": 32, "long": None}  # second terms per first term in exhaustive_products
DIRECT_CYCLES = 3_000


def _bench(dut, test):
    ctx = BenchContext(dut, test)
    signed_b, width = ctx.params["signed_b"], ctx.params["width"]
    operands = {"code": (0, 15), "b": (-8, 7) if signed_b else (0, 15), "phase": (0, 1)}

    def step(acc, ops):
        # golden.units.shift_mac takes one phase per call; the unit takes it per cycle.
        acc_out = np.empty_like(acc)
        now = np.empty(acc.shape, bool)
        for phase in (0, 1):
            chosen = ops["phase"] == phase
            if chosen.any():
                acc_out[chosen], now[chosen] = golden.units.shift_mac(
                    acc[chosen], ops["code"][chosen], phase, ops["b"][chosen], signed_b, width)
        return acc_out, now

    return ctx, MacBench(dut, ctx, operands, step)


def _product(ops, signed_b):
    product = np.empty(ops["code"].shape, np.int64)
    for phase in (0, 1):
        chosen = ops["phase"] == phase
        product[chosen] = golden.units.shift_product(ops["code"][chosen], phase, ops["b"][chosen], signed_b)
    return product


@cocotb.test()
async def exhaustive_products(dut):
    """All 512 (code, b, phase) inputs as first term of a sum, each followed by second terms
    (8 / 32 random ones in the quick / full regression, all 512 in the long one)."""
    ctx, bench = _bench(dut, "exhaustive_products")
    await bench.start()
    ops = bench.all_operands()
    count = ops["code"].size
    partners = PARTNERS[ctx.level] or count
    second_index = (np.tile(np.arange(count), count) if partners == count
                    else ctx.rng.integers(0, count, count * partners))
    first = {name: np.repeat(values, partners) for name, values in ops.items()}
    second = {name: values[second_index] for name, values in ops.items()}
    await bench.check_batch(bench.sums(first, second))
    ctx.record()


@cocotb.test()
@cocotb.parametrize(phase=["0", "1", "per-cycle"])
async def random_stream(dut, phase):
    """Uniform random codes and operands with valid gaps, clears and resets; phase fixed or random per cycle."""
    ctx, bench = _bench(dut, f"random_stream[phase={phase}]")
    await bench.start()
    columns = bench.columns(RANDOM_VECTORS[ctx.level] // 3 // bench.lanes)
    if phase != "per-cycle":
        columns["phase"][:] = int(phase)
    await bench.check_batch(columns)
    ctx.record()


@cocotb.test()
async def saturation(dut):
    """Saturation at both limits, sticky overflow, clear and reset after saturating, leaving the rail.

    With W = 32 this takes some 2**31 / 122880 cycles, so the quick regression runs it only for
    W <= 16 (with W = 8 a single term saturates); W = 64 is out of reach.
    """
    ctx, bench = _bench(dut, "saturation")
    signed_b = ctx.params["signed_b"]
    columns = bench.saturating(bench.extremes(lambda ops: _product(ops, signed_b)))
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
