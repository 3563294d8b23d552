"""``python -m testbench``: run the cocotb benches and write build/sim/summary.json.

Options fall back to the environment: SIM, UNIT, SEED (an integer or ``random``), LONG=1 for
the long regression and WAVES=1 for waveforms in each build folder. The default level is
``full`` (what ``make sim`` runs); ``--quick`` is what ``make test`` runs.
"""

import argparse
import os
import sys

from . import runner
from .summary import SUMMARY
from .units import BENCHES, SIMULATORS


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m testbench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sim", choices=[*SIMULATORS, "all"], default=os.environ.get("SIM") or "all")
    parser.add_argument("--unit", choices=[*BENCHES, "all"], default=os.environ.get("UNIT") or "all")
    level = parser.add_mutually_exclusive_group()
    level.add_argument("--long", dest="level", action="store_const", const="long",
                       help="long regression: >= 1M random MACs per unit and simulator, more configurations")
    level.add_argument("--quick", dest="level", action="store_const", const="quick",
                       help="quick regression (as in make test)")
    parser.add_argument("--seed", default=os.environ.get("SEED"),
                        help=f"integer or 'random' (default: $SEED, else {runner.DEFAULT_SEED})")
    args = parser.parse_args(argv)
    chosen = args.level or ("long" if os.environ.get("LONG", "") not in ("", "0") else "full")
    seed = runner.resolve_seed(args.seed)

    results = []
    print(f"{'unit / configuration':44} {'sim':9} {'vectors':>9} {'bad':>4} {'wall s':>7} {'vectors/s':>10}  result")
    for target in runner.targets(args.sim, args.unit, chosen):
        result = runner.run(target, level=chosen, seed=seed)
        results.append(result)
        rate = result.vectors / result.wall_seconds if result.wall_seconds else 0
        print(f"{target.name:44} {target.sim:9} {result.vectors:9d} {result.mismatches:4d} "
              f"{result.wall_seconds:7.1f} {rate:10.0f}  {'PASS' if result.passed else 'FAIL'}", flush=True)
    failed = [r for r in results if not r.passed]
    for result in failed:
        print(result.report(), file=sys.stderr)
    print(f"{len(results) - len(failed)}/{len(results)} runs passed ({chosen} regression, seed {seed}); "
          f"summary: {SUMMARY}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
