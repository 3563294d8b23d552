"""``python -m testbench``: run the cocotb benches and write build/sim/summary.json.

Options fall back to the environment: SIM, UNIT, SEED (an integer or ``random``), LONG=1 for
the long regression, WAVES=1 for waveforms in each build folder and JOBS for the number of
simulator runs at a time (default: one per core; the longest runs start first). The default
level is ``full`` (what ``make sim`` runs); ``--quick`` is what ``make test`` runs. The long
regression runs on Dask distributed: a local cluster of JOBS workers, or the cluster at
``--scheduler`` / DASK_SCHEDULER (see synth/cluster.py for starting workers); a named scheduler
takes the runs of any level.
"""

import argparse
import os
import sys
from contextlib import ExitStack
from functools import partial

from synth import cluster, jobs

from . import runner, summary
from .summary import SUMMARY
from .units import BENCHES, SIMULATORS

#: Wall seconds of the longest full-level run of each unit (build included) on an idle 2-core machine
#: (2026-12-04, scaled for the smaller Verilator builds and vector counts since): they order a first
#: run, before build/sim/times.json holds this machine's own times.
REFERENCE_SECONDS = {
    ("icarus", "int4_mac_pair_dsp"): 44, ("icarus", "mx_array"): 40, ("icarus", "fp16_mac"): 27,
    ("icarus", "fp16_pipe_mac"): 27, ("icarus", "training_array"): 25, ("icarus", "int4_mac"): 23,
    ("icarus", "radix4_quantizer"): 14, ("icarus", "shift_mac"): 14, ("icarus", "grad_scale"): 13,
    ("icarus", "fp16_array"): 9, ("icarus", "mx_row"): 9, ("icarus", "fp32_scaled_add"): 7, ("icarus", "mx_block_term"): 20,
    ("icarus", "training_core"): 1000,
    ("verilator", "training_core"): 48, ("verilator", "training_array"): 26, ("verilator", "mx_array"): 20,
    ("verilator", "int4_mac"): 14, ("verilator", "int4_mac_pair_dsp"): 14, ("verilator", "grad_scale"): 12,
    ("verilator", "fp16_mac"): 10, ("verilator", "fp16_pipe_mac"): 10, ("verilator", "radix4_quantizer"): 10,
    ("verilator", "shift_mac"): 9, ("verilator", "fp16_array"): 8, ("verilator", "mx_row"): 7,
    ("verilator", "fp32_scaled_add"): 5, ("verilator", "mx_block_term"): 10,
}


def estimated_seconds(target):
    return REFERENCE_SECONDS.get((target.sim, target.unit), 15)


def history_key(target, level):
    return f"{level}/{target.sim}/{target.name}"


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m testbench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sim", default=os.environ.get("SIM") or "all",
                        help=f"{' | '.join(SIMULATORS)} | all (default: $SIM, else all)")
    parser.add_argument("--unit", default=os.environ.get("UNIT") or "all",
                        help=f"{' | '.join(BENCHES)} | all (default: $UNIT, else all)")
    level = parser.add_mutually_exclusive_group()
    level.add_argument("--long", dest="level", action="store_const", const="long",
                       help="long regression: >= 1M random MACs per unit and simulator, more configurations")
    level.add_argument("--quick", dest="level", action="store_const", const="quick",
                       help="quick regression (as in make test)")
    parser.add_argument("--seed", default=os.environ.get("SEED"),
                        help=f"integer or 'random' (default: $SEED, else {runner.DEFAULT_SEED})")
    parser.add_argument("--jobs", "-j", metavar="N", help="simulator runs at a time (default: $JOBS, else one per core)")
    parser.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                        help="Dask scheduler for the runs (default: $DASK_SCHEDULER; without one, the long regression "
                             "runs on a local Dask cluster, the others in a local process pool)")
    args = parser.parse_args(argv)
    chosen = args.level or ("long" if os.environ.get("LONG", "") not in ("", "0") else "full")
    try:  # a bad SIM/UNIT/SEED/JOBS: one line, before any work
        seed = runner.resolve_seed(args.seed)
        selected = runner.targets(args.sim, args.unit, chosen)
        n_jobs = jobs.job_count(args.jobs)
        address = cluster.scheduler_address(args.scheduler)
    except ValueError as error:
        print(f"python -m testbench: {error}", file=sys.stderr)
        return 2

    history = jobs.History(runner.SIM_BUILD / "times.json")
    targets = jobs.longest_first(selected, partial(history_key, level=chosen), estimated_seconds, history)
    results = []
    print(f"{'unit / configuration':44} {'sim':9} {'vectors':>9} {'bad':>4} {'wall s':>7} {'vectors/s':>10}  result")
    job = partial(runner.run, level=chosen, seed=seed, record=False)  # recorded here, not on the worker
    jobs.quiet_interrupts()
    try:
        with ExitStack() as stack:
            if chosen == "long" or address is not None:
                client = stack.enter_context(cluster.client(address, n_jobs))
                finished = cluster.run(client, job, targets)
            else:
                finished = jobs.run(job, targets, n_jobs)
            for target, result, error in finished:
                if error is not None:
                    raise error
                summary.record(result)
                history.record(history_key(target, chosen), result.wall_seconds + result.build_seconds)
                results.append(result)
                rate = result.vectors / result.wall_seconds if result.wall_seconds else 0
                print(f"{target.name:44} {target.sim:9} {result.vectors:9d} {result.mismatches:4d} "
                      f"{result.wall_seconds:7.1f} {rate:10.0f}  {'PASS' if result.passed else 'FAIL'}", flush=True)
    except KeyboardInterrupt:
        print(f"\npython -m testbench: interrupted (Ctrl-C) during simulation; {len(results)} of {len(targets)} "
              f"runs had finished and are recorded in {SUMMARY}", file=sys.stderr)
        return 130
    failed = [r for r in results if not r.passed]
    for result in failed:
        print(result.report(), file=sys.stderr)
    print(f"{len(results) - len(failed)}/{len(results)} runs passed ({chosen} regression, seed {seed}); "
          f"summary: {SUMMARY}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
