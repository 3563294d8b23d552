"""The seam between the training array and its processing elements: what the array needs of a PE.

:class:`rtl.array.TrainingArray` owns the dataflow (operand skew, control along the
anti-diagonals, back-pressure, the shadow drain); a :class:`PeKind` says what differs between
number formats (docs/architecture.md, "The PE seam"):

* ``operand_width``: bits of one A lane and one B lane (one operand each);
* ``sums``: running sums (outputs) per PE, L; a PE with L > 1 adds the term of cycle t to its
  sum t mod L (interleaved, as in a pipelined adder ring) and has L shadow entries;
* ``sum_latency``: a PE gets its operands together with their ``valid`` / ``first`` in cycle t;
  the sum including that term is visible to ``capture`` in t + ``sum_latency``;
* ``rows_per_pe``: rows of a column one PE computes (its top row's timing holds for all of them);
* ``build(rows)``: one PE covering ``rows`` rows, with the ports ``a``, ``b``, ``valid``, ``first``,
  ``capture`` (L bits), ``shift`` (L bits), ``shift_in``, ``a_out``, ``b_out``, ``shadow``
  (:class:`rtl.pe.ProcessingElement` and :class:`rtl.fp16_array_pe.Fp16ProcessingElement`
  document them; ``a``, ``a_out``, ``shift`` and ``shadow`` are per row, :meth:`PeKind.lanes`)
  and, optionally, mode inputs driven from the tag each beat carries to its PEs
  (:meth:`PeKind.mode_tag`, :meth:`PeKind.mode_inputs`);
* ``output_layout(rows, cols)``: the array's output beat, one array per shadow field plus ``row``
  (0 .. rows - 1, where rows = L*R output rows of a tile), ``last``, ``mode``, ``s``;
* ``outputs(shadow, mode)``: the value of each output field from a shadow and the tile's mode
  (the descale of a scaled accumulator happens here, once per column);
* optionally (the MX PE uses them): ``beat_fields(taken)``, more per-beat flags on the control
  chain, which a PE gets with its operands on the ports named in ``beat_inputs``;
  ``bad_depth(k)``, more bad commands; ``depth_step``, the least K; ``period_extra``, cycles
  added to the tile period; ``connect_rows(module, pes, stalled)``, units shared by the PEs (``pes[i][j]``).
"""

from amaranth import Cat, Mux, signed
from amaranth.lib import data

from golden.tiling import Mode

from .dsp_pair_pe import DspPairProcessingElement
from .fp16_array_pe import Fp16ProcessingElement
from .mx_array_pe import LANE_WIDTH, SUM_LATENCY, MxArrayProcessingElement, MxGroupUnit, group_rows
from .mx_row import FORMATS
from .pe import ProcessingElement


class PeKind:
    """Base of the PE kinds: the attributes and methods the array uses (see the module docstring)."""

    operand_width = None
    sums = 1
    sum_latency = None
    beat_inputs = ()
    depth_step = 1
    period_extra = 0
    rows_per_pe = 1

    def build(self, rows):
        """One PE covering ``rows`` (1..``rows_per_pe``) consecutive rows of a column."""
        raise NotImplementedError

    def lanes(self, pe, name):
        """The per-row values of a per-row port (``a``, ``a_out``, ``shift``, ``shadow``), top row first."""
        return [getattr(pe, name)]

    def mode_tag(self, mode):
        """What a beat carries to its PEs of its tile's ``mode`` (a 2-bit Value); nothing by default."""
        return Cat()

    def mode_inputs(self, tag):
        """PE input name -> value from the ``mode_tag`` a beat carries; none by default."""
        return {}

    def beat_fields(self, taken):
        """Control-chain field name -> value for a beat, given ``taken`` beats of its tile before it."""
        return {}

    def bad_depth(self, k):
        """A 1-bit Value marking a command depth ``k`` the PE cannot run, or None (all are fine)."""
        return None

    def connect_rows(self, module, pes, stalled):
        """Add to ``module`` what the PEs ``pes[i][j]`` share, each unit ``u`` as ``stalled(u)``
        (it then advances with the array); nothing by default."""

    def output_fields(self, cols):
        """Output-beat fields before ``row``/``last``/``mode``/``s``: name -> shape."""
        raise NotImplementedError

    def outputs(self, shadow, mode):
        """Output field name -> value of one column from its PE's ``shadow`` and the tile ``mode``."""
        raise NotImplementedError

    def output_layout(self, rows, cols, scale_shape):
        return data.StructLayout({**self.output_fields(cols), "row": range(rows), "last": 1, "mode": 2,
                                  "s": scale_shape})


class FourBitPe(PeKind):
    """The 3-mode INT4 / FP4 x INT4 PE with scaled accumulators (:class:`rtl.pe.ProcessingElement`)."""

    operand_width = 4
    sum_latency = 2

    def __init__(self, fwd_width, bwd_width):
        self.fwd_width, self.bwd_width = fwd_width, bwd_width
        self.width = max(fwd_width, bwd_width)

    def build(self, rows):
        return ProcessingElement(fwd_width=self.fwd_width, bwd_width=self.bwd_width)

    def lanes(self, pe, name):
        return pe.lanes(name)

    def mode_tag(self, mode):
        return Cat(mode == Mode.FWD, mode == Mode.BWD_WEIGHT)

    def mode_inputs(self, tag):
        return {"fwd": tag[0], "signed_b": ~tag[1], "phase": tag[1]}

    def output_fields(self, cols):
        return {"acc": data.ArrayLayout(signed(self.width), cols), "overflow": data.ArrayLayout(1, cols)}

    def outputs(self, shadow, mode):
        fwd_scale, bwd_scale = self.width - self.fwd_width, self.width - self.bwd_width
        return {"acc": Mux(mode == Mode.FWD, shadow.acc >> fwd_scale, shadow.acc >> bwd_scale),
                "overflow": shadow.overflow}


class FourBitDspPe(FourBitPe):
    """The same PE with the FWD products of two rows packed into one hard multiplier
    (:class:`rtl.dsp_pair_pe.DspPairProcessingElement`; the last row of an odd R is a 1-row PE)."""

    rows_per_pe = 2

    def build(self, rows):
        return DspPairProcessingElement(rows, fwd_width=self.fwd_width, bwd_width=self.bwd_width)


class Fp16PipePe(PeKind):
    """The pipelined IEEE binary16 PE with interleaved sums (:class:`rtl.fp16_array_pe.Fp16ProcessingElement`);
    the mode is not used."""

    operand_width = 16
    sums = Fp16ProcessingElement.SUMS
    sum_latency = Fp16ProcessingElement.SUM_LATENCY

    def build(self, rows):
        return Fp16ProcessingElement()

    def output_fields(self, cols):
        return {"acc": data.ArrayLayout(16, cols), "invalid": data.ArrayLayout(1, cols),
                "overflow": data.ArrayLayout(1, cols)}

    def outputs(self, shadow, mode):
        return {"acc": shadow.acc, "invalid": shadow.invalid, "overflow": shadow.overflow}


class MxPe(PeKind):
    """The block-scaled E2M1 PE (:class:`rtl.mx_array_pe.MxArrayProcessingElement`) with one
    :class:`rtl.mx_array_pe.MxGroupUnit` per G = block // C rows; the mode is not used.

    A group's unit reads its PEs bottom row first, so PE(i, j) at rank r from its group's bottom
    row gets its sum r (C - 1) cycles later than a PE on its anti-diagonal at the bottom: the sum
    latency is that of the top row of a full group, and the tile period grows by the same amount
    (``period_extra``), so that a tile's first stores never overtake the previous tile's drain.
    """

    operand_width = LANE_WIDTH
    beat_inputs = ("last", "block_last", "first_block")

    def __init__(self, fmt, rows, cols):
        if fmt not in FORMATS:
            raise ValueError(f"fmt must be one of {sorted(FORMATS)}, got {fmt!r}")
        self.fmt, self.block = fmt, FORMATS[fmt]
        self.depth_step = self.block
        self._low = self.block.bit_length() - 1
        self.group = min(rows, group_rows(self.block, cols))
        self.period_extra = (self.group - 1) * (cols - 1)
        self.sum_latency = SUM_LATENCY + self.period_extra

    def build(self, rows):
        return MxArrayProcessingElement(self.block)

    def beat_fields(self, taken):
        return {"block_last": taken[:self._low].all(), "first_block": (taken >> self._low) == 0}

    def bad_depth(self, k):
        return k[:self._low].any()

    def connect_rows(self, module, pes, stalled):
        for top in range(0, len(pes), self.group):
            rows = pes[top:top + self.group]
            order = [pe for row in reversed(rows) for pe in row]     # bottom row first
            unit = MxGroupUnit(self.fmt, len(order))
            module.submodules[f"rows_{top}"] = stalled(unit)
            module.d.comb += unit.start.eq(order[0].term.valid)
            for k, (pe, term) in enumerate(zip(order, unit.terms)):
                module.d.comb += [term.eq(pe.term), pe.result.eq(unit.result), pe.store.eq(unit.store[k])]

    def output_fields(self, cols):
        return {"acc": data.ArrayLayout(32, cols), "invalid": data.ArrayLayout(1, cols),
                "overflow": data.ArrayLayout(1, cols)}

    def outputs(self, shadow, mode):
        special = shadow[23:31].all()
        return {"acc": shadow, "invalid": special & shadow[:23].any(), "overflow": special & ~shadow[:23].any()}
