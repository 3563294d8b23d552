"""Synthesis report: build/synth/report.json, report.md and the array plots.

Rows are per (design, target, mapping); area is seed-independent, Fmax is the median over the
seeds that were run. Throughput is MACs per cycle times Fmax; efficiency is that throughput per
1000 LUT-equivalents (see :mod:`synth.flow` for how LUT-equivalents are counted).
"""

import json
import statistics
from pathlib import Path

from rtl import tools

from . import flow
from .designs import ARRAY_UNIT, BASELINE_UNITS, HEADLINE_RUN

IBM_CLAIM = 7.0
#: The best public FP16 MAC we placed ourselves (/work/shared/ANCHORS.md): asic-now/hdl
#: ``fp16_mul_add``, a 4-stage FMA that truncates (no rounding), through this flow on ECP5-85F
#: LUT-only: 985 LUT4 + 85 CCU2C + 201 FF at 63.9 MHz. The headline's FP16 baseline is the better
#: (MAC/s per LUT) of this and our own FP16 PEs.
EXTERNAL_ANCHOR = {
    "label": "asic-now/hdl fp16_mul_add (external: 4-stage FMA, truncating)",
    "lut4": 985, "carry": 85, "lut_equiv": 985 + 2 * 85, "ff": 201, "fmax_mhz": 63.9, "fmax_by_seed": {"1": 63.9},
    "mac_per_s_per_klut": 63.9e6 / ((985 + 2 * 85) / 1000),
}
#: How the anchor's figures were measured (the report says it wherever it names the anchor).
ANCHOR_METHOD = ("The external anchor (Verilog from github.com/asic-now/hdl, not part of fourbit) was synthesized, "
                 "placed and routed with this flow on ECP5-85F LUT-only, one seed, as "
                 f"{EXTERNAL_ANCHOR['lut4']} LUT4 + {EXTERNAL_ANCHOR['carry']} CCU2C = "
                 f"{EXTERNAL_ANCHOR['lut_equiv']:,} LUT-equiv and {EXTERNAL_ANCHOR['ff']} FF at "
                 f"{EXTERNAL_ANCHOR['fmax_mhz']} MHz; it truncates instead of rounding, so it does less work than ours.")
#: What every ratio here is, and what IBM's 7x was.
NOT_IBM = (f"IBM's {IBM_CLAIM:.0f}x is a claim about the speed and energy of a 4-bit vs a 16-bit training chip; "
           "the ratios here are FPGA figures: throughput per LUT-equivalent of one PE against one PE, and the "
           "GMAC/s of the largest arrays that fit one device.")
AREA_COLUMNS = ("lut4", "carry", "lutram", "lut_equiv", "ff", "dsp", "bram")


def mac_rates(macs_per_cycle, fmax_mhz, lut_equiv):
    """(MAC/s at Fmax, MAC/s per 1000 LUT-equivalents); None where not defined."""
    if macs_per_cycle is None or fmax_mhz is None:
        return None, None
    rate = macs_per_cycle * fmax_mhz * 1e6
    return rate, (rate / (lut_equiv / 1000) if lut_equiv else None)


def make_row(design, module, results):
    """One report row from the flow results of one design on one target/mapping (one per seed)."""
    first = results[0]
    fmax_by_seed = {str(r["seed"]): r["fmax_mhz"] for r in results}
    placed = [f for f in fmax_by_seed.values() if f is not None]
    fmax = statistics.median(placed) if placed else None
    rate, efficiency = mac_rates(design.macs_per_cycle, fmax, first["lut_equiv"])
    return {
        "design": module,
        "unit": design.unit,
        "label": design.label,
        "params": design.params,
        "array_size": list(design.array_size) if design.array_size else None,
        "target": first["target"],
        "mapping": first["mapping"],
        **{column: first[column] for column in AREA_COLUMNS},
        "cells": first["cells"],
        "freq_mhz": first["freq_mhz"],
        "fmax_by_seed": fmax_by_seed,
        "fmax_mhz": fmax,
        "fits": bool(placed),
        "error": next((r["error"] for r in results if r.get("error")), None),
        "headline": design.headline,
        "macs_per_cycle": design.macs_per_cycle,
        "mac_per_s": rate,
        "mac_per_s_per_klut": efficiency,
        "utilization": first["utilization"],
        "verilog_sha256": first["verilog_sha256"],
        "tools": first["tools"],
        "date": tools.utc_stamp(),
    }


def merge_rows(previous, new):
    """``previous`` report rows with those of the same design, target and mapping replaced by ``new``.

    Rows of designs not in ``new`` stay where they were; new rows of other designs are appended.
    """
    def key(row):
        return row["design"], row["target"], row["mapping"]

    replacing = {key(row): row for row in new}
    merged = [replacing.pop(key(row), row) for row in previous]
    return merged + [row for row in new if key(row) in replacing]


def headline(rows):
    """The best FP16 MAC PE against the 4-bit PEs on :data:`HEADLINE_RUN`.

    The baseline is the FP16 PE (:data:`BASELINE_UNITS`) with the most MAC/s per LUT, or
    :data:`EXTERNAL_ANCHOR` if that does better. Returns ``{"baseline": dict or None,
    "fp16": [...], "entries": [...]}``: ``fp16`` lists every FP16 candidate (ours placed, and the
    anchor); each entry has label, lut_equiv, fmax_mhz, mac_per_s_per_klut and ``ratio`` (its
    MAC/s per LUT over the baseline's, None without a placed FP16 PE of ours). The array's PE is the headline array (or, if that was not run,
    the largest placed one) divided by its PE count, so it carries its share of the array's
    edge and control logic.
    """
    on_run = [r for r in rows if (r["target"], r["mapping"]) == HEADLINE_RUN and r["fits"]]
    ours = [_entry(r["label"], r["lut_equiv"], r["ff"], r["fmax_mhz"], r["mac_per_s_per_klut"], r)
            for r in on_run if r["unit"] in BASELINE_UNITS]
    fp16 = ours + [dict(EXTERNAL_ANCHOR)] if ours else []
    baseline = max(fp16, key=lambda e: e["mac_per_s_per_klut"], default=None)
    entries = [_entry(r["label"], r["lut_equiv"], r["ff"], r["fmax_mhz"], r["mac_per_s_per_klut"], r)
               for r in on_run if r["macs_per_cycle"] == 1 and r["unit"] not in BASELINE_UNITS]
    array = headline_array(on_run)
    if array:
        pes = array["macs_per_cycle"]
        rows_, cols = array["array_size"]
        entries.append(_entry(f"array PE ({rows_}x{cols} array / {pes})", array["lut_equiv"] / pes,
                              array["ff"] / pes, array["fmax_mhz"], array["mac_per_s_per_klut"], array))
    base_efficiency = baseline["mac_per_s_per_klut"] if baseline else None
    for entry in entries:
        entry["ratio"] = (entry["mac_per_s_per_klut"] / base_efficiency) if base_efficiency else None
    return {"target": HEADLINE_RUN[0], "mapping": HEADLINE_RUN[1], "baseline": baseline,
            "fp16": fp16, "entries": entries}


def headline_array(rows, unit=ARRAY_UNIT):
    """The array row of ``unit`` whose PE stands for the array: the headline size if it was placed
    (several seeds), else the largest; None without a placed array."""
    arrays = [r for r in rows if r["unit"] == unit and r.get("array_size") and r["fits"]]
    arrays = [r for r in arrays if r.get("headline")] or arrays
    return max(arrays, key=lambda r: r["array_size"][0] * r["array_size"][1], default=None)


def _entry(label, lut_equiv, ff, fmax, efficiency, row):
    return {"label": label, "lut_equiv": lut_equiv, "ff": ff, "fmax_mhz": fmax,
            "fmax_by_seed": row["fmax_by_seed"], "mac_per_s_per_klut": efficiency}


def side(ratio):
    """``"above"`` or ``"below"``: where ``ratio`` stands against IBM's 7x."""
    return "above" if ratio > IBM_CLAIM else "below"


def verdict(entry):
    """Plain sentence comparing one headline entry's ratio with IBM's 7x."""
    if entry["ratio"] is None:
        return f"{entry['label']}: no FP16 baseline was placed on this run, so there is no ratio."
    return (f"{entry['label']} delivers {entry['ratio']:.1f}x the MAC/s per LUT of the best FP16 MAC: "
            f"{side(entry['ratio'])} IBM's {IBM_CLAIM:.0f}x.")


def fp16_candidates(head):
    """Sentence listing the FP16 PEs the baseline is chosen from, the anchor with how it was measured."""
    return ("FP16 candidates (the baseline is the one with the most MAC/s per 1k LUT): "
            + "; ".join(f"{e['label']}: {_fmt(e['lut_equiv'], 0)} LUT-equiv, {_fmt(e['ff'], 0)} FF at "
                        f"{_fmt(e['fmax_mhz'])} MHz, {_si(e['mac_per_s_per_klut'])} MAC/s per 1k LUT"
                        for e in head.get("fp16", [])) + ". " + ANCHOR_METHOD)


def chip_verdicts(chip_report, baseline=None):
    """Sentences on the chip-level GMAC/s ratios of a :mod:`synth.chip` report against IBM's 7x, naming
    the FP16 arrays' PE and whether it is the per-PE ``baseline`` (a headline entry)."""
    from . import chip

    lines = []
    for c in (chip_report or {}).get("comparisons", []):
        sizes = {r["kind"]: r for r in chip_report["rows"]
                 if (r["device"], r["mapping"]) == (c["device"], c["mapping"]) and r["kind"] in (c["fourbit"], c["fp16"])}
        four, fp16 = (sizes.get(c[fmt]) for fmt in ("fourbit", "fp16"))
        pe = chip.KINDS[c["fp16"]].pe_unit if c["fp16"] in chip.KINDS else "?"
        best = ("" if baseline is None else ", the best FP16 PE above" if baseline["label"] == pe
                else f"; the best FP16 PE per LUT is {baseline['label']}, which has no array")
        shown = [f"{r['kind']} {r['size'][0]}x{r['size'][1]}" + (f" at {r['fmax_mhz']:.1f} MHz" if r.get("fmax_mhz") else "")
                 for r in (four, fp16) if r]
        lines.append(f"{c['device']} ({c['mapping']} mapping): the largest fourbit array gives "
                     f"{c['gmac_ratio']:.2f}x the GMAC/s of the largest FP16 array"
                     + (" (estimated)" if c["estimated"] else "") + f" ({' against '.join(shown)}; "
                     f"FP16 PE {pe}{best}): {side(c['gmac_ratio'])} IBM's {IBM_CLAIM:.0f}x.")
    return lines


# ---------------------------------------------------------------------------------------------
# Writing


def _fmt(value, digits=1):
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _si(value):
    if value is None:
        return "-"
    for scale, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:.2f} {suffix}"
    return f"{value:.0f}"


def _seeds(fmax_by_seed):
    return ", ".join(f"{seed}: {_fmt(f)}" for seed, f in fmax_by_seed.items())


def markdown(report):
    """The report as Markdown text."""
    lines = [
        "# fourbit synthesis report",
        "",
        f"Generated {report['generated_utc']} with "
        + ", ".join(f"{k} {v}" for k, v in report["tools"].items()) + ".",
        "",
        "## Method",
        "",
        *[f"- {line}" for line in report["method"]],
        "",
    ]
    head = report["headline"]
    lines += [f"## Headline: 4-bit PEs vs the best FP16 MAC ({head['target']}, {head['mapping']} mapping)", ""]
    base = head["baseline"]
    if base is None:
        lines += ["No FP16 MAC PE has been synthesized and placed yet: no ratio.", ""]
    else:
        lines += [fp16_candidates(head), ""]
    lines += ["| PE | LUT-equiv | FF | Fmax MHz (median) | Fmax by seed | MAC/s per 1k LUT | ratio vs FP16 |",
              "|---|---:|---:|---:|---|---:|---:|"]
    if base:
        lines.append(f"| {base['label']} (baseline) | {_fmt(base['lut_equiv'])} | {_fmt(base['ff'])} | "
                     f"{_fmt(base['fmax_mhz'])} | {_seeds(base['fmax_by_seed'])} | "
                     f"{_si(base['mac_per_s_per_klut'])} | 1.0x |")
    for entry in head["entries"]:
        ratio = f"{entry['ratio']:.1f}x" if entry["ratio"] is not None else "-"
        lines.append(f"| {entry['label']} | {_fmt(entry['lut_equiv'])} | {_fmt(entry['ff'])} | "
                     f"{_fmt(entry['fmax_mhz'])} | {_seeds(entry['fmax_by_seed'])} | "
                     f"{_si(entry['mac_per_s_per_klut'])} | {ratio} |")
    lines.append("")
    if base:
        lines += [*[verdict(entry) for entry in head["entries"]], ""]
    chip = report.get("chip") or {}
    if chip.get("verdicts"):
        lines += [f"Chip level (`make chip`, from {chip['source']}, last run {chip['date']}; every array and the "
                  "method: build/chip/chip.md):", "", *[f"- {line}" for line in chip["verdicts"]], ""]
    else:
        lines += ["Chip level: not measured yet (`make chip`).", ""]
    lines += [NOT_IBM, ""]
    for target, mapping in report["runs"]:
        rows = [r for r in report["rows"] if (r["target"], r["mapping"]) == (target, mapping)]
        lines += [f"## {target}, {mapping} mapping", "",
                  "| design | LUT4 | carry | LUT-equiv | FF | DSP | BRAM | Fmax MHz | seeds | MAC/s | MAC/s per 1k LUT | run |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---|"]
        for r in rows:
            fmax = _fmt(r["fmax_mhz"]) if r["fits"] else f"does not fit: {r['error']}"
            lines.append(f"| {r['label']} | {r['lut4']} | {r['carry']} | {r['lut_equiv']} | {r['ff']} | "
                         f"{r['dsp']} | {r['bram']} | {fmax} | {', '.join(r['fmax_by_seed'])} | "
                         f"{_si(r['mac_per_s'])} | {_si(r['mac_per_s_per_klut'])} | {r.get('date', '-')} |")
        lines.append("")
    if report["plots"]:
        lines += ["## Arrays", "", *[f"![{Path(p).stem}]({Path(p).name})" for p in report["plots"]], ""]
    if report["failures"]:
        lines += ["## Failures", "", *[f"- {f}" for f in report["failures"]], ""]
    return "\n".join(lines)


def plot_arrays(rows, out_dir):
    """PNG plots of LUT-equivalents and Fmax against array size; returns the written paths."""
    arrays = [r for r in rows if r["unit"] == ARRAY_UNIT and r["array_size"]]
    if not arrays:
        return []
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    runs = sorted({(r["target"], r["mapping"]) for r in arrays})
    for key, ylabel, name in (("lut_equiv", "LUT-equivalents", "arrays_lut_equiv.png"),
                              ("fmax_mhz", "Fmax (MHz, median of seeds)", "arrays_fmax.png")):
        fig, ax = plt.subplots(figsize=(6, 4))
        for target, mapping in runs:
            points = sorted((r["macs_per_cycle"], r[key]) for r in arrays
                            if (r["target"], r["mapping"]) == (target, mapping) and r[key] is not None
                            and (r["fits"] or key == "lut_equiv"))
            if points:
                ax.plot(*zip(*points), marker="o", label=f"{target} {mapping}")
        sizes = sorted({r["macs_per_cycle"] for r in arrays})
        ax.set_xscale("log", base=2)
        ax.set_xticks(sizes, [f"{int(s ** 0.5)}x{int(s ** 0.5)}" for s in sizes])
        ax.set_xlabel("array size (PEs)")
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        ax.legend()
        fig.tight_layout()
        path = Path(out_dir) / name
        fig.savefig(path, dpi=120)
        plt.close(fig)
        paths.append(str(path))
    return paths


def method_notes(seeds_headline):
    """The method bullet points of the report."""
    freqs = ", ".join(f"{t.name} {t.freq_mhz:g} MHz" for t in flow.TARGETS.values())
    return [
        "Each design is wrapped in a harness: data inputs from a serial-in shift register, outputs "
        "loaded into a shift-out register, so every design fits every package and Fmax covers all "
        "register-to-register paths including input logic. Area counts are the core module's alone "
        "(kept as its own hierarchy level in Yosys), without the harness.",
        "LUT-equivalents: ECP5 LUT4 + 2 x CCU2C (a CCU2C carry cell fills both LUT4s of a slice; "
        "nextpnr counts it as two carry LUTs) + 6 x TRELLIS_DPR16X4; iCE40 SB_LUT4 (SB_CARRY sits in "
        "the logic cell of the LUT computing its sum bit).",
        "Mappings: `lut` = no hard multipliers (ECP5 `synth_ecp5 -nodsp`; iCE40 default), "
        "`dsp` = ECP5 with MULT18X18D inference.",
        f"Clock constraints (nextpnr --freq): {freqs}; Fmax is nextpnr's achieved frequency.",
        f"Headline designs on {HEADLINE_RUN[0]}/{HEADLINE_RUN[1]} are placed with {seeds_headline} "
        "seed(s) and Fmax is the median; other rows use seed 1.",
        "MAC/s = MACs per cycle (1 per PE, R x C for an array) x Fmax; MAC/s per 1k LUT counts "
        "LUT-equivalents only (DSP blocks of the `dsp` mapping are listed, not priced).",
    ]


def write(rows, runs, out_dir, seeds_headline, failures=()):
    """Write report.json, report.md and the plots into ``out_dir``; returns the report dict."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    versions = dict(rows[0]["tools"]) if rows else flow.tool_versions()
    from . import chip

    head = headline(rows)
    chip_report, where = chip.load_report(out_dir.parent)
    report = {
        "generated_utc": tools.utc_stamp(),
        "tools": versions,
        "method": method_notes(seeds_headline),
        "runs": [list(run) for run in runs],
        "headline": head,
        "chip": {"source": where, "date": chip_report.get("generated_utc"),
                 "verdicts": chip_verdicts(chip_report, head["baseline"])} if chip_report else None,
        "rows": rows,
        "plots": plot_arrays(rows, out_dir),
        "failures": list(failures),
    }
    (out_dir / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    (out_dir / "report.md").write_text(markdown(report) + "\n")
    return report
