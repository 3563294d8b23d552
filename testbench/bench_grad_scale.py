"""cocotb bench of GradScaleUnit (rtl/grad_scale.py) against golden.fp4.grad_scale_unit.

Tensors go in value by value (``last`` on the final one) through
:class:`testbench.streams.StreamSource`; one result per tensor comes out.
"""

import numpy as np
from cocotb.triggers import ClockCycles

from .checks import bench_test
from .payloads import GRAD_SCALE_IN, GRAD_SCALE_OUT
from .stream_bench import StreamBench
from .stream_models import grad_scale_outputs

EVERY_VALUE = {"quick": 4_096, "full": 1 << 16, "long": 1 << 16}
RANDOM_TENSORS = {"quick": 300, "full": 600, "long": 3_000}
STALLS = [(0.7, 0.5), (0.3, 1.0), (1.0, 0.3)]   # (valid_rate, ready_rate) of random_tensors_stalls
SPECIAL = np.array([0x0000, 0x8000, 0x0001, 0x8001, 0x03FF, 0x0400, 0x3C00, 0x3C01, 0x7BFF, 0xFBFF,
                    0x7C00, 0xFC00, 0x7E00, 0xFD00], np.uint16)


def flatten(tensors):
    """Input payloads of a list of uint16 pattern arrays, ``last`` on the final value of each."""
    last = np.zeros(sum(t.size for t in tensors), np.int64)
    last[np.cumsum([t.size for t in tensors]) - 1] = 1
    return GRAD_SCALE_IN.pack(value=np.concatenate(tensors), last=last)


def random_tensors(rng, count):
    """Tensors of 1..64 values (some up to 512): random patterns mixed with zeros, subnormals,
    specials and, in some tensors, NaN/Inf; some all-zero tensors."""
    tensors = []
    for _ in range(count):
        size = int(rng.integers(1, 65)) if rng.random() < 0.9 else int(rng.integers(65, 513))
        kind = rng.random()
        if kind < 0.05:
            values = np.where(rng.random(size) < 0.5, 0x8000, 0x0000).astype(np.uint16)
        else:
            values = rng.integers(0, 1 << 16, size, dtype=np.uint16)
            exponent_bits = values & 0x7C00
            finite_only = kind < 0.7
            if finite_only:
                values = np.where(exponent_bits == 0x7C00, values & 0x83FF, values).astype(np.uint16)
            small = rng.random(size) < 0.3
            values[small] = (values[small] & 0x83FF) | (rng.integers(0, 4, small.sum()) << 10).astype(np.uint16)
            picks = rng.random(size) < 0.05
            values[picks] = rng.choice(SPECIAL[:10] if finite_only else SPECIAL, picks.sum())
        tensors.append(values)
    return tensors


async def check(bench, tensors, valid_rate, ready_rate):
    received = await bench.transfer(flatten(tensors), len(tensors), valid_rate, ready_rate)
    bench.ctx.compare(grad_scale_outputs(tensors), GRAD_SCALE_OUT.unpack(received), lambda index: _describe(tensors, index))


def _describe(tensors, index):
    t = tensors[index[0]]
    shown = ", ".join(f"0x{int(v):04x}" for v in t[:12]) + (", ..." if t.size > 12 else "")
    return f"tensor of {t.size} values [{shown}]"


@bench_test(StreamBench)
async def every_value(bench):
    """Each of the 65,536 binary16 patterns as a one-value tensor, back to back at full rate
    (a random 4,096 of them in the quick regression)."""
    patterns = bench.ctx.rng.permutation(np.arange(1 << 16, dtype=np.uint16))[:EVERY_VALUE[bench.ctx.level]]
    await check(bench, list(patterns.reshape(-1, 1)), 1.0, 1.0)


@bench_test(StreamBench, (("valid_rate", "ready_rate"), STALLS))
async def random_tensors_stalls(bench, valid_rate, ready_rate):
    """Random tensors with valid gaps and back-pressure (result stalls hold the whole pipeline)."""
    await check(bench, random_tensors(bench.ctx.rng, RANDOM_TENSORS[bench.ctx.level]), valid_rate, ready_rate)


@bench_test(StreamBench)
async def reset_mid_tensor(bench):
    """Reset in the middle of a tensor: the partial maximum and flag are forgotten."""
    ctx = bench.ctx
    for _ in range(4):
        big = np.array([0x7BFF, 0x7C00] + [0x3C00] * 200, np.uint16)  # max finite, +Inf, then ones
        source, sink, streams = bench.streams(valid_rate=1.0, ready_rate=1.0)
        source.send(flatten([big]))
        await ClockCycles(bench.dut.clk, int(ctx.rng.integers(4, 100)))
        streams.stop()
        await bench.reset()
        if sink.received:
            ctx.fail("a result came out before the tensor's last value")
        await check(bench, random_tensors(ctx.rng, 8), valid_rate=0.9, ready_rate=0.9)
