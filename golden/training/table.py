"""The accuracy table: every scheme, dataset and model over several seeds (``make train``).

``python -m golden.training.table`` writes ``build/train/results.json``
(every run with its per-epoch history and gradient-code statistics, plus the aggregated rows, the
epoch-time ratios and the targets of docs/training.md), ``build/train/results.md`` and the PNG plots.
``--quick`` (or env FAST=1) runs only digits-MLP, fp32, fourbit, mxfp4 and nvfp4, for a few epochs, into
``build/train/quick/``. Runs go to a process pool (one BLAS thread per run); an FP32, fourbit, mxfp4 or
nvfp4 run that diverges or does not learn (golden.training.train.NotLearning) makes the exit status 1; such
an ablation run is reported as such in the table.
"""

import argparse
import json
import multiprocessing
import os
import pathlib
import sys
import time
from typing import NamedTuple

import numpy as np

from rtl.tools import utc_stamp

from . import data as datasets
from . import language
from .schemes import SCHEMES
from .runtime import single_blas_thread
from .train import TABLE_EPOCHS, Diverged, NotLearning, RunConfig, run

OUT_DIR = pathlib.Path(__file__).resolve().parents[2] / "build" / "train"
# The committed copy of the last full table (rows and targets, no runs): synth.formats fills the README's
# accuracy columns from it when the build has not run the full table.
RECORD = pathlib.Path(__file__).resolve().parents[2] / "docs" / "training_table.json"
SEEDS = (0, 1, 2)
ABLATIONS = ("all4bit", "no_tpr", "no_gradscale", "radix2", "fp16acc", "mxfp4_rn", "nvfp4_rn")
REQUIRED = ("fp32", "fourbit", "mxfp4", "nvfp4")


class Entry(NamedTuple):
    dataset: str
    model: str
    epochs: int
    schemes: tuple


LM_EPOCHS = 1
# Ablations on one MLP and one CNN (one per dataset), all-4-bit everywhere: about 1,350 CPU seconds,
# 11-12 minutes on 2 free cores (batch size and learning rate: golden.training.train.DEFAULTS).
FULL = (
    Entry("digits", "mlp", TABLE_EPOCHS["digits"], REQUIRED + ABLATIONS),
    Entry("digits", "cnn", TABLE_EPOCHS["digits"], REQUIRED + ("all4bit",)),
    Entry("mnist1d", "cnn", TABLE_EPOCHS["mnist1d"], REQUIRED + ABLATIONS),
    Entry("mnist1d", "mlp", TABLE_EPOCHS["mnist1d"], REQUIRED + ("all4bit",)),
    Entry(language.DATASET, language.MODEL, LM_EPOCHS, REQUIRED),
)
QUICK = (Entry("digits", "mlp", 8, REQUIRED),)
PAIRS = tuple(f"{entry.dataset}-{entry.model}" for entry in FULL)

# (dataset, model, scheme, maximum gap in points below fp32), the targets of docs/training.md
TARGETS = (("digits", "mlp", "fourbit", 1.0), ("digits", "cnn", "fourbit", 1.0), ("mnist1d", "cnn", "fourbit", 2.0),
           ("digits", "mlp", "mxfp4", 1.0), ("digits", "mlp", "nvfp4", 1.0),
           ("digits", "cnn", "mxfp4", 1.0), ("digits", "cnn", "nvfp4", 1.0))
# (scheme, maximum relative gap in % of the language model's validation bpc above fp32's)
LM_TARGETS = (("fourbit", 5.0), ("mxfp4", 5.0), ("nvfp4", 5.0))
TIME_RATIO_TARGET = 3.0
TIMED = ("fourbit", "mxfp4", "nvfp4")     # the 4-bit schemes whose epoch time has the target above


def _init_worker():
    single_blas_thread()


def _run_one(config):
    try:
        return language.run(config) if config.dataset == language.DATASET else run(config)
    except Diverged as error:
        return {"config": config.resolved(), "diverged": str(error)}
    except NotLearning as error:
        return {"config": config.resolved(), "not_learning": str(error)}


def run_all(plan, seeds=SEEDS, workers=None, progress=True):
    """Run every (entry, scheme, seed) of ``plan``; returns the list of run results in plan order."""
    for dataset in {entry.dataset for entry in plan} - {language.DATASET}:
        datasets.load(dataset)                      # fill the cache before the workers start
    configs = [RunConfig(e.dataset, e.model, scheme, e.epochs, seed)
               for e in plan for scheme in e.schemes for seed in seeds]
    workers = workers or min(len(configs), os.cpu_count() or 1, 2)
    # longest first (the 4-bit CNNs), so the pool's two workers finish together
    order = sorted(range(len(configs)), key=lambda i: -_cost(configs[i]))
    results = [None] * len(configs)
    bar = _bar(len(configs), progress)
    with multiprocessing.get_context("fork").Pool(workers, initializer=_init_worker) as pool:
        for index, result in pool.imap_unordered(_indexed, [(i, configs[i]) for i in order]):
            results[index] = result
            c = configs[index]
            bar.set_postfix_str(f"{c.dataset}-{c.model}-{c.scheme} s{c.seed}: "
                                + (f"{result['final_val_bpc']:.3f} bpc" if "final_val_bpc" in result
                                   else f"{100 * result['final_test_acc']:.1f}%" if not failed(result)
                                   else "diverged" if "diverged" in result else "not learning"))
            bar.update()
    bar.close()
    return results


def failed(result):
    """True for a run that diverged or did not learn (golden.training.train.NotLearning)."""
    return "diverged" in result or "not_learning" in result


def _indexed(item):
    index, config = item
    return index, _run_one(config)


def _cost(config):
    size = {"digits": 1, "mnist1d": 2, language.DATASET: 100}[config.dataset] * {"mlp": 1, "cnn": 2}.get(config.model, 1)
    return size * config.epochs * {"fp32": 1, "fp16acc": 12}.get(config.scheme, 3)


def _bar(total, enabled):
    from tqdm import tqdm
    return tqdm(total=total, desc="training runs", unit="run", file=sys.stderr, disable=not enabled)


def summarize(results):
    """Aggregate runs into table rows, epoch-time ratios and target checks."""
    groups = {}
    for r in results:
        c = r["config"]
        groups.setdefault((c["dataset"], c["model"], c["scheme"]), []).append(r)
    rows = []
    for (dataset, model, scheme), runs in groups.items():
        done = [r for r in runs if not failed(r)]
        language_model = dataset == language.DATASET
        acc = [r["final_val_bpc"] if language_model else 100 * r["final_test_acc"] for r in done]
        row = {"dataset": dataset, "model": model, "scheme": scheme, "description": SCHEMES[scheme].description,
               "metric": "val_bpc" if language_model else "test_acc",
               "epochs": runs[0]["config"]["epochs"], "batch_size": runs[0]["config"]["batch_size"],
               "lr": runs[0]["config"]["lr"], "seeds": [r["config"]["seed"] for r in runs],
               "test_acc": acc, "diverged": [r["diverged"] for r in runs if "diverged" in r],
               "not_learning": [r["not_learning"] for r in runs if "not_learning" in r],
               "acc_mean": float(np.mean(acc)) if acc else None,
               "acc_std": float(np.std(acc, ddof=1)) if len(acc) > 1 else 0.0 if acc else None,
               "epoch_seconds": float(np.mean([r["epoch_seconds"] for r in done])) if done else None,
               "epoch_cpu_seconds": float(np.mean([r["epoch_cpu_seconds"] for r in done])) if done else None,
               "wall_seconds": float(sum(r.get("wall_seconds", 0.0) for r in runs)),
               "invalid_blocks": int(sum(r.get("invalid_blocks", 0) for r in runs))}
        rows.append(row)
    by_key = {(r["dataset"], r["model"], r["scheme"]): r for r in rows}
    ratios, timed = {}, []
    for row in rows:
        base = by_key.get((row["dataset"], row["model"], "fp32"))
        ok = base and base["acc_mean"] is not None and row["acc_mean"] is not None
        if row["metric"] == "val_bpc":          # relative, in %: how much more bits per character than fp32
            row["gap_to_fp32"] = 100 * (row["acc_mean"] / base["acc_mean"] - 1) if ok else None
        else:                                   # accuracy points below fp32
            row["gap_to_fp32"] = base["acc_mean"] - row["acc_mean"] if ok else None
        if ok and row["scheme"] != "fp32":
            row["epoch_time_ratio"] = row["epoch_cpu_seconds"] / base["epoch_cpu_seconds"]
            row["epoch_wall_ratio"] = row["epoch_seconds"] / base["epoch_seconds"]
            if row["scheme"] == "fourbit":
                ratios[f"{row['dataset']}-{row['model']}"] = row["epoch_time_ratio"]
            if row["scheme"] in TIMED:
                timed.append((f"{row['dataset']}-{row['model']}", row["scheme"], row["epoch_time_ratio"]))
    targets = []
    for dataset, model, scheme, max_gap in TARGETS:
        row = by_key.get((dataset, model, scheme))
        if row is not None and row["gap_to_fp32"] is not None:
            targets.append({"what": f"{dataset}-{model}: {scheme} within {max_gap} points of fp32",
                            "gap": row["gap_to_fp32"], "met": row["gap_to_fp32"] <= max_gap})
    for scheme, max_gap in LM_TARGETS:
        row = by_key.get((language.DATASET, language.MODEL, scheme))
        if row is not None and row["gap_to_fp32"] is not None:
            targets.append({"what": f"{language.DATASET}-{language.MODEL}: {scheme} within {max_gap}% of fp32's "
                                    f"validation bits per character", "gap": row["gap_to_fp32"],
                            "met": row["gap_to_fp32"] <= max_gap})
    for name, scheme, ratio in timed:
        targets.append({"what": f"{name}: {scheme} epoch <= {TIME_RATIO_TARGET}x fp32 epoch",
                        "ratio": ratio, "met": ratio <= TIME_RATIO_TARGET})
    return rows, ratios, targets


def _fmt(value, spec, missing="—"):
    return missing if value is None else format(value, spec)


def markdown(rows, targets, meta):
    lines = [f"# fourbit training table ({meta['mode']})", "",
             f"Test accuracy in % (the language model: validation bits per character, bpc), mean ± sample std "
             f"over seeds {meta['seeds']}, after the last epoch; gap = fp32 mean − scheme mean in points (the "
             f"language model: scheme bpc / fp32 bpc − 1, in %; positive is worse). CPU s/epoch: CPU time of the training pass (no evaluation), one BLAS "
             f"thread, {meta['workers']} runs in parallel; × fp32 is its ratio to the fp32 row (wall-clock ratios "
             f"are in results.json). Whole table: {meta['total_wall_seconds']:.0f} s wall.", "",
             "| dataset | model | scheme | epochs | test acc % / val bpc | gap to fp32 | CPU s/epoch | × fp32 |",
             "|---|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        failures = [f"{what} ({len(r[key])}/{len(r['seeds'])} seeds)"
                    for key, what in (("diverged", "diverged"), ("not_learning", "not learning")) if r[key]]
        bpc = r.get("metric") == "val_bpc"
        acc = (", ".join(failures) if failures else f"{r['acc_mean']:.3f} ± {r['acc_std']:.3f} bpc" if bpc
               else f"{r['acc_mean']:.2f} ± {r['acc_std']:.2f}")
        gap = _fmt(r["gap_to_fp32"], "+.2f") + (" %" if bpc and r["gap_to_fp32"] is not None else "")
        lines.append(f"| {r['dataset']} | {r['model']} | {r['scheme']} | {r['epochs']} | {acc} | "
                     f"{gap if r['scheme'] != 'fp32' else ''} | "
                     f"{_fmt(r['epoch_cpu_seconds'], '.2f')} | {_fmt(r.get('epoch_time_ratio'), '.2f', '')} |")
    block_rows = [r for r in rows if SCHEMES[r["scheme"]].block_format]
    if block_rows:
        lines += ["", f"Invalid (NaN/Inf) MXFP4/NVFP4 blocks over all block-scaled runs: "
                      f"{sum(r['invalid_blocks'] for r in block_rows)}."]
    lines += ["", "## Targets", ""]
    for t in targets:
        unit = "%" if "bits per character" in t["what"] else " points"
        value = f"gap {t['gap']:+.2f}{unit}" if "gap" in t else f"ratio {t['ratio']:.2f}"
        lines.append(f"- {'met' if t['met'] else 'MISSED'}: {t['what']} ({value})")
    lines += ["", "## Schemes", ""] + [f"- `{name}`: {s.description}" for name, s in SCHEMES.items()]
    return "\n".join(lines) + "\n"


def plot(results, out_dir):
    """accuracy_vs_epoch.png (fp32, fourbit, mxfp4, nvfp4) and grad_codes_<dataset>_<model>.png; returns the paths."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [r for r in results if not failed(r)]
    combos = sorted({(r["config"]["dataset"], r["config"]["model"]) for r in ok})
    fig, axes = plt.subplots(1, len(combos), figsize=(4.2 * len(combos), 3.4), squeeze=False)
    for ax, (dataset, model) in zip(axes[0], combos):
        for scheme, color in (("fp32", "tab:blue"), ("fourbit", "tab:red"), ("mxfp4", "tab:green"),
                              ("nvfp4", "tab:purple")):
            curves = np.array([[h["val_bpc"] if "val_bpc" in h else h["test_acc"] * 100 for h in r["history"]] for r in ok
                               if (r["config"]["dataset"], r["config"]["model"], r["config"]["scheme"])
                               == (dataset, model, scheme)])
            if len(curves):
                epochs = np.arange(1, curves.shape[1] + 1)
                ax.plot(epochs, curves.mean(0), color=color, label=f"{scheme} (mean of {len(curves)})")
                ax.fill_between(epochs, curves.min(0), curves.max(0), color=color, alpha=0.2)
        bpc = dataset == language.DATASET
        ax.set(title=f"{dataset}-{model}", xlabel="epoch", ylabel="validation bits per character" if bpc
               else "test accuracy %")
        ax.grid(alpha=0.3)
        ax.legend(loc="upper right" if bpc else "lower right")
    fig.tight_layout()
    paths = [out_dir / "accuracy_vs_epoch.png"]
    fig.savefig(paths[0], dpi=110)
    plt.close(fig)
    for dataset, model in combos:
        runs = [r for r in ok if (r["config"]["dataset"], r["config"]["model"], r["config"]["scheme"])
                == (dataset, model, "fourbit")]
        if runs:
            paths.append(_plot_codes(plt, runs[0], out_dir / f"grad_codes_{dataset}_{model}.png"))
    return paths


def _plot_codes(plt, result, path):
    """Per 4-bit layer: share of gradient codes that are exact zeros, flushed, and each exponent field."""
    stats = result["grad_stats_last_epoch"]
    fig, axes = plt.subplots(1, len(stats), figsize=(4.6 * len(stats), 3.6), squeeze=False)
    labels = ["0", "flush"] + [str(e) for e in range(1, 8)]
    for ax, (layer, s) in zip(axes[0], stats.items()):
        for offset, role, color in ((-0.2, "dX", "tab:orange"), (0.2, "dW", "tab:green")):
            hist = np.array(s["histogram"][role])
            if hist.sum() == 0:
                continue
            by_e = hist[:8] + hist[8:]
            flushed = s["flushed"][role]
            shares = 100 * np.concatenate(([by_e[0] - flushed, flushed], by_e[1:])) / hist.sum()
            ax.bar(np.arange(9) + offset, shares, width=0.4, color=color,
                   label=f"{role}: {100 * flushed / max(s['nonzero'][role], 1):.1f}% of non-zero flushed, "
                         f"{shares[-1]:.2f}% top code")
        ax.set(title=f"{layer} (last epoch)", ylabel="% of gradients",
               xlabel="exponent field e (flush: non-zero rounded to 0)")
        ax.set_xticks(range(9), labels)
        ax.legend(fontsize=7, loc="upper right")
    c = result["config"]
    fig.suptitle(f"gradient codes, {c['dataset']}-{c['model']} fourbit seed {c['seed']}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m golden.training.table", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", default=os.environ.get("FAST", "") not in ("", "0"),
                        help="digits-MLP, fp32, fourbit, mxfp4 and nvfp4, few epochs (also env FAST=1)")
    parser.add_argument("--out", type=pathlib.Path, help="output directory (default build/train, "
                                                         "build/train/quick with --quick)")
    parser.add_argument("--rows", nargs="+", choices=PAIRS, metavar="DATASET-MODEL",
                        help=f"run only these rows of the full table ({', '.join(PAIRS)}) and merge them into the "
                             f"results already in the output directory (the table is 'full' once every row is in)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else tuple(e for e in FULL if not args.rows or f"{e.dataset}-{e.model}" in args.rows)
    out = args.out or (OUT_DIR / "quick" if args.quick else OUT_DIR)
    started, load_before = time.perf_counter(), os.getloadavg()
    try:
        results = run_all(plan, progress=not args.no_progress)
    except datasets.DamagedCache as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    wall = time.perf_counter() - started
    if args.rows and (out / "results.json").exists():
        previous = json.loads((out / "results.json").read_text())
        results = [r for r in previous["runs"]
                   if f"{r['config']['dataset']}-{r['config']['model']}" not in args.rows] + results
        wall += previous["total_wall_seconds"]
    rows, ratios, targets = summarize(results)
    present = {f"{r['config']['dataset']}-{r['config']['model']}" for r in results}
    mode = "quick" if args.quick else "full" if present >= set(PAIRS) else "partial"
    meta = {"mode": mode, "seeds": list(SEEDS), "workers": min(os.cpu_count() or 1, 2), "total_wall_seconds": wall,
            "finished_utc": utc_stamp(), "load_average_1_5_15": {"start": load_before, "end": os.getloadavg()}}
    summary = {**meta, "rows": rows, "epoch_time_ratio": ratios, "targets": targets}
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps({**summary, "runs": results}, indent=1))
    if mode == "full" and args.out is None:
        RECORD.write_text(json.dumps(summary, indent=1) + "\n")
    (out / "results.md").write_text(markdown(rows, targets, meta))
    paths = plot(results, out)
    print(markdown(rows, targets, meta))
    print(f"wrote {out / 'results.json'}, {out / 'results.md'}, " + ", ".join(p.name for p in paths))
    required_failed = [r for r in results if failed(r) and r["config"]["scheme"] in REQUIRED]
    for r in results:
        if failed(r):
            print(f"{'error' if r in required_failed else 'warning'}: {r.get('diverged') or r['not_learning']}",
                  file=sys.stderr)
    return 1 if required_failed else 0


if __name__ == "__main__":
    sys.exit(main())
