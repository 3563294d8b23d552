"""Simulator-free checks of the bench machinery: the MAC cycle model on hand-worked traces, the
batch file layouts, and argument validation of the runner."""

import struct

import numpy as np
import pytest

import golden.units
from testbench import batch, runner, units
from testbench.mac_model import expected_outputs

FIELDS = ("rst", "clear", "valid", "a", "b")


def _columns(rows):
    """One lane from rows of (rst, clear, valid, a, b)."""
    table = np.array(rows, dtype=np.int64).T
    return {name: table[i][None, :] for i, name in enumerate(FIELDS)}


def _int4_step(width, signed_a=False):
    return lambda acc, ops: golden.units.int4_mac(acc, ops["a"], ops["b"], signed_a, width)


def test_latency_clear_and_saturation_hand_worked():
    # Input t shows from cycle t + 2. W = 8: 105 + 105 clamps at 127 (flag up), -120 gives 7 (flag stays).
    rows = [(0, 1, 1, 3, 2), (0, 0, 1, 1, -1), (0, 0, 0, 7, 7), (0, 1, 0, 0, 0), (0, 0, 1, 15, 7),
            (0, 0, 1, 15, 7), (0, 0, 1, 15, -8), (0, 0, 0, 0, 0), (0, 0, 0, 0, 0)]
    acc, overflow = expected_outputs(_columns(rows), _int4_step(8))
    assert acc[0].tolist() == [0, 0, 6, 5, 5, 0, 105, 127, 7]
    assert overflow[0].tolist() == [False] * 7 + [True, True]


def test_clear_with_valid_starts_sum_with_that_product_and_drops_flag():
    rows = [(0, 1, 1, 15, 7), (0, 0, 1, 15, 7), (0, 1, 1, 2, 3), (0, 0, 0, 0, 0), (0, 0, 0, 0, 0)]
    acc, overflow = expected_outputs(_columns(rows), _int4_step(8))
    assert acc[0].tolist() == [0, 0, 105, 127, 6]
    assert overflow[0].tolist() == [False, False, False, True, False]


def test_reset_drops_the_inputs_of_its_cycle_and_the_one_before():
    rows = [(0, 1, 1, 2, 3), (0, 0, 1, 1, 1), (0, 0, 1, 1, 2), (1, 0, 1, 1, 3), (0, 0, 1, 2, 2),
            (0, 0, 0, 0, 0), (0, 0, 0, 0, 0), (0, 0, 0, 0, 0)]
    acc, overflow = expected_outputs(_columns(rows), _int4_step(24))
    assert acc[0].tolist() == [0, 0, 6, 7, 0, 0, 4, 4]
    assert not overflow.any()


def test_gap_between_chunks_lets_the_last_input_through():
    rows = [(0, 1, 1, 2, 3), (0, 0, 1, 1, 1), (0, 0, 0, 0, 0), (0, 0, 0, 0, 0)]
    without, _ = expected_outputs(_columns(rows), _int4_step(24))
    with_gap, _ = expected_outputs(_columns(rows), _int4_step(24), gaps=[2])
    assert without[0].tolist() == [0, 0, 6, 7]
    assert with_gap[0].tolist() == [0, 0, 7, 7]


def test_lanes_are_independent_and_match_one_lane_runs():
    rng = np.random.default_rng(3)
    shape = (5, 300)
    columns = {"rst": rng.random(shape) < 0.02, "clear": rng.random(shape) < 0.1, "valid": rng.random(shape) < 0.8,
               "a": rng.integers(0, 16, shape), "b": rng.integers(-8, 8, shape)}
    acc, overflow = expected_outputs(columns, _int4_step(8))
    for lane in range(shape[0]):
        one = {name: values[lane:lane + 1] for name, values in columns.items()}
        lane_acc, lane_overflow = expected_outputs(one, _int4_step(8))
        assert (lane_acc[0] == acc[lane]).all() and (lane_overflow[0] == overflow[lane]).all()


def test_stim_layout_packs_lanes_big_endian_lane0_last():
    layout = batch.StimLayout([("rst", 1), ("a", 4), ("b", 4)])
    data = layout.encode({"rst": [[1], [0]], "a": [[3], [15]], "b": [[-1], [2]]})
    # lane 0: 1 | 3 << 1 | 15 << 5 = 0x1e7; lane 1: 15 << 1 | 2 << 5 = 0x05e; 9 bits -> 2 bytes each
    assert data == bytes([0x00, 0x5E, 0x01, 0xE7])


def test_resp_layout_decodes_words_per_field():
    layout = batch.RespLayout([("acc", 24), ("overflow", 1)])
    data = struct.pack("<8I", 0xFFFFFF, 1, 5, 0, 0x800000, 0, 0x7FFFFF, 1)  # 2 cycles x 2 lanes
    out = layout.decode(data, lanes=2)
    assert batch.as_signed(out["acc"], 24).tolist() == [[-1, -(1 << 23)], [5, (1 << 23) - 1]]
    assert out["overflow"].tolist() == [[1, 0], [0, 1]]


def test_resp_layout_joins_64_bit_fields():
    layout = batch.RespLayout([("acc", 64), ("overflow", 1)])
    out = layout.decode(struct.pack("<3I", 0x00000001, 0x80000000, 1), lanes=1)
    assert batch.as_signed(out["acc"], 64).tolist() == [[-(1 << 63) + 1]]


def test_layout_errors_name_the_problem():
    with pytest.raises(ValueError, match="64 bits, got 65"):
        batch.StimLayout([("a", 60), ("b", 5)])
    with pytest.raises(ValueError, match="'acc' width must lie in 1..64, got 65"):
        batch.RespLayout([("acc", 65)])
    with pytest.raises(ValueError, match="not a whole number"):
        batch.RespLayout([("acc", 8)]).decode(b"\0" * 6, lanes=1)
    with pytest.raises(ValueError, match="depth must be a power of two >= 2, got 1000"):
        batch.wrapper_verilog("top", "dut", [{"name": "a", "dir": "in", "width": 1}], 4, 1000)


def test_runner_arguments_are_checked():
    assert runner.resolve_seed(None) == runner.DEFAULT_SEED
    assert runner.resolve_seed("12") == 12
    assert isinstance(runner.resolve_seed("random"), int)
    with pytest.raises(ValueError, match="SEED must be a non-negative integer or 'random', got 'x1'"):
        runner.resolve_seed("x1")
    with pytest.raises(ValueError, match="SIM must be one of .* got 'modelsim'"):
        runner.selection("modelsim", None)
    with pytest.raises(ValueError, match="UNIT must be one of .* got 'fpu'"):
        runner.selection(None, "fpu")
    with pytest.raises(ValueError, match="sim must be one of .* got 'xsim'"):
        runner.Target("xsim", "int4_mac", {})
    with pytest.raises(ValueError, match="level must be one of .* got 'medium'"):
        units.configurations("int4_mac", "medium")


def test_runs_of_one_build_at_other_levels_or_seeds_get_their_own_folders():
    target = runner.Target("icarus", "int4_mac", {"width": 8})
    mutant = runner.Target("icarus", "int4_mac", {"width": 8}, runner.Mutant("flip", bench_params={"signed_a": True}))
    folders = [target.test_dir("quick", 1), target.test_dir("full", 1), target.test_dir("quick", 2),
               mutant.test_dir("quick", 1)]
    assert len(set(folders)) == 4 and all(folder.parent == target.build_dir for folder in folders)


def test_every_bench_unit_is_an_rtl_unit_with_valid_configurations():
    import rtl.generate
    for name, bench in units.BENCHES.items():
        assert name in rtl.generate.UNITS
        for params in bench.quick + bench.long:
            rtl.generate.canonical_parameters(name, params)
