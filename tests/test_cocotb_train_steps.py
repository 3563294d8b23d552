"""Training steps on the simulated RTL (testbench/bench_train_steps.py) and its host-side pieces.

The default suite runs the quick level on Verilator (STEPS["quick"] steps, host never stalling)
and checks build/sim/train_steps.json; Icarus and the long level (random gaps and
back-pressure) are marked slow. SEED picks the seed.
"""

import json
import os
from types import SimpleNamespace

import numpy as np
import pytest

from golden.training import data as datasets
from golden.training.layers import Quant
from golden import units
from golden.tiling import Mode
from testbench import bench_train_steps, runner
from testbench.array_driver import ArrayBackend, ArrayDriver

SEED = runner.resolve_seed(os.environ.get("SEED"))
CORE = {"rows": 8, "cols": 8}


def _run_and_check_report(sim, level):
    result = runner.run(runner.Target(sim, "training_core", CORE), level=level, seed=SEED)
    assert result.passed, result.report()
    assert result.vectors > 0 and result.mismatches == 0
    run = json.loads(bench_train_steps.REPORT.read_text())["levels"][level][sim]
    steps = bench_train_steps.STEPS[level]
    assert (run["seed"], run["steps"], len(run["losses"])) == (SEED, steps, steps)
    assert run["weights_identical"] is True
    assert run["losses"] == run["golden_losses"]
    assert run["test_loss_after"] < run["test_loss_before"]
    assert run["gemms_per_step"] == 6      # FWD, BWD_DATA, BWD_WEIGHT of each of the two 4-bit layers
    assert set(run["array_cycles_per_step_by_kind"]) == {mode.name for mode in Mode}
    macs = 2 * 3 * bench_train_steps.BATCH * bench_train_steps.HIDDEN ** 2
    assert run["macs_per_step"] == macs
    assert 0 < run["utilization"] <= 1
    assert run["array_cycles_per_step"] >= macs / (CORE["rows"] * CORE["cols"])


@pytest.mark.cocotb
def test_train_steps_on_verilator():
    _run_and_check_report("verilator", "quick")


def _only_when_slow(request):
    if not os.environ.get("LONG") and "slow" not in (request.config.getoption("-m") or ""):
        pytest.skip("slow: set LONG=1 or select -m slow")


@pytest.mark.slow
@pytest.mark.cocotb
def test_train_steps_on_icarus(request):
    _only_when_slow(request)
    _run_and_check_report("icarus", "quick")


@pytest.mark.slow
@pytest.mark.cocotb
def test_train_steps_long_on_verilator(request):
    """The long level: more steps, with random valid gaps and output back-pressure on every stream."""
    _only_when_slow(request)
    _run_and_check_report("verilator", "long")


# ---------------------------------------------------------------------------------------------
# Host side, without a simulator


def _driver(**params):
    ctx = SimpleNamespace(params={"rows": 3, "cols": 2, "fwd_width": units.FWD_WIDTH,
                                  "bwd_width": units.BWD_WIDTH, **params})
    return ArrayDriver(None, ctx)


@pytest.mark.parametrize("call, text", [
    (lambda be: be.gemm_int4(np.zeros((2, 2), np.int8), np.zeros((2, 2), np.int8), True, 24),
     "signed_a must be False .* got True"),
    (lambda be: be.gemm_int4(np.zeros((2, 2), np.uint8), np.zeros((2, 2), np.int8), False, 16),
     "width must be the array's FWD accumulator width 24, got 16"),
    (lambda be: be.gemm_fp4_int4(np.zeros((2, 2), np.uint8), 0, np.zeros((2, 2), np.uint8), False, 32),
     r"\(phase, signed_b\) must be \(0, True\) for BWD_DATA or \(1, False\) for BWD_WEIGHT .* got \(0, False\)"),
    (lambda be: be.gemm_fp4_int4(np.zeros((2, 2), np.uint8), 1, np.zeros((2, 2), np.int8), 1, 32),
     r"\(phase, signed_b\) must be .* got \(1, 1\)"),
    (lambda be: be.gemm_fp4_int4(np.zeros((2, 2), np.uint8), 1, np.zeros((2, 2), np.uint8), False, 24),
     "width must be the array's BWD_WEIGHT accumulator width 32, got 24"),
])
def test_array_backend_refuses_what_the_array_cannot_compute(call, text):
    with pytest.raises(ValueError, match=text):
        call(ArrayBackend(_driver()))


def test_driver_tiles_refuse_bad_operands():
    driver = _driver(fwd_width=12, bwd_width=20)
    with pytest.raises(ValueError, match="a"):
        driver.tiles(Mode.FWD, np.full((2, 3), 16), np.zeros((3, 2), np.int8))
    with pytest.raises(ValueError, match="inner dimensions differ"):
        driver.tiles(Mode.BWD_DATA, np.zeros((2, 3), np.uint8), np.zeros((4, 2), np.int8))
    with pytest.raises(ValueError, match="K"):
        driver.tiles(Mode.BWD_WEIGHT, np.zeros((2, 0), np.uint8), np.zeros((0, 2), np.uint8))
    tiles = driver.tiles(Mode.FWD, np.full((4, 20), 15), np.full((20, 3), 7))   # 20 * 105 > 2047
    assert len(tiles) == 2 * 2 and tiles[0].acc[0, 0] == units.acc_limits(12)[1] and tiles[0].overflow[0, 0]


def test_network_has_two_4bit_hidden_layers_and_fp32_ends():
    dataset = datasets.load(bench_train_steps.DATASET)
    quant = Quant()
    model = bench_train_steps.build_mlp(dataset, quant, SEED)
    kinds = [(layer.params["w"].shape, layer.quant is quant) for layer in model.layers]
    hidden = bench_train_steps.HIDDEN
    assert kinds == [((64, hidden), False), ((hidden, hidden), True), ((hidden, hidden), True), ((hidden, 10), False)]
    assert all(layer.params["w"].dtype == np.float32 for layer in model.layers)
