"""``python -m testbench.formal``: run the formal proofs with SymbiYosys, write build/formal/summary.json.

Each job runs in build/formal/<property>/; a failing proof prints where its counterexample
trace (a VCD file) is. ``--quick`` runs the proofs that ``make test`` runs.
"""

import argparse
import json
import sys
from pathlib import Path

from . import sby
from .properties import BY_NAME, PROPERTIES

BUILD = Path("build") / "formal"
SUMMARY = BUILD / "summary.json"


def prove(prop, build=BUILD, timeout=None, **variant):
    """Run one property (or a mutant of its design) and return the sby outcome."""
    folder = build / (prop.name if not variant else f"{prop.name}__mutant")
    return sby.run(prop.harness(**variant), folder, mode=prop.mode, depth=prop.depth, timeout=timeout)


def record(prop, outcome, summary=SUMMARY):
    """Merge one result into the summary (other properties' entries are kept)."""
    entries = json.loads(summary.read_text()) if summary.exists() else []
    entries = [entry for entry in entries if entry["property"] != prop.name and entry["property"] in BY_NAME]
    entries.append({"property": prop.name, "claim": prop.claim, "mode": prop.mode, "depth": prop.depth,
                    "result": outcome.result, "seconds": round(outcome.seconds, 2), "quick": prop.quick})
    entries.sort(key=lambda entry: list(BY_NAME).index(entry["property"]))
    summary.parent.mkdir(parents=True, exist_ok=True)
    summary.write_text(json.dumps(entries, indent=2) + "\n")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m testbench.formal", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="only the proofs that make test runs")
    parser.add_argument("--timeout", type=float, default=1800, metavar="SECONDS",
                        help="per proof; a proof that takes longer is recorded as TIMEOUT (default: %(default)s)")
    parser.add_argument("names", nargs="*", metavar="PROPERTY", help="properties to run (default: all)")
    args = parser.parse_args(argv)
    unknown = [name for name in args.names if name not in BY_NAME]
    if unknown:
        parser.error(f"unknown property {unknown[0]!r}; choose from {', '.join(BY_NAME)}")
    chosen = [BY_NAME[name] for name in args.names] or [p for p in PROPERTIES if p.quick or not args.quick]

    print(f"{'property':34} {'mode':6} {'depth':>5} {'time s':>7}  result", flush=True)
    failed = []
    prop = None
    try:
        for prop in chosen:
            outcome = prove(prop, timeout=args.timeout)
            record(prop, outcome)
            print(f"{prop.name:34} {prop.mode:6} {prop.depth:5d} {outcome.seconds:7.1f}  {outcome.result}",
                  flush=True)
            if not outcome.passed:
                failed.append((prop, outcome))
    except KeyboardInterrupt:
        print(f"\npython -m testbench.formal: interrupted (Ctrl-C) while proving {prop.name}; the finished "
              f"proofs are recorded in {SUMMARY}", file=sys.stderr)
        return 130
    for prop, outcome in failed:
        print(f"\n{prop.name}: {outcome.result} -- {prop.claim}", file=sys.stderr)
        print(outcome.counterexample_help() or f"  no trace; sby log: {outcome.workdir / 'logfile.txt'}",
              file=sys.stderr)
    print(f"{len(chosen) - len(failed)}/{len(chosen)} properties hold; summary: {SUMMARY}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
