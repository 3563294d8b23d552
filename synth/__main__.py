"""``python -m synth [--quick] [--designs ...] [--seeds N] [--large]``: synthesize, place, report.

Writes the Verilog of each design to build/verilog/, runs Yosys and nextpnr for each design,
target and mapping (cached under build/synth/cache/), and writes build/synth/report.json,
report.md and the array plots.
"""

import argparse
import sys
import time
from pathlib import Path

from . import designs as designs_mod
from . import flow, report


def _parser():
    parser = argparse.ArgumentParser(prog="python -m synth", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="PEs and the smallest array on ECP5 LUT-only, one seed")
    parser.add_argument("--designs", nargs="+", metavar="NAME",
                        help="unit names or globs on design (module) names")
    parser.add_argument("--seeds", type=int, default=3,
                        help="seeds for the headline rows, Fmax is their median (default: %(default)s)")
    parser.add_argument("--large", action="store_true", help="also the 16x16 array")
    parser.add_argument("--verilog-dir", default="build/verilog", help="default: %(default)s")
    parser.add_argument("--out-dir", default="build/synth", help="default: %(default)s")
    return parser


def plan(designs, seeds_headline):
    """``[(design, target, mapping, seeds)]`` in run order."""
    jobs = []
    for design in designs:
        for target, mapping in design.runs:
            headline = design.headline and (target, mapping) == designs_mod.HEADLINE_RUN
            jobs.append((design, target, mapping, list(range(1, (seeds_headline if headline else 1) + 1))))
    return jobs


def main(argv=None):
    args = _parser().parse_args(argv)
    if args.seeds < 1:
        raise SystemExit(f"python -m synth: --seeds must be >= 1, got {args.seeds}")
    from rtl import generate

    designs = designs_mod.default_designs(generate, large=args.large)
    if args.designs:
        try:
            designs = designs_mod.select(designs, args.designs, generate)
        except ValueError as error:
            raise SystemExit(f"python -m synth: {error}")
    seeds = args.seeds
    if args.quick:
        designs, seeds = designs_mod.quick(designs), 1
    jobs = plan(designs, seeds)
    total_runs = sum(len(job[3]) for job in jobs)
    print(f"== synth: {len(designs)} designs, {len(jobs)} design/target/mapping combinations, "
          f"{total_runs} place-and-route runs (cache: {args.out_dir}/cache)", flush=True)

    cache = Path(args.out_dir) / "cache"
    rows, failures, done = [], [], 0
    start = time.monotonic()
    verilog = {}
    for design, target, mapping, seed_list in jobs:
        module = design.module(generate)
        if module not in verilog:
            verilog[module] = generate.write_verilog(design.unit, design.params, args.verilog_dir)
        path = verilog[module]
        results = []
        for seed in seed_list:
            done += 1
            prefix = f"[{done:3d}/{total_runs}] {design.label:40s} {target}/{mapping} seed {seed}"
            print(f"{prefix} ...", flush=True)
            run_start = time.monotonic()
            try:
                result = flow.run(path, module, target, mapping, seed, cache, log=print)
            except flow.FlowError as error:
                failures.append(f"{design.label} on {target}/{mapping} seed {seed}: {error}")
                print(f"{prefix} FAILED\n{error}", flush=True)
                continue
            results.append(result)
            fmax = f"{result['fmax_mhz']:.1f} MHz" if result["fmax_mhz"] else f"does not fit ({result['error']})"
            how = "cached" if result["cached"] else f"{time.monotonic() - run_start:.1f} s"
            print(f"{prefix} {result['lut_equiv']} LUT-equiv, {result['ff']} FF, "
                  f"{result['dsp']} DSP, {fmax} ({how})", flush=True)
        if results:
            rows.append(report.make_row(design, module, results))
    runs = sorted({(t, m) for _, t, m, _ in jobs}, key=list(designs_mod.ALL_RUNS).index)
    written = report.write(rows, runs, args.out_dir, seeds, failures)
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
    sys.exit(main())
