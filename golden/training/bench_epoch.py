"""Epoch-time benchmark: 4-bit vs FP32 training epochs of the same model in the same code.

``python -m golden.training.bench_epoch`` trains every dataset/model pair of the full table (golden.training.table.FULL)
for one epoch under ``fp32``, ``fourbit``, ``mxfp4`` and ``nvfp4``, in turn and a few times (seed 0, one BLAS
thread as in golden.training.table), and writes ``build/train/epoch_time.json``: per pair the median CPU and wall
seconds of a training epoch (evaluation excluded) per scheme and each 4-bit scheme's ratio to fp32 (target: <= 3x).
"""

import argparse
import json
import os
import pathlib
import statistics
import sys
import time

import numpy as np

from . import data as datasets
from . import language
from .runtime import single_blas_thread
from .table import FULL, OUT_DIR, TIME_RATIO_TARGET
from .train import RunConfig, positive_int, run

PAIRS = tuple(f"{entry.dataset}-{entry.model}" for entry in FULL)
SCHEMES = ("fp32", "fourbit", "mxfp4", "nvfp4")


def epoch_seconds(dataset, model, scheme, data=None):
    """CPU and wall seconds of the training pass of a one-epoch seed-0 run (evaluation excluded)."""
    config = RunConfig(dataset, model, scheme, 1)
    result = language.run(config, text=data) if dataset == language.DATASET else run(config, dataset=data)
    history = result["history"][0]
    return history["train_cpu_seconds"], history["train_seconds"]


def bench(pairs=PAIRS, repeats=5):
    """``{pair: {scheme: median times, ..., "ratio": fourbit's CPU ratio, "wall_ratio": its wall ratio,
    "ratios": {scheme: CPU ratio}}}``.

    The schemes' epochs alternate, so a machine shared with other jobs slows all alike.
    """
    out = {}
    for pair in pairs:
        dataset, model = pair.split("-")
        data = language.load_text() if dataset == language.DATASET else datasets.load(dataset)
        samples = {scheme: [] for scheme in SCHEMES}
        for _ in range(repeats):
            for scheme in SCHEMES:
                samples[scheme].append(epoch_seconds(dataset, model, scheme, data))
        times = {scheme: {"cpu_seconds": statistics.median(cpu for cpu, _ in runs),
                          "wall_seconds": statistics.median(wall for _, wall in runs),
                          "cpu_seconds_per_epoch": [cpu for cpu, _ in runs]}
                 for scheme, runs in samples.items()}
        out[pair] = {**times, "ratio": times["fourbit"]["cpu_seconds"] / times["fp32"]["cpu_seconds"],
                     "wall_ratio": times["fourbit"]["wall_seconds"] / times["fp32"]["wall_seconds"],
                     "ratios": {scheme: times[scheme]["cpu_seconds"] / times["fp32"]["cpu_seconds"]
                                for scheme in SCHEMES[1:]}}
    return out


def _pair(text):
    if text not in PAIRS:
        raise argparse.ArgumentTypeError(f"must be one of {', '.join(PAIRS)}, got {text!r}")
    return text


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m golden.training.bench_epoch", description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", nargs="+", type=_pair, default=PAIRS, help=f"default: {' '.join(PAIRS)}")
    parser.add_argument("--repeats", type=positive_int, default=5,
                        help="one-epoch runs per scheme and pair, the schemes in turn (median; default 5)")
    parser.add_argument("--out", type=pathlib.Path, default=OUT_DIR / "epoch_time.json")
    args = parser.parse_args(argv)
    single_blas_thread()        # like golden.training.table: one warmed-up BLAS thread per run
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    results = bench(args.pairs, args.repeats)
    report = {"repeats": args.repeats, "seed": 0, "blas_threads": 1, "blas_warm_up": True,
              "target_ratio": TIME_RATIO_TARGET,
              "load_average_before": load_before, "load_average_after": os.getloadavg()[0],
              "wall_seconds": time.perf_counter() - started, "pairs": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    for pair, r in results.items():
        print(f"{pair:18s} fp32 {r['fp32']['cpu_seconds']:.3f} s  " + "  ".join(
            f"{scheme} {r[scheme]['cpu_seconds']:.3f} s ({ratio:.2f}x)" for scheme, ratio in r["ratios"].items()))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
