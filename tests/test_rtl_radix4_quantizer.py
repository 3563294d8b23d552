"""Radix4Quantizer in amaranth.sim against golden.fp4.quantize: full FP16 sweeps, all scales, back-pressure."""

import numpy as np
import pytest

import golden.fp4 as fp4
from rtl.radix4_quantizer import Radix4Quantizer
from testbench.payloads import QUANTIZER_IN, QUANTIZER_OUT
from testbench.sim import StreamCollector, simulate, stream_lanes, stream_send
from testbench.stream_models import quantizer_outputs

LANES = 16
ALL_PATTERNS = np.arange(1 << 16, dtype=np.int64)


def assert_outputs(values, scales, actual, seed=None):
    """Compare in order; report the first differing vector, then any missing or extra outputs."""
    expected = quantizer_outputs(values, scales)
    n = min(len(values), len(actual["code0"]))
    bad = np.zeros(n, bool)
    for key in expected:
        bad |= expected[key][:n] != actual[key][:n]
    if bad.any():
        i = np.flatnonzero(bad)[0]
        x = np.uint16(values[i]).view(np.float16)
        pytest.fail(f"seed={seed}: {bad.sum()} of {n} differ; first: output {i}, value=0x{values[i]:04x} ({x!r}) "
                    f"s={scales[i]}: expected {({k: int(v[i]) for k, v in expected.items()})}, "
                    f"got {({k: int(v[i]) for k, v in actual.items()})}")
    assert len(actual["code0"]) == len(values), (
        f"seed={seed}: expected {len(values)} outputs, got {len(actual['code0'])}")


def run_batch(values, scales):
    """Quantize one value per cycle per lane with o.ready high; outputs in input order."""
    raw = QUANTIZER_IN.pack(value=values, s=scales)
    lanes = np.array_split(raw, LANES)
    outputs = stream_lanes(Radix4Quantizer, lanes)
    for lane, out in zip(lanes, outputs):
        assert len(out) == len(lane), "a lane lost or duplicated values"
    return QUANTIZER_OUT.unpack(np.concatenate([np.array(out, np.int64) for out in outputs]))


@pytest.mark.parametrize("s", [-32, -5, 0, 31])
def test_every_fp16_pattern(s):
    """All 65,536 binary16 patterns (subnormals, +-0, +-Inf, NaNs) at one scale, both phases."""
    scales = np.full(len(ALL_PATTERNS), s)
    assert_outputs(ALL_PATTERNS, scales, run_batch(ALL_PATTERNS, scales))


def boundary_patterns():
    """Magnitudes where rounding decisions change, for every exponent field, both signs, and +-0.

    The unit compares the two significand bits below the leading one (fraction >= 1/4 is the
    2.5 * level midpoint), so for each leading-one position (subnormals: 0..9, normals: the hidden
    bit) take the power of two, the largest value below 1.25x, 1.25x exactly, and the largest
    significand.
    """
    significands = []
    for lead in range(11):
        below = (1 << max(lead - 2, 0)) - 1 if lead >= 2 else 0
        candidates = {1 << lead, (1 << lead) | below, (1 << lead) | (1 << lead >> 2), (2 << lead) - 1}
        significands.append(sorted(candidates))
    subnormal = np.concatenate([[0]] + [np.array(sig) for sig in significands[:10]])
    fractions = np.array(significands[10]) & 0x3FF
    normal = (np.arange(1, 32)[:, None] << 10 | fractions[None, :]).ravel()
    magnitudes = np.concatenate([subnormal, normal])
    return np.concatenate([magnitudes, magnitudes | 0x8000])


def test_every_scale_at_the_rounding_boundaries():
    """All 64 scales s = -32..31, each with the boundary patterns, s changing from value to value."""
    patterns = boundary_patterns()
    assert {0x3C00, 0x3CFF, 0x3D00, 0x3FFF, 0x0001, 0x0004, 0x0005, 0x7C00, 0xFC00} <= set(patterns.tolist())
    scales = np.arange(fp4.S_MIN, fp4.S_MAX + 1)
    values = np.tile(patterns, len(scales))
    scale_of = np.repeat(scales, len(patterns))
    order = np.random.default_rng(1).permutation(len(values))  # interleave scales on the stream
    values, scale_of = values[order], scale_of[order]
    assert_outputs(values, scale_of, run_batch(values, scale_of))


def test_back_pressure_keeps_every_value_once(seed):
    """Random input gaps and o.ready toggling: outputs are the inputs' results, in order, once each.

    While o.valid is high and o.ready low the payload must hold (stream rules).
    """
    rng = np.random.default_rng(seed)
    n = 1500
    values = rng.integers(0, 1 << 16, n)
    scales = rng.integers(fp4.S_MIN, fp4.S_MAX + 1, n)
    dut = Radix4Quantizer()
    collector = StreamCollector(dut.o, rng, ready_rate=0.5)

    async def producer(ctx):
        await stream_send(ctx, dut.i, QUANTIZER_IN.pack(value=values, s=scales), rng, gap_rate=0.3)
        collector.done = True

    simulate(dut, producer, collector.testbench)
    assert_outputs(values, scales, QUANTIZER_OUT.unpack(collector.collected()), seed)


def test_latency_and_throughput():
    """With o.ready high, a value accepted at cycle t is on o at cycle t + LATENCY, one per cycle."""
    dut = Radix4Quantizer()
    values = [0x3C00, 0x4100, 0xC500, 0x7E00, 0x3500, 0x0400]  # 1.0, 2.5, -5.0, NaN, 0.3125, 2**-14
    seen = []

    async def testbench(ctx):
        ctx.set(dut.o.ready, 1)
        for cycle in range(len(values) + 4):
            ctx.set(dut.i.valid, cycle < len(values))
            ctx.set(dut.i.payload.as_value(), int(QUANTIZER_IN.pack(value=values[cycle % len(values)], s=0)))
            _, _, ready, valid, payload = await ctx.tick().sample(
                dut.i.ready, dut.o.valid, dut.o.payload.as_value())
            assert ready, "the quantizer must accept a value every cycle when o.ready is high"
            seen.append(payload if valid else None)

    simulate(dut, testbench)
    # Sampled at the edge of cycle c: the value accepted at the edge of cycle c - LATENCY.
    latency = Radix4Quantizer.LATENCY
    assert seen[:latency] == [None] * latency
    expected = quantizer_outputs(values, [0] * len(values))
    actual = QUANTIZER_OUT.unpack(seen[latency:latency + len(values)])
    assert all(np.array_equal(expected[k], actual[k]) for k in expected)
    assert seen[latency + len(values):] == [None] * (len(seen) - latency - len(values))
    # Hand-worked, s = 0: phase-0 levels 1, 1/4, ..., 2**-12; phase-1 levels 1/2, 1/8, ..., 2**-13.
    # 1.0: top of phase 0; nearest phase-1 level is the top 1/2 (1.0 < 2.5 * 1/2). 2.5 and -5.0 reach
    # 2.5 * top in both phases (overflow). 0.3125 = 2.5 * 1/8 is a phase-1 tie: away from zero, to 1/2.
    # 2**-14 is below half of 2**-12 (flush) in phase 0 and exactly half of 2**-13 in phase 1 (tie: e = 1).
    assert [int(c) for c in actual["code0"]] == [0b0111, 0b0111, 0b1111, 0, 6, 0]
    assert [int(c) for c in actual["code1"]] == [0b0111, 0b0111, 0b1111, 0, 7, 1]
    assert [int(f) for f in actual["overflow0"]] == [0, 1, 1, 0, 0, 0]
    assert [int(f) for f in actual["overflow1"]] == [0, 1, 1, 0, 0, 0]
    assert [int(f) for f in actual["invalid"]] == [0, 0, 0, 1, 0, 0]
