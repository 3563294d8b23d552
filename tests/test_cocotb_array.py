"""The training-array bench can fail: an array whose FWD clamp differs from what the bench is told
is caught by the saturation test, and a DSP-mapped array whose paired products lose the borrow by
the random GEMMs, with a report naming the seed, the tile, the output beat, its operand beats,
expected and actual values. (The arrays' quick and full regressions themselves run in
tests/test_cocotb_units.py.)"""

import pytest

from testbench import runner

SEED = 7


def _assert_caught(result, parts):
    assert not result.passed, f"the bench passed a broken unit:\n{result.report()}"
    assert result.mismatches > 0
    report = result.report()
    for part in (f"seed {SEED}", "first at", *parts, "expected acc=", "actual acc=", f"SEED={SEED}"):
        assert part in report, f"{part!r} missing from the failure report: {report}"


@pytest.mark.cocotb
def test_wrong_forward_clamp_is_caught():
    """A 12-bit FWD accumulator, bench told 11 bits: the saturating FWD sums differ."""
    mutant = runner.Mutant("told_fwd_width_11", bench_params={"fwd_width": 11})
    target = runner.Target("icarus", "training_array", {"rows": 3, "cols": 2, "fwd_width": 12, "bwd_width": 20},
                           mutant)
    result = runner.run(target, level="quick", seed=SEED, testcase="saturation")
    _assert_caught(result, ("tile 0 (FWD", "output beat", "A lane", "B lane"))


def pair_without_borrow(verilog):
    """DspTrainingArray mutant: the lower row of each PE pair drops the borrow of the packed product's low half.

    Lane 1's FWD carry-in is the sign bit (bit 7) of the packed product, ``<fwd> ? <product> [7] : a[7]``
    in every 2-row PE; adding 0 instead makes a1*b one too small whenever a0*b is negative.
    """
    pairs = verilog.count("* $signed(operands[")
    return runner.mutate(verilog, r"= ([^?;=]+) \? \\\$\d+ \[7\] : a\[7\];", r"= \1 ? 1'h0 : a[7];", pairs,
                         "rtl/dsp_pair_pe.py")


@pytest.mark.cocotb
@pytest.mark.parametrize("sim", runner.SIMULATORS)
def test_dsp_pair_without_borrow_is_caught(sim):
    target = runner.Target(sim, "training_array_dsp", {"rows": 3, "cols": 2, "fwd_width": 12, "bwd_width": 20},
                           runner.Mutant("without_borrow", pair_without_borrow))
    _assert_caught(runner.run(target, level="quick", seed=SEED, testcase="random_gemms"), ("FWD",))
