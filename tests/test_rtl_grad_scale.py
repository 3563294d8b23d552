"""GradScaleUnit in amaranth.sim against golden.fp4.grad_scale_unit: every value, random tensors."""

import numpy as np
import pytest

import golden.fp4 as fp4
from rtl.grad_scale import GradScaleUnit
from testbench.payloads import GRAD_SCALE_IN, GRAD_SCALE_OUT
from testbench.sim import StreamCollector, simulate, stream_get, stream_lanes, stream_put, stream_send

LANES = 16


def unpack_output(raw):
    """Raw o.payload bits -> (s, nonfinite)."""
    fields = GRAD_SCALE_OUT.unpack(raw)
    return int(fields["s"]), bool(fields["nonfinite"])


def payloads(tensor):
    """Raw i.payload bits of one tensor: its values, ``last`` on the final one."""
    return GRAD_SCALE_IN.pack(value=tensor, last=np.arange(len(tensor)) == len(tensor) - 1)


def golden_result(tensor):
    result = fp4.grad_scale_unit(np.asarray(tensor, np.uint16).view(np.float16))
    return result.s, result.nonfinite


def describe(tensor):
    return [f"0x{int(v):04x}" for v in tensor[:8]] + (["..."] if len(tensor) > 8 else [])


def test_every_value_as_a_one_element_tensor():
    """All 65,536 binary16 patterns, each its own tensor (last = 1): exercises ceil(log2|g|) exactly."""
    values = np.arange(1 << 16)
    lanes = np.array_split(GRAD_SCALE_IN.pack(value=values, last=1), LANES)
    outputs = np.concatenate([np.array(out, np.int64) for out in stream_lanes(GradScaleUnit, lanes)])
    assert len(outputs) == len(values)
    for value, raw in zip(values, outputs):  # golden is per tensor; stop at the first difference
        expected, actual = golden_result([value]), unpack_output(int(raw))
        assert actual == expected, f"tensor [0x{value:04x}]: expected (s, nonfinite)={expected}, got {actual}"


def random_tensors(rng, count):
    """Tensors of 1..40 values mixing normals at a random scale, zeros, subnormals, NaN and Inf."""
    tensors = []
    for _ in range(count):
        n = int(rng.integers(1, 41))
        scale = 2.0 ** rng.integers(-24, 16)
        with np.errstate(over="ignore"):  # large scales overflow to +-Inf now and then: also wanted
            values = (rng.standard_normal(n) * scale).astype(np.float16).view(np.uint16).astype(np.int64)
        kind = rng.random(n)
        values = np.where(kind < 0.15, rng.choice([0x0000, 0x8000], n), values)
        subnormals = rng.integers(1, 1 << 10, n) | rng.choice([0, 0x8000], n)
        values = np.where((kind >= 0.15) & (kind < 0.3), subnormals, values)
        special = rng.random() < 0.2
        values = np.where(special & (kind >= 0.97), rng.choice([0x7C00, 0xFC00, 0x7E00, 0xFD01], n), values)
        tensors.append(values)
    tensors[0] = np.zeros(7, np.int64)              # all-zero tensor
    tensors[1] = np.array([0x8000, 0x7C00, 0x0000])  # only zeros and Inf
    tensors[2] = np.array([0x7BFF])                  # largest finite: s = 16
    tensors[3] = np.array([0x0001, 0x8001])          # smallest subnormal: s = -24
    return tensors


def run_stream(tensors, rng, gap_rate, stall_rate):
    """Feed the tensors back to back (random input gaps) while o.ready toggles; return raw outputs."""
    dut = GradScaleUnit()
    collector = StreamCollector(dut.o, rng, ready_rate=1 - stall_rate)

    async def producer(ctx):
        await stream_send(ctx, dut.i, np.concatenate([payloads(tensor) for tensor in tensors]), rng, gap_rate)
        collector.done = True

    simulate(dut, producer, collector.testbench)
    return collector.collected()


@pytest.mark.parametrize("gap_rate, stall_rate", [(0.0, 0.0), (0.3, 0.5)])
def test_random_tensors(seed, gap_rate, stall_rate):
    """Back-to-back tensors (no gap after `last` when gap_rate is 0), with and without back-pressure."""
    rng = np.random.default_rng([seed, int(gap_rate * 10)])
    tensors = random_tensors(rng, 150)
    assert any(golden_result(t)[1] for t in tensors), "no tensor with NaN/Inf"
    received = run_stream(tensors, rng, gap_rate, stall_rate)
    for index, (tensor, raw) in enumerate(zip(tensors, received)):
        expected, actual = golden_result(tensor), unpack_output(raw)
        assert actual == expected, (f"seed={seed}: tensor {index} {describe(tensor)}: "
                                    f"expected (s, nonfinite)={expected}, got {actual}")
    assert len(received) == len(tensors), f"seed={seed}: {len(tensors)} tensors, {len(received)} results"


def test_hand_worked_tensors():
    """s = ceil(log2 max|g|), 0 for all-zero; NaN/Inf are flagged and left out of the max."""
    tensors = [
        [0x3C00, 0xC000],          # 1, -2: max 2 -> s = 1
        [0x3C01],                  # just above 1 -> s = 1
        [0x3400, 0x0000],          # 0.25 -> s = -2
        [0x0000, 0x8000],          # all zero -> s = 0
        [0x7E00, 0x3800],          # NaN, 0.5 -> s = -1, nonfinite
        [0x0200],                  # subnormal 2**-15 -> s = -15
        [0x0201],                  # just above 2**-15 -> s = -14
    ]
    dut, received = GradScaleUnit(), []

    async def testbench(ctx):  # one tensor at a time: its values, then its result
        for tensor in tensors:
            for payload in payloads(tensor):
                await stream_put(ctx, dut.i, int(payload))
            received.append(unpack_output(await stream_get(ctx, dut.o)))

    simulate(dut, testbench)
    assert received == [(1, False), (1, False), (-2, False), (0, False), (-1, True), (-15, False), (-14, False)]


def test_latency():
    """The result is on o LATENCY cycles after the cycle the `last` value is accepted."""
    dut = GradScaleUnit()
    valid_at = []

    async def testbench(ctx):
        ctx.set(dut.o.ready, 1)
        ctx.set(dut.i.valid, 1)
        ctx.set(dut.i.payload.as_value(), int(GRAD_SCALE_IN.pack(value=0x3C00, last=1)))
        await ctx.tick()
        ctx.set(dut.i.valid, 0)
        for cycle in range(1, 6):
            _, _, valid = await ctx.tick().sample(dut.o.valid)
            if valid:
                valid_at.append(cycle)

    simulate(dut, testbench)
    assert valid_at == [GradScaleUnit.LATENCY] and GradScaleUnit.LATENCY == 2
