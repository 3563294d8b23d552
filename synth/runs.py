"""One place-and-route run of the flow as a job for a process pool or a Dask worker."""

import time
from dataclasses import dataclass
from pathlib import Path

from . import designs as designs_mod
from . import flow, jobs


@dataclass(frozen=True)
class PlaceRun:
    """One place-and-route run: a design's Verilog on one target and mapping with one seed."""

    design: designs_mod.Design
    module: str
    verilog: str
    target: str
    mapping: str
    seed: int
    cache_dir: str

    @property
    def key(self):
        return f"{self.module}/{self.target}/{self.mapping}/{self.seed}"


def estimated_seconds(run):
    """Rough relative cost of a run never measured: arrays grow with their PE count."""
    size = run.design.macs_per_cycle or 1
    family = flow.TARGETS[run.target].family
    return size * (2.0 if run.design.array_size else 1.0) * (1.5 if family == "ecp5" else 1.0)


def place(run):
    """Synthesize (once per design, target and mapping, under a lock) and place ``run``."""
    lock = Path(run.cache_dir) / "locks" / f"{run.module}-{run.target}-{run.mapping}.lock"
    with jobs.locked(lock):  # the other seeds wait here, then find the netlist in the cache
        start = time.monotonic()
        flow.synthesize(run.verilog, run.module, run.target, run.mapping, run.cache_dir, log=print)
        synthesis = time.monotonic() - start
    start = time.monotonic()
    result = flow.run(run.verilog, run.module, run.target, run.mapping, run.seed, run.cache_dir, log=print)
    return {**result, "wall_seconds": synthesis + time.monotonic() - start}
