"""cocotb driver and monitor for amaranth.lib.stream ports (``<name>__payload/valid/ready``).

Endpoints act right after the rising clock edge and sample in the ReadOnly phase of the same
cycle, so a transfer is seen exactly when ``valid`` and ``ready`` are high before the edge that
takes it, whatever the simulator's order of VPI callbacks and register updates. One
:class:`Streams` coroutine steps every endpoint of a clock domain (two wake-ups per cycle in
all, which roughly halves the Python cost of separate tasks). The driver follows the stream
rules of amaranth.lib.stream: once ``valid`` is raised it stays high, with the same payload,
until the transfer. Random gaps (driver) and back-pressure (monitor) come from a seeded numpy
generator.
"""

import cocotb
from cocotb.triggers import Event, ReadOnly, RisingEdge


class _Chance:
    """Buffered uniform draws in [0, 1): one numpy call per 4096 cycles."""

    def __init__(self, rng):
        self.rng, self.draws = rng, iter(())

    def __call__(self):
        value = next(self.draws, None)
        if value is None:
            self.draws = iter(self.rng.random(4096).tolist())
            value = next(self.draws)
        return value


class StreamDriver:
    """Sends payloads (integers) into a stream input port of the DUT.

    Parameters
    ----------
    dut : cocotb handle
    port : str
        Stream name prefix, e.g. ``"i"`` for ``i__payload``/``i__valid``/``i__ready``.
    rng : numpy.random.Generator
    valid_rate : float
        Probability of offering the next payload in a cycle when one is waiting (1: no gaps).
    """

    def __init__(self, dut, port, rng, valid_rate=1.0):
        self.payload = getattr(dut, f"{port}__payload")
        self.valid = getattr(dut, f"{port}__valid")
        self.ready = getattr(dut, f"{port}__ready")
        self.valid_rate, self.chance = valid_rate, _Chance(rng)
        self.pending = []
        self.sent = 0
        self.offered = self.taken = False

    def send(self, payloads):
        """Queue ``payloads`` (iterable of int)."""
        self.pending.extend(int(p) for p in payloads)

    def after_edge(self):
        if self.taken:
            self.sent += 1
            self.offered = False
        if not self.offered and self.sent < len(self.pending):
            if self.valid_rate >= 1 or self.chance() < self.valid_rate:
                self.payload.value = self.pending[self.sent]
                self.offered = True
        self.valid.value = int(self.offered)

    def sample(self):
        self.taken = self.offered and bool(self.ready.value)

    def idle(self):
        """Stop offering (a payload offered but not yet taken is dropped)."""
        self.offered = self.taken = False
        self.valid.value = 0


class StreamMonitor:
    """Collects the payloads that a stream output port of the DUT transfers, with back-pressure.

    Parameters
    ----------
    dut : cocotb handle
    port : str
        Stream name prefix, e.g. ``"o"``.
    rng : numpy.random.Generator
    ready_rate : float
        Probability of ``ready`` being high in a cycle (1: no back-pressure).
    """

    def __init__(self, dut, port, rng, ready_rate=1.0):
        self.payload = getattr(dut, f"{port}__payload")
        self.valid = getattr(dut, f"{port}__valid")
        self.ready = getattr(dut, f"{port}__ready")
        self.ready_rate, self.chance = ready_rate, _Chance(rng)
        self.received = []
        self.accepting = False
        self._target, self._reached = None, Event()

    def expect(self, count):
        """An Event set once ``count`` payloads have been received."""
        self._target = count
        self._reached = Event()
        if len(self.received) >= count:
            self._reached.set()
        return self._reached

    def after_edge(self):
        self.accepting = self.ready_rate >= 1 or self.chance() < self.ready_rate
        self.ready.value = int(self.accepting)

    def sample(self):
        if self.accepting and self.valid.value:
            self.received.append(int(self.payload.value))
            if self._target is not None and len(self.received) >= self._target:
                self._reached.set()

    def idle(self):
        """Stop accepting."""
        self.accepting = False
        self.ready.value = 0


class Streams:
    """Steps stream endpoints (drivers, monitors) once per cycle of ``clk``, in one coroutine."""

    def __init__(self, clk, *endpoints):
        self.clk, self.endpoints = clk, endpoints
        self._task = None

    def start(self):
        self._task = cocotb.start_soon(self._run())
        return self

    def stop(self):
        """Stop stepping and leave every endpoint idle (valid and ready low)."""
        if self._task is not None:
            self._task.cancel()
            self._task = None
        for endpoint in self.endpoints:
            endpoint.idle()

    async def _run(self):
        edge, settled = RisingEdge(self.clk), ReadOnly()
        while True:
            await edge
            for endpoint in self.endpoints:
                endpoint.after_edge()
            await settled
            for endpoint in self.endpoints:
                endpoint.sample()
