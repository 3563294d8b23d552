"""``python -m synth.boards --board ulx3s|icebreaker``: a bitstream of the array self-test for a real board.

The top is :class:`rtl.bist.BoardSelfTest`: a TrainingArray runs a stored GEMM in all three modes
over and over and checks every output beat against golden.tiling (rtl/bist.py). amaranth-boards
supplies the platform (pins, clock constraint, build script); the script's commands (Yosys,
nextpnr, ecppack/icepack) run here with the YoWASP builds of the tools under ``nice -n 10``.
Writes ``<out>/<board>/`` with the tool logs, the bitstream and ``summary.json`` (utilization,
Fmax, bitstream path and size); an unchanged design is not rebuilt.
"""

import argparse
import json
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from rtl import tools

BUILD_NAME = "fourbit_bist"
DEFAULT_OUT = Path("build/boards")


@dataclass(frozen=True)
class Board:
    """A board the self-test is built for.

    Attributes
    ----------
    platform : str
        ``module:class`` of the amaranth-boards platform.
    rows, cols : int
        Default array size.
    leds : dict
        LED indices (the platform's ``led`` resources) for ``passed``, ``failed``, ``running``.
    bitstream : str
        Suffix of the bitstream file the build script writes.
    extra_resources : str
        Name of a platform attribute with resources to add (e.g. a board's snap-off PMOD), or "".
    """

    platform: str
    rows: int
    cols: int
    leds: dict
    bitstream: str
    extra_resources: str = ""

    def make_platform(self):
        module, name = self.platform.split(":")
        platform = getattr(__import__(module, fromlist=[name]), name)()
        if self.extra_resources:
            platform.add_resources(getattr(platform, self.extra_resources))
        return platform


BOARDS = {
    # LED 0..7 on the board; BTN "F1" (button 0) restarts.
    "ulx3s": Board("amaranth_boards.ulx3s:ULX3S_85F_Platform", 8, 8,
                   {"passed": 0, "failed": 1, "running": 7}, ".bit"),
    # Green LED passed, red LED failed, LED 2 (the snap-off PMOD's red LED) blinks; the user button restarts.
    "icebreaker": Board("amaranth_boards.icebreaker:ICEBreakerPlatform", 2, 2,
                        {"passed": 1, "failed": 0, "running": 2}, ".bin", extra_resources="break_off_pmod"),
}


class BoardBuildError(RuntimeError):
    """A tool failed or did not write what it should; the message ends with the tail of its log."""


def parse_size(text):
    """``"RxC"`` -> (R, C), each 2..32; anything else is a ValueError naming the value."""
    match = re.fullmatch(r"(\d+)x(\d+)", str(text))
    if match is None:
        raise ValueError(f"size must look like RxC (e.g. 4x4), got {text!r}")
    rows, cols = int(match[1]), int(match[2])
    for name, value in (("rows", rows), ("cols", cols)):
        if not 2 <= value <= 32:
            raise ValueError(f"{name} must lie in 2..32, got {value} (size {text!r})")
    return rows, cols


def _digest(files, seed):
    """Cache key of a build plan's files (debug Verilog left out), the tool versions and the placer seed."""
    kept = sorted(name for name in files if not name.endswith(".debug.v"))
    return tools.digest(*[part for name in kept for part in (name, files[name])], tools.tool_versions(), seed)


def _run(command, cwd, log_path, log):
    """Run one build-script command under ``nice -n 10`` with output to ``log_path``; returns seconds."""
    tool = command[0]
    try:
        executable = tools.executable(f"yowasp-{tool}")
    except tools.ToolNotFound as error:
        raise BoardBuildError(f"the build script calls {tool!r}: {error}") from None
    if tools.needs_compile(f"yowasp-{tool}"):
        log(f"    yowasp-{tool}: first call on this machine, compiling its WebAssembly to machine code "
            "(one to several minutes, cached afterwards)...")
    started = time.monotonic()
    with open(log_path, "w") as out:
        code = subprocess.run(["nice", "-n", "10", executable, *command[1:]], cwd=cwd,
                              stdout=out, stderr=subprocess.STDOUT).returncode
    if code != 0:
        tail = "\n".join(Path(log_path).read_text(errors="replace").splitlines()[-15:])
        raise BoardBuildError(f"{tool} exited with {code} in {cwd}\n{tail}")
    return time.monotonic() - started


def _timing(report):
    """{clock: {achieved_mhz, constraint_mhz}} from a nextpnr ``--report`` JSON."""
    return {name: {"achieved_mhz": round(clock["achieved"], 2), "constraint_mhz": round(clock["constraint"], 2)}
            for name, clock in report.get("fmax", {}).items()}


def prepare(board, size=None, k=16, seed=0, pnr_seed=1, log=print):
    """Elaborate the self-test top for ``board``; returns (Board, platform, SelfTestProgram, BuildPlan).

    The arguments are those of :func:`build`; nothing is run.
    """
    if board not in BOARDS:
        raise ValueError(f"board must be one of {sorted(BOARDS)}, got {board!r}")
    spec = BOARDS[board]
    rows, cols = size or (spec.rows, spec.cols)
    from rtl.bist import BoardSelfTest, self_test_program

    log(f"== bitstream for {board}: {rows}x{cols} training array self-test ({spec.platform.split(':')[1]})")
    program = self_test_program(rows, cols, k=k, seed=seed)
    log(f"  elaborating: {len(program.commands)} tiles (FWD, BWD_DATA, BWD_WEIGHT), "
        f"{len(program.beats)} operand beats, {len(program.expected)} checked output beats, "
        f"{program.cycles} cycles per run")
    platform = spec.make_platform()
    plan = platform.prepare(BoardSelfTest(program, spec.leds), name=BUILD_NAME,
                            nextpnr_opts=f"--report report.json --seed {pnr_seed}")
    return spec, platform, program, plan


def build(board, out_dir=DEFAULT_OUT, size=None, k=16, seed=0, pnr_seed=1, log=print):
    """Build the self-test bitstream for ``board``; returns the summary dict (also in summary.json).

    Parameters
    ----------
    board : str
        A key of :data:`BOARDS`.
    out_dir : path
        The board's files go to ``out_dir/board``.
    size : (int, int), optional
        Array rows and columns (default: the board's).
    k : int
        Operand beats per tile of the stored GEMMs.
    seed, pnr_seed : int
        Seed of the stored GEMMs and of nextpnr's placer.
    """
    started = time.monotonic()
    spec, platform, program, plan = prepare(board, size, k, seed, pnr_seed, log)
    rows, cols = program.rows, program.cols
    work = Path(out_dir) / board
    key = _digest(plan.files, pnr_seed)
    bitstream = work / f"{BUILD_NAME}{spec.bitstream}"
    summary_path = work / "summary.json"
    if summary_path.is_file() and bitstream.is_file():
        previous = json.loads(summary_path.read_text())
        if previous.get("key") == key and previous.get("bitstream_bytes") == bitstream.stat().st_size:
            log(f"  up to date: {bitstream} ({previous['bitstream_bytes']} bytes); summary: {summary_path}")
            return previous

    plan.extract(work)
    bitstream.unlink(missing_ok=True)
    commands = json.loads((work / f"build_{BUILD_NAME}.json").read_text())["commands"]
    seconds = {}
    for step, command in enumerate(commands, start=1):
        tool = command[0]
        log(f"  [{step}/{len(commands)}] {tool} (nice -n 10 yowasp-{tool}) ...")
        seconds[tool] = round(_run(command, work, work / f"{tool}.log", log), 1)
        log(f"        done in {seconds[tool]:.1f} s")
    if not bitstream.is_file() or bitstream.stat().st_size == 0:
        raise BoardBuildError(f"no bitstream: {bitstream} is missing or empty after {commands[-1][0]}")

    report = json.loads((work / "report.json").read_text())
    timing = _timing(report)
    fmax = min((clock["achieved_mhz"] for clock in timing.values()), default=None)
    constraint = min((clock["constraint_mhz"] for clock in timing.values()), default=None)
    summary = {
        "board": board,
        "platform": spec.platform,
        "device": platform.device,
        "package": platform.package,
        "array": {"rows": rows, "cols": cols, "fwd_width": program.fwd_width, "bwd_width": program.bwd_width},
        "program": {"seed": seed, "k": k, "tiles": len(program.commands), "operand_beats": len(program.beats),
                    "output_beats": len(program.expected), "cycles_per_run": program.cycles},
        "leds": spec.leds,
        "clock_mhz": constraint,
        "fmax_mhz": fmax,
        "timing_met": fmax is not None and constraint is not None and fmax >= constraint,
        "clocks": timing,
        "utilization": {bel: entry for bel, entry in report.get("utilization", {}).items() if entry["used"]},
        "bitstream": str(bitstream),
        "bitstream_bytes": bitstream.stat().st_size,
        "pnr_seed": pnr_seed,
        "tools": tools.tool_versions(),
        "seconds": {**seconds, "total": round(time.monotonic() - started, 1)},
        "key": key,
    }
    summary_path.write_text(json.dumps(summary, indent=2) + "\n")
    log(f"  bitstream: {bitstream} ({summary['bitstream_bytes']} bytes); Fmax {fmax} MHz "
        f"(clock {constraint} MHz{'' if summary['timing_met'] else ', NOT MET'}); summary: {summary_path}")
    return summary


def _parser():
    parser = argparse.ArgumentParser(prog="python -m synth.boards", description=__doc__.splitlines()[0])
    parser.add_argument("--board", required=True, choices=sorted(BOARDS))
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="output folder (default: %(default)s)")
    parser.add_argument("--size", help="array size RxC (default: 8x8 on ulx3s, 2x2 on icebreaker)")
    parser.add_argument("--k", type=int, default=16, help="operand beats per tile (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the stored GEMMs (default: %(default)s)")
    parser.add_argument("--pnr-seed", type=int, default=1, help="nextpnr placer seed (default: %(default)s)")
    return parser


def main(argv=None):
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        size = parse_size(args.size) if args.size else None
        if not 1 <= args.k <= 4096:
            raise ValueError(f"k must lie in 1..4096, got {args.k}")
        if args.seed < 0:
            raise ValueError(f"seed must be >= 0, got {args.seed}")
    except ValueError as error:
        parser.error(str(error))
    try:
        summary = build(args.board, args.out, size, args.k, args.seed, args.pnr_seed,
                        log=lambda text: print(text, flush=True))
    except BoardBuildError as error:
        print(f"python -m synth.boards: {error}", file=sys.stderr)
        return 1
    return 0 if summary["timing_met"] else 2


if __name__ == "__main__":
    sys.exit(main())
