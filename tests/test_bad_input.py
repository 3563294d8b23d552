"""Bad input is answered with one line naming the bad value, before any work starts; Ctrl-C says
what it interrupted in one line. (Parameter errors of the units: tests/test_rtl_*.py; golden
argument checks: tests/test_golden_*.py.)"""

import os
import signal
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest

from conftest import ROOT
from golden import int4
from golden.training import data
from testbench import __main__ as testbench_main
from testbench import runner


@pytest.mark.parametrize("env, argv, message", [
    ({"SEED": "-3"}, [], "SEED must be a non-negative integer or 'random', got '-3'"),
    ({"SEED": "notanumber"}, [], "got 'notanumber'"),
    ({}, ["--seed", "notanumber"], "got 'notanumber'"),
    ({"UNIT": "nope"}, [], "UNIT must be one of"),
    ({"SIM": "questa"}, [], "SIM must be one of ('icarus', 'verilator') or 'all', got 'questa'"),
])
def test_testbench_bad_option_is_one_line_before_any_run(env, argv, message, monkeypatch, capsys):
    for name in ("SEED", "UNIT", "SIM"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(runner, "run", lambda *args, **kwargs: pytest.fail("a run started"))
    assert testbench_main.main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""                               # no table header
    assert err.count("\n") == 1 and message in err and "Traceback" not in err


def test_negative_seed_stops_pytest_before_any_test():
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "tests/test_docs.py"], cwd=ROOT,
                          env={**os.environ, "SEED": "-1"}, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "passed" not in proc.stdout
    assert "SEED must be a non-negative integer or 'random', got '-1'" in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr


def test_resolve_seed_rejects_negative():
    with pytest.raises(ValueError, match="got '-5'"):
        runner.resolve_seed("-5")
    assert runner.resolve_seed("0") == 0


@pytest.mark.parametrize("alpha, error, message", [
    ("2.0", TypeError, "alpha must be a real number, got '2.0'"),
    (np.array([1.0, 2.0]), TypeError, r"alpha must be a real scalar, got an array of shape \(2,\)"),
    (True, TypeError, "alpha must be a real number, got True"),
    (float("nan"), ValueError, "alpha must be finite and > 0, got nan"),
])
def test_pact_rejects_bad_alpha(alpha, error, message):
    with pytest.raises(error, match=message):
        int4.pact(np.array([0.5]), alpha)
    with pytest.raises(error, match=message):
        int4.pact_backward(np.array([0.5]), alpha, np.ones(1))


def test_pact_accepts_numpy_scalars():
    for alpha in (np.float32(1.0), np.array(1.0), 1):
        assert int4.pact(np.array([0.5]), alpha)[0] == 8       # 7.5 -> 8 (half to even)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_pact_backward_rejects_non_finite_gradients(bad):
    # docs/numerics.md section 8: bad input raises, naming the argument; it is never passed through.
    with pytest.raises(ValueError, match="grad_out contains a non-finite value"):
        int4.pact_backward(np.array([0.5, 2.0]), 1.0, np.array([1.0, bad]))


def test_sawb_warns_on_constant_magnitudes():
    with pytest.warns(RuntimeWarning, match="200x smaller than w"):
        codes, step = int4.sawb(np.array([0.5, -0.5, 0.5, -0.5]))
    assert codes.tolist() == [7, -7, 7, -7] and abs(7 * step - 0.0025) < 1e-12   # docs/numerics.md, section 1


def test_sawb_does_not_warn_on_gaussian_weights(rng):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        int4.sawb(rng.standard_normal(1000))


@pytest.mark.parametrize("content", [b"garbage", b"PK\x03\x04truncated zip", b"\x93NUMPY"])
def test_damaged_dataset_cache_names_the_file(tmp_path, content):
    (tmp_path / "mnist1d.npz").write_bytes(content)
    with pytest.raises(data.DamagedCache) as caught:
        data.load("mnist1d", tmp_path)
    message = str(caught.value)
    assert str(tmp_path / "mnist1d.npz") in message and "delete it" in message and "pickle" not in message


def _interrupt(argv, ready_line):
    """Start ``argv`` in its own process group, send SIGINT once ``ready_line`` is printed, return (rc, err)."""
    # A shell's background job inherits SIGINT ignored; a user's Ctrl-C reaches a default handler.
    proc = subprocess.Popen([sys.executable, *argv], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    for line in proc.stdout:
        if ready_line in line:
            break
    else:
        pytest.fail(f"{argv} never printed {ready_line!r}")
    time.sleep(1.0)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    return proc.returncode, err


def test_ctrl_c_during_simulation_is_one_line(tmp_path):
    rc, err = _interrupt(["-m", "testbench", "--unit", "fp16_pipe_mac", "--sim", "icarus", "--quick"],
                         "unit / configuration")
    assert rc == 130 and "Traceback" not in err
    assert err.strip().count("\n") == 0
    assert "interrupted (Ctrl-C) during simulation" in err


def test_ctrl_c_during_synthesis_is_one_line(tmp_path):
    rc, err = _interrupt(["-m", "synth", "--quick", "--designs", "fp16_pipe_mac", "--out-dir", str(tmp_path),
                          "--verilog-dir", str(tmp_path / "verilog")], "== synth:")
    assert rc == 1 and "Traceback" not in err
    assert err.strip().count("\n") == 0
    assert "interrupted (Ctrl-C) during synthesis" in err
