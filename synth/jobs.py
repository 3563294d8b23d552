"""Running independent jobs side by side, the longest first.

The flow's place-and-route runs and simulator runs are independent and each uses one core, so
they run in a pool of ``jobs`` worker processes (default: one per core; ``JOBS`` overrides it).
The pool takes jobs in the order given, so that order decides how well the cores are used at
the end: the jobs expected to take longest start first, and short ones fill the gaps. The
expected time of a job is the wall time it last took (:class:`History`), else an estimate
supplied by the caller.
"""

import concurrent.futures
import json
import multiprocessing
import os
import sys
from pathlib import Path

from rtl.tools import locked


def cores():
    """Cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def job_count(value=None):
    """Number of parallel jobs: ``value``, else the JOBS environment variable, else :func:`cores`.

    Raises
    ------
    ValueError
        If the value is not a positive integer (the message names it).
    """
    raw = value if value not in (None, "") else os.environ.get("JOBS", "")
    if raw in (None, ""):
        return cores()
    try:
        count = int(raw)
    except (TypeError, ValueError):
        raise ValueError(f"JOBS must be a positive integer, got {raw!r}") from None
    if count < 1:
        raise ValueError(f"JOBS must be a positive integer, got {raw!r}")
    return count


class History:
    """Wall seconds of the last run of each job, in a JSON file shared by concurrent processes."""

    def __init__(self, path):
        self.path = Path(path)
        self.seconds = self._read()

    def _read(self):
        try:
            return json.loads(self.path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return {}

    def get(self, key):
        return self.seconds.get(key)

    def record(self, key, seconds):
        """Store ``seconds`` for ``key`` (merged with what other processes stored meanwhile)."""
        self.seconds[key] = round(float(seconds), 2)
        with locked(self.path.with_name(self.path.name + ".lock")):
            merged = {**self._read(), key: self.seconds[key]}
            temporary = self.path.with_name(self.path.name + f".{os.getpid()}.tmp")
            temporary.write_text(json.dumps(merged, indent=1, sort_keys=True) + "\n")
            temporary.replace(self.path)


def longest_first(items, key, estimate, history=None):
    """``items`` sorted by expected wall time, longest first (stable for equal times).

    Parameters
    ----------
    items : list
    key : callable(item) -> str
        The item's name in ``history``.
    estimate : callable(item) -> float
        Expected seconds of an item never run before (only their order matters).
    history : History, optional
        Measured seconds of earlier runs; they take precedence over ``estimate``.
    """
    def expected(item):
        measured = history.get(key(item)) if history is not None else None
        return measured if measured is not None else estimate(item)

    return sorted(items, key=expected, reverse=True)


def quiet_interrupts():
    """Let Ctrl-C end a run with the caller's one-line message only: a KeyboardInterrupt that lands
    in an object finaliser (Python prints those as "Exception ignored in ...") is dropped. Forked
    workers inherit the hook."""
    default = sys.unraisablehook

    def hook(unraisable):
        if not isinstance(unraisable.exc_value, KeyboardInterrupt):
            default(unraisable)

    sys.unraisablehook = hook


def run(function, items, jobs=1):
    """Call ``function(item)`` for every item, ``jobs`` at a time, starting in the order given.

    Yields ``(item, result, error)`` as each call finishes (``error`` is the exception it raised,
    else None). With ``jobs == 1`` the calls run one after another in this process.
    """
    if jobs == 1 or len(items) <= 1:
        for item in items:
            try:
                yield item, function(item), None
            except Exception as error:  # noqa: BLE001 - handed to the caller, which reports it
                yield item, None, error
        return
    # fork: the workers inherit the imported modules (Amaranth, the registry) instead of re-importing
    context = multiprocessing.get_context("fork")
    with concurrent.futures.ProcessPoolExecutor(max_workers=min(jobs, len(items)), mp_context=context) as pool:
        futures = {}
        for item in items:  # submitted in order; the pool's queue hands them out in that order
            futures[pool.submit(function, item)] = item
        for future in concurrent.futures.as_completed(futures):
            error = future.exception()
            yield futures[future], None if error else future.result(), error
