"""Training steps on the simulated RTL: a small MLP on sklearn digits, every 4-bit GEMM on the array.

The top is rtl.training_core.TrainingCore (the training array, the radix-4 gradient quantizer and
the GradScale unit side by side). The MLP 64 -> 64 -> 64 -> 64 -> 10 has two 4-bit hidden layers
(golden.training.layers.Linear with PACT inputs and SAWB weights); its first and last layers, the loss and
the SGD update stay FP32 (the fourbit scheme). The training step is golden.training.train.train_step; it
runs in a cocotb bridge thread, and the hooks of golden.training.layers.Quant send

* every GEMM of the 4-bit layers (forward, BWD_DATA, BWD_WEIGHT) to the array
  (:class:`testbench.array_driver.ArrayBackend`),
* every GradScale exponent to the GradScale unit (:class:`RtlGradScale`),
* every FP4 gradient code (both TPR phases at once) to the quantizer (:class:`RtlRadix4Gradients`).

After the steps the FP32 weights must be bit-identical to a pure-golden run of the same steps
and seed, and the held-out loss must have decreased. Every GEMM, quantization and scale is also
compared with golden on the spot, so a difference fails at its first vector.
build/sim/train_steps.json gets the figures per level and simulator (``levels.<level>.<sim>``):
cycles per step (per GEMM kind), MACs, utilization, simulated cycles per second, losses.
"""

import fcntl
import json
import time
from pathlib import Path

import numpy as np
from cocotb.clock import Clock
from cocotb.simtime import get_sim_time
from cocotb.task import bridge, resume
from cocotb.triggers import ClockCycles

import golden.fp4
from golden.training import data as datasets
from golden.tiling import Mode
from golden.training.layers import (Identity, Linear, NonFiniteGradient, Pact, Quant, Radix4Gradients,
                                    RecordingBackend, Relu)
from golden.training.models import PACT_ALPHA_INIT, Model
from golden.training.runtime import single_blas_thread
from golden.training.train import SGD, evaluate, train_step

from .array_driver import ArrayBackend, ArrayDriver, CycleCounter, TimedSink, cycles_by_mode
from .checks import bench_test
from .payloads import GRAD_SCALE_IN, GRAD_SCALE_OUT, QUANTIZER_IN, QUANTIZER_OUT
from .stream_bench import PERIOD_NS
from .stream_models import grad_scale_outputs, quantizer_outputs
from .streams import StreamSource, transfer

REPORT = Path(__file__).resolve().parents[1] / "build" / "sim" / "train_steps.json"
DATASET = "digits"
HIDDEN = 64
BATCH = 32
LR = 0.1
STEPS = {"quick": 3, "full": 5, "long": 5}
# (valid_rate, ready_rate) of the host's streams: no stalls for the cycle figures, gaps in long.
RATES = {"quick": (1.0, 1.0), "full": (1.0, 1.0), "long": (0.8, 0.7)}


def build_mlp(dataset, quant, seed, hidden=HIDDEN):
    """golden.training.models.Model: Linear 64 -> ``hidden`` (FP32), two 4-bit ``hidden`` -> ``hidden`` layers
    sharing ``quant`` (PACT inputs for INT4 codes, else ReLU), Linear ``hidden`` -> classes (FP32);
    He-normal weights from ``default_rng(seed)``."""
    rng = np.random.default_rng(seed)
    sizes = (int(np.prod(dataset.input_shape)), hidden, hidden, hidden, dataset.n_classes)
    layers = []
    for index, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        if index == 0:
            stage, layer_quant = Identity(), None
        elif index == len(sizes) - 2:
            stage, layer_quant = Relu(), None
        else:
            stage, layer_quant = Pact(PACT_ALPHA_INIT) if quant.int4_inputs else Relu(), quant
        layers.append(Linear(f"linear{index}", n_in, n_out, rng, stage, quant=layer_quant))
    return Model(layers)


def batch_indices(dataset, steps, seed):
    """Training sample indices of each step: consecutive batches of one permutation."""
    order = np.random.default_rng([seed, 1]).permutation(len(dataset.y_train))
    return [order[step * BATCH:(step + 1) * BATCH] for step in range(steps)]


def train(model, dataset, batches):
    """golden.training.train.train_step with SGD (momentum 0.9, weight decay 5e-4) at LR; the batch losses."""
    optimizer = SGD(model)
    return [train_step(model, optimizer, dataset.x_train[idx], dataset.y_train[idx], LR).loss for idx in batches]


def step_gemms(seed=0):
    """``[(mode, A, B)]``: the array GEMMs of the first training step of the MLP (golden run, seed
    ``seed``), in the order the step computes them, with the operand codes the array would get."""
    dataset = datasets.load(DATASET)
    recorder = RecordingBackend()
    train(build_mlp(dataset, Quant(backend=recorder), seed), dataset, batch_indices(dataset, 1, seed))
    modes = {"gemm_int4": lambda args: Mode.FWD,
             "gemm_fp4_int4": lambda args: Mode.BWD_DATA if args["phase"] == 0 else Mode.BWD_WEIGHT}
    return [(modes[call.name](call.args), call.args.get("a", call.args.get("codes")), call.args["b"])
            for call in recorder.calls]


def network_description(model):
    return [{"name": layer.name, "shape": list(layer.params["w"].shape),
             "kind": "4-bit" if layer.quant is not None else "FP32"} for layer in model.layers]


async def stream_through(dut, ctx, source, sink, payloads, outputs, valid_rate, ready_rate):
    """Send ``payloads`` into stream ``source`` of the top and collect ``outputs`` payloads from ``sink``.

    Returns (received int64 array, cycles up to and including the last output)
    (:func:`testbench.streams.transfer`).
    """
    clock = CycleCounter()
    out = TimedSink(dut, sink, ctx.rng, ready_rate, clock)
    budget = 100 + int(4 * len(payloads) / min(valid_rate, ready_rate))
    received = await transfer(ctx, dut.clk, [(StreamSource(dut, source, ctx.rng, valid_rate), payloads)], out,
                              outputs, budget, endpoints=[clock])
    return np.array(received, dtype=np.int64), out.cycles[-1] + 1


class QuantizerDriver:
    """The Radix4Quantizer of the core (``quant_i``/``quant_o``): a float16 tensor in, its FP4 codes
    of both TPR phases out, checked against golden.fp4.quantize."""

    def __init__(self, dut, ctx, valid_rate=1.0, ready_rate=1.0):
        self.dut, self.ctx, self.rates = dut, ctx, (valid_rate, ready_rate)
        self.cycles = []

    async def quantize(self, g16, s):
        """((codes, QuantFlags) of phase 0, (codes, QuantFlags) of phase 1), shaped like ``g16``."""
        patterns = np.ascontiguousarray(g16, np.float16).view(np.uint16).ravel()
        scales = np.full(patterns.size, s)
        received, cycles = await stream_through(self.dut, self.ctx, "quant_i", "quant_o",
                                                QUANTIZER_IN.pack(value=patterns, s=scales), patterns.size, *self.rates)
        self.cycles.append(cycles)
        got = QUANTIZER_OUT.unpack(received)
        self.ctx.compare(quantizer_outputs(patterns, scales), got,
                         lambda index: f"gradient value {index[0]} = 0x{int(patterns[index[0]]):04x}, s = {s}")
        invalid = got["invalid"].astype(bool).reshape(g16.shape)
        return tuple((got[f"code{phase}"].astype(np.uint8).reshape(g16.shape),
                      golden.fp4.QuantFlags(got[f"overflow{phase}"].astype(bool).reshape(g16.shape), invalid))
                     for phase in (0, 1))


class GradScaleDriver:
    """The GradScaleUnit of the core (``scale_i``/``scale_o``): a float16 tensor in, (s, nonfinite)
    out, checked against golden.fp4.grad_scale_unit."""

    def __init__(self, dut, ctx, valid_rate=1.0, ready_rate=1.0):
        self.dut, self.ctx, self.rates = dut, ctx, (valid_rate, ready_rate)
        self.cycles = []

    async def scale(self, g16):
        patterns = np.ascontiguousarray(g16, np.float16).view(np.uint16).ravel()
        last = np.arange(patterns.size) == patterns.size - 1
        received, cycles = await stream_through(self.dut, self.ctx, "scale_i", "scale_o",
                                                GRAD_SCALE_IN.pack(value=patterns, last=last), 1, *self.rates)
        self.cycles.append(cycles)
        got = GRAD_SCALE_OUT.unpack(received)
        self.ctx.compare(grad_scale_outputs([patterns]), got,
                         lambda index: f"a tensor of {patterns.size} float16 gradients, max |g| = "
                                       f"{np.nanmax(np.abs(np.asarray(g16, np.float32)))}")
        return int(got["s"][0]), bool(got["nonfinite"][0])


class RtlRadix4Gradients(Radix4Gradients):
    """Radix-4 FP4 gradients (TPR) from the RTL quantizer, for a golden.training.layers.Quant in a bridge thread.

    The quantizer gives both phases per value; the layer asks for phase 0 and then phase 1 of the
    same tensor, so the tensor goes through the hardware once.
    """

    def __init__(self, quantizer):
        super().__init__(tpr=True)
        self._quantize = resume(quantizer.quantize)
        self._last = (None, None)

    def quantize(self, g16, s, phase):
        key = (g16.shape, g16.tobytes(), s)
        if self._last[0] != key:
            self._last = (key, self._quantize(g16, s))
        return self._last[1][phase]


class RtlGradScale:
    """GradScale from the RTL unit (golden.training.layers.DynamicScale's contract), for a bridge thread."""

    def __init__(self, unit):
        self._scale = resume(unit.scale)

    def __call__(self, g16, layer_name):
        s, nonfinite = self._scale(g16)
        if nonfinite:
            raise NonFiniteGradient(f"the float16 gradient of layer {layer_name} has NaN or Inf values")
        return s


def raw_bits(model):
    """{(layer, parameter): uint32 view} of every float32 parameter."""
    return {(layer.name, name): np.ascontiguousarray(value).view(np.uint32)
            for layer in model.layers for name, value in layer.params.items()}


def write_report(level, sim, entry, path=REPORT):
    """Store ``entry`` as ``levels.<level>.<sim>`` in ``path`` (merged under a file lock)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        report = json.loads(path.read_text()) if path.exists() else {}
        report.setdefault("levels", {}).setdefault(level, {})[sim] = entry
        path.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
        fcntl.flock(lock, fcntl.LOCK_UN)


class CoreBench:
    """Clock and reset of the training core as the simulation top, numpy on one BLAS thread."""

    def __init__(self, dut, ctx):
        self.dut, self.ctx = dut, ctx

    async def start(self):
        single_blas_thread(warm_up=False)
        dut = self.dut
        Clock(dut.clk, PERIOD_NS, unit="ns", impl="gpi").start()
        for port in ("cmd", "a", "b", "quant_i", "scale_i"):
            getattr(dut, f"{port}__valid").value = 0
        for port in ("o", "quant_o", "scale_o"):
            getattr(dut, f"{port}__ready").value = 0
        dut.rst.value = 1
        await ClockCycles(dut.clk, 2)
        dut.rst.value = 0


class RtlRun:
    """The MLP with its 4-bit layers on the core: GEMMs on the array, GradScale and FP4 codes from
    the units; :meth:`step` trains on one batch and returns the loss and the step's figures."""

    def __init__(self, dut, ctx, dataset, valid_rate, ready_rate):
        self.array = ArrayDriver(dut, ctx, valid_rate, ready_rate)
        self.quantizer = QuantizerDriver(dut, ctx, valid_rate, ready_rate)
        self.grad_scale = GradScaleDriver(dut, ctx, valid_rate, ready_rate)
        quant = Quant(backend=ArrayBackend(self.array), grads=RtlRadix4Gradients(self.quantizer),
                      scale=RtlGradScale(self.grad_scale))
        self.dataset, self.model = dataset, build_mlp(dataset, quant, ctx.seed)
        self.optimizer = SGD(self.model)

    def _train_step(self, idx):
        return train_step(self.model, self.optimizer, self.dataset.x_train[idx], self.dataset.y_train[idx], LR).loss

    async def step(self, idx):
        seen = (len(self.array.records), len(self.quantizer.cycles), len(self.grad_scale.cycles))
        wall, sim = time.perf_counter(), get_sim_time("ns")
        loss = await bridge(self._train_step)(idx)
        cycles, macs = cycles_by_mode(self.array.records[seen[0]:])
        return loss, {
            "gemms": len(self.array.records) - seen[0], "array_cycles": sum(cycles.values()),
            "array_cycles_by_kind": cycles, "macs": sum(macs.values()), "macs_by_kind": macs,
            "quantizer_cycles": sum(self.quantizer.cycles[seen[1]:]),
            "grad_scale_cycles": sum(self.grad_scale.cycles[seen[2]:]),
            "simulated_cycles": round((get_sim_time("ns") - sim) / PERIOD_NS),
            "wall_seconds": round(time.perf_counter() - wall, 3),
        }


def report_entry(ctx, rtl, per_step, golden_run, losses, wall, simulated, identical):
    """The run's figures for build/sim/train_steps.json (per step: those of the last step)."""
    rows, cols = ctx.params["rows"], ctx.params["cols"]
    last = per_step[-1]
    valid_rate, ready_rate = RATES[ctx.level]
    return {
        "seed": ctx.seed, "dataset": DATASET, "steps": len(per_step), "batch": BATCH, "lr": LR,
        "network": network_description(rtl.model), "array": ctx.params,
        "host_rates": {"valid": valid_rate, "ready": ready_rate},
        "gemms_per_step": last["gemms"],
        "array_cycles_per_step": last["array_cycles"],
        "array_cycles_per_step_by_kind": last["array_cycles_by_kind"],
        "macs_per_step": last["macs"],
        "utilization": round(last["macs"] / (rows * cols * last["array_cycles"]), 4),
        "macs_per_array_cycle": round(last["macs"] / last["array_cycles"], 2),
        "quantizer_cycles_per_step": last["quantizer_cycles"],
        "grad_scale_cycles_per_step": last["grad_scale_cycles"],
        "simulated_cycles_per_step": last["simulated_cycles"],
        "per_step": per_step,
        "simulated_cycles": simulated, "wall_seconds": round(wall, 2),
        "simulated_cycles_per_second": round(simulated / wall),
        "simulated_macs_per_second": round(sum(step["macs"] for step in per_step) / wall),
        "losses": losses, **golden_run, "weights_identical": identical,
    }


@bench_test(CoreBench)
async def train_steps(bench):
    """STEPS[level] training steps with every 4-bit GEMM, scale and gradient code from the RTL;
    the weights must be bit-identical to the pure-golden run and the held-out loss must decrease."""
    ctx, dut = bench.ctx, bench.dut
    dataset = datasets.load(DATASET)
    batches = batch_indices(dataset, STEPS[ctx.level], ctx.seed)

    reference = build_mlp(dataset, Quant(), ctx.seed)
    golden_run = {"test_loss_before": evaluate(reference, dataset.x_test, dataset.y_test)[0],
                  "golden_losses": train(reference, dataset, batches)}
    # The RTL run's weights are compared bit for bit with these, so this is also their held-out loss.
    golden_run["test_loss_after"] = evaluate(reference, dataset.x_test, dataset.y_test)[0]

    rtl = RtlRun(dut, ctx, dataset, *RATES[ctx.level])
    losses, per_step = [], []
    wall, sim = time.perf_counter(), get_sim_time("ns")
    for idx in batches:
        loss, figures = await rtl.step(idx)
        losses.append(loss)
        per_step.append(figures)
    wall, simulated = time.perf_counter() - wall, round((get_sim_time("ns") - sim) / PERIOD_NS)

    got, want = raw_bits(rtl.model), raw_bits(reference)
    identical = all(np.array_equal(got[key], want[key]) for key in want)
    write_report(ctx.level, ctx.sim, report_entry(ctx, rtl, per_step, golden_run, losses, wall, simulated, identical))
    for key in want:
        ctx.compare({"bits": want[key].ravel()}, {"bits": got[key].ravel()},
                    lambda index, key=key: f"float32 parameter {key[1]} of layer {key[0]}, element {index[0]}, "
                                           f"after {len(batches)} steps")
    assert losses == golden_run["golden_losses"], \
        f"seed {ctx.seed}: batch losses {losses} differ from golden {golden_run['golden_losses']}"
    before, after = golden_run["test_loss_before"], golden_run["test_loss_after"]
    assert after < before, \
        f"seed {ctx.seed}: held-out loss did not decrease in {len(batches)} steps: {before} -> {after}"
    dut._log.info("%d steps: losses %s, held-out loss %.4f -> %.4f, %d array cycles per step, %.0f cycles/s",
                  len(batches), [round(v, 4) for v in losses], before, after, per_step[-1]["array_cycles"],
                  simulated / wall)
