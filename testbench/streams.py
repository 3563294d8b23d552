"""cocotb source and sink for amaranth.lib.stream ports (``<name>__payload/valid/ready``).

Endpoints act right after the rising clock edge and sample in the ReadOnly phase of the same
cycle, so a transfer is seen exactly when ``valid`` and ``ready`` are high before the edge that
takes it, whatever the simulator's order of VPI callbacks and register updates. One
:class:`Streams` coroutine steps every endpoint of a clock domain (two wake-ups per cycle in
all, which roughly halves the Python cost of separate tasks). The source follows the stream
rules of amaranth.lib.stream: once ``valid`` is raised it stays high, with the same payload,
until the transfer. Random gaps (source) and back-pressure (sink) come from a seeded numpy
generator. :func:`transfer` is the one "send, expect N, wait with a budget, check" of the benches.
"""

import cocotb
from cocotb.triggers import ClockCycles, Event, First, ReadOnly, RisingEdge

SETTLE_CYCLES = 8  # cycles watched after the last expected output, for outputs that should not exist


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


class StreamBase:
    """The ports of one stream of the DUT and a seeded source of chances.

    Parameters
    ----------
    dut : cocotb handle
    port : str
        Stream name prefix, e.g. ``"i"`` for ``i__payload``/``i__valid``/``i__ready``.
    rng : numpy.random.Generator
    rate : float
        Probability of the endpoint's own handshake signal being offered in a cycle (1: always).
    """

    def __init__(self, dut, port, rng, rate=1.0):
        self.port = port
        self.payload = getattr(dut, f"{port}__payload")
        self.valid = getattr(dut, f"{port}__valid")
        self.ready = getattr(dut, f"{port}__ready")
        self.rate, self.chance = rate, _Chance(rng)

    def offer(self):
        """Whether to raise the handshake signal in this cycle (draws only when rate < 1)."""
        return self.rate >= 1 or self.chance() < self.rate


class StreamSource(StreamBase):
    """Sends payloads (integers) into a stream input port of the DUT; ``rate`` is the valid rate:
    the probability of offering the next payload in a cycle when one is waiting (1: no gaps)."""

    def __init__(self, dut, port, rng, rate=1.0):
        super().__init__(dut, port, rng, rate)
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
            if self.offer():
                self.payload.value = self.pending[self.sent]
                self.offered = True
        self.valid.value = int(self.offered)

    def sample(self):
        self.taken = self.offered and bool(self.ready.value)

    def idle(self):
        """Stop offering (a payload offered but not yet taken is dropped)."""
        self.offered = self.taken = False
        self.valid.value = 0


class StreamSink(StreamBase):
    """Collects the payloads that a stream output port of the DUT transfers; ``rate`` is the ready
    rate: the probability of ``ready`` being high in a cycle (1: no back-pressure)."""

    def __init__(self, dut, port, rng, rate=1.0):
        super().__init__(dut, port, rng, rate)
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
        self.accepting = self.offer()
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
    """Steps stream endpoints (sources, sinks) once per cycle of ``clk``, in one coroutine."""

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


async def transfer(ctx, clk, sends, sink, count, budget, endpoints=()):
    """Send, expect ``count`` payloads on ``sink``, wait at most ``budget`` cycles, check.

    ``sends`` is a sequence of (StreamSource, payloads); ``endpoints`` are further endpoints to
    step (e.g. a cycle counter). After the last expected payload, SETTLE_CYCLES more cycles are
    watched for a surplus one; then every endpoint is left idle. Too few or too many payloads fail
    through ``ctx.fail``. Returns the received payloads (list of int).
    """
    streams = Streams(clk, *endpoints, *(source for source, _ in sends), sink).start()
    reached = sink.expect(count)
    for source, payloads in sends:
        source.send(payloads)
    await First(reached.wait(), ClockCycles(clk, budget))
    if reached.is_set():
        await ClockCycles(clk, SETTLE_CYCLES)
    streams.stop()
    if len(sink.received) != count:
        taken = ", ".join(f"{source.sent} of {len(payloads)} inputs taken on {source.port}" for source, payloads in sends)
        ctx.fail(f"{len(sink.received)} outputs on {sink.port} for {count} expected ({taken})")
    return sink.received
