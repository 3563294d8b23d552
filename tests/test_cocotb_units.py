"""The cocotb benches (testbench/) on Icarus and Verilator, one test per simulator and unit configuration.

By default the quick regression runs; the long one (>= 1M random MACs per unit and simulator)
is marked slow and runs with LONG=1 (``make test LONG=1``) or ``-m slow``. SIM and UNIT narrow the
selection, SEED picks the seed (an integer or ``random``); every run lands in build/sim/summary.json.
"""

import os

import pytest

from testbench import runner

SEED = runner.resolve_seed(os.environ.get("SEED"))
OWN_TESTS = {"training_core"}   # tests/test_cocotb_train_steps.py runs it and checks its report


def _targets(level):
    return [pytest.param(target, id=f"{target.sim}-{target.name}")
            for target in runner.targets(os.environ.get("SIM"), os.environ.get("UNIT"), level)
            if target.unit not in OWN_TESTS]


@pytest.mark.cocotb
@pytest.mark.parametrize("target", _targets("quick"))
def test_quick_regression(target):
    result = runner.run(target, level="quick", seed=SEED)
    assert result.passed, result.report()
    assert result.vectors > 0 and result.mismatches == 0


@pytest.mark.slow
@pytest.mark.cocotb
@pytest.mark.parametrize("target", _targets("long"))
def test_long_regression(target, request):
    if not os.environ.get("LONG") and "slow" not in (request.config.getoption("-m") or ""):
        pytest.skip("long regression: set LONG=1 or select -m slow")
    result = runner.run(target, level="long", seed=SEED)
    assert result.passed, result.report()
    assert result.mismatches == 0
