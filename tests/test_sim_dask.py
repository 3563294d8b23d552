"""The simulation regression on Dask distributed: LONG=1 sends its runs to a Dask cluster, and a tiny
regression fans out over a 2-worker LocalCluster and is recorded like a local one."""

import contextlib
import json

import pytest

from testbench import __main__ as testbench_main
from testbench import summary

pytestmark = pytest.mark.cocotb

UNIT, SIM = "fp32_scaled_add", "icarus"   # two small configurations, a quick Icarus build each


def test_long_regression_goes_to_a_dask_cluster(monkeypatch):
    calls = []

    @contextlib.contextmanager
    def client(address, workers):
        calls.append(("client", address, workers))
        yield "client"

    def run(connected, job, targets):
        calls.append(("run", connected, [(t.sim, t.name) for t in targets], job.keywords["level"]))
        return iter(())

    monkeypatch.setattr(testbench_main.cluster, "client", client)
    monkeypatch.setattr(testbench_main.cluster, "run", run)
    monkeypatch.setenv("LONG", "1")
    monkeypatch.delenv("DASK_SCHEDULER", raising=False)
    assert testbench_main.main(["--sim", SIM, "--unit", "grad_scale", "--jobs", "2"]) == 0
    assert calls == [("client", None, 2), ("run", "client", [(SIM, "grad_scale")], "long")]


def test_tiny_regression_fans_out_over_two_dask_workers(monkeypatch, capsys):
    from dask.distributed import Client, LocalCluster, get_task_stream

    monkeypatch.delenv("LONG", raising=False)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address="127.0.0.1:0") as local, Client(local) as connected:
        with get_task_stream(connected) as stream:
            status = testbench_main.main(["--quick", "--sim", SIM, "--unit", UNIT,
                                          "--scheduler", local.scheduler_address])
        tasks = [t for t in stream.data if t["key"].startswith("run-")]
        workers = set(local.workers[name].worker_address for name in local.workers)
    out = capsys.readouterr().out
    assert status == 0, out
    assert "2/2 runs passed (quick regression" in out
    assert len(tasks) == 2 and {t["worker"] for t in tasks} <= workers
    runs = json.loads(summary.SUMMARY.read_text())["levels"]["quick"]["runs"]
    for name in ("fp32_scaled_add__sig_width_14__exp_width_10", "fp32_scaled_add__sig_width_21__exp_width_6"):
        run = runs[f"{SIM}/{name}"]
        assert run["passed"] and run["mismatches"] == 0 and run["vectors"] > 0
