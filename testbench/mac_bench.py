"""Stimulus and checking shared by the MAC benches (Int4Mac, ShiftMac) in the batch wrapper.

A bench describes its operands (name -> inclusive value range) and a golden step function; this
module builds cycle-level stimulus as numpy arrays of shape (lanes, cycles), runs it through the
wrapper (or, for cross-checking, cycle by cycle through the wrapper's own ports) and compares
every cycle's ``acc`` and ``overflow`` with :func:`testbench.mac_model.expected_outputs`.
"""

import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge

from .batch import BatchRunner, as_signed
from .mac_model import expected_outputs
from .units import BENCHES, unit_ports

MAX_SATURATION_CYCLES = 1 << 19  # W = 64 (and beyond) cannot be driven to its limits


class MacBench:
    """Drives one MAC unit configuration inside the batch wrapper.

    Parameters
    ----------
    dut : cocotb handle of the wrapper
    ctx : testbench.checks.BenchContext
    operands : dict of str -> (int, int)
        Operand ports and their value ranges (values, not bit patterns).
    step : callable(acc, operands) -> (acc, overflowed_now)
        Golden MAC step (see :func:`testbench.mac_model.expected_outputs`).
    """

    def __init__(self, dut, ctx, operands, step):
        self.dut, self.ctx, self.operands, self.step = dut, ctx, operands, step
        bench = BENCHES[ctx.unit]
        ports = unit_ports(ctx.unit, ctx.params)
        self.lanes = bench.lanes[ctx.sim]
        self.batch = BatchRunner(dut, ports, self.lanes, bench.depth)
        self.width = ctx.params["width"]
        self.inputs = [name for name, _ in self.batch.stim.fields]

    async def start(self):
        """Start the clock and reset every lane through the wrapper ports (all inputs low after)."""
        Clock(self.dut.clk, 10, unit="ns", impl="gpi").start()
        for name in self.inputs:
            getattr(self.dut, name).value = 0
        self.dut.batch_start.value = int(self.dut.started.value)  # no batch until BatchRunner toggles it
        self.dut.batch_cycles.value = 1
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, 2)
        self.dut.rst.value = 0
        await ClockCycles(self.dut.clk, 2)

    def columns(self, cycles, lanes=None, p_valid=0.85, p_clear=1 / 24, p_rst=1 / 5000):
        """Random stimulus of shape (lanes, cycles): uniform operands; valid gaps, clears and resets
        at the given per-cycle probabilities."""
        rng, shape = self.ctx.rng, (lanes or self.lanes, cycles)
        columns = {
            "rst": rng.random(shape, np.float32) < p_rst,
            "clear": rng.random(shape, np.float32) < p_clear,
            "valid": rng.random(shape, np.float32) < p_valid,
        }
        columns.update({name: rng.integers(lo, hi + 1, shape, np.int8) for name, (lo, hi) in self.operands.items()})
        return columns

    def all_operands(self):
        """Every combination of operand values, as dict name -> 1-D array."""
        grids = np.meshgrid(*[np.arange(lo, hi + 1) for lo, hi in self.operands.values()], indexing="ij")
        return {name: grid.ravel() for name, grid in zip(self.operands, grids)}

    def extremes(self, product):
        """Operand values with the largest positive (+1) and negative (-1) ``product(operands)``."""
        ops = self.all_operands()
        values = product(ops)
        return {sign: {name: int(column[np.argmax(sign * values)]) for name, column in ops.items()}
                for sign in (1, -1)}

    def sums(self, first, second):
        """Stimulus of two-term sums: ``first[i]`` (with clear) then ``second[i]``, spread over the lanes.

        ``first``/``second`` map operand names to 1-D arrays of equal length; two idle cycles at
        the end let the last sum reach the outputs.
        """
        count = len(next(iter(first.values())))
        per_lane = -(-count // self.lanes)
        pad = per_lane * self.lanes - count
        columns = {}
        for name in self.operands:
            pair = np.stack([np.pad(first[name], (0, pad)), np.pad(second[name], (0, pad))], axis=1)
            columns[name] = np.pad(pair.reshape(self.lanes, 2 * per_lane), ((0, 0), (0, 2)))
        live = np.pad(np.ones(count, bool), (0, pad)).reshape(self.lanes, per_lane)
        columns["valid"] = np.pad(np.repeat(live, 2, axis=1), ((0, 0), (0, 2)))
        columns["clear"] = np.zeros_like(columns["valid"])
        columns["clear"][:, 0:2 * per_lane:2] = True
        columns["rst"] = np.zeros_like(columns["valid"])
        return {name: values.astype(np.int64) for name, values in columns.items()}

    def saturating(self, extreme, lanes=8):
        """Stimulus that drives ``lanes`` lanes into saturation and through flag stickiness, clear and reset.

        ``extreme`` maps +1 / -1 to operand values with the largest positive / negative product.
        Each lane heads one way with its own valid rate (80..100 %); mostly extreme terms, some
        random ones. Lane roles by ``lane % 4``: 0 clears after saturating, 1 is reset, 2 turns
        back (leaves the rail with the flag still set), 3 stays saturated. Returns None when the
        limit is out of reach (more than MAX_SATURATION_CYCLES).
        """
        rng = self.ctx.rng
        biggest = min(abs(int(self.step(np.zeros(1, np.int64),
                                        {name: np.array([extreme[sign][name]]) for name in self.operands})[0][0]))
                      for sign in (1, -1))
        reach = -(-(1 << (self.width - 1)) // biggest)
        cycles = int(reach / 0.9 / 0.8 * 1.2) + 16
        if cycles > MAX_SATURATION_CYCLES:
            return None
        lanes = min(lanes, self.lanes)
        shape = (lanes, cycles)
        direction = np.where(np.arange(lanes) % 2 == 0, 1, -1)[:, None] * np.ones(shape, np.int64)
        role = np.arange(lanes) % 4
        turn = int(cycles * 0.8)
        direction[role == 2, turn:] *= -1
        columns = self.columns(cycles, lanes=lanes, p_valid=0.0, p_clear=0.0, p_rst=0.0)
        columns["valid"] = rng.random(shape) < rng.uniform(0.8, 1.0, lanes)[:, None]
        columns["clear"][:, 0] = True
        columns["clear"][role == 0, turn] = True
        columns["rst"][role == 1, turn] = True
        pick = rng.random(shape) < 0.9
        for name in self.operands:
            chosen = np.where(direction > 0, extreme[1][name], extreme[-1][name])
            columns[name] = np.where(pick, chosen, columns[name])
        return columns

    async def check_batch(self, columns):
        """Run ``columns`` through the wrapper and compare every lane and cycle with the golden model.

        Stimulus for fewer lanes than the wrapper has is padded with idle lanes (all inputs 0);
        the first of those is checked too, the others (identical by construction) are not counted.
        """
        active, cycles = columns["rst"].shape
        if active < self.lanes:
            columns = {name: np.pad(values, ((0, self.lanes - active), (0, 0))) for name, values in columns.items()}
        outputs = await self.batch.run(columns)
        self.dut._log.info("batch: %d lanes x %d cycles simulated in %.3f s", self.lanes, cycles,
                           self.batch.sim_seconds)
        checked = min(active + 1, self.lanes)
        acc, overflow = expected_outputs({name: values[:checked] for name, values in columns.items()}, self.step,
                                         gaps=self.batch.chunk_starts(cycles))
        actual = {"acc": as_signed(outputs["acc"][:checked], self.width),
                  "overflow": outputs["overflow"][:checked].astype(bool)}
        self.ctx.compare({"acc": acc, "overflow": overflow}, actual, lambda index: self.describe(columns, *index))

    async def check_direct(self, columns):
        """Drive lane-0 stimulus cycle by cycle through the wrapper ports (no batch) and compare."""
        cycles = columns["rst"].shape[1]
        masks = {name: (1 << width) - 1 for name, width in self.batch.stim.fields}
        handles = {name: getattr(self.dut, name) for name in self.inputs}
        acc = np.zeros((1, cycles), np.int64)
        overflow = np.zeros((1, cycles), bool)
        rows = {name: [int(v) & masks[name] for v in columns[name][0]] for name in self.inputs}
        for t in range(cycles):
            for name, handle in handles.items():
                handle.value = rows[name][t]
            await ReadOnly()
            acc[0, t] = self.dut.acc.value.to_signed()
            overflow[0, t] = bool(self.dut.overflow.value)
            await RisingEdge(self.dut.clk)
        for handle in handles.values():
            handle.value = 0
        exp_acc, exp_overflow = expected_outputs(columns, self.step)
        self.ctx.compare({"acc": exp_acc, "overflow": exp_overflow}, {"acc": acc, "overflow": overflow},
                         lambda index: self.describe(columns, *index))

    def describe(self, columns, lane, cycle):
        """Inputs of ``lane`` in the cycles whose effect can show at ``cycle`` (LATENCY = 2)."""
        rows = []
        for t in range(max(0, cycle - 3), cycle + 1):
            fields = " ".join(f"{name}={int(columns[name][lane, t])}" for name in self.inputs)
            rows.append(f"[cycle {t}: {fields}]")
        return " ".join(rows)
