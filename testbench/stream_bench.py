"""Running payloads through a unit with one stream input ``i`` and one stream output ``o``."""

import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, First, Timer

from .streams import StreamDriver, StreamMonitor, Streams

PERIOD_NS = 10
SETTLE_CYCLES = 8  # cycles watched after the last expected output, for outputs that should not exist


class StreamBench:
    """Clock, reset and transfers for a streaming unit that is the simulation top."""

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

    def streams(self, valid_rate, ready_rate):
        """A driver on ``i`` and a monitor on ``o``, stepped by a started :class:`Streams`."""
        driver = StreamDriver(self.dut, "i", self.ctx.rng, valid_rate)
        monitor = StreamMonitor(self.dut, "o", self.ctx.rng, ready_rate)
        return driver, monitor, Streams(self.dut.clk, driver, monitor).start()

    async def transfer(self, payloads, outputs, valid_rate=1.0, ready_rate=1.0):
        """Send ``payloads`` and return the ``outputs`` payloads received (int64 array).

        Fails if they do not all arrive in time, or if more arrive within SETTLE_CYCLES after.
        """
        driver, monitor, streams = self.streams(valid_rate, ready_rate)
        reached = monitor.expect(outputs)
        driver.send(payloads)
        budget = int(len(payloads) / valid_rate / ready_rate * 2) + 64
        await First(reached.wait(), Timer(budget * PERIOD_NS, "ns"))
        if reached.is_set():
            await ClockCycles(self.dut.clk, SETTLE_CYCLES)
        streams.stop()
        if len(monitor.received) != outputs:
            raise AssertionError(f"{self.ctx.module} on {self.ctx.sim}, test {self.ctx.test}, seed {self.ctx.seed}: "
                                 f"{len(monitor.received)} outputs for {outputs} expected "
                                 f"({driver.sent} of {len(payloads)} inputs taken)")
        return np.array(monitor.received, dtype=np.int64)
