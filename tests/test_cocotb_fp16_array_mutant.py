"""The FP16 array bench can fail: an array whose PEs round products ties-away is caught, with a
report naming the seed, the tile, the output beat, its operand beats, expected and actual values.
(The array's regressions themselves run in tests/test_cocotb_units.py.)"""

import re

import pytest

from testbench import runner

SEED = 7
PES = 3 * 2


def products_ties_away(verilog):
    """Every PE's multiplier rounds up whenever the guard bit (bit 10 of the normalised product) is
    set: ``round_up = guard & (sticky | lsb)`` becomes ``round_up = guard``."""
    pattern = r"(assign \\\$\d+ += \\\$\d+ \[10\]) & \\\$\d+ ;"
    found = len(re.findall(pattern, verilog))
    if found != PES:
        raise AssertionError(f"mutation site {pattern!r} found {found} times, expected one per PE ({PES}); "
                             "update this mutant to the current rtl/fp16_mac.py")
    return re.sub(pattern, r"\1;", verilog)


@pytest.mark.cocotb
def test_products_rounded_ties_away_are_caught():
    target = runner.Target("verilator", "fp16_array", {"rows": 3, "cols": 2},
                           runner.Mutant("products_ties_away", products_ties_away))
    result = runner.run(target, level="quick", seed=SEED, testcase="random_gemms")
    assert not result.passed, f"the bench passed a broken unit:\n{result.report()}"
    assert result.mismatches > 0
    report = result.report()
    for part in (f"seed {SEED}", "first at", "output beat", "A lane", "B lane", "expected", "actual", f"SEED={SEED}"):
        assert part in report, f"{part!r} missing from the failure report: {report}"
