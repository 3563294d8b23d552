"""Properties of the stream units: values against the contract, and the handshake of every endpoint."""

from amaranth import Array, Cat, Mux, Signal
from amaranth.hdl import Assert, Assume

from rtl.grad_scale import GradScaleUnit
from rtl.radix4_quantizer import Radix4Quantizer

from . import reference
from .harness import CheckHarness, Dut, delayed, past_valid


def quantizer_reference(m, payload):
    """The quantizer's whole output payload for one input, from the contract (both phases)."""
    code0, overflow0, invalid = reference.radix4_quantize(m, payload.value, payload.s, 0, "phase0")
    code1, overflow1, _ = reference.radix4_quantize(m, payload.value, payload.s, 1, "phase1")
    # OutputLayout order: code0, code1, overflow0, overflow1, invalid
    return Cat(code0, code1, overflow0, overflow1, invalid)


class Scoreboard:
    """Expected output payloads in order: pushed as they become known, checked as outputs leave.

    Asserts that no output leaves without a pending expectation (nothing duplicated or invented),
    that each leaves in order with the expected payload (one pushed in the same cycle counts), and
    that at most ``capacity`` are pending (nothing is held back or lost beyond the unit's storage).
    """

    def __init__(self, m, width, capacity, push, data, pop, payload):
        depth = capacity + 2
        slots = Array(Signal(width, name=f"slot{i}") for i in range(depth))
        head, tail = Signal(range(depth)), Signal(range(depth))
        self.count = count = Signal(range(depth + 1))
        with m.If(push):
            m.d.sync += [slots[tail].eq(data), tail.eq(wrap(tail, depth))]
        with m.If(pop):
            m.d.sync += head.eq(wrap(head, depth))
        m.d.sync += count.eq(count + push - pop)
        expected = Mux(count == 0, data, slots[head])
        m.d.comb += [
            Assert(~pop | (count != 0) | push),
            Assert(~pop | (payload == expected)),
            Assert(count <= capacity),
        ]


def wrap(index, depth):
    return (index + 1) % depth


def held_while_stalled(m, stream, started, name):
    """AXI-Stream rule: once ``valid`` is up without ``ready``, valid and payload hold (a condition)."""
    stalled = delayed(m, stream.valid & ~stream.ready, 1, f"{name}_stalled")
    payload = delayed(m, stream.payload.as_value(), 1, f"{name}_payload")
    return ~(started & stalled) | (stream.valid & (stream.payload.as_value() == payload))


def stream_rules(m, stream, started, name):
    """Assert the AXI-Stream rule of an output (:func:`held_while_stalled`)."""
    m.d.comb += Assert(held_while_stalled(m, stream, started, name))


def source_rules(m, stream, started, name):
    """Assume the same rule of the environment's input stream."""
    m.d.comb += Assume(held_while_stalled(m, stream, started, name))


def values_after_latency(m, p, expected_now, latency):
    """Without back-pressure (assumed), ``i`` is always ready and each accepted input leaves
    ``latency`` cycles later with the payload ``expected_now`` computed when it was accepted."""
    m.d.comb += Assume(p.o.ready)
    expected = delayed(m, expected_now, latency, "expected")
    sent = delayed(m, p.i.valid & p.i.ready, latency, "sent")
    m.d.comb += Assert(p.i.ready)
    with m.If(past_valid(m, latency, "filled")):
        m.d.comb += [Assert(p.o.valid == sent), Assert(~sent | (p.o.payload.as_value() == expected))]


class QuantizerHarness(CheckHarness):
    """Radix4Quantizer. ``check``:

    * ``values``: without back-pressure, every accepted input leaves LATENCY cycles later with the
      codes and flags of the contract (unbounded);
    * ``handshake``: ``o`` holds while stalled and ``i.ready`` is high whenever ``o`` can move (unbounded);
    * ``scoreboard``: under any back-pressure, outputs are the contract's answers to the accepted
      inputs, in order, each exactly once (bounded).
    """

    def __init__(self, check, edit=None):
        super().__init__(check, Dut(Radix4Quantizer(), "radix4_quantizer", edit=edit))

    def elaborate(self, platform):
        m, p = self.dut_module()
        started = past_valid(m, 1)
        accepted = p.i.valid & p.i.ready
        if self.check == "values":
            values_after_latency(m, p, quantizer_reference(m, p.i.payload), Radix4Quantizer.LATENCY)
        elif self.check == "handshake":
            stream_rules(m, p.o, started, "o")
            m.d.comb += Assert(~(~p.o.valid | p.o.ready) | p.i.ready)
        else:
            # The contract's values are proven above without back-pressure; here a second, never
            # stalled instance fed the accepted inputs gives the expected sequence (the reference
            # unrolled over many cycles would be far slower to prove).
            source_rules(m, p.i, started, "i")
            free = Dut(self.dut.component, self.dut.module)
            free.instantiate(m, "free_running")
            m.d.comb += [free.ports.i.valid.eq(accepted), free.ports.i.payload.eq(p.i.payload),
                         free.ports.o.ready.eq(1)]
            Scoreboard(m, len(p.o.payload.as_value()), 2, free.ports.o.valid, free.ports.o.payload.as_value(),
                       p.o.valid & p.o.ready, p.o.payload.as_value())
        return m


class GradScaleHarness(CheckHarness):
    """GradScaleUnit. ``check``:

    * ``values``: one-value tensors, one per cycle, without back-pressure give s = the smallest integer with
      2**s >= |g| (0 for zero, NaN and Inf, which raise ``nonfinite``) LATENCY cycles later (unbounded);
    * ``handshake``: ``o`` holds while stalled, ``i.ready`` is exactly "``o`` can move" (unbounded);
    * ``scoreboard``: any tensors under any back-pressure give one result each, in order, equal
      to the contract's maximum over the tensor's finite values (bounded).
    """

    def __init__(self, check, edit=None):
        super().__init__(check, Dut(GradScaleUnit(), "grad_scale", edit=edit))

    def elaborate(self, platform):
        m, p = self.dut_module()
        started = past_valid(m, 1)
        accepted = p.i.valid & p.i.ready
        _, _, inf, nan, zero = reference.fp16_parts(p.i.payload.value)
        counted = ~inf & ~nan & ~zero
        scale = Signal(range(-24, 17))
        m.d.comb += scale.eq(reference.grad_scale_exponent(p.i.payload.value))
        if self.check == "values":
            # A value every cycle: an idle unit's tensor state is invisible on the ports, which would
            # leave the induction an unreachable state; gaps are covered by the scoreboard check.
            m.d.comb += [Assume(p.i.valid), Assume(p.i.payload.last)]
            values_after_latency(m, p, Cat(Mux(counted, scale, 0)[:6], inf | nan), GradScaleUnit.LATENCY)
        elif self.check == "handshake":
            stream_rules(m, p.o, started, "o")
            m.d.comb += Assert(p.i.ready == (~p.o.valid | p.o.ready))
        else:
            source_rules(m, p.i, started, "i")
            seen, nonfinite = Signal(), Signal()
            peak = Signal(range(-24, 17))
            new_seen = seen | counted
            new_peak = Mux(counted & (~seen | (scale > peak)), scale, peak)
            result = Cat(Mux(new_seen, new_peak, 0)[:6], nonfinite | inf | nan)
            with m.If(accepted):
                m.d.sync += [seen.eq(new_seen & ~p.i.payload.last), peak.eq(new_peak),
                             nonfinite.eq((nonfinite | inf | nan) & ~p.i.payload.last)]
            Scoreboard(m, 7, 2, accepted & p.i.payload.last, result, p.o.valid & p.o.ready, p.o.payload.as_value())
        return m

