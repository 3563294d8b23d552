"""synth.chip: the cost model, the size choice, fit errors and the training step's cycles.

The Yosys runs are faked with an exactly linear cost so the choices can be worked by hand; one
slow test runs the training step on a small simulated array (Verilator).
"""

import dataclasses
import json
from types import SimpleNamespace

import pytest

from golden.tiling import Mode
from rtl.array import operand_skew
from synth import chip, flow

LINEAR = {"lut_equiv": (200, 10, 20, 300), "ff": (120, 8, 30, 50), "dsp": (0, 0, 0, 0)}
DSP_PER_PE = {**LINEAR, "dsp": (1, 0, 0, 0)}


def linear_counts(size, coefficients=LINEAR):
    rows, cols = size
    return {count: per_pe * rows * cols + per_row * rows + per_col * cols + fixed
            for count, (per_pe, per_row, per_col, fixed) in coefficients.items()}


def model(coefficients=LINEAR):
    return chip.fit([(size, linear_counts(size, coefficients)) for size in chip.FIT_SIZES])


def test_fit_recovers_a_linear_cost_exactly():
    fitted = model()
    assert fitted["lut_equiv"]["per_pe"] == pytest.approx(200)
    assert fitted["ff"]["per_col"] == pytest.approx(30)
    assert chip.predict(fitted, (10, 12)) == linear_counts((10, 12))


def test_fit_needs_four_sizes():
    with pytest.raises(ValueError, match="at least 4 sizes, got 3"):
        chip.fit([(size, linear_counts(size)) for size in chip.FIT_SIZES[:3]])


def test_an_mx_model_prices_its_float32_units():
    # one float32 unit per 32 // C rows: 29x16 has ceil(29 / 2) = 15 units, 22x21 one per row, 22
    assert (chip.shared_units((29, 16), 32), chip.shared_units((22, 21), 32), chip.shared_units((4, 4), 32)) == (15, 22, 1)

    def counts(size):
        units = chip.shared_units(size, 32)
        return {"lut_equiv": 150 * size[0] * size[1] + 20 * size[0] + 900 * units + 500,
                "ff": 170 * size[0] * size[1] + 600 * units, "dsp": 0}

    fitted = chip.fit([(size, counts(size)) for size in chip.MX_FIT_SIZES], block=32)
    assert fitted["lut_equiv"]["per_unit"] == pytest.approx(900) and fitted["ff"]["per_unit"] == pytest.approx(600)
    assert chip.predict(fitted, (22, 21)) == counts((22, 21))
    with pytest.raises(ValueError, match="cannot separate the cost model's 5 terms"):
        chip.fit([(size, counts(size)) for size in chip.FIT_SIZES], block=32)   # one unit at every size


def test_an_nvfp4_array_has_at_most_16_columns_and_a_float32_unit_per_16_over_c_rows():
    kind = chip.KINDS["nvfp4"]
    assert (kind.block, kind.params((4, 4))) == (16, {"rows": 4, "cols": 4, "fmt": "nvfp4"})
    # 16 // 16 = 1 row per unit, 16 // 5 = 3, 16 // 8 = 2
    assert [chip.shared_units(size, 16) for size in ((29, 16), (7, 5), (9, 8))] == [29, 3, 5]
    with pytest.raises(ValueError, match="at most 16 columns, got 4x17"):
        chip.shared_units((4, 17), 16)

    def counts(size):
        units = chip.shared_units(size, 16)
        return {"lut_equiv": 100 * size[0] * size[1] + 2000 * units + 500, "ff": 150 * size[0] * size[1], "dsp": 0}

    fitted = chip.fit([(size, counts(size)) for size in kind.fit_sizes], block=kind.block)
    assert fitted["lut_equiv"]["per_unit"] == pytest.approx(2000)
    device = chip.DEVICES["LFE5U-85F"]
    rows, cols = chip.largest_size(fitted, device, "lut")
    assert cols <= 16 and counts((rows, cols))["lut_equiv"] <= chip.BUDGET * device.luts
    assert rows * cols == max(r * c for r in range(2, 33) for c in range(2, 17)
                              if counts((r, c))["lut_equiv"] <= chip.BUDGET * device.luts and max(r, c) <= 2 * min(r, c))
    with pytest.raises(chip.DoesNotFit, match=r"mx_array 8x20: an array of 16-element blocks has at most 16 columns"):
        chip.check_size(kind, (8, 20), fitted, device)


def test_largest_size_has_the_most_pes_within_the_budget():
    device = flow.TARGETS["ecp5-85f"]
    rows, cols = chip.largest_size(model(), device, "lut")
    budget = chip.BUDGET * device.luts                      # 71,094 LUT-equiv
    assert linear_counts((rows, cols))["lut_equiv"] <= budget
    # 200 per PE leaves room for at most (71,094 - 300 - 30 * 2) / 200 PEs whatever the shape
    assert rows * cols == max(r * c for r in range(2, 33) for c in range(2, 33)
                              if linear_counts((r, c))["lut_equiv"] <= budget and max(r, c) <= 2 * min(r, c))
    assert max(rows, cols) <= chip.MAX_ASPECT * min(rows, cols)


def test_the_dsp_mapping_stays_within_the_multipliers_and_a_step_down_has_fewer_pes():
    device = chip.DEVICES["LFE5U-25F"]                       # 28 multipliers
    size = chip.largest_size(model(DSP_PER_PE), device, "dsp")
    assert size[0] * size[1] == 28 and sorted(size) == [4, 7]
    smaller = chip.largest_size(model(DSP_PER_PE), device, "dsp", below=28)
    assert smaller[0] * smaller[1] == 25


def test_nothing_fits_a_tiny_device():
    with pytest.raises(chip.DoesNotFit, match=r"no array of this kind fits LFE5U-25F within 85% of its LUTs and 72% "
                                              r"of its flip-flops: the smallest, 2x2, needs 1,160 LUT-equiv \(116 %\), "
                                              r"606 FF \(61 %\) and 0 DSPs"):
        chip.largest_size(model(), dataclasses.replace(flow.ECP5_25F, luts=1000), "lut")


def test_the_operand_skew_is_a_triangle_of_registers_per_side():
    # A lane i waits R - t cycles (t: the top row of its PE), B lane j waits j + 1
    assert operand_skew(4, 3) == ([4, 3, 2, 1], [1, 2, 3])
    assert operand_skew(4, 3, rows_per_pe=2) == ([4, 4, 2, 2], [1, 2, 3])
    # 12-bit lanes: 12 x (22 x 23 / 2 + 16 x 17 / 2) = 12 x (253 + 136)
    assert chip.skew_registers((22, 16), {"width": 12, "rows_per_pe": 1}) == 4_668


def test_the_skew_flip_flops_are_counted_not_fitted():
    skew = {"width": 12, "rows_per_pe": 1}

    def counts(size):
        linear = linear_counts(size)
        return {**linear, "ff": linear["ff"] + chip.skew_registers(size, skew)}

    fitted = chip.fit([(size, counts(size)) for size in chip.FIT_SIZES], skew=skew)
    assert fitted["skew"] == skew and fitted["ff"]["per_pe"] == pytest.approx(120)
    assert chip.predict(fitted, (22, 16)) == counts((22, 16))
    # fitted linearly, the quadratic skew is extrapolated low at chip size
    linear_only = chip.fit([(size, counts(size)) for size in chip.FIT_SIZES])
    assert chip.predict(linear_only, (22, 16))["ff"] < counts((22, 16))["ff"]


def test_largest_size_keeps_the_flip_flops_within_their_budget():
    ff_heavy = {**LINEAR, "ff": (190, 8, 30, 50)}           # more flip-flops than LUT-equiv per PE
    device = chip.DEVICES["LFE5U-85F"]
    rows, cols = chip.largest_size(model(ff_heavy), device, "lut")
    assert linear_counts((rows, cols), ff_heavy)["ff"] <= chip.FF_BUDGET * device.ffs
    assert rows * cols == max(r * c for r in range(2, 33) for c in range(2, 33)
                              if linear_counts((r, c), ff_heavy)["ff"] <= chip.FF_BUDGET * device.ffs
                              and max(r, c) <= 2 * min(r, c))
    assert linear_counts((rows, cols), ff_heavy)["lut_equiv"] < chip.BUDGET * device.luts   # LUTs left over


def test_a_measured_array_over_the_accepted_flip_flops_is_not_placed():
    device = chip.DEVICES["LFE5U-85F"]
    counts = {"lut_equiv": 59_260, "ff": 65_600, "dsp": 0}
    assert chip.over_accepted("mx_array 24x16", counts, device) == (
        "mx_array 24x16 needs 65,600 FF, 78 % of LFE5U-85F's 83,640 flip-flops (over the 75% accepted)")
    assert chip.over_accepted("mx_array 22x16", {**counts, "ff": 60_048}, device) is None
    assert "over the 88% accepted" in chip.over_accepted("x", {**counts, "lut_equiv": 75_000}, device)


def test_an_explicit_size_that_cannot_fit_names_the_device_the_size_and_the_utilization():
    kind = chip.KINDS["fourbit"]
    with pytest.raises(chip.DoesNotFit) as error:
        chip.check_size(kind, (24, 24), model(), chip.DEVICES["LFE5U-85F"])
    needs = linear_counts((24, 24))["lut_equiv"]             # 116,220
    assert str(error.value) == (f"training_array 24x24 needs {needs:,} LUT-equiv, "
                                f"{100 * needs / 83_640:.0f} % of LFE5U-85F's 83,640 LUTs (predicted by the cost model)")
    chip.check_size(kind, (8, 8), model(), chip.DEVICES["LFE5U-85F"])


#: An FP16 array's cost: about 1,100 LUT-equiv per PE.
FP16_LINEAR = {**LINEAR, "lut_equiv": (1_100, 40, 60, 500)}


@pytest.mark.parametrize("kind, size, unit, coefficients", [
    ("fourbit", (24, 24), "training_array", LINEAR), ("fp16", (5, 5), "fp16_array", FP16_LINEAR)])
def test_the_command_line_refuses_a_size_that_does_not_fit(monkeypatch, capsys, tmp_path, kind, size, unit,
                                                           coefficients):
    monkeypatch.setattr(chip, "run_synthesis", lambda job: {**linear_counts(job.size, coefficients), "cached": True,
                                                            "wall_seconds": 0})
    history = chip.jobs.History(tmp_path / "times.json")
    monkeypatch.setattr(chip.jobs, "History", lambda path: history)
    with pytest.raises(SystemExit) as error:
        chip.main(["--kinds", kind, "--mappings", "lut", "--size", f"{kind}={size[0]}x{size[1]}", "--jobs", "1",
                   "--out-dir", str(tmp_path)])
    needs = linear_counts(size, coefficients)["lut_equiv"]
    assert needs > 24_288
    assert str(error.value) == (f"python -m synth.chip: {kind}, lut mapping: {unit} {size[0]}x{size[1]} needs {needs:,} "
                                f"LUT-equiv, {100 * needs / 24_288:.0f} % of LFE5U-25F's 24,288 LUTs (predicted by the "
                                "cost model)")


@pytest.mark.parametrize("text, message", [
    ("fourbit", "KIND=RxC"), ("int8=4x4", "KIND=RxC"), ("fourbit=4by4", "KIND=RxC"), ("fp16=1x4", "2..32"),
])
def test_bad_sizes_are_refused(text, message):
    with pytest.raises(ValueError, match=message):
        chip.parse_size(text)
    assert chip.parse_size("fp16=3x5") == ("fp16", (3, 5))


def test_default_kinds_are_the_best_available_of_each_format_and_mapping():
    class Registry:
        UNITS = {"training_array": None, "fp16_array": None}
        sums = 1

        @classmethod
        def build(cls, unit, params):
            return SimpleNamespace(sums=cls.sums) if unit == "fp16_array" else SimpleNamespace()

    def names(registry):
        return [(kind.name, mapping) for kind, mapping in chip.cases(registry)]
    assert names(Registry) == [("fourbit", "lut"), ("fourbit", "dsp")]      # no FP16 array with the pipelined PE
    Registry.UNITS["training_array_dsp"], Registry.sums = None, 6   # the DSP pair array, the pipelined FP16 PE
    assert names(Registry) == [("fourbit", "lut"), ("fourbit-dsp", "dsp"), ("fp16", "lut"), ("fp16", "dsp")]
    assert [(k.name, m) for k, m in chip.cases(Registry, ["fourbit"], ["dsp"])] == [("fourbit", "dsp")]
    Registry.UNITS["mx_array"] = None                               # the MXFP4 and NVFP4 arrays: LUT-only
    assert names(Registry)[-2:] == [("mxfp4", "lut"), ("nvfp4", "lut")]
    assert [(k.name, m) for k, m in chip.cases(Registry, ["mxfp4"])] == [("mxfp4", "lut")]
    assert [(k.name, m) for k, m in chip.cases(Registry, ["nvfp4"])] == [("nvfp4", "lut")]
    with pytest.raises(ValueError, match="kinds must be among"):
        chip.cases(Registry, ["int8"])


def test_step_shapes_and_the_timing_model_of_the_documented_8x8_step():
    shapes = chip.step_shapes()
    assert [(Mode(mode).name, m, k, n) for mode, m, k, n in shapes] == [
        ("FWD", 32, 64, 64), ("FWD", 32, 64, 64), ("BWD_DATA", 32, 64, 64), ("BWD_WEIGHT", 64, 32, 64),
        ("BWD_DATA", 32, 64, 64), ("BWD_WEIGHT", 64, 32, 64)]
    # docs/architecture.md: 2,048 beats, latency 18, 8 rows: 2,073 cycles per GEMM, 12,438 per step
    assert chip.model_step_cycles(chip.KINDS["fourbit"], (8, 8), shapes) == [2073] * 6


def test_comparisons_divide_the_best_of_each_format():
    def row(fmt, gmacs, seconds):
        return {"device": "LFE5U-85F", "mapping": "lut", "fmt": fmt, "kind": fmt, "gmac_per_s": gmacs,
                "step": {"seconds": seconds}}
    ratios = chip.comparisons([row("fourbit", 30.0, 1e-4), row("fp16", 2.0, 1e-3), row("fp16", 3.0, 8e-4)])
    assert len(ratios) == 1
    assert ratios[0]["gmac_ratio"] == pytest.approx(10.0) and ratios[0]["step_speedup"] == pytest.approx(8.0)


@pytest.mark.slow
@pytest.mark.cocotb
def test_training_step_cycles_on_verilator_equal_the_timing_model():
    measured = chip.simulate_step(chip.KINDS["fourbit"], (3, 5), reuse=False)
    assert measured["macs"] == 6 * 32 * 64 * 64
    assert measured["cycles_by_gemm"] == chip.model_step_cycles(chip.KINDS["fourbit"], (3, 5), chip.step_shapes())
    assert measured["cycles"] == measured["model_cycles"] == sum(measured["cycles_by_gemm"])


def sample_report():
    def row(kind, fmt, size, gmacs, seconds, mapping="lut"):
        return {"device": "LFE5U-85F", "mapping": mapping, "same_as_lut": False, "kind": kind, "fmt": fmt,
                "unit": f"{fmt}_array", "size": list(size), "pes": size[0] * size[1], "lut_equiv": 70_000, "ff": 40_000, "dsp": 0,
                "predicted": {"lut_equiv": 69_500, "ff": 41_000, "dsp": 0}, "lut_share": 70_000 / 83_640,
                "fmax_mhz": 90.0, "error": None, "gmac_per_s": gmacs,
                "step": {"cycles": 4_000, "model_cycles": 4_000, "seconds": seconds}}
    rows = [row("fourbit", "fourbit", (22, 15), 29.7, 4.4e-5), row("fp16", "fp16", (8, 8), 2.0, 2.0e-4)]
    return {"generated_utc": "2026-12-04 20:00 UTC", "wall_seconds": 3600, "cores": 2, "load_average": "9.0, 8.0, 7.0",
            "runs": [{"date": "2026-12-04 20:00 UTC", "argv": [], "wall_seconds": 3600, "cores": 2,
                      "load_average": "9.0, 8.0, 7.0"}],
            "budget": 0.85, "method": ["m"], "rows": rows, "devices": {"LFE5U-85F": {"luts": 83_640}}, "comparisons": chip.comparisons(rows),
            "notes": ["a note"],
            "models": [{"kind": "fourbit", "mapping": "lut", "model": model()}]}


def test_the_report_shows_the_arrays_the_ratio_and_the_date(tmp_path):
    from synth import project_report

    report = sample_report()
    text = chip.markdown(report)
    assert ("| LFE5U-85F | lut | fourbit | 22x15 | 330 | 70,000 (69,500) | 83.7 | 40,000 (41,000) | 0 | 90.0 | 29.70 "
            "| 4,000 (4,000) | 44.0 |") in text
    assert "| LFE5U-85F | lut | fourbit / fp16 | 14.85x | 4.55x | above |" in text
    assert ("Training steps simulated (Verilator, every output checked against golden): fourbit_array 22x15 4,000 "
            "cycles (timing model 4,000); fp16_array 8x8 4,000 cycles (timing model 4,000). Every one equals") in text
    report["rows"][1]["step"] = {"cycles": 4_001, "model_cycles": 4_000, "seconds": 2.0e-4}
    assert "SOME DIFFER from the timing model" in chip.markdown(report)
    report["rows"][1]["step"] = {"model_cycles": 4_000}
    assert "fp16_array" not in chip.step_sentence(report)
    report = sample_report()
    (tmp_path / "chip").mkdir()
    (tmp_path / "chip" / "chip.json").write_text(json.dumps(report))
    (md, _), lines = project_report.write(tmp_path)
    assert ("`make chip`, last run 2026-12-04 20:00 UTC (3,600 s wall on 2 cores, load average 9.0, 8.0, 7.0; the rows "
            "come from 1 run(s) taking 3,600 s in all)") in md.read_text()
    assert ("chip level (LFE5U-85F, lut mapping, make chip 2026-12-04 20:00 UTC): the largest fourbit array gives "
            "14.8x the GMAC/s of the largest FP16 array (fourbit / fp16), above IBM's 7x") in lines
    assert ("LFE5U-85F (lut mapping): the largest fourbit array gives 14.85x the GMAC/s of the largest FP16 array "
            "(fourbit 22x15 at 90.0 MHz against fp16 8x8 at 90.0 MHz; FP16 PE fp16_pipe_mac): above IBM's 7x.") in md.read_text()


def test_a_run_replaces_the_rows_of_the_arrays_it_measured():
    old = sample_report()
    run = {"date": "2026-12-04 21:00 UTC", "argv": ["--kinds", "fp16"], "wall_seconds": 60, "cores": 2,
           "load_average": "1.0, 1.0, 1.0"}
    fp16 = {**old["rows"][1], "size": [7, 9], "pes": 63, "gmac_per_s": 2.97, "step": {"seconds": 1e-4}}
    merged = chip.merge(old, run, [], [fp16], chip.step_shapes())
    assert [(r["kind"], r["size"]) for r in merged["rows"]] == [("fourbit", [22, 15]), ("fp16", [7, 9])]
    assert merged["comparisons"][0]["gmac_ratio"] == pytest.approx(10.0)
    assert [r["date"] for r in merged["runs"]] == ["2026-12-04 20:00 UTC", "2026-12-04 21:00 UTC"]
    assert merged["models"] == old["models"] and merged["generated_utc"] == "2026-12-04 21:00 UTC"


def test_an_unplaced_array_gets_a_labelled_estimate_from_the_largest_placed_array_of_its_unit():
    def placed(unit, label, size, fmax):
        return {"unit": unit, "label": label, "target": "ecp5-85f", "mapping": "lut", "fits": True, "fmax_mhz": fmax,
                "array_size": size, "macs_per_cycle": size[0] * size[1] if size else 1, "date": "d"}
    synth_report = {"rows": [placed("training_array", "training_array 2x2", [2, 2], 120.0),
                             placed("training_array", "training_array 4x4", [4, 4], 110.0),
                             placed("fp16_pipe_mac", "fp16_pipe_mac", None, 120.0)]}
    rows = sample_report()["rows"]
    rows = [{**row, "fmax_mhz": None, "gmac_per_s": None, "error": "not placed", "step": {"model_cycles": 3_300}}
            for row in rows]
    estimated = chip.with_estimates(rows, synth_report)
    assert estimated[0]["estimate"] == {"fmax_mhz": 110.0, "source": "training_array 4x4, lut, placed d",
                                        "gmac_per_s": pytest.approx(330 * 0.110), "step_seconds": pytest.approx(3e-5)}
    assert estimated[1]["estimate"]["source"] == "fp16_pipe_mac, lut, placed d"   # no FP16 array placed: its PE
    (ratio,) = chip.comparisons(estimated)
    assert ratio["estimated"] and ratio["gmac_ratio"] == pytest.approx(330 * 110 / (64 * 120))
    # the same kind placed on the other device comes first
    small = {**sample_report()["rows"][0], "device": "LFE5U-25F", "size": [12, 8], "pes": 96, "fmax_mhz": 101.0}
    estimated = chip.with_estimates([*rows, small], synth_report)
    assert estimated[0]["estimate"]["fmax_mhz"] == 101.0
    assert estimated[0]["estimate"]["source"] == "fourbit 12x8 placed on LFE5U-25F, lut"
    assert "estimate" not in estimated[2]


def test_a_kind_pairing_rows_gets_an_even_number_of_rows():
    size = chip.largest_size(model(DSP_PER_PE), chip.DEVICES["LFE5U-25F"], "dsp", row_step=2)
    assert size[0] % 2 == 0 and size[0] * size[1] == 28


def test_without_a_build_the_report_and_the_format_table_read_the_committed_record(tmp_path, monkeypatch):
    from synth import formats, project_report

    report = sample_report()
    report["rows"][0].update(date="2026-12-05 01:00 UTC", commit="abc1234567", place_seconds=600.0, route_seconds=90.0)
    record = tmp_path / "docs" / "chip_table.json"
    record.parent.mkdir()
    record.write_text(json.dumps(report))
    monkeypatch.setattr(chip, "RECORD", record)
    build = tmp_path / "build"
    assert chip.load_report(build) == (report, "docs/chip_table.json")
    assert formats.chip_entry(report, "fourbit", "docs/chip_table.json") == "29.70 (fourbit 22x15, 2026-12-05 01:00 UTC)"
    assert "| 44.0 | 10.0 + 1.5 | 2026-12-05 01:00 UTC (abc1234567) |" in chip.markdown(report)
    (md, _), _ = project_report.write(build)
    assert "From docs/chip_table.json, the committed record of the last `make chip`" in md.read_text()
    (build / "chip").mkdir()
    (build / "chip" / "chip.json").write_text(json.dumps(sample_report()))
    assert chip.load_report(build) == (sample_report(), "build/chip/chip.json")


def test_a_place_and_route_that_does_not_finish_in_time_is_a_failure_to_step_down_from(monkeypatch):
    calls = []
    monkeypatch.setattr(chip, "_synthesize", lambda kind, size, mapping: {
        "lut_equiv": 50_000, "ff": 31_000, "dsp": 120, "cached": True})
    monkeypatch.setattr(chip.flow, "place_and_route", lambda *args, **kwargs: calls.append(kwargs) or {
        "fmax_mhz": None, "utilization": {}, "error": "fp16_array 6x10 did not finish place and route in 120 min",
        "cached": False})
    result = chip.run_placement(chip.Placement(chip.KINDS["fp16"], (6, 10), "dsp", "LFE5U-85F"))
    assert calls[0]["timeout"] == chip.PNR_TIMEOUT == 7200
    assert result["fmax_mhz"] is None and "did not finish" in result["error"]
