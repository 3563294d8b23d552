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


#: Approximate LUT-equivalents of each unit (an array: per PE) on ECP5, from the synthesis report.
#: Place-and-route time grows with the design, so they order a first run, before
#: build/synth/times.json holds measured times.
EXPECTED_LUTS = {"fp16_mac": 1000, "fp16_pipe_mac": 1500, "shift_mac": 240, "int4_mac": 160,
                 "mx_row": 2700, "fp32_scaled_add": 900, designs_mod.ARRAY_UNIT: 300, designs_mod.MX_ARRAY_UNIT: 500,
                 designs_mod.DSP_ARRAY_UNIT: 250, designs_mod.FP16_ARRAY_UNIT: 1200}


def estimated_seconds(run):
    """Relative cost of a run never measured: its expected size, more on ECP5 than on iCE40."""
    luts = EXPECTED_LUTS.get(run.design.unit, 200) * (run.design.macs_per_cycle if run.design.array_size else 1)
    return luts * (1.5 if flow.TARGETS[run.target].family == "ecp5" else 1.0)


def place(run):
    """Synthesize (once per design, target and mapping, under a lock) and place ``run``."""
    lock = Path(run.cache_dir) / "locks" / f"{run.module}-{run.target}-{run.mapping}.lock"
    with jobs.locked(lock):  # the other seeds wait here, then find the netlist in the cache
        start = time.monotonic()
        synthesized = flow.synthesize(run.verilog, run.module, run.target, run.mapping, run.cache_dir, log=print)
        synthesis = time.monotonic() - start
    start = time.monotonic()
    result = flow.run(run.verilog, run.module, run.target, run.mapping, run.seed, run.cache_dir, log=print)
    synthesized_now = 0 if synthesized["cached"] else synthesized["seconds"]
    return {**result, "cached": bool(synthesized["cached"]) and result["cached"],
            "tool_seconds": synthesized_now + result["tool_seconds"],
            "wall_seconds": synthesis + time.monotonic() - start}
