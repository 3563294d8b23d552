# amaranth: UnusedElaboratable=no
"""TrainingCore (rtl/training_core.py) in amaranth.sim: each unit works behind the core's own ports."""

import gc
import warnings

import numpy as np
import pytest
from amaranth.hdl import UnusedElaboratable

import golden.fp4
from golden import tiling
from golden.tiling import Mode
from rtl import generate
from rtl.array import TrainingArray
from testbench.array_bench import first_mismatch, stream_tiles
from rtl.grad_scale import GradScaleUnit
from rtl.radix4_quantizer import Radix4Quantizer
from testbench.payloads import GRAD_SCALE_IN, QUANTIZER_IN, commands_and_beats
from testbench.sim import simulate, stream_put
from rtl.training_core import TrainingCore


def test_ports_are_the_units_ports():
    """The array's ports unchanged, then the quantizer's and the GradScale unit's with prefixes."""
    def named(component, prefix=""):
        return [dict(port, name=prefix + port["name"]) for port in generate.ports(component)[2:]]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnusedElaboratable)  # the core's units, built only for their ports
        expected = (generate.CLOCK_PORTS + named(TrainingArray(3, 2, 12, 20)) + named(Radix4Quantizer(), "quant_")
                    + named(GradScaleUnit(), "scale_"))
        assert generate.ports(TrainingCore(3, 2, 12, 20)) == expected
        gc.collect()


def test_registered_for_the_bench():
    assert generate.UNITS["training_core"] is TrainingCore
    assert generate.module_name("training_core", {"rows": 8, "cols": 8}) == \
        "training_core__rows_8__cols_8__fwd_width_24__bwd_width_32"


@pytest.mark.parametrize("kwargs, error, text", [
    ({"rows": 1}, ValueError, "rows must lie in 2..32, got 1"),
    ({"cols": 33}, ValueError, "cols must lie in 2..32, got 33"),
    ({"fwd_width": "24"}, TypeError, "fwd_width must be an int, got '24'"),
    ({"bwd_width": 65}, ValueError, "bwd_width must lie in 8..64, got 65"),
])
def test_bad_parameters(kwargs, error, text):
    with pytest.raises(error, match=text):
        TrainingCore(**kwargs)


def test_array_behind_the_core(seed):
    """GEMMs of all three modes through the core's cmd/a/b/o ports, every output row against golden.tiling."""
    rng = np.random.default_rng(seed)
    tiles = []
    for mode in Mode:
        a = rng.integers(0, 16, (4, 5))
        b = rng.integers(0, 16, (5, 3)) if mode is Mode.BWD_WEIGHT else rng.integers(-8, 8, (5, 3))
        tiles += tiling.tiles(mode, a, b, 3, 2, s=int(rng.integers(-32, 32)), fwd_width=12, bwd_width=20)
    expected = tiling.output_beats(tiles)
    trace = stream_tiles(TrainingCore(3, 2, 12, 20), *commands_and_beats(tiles), len(expected), rng=rng,
                         in_rate=0.8, out_rate=0.7, drain_cycles=10, max_cycles=2000)
    mismatch = first_mismatch(trace.outputs, expected)
    assert mismatch is None, f"seed={seed}: {mismatch[1]}"
    assert not trace.error


def _run_stream(core, source, sink, payloads, outputs):
    """Raw ``payloads`` into stream ``source`` of ``core``; the first ``outputs`` payloads of ``sink``."""
    received = []

    async def producer(ctx):
        for payload in payloads:
            await stream_put(ctx, getattr(core, source), payload)

    async def consumer(ctx):
        stream = getattr(core, sink)
        ctx.set(stream.ready, 1)
        for _ in range(4 * len(payloads) + 20):
            _, _, valid, payload = await ctx.tick().sample(stream.valid, stream.payload)
            if valid:
                received.append(payload)
        assert len(received) == outputs, f"{len(received)} outputs on {sink} for {outputs} expected"

    simulate(core, producer, consumer)
    return received


def test_quantizer_behind_the_core(seed):
    """Random binary16 values with random s through quant_i/quant_o: both phases against golden.fp4.quantize."""
    rng = np.random.default_rng(seed)
    patterns = rng.integers(0, 1 << 16, 64, dtype=np.uint16)
    scales = rng.integers(-20, 20, 64)
    payloads = [int(raw) for raw in QUANTIZER_IN.pack(value=patterns, s=scales)]
    got = _run_stream(TrainingCore(2, 2), "quant_i", "quant_o", payloads, len(payloads))
    for index, (pattern, s, out) in enumerate(zip(patterns, scales, got)):
        value = np.array([pattern], np.uint16).view(np.float16)
        want = [golden.fp4.quantize(value, int(s), phase) for phase in (0, 1)]
        expected = (int(want[0][0][0]), int(want[1][0][0]), bool(want[0][1].overflow[0]),
                    bool(want[1][1].overflow[0]), bool(want[0][1].invalid[0]))
        actual = (out.code0, out.code1, bool(out.overflow0), bool(out.overflow1), bool(out.invalid))
        assert actual == expected, \
            f"seed={seed} value {index} 0x{int(pattern):04x} s={s}: expected {expected}, got {actual}"


def test_grad_scale_behind_the_core(seed):
    """Two tensors through scale_i/scale_o: their exponents against golden.fp4.grad_scale_unit."""
    rng = np.random.default_rng(seed)
    tensors = [rng.standard_normal(17).astype(np.float16) * 100, rng.standard_normal(5).astype(np.float16) / 1000]
    payloads = [int(raw) for t in tensors
                for raw in GRAD_SCALE_IN.pack(value=t.view(np.uint16), last=np.arange(t.size) == t.size - 1)]
    got = _run_stream(TrainingCore(2, 2), "scale_i", "scale_o", payloads, len(tensors))
    for tensor, out in zip(tensors, got):
        want = golden.fp4.grad_scale_unit(tensor)
        assert (out.s, bool(out.nonfinite)) == (want.s, want.nonfinite), f"seed={seed}: {tensor}"
