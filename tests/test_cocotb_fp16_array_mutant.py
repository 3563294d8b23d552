"""The FP16 array bench can fail: broken arrays are caught, with a report naming the seed, the
tile, the output beat, its operand beats, expected and actual values. One mutant breaks the
arithmetic of every PE (products rounded ties-away), one the interleaved schedule (beats taken
in any cycle, not only in their ring slot's phase, so after an input gap a term joins another
output's sum), one the special values (a NaN operand or Inf - Inf no longer makes a sum NaN: the
corner-operand GEMMs catch it). (The array's regressions themselves run in tests/test_cocotb_units.py.)"""

import re

import pytest

from testbench import runner

SEED = 7
PES = 3 * 2


def _replace(verilog, pattern, replacement, why, count=None):
    """Replace every match of ``pattern``; there must be ``count`` of them (None: at least one)."""
    found = len(re.findall(pattern, verilog))
    if found == 0 or count not in (None, found):
        raise AssertionError(f"mutation site {pattern!r} ({why}) found {found} times, expected {count or 'some'}; "
                             "update this mutant to the current RTL")
    return re.sub(pattern, replacement, verilog)


def products_ties_away(verilog):
    """Every PE's multiplier rounds up whenever the guard bit is set: ``round_up = guard``."""
    return _replace(verilog, r"assign product_round_up = (prod_norm\[10\]) & \\\$\d+ ;",
                    r"assign product_round_up = \1;", "rtl/fp16_pipe_mac.py, one per PE", PES)


def phase_ignored(verilog):
    """The intake takes beat l of a k step in any cycle (``sub == phase`` is always true)."""
    return _replace(verilog, r"= sub == phase;", "= 1'h1;", "rtl/array.py, the intake")


def nan_lost(verilog):
    """Every PE's adder ring never flags its sum NaN (NaN operands and Inf - Inf give Inf or a number)."""
    return _replace(verilog, r"sum_nan_1 <= \\\$\d+ ;", "sum_nan_1 <= 1'h0;", "rtl/fp16_pipe_mac.py, one per PE", PES)


@pytest.mark.cocotb
@pytest.mark.parametrize("mutant, testcase", [(products_ties_away, "random_gemms"), (phase_ignored, "random_gemms"),
                                              (nan_lost, "corner_operands")], ids=lambda value: getattr(value, "__name__", value))
def test_broken_arrays_are_caught(mutant, testcase):
    target = runner.Target("verilator", "fp16_array", {"rows": 3, "cols": 2},
                           runner.Mutant(mutant.__name__, mutant))
    result = runner.run(target, level="quick", seed=SEED, testcase=testcase)
    assert not result.passed, f"the bench passed a broken unit:\n{result.report()}"
    assert result.mismatches > 0
    report = result.report()
    for part in (f"seed {SEED}", "first at", "output beat", "A lane", "B lane", "expected", "actual", f"SEED={SEED}"):
        assert part in report, f"{part!r} missing from the failure report: {report}"
