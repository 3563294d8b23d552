"""synth.formats: the per-format table from hand-made synthesis, chip and training results.

Expected figures are worked by hand from the inputs below: a PE is its design divided by its PE
count, Fmax the median of its seeds, MAC/s per 1k LUT = Fmax / (LUT-equiv per PE / 1000).
"""

import json
import statistics

import pytest

from synth import formats, project_report

#: The tests' builds stand alone: the repository's docs/chip_table.json does not fill them.
pytestmark = pytest.mark.usefixtures("no_committed_chip_record")


def _write(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def _row(unit, label, lut, ff, fmax_by_seed, params=None, array_size=None, headline=True, run=("ecp5-85f", "lut")):
    return {"unit": unit, "label": label, "params": params or {}, "array_size": array_size, "target": run[0],
            "mapping": run[1], "lut_equiv": lut, "ff": ff, "dsp": 0, "fmax_by_seed": fmax_by_seed,
            "fits": True, "headline": headline, "date": "2026-12-04 12:00 UTC",
            "fmax_mhz": statistics.median(fmax_by_seed.values()), "mac_per_s": None}


def _synth_rows():
    return [
        # 4x4 array: 3200 / 16 = 200 LUT-equiv, 2112 / 16 = 132 FF per PE; median(100, 110, 90) = 100 MHz
        # -> 100e6 / 0.200 = 500 M MAC/s per 1k LUT
        _row("training_array", "training_array 4x4", 3200, 2112, {"1": 100.0, "2": 110.0, "3": 90.0},
             {"rows": 4, "cols": 4}, [4, 4]),
        _row("training_array", "training_array 2x2", 1000, 500, {"1": 150.0}, {"rows": 2, "cols": 2}, [2, 2], False),
        # MXFP4 row of 8: 1760 / 8 = 220, 1440 / 8 = 180; median(120, 116, 118) = 118 -> 118e6 / 0.22 = 536.36 M
        _row("mx_row", "mx_row (fmt=mxfp4, columns=8, shared=1)", 1760, 1440, {"1": 120.0, "2": 116.0, "3": 118.0},
             {"fmt": "mxfp4", "columns": 8, "shared": True}),
        # NVFP4 row of 8, one seed: 2240 / 8 = 280, 1448 / 8 = 181; 112e6 / 0.28 = 400 M
        _row("mx_row", "mx_row (fmt=nvfp4, columns=8, shared=1)", 2240, 1448, {"1": 112.0},
             {"fmt": "nvfp4", "columns": 8, "shared": True}),
        _row("fp32_scaled_add", "fp32_scaled_add 14/10", 900, 600, {"1": 130.0}, {"sig_width": 14, "exp_width": 10}),
        _row("fp32_scaled_add", "fp32_scaled_add 21/6", 964, 610, {"1": 120.0}, {"sig_width": 21, "exp_width": 6}),
        _row("mx_block_term", "mx_block_term (fmt=mxfp4)", 15, 40, {"1": 250.0}, {"fmt": "mxfp4"}),
        _row("mx_block_term", "mx_block_term (fmt=nvfp4)", 575, 140, {"1": 118.0}, {"fmt": "nvfp4"}),
        # FP16: 33e6 / 1.0 = 33 M against 120e6 / 0.96 = 125 M: the pipelined one is the baseline
        _row("fp16_mac", "fp16_mac", 1000, 300, {"1": 33.0, "2": 33.0, "3": 33.0}),
        _row("fp16_pipe_mac", "fp16_pipe_mac", 960, 360, {"1": 120.0, "2": 121.0, "3": 119.0}),
        # another target: a much cheaper FP16 PE that must not be chosen
        _row("fp16_pipe_mac", "fp16_pipe_mac", 100, 36, {"1": 120.0}, run=("ecp5-85f", "dsp")),
    ]


def _training_rows(pairs, epochs=20):
    return {"mode": "full", "seeds": [0], "rows": [
        {"dataset": d, "model": m, "scheme": s, "gap_to_fp32": g, "epochs": epochs, "acc_mean": 90.0, "acc_std": 0.0,
         "metric": "val_bpc" if d == "pydoc" else "test_acc"} for d, m, s, g in pairs]}


FULL_TABLE = _training_rows([
    ("digits", "mlp", "fp32", 0.0), ("digits", "mlp", "fourbit", 0.15), ("digits", "mlp", "mxfp4", 0.0),
    ("digits", "mlp", "nvfp4", -0.15), ("pydoc", "transformer", "fourbit", 7.9),
    ("pydoc", "transformer", "mxfp4", 0.6), ("pydoc", "transformer", "nvfp4", 1.4)])
def _chip(fmt, kind, size, gmacs, device="LFE5U-85F", mapping="lut"):
    return {"fmt": fmt, "kind": kind, "size": size, "gmac_per_s": gmacs, "device": device, "mapping": mapping}


CHIP = {"rows": [
    _chip("fourbit", "fourbit", [12, 12], 4.0), _chip("fourbit", "fourbit", [20, 24], 9.5),
    _chip("fourbit", "fourbit", [20, 20], 12.0, mapping="dsp"), _chip("fourbit", "fourbit", [8, 8], 30.0, "LFE5U-25F"),
    _chip("fourbit", "fourbit", [32, 32], None), _chip("fp16", "fp16", [6, 6], 1.2)],
    "estimates": [{"device": "LFE5U-85F", "mapping": "dsp", "gmac_per_s": 5.0},
                  {"device": "LFE5U-85F", "mapping": "lut", "gmac_per_s": 2.25}]}


@pytest.fixture
def build(tmp_path):
    build = tmp_path / "build"
    _write(build / "synth" / "report.json", {"rows": _synth_rows()})
    _write(build / "train" / "results.json", FULL_TABLE)
    _write(build / "chip" / "chip.json", CHIP)
    return build


def _lines(build):
    return formats.markdown(formats.collect(build, record=build.parent / "training_table.json")).splitlines()


def test_every_format_from_its_measured_design(build):
    lines = _lines(build)
    assert ("| fourbit radix-4 | training_array 4x4 ÷ 16 | 200 | 132 | 0 | 100.0 | 500.00 M | 9.50 (fourbit 20x24) | "
            "+0.15 points | +7.90 % |") in lines
    assert ("| MXFP4 | mx_row of 8 ÷ 8, shared float32 unit (no array) | 220 | 180 | 0 | 118.0 | 536.36 M | "
            "not measured: run make chip | +0.00 points | +0.60 % |") in lines
    assert ("| NVFP4 | mx_row of 8 ÷ 8, shared float32 unit (no array) | 280 | 181 | 0 | 112.0 (1 seed) | 400.00 M | "
            "not measured: run make chip | −0.15 points | +1.40 % |") in lines
    assert ("| FP16 | fp16_pipe_mac | 960 | 360 | 0 | 120.0 | 125.00 M | 1.20 (fp16 6x6); pipelined PE estimated "
            "2.25 | reference (no FP16 training run) | reference (no FP16 training run) |") in lines


def test_goal_and_scale_multiply_sentences(build):
    text = "\n".join(_lines(build))
    # 220 / 200 = 1.10x at 118.0 >= 100.0 MHz
    assert "MXFP4 PE: 1.10× the LUT-equiv of fourbit's PE at 118.0 against 100.0 MHz: the goal" in text
    assert "is met." in text
    assert "Synthesis rows of 2026-12-04 12:00 UTC." in text
    # block terms 575 - 15 = 560 LUT-equiv, 140 - 40 = 100 FF; no MX array, so no share per PE
    assert ("NVFP4's FP8 scale multiply (mx_block_term, measured alone with its registers, 1 seed): 575 LUT-equiv "
            "against 15 for MXFP4's exponent add, so 560 LUT-equiv and 100 FF more per float32 unit; alone it "
            "places at 118.0 MHz (the exponent add at 250.0 MHz).") in text


def test_an_mx_array_is_preferred_to_the_row(build):
    rows = _synth_rows() + [
        # 2x2 MXFP4 array: 1000 / 4 = 250 LUT-equiv, 800 / 4 = 200 FF; median(90, 95, 100) = 95 -> 95e6 / 0.25 = 380 M
        _row("mx_array", "mx_array 2x2", 1000, 800, {"1": 90.0, "2": 95.0, "3": 100.0},
             {"rows": 2, "cols": 2, "fmt": "mxfp4"}, [2, 2])]
    _write(build / "synth" / "report.json", {"rows": rows})
    lines = _lines(build)
    assert any(line.startswith("| MXFP4 | mx_array 2x2 ÷ 4 | 250 | 200 | 0 | 95.0 | 380.00 M |") for line in lines)
    assert any(line.startswith("| NVFP4 | mx_row of 8 ÷ 8") for line in lines)
    assert not any(line.startswith("In the MX arrays") for line in lines)   # one array only: no difference
    # 250 / 200 = 1.25x but 95.0 < 100.0 MHz
    assert any("1.25× the LUT-equiv of fourbit's PE at 95.0 against 100.0 MHz" in line and "is missed." in line
               for line in lines)


def test_the_nvfp4_array_against_the_mxfp4_array(build):
    rows = _synth_rows() + [
        _row("mx_array", "mx_array 4x4 (fmt=mxfp4)", 3200, 2800, {"1": 110.0}, {"rows": 4, "cols": 4, "fmt": "mxfp4"},
             [4, 4]),
        _row("mx_array", "mx_array 4x4 (fmt=nvfp4)", 3680, 2800, {"1": 110.0}, {"rows": 4, "cols": 4, "fmt": "nvfp4"},
             [4, 4])]
    _write(build / "synth" / "report.json", {"rows": rows})
    lines = _lines(build)
    # (3680 - 3200) / 16 = 30 per PE
    assert ("In the MX arrays of 16 PEs, NVFP4 costs 30 LUT-equiv per PE more than MXFP4 (its scale multiply and "
            "wider float32 unit, shared by the PEs, less its narrower block sums) and places at 110.0 against "
            "110.0 MHz.") in lines
    # 4 x 4 NVFP4: one unit for min(4, 16 // 4) = 4 rows of 4 = 16 PEs: 560 / 16 = 35.0 per PE
    assert any("more per float32 unit, 35.0 per PE where one unit serves 16 PEs (the NVFP4 array above);" in line
               for line in lines)


def test_missing_inputs_are_named_cells_not_figures(tmp_path):
    lines = _lines(tmp_path / "nowhere")
    fourbit = next(line for line in lines if line.startswith("| fourbit radix-4 |"))
    assert fourbit == ("| fourbit radix-4 | not measured: run make synth | not measured | not measured | "
                       "not measured | not measured | not measured | not measured: run make chip | "
                       "not measured: run make train-quick | not measured: run make train |")
    assert "NVFP4's FP8 scale multiply: not measured: run make synth (mx_block_term)." in lines
    assert not any("goal" in line for line in lines)
    assert formats.plot(formats.collect(tmp_path / "nowhere", record=None), tmp_path / "p.png") is None


def test_quick_table_fills_the_digits_gap_only(build):
    (build / "train" / "results.json").unlink()
    _write(build / "train" / "quick" / "results.json", _training_rows([("digits", "mlp", "fourbit", 1.25)], epochs=8))
    lines = _lines(build)
    fourbit = next(line for line in lines if line.startswith("| fourbit radix-4 |"))
    assert fourbit.endswith("| +1.25 points | not measured: run make train |")
    mx = next(line for line in lines if line.startswith("| MXFP4 |"))
    assert mx.endswith("| not measured: run make train-quick | not measured: run make train |")
    assert any("(the quick table: digits-MLP only, 8 epochs)" in line for line in lines)


def test_the_record_of_the_last_full_table_fills_what_the_build_lacks(build):
    record = _training_rows([("digits", "mlp", "fourbit", 0.5), ("pydoc", "transformer", "fourbit", 6.5)])
    _write(build.parent / "training_table.json", {**record, "finished_utc": "2026-12-04 22:40 UTC"})
    fourbit = next(line for line in _lines(build) if line.startswith("| fourbit radix-4 |"))
    assert fourbit.endswith("| +0.15 points | +7.90 % |")       # the build's full table comes first
    (build / "train" / "results.json").unlink()
    quick = build / "train" / "quick" / "results.json"
    _write(quick, _training_rows([("digits", "mlp", "fourbit", 1.25)], epochs=8))
    lines = _lines(build)
    fourbit = next(line for line in lines if line.startswith("| fourbit radix-4 |"))
    assert fourbit.endswith("| +1.25 points | +6.50 % |")
    assert (f"Accuracy gap = FP32 − format, test accuracy points on digits-MLP, and the character LM's validation "
            f"bits per character above FP32's in %: digits-MLP gap from {quick} (the quick table: digits-MLP only, "
            f"8 epochs); char-LM bpc gap from {build.parent.name}/training_table.json (the last full make train, "
            f"finished 2026-12-04 22:40 UTC); positive is worse.") in lines


def test_a_chip_array_that_did_not_place_says_so(build):
    _write(build / "chip" / "chip.json", {"rows": [_chip("fourbit", "fourbit", [20, 17], None)]})
    lines = _lines(build)
    assert "| did not place (build/chip/chip.json) |" in next(line for line in lines if line.startswith("| fourbit"))
    assert "| not measured: run make chip |" in next(line for line in lines if line.startswith("| FP16"))


def test_a_chip_array_not_run_to_placement_says_so(build):
    row = {**_chip("fourbit", "fourbit", [20, 17], None), "not_placed": True,
           "error": "predicted only (--stop-after predict)"}
    _write(build / "chip" / "chip.json", {"rows": [row]})
    fourbit = next(line for line in _lines(build) if line.startswith("| fourbit"))
    assert "| not run: predicted only (--stop-after predict) (build/chip/chip.json) |" in fourbit


def test_a_missing_block_term_leaves_the_scale_multiply_unmeasured(build):
    rows = [r for r in _synth_rows() if r["label"] != "mx_block_term (fmt=nvfp4)"]
    _write(build / "synth" / "report.json", {"rows": rows})
    assert "NVFP4's FP8 scale multiply: not measured: run make synth (mx_block_term)." in _lines(build)


def test_plot_and_report_section(build):
    _write(build / "synth" / "report.json", {
        "rows": _synth_rows(), "tools": {}, "plots": [], "failures": [],
        "headline": {"target": "ecp5-85f", "mapping": "lut", "baseline": None, "entries": []}})
    (md, page), key = project_report.write(build)
    assert (build / formats.PLOT).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = md.read_text()
    assert "## Per-format cost and accuracy: fourbit, MXFP4, NVFP4, FP16" in text
    assert ("| FP16 | fp16_pipe_mac | 960 | 360 | 0 | 120.0 | 125.00 M | 1.20 (fp16 6x6); pipelined PE estimated "
            "2.25 |") in text
    assert f"![accuracy gap against MAC/s per 1k LUT]({formats.PLOT})" in text
    assert ("per format, one PE on ECP5-85F LUT-only: fourbit radix-4 200 LUT-equiv, 500.00 MMAC/s per 1k LUT; "
            "MXFP4 220 LUT-equiv, 536.36 MMAC/s per 1k LUT; NVFP4 280 LUT-equiv, 400.00 MMAC/s per 1k LUT; "
            "FP16 960 LUT-equiv, 125.00 MMAC/s per 1k LUT") in key


def test_readme_table_is_replaced_between_the_markers(build, tmp_path):
    begin, end = formats.MARKERS
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{begin}\nold table 227\n{end}\nrest\n")
    assert formats.main(["--build", str(build), "--readme", str(readme)]) == 0
    text = readme.read_text()
    assert text.startswith(f"intro\n{begin}\n\nGenerated ")
    assert text.endswith(f"{end}\nrest\n")
    assert "old table 227" not in text
    assert "| fourbit radix-4 | training_array 4x4 ÷ 16 | 200 |" in text
    readme.write_text("no markers\n")
    assert formats.main(["--build", str(build), "--readme", str(readme)]) == 1
