"""The verification plan: which bench checks which unit, in which configurations, at which level.

Levels: ``quick`` (``make test``, minutes for everything), ``full`` (``make sim``: every binary16
pattern, more random vectors) and ``long`` (LONG=1: at least a million random MACs per unit and
simulator, more configurations and scales). The bench modules choose their vector counts by
level; quick and full use the ``quick`` configurations. Width 8 makes saturation frequent in
random streams, and for ShiftMac even a single term can saturate.
"""

import gc
import warnings
from dataclasses import dataclass

from amaranth.hdl import UnusedElaboratable

import rtl.generate

SIMULATORS = ("icarus", "verilator")
LEVELS = ("quick", "full", "long")
LANES = {"icarus": 8, "verilator": 64}


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
        Copies of the unit in the batch wrapper (:mod:`testbench.batch`) per simulator: Verilator
        gains from many lanes, Icarus (event driven, slow on wide vectors) from few. Empty means
        the unit itself is the simulation top and the bench drives it cycle by cycle.
    depth : int
        Cycles per batch chunk (bounds the stimulus and response files).
    quick, long : tuple of dict
        Unit parameters of the quick/full and of the long regression.
    """

    unit: str
    module: str
    lanes: dict
    depth: int
    quick: tuple
    long: tuple


BENCHES = {
    "int4_mac": Bench(
        "int4_mac", "testbench.bench_int4_mac", lanes=LANES, depth=16384,
        quick=({"width": 24, "signed_a": False}, {"width": 8, "signed_a": True}),
        long=({"width": 24, "signed_a": False}, {"width": 24, "signed_a": True},
              {"width": 8, "signed_a": False}, {"width": 64, "signed_a": True}),
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
