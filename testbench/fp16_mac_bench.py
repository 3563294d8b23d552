"""The binary16 MAC benches' shared parts: stimulus classes, :class:`Fp16MacBench` and the cocotb
tests that testbench/bench_fp16_mac.py (Fp16Mac) and bench_fp16_pipe_mac.py (Fp16PipeMac) run.

For Fp16Mac (rtl/fp16_mac.py), expected values come only from :func:`golden.fp16.mac_step`; :func:`expected_outputs` adds the
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

import numpy as np

import golden.fp16
from rtl.fp16_mac import Fp16Mac

from . import mac_model
from .checks import bench_test
from .mac_bench import BatchBench

LATENCY = Fp16Mac.LATENCY
ONE, MINUS_ONE = 0x3C00, 0xBC00
CORNERS = golden.fp16.CORNER_PATTERNS.astype(np.int64)
OUTPUTS = ("acc", "invalid", "overflow")
INVALID_BIT, OVERFLOW_BIT = 1 << 16, 1 << 17
#: Exact ties at the overflow limit 65,520 (they round to Inf): 45 * 1456 and 65,504 + 16, both signs.
LIMIT_PRODUCTS = (np.array([0x51A0, 0xD1A0]), np.array([0x65B0, 0x65B0]))
LIMIT_SUMS = (np.array([0x7BFF, 0xFBFF]), np.array([0x4C00, 0xCC00]))

# Icarus simulates only about 6,000 Fp16Mac lane-cycles per second, which sets the quick sizes.
RANDOM_VECTORS = {"quick": 32_768, "full": 65_536, "long": 1_310_720}  # 85 % valid: long has >= 1M MACs
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

class Fp16MacBench(BatchBench):
    """Fp16Mac lanes inside the batch wrapper: binary16 operands, three outputs, golden.fp16.

    A subclass naming another ``unit`` (a binary16 MAC with the same ports) runs the same tests
    (:func:`fp16_bench`), with its own ``latency``, ``interleave`` and :meth:`expected`.
    """

    unit = "fp16_mac"
    latency = LATENCY
    outputs = OUTPUTS

    def __init__(self, dut, ctx):
        super().__init__(dut, ctx)
        self.operand_names = ["a", "b"]

    def draw_operands(self, rng, shape):
        return {name: rng.integers(0, 1 << 16, shape) for name in self.operand_names}

    def expected(self, columns, gaps=()):
        return expected_outputs(columns, gaps)

    def show(self, name, value):
        return f"0x{int(value):04x}"

    def additions(self, x, y):
        """Two-term sums that add exactly ``x`` and then ``y`` (each times 1.0, an exact product)."""
        one = np.full(len(x), ONE)
        return self.sums((x, one), (y, one))


def fp16_bench(dut, ctx):
    """The bench of the unit under test: :class:`Fp16MacBench` or the subclass naming that unit."""
    kinds = {kind.unit: kind for kind in (Fp16MacBench, *Fp16MacBench.__subclasses__())}
    return kinds[ctx.unit](dut, ctx)


def joined(*parts):
    """Stimulus ``parts`` one after the other (one batch: the model starts from reset only once)."""
    return {name: np.concatenate([part[name] for part in parts], axis=1) for name in parts[0]}


# ----------------------------------------------------------------------------- cocotb tests

#: The tests a bench module runs with ``from .fp16_mac_bench import *``.
__all__ = ["corner_products", "corner_sums", "ties", "overflow_edge", "cancellation", "random_stream", "direct_drive"]

@bench_test(fp16_bench)
async def corner_products(bench):
    """Every ordered pair of the 64 corner patterns as a product (first term of a sum), each
    followed by 1 / 4 / 16 random corner products as second terms (quick / full / long)."""
    a, b = (grid.ravel() for grid in np.meshgrid(CORNERS, CORNERS, indexing="ij"))
    partners = CORNER_PARTNERS[bench.ctx.level]
    first = (np.repeat(a, partners), np.repeat(b, partners))
    pick = bench.ctx.rng.integers(0, a.size, a.size * partners)
    await bench.check_batch(bench.sums(first, (a[pick], b[pick])))


@bench_test(fp16_bench)
async def corner_sums(bench):
    """Every ordered pair (x, y) of the corner patterns added, and subtracted (y times -1.0)."""
    x, y = (grid.ravel() for grid in np.meshgrid(CORNERS, CORNERS, indexing="ij"))
    one = np.full(x.size, ONE)
    sign = np.concatenate([one, np.full(x.size, MINUS_ONE)])
    await bench.check_batch(bench.sums((np.tile(x, 2), np.tile(one, 2)), (np.tile(y, 2), sign)))


@bench_test(fp16_bench)
async def ties(bench):
    """Products that are exact rounding ties (then a random tie product as second term) and sums
    that are exact ties, normal and subnormal, both signs."""
    count = DIRECTED[bench.ctx.level]
    a, b = product_ties(bench.ctx.rng, 2 * count)
    await bench.check_batch(joined(bench.sums((a[:count], b[:count]), (a[count:], b[count:])),
                                   bench.additions(*sum_ties(bench.ctx.rng, count))))


@bench_test(fp16_bench)
async def overflow_edge(bench):
    """Products and sums around 65,520, where rounding goes to the largest finite value or to Inf
    (the overflow flag), both signs; then sums stepping onto and off the largest value."""
    count = DIRECTED[bench.ctx.level]
    a, b = product_overflow_edge(bench.ctx.rng, count)
    one = np.full(count, ONE)
    await bench.check_batch(joined(bench.sums((a, b), (bench.ctx.rng.choice(CORNERS, count), one)),
                                   bench.additions(*sum_overflow_edge(bench.ctx.rng, count))))


@bench_test(fp16_bench)
async def cancellation(bench):
    """Opposite-sign sums of nearly equal magnitudes (exact zeros, subnormal results) and a power
    of two minus a much smaller value."""
    await bench.check_batch(bench.additions(*cancellations(bench.ctx.rng, DIRECTED[bench.ctx.level])))


@bench_test(fp16_bench, ("operands", ["uniform", "mixed"]))
async def random_stream(bench, operands):
    """Random operands with valid gaps, clears and resets: uniform over all 65,536 patterns (sums
    soon hit Inf/NaN) or mixed (finite values of similar magnitude, long sums; 1 % specials)."""
    draw = mixed_operands if operands == "mixed" else None
    await bench.check_batch(bench.columns(RANDOM_VECTORS[bench.ctx.level] // 2 // bench.lanes, draw=draw))


@bench_test(fp16_bench)
async def direct_drive(bench):
    """Cycle-by-cycle cocotb drive of lane 0 through the wrapper ports (cross-checks the batch
    path, which reads X as 0): the outputs must be known from the first cycle after reset."""
    columns = bench.columns(DIRECT_CYCLES[bench.ctx.level], lanes=1, p_rst=1 / 500, p_clear=1 / 8, draw=mixed_operands)
    columns["valid"][:, :8] = False  # idle first: the reset state itself is checked
    await bench.check_direct(columns)
