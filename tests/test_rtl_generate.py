"""Verilog generation: file names, manifest, unchanged files, Verilator lint and Yosys read."""

import json
import re

import pytest

from rtl import generate, tools


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """All default configurations written once (each conversion runs Yosys)."""
    out_dir = tmp_path_factory.mktemp("verilog")
    return out_dir, generate.write_all(out_dir)


def verilog_ports(text, module):
    """{name: (dir, width)} from the port declarations of ``module`` in Yosys-written Verilog."""
    body = text[text.index(f"module {module}("):]
    body = body[:body.index("endmodule")]
    ports = {}
    for direction, msb, name in re.findall(r"^\s*(input|output)\s+(?:signed\s+)?(?:\[(\d+):0\]\s+)?(\w+);", body, re.M):
        ports[name] = ("in" if direction == "input" else "out", int(msb or 0) + 1)
    return ports


def test_manifest_lists_every_configuration(generated):
    out_dir, manifest = generated
    assert json.loads((out_dir / "manifest.json").read_text()) == manifest
    assert [(entry["unit"], entry["parameters"]) for entry in manifest] == [
        (name, generate.canonical_parameters(name, params)) for name, params in generate.configurations()]
    assert {entry["unit"] for entry in manifest} >= {"int4_mac", "shift_mac", "radix4_quantizer", "grad_scale",
                                                     "fp16_mac"}
    for entry in manifest:
        assert entry["file"] == entry["module"] + ".v"
        if entry["unit"] == "training_array":   # R + C + 2 from the last beat to the first row
            assert entry["latency"] == entry["parameters"]["rows"] + entry["parameters"]["cols"] + 2
        else:
            assert entry["latency"] == generate.UNITS[entry["unit"]].LATENCY


def test_top_module_and_ports_match_the_manifest(generated):
    out_dir, manifest = generated
    for entry in manifest:
        text = (out_dir / entry["file"]).read_text()
        assert re.search(rf"^module {re.escape(entry['module'])}\(", text, re.M), entry["file"]
        expected = {port["name"]: (port["dir"], port["width"]) for port in entry["ports"]}
        assert verilog_ports(text, entry["module"]) == expected, entry["file"]


def test_documented_port_names(generated):
    _, manifest = generated
    ports = {entry["module"]: {p["name"]: p["width"] for p in entry["ports"]} for entry in manifest}
    assert ports["int4_mac__width_24__signed_a_0"] == {
        "clk": 1, "rst": 1, "a": 4, "b": 4, "valid": 1, "clear": 1, "acc": 24, "overflow": 1}
    assert ports["shift_mac__width_32__signed_b_1"] == {
        "clk": 1, "rst": 1, "code": 4, "b": 4, "phase": 1, "valid": 1, "clear": 1, "acc": 32, "overflow": 1}
    assert ports["radix4_quantizer"] == {
        "clk": 1, "rst": 1, "i__payload": 22, "i__valid": 1, "i__ready": 1,
        "o__payload": 11, "o__valid": 1, "o__ready": 1}
    assert ports["grad_scale"] == {
        "clk": 1, "rst": 1, "i__payload": 17, "i__valid": 1, "i__ready": 1,
        "o__payload": 7, "o__valid": 1, "o__ready": 1}


def test_unchanged_files_are_not_rewritten(generated):
    out_dir, manifest = generated
    name, params = generate.configurations()[0]
    path = out_dir / manifest[0]["file"]
    before = path.stat().st_mtime_ns
    assert generate.write_verilog(name, params, out_dir) == path
    assert path.stat().st_mtime_ns == before


def test_module_names_are_canonical():
    assert generate.module_name("int4_mac", {}) == "int4_mac__width_24__signed_a_0"
    assert generate.module_name("int4_mac", {"signed_a": True, "width": 12}) == "int4_mac__width_12__signed_a_1"
    assert generate.module_name("radix4_quantizer", {}) == "radix4_quantizer"
    assert generate.module_name("fp16_mac", {}) == "fp16_mac"


def test_bad_names_and_parameters():
    with pytest.raises(ValueError, match=r"name must be one of .* got 'int8_mac'"):
        generate.write_verilog("int8_mac", {}, "unused")
    with pytest.raises(ValueError, match=r"params has unknown parameter\(s\) \['depth'\]"):
        generate.module_name("shift_mac", {"depth": 3})


def test_verilator_lint_is_clean(generated):
    out_dir, manifest = generated
    waivers = out_dir / "verilator_waivers.vlt"
    for entry in manifest:
        result = tools.verilator_lint(out_dir / entry["file"], entry["module"], waivers)
        assert result.returncode == 0 and "%Warning" not in result.stderr, f"{entry['file']}:\n{result.stderr}"


def test_verilator_lint_still_catches_real_problems(tmp_path):
    """The waivers match generator idioms only: a truncating assignment and an undriven output fail."""
    path = tmp_path / "broken.v"
    path.write_text("module broken(input [7:0] a, output [3:0] y, output z);\n  assign y = a;\nendmodule\n")
    result = tools.verilator_lint(path, "broken", tools.write_verilator_waivers(tmp_path))
    assert result.returncode != 0
    assert "%Warning-WIDTHTRUNC" in result.stderr and "%Warning-UNDRIVEN" in result.stderr


def test_yosys_reads_cleanly(generated):
    out_dir, manifest = generated
    for entry in manifest:
        result = tools.yosys_read(out_dir / entry["file"], entry["module"])
        log = result.stdout + result.stderr
        assert result.returncode == 0, f"{entry['file']}:\n{log[-2000:]}"
        assert "Warning:" not in log and "Found and reported 0 problems" in log, f"{entry['file']}:\n{log[-2000:]}"
