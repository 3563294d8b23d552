"""Dask distributed as the executor of sweeps and of the long regression.

Without a scheduler address a :class:`~dask.distributed.LocalCluster` of single-threaded worker
processes runs on this machine; with ``--scheduler tcp://HOST:PORT`` (or ``DASK_SCHEDULER``) the
jobs go to a running cluster. Each worker must run in a checkout of the project with its venv::

    .venv/bin/dask scheduler                          # on one machine: prints tcp://HOST:8786
    .venv/bin/dask worker tcp://HOST:8786 --nthreads 1 --nworkers 2   # in the project on each worker

(``--nthreads 1``: a job is one single-threaded tool process.) Jobs are submitted with decreasing
priority, so the longest start first; a job whose worker dies is run again on another worker
(Dask's scheduler does that by itself), and a job that raises is retried ``retries`` times.
"""

import os
from contextlib import contextmanager

SCHEDULER_ENV = "DASK_SCHEDULER"


def scheduler_address(value=None):
    """The scheduler to use: ``value``, else $DASK_SCHEDULER, else None (a local cluster).

    Raises
    ------
    ValueError
        If the address is not of the form ``tcp://HOST:PORT`` (or another Dask protocol).
    """
    address = value or os.environ.get(SCHEDULER_ENV) or None
    if address is not None and "://" not in address:
        raise ValueError(f"scheduler must be an address like tcp://HOST:8786, got {address!r}")
    return address


@contextmanager
def client(scheduler=None, workers=1):
    """A ``dask.distributed.Client``: on ``scheduler`` (see :func:`scheduler_address`), else on a
    local cluster of ``workers`` single-threaded processes listening on the loopback interface."""
    from dask.distributed import Client, LocalCluster

    address = scheduler_address(scheduler)
    if address is not None:
        with Client(address, timeout="30s") as connected:
            yield connected
        return
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address="127.0.0.1:0") as cluster, Client(cluster) as connected:
        yield connected


def worker_count(connected):
    """Threads the cluster's workers offer (one job each)."""
    return sum(connected.nthreads().values())


def run(connected, function, items, retries=1):
    """Submit ``function(item)`` for every item, the first ones with the highest priority.

    Yields ``(item, result, error)`` as each finishes, like :func:`synth.jobs.run`.
    """
    from dask.distributed import as_completed

    futures = {}
    for rank, item in enumerate(items):
        future = connected.submit(function, item, priority=len(items) - rank, retries=retries, pure=False)
        futures[future] = item
    for future in as_completed(futures):
        item = futures.pop(future)
        if future.status == "error":
            yield item, None, future.exception()
        else:
            yield item, future.result(), None
