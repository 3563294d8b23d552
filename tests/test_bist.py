# amaranth: UnusedElaboratable=no
"""rtl/bist.py in amaranth.sim: the self-test passes on the real array, and fails when it should.

Building the simulation of an array dominates the run time, so one simulation per array size
runs all scenarios in turn: reset, rewrite one ROM word (a corrupted expectation, a command the
array must refuse, a tile that waits for a beat that never comes), run, restore the word.
"""

import numpy as np
import pytest
from amaranth import Elaboratable, Module, ResetInserter, Signal

from golden import tiling
from rtl.array import CommandLayout
from rtl.array import pack_command
from testbench.array_bench import output_fields
from rtl.bist import BoardSelfTest, SelfTest, self_test_program
from testbench.sim import simulate

K = 8  # operand beats per tile: short runs


class Harness(Elaboratable):
    """A SelfTest with a reset the testbench drives."""

    def __init__(self, program):
        self.reset = Signal()
        self.dut = SelfTest(program)

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = ResetInserter(self.reset)(self.dut)
        return m


def _field_bit(program, field):
    """Lowest bit of ``field`` in an expected output word."""
    return SelfTest(program).array.o.payload.shape()[field].offset


def _longer_last_tile(program):
    last = CommandLayout.from_bits(program.commands[-1])
    return pack_command(int(last.mode), int(last.k) + 1, int(last.s))


#: Scenario -> (ROM, word index, new word from the program, cycles to run as a function of the program).
SCENARIOS = {
    "good": (None, None, None, lambda p: 2 * p.cycles + 8),
    "first-acc": ("expected", 0, lambda p: p.expected[0] ^ 1, lambda p: p.cycles + 4),
    "last-acc": ("expected", -1, lambda p: p.expected[-1] ^ 1, lambda p: p.cycles + 4),
    "row-field": ("expected", 1, lambda p: p.expected[1] ^ (1 << _field_bit(p, "row")), lambda p: p.cycles + 4),
    "overflow-flag": ("expected", 2, lambda p: p.expected[2] ^ (1 << _field_bit(p, "overflow")),
                      lambda p: p.cycles + 4),
    "bad-command": ("commands", 0, lambda p: pack_command(3, K, 0), lambda p: 8),
    "beat-never-comes": ("commands", -1, _longer_last_tile, lambda p: 2 * p.cycles + 72),
}


def run_scenarios(program):
    """Scenario name -> per-cycle array of (done, passed, failed, runs) after a reset."""
    harness = Harness(program)
    dut, traces = harness.dut, {}

    async def testbench(ctx):
        for name, (rom, index, word, cycles) in SCENARIOS.items():
            ctx.set(harness.reset, 1)
            if rom is not None:
                row = dut.roms[rom].data[index % dut.roms[rom].depth]
                original = ctx.get(row)
                ctx.set(row, word(program))
            await ctx.tick()
            ctx.set(harness.reset, 0)
            trace = []
            for _ in range(cycles(program)):
                await ctx.tick()
                trace.append((ctx.get(dut.done), ctx.get(dut.passed), ctx.get(dut.failed), ctx.get(dut.runs)))
            traces[name] = np.array(trace)
            if rom is not None:
                ctx.set(row, original)

    simulate(harness, testbench)
    return traces


@pytest.fixture(scope="module")
def program():
    return self_test_program(3, 2, k=K, seed=3)


@pytest.fixture(scope="module")
def traces(program):
    return run_scenarios(program)


def _assert_passes_run_after_run(program, trace):
    done, passed, failed, runs = trace.T
    first_done = int(np.argmax(done))
    assert done.any() and first_done == program.cycles, "the first run ends when the array timing predicts"
    assert not failed.any(), f"failed in cycle {int(np.argmax(failed))}"
    assert (passed[first_done:] == 1).all() and not passed[:first_done].any()
    assert runs[-1] == 2, "the self-test repeats"


def test_passes_on_the_real_array_run_after_run(program, traces):
    _assert_passes_run_after_run(program, traces["good"])


@pytest.mark.parametrize("scenario", ["first-acc", "last-acc", "row-field", "overflow-flag"])
def test_fails_when_a_stored_expectation_is_corrupted(traces, scenario):
    done, passed, failed, _ = traces[scenario][-1]
    assert done and failed and not passed
    assert not traces[scenario][:, 1].any(), "passed must never light when a beat differs"


def test_fails_when_the_array_refuses_a_command(traces):
    assert traces["bad-command"][-1][2] and not traces["bad-command"][:, 1].any()


def test_fails_on_timeout_when_a_beat_never_comes(program, traces):
    done, passed, failed, runs = traces["beat-never-comes"].T
    assert not failed[:2 * program.cycles + 60].any(), "no mismatch before the timeout"
    assert failed[-1] and done[-1] and not passed.any() and runs[-1] == 1


@pytest.mark.slow
@pytest.mark.parametrize("rows, cols", [(2, 2), (2, 4)])
def test_passes_on_other_array_sizes(rows, cols):
    program = self_test_program(rows, cols, k=K, seed=rows * cols)
    dut = SelfTest(program)
    trace = []

    async def testbench(ctx):
        for _ in range(2 * program.cycles + 8):
            await ctx.tick()
            trace.append((ctx.get(dut.done), ctx.get(dut.passed), ctx.get(dut.failed), ctx.get(dut.runs)))

    simulate(dut, testbench)
    _assert_passes_run_after_run(program, np.array(trace))


def test_program_holds_golden_tiles_of_all_three_modes():
    program = self_test_program(2, 2, k=K, seed=3)
    assert len(program.commands) == 12 and len(program.beats) == 12 * K and len(program.expected) == 12 * 2
    layout = SelfTest(program).array.o.payload.shape()
    decoded = [layout.from_bits(word) for word in program.expected]
    assert {int(beat.mode) for beat in decoded} == {int(mode) for mode in tiling.Mode}
    # Rebuild the FWD tiles from the documented recipe and compare the stored expectations.
    rng = np.random.default_rng([3, int(tiling.Mode.FWD)])
    a = rng.integers(0, 16, (3, K))
    w = rng.integers(-8, 8, (K, 3))
    s = int(rng.integers(-32, 32))
    golden = tiling.output_beats(tiling.tiles(tiling.Mode.FWD, a, w, 2, 2, s=s))
    assert [output_fields(beat) for beat in decoded[:8]] == [output_fields(beat) for beat in golden]
    first_beat = program.beats[0]
    assert [(first_beat >> (4 * lane)) & 15 for lane in range(2)] == list(a[:2, 0])


@pytest.mark.parametrize("kwargs, error, message", [
    ({"rows": 1}, ValueError, "rows must lie in 2..32, got 1"),
    ({"cols": 2.0}, TypeError, "cols must be an int, got 2.0"),
    ({"k": 0}, ValueError, "k must lie in 1..65535, got 0"),
    ({"seed": -1}, ValueError, "seed must lie in 0..9223372036854775807, got -1"),
    ({"fwd_width": 7}, ValueError, "fwd_width must lie in 8..64, got 7"),
])
def test_program_parameters_are_checked(kwargs, error, message):
    with pytest.raises(error, match=message):
        self_test_program(**kwargs)


def test_self_test_and_board_top_arguments_are_checked(program):
    with pytest.raises(TypeError, match="program must be a SelfTestProgram, got 'x'"):
        SelfTest("x")
    with pytest.raises(ValueError, match="leds must map exactly 'passed', 'failed' and 'running'"):
        BoardSelfTest(program, {"passed": 0, "failed": 1})


def test_running_led_blinks_about_once_per_second(program):
    top = BoardSelfTest(program, {"passed": 0, "failed": 1, "running": 2})
    for clock_hz in (12e6, 25e6):
        bit = top.blink_bit(clock_hz)
        toggle_seconds = (1 << bit) * program.cycles / clock_hz
        assert 0.25 <= toggle_seconds <= 1.0, (clock_hz, bit, toggle_seconds)
