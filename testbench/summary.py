"""build/sim/summary.json: vectors, mismatches, wall seconds, vectors/s and seed per unit and simulator.

For each regression level (quick, full, long), ``levels.<level>.runs`` holds the latest run of
every target (``<sim>/<module>``, with per-test counts and times) and ``levels.<level>.units``
aggregates them per unit and simulator. ``mutants`` holds the deliberately broken targets, which
must fail. Runs from several processes merge under a file lock.
"""

import fcntl
import json
import time
from pathlib import Path

SUMMARY = Path(__file__).resolve().parents[1] / "build" / "sim" / "summary.json"


def entry(result):
    """JSON-ready description of a :class:`testbench.runner.RunResult`."""
    target = result.target
    tests = {r["test"]: {"vectors": r["vectors"], "mismatches": r["mismatches"], "seconds": r["seconds"],
                         "vectors_per_second": _rate(r["vectors"], r["seconds"])} for r in result.records}
    return {
        "unit": target.unit,
        "module": target.module,
        "simulator": target.sim,
        "parameters": target.bench_params,
        "mutant": target.mutant.name if target.mutant else None,
        "level": result.level,
        "seed": result.seed,
        "passed": result.passed,
        "vectors": result.vectors,
        "mismatches": result.mismatches,
        "wall_seconds": round(result.wall_seconds, 3),
        "vectors_per_second": _rate(result.vectors, result.wall_seconds),
        "build_seconds": round(result.build_seconds, 3),
        "build_cached": result.build_cached,
        "tests": tests,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }


def record(result, path=SUMMARY):
    """Add ``result`` to the summary file at ``path`` and refresh the per-unit aggregates."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        data = json.loads(path.read_text()) if path.exists() else {}
        item = entry(result)
        key = f"{result.target.sim}/{result.target.name}"
        if item["mutant"]:
            data.setdefault("mutants", {})[key] = item
        else:
            level = data.setdefault("levels", {}).setdefault(result.level, {})
            level.setdefault("runs", {})[key] = item
            level["units"] = _aggregate(level["runs"].values())
        path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
        fcntl.flock(lock, fcntl.LOCK_UN)


def _aggregate(runs):
    units = {}
    for run in runs:
        total = units.setdefault(run["unit"], {}).setdefault(run["simulator"], {
            "vectors": 0, "mismatches": 0, "wall_seconds": 0.0, "seeds": [], "modules": [], "passed": True})
        total["vectors"] += run["vectors"]
        total["mismatches"] += run["mismatches"]
        total["wall_seconds"] = round(total["wall_seconds"] + run["wall_seconds"], 3)
        total["passed"] &= run["passed"]
        total["modules"].append(run["module"])
        if run["seed"] not in total["seeds"]:
            total["seeds"].append(run["seed"])
        total["vectors_per_second"] = _rate(total["vectors"], total["wall_seconds"])
    return units


def _rate(vectors, seconds):
    return round(vectors / seconds) if seconds > 0 else None
