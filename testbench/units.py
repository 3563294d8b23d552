"""The verification plan: which bench checks which unit, in which configurations, at which level.

Levels: ``quick`` (``make test``, minutes for everything), ``full`` (``make sim``: every binary16
pattern, two to four times quick's random vectors, saturation of the wide accumulators) and ``long``
(LONG=1: at least a million random MACs per unit and simulator, more configurations and scales).
The bench modules choose their vector counts by level; quick and full use the ``quick`` configurations. Width 8 makes saturation frequent in
random streams, and for ShiftMac even a single term can saturate.
"""

import gc
import warnings
from dataclasses import dataclass

from amaranth.hdl import UnusedElaboratable

import rtl.generate

SIMULATORS = ("icarus", "verilator")
LEVELS = ("quick", "full", "long")
#: 8 lanes on both: Verilator's C++ build grows with the lanes (64 lanes cost 3-5x the build time of 8,
#: 10-25 s per configuration, for a run time of well under a second at the full level).
LANES = {"icarus": 8, "verilator": 8}


@dataclass(frozen=True)
class Bench:
    """How one unit is verified.

    Attributes
    ----------
    unit : str
        Unit name in ``rtl.generate.UNITS``.
    module : str
        cocotb test module.
    lanes : dict of str -> int
        Copies of the unit in the batch wrapper (:mod:`testbench.batch`) per simulator (Icarus is event
        driven and slow on wide vectors; Verilator's build time grows with the lanes). Empty means
        the unit itself is the simulation top and the bench drives it cycle by cycle.
    depth : int
        Cycles per batch chunk (bounds the stimulus and response files).
    quick, long : tuple of dict
        Unit parameters of the quick/full and of the long regression.
    simulators : tuple of str
        Simulators of the regression when none is named (``python -m testbench``, the unit
        tests); the others only on request (``--sim``, SIM).
    """

    unit: str
    module: str
    lanes: dict
    depth: int
    quick: tuple
    long: tuple
    simulators: tuple = SIMULATORS


# Int4Mac and its DSP-pair variant share their ports and configurations.
INT4_MAC_QUICK = ({"width": 24, "signed_a": False}, {"width": 8, "signed_a": True})
INT4_MAC_LONG = ({"width": 24, "signed_a": False}, {"width": 24, "signed_a": True},
                 {"width": 8, "signed_a": False}, {"width": 64, "signed_a": True})

BENCHES = {
    "int4_mac": Bench(
        "int4_mac", "testbench.bench_int4_mac", lanes=LANES, depth=16384,
        quick=INT4_MAC_QUICK, long=INT4_MAC_LONG,
    ),
    "int4_mac_pair_dsp": Bench(
        "int4_mac_pair_dsp", "testbench.bench_int4_mac_pair_dsp", lanes=LANES, depth=16384,
        quick=INT4_MAC_QUICK, long=INT4_MAC_LONG,
    ),
    "shift_mac": Bench(
        "shift_mac", "testbench.bench_shift_mac", lanes=LANES, depth=16384,
        quick=({"width": 32, "signed_b": True}, {"width": 8, "signed_b": False}),
        long=({"width": 32, "signed_b": True}, {"width": 32, "signed_b": False},
              {"width": 8, "signed_b": True}, {"width": 64, "signed_b": False}),
    ),
    "radix4_quantizer": Bench(
        "radix4_quantizer", "testbench.bench_radix4_quantizer", lanes={}, depth=0,
        quick=({},), long=({},),
    ),
    "grad_scale": Bench(
        "grad_scale", "testbench.bench_grad_scale", lanes={}, depth=0,
        quick=({},), long=({},),
    ),
    "fp16_mac": Bench(
        "fp16_mac", "testbench.bench_fp16_mac", lanes=LANES, depth=16384,
        quick=({},), long=({},),
    ),
    "fp16_pipe_mac": Bench(
        "fp16_pipe_mac", "testbench.bench_fp16_pipe_mac", lanes=LANES, depth=16384,
        quick=({},), long=({},),
    ),
    "training_array": Bench(  # a small non-square array with narrow widths (saturates) and the default
        "training_array", "testbench.bench_training_array", lanes={}, depth=0,
        quick=({"rows": 3, "cols": 2, "fwd_width": 12, "bwd_width": 20}, {"rows": 8, "cols": 8}),
        long=({"rows": 3, "cols": 2, "fwd_width": 12, "bwd_width": 20}, {"rows": 8, "cols": 8},
              {"rows": 2, "cols": 5, "fwd_width": 16, "bwd_width": 12}, {"rows": 5, "cols": 3}),
    ),
    "training_array_dsp": Bench(  # the same bench on the DSP-mapped array (R = 3: a 1-row PE under a pair)
        "training_array_dsp", "testbench.bench_training_array", lanes={}, depth=0,
        quick=({"rows": 3, "cols": 2, "fwd_width": 12, "bwd_width": 20}, {"rows": 4, "cols": 4}),
        long=({"rows": 3, "cols": 2, "fwd_width": 12, "bwd_width": 20}, {"rows": 8, "cols": 8},
              {"rows": 2, "cols": 5, "fwd_width": 16, "bwd_width": 12}, {"rows": 5, "cols": 3}),
    ),
    "fp16_array": Bench(  # the FP16 array: a small non-square one and, in the long run, 4x4
        "fp16_array", "testbench.bench_fp16_array", lanes={}, depth=0,
        quick=({"rows": 3, "cols": 2},), long=({"rows": 3, "cols": 2}, {"rows": 4, "cols": 4}),
    ),
    "fp32_scaled_add": Bench(  # MXFP4 and NVFP4 term widths
        "fp32_scaled_add", "testbench.bench_fp32_scaled_add", lanes={}, depth=0,
        quick=({"sig_width": 14, "exp_width": 10}, {"sig_width": 21, "exp_width": 6}),
        long=({"sig_width": 14, "exp_width": 10}, {"sig_width": 21, "exp_width": 6}),
    ),
    "mx_block_term": Bench(  # a block sum and its scale codes to the float32 unit's term, both formats
        "mx_block_term", "testbench.bench_mx_block_term", lanes=LANES, depth=16384,
        quick=({"fmt": "mxfp4"}, {"fmt": "nvfp4"}), long=({"fmt": "mxfp4"}, {"fmt": "nvfp4"}),
    ),
    "mx_row": Bench(  # a row of block-scaled PEs (rtl/mx_pe.py) with shared or per-PE float32 units
        "mx_row", "testbench.bench_mx_row", lanes={}, depth=0,
        quick=({"fmt": "mxfp4", "columns": 4, "shared": True}, {"fmt": "nvfp4", "columns": 3, "shared": True}),
        long=({"fmt": "mxfp4", "columns": 4, "shared": True}, {"fmt": "nvfp4", "columns": 3, "shared": True},
              {"fmt": "mxfp4", "columns": 32, "shared": True}, {"fmt": "mxfp4", "columns": 3, "shared": False},
              {"fmt": "nvfp4", "columns": 16, "shared": True}),
    ),
    "mx_array": Bench(  # the MX training array: small non-square MXFP4 and NVFP4 arrays, bigger in the long run
        "mx_array", "testbench.bench_mx_array", lanes={}, depth=0,
        quick=({"rows": 3, "cols": 2, "fmt": "mxfp4"}, {"rows": 2, "cols": 3, "fmt": "nvfp4"}),
        long=({"rows": 3, "cols": 2, "fmt": "mxfp4"}, {"rows": 2, "cols": 3, "fmt": "nvfp4"},
              {"rows": 4, "cols": 4, "fmt": "mxfp4"}, {"rows": 3, "cols": 16, "fmt": "nvfp4"}),
    ),
    "training_core": Bench(  # training steps of a small MLP on the default array (testbench/bench_train_steps.py)
        "training_core", "testbench.bench_train_steps", lanes={}, depth=0,
        quick=({"rows": 8, "cols": 8},), long=({"rows": 8, "cols": 8},), simulators=("verilator",),
    ),
}


def configurations(unit, level):
    """Parameter dicts to verify for ``unit`` at regression ``level``."""
    if unit not in BENCHES:
        raise ValueError(f"unit must be one of {sorted(BENCHES)}, got {unit!r}")
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
    bench = BENCHES[unit]
    return [dict(params) for params in (bench.long if level == "long" else bench.quick)]


def unit_ports(unit, params):
    """Verilog ports of ``unit`` with ``params`` (``rtl.generate.ports`` of an unelaborated instance)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnusedElaboratable)  # built only to read its signature
        component = rtl.generate.build(unit, params)
        ports = rtl.generate.ports(component)
        del component
        gc.collect()  # the component sits in a reference cycle; collect it while the filter is on
    return ports
