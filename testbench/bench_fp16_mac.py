"""cocotb bench of Fp16Mac (rtl/fp16_mac.py) against golden.fp16.mac_step, in the batch wrapper.

Expected values come only from :func:`golden.fp16.mac_step`; :func:`expected_outputs` adds the
unit's cycle protocol by reusing :func:`testbench.mac_model.expected_outputs` (LATENCY = 2, one
flag) with two adaptations, both checked against the independent cycle model
:func:`golden.fp16.mac_sequence` in tests/test_cocotb_fp16_mutant.py:

* LATENCY = 3: the inputs are delayed by one cycle before the LATENCY-2 model sees them, and the
  inputs of a reset cycle are dropped beforehand (a reset loses the inputs of its own cycle and
  of the two before it).
* Two sticky flags: the model's state word carries the accumulator pattern in bits 15..0,
  ``invalid`` in bit 16 and ``overflow`` in bit 17; a restart (clear, reset) zeroes all three.

Stimulus is directed corner classes (exhaustive over ``golden.fp16.CORNER_PATTERNS``, products
and sums that are exact ties, that round to overflow or cancel) as two-term sums, and seeded
random streams with valid gaps, clears and resets.
"""

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge

import golden.fp16
from rtl.fp16_mac import Fp16Mac

from . import mac_model
from .batch import BatchRunner
from .checks import _LEVEL_FLAG, BenchContext
from .units import BENCHES, unit_ports

LATENCY = Fp16Mac.LATENCY
ONE, MINUS_ONE = 0x3C00, 0xBC00
CORNERS = golden.fp16.CORNER_PATTERNS.astype(np.int64)
OUTPUTS = ("acc", "invalid", "overflow")
INVALID_BIT, OVERFLOW_BIT = 1 << 16, 1 << 17
#: Exact ties at the overflow limit 65,520 (they round to Inf): 45 * 1456 and 65,504 + 16, both signs.
LIMIT_PRODUCTS = (np.array([0x51A0, 0xD1A0]), np.array([0x65B0, 0x65B0]))
LIMIT_SUMS = (np.array([0x7BFF, 0xFBFF]), np.array([0x4C00, 0xCC00]))

# Icarus simulates only about 6,000 Fp16Mac lane-cycles per second, which sets the quick sizes.
RANDOM_VECTORS = {"quick": 32_768, "full": 262_144, "long": 1_310_720}  # 85 % valid: long has >= 1M MACs
CORNER_PARTNERS = {"quick": 1, "full": 4, "long": 16}   # second terms per corner product
DIRECTED = {"quick": 1_024, "full": 8_192, "long": 32_768}  # sums per class in ties/overflow/cancellation
DIRECT_CYCLES = {"quick": 1_000, "full": 3_000, "long": 3_000}  # cocotb drives each cycle: slow


# ----------------------------------------------------------------------------- expected values

def _step(state, ops):
    """One golden MAC step on state words (pattern | invalid << 16 | overflow << 17)."""
    total, flags = golden.fp16.mac_step(state & 0xFFFF, ops["a"], ops["b"])
    state = (state & (INVALID_BIT | OVERFLOW_BIT)) | total.astype(np.int64)
    state |= flags.invalid.astype(np.int64) << 16
    state |= flags.overflow.astype(np.int64) << 17
    return state, np.zeros(state.shape, bool)


def expected_outputs(columns, gaps=()):
    """Expected ``acc`` (pattern), ``invalid`` and ``overflow`` (int64), each of shape (lanes, cycles).

    ``columns`` maps ``rst``, ``clear``, ``valid``, ``a``, ``b`` to arrays (lanes, cycles); ``gaps``
    are cycles before which the unit saw one extra idle cycle (see :mod:`testbench.mac_model`).
    """
    columns = {name: np.asarray(values) for name, values in columns.items()}
    lanes, cycles = columns["rst"].shape
    if len(gaps):
        columns = {name: np.insert(values, gaps, 0, axis=1) for name, values in columns.items()}
    rst = columns["rst"].astype(bool)
    delayed = {"rst": rst}
    for name, values in columns.items():
        if name != "rst":
            if name in ("valid", "clear"):
                values = values.astype(bool) & ~rst
            delayed[name] = np.pad(values, ((0, 0), (1, 0)))[:, :-1]
    state, _ = mac_model.expected_outputs(delayed, _step)
    if len(gaps):
        state = np.delete(state, np.asarray(gaps) + np.arange(len(gaps)), axis=1)
    assert state.shape == (lanes, cycles)
    return {"acc": state & 0xFFFF, "invalid": (state >> 16) & 1, "overflow": (state >> 17) & 1}


# ----------------------------------------------------------------------------- operand classes

def _pattern(sign, exp, frac):
    return (np.asarray(sign, np.int64) << 15) | (np.asarray(exp, np.int64) << 10) | np.asarray(frac, np.int64)


def _short_fractions(rng, shape):
    """Random 10-bit fractions with a random number (0..10) of trailing zero bits: makes ties common."""
    keep = rng.integers(0, 11, shape)
    return rng.integers(0, 1 << 10, shape) & ~((1 << (10 - keep)) - 1)


def _values(patterns):
    return golden.fp16.to_float64(np.asarray(patterns, np.int64))


def _is_tie(exact):
    """Whether float64 values lie exactly halfway between two neighbouring finite binary16 values."""
    magnitude = np.abs(exact)
    with np.errstate(over="ignore"):
        rounded = magnitude.astype(np.float16).astype(np.float64)
    ulp = np.ldexp(1.0, np.maximum(np.frexp(magnitude)[1] - 11, -24))
    return np.isfinite(rounded) & (magnitude > 0) & (np.abs(magnitude - rounded) == ulp / 2)


def _take(rng, draw, keep, count):
    """``count`` rows of ``draw(n)`` (a tuple of equal-length arrays) whose ``keep(*rows)`` holds."""
    found, total = [], 0
    while total < count:
        rows = draw(8 * count)
        chosen = keep(*rows)
        found.append(tuple(r[chosen] for r in rows))
        total += int(chosen.sum())
    return tuple(np.concatenate(parts)[:count] for parts in zip(*found))


def product_ties(rng, count):
    """Operand pairs (a, b) whose exact product is a rounding tie (normal and subnormal results)."""
    def draw(n):
        return (_pattern(rng.integers(0, 2, n), rng.integers(0, 31, n), _short_fractions(rng, n)),
                _pattern(rng.integers(0, 2, n), rng.integers(0, 31, n), _short_fractions(rng, n)))
    return _take(rng, draw, lambda a, b: _is_tie(_values(a) * _values(b)), count)


def sum_ties(rng, count):
    """Addend pairs (x, y) whose exact sum is a rounding tie: exponents 0..12 apart, both signs."""
    def draw(n):
        exp = rng.integers(0, 31, n)
        other = np.clip(exp - rng.integers(0, 13, n), 0, 30)
        return (_pattern(rng.integers(0, 2, n), exp, _short_fractions(rng, n)),
                _pattern(rng.integers(0, 2, n), other, _short_fractions(rng, n)))
    return _take(rng, draw, lambda x, y: _is_tie(_values(x) + _values(y)), count)


def product_overflow_edge(rng, count):
    """Operand pairs whose exact product lies within about 0.2 % of 65,520 (the rounding limit to
    Inf), the exact ties :data:`LIMIT_PRODUCTS` first."""
    def draw(n):
        target = rng.uniform(65_376, 65_664, n)
        a = _pattern(0, rng.integers(16, 23, n), rng.integers(0, 1 << 10, n))  # 2 .. 256
        b = golden.fp16.from_float64(target / _values(a)).astype(np.int64)
        signs = rng.integers(0, 4, n)
        return a | ((signs & 1) << 15), b | ((signs >> 1) << 15)
    found = _take(rng, draw, lambda a, b: np.isfinite(_values(b)), count)
    return tuple(np.concatenate([limit, values])[:count] for limit, values in zip(LIMIT_PRODUCTS, found))


def sum_overflow_edge(rng, count):
    """Addend pairs (x, y) of one sign with x within 4 ulps (of 32) of the largest value and |y| in
    4..256, the exact ties :data:`LIMIT_SUMS` first."""
    sign = rng.integers(0, 2, count)
    x = _pattern(sign, 30, 1023 - rng.integers(0, 5, count))
    y = _pattern(sign, rng.integers(17, 23, count), _short_fractions(rng, count))
    return tuple(np.concatenate([limit, values])[:count] for limit, values in zip(LIMIT_SUMS, (x, y)))


def cancellations(rng, count):
    """Addend pairs (x, y) of opposite signs: |y| within 3 ulps of |x| (exact small or zero results)
    or |x| a power of two and |y| 10..13 binades below (one-bit renormalisation before rounding)."""
    half = count // 2
    x = _pattern(rng.integers(0, 2, half), rng.integers(0, 31, half), rng.integers(0, 1 << 10, half))
    y_magnitude = np.clip((x & 0x7FFF) + rng.integers(-3, 4, half), 0, 0x7BFF)
    near = (x, y_magnitude | ((x & 0x8000) ^ 0x8000))
    rest = count - half
    exp = rng.integers(11, 31, rest)
    sign = rng.integers(0, 2, rest)
    power = _pattern(sign, exp, 0)
    below = _pattern(1 - sign, np.maximum(exp - rng.integers(10, 14, rest), 0), rng.integers(0, 1 << 10, rest))
    return tuple(np.concatenate(pair) for pair in zip(near, (power, below)))


def mixed_operands(rng, shape):
    """Random operands for long sums: values 2**-6 .. 2**7 of either sign, fractions often short,
    1 % drawn from the corner patterns (Inf, NaN, zeros, subnormals, extremes)."""
    values = _pattern(rng.integers(0, 2, shape), rng.integers(9, 22, shape), _short_fractions(rng, shape))
    special = rng.random(shape) < 0.01
    values[special] = rng.choice(CORNERS, int(special.sum()))
    return values


# ----------------------------------------------------------------------------- the bench

class Fp16MacBench:
    """Drives Fp16Mac lanes inside the batch wrapper (:mod:`testbench.batch`).

    Parameters
    ----------
    dut : cocotb handle of the wrapper
    ctx : testbench.checks.BenchContext
    """

    def __init__(self, dut, ctx):
        self.dut, self.ctx = dut, ctx
        self.lanes = BENCHES[ctx.unit].lanes[ctx.sim]
        self.batch = BatchRunner(dut, unit_ports(ctx.unit, ctx.params), self.lanes, BENCHES[ctx.unit].depth)
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

    def random_columns(self, cycles, operands, lanes=None, p_valid=0.85, p_clear=1 / 24, p_rst=1 / 5000):
        """Random stimulus of shape (lanes, cycles): operands from ``operands(rng, shape)``; valid
        gaps, clears and resets at the given per-cycle probabilities."""
        rng, shape = self.ctx.rng, (lanes or self.lanes, cycles)
        return {
            "rst": rng.random(shape, np.float32) < p_rst,
            "clear": rng.random(shape, np.float32) < p_clear,
            "valid": rng.random(shape, np.float32) < p_valid,
            "a": operands(rng, shape),
            "b": operands(rng, shape),
        }

    def sums(self, first, second):
        """Two-term sums, spread over the lanes: ``first[i]`` (with clear), then ``second[i]``.

        ``first``/``second`` are (a, b) pairs of equally long 1-D arrays; LATENCY idle cycles at
        the end let the last sum reach the outputs.
        """
        count = len(first[0])
        per_lane = -(-count // self.lanes)
        pad = per_lane * self.lanes - count
        columns = {}
        for index, name in enumerate(("a", "b")):
            pair = np.stack([np.pad(first[index], (0, pad)), np.pad(second[index], (0, pad))], axis=1)
            columns[name] = np.pad(pair.reshape(self.lanes, 2 * per_lane), ((0, 0), (0, LATENCY)))
        live = np.pad(np.ones(count, bool), (0, pad)).reshape(self.lanes, per_lane)
        columns["valid"] = np.pad(np.repeat(live, 2, axis=1), ((0, 0), (0, LATENCY)))
        columns["clear"] = np.zeros_like(columns["valid"])
        columns["clear"][:, 0:2 * per_lane:2] = True
        columns["rst"] = np.zeros_like(columns["valid"])
        return columns

    def additions(self, x, y):
        """Two-term sums that add exactly ``x`` and then ``y`` (each times 1.0, an exact product)."""
        one = np.full(len(x), ONE)
        return self.sums((x, one), (y, one))

    async def check_batch(self, columns):
        """Run ``columns`` through the wrapper and compare every lane and cycle with the golden model."""
        cycles = columns["rst"].shape[1]
        outputs = await self.batch.run(columns)
        self.dut._log.info("batch: %d lanes x %d cycles simulated in %.3f s", self.lanes, cycles,
                           self.batch.sim_seconds)
        expected = expected_outputs(columns, gaps=self.batch.chunk_starts(cycles))
        actual = {name: outputs[name].astype(np.int64) for name in OUTPUTS}
        self.ctx.compare(expected, actual, lambda index: self.describe(columns, *index))

    async def check_direct(self, columns):
        """Drive lane-0 stimulus cycle by cycle through the wrapper ports (no batch) and compare.

        Outputs are read in every cycle from the first one after reset; an X or Z fails at once.
        """
        cycles = columns["rst"].shape[1]
        expected = expected_outputs(columns)
        handles = {name: getattr(self.dut, name) for name in self.inputs}
        rows = {name: [int(v) for v in columns[name][0]] for name in self.inputs}
        actual = {name: np.zeros((1, cycles), np.int64) for name in OUTPUTS}
        for t in range(cycles):
            for name, handle in handles.items():
                handle.value = rows[name][t]
            await ReadOnly()
            for name in OUTPUTS:
                value = getattr(self.dut, name).value
                if not value.is_resolvable:
                    self._unknown(columns, expected, t, name, value)
                actual[name][0, t] = int(value)
            await RisingEdge(self.dut.clk)
        for handle in handles.values():
            handle.value = 0
        self.ctx.compare(expected, actual, lambda index: self.describe(columns, *index))

    def _unknown(self, columns, expected, cycle, name, value):
        """Record and raise the failure of an output that reads X or Z (in the compare format)."""
        ctx = self.ctx
        wanted = " ".join(f"{field}={int(expected[field][0, cycle])}" for field in OUTPUTS)
        message = (f"{ctx.module} on {ctx.sim}, test {ctx.test}, seed {ctx.seed}: {name} reads {value}; "
                   f"first at lane 0, cycle {cycle}: expected {wanted}, actual {name}={value}; inputs: "
                   f"{self.describe(columns, 0, cycle)}. Reproduce: SEED={ctx.seed} python -m testbench "
                   f"--sim {ctx.sim} --unit {ctx.unit}{_LEVEL_FLAG[ctx.level]}")
        ctx.mismatches += 1
        ctx.record(message)
        raise AssertionError(message)

    def describe(self, columns, lane, cycle):
        """Inputs of ``lane`` in the cycles whose effect can show at ``cycle`` (operands in hex)."""
        rows = []
        for t in range(max(0, cycle - LATENCY - 1), cycle + 1):
            flags = " ".join(f"{name}={int(columns[name][lane, t])}" for name in ("rst", "clear", "valid"))
            operands = " ".join(f"{name}=0x{int(columns[name][lane, t]):04x}" for name in ("a", "b"))
            rows.append(f"[cycle {t}: {flags} {operands}]")
        return " ".join(rows)


def joined(*parts):
    """Stimulus ``parts`` one after the other (one batch: the model starts from reset only once)."""
    return {name: np.concatenate([part[name] for part in parts], axis=1) for name in parts[0]}


def _bench(dut, test):
    ctx = BenchContext(dut, test)
    return ctx, Fp16MacBench(dut, ctx)


# ----------------------------------------------------------------------------- cocotb tests

@cocotb.test()
async def corner_products(dut):
    """Every ordered pair of the 64 corner patterns as a product (first term of a sum), each
    followed by 1 / 4 / 16 random corner products as second terms (quick / full / long)."""
    ctx, bench = _bench(dut, "corner_products")
    await bench.start()
    a, b = (grid.ravel() for grid in np.meshgrid(CORNERS, CORNERS, indexing="ij"))
    partners = CORNER_PARTNERS[ctx.level]
    first = (np.repeat(a, partners), np.repeat(b, partners))
    pick = ctx.rng.integers(0, a.size, a.size * partners)
    await bench.check_batch(bench.sums(first, (a[pick], b[pick])))
    ctx.record()


@cocotb.test()
async def corner_sums(dut):
    """Every ordered pair (x, y) of the corner patterns added, and subtracted (y times -1.0)."""
    ctx, bench = _bench(dut, "corner_sums")
    await bench.start()
    x, y = (grid.ravel() for grid in np.meshgrid(CORNERS, CORNERS, indexing="ij"))
    one = np.full(x.size, ONE)
    sign = np.concatenate([one, np.full(x.size, MINUS_ONE)])
    await bench.check_batch(bench.sums((np.tile(x, 2), np.tile(one, 2)), (np.tile(y, 2), sign)))
    ctx.record()


@cocotb.test()
async def ties(dut):
    """Products that are exact rounding ties (then a random tie product as second term) and sums
    that are exact ties, normal and subnormal, both signs."""
    ctx, bench = _bench(dut, "ties")
    await bench.start()
    count = DIRECTED[ctx.level]
    a, b = product_ties(ctx.rng, 2 * count)
    await bench.check_batch(joined(bench.sums((a[:count], b[:count]), (a[count:], b[count:])),
                                   bench.additions(*sum_ties(ctx.rng, count))))
    ctx.record()


@cocotb.test()
async def overflow_edge(dut):
    """Products and sums around 65,520, where rounding goes to the largest finite value or to Inf
    (the overflow flag), both signs; then sums stepping onto and off the largest value."""
    ctx, bench = _bench(dut, "overflow_edge")
    await bench.start()
    count = DIRECTED[ctx.level]
    a, b = product_overflow_edge(ctx.rng, count)
    one = np.full(count, ONE)
    await bench.check_batch(joined(bench.sums((a, b), (ctx.rng.choice(CORNERS, count), one)),
                                   bench.additions(*sum_overflow_edge(ctx.rng, count))))
    ctx.record()


@cocotb.test()
async def cancellation(dut):
    """Opposite-sign sums of nearly equal magnitudes (exact zeros, subnormal results) and a power
    of two minus a much smaller value."""
    ctx, bench = _bench(dut, "cancellation")
    await bench.start()
    await bench.check_batch(bench.additions(*cancellations(ctx.rng, DIRECTED[ctx.level])))
    ctx.record()


@cocotb.test()
@cocotb.parametrize(operands=["uniform", "mixed"])
async def random_stream(dut, operands):
    """Random operands with valid gaps, clears and resets: uniform over all 65,536 patterns (sums
    soon hit Inf/NaN) or mixed (finite values of similar magnitude, long sums; 1 % specials)."""
    ctx, bench = _bench(dut, f"random_stream[operands={operands}]")
    await bench.start()
    draw = mixed_operands if operands == "mixed" else (lambda rng, shape: rng.integers(0, 1 << 16, shape))
    await bench.check_batch(bench.random_columns(RANDOM_VECTORS[ctx.level] // 2 // bench.lanes, draw))
    ctx.record()


@cocotb.test()
async def direct_drive(dut):
    """Cycle-by-cycle cocotb drive of lane 0 through the wrapper ports (cross-checks the batch
    path, which reads X as 0): the outputs must be known from the first cycle after reset."""
    ctx, bench = _bench(dut, "direct_drive")
    await bench.start()
    columns = bench.random_columns(DIRECT_CYCLES[ctx.level], mixed_operands, lanes=1, p_rst=1 / 500, p_clear=1 / 8)
    columns["valid"][:, :8] = False  # idle first: the reset state itself is checked
    await bench.check_direct(columns)
    ctx.record()
