"""The Fp16Mac bench can fail, and its cycle model is right.

Two broken variants of the generated Verilog must be caught with a complete report (seed, first
differing vector, its inputs, expected and actual values): products rounded ties-away instead of
ties-to-even, and sticky flags that come out of reset unknown (X, which only the cycle-by-cycle
check sees; the batch files are 2-state). The bench's expected outputs (testbench.fp16_mac_bench,
built on testbench.mac_model) are checked against the independent cycle model
golden.fp16.mac_sequence and on hand-worked reset traces, and its directed stimulus classes hit
the corners they are named after.
"""

import re

import numpy as np
import pytest

import golden.fp16
from testbench import fp16_mac_bench as bench
from testbench import runner
from testbench.fp16_mac_bench import LATENCY, expected_outputs

SEED = 7
ONE, TWO, THREE, INF, NAN = 0x3C00, 0x4000, 0x4200, 0x7C00, 0x7E00


def _assert_caught(result):
    assert not result.passed, f"the bench passed a broken unit:\n{result.report()}"
    report = result.report()
    for part in (f"seed {SEED}", "expected", "actual", "inputs:", f"SEED={SEED}"):
        assert part in report, f"{part!r} missing from the failure report: {report}"


def _replace_once(verilog, pattern, replacement, why):
    found = re.findall(pattern, verilog)
    if len(found) != 1:
        raise AssertionError(f"mutation site {pattern!r} ({why}) found {len(found)} times in the generated "
                             "Verilog; update this mutant to the current rtl/fp16_mac.py")
    return re.sub(pattern, replacement, verilog)


def product_ties_away(verilog):
    """Fp16Mac mutant: the multiplier rounds up whenever the guard bit is set (ties away from zero).

    ``round_up = guard & (sticky | lsb)`` of the multiplier's rounding (guard = bit 10 of the
    normalised 22-bit product) becomes ``round_up = guard``.
    """
    return _replace_once(verilog, r"(assign \\\$\d+ += \\\$\d+ \[10\]) & \\\$\d+ ;", r"\1;",
                         "the multiplier's round-up AND")


def flags_not_reset(verilog):
    """Fp16Mac mutant: the sticky ``invalid`` flag has neither an initial value nor a reset, so it
    reads X after reset (on Icarus; Verilator is 2-state) until the first ``clear``."""
    verilog = _replace_once(verilog, r"reg invalid = 1'h0;\n(?=  output overflow;)", "reg invalid;\n",
                            "the top's invalid register")
    assigned = re.search(r"  always @\(posedge clk\)\n    invalid <= (\\\$\d+) ;", verilog)
    if assigned is None:
        raise AssertionError("register update of the top's invalid flag not found; update this mutant")
    name = re.escape(assigned.group(1))
    return _replace_once(verilog, rf"(if \(rst\) begin\n +{name} += )1'h0;", r"\g<1>1'hx;",
                         "the reset value of the top's invalid flag")


@pytest.mark.cocotb
@pytest.mark.parametrize("sim", runner.SIMULATORS)
def test_product_ties_rounded_away_are_caught(sim):
    target = runner.Target(sim, "fp16_mac", {}, runner.Mutant("product_ties_away", product_ties_away))
    result = runner.run(target, level="quick", seed=SEED, testcase="ties")
    _assert_caught(result)
    assert result.mismatches > 0 and "first at" in result.report()


@pytest.mark.cocotb
def test_flag_unknown_after_reset_is_caught():
    target = runner.Target("icarus", "fp16_mac", {}, runner.Mutant("flags_not_reset", flags_not_reset))
    result = runner.run(target, level="quick", seed=SEED, testcase="direct_drive")
    _assert_caught(result)
    assert "invalid reads x" in result.report().lower() and result.mismatches > 0


def _columns(rows):
    """One lane from rows of (rst, clear, valid, a, b)."""
    table = np.array(rows, dtype=np.int64).T
    return {name: table[i][None, :] for i, name in enumerate(("rst", "clear", "valid", "a", "b"))}


def test_model_matches_golden_cycle_model_without_resets():
    # Input t shows from cycle t + LATENCY; golden.fp16.mac_sequence gives the state after each input.
    rng = np.random.default_rng(SEED)
    shape = (6, 400)
    patterns = np.array([ONE, TWO, THREE, 0xBC00, 0x0001, 0x7BFF, INF, 0xFC00, NAN, 0x0000, 0x8000])
    columns = {"rst": np.zeros(shape, bool), "clear": rng.random(shape) < 0.1, "valid": rng.random(shape) < 0.8,
               "a": rng.choice(patterns, shape), "b": rng.choice(patterns, shape)}
    expected = expected_outputs(columns)
    trace = golden.fp16.mac_sequence(columns["a"], columns["b"], columns["valid"], columns["clear"])
    assert (expected["acc"][:, LATENCY:] == trace.acc[:, :-LATENCY]).all()
    assert (expected["invalid"][:, LATENCY:] == trace.invalid[:, :-LATENCY]).all()
    assert (expected["overflow"][:, LATENCY:] == trace.overflow[:, :-LATENCY]).all()
    assert not any(values[:, :LATENCY].any() for values in expected.values())


def test_model_hand_worked_flags_and_clear():
    # 1*1 = 1, +2*1 = 3, then Inf*0 (invalid, NaN), then clear with 3*1: 3, flags down.
    # Then 0x7BFF * 2 overflows to Inf (overflow flag), which stays up after Inf + 1.
    rows = [(0, 1, 1, ONE, ONE), (0, 0, 1, TWO, ONE), (0, 0, 1, INF, 0), (0, 1, 1, THREE, ONE),
            (0, 0, 1, 0x7BFF, TWO), (0, 0, 1, ONE, ONE), (0, 0, 0, 0, 0), (0, 0, 0, 0, 0), (0, 0, 0, 0, 0)]
    out = expected_outputs(_columns(rows))
    assert out["acc"][0].tolist() == [0, 0, 0, ONE, THREE, NAN, THREE, INF, INF]
    assert out["invalid"][0].tolist() == [0, 0, 0, 0, 0, 1, 0, 0, 0]
    assert out["overflow"][0].tolist() == [0, 0, 0, 0, 0, 0, 0, 1, 1]


def test_model_reset_drops_the_inputs_of_its_cycle_and_the_two_before():
    # Inputs 1..4 are ones; the reset in cycle 4 loses inputs 2, 3 and 4 (still in the pipeline).
    rows = [(0, 1, 1, ONE, ONE), (0, 0, 1, ONE, ONE), (0, 0, 1, ONE, ONE), (0, 0, 1, ONE, ONE),
            (1, 0, 1, ONE, ONE), (0, 0, 1, TWO, ONE), (0, 0, 0, 0, 0), (0, 0, 0, 0, 0), (0, 0, 0, 0, 0)]
    out = expected_outputs(_columns(rows))
    assert out["acc"][0].tolist() == [0, 0, 0, ONE, TWO, 0, 0, 0, TWO]


def test_model_gap_between_chunks_is_one_idle_cycle():
    rows = [(0, 1, 1, ONE, ONE), (0, 0, 1, TWO, ONE), (0, 0, 1, ONE, ONE), (0, 0, 0, 0, 0), (0, 0, 0, 0, 0),
            (0, 0, 0, 0, 0)]
    columns = _columns(rows)
    with_gap = expected_outputs(columns, gaps=[2])
    idle = {name: np.insert(values, 2, 0, axis=1) for name, values in columns.items()}
    spelled_out = expected_outputs(idle)
    for name in with_gap:
        assert (with_gap[name] == np.delete(spelled_out[name], 2, axis=1)).all()


def _rounds_apart(exact):
    """Whether values just below and just above ``exact`` (float64) round to different binary16 values:
    true exactly at a midpoint between two neighbours (a tie)."""
    below = golden.fp16.from_float64(np.nextafter(exact, 0))
    above = golden.fp16.from_float64(np.nextafter(exact, np.inf * np.sign(exact)))
    return below != above


def test_directed_classes_hit_their_corners():
    rng = np.random.default_rng(SEED)
    a, b = bench.product_ties(rng, 2000)
    assert _rounds_apart(golden.fp16.to_float64(a) * golden.fp16.to_float64(b)).all()
    products = golden.fp16.fp16_mul(a, b)
    assert ((products & 0x7C00) == 0).mean() > 0.05, "some ties must round into the subnormals"
    x, y = bench.sum_ties(rng, 2000)
    assert _rounds_apart(golden.fp16.to_float64(x) + golden.fp16.to_float64(y)).all()
    for draw, step in ((bench.product_overflow_edge, golden.fp16.mul_flags),
                       (bench.sum_overflow_edge, golden.fp16.add_flags)):
        first, second = draw(rng, 2000)
        overflow = step(first, second).overflow
        assert overflow[:2].all() and 0.2 < overflow.mean() < 0.8, draw.__name__
    x, y = bench.cancellations(rng, 2000)
    sums = golden.fp16.fp16_add(x, y)
    assert (sums == 0).mean() > 0.05 and ((sums & 0x7C00) == 0).mean() > 0.1
