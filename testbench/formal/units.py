"""Properties of the MAC units and the processing element: saturating sums, by k-induction."""

from amaranth import Module, Mux, Signal, signed
from amaranth.hdl import Assert
from amaranth.lib import data

from rtl.accumulator import SaturatingAccumulator
from rtl.int4_mac import Int4Mac
from rtl.pe import ProcessingElement, shadow_layout
from rtl.shift_mac import ShiftMac

from . import reference
from .harness import Dut, Harness, delayed, no_reset, past_valid


class AccumulatorHarness(Harness):
    """SaturatingAccumulator: ``acc``/``overflow`` LATENCY cycles after the inputs equal the reference."""

    def __init__(self, width=8, term_width=10, edit=None):
        super().__init__()
        self.width = width
        self.dut = Dut(SaturatingAccumulator(width, signed(term_width)), f"saturating_accumulator_{width}",
                       edit=edit)

    def elaborate(self, platform):
        m, p = self.dut_module()
        stages = SaturatingAccumulator.LATENCY - 1
        term = delayed(m, p.term, stages, "term") + delayed(m, p.carry, stages, "carry")
        valid, clear = delayed(m, p.valid, stages, "valid"), delayed(m, p.clear, stages, "clear")
        acc, overflow = reference.saturating_sum(m, self.width, term, valid, clear, "ref")
        m.d.comb += [Assert(p.acc == acc), Assert(p.overflow == overflow)]
        return m


class MacHarness(Harness):
    """Int4Mac / ShiftMac: the inputs of cycle t, summed by the reference, show on the ports in t + LATENCY.

    ``params`` are the parameters the reference is written for; ``dut_params`` (default the
    same) those the unit is built with, so a flipped parameter can be shown to be caught.
    """

    def __init__(self, unit, params, dut_params=None, edit=None):
        super().__init__()
        self.unit, self.params = unit, dict(params)
        cls = {"int4_mac": Int4Mac, "shift_mac": ShiftMac}[unit]
        built = dict(params if dut_params is None else dut_params)
        name = "_".join([unit] + [f"{k}_{int(v)}" for k, v in built.items()])
        self.dut = Dut(cls(**built), name, edit=edit)

    def elaborate(self, platform):
        m, p = self.dut_module()
        stages = type(self.dut.component).LATENCY - 1
        valid = delayed(m, p.valid, stages, "valid")
        clear = delayed(m, p.clear, stages, "clear")
        b = delayed(m, p.b, stages, "b")
        if self.unit == "int4_mac":
            a = delayed(m, p.a, stages, "a")
            term = reference.int4_product(a, b, self.params["signed_a"])
        else:
            code = delayed(m, p.code.as_value(), stages, "code")
            phase = delayed(m, p.phase, stages, "phase")
            operand = b.as_signed() if self.params["signed_b"] else b.as_unsigned()
            term = reference.shift_product(m, code, phase, operand, "ref")
        acc, overflow = reference.saturating_sum(m, self.params["width"], term, valid, clear, "ref")
        m.d.comb += [Assert(p.acc == acc), Assert(p.overflow == overflow)]
        return m


class PeSumHarness(Harness):
    """ProcessingElement, capturing every cycle: ``shadow`` (descaled to the mode's width) is the
    reference saturated sum of the mode, for any fixed mode and any operand/valid/first sequence."""

    def __init__(self, fwd_width=24, bwd_width=32, edit=None):
        super().__init__()
        self.widths = fwd_width, bwd_width
        self.dut = Dut(ProcessingElement(fwd_width, bwd_width), f"pe_{fwd_width}_{bwd_width}", edit=edit)

    def elaborate(self, platform):
        m = Module()
        p = self.dut.ports
        self.dut.instantiate(m)
        no_reset(m)
        for name in ("a", "b", "valid", "first", "shift"):
            self.free(m, getattr(p, name), name)
        self.free(m, p.shift_in, "shift_in")
        for name in ("fwd", "signed_b", "phase"):   # the mode is held while terms are in flight
            self.free(m, getattr(p, name), name, const=True)
        m.d.comb += p.capture.eq(1)

        a, b = delayed(m, p.a, 1, "a"), delayed(m, p.b, 1, "b")   # valid/first come with the operands
        valid, first = delayed(m, p.valid, 1, "valid"), delayed(m, p.first, 1, "first")
        fwd_term = reference.int4_product(a, b, signed_a=False)
        operand = Signal(signed(5))
        m.d.comb += operand.eq(Mux(p.signed_b, b.as_signed(), b.as_unsigned()))
        bwd_term = reference.shift_product(m, a, p.phase, operand, "ref")
        fwd_acc, fwd_overflow = reference.saturating_sum(m, self.widths[0], fwd_term, valid, first, "fwd")
        bwd_acc, bwd_overflow = reference.saturating_sum(m, self.widths[1], bwd_term, valid, first, "bwd")
        width = max(self.widths)
        started = past_valid(m, 1)
        shadow = data.View(shadow_layout(width), p.shadow)
        with m.If(started & p.fwd):
            m.d.comb += [Assert((shadow.acc >> (width - self.widths[0])) == delayed(m, fwd_acc, 1, "fwd_acc")),
                         Assert(shadow.overflow == delayed(m, fwd_overflow, 1, "fwd_overflow"))]
        with m.If(started & ~p.fwd):
            m.d.comb += [Assert((shadow.acc >> (width - self.widths[1])) == delayed(m, bwd_acc, 1, "bwd_acc")),
                         Assert(shadow.overflow == delayed(m, bwd_overflow, 1, "bwd_overflow"))]
        return m


class PeShadowHarness(Harness):
    """ProcessingElement shift chain: without ``capture``, ``shadow`` holds, or loads ``shift_in`` on ``shift``."""

    def __init__(self, fwd_width=24, bwd_width=32, edit=None):
        super().__init__()
        self.dut = Dut(ProcessingElement(fwd_width, bwd_width), f"pe_{fwd_width}_{bwd_width}", edit=edit)

    def elaborate(self, platform):
        m = Module()
        p = self.dut.ports
        self.free_ports(m, self.dut)
        no_reset(m)
        expected = delayed(m, p.shadow, 1, "shadow")
        shift_in = delayed(m, p.shift_in, 1, "shift_in")
        shift, capture = delayed(m, p.shift, 1, "shift"), delayed(m, p.capture, 1, "capture")
        with m.If(past_valid(m, 1) & ~capture):
            m.d.comb += Assert(p.shadow == Mux(shift, shift_in, expected))
        return m

