"""Batch benches of cycle-level MAC units in the batch wrapper: one base, a subclass per golden model.

:class:`BatchBench` builds cycle-level stimulus as numpy arrays of shape (lanes, cycles) (random
streams, two-term sums), runs it through the wrapper (:mod:`testbench.batch`) or, for
cross-checking, cycle by cycle through the wrapper's own ports, where an X or Z output fails at
once, and compares every cycle's outputs with the golden model. A subclass says what differs:

* :meth:`BatchBench.draw_operands` -- random operands of one stimulus;
* :meth:`BatchBench.expected` -- the golden outputs of a stimulus;
* :meth:`BatchBench.decode` -- the outputs read from the simulator as compared values;
* :meth:`BatchBench.show` -- how an operand is printed in a failure report;
* :attr:`BatchBench.latency` -- cycles from an input to the outputs it changes.

:class:`MacBench` serves Int4Mac, its DSP pair and ShiftMac with
:func:`testbench.mac_model.expected_outputs`; :func:`mac_tests` makes the cocotb tests they share.
"""

import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge

from .batch import BatchRunner, as_signed
from .checks import bench_test
from .mac_model import expected_outputs
from .units import BENCHES, unit_ports

MAX_SATURATION_CYCLES = 1 << 19  # W = 64 (and beyond) cannot be driven to its limits
RANDOM_VECTORS = {"quick": 65_536, "full": 262_144, "long": 1_310_720}  # 85 % valid: long has >= 1M MACs
DIRECT_CYCLES = 3_000
CONTROLS = ("rst", "clear", "valid")


class BatchBench:
    """Drives the lanes of one unit configuration inside the batch wrapper.

    Parameters
    ----------
    dut : cocotb handle of the wrapper
    ctx : testbench.checks.BenchContext
    """

    #: Cycles from an input cycle to the first output cycle that shows its effect.
    latency = 2
    #: Output ports compared with :meth:`expected`.
    outputs = ("acc", "overflow")
    #: Running sums the unit feeds in turn (the term of input cycle t joins sum t mod interleave).
    interleave = 1

    def __init__(self, dut, ctx):
        self.dut, self.ctx = dut, ctx
        bench = BENCHES[ctx.unit]
        self.lanes = bench.lanes[ctx.sim]
        self.batch = BatchRunner(dut, unit_ports(ctx.unit, ctx.params), self.lanes, bench.depth)
        self.inputs = [name for name, _ in self.batch.stim.fields]
        self.operand_names = [name for name in self.inputs if name not in CONTROLS]

    # -- hooks -------------------------------------------------------------------------------

    def draw_operands(self, rng, shape):
        """Random operands for :meth:`columns`: dict name -> int array of ``shape``."""
        raise NotImplementedError

    def expected(self, columns, gaps=()):
        """Golden outputs of ``columns``: dict output name -> array (lanes, cycles).

        ``gaps`` are cycles before which the unit saw one extra idle cycle (batch chunk borders).
        """
        raise NotImplementedError

    def decode(self, outputs):
        """Compared values from raw output fields (dict name -> uint64 array (lanes, cycles))."""
        return {name: outputs[name].astype(np.int64) for name in self.outputs}

    def show(self, name, value):
        """An operand value as a failure report prints it."""
        return str(int(value))

    # -- stimulus ------------------------------------------------------------------------------

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

    def columns(self, cycles, lanes=None, p_valid=0.85, p_clear=1 / 24, p_rst=1 / 5000, draw=None):
        """Random stimulus of shape (lanes, cycles): valid gaps, clears and resets at the given
        per-cycle probabilities; operands from :meth:`draw_operands`, or from ``draw(rng, shape)``
        for each operand."""
        rng, shape = self.ctx.rng, (lanes or self.lanes, cycles)
        columns = {
            "rst": rng.random(shape, np.float32) < p_rst,
            "clear": rng.random(shape, np.float32) < p_clear,
            "valid": rng.random(shape, np.float32) < p_valid,
        }
        if draw is None:
            columns.update(self.draw_operands(rng, shape))
        else:
            columns.update({name: draw(rng, shape) for name in self.operand_names})
        return columns

    def sums(self, first, second):
        """Stimulus of two-term sums: ``first[i]`` (with clear) then ``second[i]``, spread over the lanes.

        ``first``/``second`` map operand names to 1-D arrays of equal length (or are sequences of
        arrays in operand order); ``latency`` idle cycles at the end let the last sum reach the outputs.
        Per lane, blocks of ``interleave`` first terms precede their ``interleave`` second terms,
        so each pair meets in one running sum.
        """
        first, second = (term if isinstance(term, dict) else dict(zip(self.operand_names, term))
                         for term in (first, second))
        count = len(next(iter(first.values())))
        per_lane = -(-count // self.lanes)
        per_lane += -per_lane % self.interleave
        pad = per_lane * self.lanes - count
        blocks = (self.lanes, per_lane // self.interleave, 1, self.interleave)

        def laid_out(values):   # (lanes, blocks, 2, interleave) -> (lanes, cycles) and the idle tail
            return np.pad(values.reshape(self.lanes, 2 * per_lane), ((0, 0), (0, self.latency)))

        columns = {}
        for name in self.operand_names:
            terms = [np.pad(part[name], (0, pad)).reshape(blocks) for part in (first, second)]
            columns[name] = laid_out(np.concatenate(terms, axis=2))
        live = np.pad(np.ones(count, bool), (0, pad)).reshape(blocks)
        columns["valid"] = laid_out(np.repeat(live, 2, axis=2))
        starts = np.zeros(blocks[:2] + (2, self.interleave), bool)
        starts[:, :, 0] = True
        columns["clear"] = laid_out(starts)
        columns["rst"] = np.zeros_like(columns["valid"])
        return {name: values.astype(np.int64) for name, values in columns.items()}

    # -- checks ------------------------------------------------------------------------------

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
        mine = {name: values[:checked] for name, values in columns.items()}
        expected = self.expected(mine, gaps=self.batch.chunk_starts(cycles))
        actual = self.decode({name: outputs[name][:checked] for name in self.outputs})
        self.ctx.compare(expected, actual, lambda index: self.describe(columns, *index))

    async def check_direct(self, columns):
        """Drive lane-0 stimulus cycle by cycle through the wrapper ports (no batch) and compare.

        Outputs are read in every cycle from the first one after reset; an X or Z fails at once.
        """
        cycles = columns["rst"].shape[1]
        expected = self.expected(columns)
        masks = {name: (1 << width) - 1 for name, width in self.batch.stim.fields}
        handles = {name: getattr(self.dut, name) for name in self.inputs}
        rows = {name: [int(v) & masks[name] for v in columns[name][0]] for name in self.inputs}
        raw = {name: np.zeros((1, cycles), np.uint64) for name in self.outputs}
        for t in range(cycles):
            for name, handle in handles.items():
                handle.value = rows[name][t]
            await ReadOnly()
            for name in self.outputs:
                value = getattr(self.dut, name).value
                if not value.is_resolvable:
                    wanted = " ".join(f"{field}={int(expected[field][0, t])}" for field in self.outputs)
                    self.ctx.fail(f"{name} reads {value}; first at lane 0, cycle {t}: expected {wanted}, "
                                  f"actual {name}={value}; inputs: {self.describe(columns, 0, t)}")
                raw[name][0, t] = int(value)
            await RisingEdge(self.dut.clk)
        for handle in handles.values():
            handle.value = 0
        self.ctx.compare(expected, self.decode(raw), lambda index: self.describe(columns, *index))

    def describe(self, columns, lane, cycle):
        """Inputs of ``lane`` in the cycles whose effect can show at ``cycle``."""
        rows = []
        for t in range(max(0, cycle - self.latency - 1), cycle + 1):
            fields = [f"{name}={int(columns[name][lane, t])}" for name in CONTROLS]
            fields += [f"{name}={self.show(name, columns[name][lane, t])}" for name in self.operand_names]
            rows.append(f"[cycle {t}: {' '.join(fields)}]")
        return " ".join(rows)


class MacBench(BatchBench):
    """Int4Mac / ShiftMac: operands drawn uniformly from their value ranges, a golden step function.

    A subclass defines :meth:`step` and :meth:`product` and passes the operand ranges.

    Parameters
    ----------
    dut : cocotb handle of the wrapper
    ctx : testbench.checks.BenchContext
    operands : dict of str -> (int, int)
        Operand ports and their value ranges (values, not bit patterns).
    """

    def __init__(self, dut, ctx, operands):
        super().__init__(dut, ctx)
        self.operands = operands
        self.operand_names = list(operands)
        self.width = ctx.params["width"]

    def step(self, acc, ops):
        """Golden MAC step: (acc, overflowed_now) (see :func:`testbench.mac_model.expected_outputs`)."""
        raise NotImplementedError

    def product(self, ops):
        """The exact products of operand columns ``ops`` (int64)."""
        raise NotImplementedError

    def draw_operands(self, rng, shape):
        return {name: rng.integers(lo, hi + 1, shape, np.int8) for name, (lo, hi) in self.operands.items()}

    def expected(self, columns, gaps=()):
        acc, overflow = expected_outputs(columns, self.step, gaps=gaps)
        return {"acc": acc, "overflow": overflow}

    def decode(self, outputs):
        return {"acc": as_signed(outputs["acc"], self.width), "overflow": outputs["overflow"].astype(bool)}

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

    async def check_saturation(self):
        """Saturation at both limits, sticky overflow, clear and reset after saturating, leaving the
        rail; run only where the limit is within reach (W <= 16 in the quick regression)."""
        columns = self.saturating(self.extremes(self.product))
        if columns is not None and (self.width <= 16 or self.ctx.level != "quick"):
            await self.check_batch(columns)

    async def check_random_direct(self, cycles):
        """``cycles`` random cycles of lane 0 driven cycle by cycle (frequent clears and resets)."""
        await self.check_direct(self.columns(cycles, lanes=1, p_rst=1 / 500, p_clear=1 / 8))

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


async def random_stream(bench):
    """Uniform random operands with valid gaps, clears and resets in the middle of sums."""
    await bench.check_batch(bench.columns(RANDOM_VECTORS[bench.ctx.level] // bench.lanes))


async def saturation(bench):
    """Saturation at both limits (every lane of the unit), sticky overflow, clear and reset after
    saturating, leaving the rail.

    Reaching the limit of a W-bit accumulator takes about 2**(W-1) / (largest product) cycles,
    so the quick regression runs this only for W <= 16; W = 64 is out of reach.
    """
    await bench.check_saturation()


async def direct_drive(bench):
    """Cycle-by-cycle cocotb drive of lane 0 through the wrapper ports: cross-checks the batch path."""
    await bench.check_random_direct(DIRECT_CYCLES)


def mac_tests(make_bench, *bodies):
    """The shared MAC tests ``bodies`` (default: :func:`random_stream`, :func:`saturation`,
    :func:`direct_drive`) as cocotb tests of ``make_bench``; a bench module binds them to names of
    its own, where cocotb finds them."""
    return tuple(bench_test(make_bench)(body) for body in bodies or (random_stream, saturation, direct_drive))
