"""``make FAST=1`` end to end on a tiny configuration, and the report page in a real headless browser.

The flow runs in a copy of the source tree (its own build/, the project's .venv), restricted to one
unit on Verilator and the INT4 MAC plus the smallest array on ECP5, so it checks every stage of the
real Makefile in a few minutes. The browser check opens the report in Debian's chromium
(installed with apt-get when missing) and saves a screenshot as build/report_screenshot.png.
"""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
TINY = ["FAST=1", "SIM=verilator", "UNIT=int4_mac", "SYNTH_ARGS=--designs int4_mac__* training_array*"]

pytestmark = pytest.mark.cocotb


def _make(tree, *args, check=True):
    env = {**os.environ, "PYTHONPATH": str(tree)}
    for name in ("SIM", "UNIT", "FAST", "LONG", "SEED", "WAVES", "MAKEFLAGS", "MAKELEVEL"):
        env.pop(name, None)
    result = subprocess.run(["make", "--no-print-directory", f"VENV={VENV}", *args], cwd=tree, env=env,
                            capture_output=True, text=True, timeout=1800)
    if check and result.returncode != 0:
        raise AssertionError(f"make {' '.join(args)} failed ({result.returncode}):\n"
                             f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
    return result


@pytest.fixture(scope="module")
def flow(tmp_path_factory):
    """(tree, completed process) of ``make FAST=1`` on the tiny configuration in a copy of the sources."""
    stamp = VENV / ".fourbit-installed"
    if not stamp.is_file() or stamp.stat().st_mtime < (ROOT / "pyproject.toml").stat().st_mtime:
        pytest.fail("the project's .venv is missing or older than pyproject.toml: run `make test` (it installs it)")
    tree = tmp_path_factory.mktemp("flow") / "fourbit"
    shutil.copytree(ROOT, tree, ignore=shutil.ignore_patterns(".venv", "build", ".git", "__pycache__",
                                                              "*.egg-info", ".pytest_cache"))
    return tree, _make(tree, *TINY)


def test_fast_flow_runs_every_stage_and_writes_the_report(flow):
    tree, result = flow
    build = tree / "build"
    for stage in ("selfcheck", "verilog", "sim", "synth", "report"):
        assert f"== fourbit [{stage}]" in result.stdout, f"no banner for stage {stage}"
        record = json.loads((build / "stages" / f"{stage}.json").read_text())
        assert record["seconds"] > 0 and record["cpu_seconds"] >= 0, stage
        assert f"== fourbit [{stage}] done: " in result.stdout
    assert json.loads((build / "stages" / "sim.json").read_text())["cpu_seconds"] > 1   # Verilator builds
    assert "== fourbit [train] skipped (FAST=1)" in result.stdout
    assert (build / "verilog" / "manifest.json").is_file()

    runs = json.loads((build / "sim" / "summary.json").read_text())["levels"]["quick"]["runs"]
    assert runs and all(key.startswith("verilator/int4_mac") for key in runs)
    assert all(run["passed"] and run["mismatches"] == 0 and run["vectors"] > 0 for run in runs.values())

    synth = json.loads((build / "synth" / "report.json").read_text())
    units = {row["unit"] for row in synth["rows"] if row["fits"] and row["fmax_mhz"]}
    assert units == {"int4_mac", "training_array"}

    md = (build / "report.md").read_text()
    for title in ("Key figures", "Bit-exact simulation", "Synthesis", "Stages"):
        assert f"## {title}" in md
    assert "Not run yet: `make train (or make train-quick)`" in md
    assert f"{sum(r['vectors'] for r in runs.values()):,} vectors" in md
    assert "report written to build/report.md and build/report.html" in result.stdout


def test_a_failing_stage_names_itself_and_keeps_earlier_results(flow):
    tree, _ = flow
    report = (tree / "build" / "report.md").read_text()
    result = _make(tree, "synth", "SYNTH_ARGS=--designs no_such_unit", check=False)
    assert result.returncode != 0
    assert "fourbit: stage 'synth' failed" in result.stderr
    assert "no_such_unit" in result.stdout + result.stderr
    assert (tree / "build" / "report.md").read_text() == report
    assert (tree / "build" / "sim" / "summary.json").is_file()


def _chromium():
    found = shutil.which("chromium")
    if found:
        return found
    if not shutil.which("apt-get"):
        pytest.fail("chromium is missing and apt-get is not available: install Chromium to run the browser check")
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(sudo + ["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(sudo + ["apt-get", "install", "-y", "-qq", "chromium"], check=True, env=env)
    return shutil.which("chromium")


def _headless(chromium, *args):
    return subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           "--virtual-time-budget=5000", *args], capture_output=True, text=True, timeout=120)


def test_report_page_renders_in_a_headless_browser(flow):
    tree, _ = flow
    page = (tree / "build" / "report.html").as_uri()
    chromium = _chromium()
    dom = _headless(chromium, "--dump-dom", page).stdout
    tables = re.findall(r"<table>.*?</table>", dom, re.S)
    assert len(tables) >= 4, dom[:2000]
    assert any("int4_mac" in t and "verilator" in t for t in tables)
    captions = re.findall(r'<img src="data:image/png;base64,[^"]*" alt="([^"]*)"', dom)
    # LUTs and Fmax against array size; the per-format plot where a format has a gap and a PE
    assert {"arrays lut equiv", "arrays fmax"} <= set(captions), captions
    assert set(captions) <= {"arrays lut equiv", "arrays fmax", "accuracy gap against MAC/s per 1k LUT"}, captions
    assert 'class="broken"' not in dom            # every image decoded

    screenshot = ROOT / "build" / "report_screenshot.png"
    screenshot.parent.mkdir(exist_ok=True)
    screenshot.unlink(missing_ok=True)
    _headless(chromium, "--window-size=1200,2400", f"--screenshot={screenshot}", page)
    assert screenshot.stat().st_size > 10_000
