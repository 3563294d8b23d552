"""cocotb bench of Radix4Quantizer (rtl/radix4_quantizer.py) against golden.fp4.quantize.

The unit is the simulation top and is driven through its streams by
:class:`testbench.streams.StreamSource` / :class:`~testbench.streams.StreamSink`, with random
valid gaps and back-pressure. Every output carries the codes of both TPR phases.
"""

import numpy as np
from cocotb.triggers import ClockCycles

import golden.fp4

from .checks import bench_test
from .payloads import QUANTIZER_IN, QUANTIZER_OUT
from .stream_bench import StreamBench
from .stream_models import quantizer_outputs

ALL_PATTERNS = np.arange(1 << 16, dtype=np.uint16)
SWEEP = {"quick": 4_096, "full": 1 << 16, "long": 1 << 16}  # patterns per sweep scale (all: 65,536)
SWEEP_SCALES = {"quick": (0,), "full": (0, -14), "long": (golden.fp4.S_MIN, -14, 0, 15, golden.fp4.S_MAX)}
RANDOM_VALUES = {"quick": 2_000, "full": 4_000, "long": 20_000}
STALLS = [(0.5, 0.3), (1.0, 0.2), (0.2, 1.0)]   # (valid_rate, ready_rate) of random_stalls


def payloads(patterns, scales):
    """Input payloads: binary16 bit pattern ``value`` and scale exponent ``s``."""
    return QUANTIZER_IN.pack(value=patterns, s=scales)


async def check(bench, patterns, scales, valid_rate, ready_rate):
    """Stream ``patterns`` with per-value ``scales`` through the unit and compare every output."""
    patterns, scales = np.asarray(patterns, np.uint16), np.asarray(scales, np.int64)
    received = await bench.transfer(payloads(patterns, scales), len(patterns), valid_rate, ready_rate)
    bench.ctx.compare(quantizer_outputs(patterns, scales), QUANTIZER_OUT.unpack(received), lambda index: _describe(patterns, scales, index))


def _describe(patterns, scales, index):
    i = index[0]
    value = float(patterns[i:i + 1].view(np.float16)[0])
    return f"value 0x{int(patterns[i]):04x} ({value:.6g}) with s = {int(scales[i])}"


def corner_values():
    """(patterns, scales): every rounding threshold of both phases for many s, exact and one ulp
    either side, both signs, plus +-0, +-Inf, NaNs, the smallest subnormal and the largest value."""
    patterns, scales = [], []
    for s in range(golden.fp4.S_MIN, golden.fp4.S_MAX + 1):
        for phase in (0, 1):
            limits = golden.fp4.thresholds(s, phase)
            top = 2.5 * 2.0 ** golden.fp4.level_exponent(golden.fp4.E_MAX, s, phase)
            exact = np.concatenate([limits, [top]])
            with np.errstate(over="ignore"):
                half = exact.astype(np.float16)
            half = half[(half.astype(np.float64) == exact) & np.isfinite(half)]
            near = np.concatenate([half, np.nextafter(half, np.float16(np.inf)), np.nextafter(half, np.float16(0))])
            near = np.concatenate([near, -near])
            patterns.append(near.view(np.uint16))
            scales.append(np.full(near.size, s))
    specials = np.array([0x0000, 0x8000, 0x7C00, 0xFC00, 0x7E00, 0xFE01, 0x7C01, 0x0001, 0x8001, 0x7BFF, 0xFBFF,
                         0x03FF, 0x0400], np.uint16)
    for s in (golden.fp4.S_MIN, -24, -1, 0, 1, 16, golden.fp4.S_MAX):
        patterns.append(specials)
        scales.append(np.full(specials.size, s))
    return np.concatenate(patterns), np.concatenate(scales)


@bench_test(StreamBench)
async def all_patterns(bench):
    """All 65,536 binary16 patterns, shuffled, for each sweep scale (a random 4,096 of them in the
    quick regression), with light gaps and back-pressure."""
    level, rng = bench.ctx.level, bench.ctx.rng
    for s in SWEEP_SCALES[level]:
        patterns = rng.permutation(ALL_PATTERNS)[:SWEEP[level]]
        await check(bench, patterns, np.full(patterns.size, s), valid_rate=0.95, ready_rate=0.95)


@bench_test(StreamBench)
async def corners(bench):
    """Ties (ties away from zero), one ulp around every threshold, saturation and special values."""
    patterns, scales = corner_values()
    order = bench.ctx.rng.permutation(patterns.size)
    await check(bench, patterns[order], scales[order], valid_rate=0.8, ready_rate=0.8)


@bench_test(StreamBench, (("valid_rate", "ready_rate"), STALLS))
async def random_stalls(bench, valid_rate, ready_rate):
    """Random patterns and scales under stalls on one or both sides."""
    count, rng = RANDOM_VALUES[bench.ctx.level], bench.ctx.rng
    patterns = rng.integers(0, 1 << 16, count, dtype=np.uint16)
    scales = rng.integers(golden.fp4.S_MIN, golden.fp4.S_MAX + 1, count)
    await check(bench, patterns, scales, valid_rate, ready_rate)


@bench_test(StreamBench)
async def reset_mid_stream(bench):
    """Reset while values are in flight: outputs before it are a prefix of the expected ones, and
    after it the unit quantizes new values as if fresh (no stale or duplicated outputs)."""
    ctx = bench.ctx
    for _ in range(4):
        patterns = ctx.rng.integers(0, 1 << 16, 64, dtype=np.uint16)
        scales = ctx.rng.integers(-20, 20, 64)
        source, sink, streams = bench.streams(valid_rate=0.9, ready_rate=0.6)
        source.send(payloads(patterns, scales))
        await ClockCycles(bench.dut.clk, int(ctx.rng.integers(5, 60)))
        streams.stop()
        await bench.reset()
        got = np.array(sink.received, dtype=np.int64)
        ctx.compare({k: v[:got.size] for k, v in quantizer_outputs(patterns, scales).items()}, QUANTIZER_OUT.unpack(got),
                    lambda index: _describe(patterns, scales, index))
        fresh = ctx.rng.integers(0, 1 << 16, 32, dtype=np.uint16)
        await check(bench, fresh, np.full(fresh.size, 3), valid_rate=0.9, ready_rate=0.9)
