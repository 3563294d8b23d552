"""``python -m synth [--quick] [--all-runs] [--designs ...] [--arrays N ...] [--fp16-arrays N ...] [--seeds N] [--large] [--jobs N]``: synthesize, place, report.

Writes the Verilog of each design to build/verilog/, runs Yosys and nextpnr for each design,
target, mapping and seed (by default the runs of :func:`synth.designs.default_flow`; ``--all-runs``:
every target and mapping of every design) (cached under build/synth/cache/), ``--jobs`` of them at a time, the
longest first, and merges the rows into build/synth/report.json, report.md and the array plots:
rows of the designs run are replaced, the other rows stay with the date they were made
(``--fresh`` starts a new report). ``python -m synth sweep --help`` describes design-space sweeps.
"""

import argparse
import json
import sys
import time
from pathlib import Path

from . import designs as designs_mod
from . import jobs, report
from .runs import PlaceRun, estimated_seconds, place


def _parser():
    parser = argparse.ArgumentParser(prog="python -m synth", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="PEs and the smallest array on ECP5 LUT-only, one seed")
    parser.add_argument("--all-runs", action="store_true",
                        help="every target and mapping of every design (make synth-extra), not only the "
                             "default flow's: the PEs and the 2x2 array everywhere, bigger arrays on ECP5, "
                             "the other designs on ECP5 LUT-only")
    parser.add_argument("--designs", nargs="+", metavar="NAME",
                        help="unit names or globs on design (module) names")
    parser.add_argument("--seeds", type=int, default=3,
                        help="seeds for the headline rows, Fmax is their median (default: %(default)s)")
    parser.add_argument("--arrays", nargs="+", type=int, metavar="N", default=list(designs_mod.ARRAY_SIZES),
                        help="sides of the square training arrays (default: %(default)s; make synth-large: 8)")
    parser.add_argument("--fp16-arrays", nargs="+", type=int, metavar="N", default=list(designs_mod.FP16_ARRAY_SIZES),
                        help="sides of the square FP16 training arrays (default: %(default)s; make synth-large: 4)")
    parser.add_argument("--large", action="store_true", help="also the 16x16 array")
    parser.add_argument("--fresh", action="store_true", help="replace the report instead of merging into it")
    parser.add_argument("--jobs", "-j", metavar="N",
                        help="place-and-route runs at a time (default: $JOBS, else one per core)")
    parser.add_argument("--verilog-dir", default="build/verilog", help="default: %(default)s")
    parser.add_argument("--out-dir", default="build/synth", help="default: %(default)s")
    return parser


def plan(designs, seeds_headline):
    """``[(design, target, mapping, seeds)]`` in report order."""
    jobs_ = []
    for design in designs:
        for target, mapping in design.runs:
            headline = design.headline and (target, mapping) == designs_mod.HEADLINE_RUN
            jobs_.append((design, target, mapping, list(range(1, (seeds_headline if headline else 1) + 1))))
    return jobs_


def _verilog(design, generate, verilog_dir):
    path = Path(generate.write_verilog(design.unit, design.params, verilog_dir))
    if not path.is_file() or path.stat().st_size == 0:
        raise SystemExit(f"python -m synth: Verilog generation of {design.label} did not write {path}")
    return str(path)


def _previous_report(out_dir):
    path = Path(out_dir) / "report.json"
    if not path.is_file():
        return [], []
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise SystemExit(f"python -m synth: cannot merge into {path}: {error}; delete it and rerun") from None
    return data.get("rows", []), [tuple(run) for run in data.get("runs", [])]


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["sweep"]:
        from . import sweep
        return sweep.main(argv[1:])
    args = _parser().parse_args(argv)
    if args.seeds < 1:
        raise SystemExit(f"python -m synth: --seeds must be >= 1, got {args.seeds}")
    try:
        n_jobs = jobs.job_count(args.jobs)
    except ValueError as error:
        raise SystemExit(f"python -m synth: {error}") from None
    from rtl import generate

    for option, sides in (("--arrays", args.arrays), ("--fp16-arrays", args.fp16_arrays)):
        if any(side < 1 for side in sides):
            raise SystemExit(f"python -m synth: {option} must be positive sides, got {sides}")
    designs = designs_mod.default_designs(generate, large=args.large, array_sizes=args.arrays,
                                          fp16_array_sizes=args.fp16_arrays)
    if args.designs:
        try:
            designs = designs_mod.select(designs, args.designs, generate)
        except ValueError as error:
            raise SystemExit(f"python -m synth: {error}")
    seeds = args.seeds
    if not args.all_runs:
        designs = designs_mod.default_flow(designs)
    if args.quick:
        designs, seeds = designs_mod.quick(designs), 1
    combos = plan(designs, seeds)
    cache = str(Path(args.out_dir) / "cache")
    verilog = {}
    runs = []
    for design, target, mapping, seed_list in combos:
        module = design.module(generate)
        if module not in verilog:
            verilog[module] = _verilog(design, generate, args.verilog_dir)
        runs += [PlaceRun(design, module, verilog[module], target, mapping, seed, cache) for seed in seed_list]
    print(f"== synth: {len(designs)} designs, {len(combos)} design/target/mapping combinations, "
          f"{len(runs)} place-and-route runs, {n_jobs} at a time (cache: {cache})", flush=True)

    history = jobs.History(Path(args.out_dir) / "times.json")
    ordered = jobs.longest_first(runs, lambda r: r.key, estimated_seconds, history)
    results, failures = {}, []
    start = time.monotonic()
    for done, (run, result, error) in enumerate(jobs.run(place, ordered, n_jobs), 1):
        prefix = f"[{done:3d}/{len(runs)}] {run.design.label:40s} {run.target}/{run.mapping} seed {run.seed}"
        if error is not None:
            failures.append(f"{run.design.label} on {run.target}/{run.mapping} seed {run.seed}: {error}")
            print(f"{prefix} FAILED\n{error}", flush=True)
            continue
        results[run] = result
        if not result["cached"]:
            history.record(run.key, result["wall_seconds"])
        fmax = f"{result['fmax_mhz']:.1f} MHz" if result["fmax_mhz"] else f"does not fit ({result['error']})"
        how = "cached" if result["cached"] else f"{result['wall_seconds']:.1f} s"
        print(f"{prefix} {result['lut_equiv']} LUT-equiv, {result['ff']} FF, "
              f"{result['dsp']} DSP, {fmax} ({how})", flush=True)
    rows = []
    for design, target, mapping, seed_list in combos:
        done = [results[r] for r in runs if (r.design, r.target, r.mapping) == (design, target, mapping)
                and r in results]
        if done:
            rows.append(report.make_row(design, done[0]["top"], done))
    planned = {(t, m) for _, t, m, _ in combos}
    if not args.fresh:
        previous_rows, previous_runs = _previous_report(args.out_dir)
        rows = report.merge_rows(previous_rows, rows)
        planned |= set(previous_runs)
    ordered_runs = sorted(planned, key=list(designs_mod.ALL_RUNS).index)
    written = report.write(rows, ordered_runs, args.out_dir, seeds, failures)
    print(f"== synth: {time.monotonic() - start:.0f} s; report: {args.out_dir}/report.md", flush=True)
    if written["headline"]["baseline"] is None:
        print("   no FP16 baseline in this run: no 4-bit vs 16-bit ratio")
    else:
        for entry in written["headline"]["entries"]:
            print("   " + report.verdict(entry))
    if failures:
        print(f"== synth: {len(failures)} run(s) failed, see the report", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    jobs.quiet_interrupts()
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit("\npython -m synth: interrupted (Ctrl-C) during synthesis / place-and-route; finished runs "
                 "stay in the cache (build/synth/cache by default) and are not repeated next time")
