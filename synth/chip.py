"""``python -m synth.chip``: the largest fourbit, FP16, MXFP4 and NVFP4 training arrays per device, placed and routed.

For each device (:data:`DEVICES`: LFE5U-25F, LFE5U-85F) and mapping (``lut``: no hard multipliers,
``dsp``: with MULT18X18D) the chip-level comparison finds the largest array of each kind in
:data:`ARRAY_KINDS` that places and routes within :data:`BUDGET` of the device's LUTs (and within
its multipliers), and reports its size, LUT-equiv, FF, DSP, Fmax, GMAC/s and the time of one
training step of the digits MLP. Place and route is expensive, so it does not search:

1. **Cost model.** Yosys alone (no place and route) at the small sizes of the kind (``fit_sizes``) gives
   LUT-equiv, FF and DSP of each kind and mapping; a least-squares fit
   ``count = per_pe * R*C + per_row * R + per_col * C + fixed`` extrapolates them; an MX array also
   has ``+ per_unit * U``, U its float32 units (one per ``block // C`` rows: the wider the array,
   the fewer rows a unit serves), fitted to sizes with more than one unit. The flip-flops of the
   operand skew (:func:`rtl.array.operand_skew`: quadratic in R and C) are counted exactly, not
   fitted: fitted linearly they made the MX arrays' flip-flops at chip size 9-15 % low.
2. **Prediction.** The R x C (each 2..32, C at most an MX array's block, sides at most :data:`MAX_ASPECT` apart) with the most
   PEs whose predicted LUT-equiv is within the budget, whose flip-flops are within :data:`FF_BUDGET`
   and whose predicted DSPs are within the device's multipliers (ties: fewer LUTs, then the squarer array).
3. **Measurement.** Yosys at that size; one place and route (seed 1, the flow's clock constraint)
   if Yosys' counts are within :data:`ACCEPT` of the LUTs and :data:`FF_ACCEPT` of the flip-flops. A
   design over them, one nextpnr cannot place, or one it has not finished in :data:`PNR_TIMEOUT`
   steps down once to the best predicted size with fewer PEs.
4. **Training step.** The array GEMMs of one step of the digits MLP of the training-steps bench
   (six GEMMs: FWD, BWD_DATA and BWD_WEIGHT of its two 4-bit layers, batch 32) run on the
   simulated array at the chosen size (Verilator, the bench's ``training_step`` test, every output
   checked against golden); their cycles must equal the array's timing model, and the step time
   is cycles / Fmax.

Results are cached by content like the rest of the flow (build/synth/cache, build/sim); the
report is build/chip/chip.json and chip.md. A run into the default folder that places also writes
its report to :data:`RECORD` (docs/chip_table.json, committed, each row with the date and commit it was
measured at), which the report, README and per-format table read where build/chip/chip.json is
missing (a clean clone). An explicit ``--size KIND=RxC`` that cannot fit a
device stops with a message naming the device, the size and the utilization.
"""

import argparse
import gc
import hashlib
import json
import os
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from amaranth.hdl import UnusedElaboratable

from golden.tiling import SIZE_MAX, SIZE_MIN, Mode

from rtl import tools

from . import flow, jobs
from . import report as report_

#: The devices of the comparison: part name -> flow target (the 25F places the 85F's netlists:
#: ECP5 synthesis does not depend on the device).
DEVICES = {"LFE5U-25F": flow.ECP5_25F, "LFE5U-85F": flow.TARGETS["ecp5-85f"]}
MAPPINGS = ("lut", "dsp")
#: Share of the device's LUTs the predicted array may use, and what a measured one may use.
BUDGET, ACCEPT = 0.85, 0.88
#: The same for its flip-flops. MX arrays at 72-73 % of the flip-flops placed at the placer's usual
#: speed; at 78 % its first iteration took 8x as long, at 84 % none ended in 7 min, at 87-89 % nextpnr
#: found no legal placement (2026-12-05, README "Chip level").
FF_BUDGET, FF_ACCEPT = 0.72, 0.75
#: Array sizes of the Yosys-only runs the cost model is fitted to (4 parameters: 4 sizes at least).
FIT_SIZES = ((2, 2), (2, 4), (4, 2), (3, 3), (4, 4))
#: For arrays of about 1,000 LUT-equiv per PE (FP16), where a 4 x 4 takes long in Yosys.
SMALL_FIT_SIZES = FIT_SIZES[:4]
#: For MX arrays: two sizes with two float32 units (G = 32 // C rows each), so the fit can price a unit.
MX_FIT_SIZES = (*FIT_SIZES, (3, 11), (6, 6))
#: For arrays whose PEs pair rows (even R only: R/2 hard multipliers per column).
EVEN_ROW_FIT_SIZES = ((2, 2), (2, 4), (4, 2), (4, 4))   # (2, 3) trips an assertion in Yosys 0.70
#: Longest side over shortest side of a chosen array: the model is fitted to aspect ratios up to 2,
#: and a skinny array pays a tile period R + C - 1 out of proportion to its PEs.
MAX_ASPECT = 2
SEED = 1
#: nextpnr's router for the chip-size arrays: router1 did not converge in 35 min on a 4-bit array at
#: 78 % of the 25F's logic cells, router2 routes it in about a minute (docs/rtl.md, "Chip-size synthesis").
ROUTER = "router2"
#: Seconds a chip-size place and route may take before it is stopped and the size steps down: the
#: slowest that finished took 66 min (MXFP4 21x16 at low priority beside 3-4 jobs on 2 cores), while
#: router2 on the FP16 6x10 with DSPs kept 12-32 wires overused for 150 iterations without end.
PNR_TIMEOUT = 120 * 60
SYNTH_TARGET = "ecp5-85f"
OUT_DIR = Path("build/chip")
#: The committed copy of the last chip report (see the module docstring).
RECORD = Path(__file__).resolve().parents[1] / "docs" / "chip_table.json"
CACHE_DIR = Path("build/synth/cache")
VERILOG_DIR = Path("build/chip/verilog")


@dataclass(frozen=True)
class ArrayKind:
    """An array the comparison measures.

    Attributes
    ----------
    name : str
        Short name in the tables.
    unit : str
        Unit in ``rtl.generate.UNITS`` taking ``rows`` and ``cols``.
    fmt : str
        ``"fourbit"`` or ``"fp16"``: the side of the ratio it stands on.
    mappings : tuple of str
        Mappings it is measured with.
    macs_per_pe : int
        Multiply-accumulates per PE per cycle.
    rank : int
        Among the available kinds of one format and mapping, the highest rank is measured by
        default (the best array of that format).
    description : str
    pe_unit : str
        The unit of its PE's MAC: its Fmax stands in for the array's where no array of the kind
        has been placed (an estimate, labelled so).
    sums : int
        Running sums per PE the unit's array must have to be this kind (an FP16 array with the
        pipelined PE has 6, with the one-cycle PE 1).
    fit_sizes : tuple of (R, C)
        Sizes of the Yosys-only runs its cost model is fitted to.
    row_step : int
        R is a multiple of this (2 where PEs pair rows: an odd R has a lone row that the linear
        model does not price).
    options : tuple of (str, value)
        Parameters of the unit besides ``rows`` and ``cols``.
    step_bench : bool
        Whether the unit's cocotb bench has the ``training_step`` test (else the step's cycles are
        the timing model's).
    block : int
        For an array whose rows share float32 units (one per ``block // C`` rows), its block size:
        the cost model then prices the units (:func:`shared_units`); 0 for the others.
    """

    name: str
    unit: str
    fmt: str
    mappings: tuple
    macs_per_pe: int
    rank: int
    description: str
    pe_unit: str
    sums: int = 1
    fit_sizes: tuple = FIT_SIZES
    row_step: int = 1
    options: tuple = ()
    step_bench: bool = True
    block: int = 0

    def params(self, size):
        """The unit's parameters for an R x C array."""
        return {"rows": size[0], "cols": size[1], **dict(self.options)}


ARRAY_KINDS = (
    ArrayKind("fourbit", "training_array", "fourbit", MAPPINGS, 1, 0,
              "fourbit TrainingArray, 3-mode PE (INT4 x INT4 and FP4 x INT4)", "int4_mac"),
    ArrayKind("fourbit-dsp", "training_array_dsp", "fourbit", ("dsp",), 1, 1,
              "DspTrainingArray, two rows' INT4 products on one MULT18X18D", "int4_mac_pair_dsp",
              fit_sizes=EVEN_ROW_FIT_SIZES, row_step=2),
    ArrayKind("fp16", "fp16_array", "fp16", MAPPINGS, 1, 1,
              "Fp16TrainingArray, pipelined FP16 PE (6 interleaved sums)", "fp16_pipe_mac", sums=6,
              fit_sizes=SMALL_FIT_SIZES),
    ArrayKind("mxfp4", "mx_array", "mxfp4", ("lut",), 1, 0,
              "MxTrainingArray, MXFP4 PE (E2M1 products, one float32 unit per group of rows)", "mx_row",
              fit_sizes=MX_FIT_SIZES, options=(("fmt", "mxfp4"),), step_bench=False, block=32),
    ArrayKind("nvfp4", "mx_array", "nvfp4", ("lut",), 1, 0,
              "MxTrainingArray, NVFP4 PE (E2M1 products, E4M3 scales, one float32 unit per group of rows)",
              "mx_row", fit_sizes=MX_FIT_SIZES, options=(("fmt", "nvfp4"),), step_bench=False, block=16),
)
KINDS = {kind.name: kind for kind in ARRAY_KINDS}


class DoesNotFit(ValueError):
    """An array size that cannot fit a device (the message names the device, size and utilization)."""


def pe_sums(generate, kind):
    """Running sums per PE of ``kind``'s array (more than 1 for a PE with interleaved sums)."""
    return _unelaborated(generate, kind, (SIZE_MIN, SIZE_MIN), lambda array: getattr(array, "sums", 1))


def _unelaborated(generate, kind, size, read):
    """``read(array)`` of an R x C array of ``kind`` built for its attributes, never elaborated."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnusedElaboratable)
        array = generate.build(kind.unit, kind.params(size))
        value = read(array)
        del array
        gc.collect()  # the component sits in a reference cycle: collected while the filter is on
    return value


def cases(generate, names=None, mappings=MAPPINGS):
    """``[(kind, mapping)]`` to measure: every mapping of the kinds ``names``, else for each format and
    mapping the best-ranked kind whose unit exists (with the PE the kind names)."""
    if names:
        unknown = [n for n in names if n not in KINDS]
        if unknown:
            raise ValueError(f"kinds must be among {sorted(KINDS)}, got {unknown}")
        return [(KINDS[n], m) for n in names for m in mappings if m in KINDS[n].mappings]
    present = [k for k in ARRAY_KINDS if k.unit in generate.UNITS and pe_sums(generate, k) == k.sums]
    best = {}
    for kind in present:
        for mapping in kind.mappings:
            if mapping in mappings and ((kind.fmt, mapping) not in best or kind.rank > best[kind.fmt, mapping].rank):
                best[kind.fmt, mapping] = kind
    return [(kind, mapping) for (_, mapping), kind in best.items()]


def label(kind, size):
    return f"{kind.unit} {size[0]}x{size[1]}"


# ---------------------------------------------------------------------------------------------
# Cost model


COUNTS = ("lut_equiv", "ff", "dsp")
TERMS = ("per_pe", "per_row", "per_col", "fixed", "per_unit")


def skew_registers(size, skew):
    """Flip-flops of an R x C array's operand skew; ``skew``: ``{"width": operand bits, "rows_per_pe"}``."""
    from rtl.array import operand_skew

    a_delays, b_delays = operand_skew(*size, skew["rows_per_pe"])
    return skew["width"] * (sum(a_delays) + sum(b_delays))


def operand_skew_of(generate, kind):
    """``{"width", "rows_per_pe"}`` of ``kind``'s operand skew (for :func:`fit`)."""
    return _unelaborated(generate, kind, (SIZE_MIN, SIZE_MIN),
                         lambda array: {"width": array.pe.operand_width, "rows_per_pe": array.pe.rows_per_pe})


def shared_units(size, block):
    """Float32 units of an R x C MX array of ``block``: one per group of ``block // C`` rows (C at most
    ``block``: a ValueError naming the size otherwise)."""
    rows, cols = size
    if cols > block:
        raise ValueError(f"an MX array of {block}-element blocks has at most {block} columns, got {rows}x{cols}")
    return -(-rows // (block // cols))


def _terms(size, block=None):
    rows, cols = size
    return [rows * cols, rows, cols, 1] + ([shared_units(size, block)] if block else [])


def fit(points, block=None, skew=None):
    """Least-squares cost model from ``[((R, C), {"lut_equiv", "ff", "dsp"})]``.

    Returns ``{count: {"per_pe", "per_row", "per_col", "fixed"}}``; with ``block`` (an array whose
    rows share float32 units, :func:`shared_units`) also ``"per_unit"``, and ``"block"``; with
    ``skew`` (:func:`operand_skew_of`) the flip-flops are fitted without the skew's
    (:func:`skew_registers`), which :func:`predict` adds back, and ``"skew"``.
    """
    needed = 5 if block else 4
    if len(points) < needed:
        raise ValueError(f"the cost model needs at least {needed} sizes, got {len(points)}")
    design = np.array([_terms(size, block) for size, _ in points], float)
    if np.linalg.matrix_rank(design) < needed:
        raise ValueError(f"the sizes {[size for size, _ in points]} cannot separate the cost model's {needed} terms")
    model = {"block": block} if block else {}
    if skew:
        model["skew"] = dict(skew)
    for count in COUNTS:
        measured = np.array([counts[count] - (skew_registers(size, skew) if skew and count == "ff" else 0)
                             for size, counts in points], float)
        coefficients = np.linalg.lstsq(design, measured, rcond=None)[0]
        model[count] = dict(zip(TERMS, map(float, coefficients)))
    return model


def predict(model, size):
    """Predicted ``{lut_equiv, ff, dsp}`` (rounded) of an R x C array."""
    terms = _terms(size, model.get("block"))
    counts = {count: sum(model[count][key] * t for key, t in zip(TERMS, terms)) for count in COUNTS}
    if model.get("skew"):
        counts["ff"] += skew_registers(size, model["skew"])
    return {count: max(0, round(value)) for count, value in counts.items()}


def largest_size(model, device, mapping, below=None, budget=BUDGET, row_step=1, ff_budget=FF_BUDGET):
    """The R x C with the most PEs that the model puts within ``budget`` of ``device``'s LUTs and
    ``ff_budget`` of its flip-flops (and, for the dsp mapping, within its multipliers); ``below``
    limits the PE count (a step down).

    Raises :class:`DoesNotFit` when not even 2 x 2 fits.
    """
    best = None
    for rows in range(SIZE_MIN + (-SIZE_MIN) % row_step, SIZE_MAX + 1, row_step):
        for cols in range(SIZE_MIN, min(SIZE_MAX, model.get("block") or SIZE_MAX) + 1):
            if (below is not None and rows * cols >= below) or max(rows, cols) > MAX_ASPECT * min(rows, cols):
                continue
            counts = predict(model, (rows, cols))
            if counts["lut_equiv"] > budget * device.luts or counts["ff"] > ff_budget * device.ffs:
                continue
            if counts["dsp"] > (device.dsps if mapping == "dsp" else 0):
                continue
            rank = (rows * cols, -counts["lut_equiv"], -abs(rows - cols))
            if best is None or rank > best[0]:
                best = (rank, (rows, cols))
    if best is None:
        smallest = predict(model, (SIZE_MIN, SIZE_MIN))
        raise DoesNotFit(f"no array of this kind fits {device.part} within {budget:.0%} of its LUTs and "
                         f"{ff_budget:.0%} of its flip-flops: the smallest, {SIZE_MIN}x{SIZE_MIN}, needs "
                         f"{smallest['lut_equiv']:,} LUT-equiv ({100 * smallest['lut_equiv'] / device.luts:.0f} %), "
                         f"{smallest['ff']:,} FF ({100 * smallest['ff'] / device.ffs:.0f} %) and {smallest['dsp']} DSPs")
    return best[1]


def check_size(kind, size, model, device):
    """Refuse an explicit size whose predicted cells exceed ``device``, or that ``kind`` cannot have (more
    columns than its block), with a :class:`DoesNotFit`."""
    if kind.block and size[1] > kind.block:
        raise DoesNotFit(f"{label(kind, size)}: an array of {kind.block}-element blocks has at most {kind.block} "
                         "columns (one float32 unit serves a row at most)")
    problem = flow.fit_problem(label(kind, size), predict(model, size), device)
    if problem:
        raise DoesNotFit(problem + " (predicted by the cost model)")


# ---------------------------------------------------------------------------------------------
# Runs (each in a worker process: Yosys, nextpnr)


@dataclass(frozen=True)
class Synthesis:
    """Yosys alone for one array kind, size and mapping."""

    kind: ArrayKind
    size: tuple
    mapping: str

    @property
    def key(self):
        return f"chip/{self.kind.unit}/{self.size[0]}x{self.size[1]}/{self.mapping}/yosys"


@dataclass(frozen=True)
class Placement:
    """Yosys, then nextpnr on ``device`` unless the design exceeds :data:`ACCEPT` of its LUTs (or
    ``place`` is false: Yosys only)."""

    kind: ArrayKind
    size: tuple
    mapping: str
    device: str
    place: bool = True

    @property
    def key(self):
        return f"chip/{self.kind.unit}/{self.size[0]}x{self.size[1]}/{self.mapping}/{self.device}"


def _synthesize(kind, size, mapping):
    from rtl import generate

    params = kind.params(size)
    with jobs.locked(VERILOG_DIR / ".lock"):
        path = generate.write_verilog(kind.unit, params, VERILOG_DIR)
    return flow.synthesize(path, generate.module_name(kind.unit, params), SYNTH_TARGET, mapping, CACHE_DIR,
                           log=print)


def _counts(result):
    return {count: result[count] for count in COUNTS}


def run_synthesis(job):
    start = time.monotonic()
    result = _synthesize(job.kind, job.size, job.mapping)
    return {**_counts(result), "cached": result["cached"], "wall_seconds": time.monotonic() - start}


def over_accepted(name, counts, device):
    """Why Yosys' ``counts`` are too many to place on ``device`` (over :data:`ACCEPT` of its LUTs or
    :data:`FF_ACCEPT` of its flip-flops), else None."""
    for need, have, accept, what, unit in ((counts["lut_equiv"], device.luts, ACCEPT, "LUT-equiv", "LUTs"),
                                           (counts["ff"], device.ffs, FF_ACCEPT, "FF", "flip-flops")):
        if need > accept * have:
            return (f"{name} needs {need:,} {what}, {100 * need / have:.0f} % of {device.part}'s {have:,} {unit} "
                    f"(over the {accept:.0%} accepted)")
    return None


def run_placement(job):
    start = time.monotonic()
    device = DEVICES[job.device]
    synthesized = _synthesize(job.kind, job.size, job.mapping)
    out = {**_counts(synthesized), "lut_share": synthesized["lut_equiv"] / device.luts}
    over = over_accepted(label(job.kind, job.size), synthesized, device)
    if over:
        return {**out, "fmax_mhz": None, "cached": synthesized["cached"], "wall_seconds": time.monotonic() - start,
                "error": over}
    if not job.place:
        return {**out, "fmax_mhz": None, "cached": synthesized["cached"], "wall_seconds": time.monotonic() - start,
                "error": "not placed (--stop-after yosys)", "not_placed": True}
    placed = flow.place_and_route(synthesized, SEED, CACHE_DIR, device=device, label=label(job.kind, job.size),
                                  log=print, router=ROUTER, timeout=PNR_TIMEOUT)
    return {**out, "fmax_mhz": placed["fmax_mhz"], "utilization": placed["utilization"],
            **{key: placed.get(key) for key in ("router", "place_seconds", "route_seconds", "date")},
            "error": placed.get("error"), "cached": synthesized["cached"] and placed["cached"],
            "wall_seconds": time.monotonic() - start}


def _run_all(function, items, n_jobs, history, estimate, what):
    """``{item: result}`` of ``function`` over ``items``, the longest first; a failure stops the run."""
    ordered = jobs.longest_first(items, lambda item: item.key, estimate, history)
    results = {}
    for done, (item, result, error) in enumerate(jobs.run(function, ordered, n_jobs), 1):
        if error is not None:
            raise SystemExit(f"python -m synth.chip: {what} of {item.key} failed: {error}")
        if not result["cached"]:
            history.record(item.key, result["wall_seconds"])
        fmax = result.get("fmax_mhz")
        state = f", {fmax:.1f} MHz" if fmax else (f", {result['error']}" if result.get("error") else "")
        how = "cached" if result["cached"] else f"{result['wall_seconds']:.0f} s"
        print(f"[{done:2d}/{len(items)}] {what} {item.key}: {result['lut_equiv']:,} LUT-equiv, {result['ff']:,} FF, "
              f"{result['dsp']} DSP{state} ({how})", flush=True)
        results[item] = result
    return results


# ---------------------------------------------------------------------------------------------
# The training step


def step_shapes():
    """``[(mode, M, K, N)]`` of the array GEMMs of one training step of the digits MLP (golden run)."""
    from testbench.bench_train_steps import step_gemms

    return [(mode, a.shape[0], a.shape[1], b.shape[1]) for mode, a, b in step_gemms()]


def model_step_cycles(kind, size, shapes):
    """Cycles of the training step's GEMMs on the array by its timing model, per GEMM."""
    from rtl import generate
    from testbench.array_driver import gemm_cycles

    return _unelaborated(generate, kind, size,
                         lambda array: [gemm_cycles(array, Mode(mode), m, k, n) for mode, m, k, n in shapes])


def _step_file(kind, size):
    """(the bench's file of ``kind`` at ``size``, the sha256 of the array's Verilog)."""
    from rtl import generate
    from testbench.array_driver import STEP_DIR

    params = kind.params(size)
    with jobs.locked(VERILOG_DIR / ".lock"):
        verilog = hashlib.sha256(Path(generate.write_verilog(kind.unit, params, VERILOG_DIR)).read_bytes()).hexdigest()
    return STEP_DIR / f"{generate.module_name(kind.unit, params)}.json", verilog


def cached_step(kind, size):
    """What an earlier :func:`simulate_step` measured on the same Verilog, else None."""
    path, verilog = _step_file(kind, size)
    measured = json.loads(path.read_text()) if path.is_file() else {}
    return {**measured, "cached": True} if measured.get("verilog_sha256") == verilog else None


def simulate_step(kind, size, sim="verilator", reuse=True):
    """Run the training_step test of ``kind``'s bench at ``size``; returns what it measured (kept,
    with the Verilog's hash, in the bench's file: with ``reuse`` an unchanged array is not simulated again)."""
    from testbench import runner

    earlier = cached_step(kind, size) if reuse else None
    if earlier:
        return earlier
    path, verilog = _step_file(kind, size)
    result = runner.run(runner.Target(sim, kind.unit, kind.params(size)), level="quick",
                        testcase="training_step", record=False)
    if not result.passed:
        raise SystemExit(f"python -m synth.chip: the training step on {label(kind, size)} failed:\n{result.report()}")
    measured = {**json.loads(path.read_text()), "verilog_sha256": verilog,
                "build_seconds": round(result.build_seconds, 1), "run_seconds": round(result.wall_seconds, 1)}
    path.write_text(json.dumps(measured, indent=2) + "\n")
    return {**measured, "cached": False}


@dataclass(frozen=True)
class StepRun:
    kind: ArrayKind
    size: tuple

    @property
    def key(self):
        return f"chip/{self.kind.unit}/{self.size[0]}x{self.size[1]}/step"


def run_step(job):
    start = time.monotonic()
    return {**simulate_step(job.kind, job.size), "wall_seconds": time.monotonic() - start}


# ---------------------------------------------------------------------------------------------
# Report


def fmax_estimate(kind, mapping, synth_report, rows=()):
    """``{"fmax_mhz", "source"}`` standing in for an unplaced array of ``kind``: the largest array of
    the kind placed on another device (``rows`` of the chip report, same mapping), else the largest
    placed array of its unit in build/synth/report.json (ECP5-85F, same mapping), else its PE's MAC,
    else None."""
    chip_placed = [r for r in rows if (r["kind"], r["mapping"]) == (kind.name, mapping) and r["fmax_mhz"]]
    if chip_placed:
        best = max(chip_placed, key=lambda r: r["pes"])
        return {"fmax_mhz": best["fmax_mhz"],
                "source": f"{kind.name} {best['size'][0]}x{best['size'][1]} placed on {best['device']}, {mapping}"}
    placed = [r for r in (synth_report or {}).get("rows", [])
              if (r["target"], r["mapping"]) == (SYNTH_TARGET, mapping) and r["fits"]]
    arrays = [r for r in placed if r["unit"] == kind.unit and r.get("array_size")]
    source = (max(arrays, key=lambda r: r["macs_per_cycle"]) if arrays else
              next((r for r in placed if r["unit"] == kind.pe_unit), None))
    if source is None:
        return None
    return {"fmax_mhz": source["fmax_mhz"], "source": f"{source['label']}, {mapping}, placed {source.get('date', '-')}"}


def with_estimates(rows, synth_report):
    """``rows`` where an array has no measured Fmax get ``estimate``: a stand-in Fmax
    (:func:`fmax_estimate`) with the GMAC/s and step time it gives."""
    out = []
    for row in rows:
        row = {key: value for key, value in row.items() if key != "estimate"}
        kind = KINDS.get(row["kind"])
        mapping = "lut" if row["same_as_lut"] else row["mapping"]
        guess = None if row["fmax_mhz"] or kind is None else fmax_estimate(kind, mapping, synth_report, rows)
        if guess:
            mhz = guess["fmax_mhz"]
            row["estimate"] = {**guess, "gmac_per_s": row["pes"] * mhz * kind.macs_per_pe / 1000,
                               "step_seconds": row["step"].get("cycles", row["step"]["model_cycles"]) / (mhz * 1e6)}
        out.append(row)
    return out


def comparisons(rows):
    """fourbit / FP16 GMAC/s and step-time ratios per device and mapping (best of each format)."""
    out = []
    for part in DEVICES:
        for mapping in MAPPINGS:
            best = {}
            for fmt in ("fourbit", "fp16"):
                candidates = [_figures(r) for r in rows if (r["device"], r["mapping"], r["fmt"]) == (part, mapping, fmt)]
                candidates = [c for c in candidates if c["gmac_per_s"]]
                if candidates:
                    best[fmt] = max(candidates, key=lambda c: (not c["estimated"], c["gmac_per_s"]))
            if len(best) == 2:
                four, fp16 = best["fourbit"], best["fp16"]
                step = fp16["step_seconds"] / four["step_seconds"] if four["step_seconds"] and fp16["step_seconds"] else None
                out.append({"device": part, "mapping": mapping, "fourbit": four["kind"], "fp16": fp16["kind"],
                            "gmac_ratio": four["gmac_per_s"] / fp16["gmac_per_s"], "step_speedup": step,
                            "estimated": four["estimated"] or fp16["estimated"]})
    return out


def _figures(row):
    """GMAC/s and step time of a row: measured, else its estimate (``estimated`` says which)."""
    if row.get("gmac_per_s"):
        return {"kind": row["kind"], "gmac_per_s": row["gmac_per_s"], "step_seconds": row["step"].get("seconds"),
                "estimated": False}
    guess = row.get("estimate") or {}
    return {"kind": row["kind"], "gmac_per_s": guess.get("gmac_per_s"), "step_seconds": guess.get("step_seconds"),
            "estimated": True}


def _fmt(value, digits=0):
    if value is None:
        return "-"
    return f"{value:,.{digits}f}" if isinstance(value, float) else f"{value:,}"


ARRAY_HEADER = ["device", "mapping", "array", "size", "PEs", "LUT-equiv (predicted)", "% of LUTs", "FF (predicted)",
                "DSP", "Fmax MHz", "GMAC/s", "step cycles (timing model)", "step time µs", "place + route min",
                "measured (commit)"]
#: How far ``python -m synth.chip --stop-after`` goes at the chosen sizes (default: all the way).
STAGES = ("predict", "yosys", "place")
RATIO_HEADER = ["device", "mapping", "fourbit / FP16 arrays", "GMAC/s ratio", "training-step speed-up",
                f"GMAC/s ratio vs IBM's {report_.IBM_CLAIM:.0f}x"]


def array_rows(report):
    """The arrays of a chip report as table cells (:data:`ARRAY_HEADER`)."""
    cells = []
    for r in report["rows"]:
        step, guess = r["step"], r.get("estimate")
        fmax, gmacs = _fmt(r["fmax_mhz"], 1), _fmt(r.get("gmac_per_s"), 2)
        seconds = _fmt(step["seconds"] * 1e6, 1) if step.get("seconds") else "-"
        if not r["fmax_mhz"]:
            fmax = f"{r.get('error')}" + (f"; estimate {guess['fmax_mhz']:.1f} ({guess['source']})" if guess else "")
            if guess:
                gmacs, seconds = f"~{guess['gmac_per_s']:.2f}", f"~{guess['step_seconds'] * 1e6:.1f}"
        share = r["lut_equiv"] if r["lut_equiv"] is not None else r["predicted"]["lut_equiv"]
        cells.append([r["device"], r["mapping"] + (" (= lut)" if r.get("same_as_lut") else ""), r["kind"],
                      f"{r['size'][0]}x{r['size'][1]}", _fmt(r["pes"]),
                      f"{_fmt(r['lut_equiv'])} ({_fmt(r['predicted']['lut_equiv'])})",
                      f"{100 * share / report['devices'][r['device']]['luts']:.1f}",
                      f"{_fmt(r['ff'])} ({_fmt(r['predicted']['ff'])})", _fmt(r["dsp"]), fmax, gmacs,
                      f"{_fmt(step.get('cycles'))} ({_fmt(step.get('model_cycles'))})", seconds, _pnr_minutes(r),
                      f"{r['date']} ({r.get('commit') or '-'})" if r.get("date") else "-"])
    return cells


def _pnr_minutes(row):
    if row.get("place_seconds") is None:
        return "-"
    return f"{row['place_seconds'] / 60:.1f} + {row['route_seconds'] / 60:.1f}"


def ratio_rows(chip_report):
    mark = {True: " (estimated)", False: ""}
    return [[c["device"], c["mapping"], f"{c['fourbit']} / {c['fp16']}", f"{c['gmac_ratio']:.2f}x{mark[c['estimated']]}",
             f"{c['step_speedup']:.2f}x{mark[c['estimated']]}" if c["step_speedup"] else "-",
             report_.side(c["gmac_ratio"])]
            for c in chip_report["comparisons"]]


def _table(header, rows):
    return ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|",
            *["| " + " | ".join(row) + " |" for row in rows], ""]


def markdown(report):
    lines = ["# Chip-level comparison: the largest fourbit and FP16 arrays per device", "",
             f"Generated {report['generated_utc']}; the rows come from these runs of `python -m synth.chip` (results "
             "cached by content, a run replaces the rows of the arrays it measured):", "",
             *[f"- {run['date']}: `{' '.join(run['argv']) or '(defaults)'}`, {run['wall_seconds']:,} s wall on "
               f"{run['cores']} cores, load average {run['load_average']} at its start" for run in report["runs"]], "",
             "## Method", "", *[f"- {line}" for line in report["method"]], "",
             "## Arrays", "", *_table(ARRAY_HEADER, array_rows(report)),
             step_sentence(report), "",
             "## fourbit / FP16", "", *_table(RATIO_HEADER, ratio_rows(report)),
             *[f"- {note}" for note in report["notes"]], f"- {report_.NOT_IBM}", ""]
    lines += ["## Cost models (Yosys, ECP5)", "",
              *_table(["array", "mapping", "count", "per PE", "per row", "per column", "fixed", "per float32 unit"],
                      [[m["kind"], m["mapping"], count, *(_fmt(m["model"][count].get(k), 1) for k in TERMS)]
                       for m in report["models"] for count in COUNTS])]
    return "\n".join(lines)


def method_notes():
    return [
        f"Cost model per array kind and mapping: Yosys alone (synth_ecp5, no place and route) at "
        f"{', '.join(f'{r}x{c}' for r, c in FIT_SIZES)} (FP16 arrays: without 4x4), least-squares fit of LUT-equiv, FF and DSP to "
        "per PE x R x C + per row x R + per column x C + fixed; MX arrays add per float32 unit x U (U = "
        "ceil(R / (32 // C)): a unit serves fewer rows the wider the array) and are fitted to "
        f"{', '.join(f'{r}x{c}' for r, c in MX_FIT_SIZES[len(FIT_SIZES):])} (two units) besides. The flip-flops of "
        "the operand skew (operand bits x (R(R+1)/2 + C(C+1)/2) for a PE per row) are counted exactly and fitted "
        "without.",
        f"Prediction: the R x C (each {SIZE_MIN}..{SIZE_MAX}, the longer side at most {MAX_ASPECT}x the shorter) "
        f"with the most PEs within {BUDGET:.0%} of the device's LUTs and {FF_BUDGET:.0%} of its flip-flops "
        "(and its MULT18X18D count with the dsp mapping); then one Yosys run and one place and "
        f"route (nextpnr seed {SEED}, analytic placer, {ROUTER} with the clock on the package's primary-clock pin) "
        f"at that size; a measured array over {ACCEPT:.0%} of the LUTs or {FF_ACCEPT:.0%} of the flip-flops, one that "
        f"does not place, or one nextpnr has not finished in {PNR_TIMEOUT // 60} min, steps down once.",
        "LUT-equiv counts the array alone (the flow's harness excluded): LUT4 + 2 x CCU2C + 6 x TRELLIS_DPR16X4; "
        "% of LUTs is that over the device's LUT4 count (LFE5U-25F 24,288, LFE5U-85F 83,640).",
        "GMAC/s = PEs x Fmax x MACs per PE per cycle. Fmax is nextpnr's for one seed.",
        "Training step: the six array GEMMs of one step of the digits MLP 64-64-64-64-10 of the training-steps "
        "bench (batch 32; FWD, BWD_DATA, BWD_WEIGHT of its two 4-bit 64x64 layers, 786,432 MACs) run one after "
        "another on the simulated array at the chosen size (Verilator; each GEMM from its first command to its "
        "last output row, the host never stalling, every output checked against golden); the FP16 arrays run "
        "the same shapes with random binary16 operands. Step time = measured cycles / Fmax; host work between "
        "GEMMs, the first and last FP32 layers and the quantizer are not in it.",
    ]


def load_average():
    return ", ".join(f"{v:.1f}" for v in os.getloadavg())


# ---------------------------------------------------------------------------------------------
# Command line


def parse_size(text):
    """``KIND=RxC`` -> (kind name, (R, C)); a malformed one is a ValueError naming it."""
    name, sep, size = text.partition("=")
    parts = size.lower().split("x")
    if not sep or name not in KINDS or len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise ValueError(f"--size must look like KIND=RxC with KIND among {sorted(KINDS)}, got {text!r}")
    rows, cols = int(parts[0]), int(parts[1])
    if not (SIZE_MIN <= rows <= SIZE_MAX and SIZE_MIN <= cols <= SIZE_MAX):
        raise ValueError(f"--size {text}: R and C must be {SIZE_MIN}..{SIZE_MAX}")
    return name, (rows, cols)


def _parser():
    parser = argparse.ArgumentParser(
        prog="python -m synth.chip", description=__doc__.splitlines()[0],
        epilog="Run time (2026-12-05, cell by cell on 2 shared cores, wall times under load): an LFE5U-85F "
               "cell 26-52 min (an MX one 91-97 min at low priority), an LFE5U-25F cell 4-44 min; a whole run on two "
               "idle cores is estimated at 3-4 h (README, make chip).")
    parser.add_argument("--devices", nargs="+", choices=list(DEVICES), default=list(DEVICES))
    parser.add_argument("--mappings", nargs="+", choices=MAPPINGS, default=list(MAPPINGS))
    parser.add_argument("--kinds", nargs="+", metavar="KIND",
                        help=f"array kinds among {sorted(KINDS)} (default: the best available of each format)")
    parser.add_argument("--size", action="append", default=[], metavar="KIND=RxC",
                        help="measure this size instead of the predicted one (on every device and mapping)")
    parser.add_argument("--no-sim", action="store_true",
                        help="no new training-step simulation (earlier ones of the same arrays still count)")
    parser.add_argument("--stop-after", choices=STAGES, default="place",
                        help="at the chosen sizes: the cost model's prediction only, or also Yosys, or also place and "
                             "route (default); rows without Fmax get an estimate, labelled, and a later run replaces them")
    parser.add_argument("--jobs", "-j", metavar="N", help="runs at a time (default: $JOBS, else one per core)")
    parser.add_argument("--out-dir", default=str(OUT_DIR), help="default: %(default)s")
    return parser


def main(argv=None):
    started = time.monotonic()
    load = load_average()
    args = _parser().parse_args(argv)
    from rtl import generate

    try:
        n_jobs = jobs.job_count(args.jobs)
        measured = cases(generate, args.kinds, args.mappings)
        explicit = dict(parse_size(text) for text in args.size)
    except ValueError as error:
        raise SystemExit(f"python -m synth.chip: {error}") from None
    history = jobs.History(Path("build/synth/times.json"))
    this_run = {"date": tools.utc_stamp(), "commit": rtl_commit(), "argv": list(argv if argv is not None else sys.argv[1:]),
                "load_average": load, "cores": jobs.cores()}

    # 1. cost models from Yosys alone at small sizes
    fits = [Synthesis(kind, size, mapping) for kind, mapping in measured for size in kind.fit_sizes]
    fitted = _run_all(run_synthesis, fits, n_jobs, history, lambda j: j.size[0] * j.size[1], "yosys")
    points = {(kind, mapping): [(j.size, fitted[j]) for j in fits if (j.kind, j.mapping) == (kind, mapping)]
              for kind, mapping in measured}
    skews = {kind: operand_skew_of(generate, kind) for kind, _ in measured}
    models = {(kind.name, mapping): fit(points[kind, mapping], kind.block, skews[kind]) for kind, mapping in measured}
    # Where Yosys infers no multiplier, the dsp mapping is the LUT-only design: placed once.
    as_lut = {kind for kind, mapping in measured if mapping == "dsp" and (kind, "lut") in points
              and all(counts["dsp"] == 0 for _, counts in points[kind, mapping])
              and [_counts(c) for _, c in points[kind, mapping]] == [_counts(c) for _, c in points[kind, "lut"]]}

    # 2. predicted sizes (or the explicit ones, refused when they cannot fit)
    plans = {}
    for kind, mapping in measured:
        if mapping == "dsp" and kind in as_lut:
            continue
        model = models[kind.name, mapping]
        for part in args.devices:
            try:
                if kind.name in explicit:
                    check_size(kind, explicit[kind.name], model, DEVICES[part])
                    plans[kind, mapping, part] = explicit[kind.name]
                else:
                    plans[kind, mapping, part] = largest_size(model, DEVICES[part], mapping, row_step=kind.row_step)
            except DoesNotFit as error:
                raise SystemExit(f"python -m synth.chip: {kind.name}, {mapping} mapping: {error}") from None

    # 3. one place and route each; a step down for those that do not fit
    def estimate(job):
        return predict(models[job.kind.name, job.mapping], job.size)["lut_equiv"]

    first = [Placement(kind, size, mapping, part, args.stop_after == "place") for (kind, mapping, part), size in plans.items()]
    if args.stop_after == "predict":
        placed = {job: {**dict.fromkeys((*COUNTS, "lut_share", "fmax_mhz")), "not_placed": True,
                        "error": "predicted only (--stop-after predict)"} for job in first}
    else:
        placed = _run_all(run_placement, first, n_jobs, history, estimate, "place")
    retries = {}
    for job in first:
        if placed[job]["fmax_mhz"] is None and job.kind.name not in explicit and not placed[job].get("not_placed"):
            smaller = largest_size(models[job.kind.name, job.mapping], DEVICES[job.device], job.mapping,
                                   below=job.size[0] * job.size[1], row_step=job.kind.row_step)
            retries[job] = Placement(job.kind, smaller, job.mapping, job.device, job.place)
    placed.update(_run_all(run_placement, list(retries.values()), n_jobs, history, estimate, "place (step down)"))

    # 4. the training step on each chosen array
    shapes = step_shapes()
    rows = []
    for job in first:
        final = retries.get(job, job)
        result = placed[final]
        pes = final.size[0] * final.size[1]
        fmax = result["fmax_mhz"]
        for mapping in ("lut", "dsp") if final.mapping == "lut" and final.kind in as_lut else (final.mapping,):
            rows.append({
                "device": final.device, "mapping": mapping, "same_as_lut": mapping != final.mapping,
                "kind": final.kind.name, "fmt": final.kind.fmt,
                "unit": final.kind.unit, "description": final.kind.description, "size": list(final.size), "pes": pes,
                "predicted": predict(models[final.kind.name, final.mapping], final.size),
                "first_try": None if final is job else {"size": list(job.size), "error": placed[job]["error"],
                                                        **_counts(placed[job])},
                **_counts(result), "lut_share": result["lut_share"], "fmax_mhz": fmax, "error": result.get("error"),
                "not_placed": bool(result.get("not_placed")),
                **{key: result.get(key) for key in ("router", "place_seconds", "route_seconds")},
                "date": result.get("date") or this_run["date"], "commit": this_run["commit"],
                "utilization": result.get("utilization", {}),
                "gmac_per_s": pes * fmax * final.kind.macs_per_pe / 1000 if fmax else None,
                "step": {"model_cycles_by_gemm": model_step_cycles(final.kind, final.size, shapes)},
            })
    steps = {}
    if args.no_sim:   # what earlier runs simulated on the same Verilog still counts
        for row in rows:
            measured = cached_step(KINDS[row["kind"]], tuple(row["size"]))
            if measured:
                steps[row["kind"], tuple(row["size"])] = measured
    else:
        sims = list({StepRun(KINDS[r["kind"]], tuple(r["size"])) for r in rows if KINDS[r["kind"]].step_bench})
        sims = jobs.longest_first(sims, lambda s: s.key, lambda s: s.size[0] * s.size[1], history)
        for done, (job, result, error) in enumerate(jobs.run(run_step, sims, n_jobs), 1):
            if error is not None:
                raise SystemExit(f"python -m synth.chip: training step on {label(job.kind, job.size)}: {error}")
            if not result["cached"]:
                history.record(job.key, result["wall_seconds"])
            print(f"[{done:2d}/{len(sims)}] step {job.key}: {result['cycles']:,} cycles measured, "
                  f"{result['model_cycles']:,} by the timing model{' (cached)' if result['cached'] else ''}", flush=True)
            steps[job.kind.name, job.size] = result
    for row in rows:
        step = row["step"] = dict(row["step"])
        step["model_cycles"] = sum(step["model_cycles_by_gemm"])
        measured = steps.get((row["kind"], tuple(row["size"])))
        if measured:
            step.update(cycles=measured["cycles"], cycles_by_gemm=measured["cycles_by_gemm"], sim=measured["sim"],
                        macs=measured["macs"])
            if row["fmax_mhz"]:
                step["seconds"] = measured["cycles"] / (row["fmax_mhz"] * 1e6)

    this_run["wall_seconds"] = round(time.monotonic() - started)
    model_entries = [{"kind": k, "mapping": m, "model": model, "points": [
        {"size": list(j.size), **{c: fitted[j][c] for c in COUNTS}} for j in fits if (j.kind.name, j.mapping) == (k, m)]}
        for (k, m), model in models.items()]
    out = Path(args.out_dir)
    default_out = out.resolve() == OUT_DIR.resolve()
    previous = (load_report(out.parent)[0] or {}) if default_out else _previous(out / "chip.json")
    report = merge(previous, this_run, model_entries, rows, shapes)
    out.mkdir(parents=True, exist_ok=True)
    (out / "chip.json").write_text(json.dumps(report, indent=2) + "\n")
    if default_out and args.stop_after == "place":
        RECORD.write_text(json.dumps(report, indent=1) + "\n")
    (out / "chip.md").write_text(markdown(report))
    print(markdown(report))
    return 0


def rtl_commit():
    """The checkout's commit (short), with "+dirty" when rtl/ differs from it; None outside git."""
    root = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(["git", "rev-parse", "--short=10", "HEAD"], cwd=root, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "rtl"], cwd=root, capture_output=True,
                               text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("+dirty" if dirty else "")


def load_report(build=Path("build")):
    """``(report, where)``: build/chip/chip.json, else the committed :data:`RECORD`, else ``(None, None)``;
    ``where`` names the file as the tables cite it."""
    for path, where in ((Path(build) / "chip" / "chip.json", "build/chip/chip.json"),
                        (RECORD, f"{RECORD.parent.name}/{RECORD.name}")):
        report = _previous(path)
        if report:
            return report, where
    return None, None


def _previous(path):
    try:
        return json.loads(Path(path).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def step_sentence(report):
    """One sentence on the training steps measured on the report's arrays and whether they equal the timing model."""
    runs = [(r["unit"], r["size"], r["step"]) for r in report["rows"] if r["step"].get("cycles") is not None]
    if not runs:
        return "No training step has been simulated yet: the step cycles are the timing model's."
    equal = all(step["cycles"] == step["model_cycles"] for _, _, step in runs)
    return ("Training steps simulated (Verilator, every output checked against golden): " + "; ".join(
        f"{unit} {size[0]}x{size[1]} {step['cycles']:,} cycles (timing model {step['model_cycles']:,})"
        for unit, size, step in runs) + (". Every one equals the timing model, cycle for cycle per GEMM." if equal else
                                         ". SOME DIFFER from the timing model."))


def merge(previous, this_run, model_entries, rows, shapes):
    """The chip report: ``previous``'s rows and models with those of this run replacing theirs (same
    device, mapping and kind), the ratios, notes and estimate from the merged rows."""
    def replace(old, new, key):
        keys = {key(entry) for entry in new}
        return [entry for entry in old if key(entry) not in keys] + new

    rows = replace(previous.get("rows", []), rows, lambda r: (r["device"], r["mapping"], r["kind"]))
    model_entries = replace(previous.get("models", []), model_entries, lambda m: (m["kind"], m["mapping"]))
    notes = [f"{kind}: Yosys infers no MULT18X18D for this array, so its dsp mapping is its LUT-only design "
             "(placed once, listed under both mappings)." for kind in sorted({r["kind"] for r in rows if r["same_as_lut"]})]
    synth_report = _previous("build/synth/report.json")
    runs = [*previous.get("runs", []), this_run]
    report = {
        "generated_utc": this_run["date"], "cores": this_run["cores"], "load_average": this_run["load_average"],
        "wall_seconds": this_run["wall_seconds"], "runs": runs,
        "budget": BUDGET, "accept": ACCEPT, "ff_budget": FF_BUDGET, "ff_accept": FF_ACCEPT, "seed": SEED, "method": method_notes(),
        "devices": {part: {"luts": d.luts, "dsps": d.dsps, "nextpnr": list(d.nextpnr_args)} for part, d in DEVICES.items()},
        "models": model_entries,
        "step_gemms": [{"mode": Mode(mode).name, "shape": [m, k, n]} for mode, m, k, n in shapes],
        "rows": with_estimates(rows, synth_report), "notes": notes,
    }
    return {**report, "comparisons": comparisons(report["rows"])}


if __name__ == "__main__":
    jobs.quiet_interrupts()
    sys.exit(main())
