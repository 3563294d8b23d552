# amaranth: UnusedElaboratable=no
"""Int4Mac and ShiftMac in amaranth.sim against golden.units: products, accumulation, saturation."""

import numpy as np
import pytest
from amaranth import Cat
from amaranth.hdl import Fragment

import golden.units as gu
from rtl.int4_mac import Int4Mac
from rtl.shift_mac import ShiftMac
from testbench.sim import simulate


class Int4MacDriver:
    """Int4Mac with its operand space and golden model; a cycle's inputs are packed into one word."""

    def __init__(self, width=gu.FWD_WIDTH, signed=False):
        self.width, self.signed = width, signed
        self.dut = Int4Mac(width=width, signed_a=signed)
        self.inputs = Cat(self.dut.a, self.dut.b, self.dut.valid, self.dut.clear)
        self.control_shift = 8

    def __repr__(self):
        return f"Int4Mac(width={self.width}, signed_a={self.signed})"

    def operand_space(self):
        """All 256 (a, b) pairs as a dict of arrays."""
        a_values = np.arange(-8, 8) if self.signed else np.arange(16)
        a, b = np.meshgrid(a_values, np.arange(-8, 8), indexing="ij")
        return {"a": a.ravel(), "b": b.ravel()}

    def pack(self, ops):
        return (ops["a"] & 0xF) | (ops["b"] & 0xF) << 4

    def product(self, ops):
        return gu.int4_product(ops["a"], ops["b"], signed_a=self.signed)

    def step(self, acc, ops):
        return gu.int4_mac(acc, ops["a"], ops["b"], self.signed, self.width)


class ShiftMacDriver:
    """ShiftMac with its operand space and golden model (see Int4MacDriver)."""

    def __init__(self, width=gu.BWD_WIDTH, signed=True):
        self.width, self.signed = width, signed
        self.dut = ShiftMac(width=width, signed_b=signed)
        self.inputs = Cat(self.dut.code.as_value(), self.dut.b, self.dut.phase, self.dut.valid, self.dut.clear)
        self.control_shift = 9

    def __repr__(self):
        return f"ShiftMac(width={self.width}, signed_b={self.signed})"

    def operand_space(self):
        """All 16 codes x 16 operands x 2 phases."""
        b_values = np.arange(-8, 8) if self.signed else np.arange(16)
        code, b, phase = np.meshgrid(np.arange(16), b_values, [0, 1], indexing="ij")
        return {"code": code.ravel(), "b": b.ravel(), "phase": phase.ravel()}

    def pack(self, ops):
        return ops["code"] | (ops["b"] & 0xF) << 4 | ops["phase"] << 8

    def product(self, ops):
        terms = np.zeros(len(ops["code"]), np.int64)
        for phase in (0, 1):  # golden.units.shift_product takes a scalar phase
            sel = ops["phase"] == phase
            terms[sel] = gu.shift_product(ops["code"][sel], phase, ops["b"][sel], signed_b=self.signed)
        return terms

    def step(self, acc, ops):
        return gu.shift_mac(acc, ops["code"], int(ops["phase"]), ops["b"], self.signed, self.width)


DRIVERS = {"int4_mac": Int4MacDriver, "shift_mac": ShiftMacDriver}


def pack_cycles(driver, ops, valid, clear):
    valid, clear = np.asarray(valid, np.int64), np.asarray(clear, np.int64)
    return driver.pack(ops) | (valid << driver.control_shift) | (clear << (driver.control_shift + 1))


def run_trace(driver, words):
    """Drive one packed input word per cycle; return (acc, overflow) aligned with the inputs.

    Entry t is what the outputs show LATENCY cycles after input t was presented; the outputs of
    the first LATENCY - 1 cycles (before any input can show) are returned separately.
    """
    dut, latency = driver.dut, type(driver.dut).LATENCY
    acc, overflow = [], []

    async def testbench(ctx):
        for t in range(len(words) + latency - 1):
            ctx.set(driver.inputs, int(words[t]) if t < len(words) else 0)
            await ctx.tick()
            acc.append(ctx.get(dut.acc))
            overflow.append(ctx.get(dut.overflow))

    simulate(dut, testbench)
    head = latency - 1
    return np.array(acc[head:]), np.array(overflow[head:], bool), (acc[:head], overflow[:head])


def golden_trace(driver, ops, valid, clear):
    """Per-cycle (acc, overflow) after each input: clear drops the sum, then a valid input is added."""
    acc, overflow = 0, False
    accs, overflows = np.zeros(len(valid), np.int64), np.zeros(len(valid), bool)
    for t in range(len(valid)):
        if clear[t]:
            acc, overflow = 0, False
        if valid[t]:
            new_acc, clamped = driver.step(acc, {k: v[t] for k, v in ops.items()})
            acc, overflow = int(new_acc), overflow or bool(clamped)
        accs[t], overflows[t] = acc, overflow
    return accs, overflows


def assert_trace(driver, ops, valid, clear, expected, actual, seed=None):
    (exp_acc, exp_ovf), (acc, ovf) = expected, actual
    bad = np.flatnonzero((exp_acc != acc) | (exp_ovf != ovf))
    if bad.size:
        t = bad[0]
        inputs = {k: int(v[t]) for k, v in ops.items()} | {"valid": int(valid[t]), "clear": int(clear[t])}
        pytest.fail(f"{driver} seed={seed}: first mismatch at input {t} of {len(valid)} ({bad.size} bad), "
                    f"inputs {inputs}: expected acc={exp_acc[t]} overflow={exp_ovf[t]}, "
                    f"got acc={acc[t]} overflow={ovf[t]}")


@pytest.mark.parametrize("unit", DRIVERS)
@pytest.mark.parametrize("signed", [False, True])
@pytest.mark.parametrize("width", [8, None])
def test_every_operand_combination(unit, signed, width):
    """Each combination as the first term of a new sum (clear and valid together), every cycle."""
    driver = DRIVERS[unit](signed=signed) if width is None else DRIVERS[unit](width=width, signed=signed)
    ops = driver.operand_space()
    n = len(next(iter(ops.values())))
    valid = clear = np.ones(n, bool)
    expected = gu.saturate(driver.product(ops), driver.width)
    acc, ovf, (head_acc, head_ovf) = run_trace(driver, pack_cycles(driver, ops, valid, clear))
    latency = type(driver.dut).LATENCY
    assert head_acc == [0] * (latency - 1) and head_ovf == [0] * (latency - 1), "reset state expected"
    assert_trace(driver, ops, valid, clear, expected, (acc, ovf))


def random_sequence(driver, rng, n, sum_lengths, valid_rate=0.75, bias=0.8):
    """Random cycles in sums of random length (a few of 1..3 cycles, for back-to-back clears).

    Successive sums lean towards positive and negative products in turn: ``bias`` of the terms
    have the sum's sign, the rest the other sign, and a tenth are arbitrary (zeros included).
    """
    lengths = []
    while sum(lengths) < n:
        short = rng.random() < 0.15
        lengths.append(int(rng.integers(1, 4) if short else rng.integers(*sum_lengths)))
    clear = np.zeros(n, bool)
    clear[np.cumsum([0] + lengths[:-1])] = True
    direction = np.where(np.cumsum(clear) % 2, 1, -1)
    space = driver.operand_space()
    products = driver.product(space)
    positive, negative = np.flatnonzero(products > 0), np.flatnonzero(products < 0)
    lean = np.where(rng.random(n) < bias, direction, -direction)
    index = np.where(lean > 0, rng.choice(positive, n), rng.choice(negative, n))
    index = np.where(rng.random(n) < 0.1, rng.integers(0, len(products), n), index)
    ops = {k: v[index] for k, v in space.items()}
    valid = rng.random(n) < valid_rate
    return ops, valid, clear


@pytest.mark.parametrize("unit", DRIVERS)
@pytest.mark.parametrize("signed", [False, True])
@pytest.mark.parametrize("width", [8, 12, None])
def test_random_accumulation(unit, signed, width, seed):
    """Random sums with valid gaps and clears (with and without a valid term) at every cycle."""
    driver = DRIVERS[unit](signed=signed) if width is None else DRIVERS[unit](width=width, signed=signed)
    rng = np.random.default_rng([seed, driver.width, signed, unit == "shift_mac"])
    n, sum_lengths = {8: (1000, (10, 70)), 12: (2000, (350, 700))}.get(width, (1000, (20, 200)))
    ops, valid, clear = random_sequence(driver, rng, n, sum_lengths)
    expected = golden_trace(driver, ops, valid, clear)
    if width is not None:  # the small widths must see saturation both ways and a sticky flag
        lo, hi = gu.acc_limits(driver.width)
        exp_acc, exp_ovf = expected
        assert (exp_acc == hi).any() and (exp_acc == lo).any(), "sequence never saturates both ways"
        assert (exp_ovf & (exp_acc != hi) & (exp_acc != lo)).any(), "overflow never outlives saturation"
    assert (clear & ~valid).any() and (clear & valid).any()
    acc, ovf, _ = run_trace(driver, pack_cycles(driver, ops, valid, clear))
    assert_trace(driver, ops, valid, clear, expected, (acc, ovf), seed)


def terms_reaching(driver, target):
    """Operand indices whose products sum exactly to ``target`` (greedy; products of +-1 exist)."""
    products = driver.product(driver.operand_space())
    sign = 1 if target > 0 else -1
    order = np.argsort(sign * products)[::-1]
    indices, rest = [], abs(target)
    while rest:
        index = next(i for i in order if 0 < sign * products[i] <= rest)
        indices.append(index)
        rest -= sign * products[index]
    return indices


@pytest.mark.parametrize("unit", DRIVERS)
@pytest.mark.parametrize("signed", [False, True])
@pytest.mark.parametrize("width", [8, 12])
def test_sums_exactly_at_the_limits_do_not_overflow(unit, signed, width):
    """A sum landing exactly on the most positive/negative value is not clamped; one more step is."""
    driver = DRIVERS[unit](width=width, signed=signed)
    lo, hi = gu.acc_limits(width)
    space = driver.operand_space()
    products = driver.product(space)
    step_up, step_down = np.flatnonzero(products == 1)[0], np.flatnonzero(products == -1)[0]
    up, down = terms_reaching(driver, hi), terms_reaching(driver, lo)
    index = up + [step_up] + down + [step_down]
    ops = {k: v[index] for k, v in space.items()}
    valid = np.ones(len(index), bool)
    clear = np.zeros(len(index), bool)
    clear[[0, len(up) + 1]] = True
    expected = golden_trace(driver, ops, valid, clear)
    exp_acc, exp_ovf = expected
    assert {(hi, False), (hi, True), (lo, False), (lo, True)} <= set(zip(exp_acc.tolist(), exp_ovf.tolist()))
    acc, ovf, _ = run_trace(driver, pack_cycles(driver, ops, valid, clear))
    assert_trace(driver, ops, valid, clear, expected, (acc, ovf))


def extreme_operands(driver):
    """The operands with the largest positive and the most negative product."""
    space = driver.operand_space()
    products = driver.product(space)
    pick = lambda i: {k: v[i:i + 1] for k, v in space.items()}  # noqa: E731
    return pick(np.argmax(products)), pick(np.argmin(products))


@pytest.mark.parametrize("unit", DRIVERS)
def test_saturation_at_default_width(unit):
    """Run the default-width accumulator into both limits with the largest products.

    Each phase holds one input for many cycles; after each phase the outputs must equal
    golden.units.accumulate over every term presented since the last clear.
    """
    driver = DRIVERS[unit]()
    dut, latency = driver.dut, type(driver.dut).LATENCY
    big, small = extreme_operands(driver)
    big_term, small_term = int(driver.product(big)[0]), int(driver.product(small)[0])
    lo, hi = gu.acc_limits(driver.width)
    up, down = hi // big_term - 1, lo // small_term - 1
    # (operands, valid, clear on the first cycle, cycles, expected saturation limit)
    phases = [
        (big, 1, 1, up, None),
        (big, 1, 0, 3, hi),
        (small, 1, 0, 2, None),
        (big, 0, 1, 3, None),
        (small, 1, 0, down, None),
        (small, 1, 0, 3, lo),
        (big, 1, 0, 2, None),
        (small, 0, 0, 4, None),
    ]
    checks = []

    async def testbench(ctx):
        for ops, valid, clear, cycles, _ in phases:
            ctx.set(driver.inputs, int(pack_cycles(driver, ops, [valid], [clear])[0]))
            if clear:  # clear only on the first cycle of the phase
                await ctx.tick()
                ctx.set(driver.inputs, int(pack_cycles(driver, ops, [valid], [0])[0]))
                cycles -= 1
            await ctx.tick().repeat(cycles)
            checks.append((ctx.get(dut.acc), bool(ctx.get(dut.overflow))))

    simulate(dut, testbench)

    terms = np.concatenate([np.full(cycles, int(driver.product(ops)[0]) if valid else 0)
                            for ops, valid, _, cycles, _ in phases])
    clears = np.concatenate([np.arange(cycles) == 0 if clear else np.zeros(cycles, bool)
                             for _, _, clear, cycles, _ in phases])
    ends = np.cumsum([cycles for *_, cycles, _ in phases])
    acc_state, ovf_state, done = 0, False, 0
    for (ops, valid, clear, cycles, saturated), end, (acc, ovf) in zip(phases, ends, checks):
        # The last LATENCY - 1 presented cycles have not reached the accumulator yet.
        shown = end - (latency - 1)
        cleared = np.flatnonzero(clears[done:shown])
        if cleared.size:
            acc_state, ovf_state, done = 0, False, done + cleared[-1]
        # Continuing a sum from acc_state equals accumulating [acc_state, new terms...]: the first
        # addition cannot clamp. This keeps golden.units.accumulate on short (or unclamped) runs.
        step = gu.accumulate(np.concatenate(([acc_state], terms[done:shown])), driver.width)
        acc_state, ovf_state, done = int(step.acc), ovf_state or bool(step.overflow), shown
        assert (acc, ovf) == (acc_state, ovf_state), (
            f"{driver} after {end} cycles (phase {ops}, valid={valid}, clear={clear}): "
            f"expected acc={acc_state} overflow={ovf_state}, got acc={acc} overflow={ovf}")
        if saturated is not None:
            assert acc == saturated and ovf
    assert checks[2][1] and checks[6][1], "overflow must stay set after leaving saturation"
    assert checks[3] == (0, False), "clear must reset acc and overflow"


@pytest.mark.parametrize("unit", DRIVERS)
def test_latency_of_a_single_term(unit):
    """A lone valid input changes acc exactly LATENCY cycles after it is presented."""
    driver = DRIVERS[unit]()
    big, _ = extreme_operands(driver)
    term = int(driver.product(big)[0])
    words = pack_cycles(driver, {k: np.repeat(v, 6) for k, v in big.items()},
                        [0, 1, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0])
    latency = type(driver.dut).LATENCY
    acc = []

    async def testbench(ctx):
        for word in words:
            ctx.set(driver.inputs, int(word))
            await ctx.tick()
            acc.append(ctx.get(driver.dut.acc))

    simulate(driver.dut, testbench)
    # Input 1 is presented before tick 1; it must show after tick 1 + LATENCY - 1 and not earlier.
    assert acc == [0] * latency + [term] * (len(words) - latency)
    assert latency == 2


@pytest.mark.parametrize("cls", [Int4Mac, ShiftMac])
@pytest.mark.parametrize("width, error", [(7, ValueError), (65, ValueError), (0, ValueError),
                                          (24.0, TypeError), ("24", TypeError), (True, TypeError)])
def test_bad_width(cls, width, error):
    with pytest.raises(error, match=rf"width.*{width!r}" if error is TypeError else rf"width.*8\.\.64.*{width}"):
        cls(width=width)


@pytest.mark.parametrize("cls, flag", [(Int4Mac, "signed_a"), (ShiftMac, "signed_b")])
@pytest.mark.parametrize("value", [1, 0, "yes", None])
def test_bad_signedness(cls, flag, value):
    with pytest.raises(TypeError, match=rf"{flag} must be a bool, got {value!r}"):
        cls(**{flag: value})


@pytest.mark.parametrize("cls", [Int4Mac, ShiftMac])
@pytest.mark.parametrize("width", [8, 64])
def test_width_limits_elaborate(cls, width):
    unit = cls(width=width)
    Fragment.get(unit, None)
    assert len(unit.acc) == width
