"""The per-format table: silicon cost and training accuracy of each 4-bit format beside FP16.

``python -m synth.formats [--build DIR] [--readme README.md]`` prints the table (with ``--readme``
it also rewrites the README's copy between its ``formats:begin``/``formats:end`` markers);
``python -m synth.project_report`` puts it and the plot of accuracy gap against MAC/s per 1k LUT
into the report. Every figure comes from a stage's results: build/synth/report.json (one PE on
ECP5-85F LUT-only, Fmax the median of the seeds placed), build/chip/chip.json (chip-level GMAC/s;
where it is missing docs/chip_table.json, the committed copy of the last chip report, its cells
dated) and the training table (build/train/results.json, else its quick version, and for the rows these
lack docs/training_table.json, the committed copy of the last full table). A figure whose stage
has not run is a "not measured: run make X" cell.
"""

import argparse
import json
import statistics
import sys
from pathlib import Path

from golden.training.table import RECORD
from rtl import tools
from rtl.mx_array_pe import group_rows
from rtl.mx_row import FORMATS as MX_BLOCKS

from . import chip as chip_level
from . import report, sweep
from .designs import ARRAY_UNIT, BASELINE_UNITS, HEADLINE_RUN

MX_ARRAY_UNIT = "mx_array"
#: (name, training scheme, unit of its array, block format of its ``mx_row``); None where there is none.
FORMATS = (
    ("fourbit radix-4", "fourbit", ARRAY_UNIT, None),
    ("MXFP4", "mxfp4", MX_ARRAY_UNIT, "mxfp4"),
    ("NVFP4", "nvfp4", MX_ARRAY_UNIT, "nvfp4"),
    ("FP16", None, None, None),
)
#: The training-table rows whose gap to FP32 the table shows:
#: (dataset, model, column heading, unit of the gap, the command whose table holds the row).
ACCURACY_ROWS = (("digits", "mlp", "digits-MLP gap", "points", "make train-quick"),
                 ("pydoc", "transformer", "char-LM bpc gap", "%", "make train"))
CHIP_DEVICE, CHIP_MAPPING = "LFE5U-85F", "lut"
PLOT = "formats_gap_vs_efficiency.png"
MARKERS = ("<!-- formats:begin: python -m synth.formats --readme README.md -->", "<!-- formats:end -->")
HEADER = ["format", "PE measured as", "LUT-equiv per PE", "FF per PE", "DSP per PE", "Fmax MHz",
          "MAC/s per 1k LUT", "chip GMAC/s (ECP5-85F LUT-only)", *(row[2] for row in ACCURACY_ROWS)]
#: The MXFP4 goal: at most this times the LUT-equiv of fourbit's PE, at no lower Fmax.
MX_AREA_GOAL = 1.5


def not_measured(command):
    return f"not measured: run {command}"


def _load(path):
    return json.loads(path.read_text()) if path.is_file() else None


# ---------------------------------------------------------------------------------------------
# The figures


def _params(row):
    return row.get("params") or {}


def _per_pe(row, pes, design):
    """The cost of one PE of a placed synthesis row that holds ``pes`` PEs."""
    median = _median_fmax(row)
    lut = row["lut_equiv"] / pes
    return {"design": design, "unit": row["unit"], "pes": pes, "size": row.get("array_size"),
            "lut_equiv": lut, "ff": row["ff"] / pes,
            "dsp": row["dsp"] / pes,
            "fmax_mhz": median, "seeds": len(_placed_fmax(row)), "mac_per_s_per_klut": report.mac_rates(1, median, lut)[1],
            "date": row.get("date")}


def cost(rows, array_unit, row_format):
    """The per-PE cost of a format from synthesis report rows (on :data:`HEADLINE_RUN`), or None.

    fourbit and the block-scaled formats: their array (``array_unit``, ``fmt`` = ``row_format`` if
    it has one) divided by R x C, edge logic included; a block-scaled format without a placed array:
    its ``mx_row`` divided by its columns, shared float32 unit included. FP16 (``array_unit`` None):
    the FP16 PE of :data:`BASELINE_UNITS` with the most MAC/s per 1k LUT.
    """
    placed = [r for r in rows if (r["target"], r["mapping"]) == HEADLINE_RUN and r["fits"]]
    if array_unit is None:
        pes = [_per_pe(r, 1, r["label"]) for r in placed if r["unit"] in BASELINE_UNITS]
        return max(pes, key=lambda e: e["mac_per_s_per_klut"], default=None)
    array = report.headline_array([r for r in placed if _params(r).get("fmt", row_format) == row_format],
                                  array_unit)
    if array:
        rows_, cols = array["array_size"]
        return _per_pe(array, rows_ * cols, f"{array['label']} ÷ {rows_ * cols}")
    row = next((r for r in placed if r["unit"] == "mx_row" and _params(r).get("fmt") == row_format
                and _params(r).get("shared")), None)
    if row is None:
        return None
    columns = row["params"]["columns"]
    return _per_pe(row, columns, f"mx_row of {columns} ÷ {columns}, shared float32 unit (no array)")


def chip_entry(chip, fmt, where):
    """The chip-level cell of ``fmt`` (a training scheme name or "fp16") from the chip report ``chip``
    (read from ``where``), or None; a row that carries its date shows it.

    The largest placed array of the format on :data:`CHIP_DEVICE` with :data:`CHIP_MAPPING` (the
    ``rows`` of ``python -m synth.chip``: device, mapping, fmt, kind, size, gmac_per_s), and the
    chip report's estimate for the same device and mapping where it has one (``estimates``: an FP16
    array with the pipelined PE swapped in, not placed).
    """
    def on_device(r):
        return (r.get("device"), r.get("mapping")) == (CHIP_DEVICE, CHIP_MAPPING)

    tried = [r for r in (chip or {}).get("rows", []) if on_device(r) and r.get("fmt") == fmt]
    placed = [r for r in tried if r.get("gmac_per_s")]
    if not placed:
        if not tried:
            return None
        if all(r.get("not_placed") for r in tried):      # stopped before placement, e.g. --stop-after
            return f"not run: {tried[0].get('error') or 'not placed'} ({where})"
        return f"did not place ({where})"
    best = max(placed, key=lambda r: r["gmac_per_s"])
    rows_, cols = best["size"]
    cell = f"{best['gmac_per_s']:.2f} ({best['kind']} {rows_}x{cols}{', ' + best['date'] if best.get('date') else ''})"
    estimate = next((e for e in (chip or {}).get("estimates", []) if on_device(e) and e.get("gmac_per_s")),
                    None) if fmt == "fp16" else None
    if estimate:
        cell += f"; pipelined PE estimated {estimate['gmac_per_s']:.2f}"
    return cell


def training_tables(build, record=RECORD):
    """The training tables in order of preference, each ``(results, the command that made them, where)``:
    build/train/results.json (the full table), build/train/quick/results.json, then ``record``, the
    committed copy of the last full ``make train`` (its rows and date, for a build that did not run it)."""
    tables = []
    for path, command in ((build / "train" / "results.json", "make train"),
                          (build / "train" / "quick" / "results.json", "make train-quick"), (record, "make train")):
        results = _load(Path(path)) if path else None   # record=None: no committed table
        if results is not None:
            where = (f"{Path(path).parent.name}/{Path(path).name} (the last full make train, finished "
                     f"{results['finished_utc']})") if path == record else path
            tables.append((results, command, where))
    return tables


def gap(results, scheme, dataset, model):
    """The gap to FP32 of ``scheme`` on the (dataset, model) row of a training table, or None."""
    return next((r["gap_to_fp32"] for r in (results or {}).get("rows", [])
                 if (r["dataset"], r["model"], r["scheme"]) == (dataset, model, scheme)), None)


def scale_multiply(rows, nvfp4_cost):
    """NVFP4's FP8 scale multiply against MXFP4's exponent add, measured alone, or None.

    The two ``mx_block_term`` designs (a block sum and its two scale codes to the block term, with
    its registers) on :data:`HEADLINE_RUN`: the multiply costs the difference per float32 unit;
    where ``nvfp4_cost`` (the table's NVFP4 PE) is an MX array's, that difference is divided by the
    PEs one unit serves in it.
    """
    terms = {_params(r).get("fmt"): r for r in rows
             if r["unit"] == "mx_block_term" and (r["target"], r["mapping"]) == HEADLINE_RUN and r["fits"]}
    if not {"mxfp4", "nvfp4"} <= set(terms):
        return None
    nv, mx = terms["nvfp4"], terms["mxfp4"]
    result = {"nvfp4": nv["lut_equiv"], "mxfp4": mx["lut_equiv"], "multiply": nv["lut_equiv"] - mx["lut_equiv"],
              "ff": nv["ff"] - mx["ff"], "nvfp4_mhz": _median_fmax(nv), "mxfp4_mhz": _median_fmax(mx),
              "sharing": None}
    if nvfp4_cost and nvfp4_cost["unit"] == MX_ARRAY_UNIT:
        rows_, cols = nvfp4_cost["size"]
        sharing = min(rows_, group_rows(MX_BLOCKS["nvfp4"], cols)) * cols
        result.update(sharing=sharing, per_pe=result["multiply"] / sharing)
    return result


def _placed_fmax(row):
    return [f for f in row["fmax_by_seed"].values() if f is not None]


def _median_fmax(row):
    fmax = _placed_fmax(row)
    return statistics.median(fmax) if fmax else None


def collect(build, record=RECORD):
    """The per-format entries (cost or None, chip GMAC/s, gaps) and what their inputs were; each accuracy
    column comes from the first training table (:func:`training_tables`) that has its row."""
    build = Path(build)
    synth = _load(build / "synth" / "report.json")
    chip, chip_where = chip_level.load_report(build)
    tables = training_tables(build, record)
    sources = [next(((results, command, where) for results, command, where in tables
                     if gap(results, "fourbit", dataset, model) is not None), (None, None, None))
               for dataset, model, *_ in ACCURACY_ROWS]
    rows = synth["rows"] if synth else []
    entries = [{"format": name, "scheme": scheme, "cost": cost(rows, array_unit, row_format),
                "chip": chip_entry(chip, scheme or "fp16", chip_where),
                "gaps": [gap(results, scheme, dataset, model) if scheme else None
                         for (dataset, model, *_), (results, _, _) in zip(ACCURACY_ROWS, sources)]}
               for name, scheme, array_unit, row_format in FORMATS]
    train_sources = [{"column": heading, "command": command, "path": where,
                      "epochs": next((r.get("epochs") for r in results["rows"]
                                      if (r["dataset"], r["model"]) == (dataset, model)), None)}
                     for (dataset, model, heading, *_), (results, command, where) in zip(ACCURACY_ROWS, sources)
                     if results is not None]
    nvfp4_cost = next(e["cost"] for e in entries if e["scheme"] == "nvfp4")
    return {"entries": entries, "train_sources": train_sources, "scale_multiply": scale_multiply(rows, nvfp4_cost)}


# ---------------------------------------------------------------------------------------------
# Rendering


def _gap(value, unit):
    return f"{value:+.2f} {unit}".replace("-", "−")


def table_rows(data):
    """The table's cells: one list of strings per format."""
    rows = []
    for entry in data["entries"]:
        c = entry["cost"]
        if c:
            seeds = "" if c["seeds"] >= 3 else f" ({c['seeds']} seed{'s' * (c['seeds'] > 1)})"
            cells = [c["design"], f"{c['lut_equiv']:,.0f}", f"{c['ff']:,.0f}", f"{c['dsp']:g}",
                     f"{c['fmax_mhz']:.1f}{seeds}", report._si(c["mac_per_s_per_klut"])]
        else:
            cells = [not_measured("make synth")] + ["not measured"] * 5
        cells.append(entry["chip"] or not_measured("make chip"))
        for value, (_, _, _, unit, command) in zip(entry["gaps"], ACCURACY_ROWS):
            cells.append("reference (no FP16 training run)" if entry["scheme"] is None
                         else _gap(value, unit) if value is not None else not_measured(command))
        rows.append([entry["format"], *cells])
    return rows


def notes(data):
    """The sentences under the table: sources, the MXFP4 goal, the NVFP4 scale multiply."""
    costs = {e["format"]: e["cost"] for e in data["entries"]}
    lines = [f"Per PE on {HEADLINE_RUN[0].upper()} {HEADLINE_RUN[1].upper()}-only (build/synth/report.json): "
             "an array's PE is the array ÷ R × C with its edge logic; a row's PE carries its share of the row's "
             "shared float32 unit; Fmax is the median of 3 nextpnr seeds unless a cell says fewer; MAC/s per 1k "
             "LUT = Fmax ÷ LUT-equiv per PE. FP16 is the FP16 PE with the most MAC/s per 1k LUT. Chip GMAC/s: the "
             "largest array of the format that places on the ECP5-85F (build/chip/chip.json, `make chip`, else its "
             "committed record docs/chip_table.json, each cell with the date it was measured; its "
             "FP16 array may have another PE than this table's FP16 row, and the chip report's estimate with the "
             "pipelined PE follows it)."]
    dates = sorted(c["date"] for c in costs.values() if c and c.get("date"))
    if dates:
        lines[0] += f" Synthesis rows of {dates[0]}" + (f" to {dates[-1]}." if dates[-1] != dates[0] else ".")
    if data["train_sources"]:
        sources = "; ".join(
            f"{source['column']} from {source['path']}"
            + (f" (the quick table: digits-MLP only, {source['epochs']} epochs)"
               if source["command"] == "make train-quick" else "") for source in data["train_sources"])
        lines.append(f"Accuracy gap = FP32 − format, test accuracy points on digits-MLP, and the character "
                     f"LM's validation bits per character above FP32's in %: {sources}; positive is worse.")
    fourbit, mx = costs["fourbit radix-4"], costs["MXFP4"]
    if fourbit and mx:
        ratio = mx["lut_equiv"] / fourbit["lut_equiv"]
        met = ratio <= MX_AREA_GOAL and mx["fmax_mhz"] >= fourbit["fmax_mhz"]
        lines.append(f"MXFP4 PE: {ratio:.2f}× the LUT-equiv of fourbit's PE at {mx['fmax_mhz']:.1f} against "
                     f"{fourbit['fmax_mhz']:.1f} MHz: the goal (≤ {MX_AREA_GOAL}× at ≥ the same Fmax) is "
                     f"{'met' if met else 'missed'}.")
    scale = data["scale_multiply"]
    if scale:
        line = (f"NVFP4's FP8 scale multiply (mx_block_term, measured alone with its registers, 1 seed): "
                f"{scale['nvfp4']:,.0f} LUT-equiv against {scale['mxfp4']:,.0f} for MXFP4's exponent add, so "
                f"{scale['multiply']:,.0f} LUT-equiv and {scale['ff']:,.0f} FF more per float32 unit")
        if scale["sharing"]:
            line += f", {scale['per_pe']:,.1f} per PE where one unit serves {scale['sharing']} PEs (the NVFP4 array above)"
        mhz = [f"{scale[key]:.1f} MHz" if scale[key] else "unplaced" for key in ("nvfp4_mhz", "mxfp4_mhz")]
        lines.append(line + f"; alone it places at {mhz[0]} (the exponent add at {mhz[1]}).")
    else:
        lines.append("NVFP4's FP8 scale multiply: " + not_measured("make synth") + " (mx_block_term).")
    mx_array, nv_array = (costs[name] for name in ("MXFP4", "NVFP4"))
    if (mx_array and nv_array and mx_array["unit"] == nv_array["unit"] == MX_ARRAY_UNIT
            and mx_array["pes"] == nv_array["pes"]):
        lines.append(f"In the MX arrays of {mx_array['pes']} PEs, NVFP4 costs "
                     f"{nv_array['lut_equiv'] - mx_array['lut_equiv']:,.0f} LUT-equiv per PE more than MXFP4 (its "
                     f"scale multiply and wider float32 unit, shared by the PEs, less its narrower block sums) and "
                     f"places at {nv_array['fmax_mhz']:.1f} against {mx_array['fmax_mhz']:.1f} MHz.")
    return lines


def markdown(data):
    """The table and its notes as Markdown."""
    lines = ["| " + " | ".join(HEADER) + " |", "|---|---|" + "---:|" * (len(HEADER) - 2)]
    lines += ["| " + " | ".join(row) + " |" for row in table_rows(data)]
    return "\n".join(lines + [""] + [f"{line}\n" for line in notes(data)]).rstrip() + "\n"


def plot(data, path):
    """The accuracy gap of each format against its MAC/s per 1k LUT, one series per training row
    (line: the Pareto front); returns the path, or None when no format has both figures."""
    series = []
    for index, (dataset, model, heading, unit, _) in enumerate(ACCURACY_ROWS):
        pts = [{"label": e["format"], "efficiency": e["cost"]["mac_per_s_per_klut"] / 1e6, "gap": e["gaps"][index]}
               for e in data["entries"] if e["cost"] and e["gaps"][index] is not None]
        if pts:
            series.append((f"{dataset}-{model} ({unit})", pts))
    if not series:
        return None
    fig, ax = sweep.new_axes()
    for e in data["entries"]:
        if e["scheme"] is None and e["cost"]:
            ax.axvline(e["cost"]["mac_per_s_per_klut"] / 1e6, color="grey", linestyle="--", linewidth=0.8,
                       label=f"{e['format']} ({e['cost']['design']}; no training run)")
    for label, pts in series:
        sweep.scatter_with_front(ax, pts, "efficiency", "gap", sweep.pareto(pts, cost="gap", gain="efficiency"),
                                 label, where="pre", names=pts)
    ax.axhline(0, color="grey", linewidth=0.8)
    return sweep.save(fig, ax, path, "MAC/s per 1k LUT-equiv (millions; ECP5-85F LUT-only, per PE)",
                      "gap to FP32 (accuracy points; LM: % more bpc)",
                      "4-bit formats: accuracy gap against silicon efficiency (line: Pareto front)")


def readme(text, table):
    """``text`` with the part between :data:`MARKERS` replaced by ``table``; ValueError without the markers."""
    begin, end = MARKERS
    head, found, rest = text.partition(begin)
    _, found_end, tail = rest.partition(end)
    if not found or not found_end:
        raise ValueError(f"the README has no {begin!r} ... {end!r} markers")
    stamp = tools.utc_stamp()
    return f"{head}{begin}\n\nGenerated {stamp} from build/ by `python -m synth.formats`.\n\n{table}\n{end}{tail}"


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m synth.formats", description=__doc__.splitlines()[0])
    parser.add_argument("--build", default="build", type=Path, help="the build folder (default: %(default)s)")
    parser.add_argument("--readme", type=Path, help="rewrite this README's table between its markers")
    args = parser.parse_args(argv)
    table = markdown(collect(args.build))
    print(table, end="")
    if args.readme:
        try:
            args.readme.write_text(readme(args.readme.read_text(), table))
        except (OSError, ValueError) as error:
            print(f"python -m synth.formats: {args.readme}: {error}", file=sys.stderr)
            return 1
        print(f"== synth.formats: table written into {args.readme}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
