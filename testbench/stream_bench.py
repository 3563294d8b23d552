"""The bench of a unit with one stream input ``i`` and one stream output ``o`` that is the simulation top."""

import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles

from .streams import StreamSink, StreamSource, Streams, transfer

PERIOD_NS = 10


class StreamBench:
    """Clock, reset and transfers for a streaming unit that is the simulation top.

    Parameters
    ----------
    dut : cocotb handle
    ctx : testbench.checks.BenchContext
    """

    def __init__(self, dut, ctx):
        self.dut, self.ctx = dut, ctx

    async def start(self):
        """Start the clock and reset the unit."""
        Clock(self.dut.clk, PERIOD_NS, unit="ns", impl="gpi").start()
        await self.reset()

    async def reset(self, cycles=2):
        """Hold ``rst`` for ``cycles`` cycles with both streams idle."""
        self.dut.i__valid.value = 0
        self.dut.o__ready.value = 0
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, cycles)
        self.dut.rst.value = 0

    def endpoints(self, valid_rate, ready_rate):
        """A source on ``i`` and a sink on ``o`` (not yet stepped)."""
        return StreamSource(self.dut, "i", self.ctx.rng, valid_rate), StreamSink(self.dut, "o", self.ctx.rng, ready_rate)

    def streams(self, valid_rate, ready_rate):
        """A source on ``i`` and a sink on ``o``, stepped by a started :class:`Streams`."""
        source, sink = self.endpoints(valid_rate, ready_rate)
        return source, sink, Streams(self.dut.clk, source, sink).start()

    async def transfer(self, payloads, outputs, valid_rate=1.0, ready_rate=1.0):
        """Send ``payloads`` and return the ``outputs`` payloads received (int64 array)
        (:func:`testbench.streams.transfer`)."""
        source, sink = self.endpoints(valid_rate, ready_rate)
        budget = int(len(payloads) / valid_rate / ready_rate * 2) + 64
        received = await transfer(self.ctx, self.dut.clk, [(source, payloads)], sink, outputs, budget)
        return np.array(received, dtype=np.int64)
