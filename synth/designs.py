"""The designs the synthesis flow measures, and on which targets.

Every default configuration of :func:`rtl.generate.configurations` is one design; each FP16
baseline PE is added with its default parameters if the registry has it but no configuration
names it; the training array (unit ``"training_array"``, once registered) and its DSP-mapped
variant (``"training_array_dsp"``) are added at several sizes, the MX training array (unit
``"mx_array"``) as :data:`MX_ARRAYS` says, ECP5 LUT-only, the FP16 training array
(``"fp16_array"``) at the sizes of :data:`FP16_ARRAY_SIZES`. ``python -m synth --designs`` selects
by unit name or by a glob on the design name.
"""

import fnmatch
from dataclasses import dataclass, field

#: Units doing one multiply-accumulate per cycle.
PE_UNITS = ("int4_mac", "int4_mac_pair_dsp", "shift_mac", "fp16_mac", "fp16_pipe_mac")
#: PE units doing more than one multiply-accumulate per cycle.
MACS_PER_CYCLE = {"int4_mac_pair_dsp": 2}
#: The FP16 PEs; the headline compares against the one with the most MAC/s per LUT.
BASELINE_UNITS = ("fp16_mac", "fp16_pipe_mac")
#: A row of block-scaled PEs does one multiply-accumulate per column and cycle.
ROW_UNITS = ("mx_row",)
ARRAY_UNIT = "training_array"
#: The block-scaled training array: (side, format) of the default run, ECP5 LUT-only (its float32
#: row units do not fit the iCE40 parts beyond 2x2). NVFP4 only at the size whose PE the
#: per-format table divides out (synth.formats takes the largest placed array).
MX_ARRAY_UNIT = "mx_array"
MX_ARRAYS = ((2, "mxfp4"), (4, "mxfp4"), (4, "nvfp4"))
#: The array with two rows' INT4 products per hard multiplier: placed with DSPs on ECP5 at every
#: array size, and on the iCE40 UP5K (its LUT fallback, same Verilog) at the smallest default size.
DSP_ARRAY_UNIT = "training_array_dsp"
#: Square array sizes of the default run. The 8x8 (about 18k of the ECP5-85F's 84k LUTs, 7.5 minutes
#: of place and route for its two ECP5 mappings) runs with ``--arrays 8`` (``make synth-large``), the
#: 16x16 with ``--large``; their rows stay in the report, dated, when the default run is repeated.
ARRAY_SIZES = (2, 4)
LARGE_ARRAY_SIZES = (16,)
#: The array whose PE enters the headline (placed with several seeds; bigger ones use one seed).
HEADLINE_ARRAY_SIZE = 4
#: Largest array side placed on the iCE40 parts (bigger ones do not fit their 5k/8k LUTs).
ICE40_MAX_ARRAY_SIDE = 4
#: The FP16 training array, the 16-bit baseline of the chip-level comparison, on ECP5 only (about
#: 1.2k LUT-equiv per PE: a 2x2 does not fit the iCE40 parts). The default run places the 2x2;
#: ``--fp16-arrays 4`` (``make synth-large``) the 4x4.
FP16_ARRAY_UNIT = "fp16_array"
FP16_ARRAY_SIZES = (2,)

ALL_RUNS = (("ecp5-85f", "lut"), ("ecp5-85f", "dsp"), ("ice40-up5k", "lut"), ("ice40-hx8k", "lut"))
ECP5_RUNS = (("ecp5-85f", "lut"), ("ecp5-85f", "dsp"))
#: The target and mapping of the headline comparison (area in LUTs, so no hard multipliers).
HEADLINE_RUN = ("ecp5-85f", "lut")
#: Largest array side placed on every target in the default flow (``make synth``); bigger arrays
#: go there on ECP5 only, their iCE40 runs with ``--all-runs`` (``make synth-extra``).
DEFAULT_ALL_RUNS_ARRAY_SIDE = 2


@dataclass(frozen=True)
class Design:
    """One Verilog configuration to synthesize.

    Attributes
    ----------
    unit : str
        Unit name in ``rtl.generate.UNITS``.
    params : dict
        Parameters passed to the unit's factory.
    runs : tuple of (target, mapping)
        Where it is synthesized.
    macs_per_cycle : int or None
        Multiply-accumulates per clock cycle (None: not a MAC design).
    array_size : (rows, cols) or None
        Set for the training array.
    headline : bool
        Part of the 4-bit vs FP16 comparison: run with several seeds on :data:`HEADLINE_RUN`.
    """

    unit: str
    params: dict = field(hash=False)
    runs: tuple
    macs_per_cycle: int | None = None
    array_size: tuple | None = None
    headline: bool = False

    @property
    def label(self):
        """Short human-readable name: unit plus non-default parameters or array size."""
        if self.array_size:
            size = f"{self.unit} {self.array_size[0]}x{self.array_size[1]}"
            details = ", ".join(f"{k}={v}" for k, v in self.params.items() if k not in ("rows", "cols"))
            return f"{size} ({details})" if details else size
        details = ", ".join(f"{k}={int(v) if isinstance(v, bool) else v}" for k, v in self.params.items())
        return f"{self.unit} ({details})" if details else self.unit

    def module(self, generate):
        """Top module name (file stem) of this design's Verilog."""
        return generate.module_name(self.unit, self.params)


def _array(size):
    runs = ALL_RUNS if size <= ICE40_MAX_ARRAY_SIDE else ECP5_RUNS
    return Design(ARRAY_UNIT, {"rows": size, "cols": size}, runs, macs_per_cycle=size * size,
                  array_size=(size, size), headline=size == HEADLINE_ARRAY_SIZE)


def _mx_array(size, fmt):
    return Design(MX_ARRAY_UNIT, {"rows": size, "cols": size, "fmt": fmt}, (HEADLINE_RUN,),
                  macs_per_cycle=size * size, array_size=(size, size))


def _macs_per_cycle(name, params):
    if name in ROW_UNITS:
        return params["columns"]
    return MACS_PER_CYCLE.get(name, 1) if name in PE_UNITS else None


def _dsp_array(size):
    runs = (("ecp5-85f", "dsp"),) + ((("ice40-up5k", "lut"),) if size == min(ARRAY_SIZES) else ())
    return Design(DSP_ARRAY_UNIT, {"rows": size, "cols": size}, runs, macs_per_cycle=size * size,
                  array_size=(size, size))


def _fp16_array(size):
    return Design(FP16_ARRAY_UNIT, {"rows": size, "cols": size}, ECP5_RUNS, macs_per_cycle=size * size,
                  array_size=(size, size))


def default_designs(generate, large=False, array_sizes=ARRAY_SIZES, fp16_array_sizes=FP16_ARRAY_SIZES):
    """The designs of a full run, given the ``rtl.generate`` module.

    Parameters
    ----------
    generate : module
        ``rtl.generate`` (passed in so tests can give a stand-in registry).
    large : bool
        Also the arrays of :data:`LARGE_ARRAY_SIZES`.
    array_sizes : tuple of int
        Sides of the square arrays (default :data:`ARRAY_SIZES`).
    fp16_array_sizes : tuple of int
        Sides of the square FP16 arrays (default :data:`FP16_ARRAY_SIZES`).
    """
    configurations = [(name, params) for name, params in generate.configurations()
                      if name not in (ARRAY_UNIT, MX_ARRAY_UNIT, FP16_ARRAY_UNIT)]
    for unit in BASELINE_UNITS:
        if unit in generate.UNITS and all(name != unit for name, _ in configurations):
            configurations.append((unit, {}))
    designs = [Design(name, params, ALL_RUNS, macs_per_cycle=_macs_per_cycle(name, params),
                      headline=name in PE_UNITS)
               for name, params in configurations]
    sizes = tuple(array_sizes) + (LARGE_ARRAY_SIZES if large else ())
    if ARRAY_UNIT in generate.UNITS:
        designs += [_array(size) for size in sizes]
    if DSP_ARRAY_UNIT in generate.UNITS:
        designs += [_dsp_array(size) for size in sizes]
    if MX_ARRAY_UNIT in generate.UNITS:
        designs += [_mx_array(size, fmt) for size, fmt in MX_ARRAYS]
    if FP16_ARRAY_UNIT in generate.UNITS:
        designs += [_fp16_array(size) for size in fp16_array_sizes]
    return designs


def quick(designs):
    """The ``--quick`` subset: the PEs and the smallest 4-bit array, on ECP5 LUT-only only."""
    smallest = min((d.array_size for d in designs if d.unit == ARRAY_UNIT), default=None)
    return [Design(d.unit, d.params, (HEADLINE_RUN,), d.macs_per_cycle, d.array_size, d.headline)
            for d in designs if d.unit in PE_UNITS or (d.unit == ARRAY_UNIT and d.array_size == smallest)]


def default_flow(designs):
    """The runs of ``make synth``: every run of the PEs and of the smallest arrays, the ECP5 runs of
    bigger arrays, the headline run of every other design. The runs left out (``--all-runs``,
    ``make synth-extra``) are figures no headline or README table uses: iCE40 and ECP5-DSP of the
    MX units, the quantizer and GradScale, the 4x4 array on iCE40."""
    def runs(design):
        if design.unit in PE_UNITS or (design.array_size and max(design.array_size) <= DEFAULT_ALL_RUNS_ARRAY_SIDE):
            return design.runs
        if design.array_size:
            return tuple(run for run in design.runs if run in ECP5_RUNS)
        return tuple(run for run in design.runs if run == HEADLINE_RUN)
    return [Design(d.unit, d.params, runs(d), d.macs_per_cycle, d.array_size, d.headline) for d in designs]


def select(designs, patterns, generate):
    """Designs whose unit equals, or whose module name matches the glob of, one of ``patterns``.

    Raises
    ------
    ValueError
        If a pattern selects nothing (it names the pattern and the available designs).
    """
    chosen = []
    for pattern in patterns:
        matched = [d for d in designs
                   if d.unit == pattern or fnmatch.fnmatchcase(d.module(generate), pattern)]
        if not matched:
            names = sorted({d.unit for d in designs} | {d.module(generate) for d in designs})
            raise ValueError(f"designs: {pattern!r} matches none of {names}")
        chosen += [d for d in matched if d not in chosen]
    return chosen
