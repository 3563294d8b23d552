"""synth.project_report: every section from hand-made stage results, and the missing-stage notes."""

import json
import struct
import zlib

import pytest

from synth import project_report
from synth import report as synth_report

#: The tests' builds stand alone: the repository's docs/chip_table.json does not fill them.
pytestmark = pytest.mark.usefixtures("no_committed_chip_record")


def _png(path):
    """A valid 1x1 PNG."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"\x00\x00")) + chunk(b"IEND", b""))


def _write(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def _build(tmp_path):
    build = tmp_path / "build"
    _write(build / "stages" / "sim.json", {"stage": "sim", "seconds": 12.5})
    _write(build / "verilog" / "manifest.json", [{"unit": "int4_mac", "module": "int4_mac__width_24__signed_a_0",
                                                  "file": "int4_mac__width_24__signed_a_0.v",
                                                  "parameters": {"width": 24, "signed_a": False}, "latency": 2}])
    (build / "verilog" / "int4_mac__width_24__signed_a_0.v").write_text("x" * 2048)
    run = {"module": "int4_mac__width_24__signed_a_0", "simulator": "verilator", "vectors": 1234567,
           "mismatches": 0, "wall_seconds": 1.5, "vectors_per_second": 823044.7, "seed": 7, "passed": True}
    _write(build / "sim" / "summary.json", {"levels": {"quick": {"runs": {"verilator/int4_mac": run}}}})
    (build / "synth").mkdir(parents=True)
    _png(build / "synth" / "arrays_fmax.png")
    baseline = {"label": "fp16_mac", "lut_equiv": 1000, "ff": 300, "fmax_mhz": 40.0, "mac_per_s_per_klut": 40e6}
    entry = {"label": "int4_mac (width=24, signed_a=0)", "lut_equiv": 100, "fmax_mhz": 200.0,
             "mac_per_s_per_klut": 2e9, "ratio": 50.0}
    array = {"unit": "training_array", "label": "training_array 2x2", "target": "ecp5-85f", "mapping": "lut",
             "lut_equiv": 900, "ff": 400, "dsp": 0, "fmax_mhz": 150.0, "fits": True, "mac_per_s": 6e8}
    _write(build / "synth" / "report.json", {
        "tools": {"yosys": "Yosys 0.70"}, "rows": [array], "plots": [str(build / "synth" / "arrays_fmax.png")],
        "failures": [], "headline": {"target": "ecp5-85f", "mapping": "lut", "baseline": baseline, "entries": [entry],
                                     "fp16": [baseline, synth_report.EXTERNAL_ANCHOR]}})
    return build


def test_sections_carry_the_stage_results(tmp_path):
    build = _build(tmp_path)
    (md, page), lines = project_report.write(build)
    text = md.read_text()
    assert "| int4_mac__width_24__signed_a_0 | width=24, signed_a=0 | 2 | 2.0 |" in text
    assert "| int4_mac__width_24__signed_a_0 | verilator | 1,234,567 | 0 | 1.5 | 823,045 | 7 | pass |" in text
    assert "| int4_mac (width=24, signed_a=0) | 100 | 200.0 | 2.00 GMAC/s | 50.0x |" in text
    assert ("Headline (ecp5-85f, lut mapping): int4_mac (width=24, signed_a=0) delivers 50.0x the MAC/s per LUT "
            "of the best FP16 MAC: above IBM's 7x.") in text
    assert "985 LUT4 + 85 CCU2C = 1,155 LUT-equiv" in text and synth_report.NOT_IBM in text
    assert ("synthesis: int4_mac (width=24, signed_a=0): 100 LUT-equiv at 200 MHz, 50.0x the MAC/s per LUT of the "
            "best FP16 MAC (fp16_mac), above IBM's 7x") in lines
    assert synth_report.NOT_IBM in lines
    assert "| training_array 2x2 | ecp5-85f / lut | 900 | 400 | 0 | 150.0 | 600.00 MMAC/s |" in text
    assert "![arrays fmax](synth/arrays_fmax.png)" in text
    assert "| sim | 12.5 |" in text
    assert lines[0] == "simulation: 1,234,567 vectors on verilator, 0 mismatches (quick regression)"
    html = page.read_text()
    assert html.count('<img src="data:image/png;base64,') == 1
    assert "<code>quick</code> regression" in html


def test_missing_stages_say_which_command_produces_them(tmp_path):
    (md, page), lines = project_report.write(tmp_path / "build")
    text = md.read_text()
    for command in ("make verilog", "make sim", "make synth", "make train (or make train-quick)", "make"):
        assert f"Not run yet: `{command}`." in text
    assert lines == []
    assert "no stage has run yet" in page.read_text()


def test_a_failed_run_and_differing_weights_are_reported(tmp_path):
    build = _build(tmp_path)
    summary = json.loads((build / "sim" / "summary.json").read_text())
    run = summary["levels"]["quick"]["runs"]["verilator/int4_mac"]
    run.update(mismatches=3, passed=False)
    _write(build / "sim" / "summary.json", summary)
    network = [{"kind": "FP32", "shape": [64, 32]}, {"kind": "4-bit", "shape": [32, 32]},
               {"kind": "FP32", "shape": [32, 10]}]
    run = {"steps": 3, "weights_identical": False, "network": network, "dataset": "digits", "batch": 16,
           "array": {"rows": 4, "cols": 4}, "array_cycles_per_step": 5000, "macs_per_step": 49152,
           "macs_per_array_cycle": 9.83, "test_loss_before": 2.5, "test_loss_after": 2.25,
           "simulated_cycles_per_second": 6000.0, "wall_seconds": 10.0}
    _write(build / "sim" / "train_steps.json", {"levels": {"quick": {"verilator": run}}})
    (md, _), lines = project_report.write(build)
    text = md.read_text()
    assert "3 mismatches, 1 failing run(s)" in text
    assert "| 3 | 1.5 | 823,045 | 7 | FAIL |" in text
    assert "an MLP 64 -> 32 -> 32 -> 10 on digits with 1 hidden layers in 4 bits, batch 16" in text
    assert "| verilator | 3 | DIFFER | 5,000 | 49,152 | 9.8 | 2.500 -> 2.250 | 6,000 | 10.0 |" in text
    assert ("training on the simulated array (verilator): 3 steps, weights DIFFER from golden, "
            "5,000 array cycles per step") in lines


def test_mx_training_steps_are_reported(tmp_path):
    build = _build(tmp_path)
    network = [{"kind": "FP32", "shape": [64, 32]}, {"kind": "mxfp4", "shape": [32, 32]}]
    run = {"scheme": "mxfp4", "steps": 2, "weights_identical": True, "network": network, "dataset": "digits",
           "batch": 32, "array": {"rows": 3, "cols": 2, "fmt": "mxfp4"}, "gemms_per_step": 6,
           "array_cycles_per_step": 33948, "macs_per_step": 196608, "utilization": 0.9652,
           "test_loss_before": 2.31, "test_loss_after": 2.25, "wall_seconds": 20.0}
    _write(build / "sim" / "mx_train_steps.json", {"levels": {"quick": {"verilator": dict(run)}}})
    (md, _), lines = project_report.write(build)
    assert "| verilator | 2 | bit-identical | 33,948 | 196,608 | 96.5 | 2.310 -> 2.250 | 20.0 |" in md.read_text()
    assert "mxfp4 training on the simulated mxfp4 array (verilator): 2 steps, weights bit-identical to golden" in lines
    run["weights_identical"] = False
    _write(build / "sim" / "mx_train_steps.json", {"levels": {"quick": {"verilator": run}}})
    (md, _), lines = project_report.write(build)
    assert "| verilator | 2 | DIFFER |" in md.read_text()


def test_stages_outside_the_default_flow_show_their_date(tmp_path):
    build = _build(tmp_path)
    _write(build / "stages" / "synth-large.json", {"stage": "synth-large", "seconds": 450.0, "cpu_seconds": 440.5})
    text = project_report.write(build)[0][0].read_text()
    date = project_report._mtime_utc(build / "stages" / "synth-large.json")
    assert f"| synth-large | 450.0 | 440.5 | {date} |" in text
    assert "| sim | 12.5 | - |" in text          # written before CPU time was recorded
    lines = project_report.write(build)[1]
    assert f"outside the default flow, last results: make synth-large {date}" in lines
    assert "Not run yet: `make sweep`." in text


def test_sweep_section_lists_the_pareto_configurations_and_the_benchmark(tmp_path):
    build = _build(tmp_path)

    def row(design, luts, fmax, pes):
        return {"design": design, "label": design, "unit": "u", "pes": pes, "target": "ecp5-85f", "mapping": "lut",
                "seed": 1, "lut_equiv": luts, "fmax_mhz": fmax, "fits": True, "gmac_per_s": pes * fmax / 1e3}
    _png(build / "synth" / "sweep_pareto.png")
    _write(build / "synth" / "sweep.json", {
        "generated_utc": "2026-12-04 16:00 UTC", "plots": [str(build / "synth" / "sweep_pareto.png")],
        "rows": [row("small", 100, 200.0, 1), row("dominated", 500, 100.0, 1), row("big", 1000, 150.0, 16)],
        "last_sweep": {"configurations": 3, "workers": 2, "wall_seconds": 60.0},
        "benchmark": {"date": "2026-12-04 17:00 UTC", "configurations": 24, "seconds": {"1": 300.0, "2": 170.0},
                      "ratio": 1.765, "goal": 1.7, "load_average": [1, 1, 1, 2, 2, 2]}})
    text = project_report.write(build)[0][0].read_text()
    assert "3 runs (3 configurations) in build/synth/sweep.json" in text
    assert "24 synthesis configurations took 300 s on 1 worker and 170 s on 2, 1.76x (goal 1.7x" in text
    assert "| small | ecp5-85f / lut | 100 | 200.0 | 0.20 |" in text
    assert "| big | ecp5-85f / lut | 1,000 | 150.0 | 2.40 |" in text
    assert "| dominated |" not in text
    assert "![sweep pareto](synth/sweep_pareto.png)" in text


def test_environment_compares_installed_versions_with_the_pins(tmp_path):
    import importlib.metadata
    numpy = importlib.metadata.version("numpy")
    (tmp_path / "constraints.txt").write_text(f"# pins\nnumpy=={numpy}\namaranth==0.0.1\n")
    section = project_report.environment_section(tmp_path)
    text = " ".join(section.paragraphs)
    assert "pins 2 Python packages" in text
    assert f"1 differ from their pins: amaranth {importlib.metadata.version('amaranth')} (pinned 0.0.1)" in text
    assert ["numpy", numpy] in section.tables[0].rows
    assert project_report.environment_section(tmp_path / "nowhere").missing == "make constraints"
