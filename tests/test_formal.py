"""Formal proofs (SymbiYosys, smtbmc with yices): the quick properties hold, and the proofs can fail.

``make formal`` runs every property and writes build/formal/summary.json; here each quick one
runs in its own temporary folder. The mutants of the simulation benches
(tests/test_cocotb_mutants.py, tests/test_cocotb_fp16_mutant.py) must be caught by a proof too.
"""

import json

import pytest
import test_cocotb_fp16_mutant as fp16_mutants
import test_cocotb_mutants as sim_mutants

from testbench.formal import __main__ as formal
from testbench.formal.properties import BY_NAME, PROPERTIES

QUICK = [prop.name for prop in PROPERTIES if prop.quick]


@pytest.mark.parametrize("name", QUICK)
def test_property_holds(name, tmp_path):
    outcome = formal.prove(BY_NAME[name], build=tmp_path)
    assert outcome.passed, f"{name}: {outcome.result}\n{outcome.counterexample_help()}\n{outcome.log[-3000:]}"


def _assert_caught(name, tmp_path, **variant):
    outcome = formal.prove(BY_NAME[name], build=tmp_path, **variant)
    assert outcome.result == "FAIL", f"{name} did not catch the mutant: {outcome.result}"
    assert outcome.trace is not None and outcome.trace.exists()
    help_text = outcome.counterexample_help()
    assert str(outcome.trace) in help_text and "VCD" in help_text


def test_flipped_signedness_is_caught(tmp_path):
    """Int4Mac built with signed A where unsigned A is meant (the told_unsigned bench mutant)."""
    _assert_caught("int4_mac_unsigned_sum", tmp_path, dut_params={"width": 24, "signed_a": True})


def test_tie_rounded_toward_zero_is_caught(tmp_path):
    _assert_caught("quantizer_values", tmp_path, edit=sim_mutants.ties_toward_zero)


def test_product_ties_rounded_away_are_caught(tmp_path):
    _assert_caught("fp16_product_rounding", tmp_path, edit=fp16_mutants.product_ties_away)


def test_flag_unknown_after_reset_is_caught(tmp_path):
    _assert_caught("fp16_reset", tmp_path, edit=fp16_mutants.flags_not_reset)


def test_summary_records_each_property(tmp_path):
    prop = BY_NAME["accumulator_sum"]
    summary = tmp_path / "summary.json"
    formal.record(prop, formal.prove(prop, build=tmp_path), summary=summary)
    formal.record(prop, formal.prove(prop, build=tmp_path), summary=summary)
    entries = json.loads(summary.read_text())
    assert len(entries) == 1
    assert {k: entries[0][k] for k in ("property", "mode", "depth", "result")} == {
        "property": "accumulator_sum", "mode": "prove", "depth": prop.depth, "result": "PASS"}
    assert entries[0]["seconds"] > 0


def test_unknown_property_is_one_line_error(usage_error):
    err = usage_error(formal.main, ["nope"])
    assert "unknown property 'nope'" in err and "Traceback" not in err
