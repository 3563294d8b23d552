"""The Fp16PipeMac bench can fail, and its cycle model is right.

Two broken variants of the generated Verilog must be caught with a complete report: products
rounded ties-away instead of ties-to-even, and a ``clear`` that reaches the ring one cycle early
(it restarts the neighbouring sum, a fault of the interleaving only). The bench's expected
outputs are checked against golden.fp16.interleaved_mac_sequence, on a hand-worked reset trace,
and its two-term sums against golden.fp16.fp16_add.
"""

import re

import numpy as np
import pytest

import golden.fp16
from testbench import bench_fp16_pipe_mac as bench
from testbench import runner
from testbench.bench_fp16_pipe_mac import LATENCY, SUMS, expected_outputs

SEED = 7
ONE, TWO = 0x3C00, 0x4000


def _assert_caught(result):
    assert not result.passed, f"the bench passed a broken unit:\n{result.report()}"
    report = result.report()
    for part in (f"seed {SEED}", "first at", "expected", "actual", "inputs:", f"SEED={SEED}"):
        assert part in report, f"{part!r} missing from the failure report: {report}"
    assert result.mismatches > 0


def _replace(verilog, pattern, replacement, why, count=1):
    found = re.findall(pattern, verilog)
    if len(found) < count:
        raise AssertionError(f"mutation site {pattern!r} ({why}) found {len(found)} times in the generated "
                             "Verilog; update this mutant to the current rtl/fp16_pipe_mac.py")
    return re.sub(pattern, replacement, verilog)


def product_ties_away(verilog):
    """The multiplier rounds up whenever the guard bit is set: ``round_up = guard``."""
    return _replace(verilog, r"assign product_round_up = (prod_norm\[10\]) & \\\$\d+ ;",
                    r"assign product_round_up = \1;", "the multiplier's round-up AND")


def clear_one_cycle_early(verilog):
    """The ring's first stage sees the clear of the next input cycle (``clear_4`` for ``clear_5``)."""
    last = f"clear_{bench.Fp16PipeMac.MUL_STAGES}"
    early = f"clear_{bench.Fp16PipeMac.MUL_STAGES - 1}"
    return _replace(verilog, rf"= {last} \?", f"= {early} ?", "the ring's clear muxes")


@pytest.mark.cocotb
@pytest.mark.parametrize("sim", runner.SIMULATORS)
def test_product_ties_rounded_away_are_caught(sim):
    target = runner.Target(sim, "fp16_pipe_mac", {}, runner.Mutant("product_ties_away", product_ties_away))
    _assert_caught(runner.run(target, level="quick", seed=SEED, testcase="ties"))


@pytest.mark.cocotb
def test_clear_reaching_the_wrong_sum_is_caught():
    target = runner.Target("verilator", "fp16_pipe_mac", {}, runner.Mutant("clear_early", clear_one_cycle_early))
    _assert_caught(runner.run(target, level="quick", seed=SEED, testcase="corner_sums"))


def _columns(rows, cycles):
    """One lane from rows of (rst, clear, valid, a, b), idle up to ``cycles``."""
    table = np.zeros((5, cycles), np.int64)
    table[:, :len(rows)] = np.array(rows, dtype=np.int64).T
    return {name: table[i][None, :] for i, name in enumerate(("rst", "clear", "valid", "a", "b"))}


def test_model_matches_golden_interleaved_sequence_without_resets():
    rng = np.random.default_rng(SEED)
    shape = (6, 500)
    patterns = np.array([ONE, TWO, 0x4200, 0xBC00, 0x0001, 0x7BFF, 0x7C00, 0xFC00, 0x7E00, 0x0000, 0x8000])
    columns = {"rst": np.zeros(shape, bool), "clear": rng.random(shape) < 0.1, "valid": rng.random(shape) < 0.8,
               "a": rng.choice(patterns, shape), "b": rng.choice(patterns, shape)}
    expected = expected_outputs(columns)
    trace = golden.fp16.interleaved_mac_sequence(columns["a"], columns["b"], columns["valid"], columns["clear"], SUMS)
    for name in ("acc", "invalid", "overflow"):
        assert (expected[name][:, LATENCY:] == getattr(trace, name)[:, :-LATENCY]).all(), name
        assert not expected[name][:, :LATENCY].any(), name


def test_model_hand_worked_reset():
    # Cycles 0..5 start the six sums with 1 * 1, 6..14 add 1 * 1 more; the reset in cycle 14
    # loses inputs 4..14 and zeroes every sum, so only inputs 0..3 show (cycles 11..14). Input 15
    # adds 2 * 1 to sum 15 mod 6 = 3, from +0: 2 at cycle 26.
    assert (LATENCY, SUMS) == (11, 6)
    rows = [(int(t == 14), int(t < 6), 1, ONE, ONE) for t in range(15)] + [(0, 0, 1, TWO, ONE)]
    acc = expected_outputs(_columns(rows, 28))["acc"][0]
    assert acc.tolist() == [0] * 11 + [ONE] * 4 + [0] * 11 + [TWO, 0]


def test_two_term_sums_land_in_one_sum():
    rng = np.random.default_rng(SEED)
    pipe = object.__new__(bench.Fp16PipeMacBench)
    pipe.lanes, pipe.operand_names = 3, ["a", "b"]
    x, y = rng.integers(0, 1 << 16, 40), rng.integers(0, 1 << 16, 40)
    columns = pipe.additions(x, y)
    acc = expected_outputs(columns)["acc"]
    per_lane = columns["a"].shape[1] - LATENCY
    blocks = per_lane // (2 * SUMS)
    second_terms = LATENCY + (np.arange(blocks)[:, None] * 2 * SUMS + SUMS + np.arange(SUMS)).ravel()
    shown = acc[:, second_terms].ravel()[:40]
    assert (shown == golden.fp16.fp16_add(x, y)).all()
