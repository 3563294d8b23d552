"""synth.jobs: job count, measured-time history and the longest-first order, on stub jobs."""

import os
import time

import pytest

from synth import jobs


def test_job_count_defaults_to_the_cores_and_obeys_jobs(monkeypatch):
    monkeypatch.delenv("JOBS", raising=False)
    assert jobs.job_count() == jobs.cores() >= 1
    monkeypatch.setenv("JOBS", "3")
    assert jobs.job_count() == 3
    assert jobs.job_count("1") == 1     # an explicit value wins over JOBS
    monkeypatch.setenv("JOBS", "")
    assert jobs.job_count() == jobs.cores()


@pytest.mark.parametrize("value", ["0", "-2", "two", "1.5"])
def test_bad_job_counts_are_refused_by_name(value):
    with pytest.raises(ValueError, match=f"JOBS must be a positive integer, got '{value}'"):
        jobs.job_count(value)


def test_history_keeps_what_other_processes_recorded(tmp_path):
    path = tmp_path / "times.json"
    first, second = jobs.History(path), jobs.History(path)
    first.record("a", 12.345)
    second.record("b", 3)
    assert jobs.History(path).seconds == {"a": 12.35, "b": 3.0}


def test_measured_times_order_before_estimates(tmp_path):
    history = jobs.History(tmp_path / "times.json")
    history.record("small-but-slow", 500)
    items = ["tiny", "small-but-slow", "huge", "medium"]
    estimate = {"tiny": 1, "small-but-slow": 2, "huge": 100, "medium": 10}.get
    assert jobs.longest_first(items, str, estimate) == ["huge", "medium", "small-but-slow", "tiny"]
    assert jobs.longest_first(items, str, estimate, history) == ["small-but-slow", "huge", "medium", "tiny"]


def _stub(item):
    """A stub job: sleeps its ``seconds`` and says when it started, in which process."""
    name, seconds = item
    started = time.monotonic()
    time.sleep(seconds)
    if name == "broken":
        raise RuntimeError("stub failure")
    return started, os.getpid()


def test_two_jobs_at_a_time_start_in_the_given_order():
    # Longest first with two workers: 0.6 and 0.4 start together, 0.3 takes the worker that the
    # 0.4 job frees, then 0.2 and 0.1 follow in order.
    items = jobs.longest_first([("e", 0.1), ("b", 0.4), ("a", 0.6), ("d", 0.2), ("c", 0.3)],
                               key=lambda item: item[0], estimate=lambda item: item[1])
    assert [name for name, _ in items] == ["a", "b", "c", "d", "e"]
    finished = list(jobs.run(_stub, items, jobs=2))
    assert all(error is None for _, _, error in finished)
    started = {item[0]: result for item, result, _ in finished}
    assert len({pid for _, pid in started.values()} - {os.getpid()}) == 2   # two worker processes
    by_start = sorted(started, key=lambda name: started[name][0])
    assert set(by_start[:2]) == {"a", "b"}
    assert by_start[2:] == ["c", "d", "e"]


def test_one_job_at_a_time_runs_in_process_and_reports_failures():
    finished = list(jobs.run(_stub, [("ok", 0), ("broken", 0)], jobs=1))
    assert finished[0][1][1] == os.getpid() and finished[0][2] is None
    assert isinstance(finished[1][2], RuntimeError) and finished[1][1] is None


def test_a_failing_job_in_a_pool_is_reported_and_the_others_finish():
    finished = {item[0]: (result, error) for item, result, error in
                jobs.run(_stub, [("broken", 0.05), ("ok", 0.05), ("fine", 0.05)], jobs=2)}
    assert str(finished["broken"][1]) == "stub failure"
    assert finished["ok"][1] is None and finished["fine"][1] is None
