# amaranth: UnusedElaboratable=no
"""synth/boards.py: argument errors and elaboration on the board platforms (fast); the iCEBreaker
bitstream itself (slow: Yosys and nextpnr through YoWASP, about a minute)."""

import json

import pytest

from rtl import tools
from synth import boards


@pytest.mark.parametrize("argv, message", [
    (["--board", "nexys"], "invalid choice: 'nexys'"),
    ([], "the following arguments are required: --board"),
    (["--board", "ulx3s", "--size", "1x4"], "rows must lie in 2..32, got 1"),
    (["--board", "ulx3s", "--size", "4by4"], "size must look like RxC (e.g. 4x4), got '4by4'"),
    (["--board", "icebreaker", "--k", "0"], "k must lie in 1..4096, got 0"),
    (["--board", "icebreaker", "--seed", "-2"], "seed must be >= 0, got -2"),
])
def test_command_line_errors_exit_with_a_message(argv, message, usage_error):
    assert message in usage_error(boards.main, argv)


def test_parse_size():
    assert boards.parse_size("8x4") == (8, 4)
    with pytest.raises(ValueError, match="cols must lie in 2..32, got 33"):
        boards.parse_size("2x33")


def test_unknown_board_is_a_value_error():
    with pytest.raises(ValueError, match=r"board must be one of \['icebreaker', 'ulx3s'\], got 'de0'"):
        boards.build("de0")


ICEBREAKER_PINS = [  # passed: green LED, failed: red LED, running: LED 2 on the snap-off PMOD (pmod 2 pin 7)
    "set_io led_1__io 37", "set_io led_0__io 11", "set_io led_2__io 26", "set_io button_0__io 10"]
ULX3S_PINS = ['LOCATE COMP "led_0__io" SITE "B2";', 'LOCATE COMP "led_1__io" SITE "C2";',
              'LOCATE COMP "led_7__io" SITE "H3";', 'LOCATE COMP "button_0__io" SITE "R1";']


@pytest.mark.parametrize("board, pins", [("icebreaker", ICEBREAKER_PINS), ("ulx3s", ULX3S_PINS)])
def test_self_test_top_elaborates_with_the_board_leds(board, pins):
    spec, platform, program, plan = boards.prepare(board, size=(2, 2), k=2, log=lambda text: None)
    constraints = "".join(text for name, text in plan.files.items() if name.endswith((".pcf", ".lpf")))
    for pin in pins:
        assert pin in constraints.splitlines(), f"{pin!r} missing from the {board} constraints"
    assert program.rows == 2 and set(spec.leds) == {"passed", "failed", "running"}
    commands = json.loads(plan.files[f"build_{boards.BUILD_NAME}.json"])["commands"]
    assert [command[0] for command in commands] == (
        ["yosys", "nextpnr-ice40", "icepack"] if board == "icebreaker" else ["yosys", "nextpnr-ecp5", "ecppack"])
    assert all(f"yowasp-{command[0]}" in tools.YOWASP for command in commands)


@pytest.mark.slow
def test_icebreaker_bitstream_builds_and_is_cached(tmp_path):
    lines = []
    summary = boards.build("icebreaker", tmp_path, log=lines.append)
    bitstream = tmp_path / "icebreaker" / "fourbit_bist.bin"
    assert bitstream.stat().st_size == summary["bitstream_bytes"] > 0
    on_disk = json.loads((tmp_path / "icebreaker" / "summary.json").read_text())
    assert on_disk == summary
    assert summary["timing_met"] and summary["fmax_mhz"] >= summary["clock_mhz"] == 12.0
    assert 0 < summary["utilization"]["ICESTORM_LC"]["used"] <= summary["utilization"]["ICESTORM_LC"]["available"]
    assert any("yosys" in line for line in lines) and any("nextpnr-ice40" in line for line in lines)
    again = []
    assert boards.build("icebreaker", tmp_path, log=again.append) == summary
    assert any("up to date" in line for line in again)
