"""The training-array bench can fail: an array whose FWD clamp differs from what the bench is told
is caught by the saturation test, with a report naming the seed, the tile, the output beat, its
operand beats, expected and actual values. (The array's quick and full regressions themselves run
in tests/test_cocotb_units.py.)"""

import pytest

from testbench import runner

SEED = 7


@pytest.mark.cocotb
def test_wrong_forward_clamp_is_caught():
    """A 12-bit FWD accumulator, bench told 11 bits: the saturating FWD sums differ."""
    mutant = runner.Mutant("told_fwd_width_11", bench_params={"fwd_width": 11})
    target = runner.Target("icarus", "training_array", {"rows": 3, "cols": 2, "fwd_width": 12, "bwd_width": 20},
                           mutant)
    result = runner.run(target, level="quick", seed=SEED, testcase="saturation")
    assert not result.passed, f"the bench passed a broken unit:\n{result.report()}"
    assert result.mismatches > 0
    report = result.report()
    for part in (f"seed {SEED}", "first at", "tile 0 (FWD", "output beat", "A lane", "B lane", "expected acc=",
                 "actual acc=", f"SEED={SEED}"):
        assert part in report, f"{part!r} missing from the failure report: {report}"
