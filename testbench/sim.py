"""amaranth.sim helpers shared by the unit tests: running testbenches, driving streams, and side by
side copies of a unit (stream units: :func:`stream_lanes`; units with plain ports: :func:`port_lanes`)."""

import numpy as np
from amaranth import Cat, Elaboratable, Module, Signal, Value
from amaranth.sim import Simulator

CLOCK_PERIOD = 1e-6


def simulate(dut, *testbenches, vcd_file=None):
    """Run async ``testbenches`` against ``dut`` on a ``sync`` clock until they all return."""
    sim = Simulator(dut)
    sim.add_clock(CLOCK_PERIOD)
    for testbench in testbenches:
        sim.add_testbench(testbench)
    if vcd_file is None:
        sim.run()
    else:
        with sim.write_vcd(vcd_file):
            sim.run()


async def stream_put(ctx, stream, payload):
    """Offer ``payload`` on ``stream`` until the receiver takes it.

    An ``int`` payload is the raw bit pattern, also for a payload with a data layout.
    """
    target = stream.payload
    if isinstance(payload, int) and hasattr(target, "as_value"):
        target = target.as_value()
    ctx.set(stream.valid, 1)
    ctx.set(target, payload)
    await ctx.tick().until(stream.ready)
    ctx.set(stream.valid, 0)


async def stream_get(ctx, stream):
    """Take one payload from ``stream`` (``ready`` high until the transfer); returns its raw bits."""
    ctx.set(stream.ready, 1)
    payload, = await ctx.tick().sample(stream.payload.as_value()).until(stream.valid)
    ctx.set(stream.ready, 0)
    return payload


async def stream_send(ctx, stream, payloads, rng, gap_rate=0.0):
    """:func:`stream_put` every payload in order, each after a random number of idle cycles
    (another one with probability ``gap_rate``)."""
    for payload in payloads:
        while rng.random() < gap_rate:
            await ctx.tick()
        await stream_put(ctx, stream, int(payload))


class StreamCollector:
    """A testbench that takes every payload of an output stream under random back-pressure and
    checks the stream rules: while ``valid`` is high and ``ready`` low, ``valid`` and the payload hold.

    Set :attr:`done` when the producer has sent everything; the collector then stops after
    ``idle_cycles`` cycles without ``valid``. :meth:`collected` returns the raw payloads in order
    and fails if a stalled payload changed.
    """

    def __init__(self, stream, rng, ready_rate=1.0, idle_cycles=10):
        self.stream, self.rng, self.ready_rate, self.idle_cycles = stream, rng, ready_rate, idle_cycles
        self.done = False
        self.received, self.violations = [], []

    async def testbench(self, ctx):
        held, idle = None, 0
        while idle < self.idle_cycles:
            ready = self.rng.random() < self.ready_rate
            ctx.set(self.stream.ready, ready)
            _, _, valid, payload = await ctx.tick().sample(self.stream.valid, self.stream.payload.as_value())
            if held is not None and (not valid or payload != held):
                self.violations.append((len(self.received), held, valid, payload))
            if valid and ready:
                self.received.append(payload)
            held = payload if valid and not ready else None
            idle = idle + 1 if self.done and not valid else 0

    def collected(self):
        assert not self.violations, (f"payload changed while stalled (output index, held, valid, payload): "
                                     f"{self.violations[:3]}")
        return self.received


def stream_lanes(make_unit, lanes, drain_cycles=8):
    """Push raw payloads through one unit per lane, one per lane per cycle, ``o.ready`` held high.

    Parameters
    ----------
    make_unit : callable
        Returns a component with ``i`` and ``o`` stream members.
    lanes : list of sequences of int
        The raw ``i.payload`` bits for each lane, in order.
    drain_cycles : int
        Cycles to keep running after the last input was accepted.

    Returns
    -------
    list of lists of int
        The raw ``o.payload`` bits each lane produced, in order.
    """
    harness = PortLanes(make_unit, len(lanes), ("i.payload", "i.valid", "o.ready"),
                        ("i.valid", "i.ready", "o.valid", "o.payload"))
    in_width, out_width = harness.in_widths[0], harness.out_widths[-1]
    lanes = [[int(value) for value in values] for values in lanes]
    outputs = [[] for _ in lanes]
    in_step, out_step = in_width + 2, out_width + 3
    valid, ready = 1 << in_width, 1 << (in_width + 1)   # i.valid, o.ready (always high)
    out_mask = (1 << out_width) - 1

    async def testbench(ctx):
        sent = [0] * len(lanes)
        idle = 0
        while idle < drain_cycles:
            stimulus = 0
            for index, (values, count) in enumerate(zip(lanes, sent)):
                word = values[count] | valid if count < len(values) else 0
                stimulus |= (word | ready) << (index * in_step)
            ctx.set(harness.stimulus, stimulus)
            _, _, observed = await ctx.tick().sample(harness.observed)
            for index in range(len(lanes)):
                lane = observed >> (index * out_step)
                sent[index] += (lane & 0b11) == 0b11
                if lane & 0b100:
                    outputs[index].append((lane >> 3) & out_mask)
            idle = idle + 1 if sent == [len(values) for values in lanes] else 0

    simulate(harness, testbench)
    return outputs


class PortLanes(Elaboratable):
    """Independent copies of a unit, driven from one wide ``stimulus`` signal (per lane: the
    ``inputs`` ports concatenated) and observed through one wide ``observed`` signal (per lane: the
    ``outputs`` ports concatenated), so that one ``ctx.set`` per cycle drives them all. Ports are
    named by attribute path (``"a"``, ``"i.payload"``); a payload with a data layout counts as its bits."""

    def __init__(self, make_unit, count, inputs, outputs):
        self.units = [make_unit() for _ in range(count)]
        self.inputs, self.outputs = tuple(inputs), tuple(outputs)
        unit = self.units[0]
        self.in_widths = [len(_port(unit, name)) for name in self.inputs]
        self.out_widths = [len(_port(unit, name)) for name in self.outputs]
        self.stimulus = Signal(count * sum(self.in_widths))
        self.observed = Signal(count * sum(self.out_widths))

    def elaborate(self, platform):
        m = Module()
        step = sum(self.in_widths)
        for index, unit in enumerate(self.units):
            m.submodules[f"lane{index}"] = unit
            m.d.comb += Cat(*(_port(unit, name) for name in self.inputs)).eq(self.stimulus.word_select(index, step))
        m.d.comb += self.observed.eq(Cat(*(_port(unit, name) for unit in self.units for name in self.outputs)))
        return m


def _port(unit, path):
    for name in path.split("."):
        unit = getattr(unit, name)
    return Value.cast(unit)


def port_lanes(make_unit, columns, outputs, cycles):
    """Run one unit per lane for ``cycles`` cycles and return every cycle's outputs.

    Parameters
    ----------
    make_unit : callable
        Returns a component with the ports named in ``columns`` and ``outputs``.
    columns : dict of str -> int array (lanes, n)
        Input port values per lane and cycle; every input is 0 after cycle n.
    outputs : sequence of str
        Output ports to observe.

    Returns
    -------
    dict of str -> int64 array (lanes, cycles)
        Each output as it is in each cycle before the clock edge (cycle 0: after reset).
    """
    columns = {name: np.asarray(values).astype(np.int64) for name, values in columns.items()}
    lanes, count = next(iter(columns.values())).shape
    dut = PortLanes(make_unit, lanes, columns, outputs)
    offsets = np.cumsum([0, *dut.in_widths])
    word = sum((columns[name] & ((1 << width) - 1)) << int(offset)
               for name, width, offset in zip(dut.inputs, dut.in_widths, offsets))
    step = int(offsets[-1])
    stimulus = [sum(int(w) << (step * lane) for lane, w in enumerate(column)) for column in word.T]
    observed = []

    async def testbench(ctx):
        for t in range(cycles):
            ctx.set(dut.stimulus, stimulus[t] if t < count else 0)
            observed.append(ctx.get(dut.observed))
            await ctx.tick()

    simulate(dut, testbench)
    result, position = {}, 0
    out_step = sum(dut.out_widths)
    for name, width in zip(dut.outputs, dut.out_widths):
        result[name] = np.array([[(value >> (out_step * lane + position)) & ((1 << width) - 1) for lane in range(lanes)]
                                 for value in observed], dtype=np.int64).T
        position += width
    return result
