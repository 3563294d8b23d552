"""Fp16PipeMac in amaranth.sim, bit-exact against golden.fp16.interleaved_mac_sequence.

The cocotb benches (testbench/bench_fp16_pipe_mac.py) run the long random regressions on Icarus
and Verilator; these fast checks pin the cycle protocol: the term of input cycle t joins sum
t mod SUMS and its result shows LATENCY cycles later.
"""

import numpy as np

from golden import fp16
from rtl.fp16_pipe_mac import Fp16PipeMac
from testbench.sim import port_lanes

CORNERS = fp16.CORNER_PATTERNS
ONE, TWO, THREE, INF, NAN = 0x3C00, 0x4000, 0x4200, 0x7C00, 0x7E00
LATENCY, SUMS = Fp16PipeMac.LATENCY, Fp16PipeMac.SUMS
OUTPUTS = ("acc", "invalid", "overflow")


def simulate(a, b, valid, clear):
    """Outputs (lanes, cycles + LATENCY, 3) = (acc, invalid, overflow) seen in each cycle from the first."""
    trace = port_lanes(Fp16PipeMac, {"a": a, "b": b, "valid": valid, "clear": clear}, OUTPUTS, a.shape[1] + LATENCY)
    return np.stack([trace[name] for name in OUTPUTS], axis=-1)


def check_against_golden(a, b, valid, clear, seed=None):
    """Simulate lanes (arrays (lanes, cycles)); every output cycle must equal the golden model.

    Returns the expected states after each input, shape (lanes, cycles, 3).
    """
    a, b = np.asarray(a, np.uint16), np.asarray(b, np.uint16)
    valid, clear = np.asarray(valid, bool), np.asarray(clear, bool)
    got = simulate(a, b, valid, clear)
    trace = fp16.interleaved_mac_sequence(a, b, valid, clear, SUMS)
    want = np.stack([trace.acc, trace.invalid, trace.overflow], axis=-1).astype(np.int64)
    assert not got[:, :LATENCY].any(), f"outputs before the first result are not +0: {got[:, :LATENCY].tolist()}"
    bad = np.argwhere((got[:, LATENCY:] != want).any(axis=-1))
    if bad.size:
        lane, t = bad[np.argmin(bad[:, 1])]
        w, g = want[lane, t], got[lane, LATENCY + t]
        raise AssertionError(
            f"{len(bad)} of {a.size} vectors differ (seed={seed}); first at lane {lane}, input cycle {t} "
            f"(sum {t % SUMS}): a=0x{a[lane, t]:04x} b=0x{b[lane, t]:04x} valid={int(valid[lane, t])} "
            f"clear={int(clear[lane, t])}; expected acc=0x{w[0]:04x} invalid={w[1]} overflow={w[2]}, "
            f"got acc=0x{g[0]:04x} invalid={g[1]} overflow={g[2]}")
    return want


def test_hand_worked_interleaving():
    # Two rounds over the six sums: sum k starts (clear) with 2**k * 1, then adds 2 * 1, except
    # sum 0, whose second term is Inf * 0 (NaN, invalid), and sum 1, 65504 * 2 (Inf, overflow).
    assert SUMS == 6
    first = [ONE + (k << 10) for k in range(SUMS)]      # 1, 2, 4, 8, 16, 32
    a = np.array([first + [INF, 0x7BFF] + [TWO] * (SUMS - 2)])
    b = np.array([[ONE] * SUMS + [0, TWO] + [ONE] * (SUMS - 2)])
    clear = np.array([[1] * SUMS + [0] * SUMS])
    got = simulate(a, b, np.ones_like(clear), clear)[0, LATENCY:]
    firsts = [ONE, TWO, 0x4400, 0x4800, 0x4C00, 0x5000]
    seconds = [NAN, INF, 0x4600, 0x4900, 0x4C80, 0x5040]      # NaN, Inf, 6, 10, 18, 34
    assert got[:, 0].tolist() == firsts + seconds
    assert got[:, 1].tolist() == [0] * SUMS + [1, 0, 0, 0, 0, 0]
    assert got[:, 2].tolist() == [0] * SUMS + [0, 1, 0, 0, 0, 0]


def test_corner_products():
    """All 64 x 64 corner pairs, each the first term of a new sum: +0 + a*b."""
    a, b = (v.ravel() for v in np.meshgrid(CORNERS, CORNERS))
    ones = np.ones(a.size, bool)
    want = check_against_golden(*(x.reshape(8, -1) for x in (a, b, ones, ones)))
    assert (want[..., 1] == 1).any() and (want[..., 2] == 1).any()


def test_corner_sums():
    """All 64 x 64 corner pairs as two-term sums: clear with x * 1, then y * 1 SUMS cycles later."""
    x, y = (v.ravel() for v in np.meshgrid(CORNERS, CORNERS))
    pad = -x.size % SUMS
    x, y = np.pad(x, (0, pad)), np.pad(y, (0, pad))
    blocks = x.size // SUMS
    a = np.stack([x.reshape(blocks, SUMS), y.reshape(blocks, SUMS)], axis=1).ravel()
    clear = np.tile(np.repeat([True, False], SUMS), blocks)
    want = check_against_golden(*(v.reshape(1, -1) for v in (a, np.full(a.size, ONE), np.ones(a.size, bool), clear)))
    sums = want[0].reshape(blocks, 2, SUMS, 3)[:, 1]
    assert (sums[..., 1] == 1).any() and (sums[..., 2] == 1).any()


def test_random_sequences(rng, seed):
    shape = (8, 600)
    patterns = rng.integers(0, 1 << 16, shape)
    near_one = ((rng.integers(0, 2, shape) << 15) | (rng.integers(9, 22, shape) << 10)
                | (rng.integers(0, 1024, shape) & ~((1 << rng.integers(0, 11, shape)) - 1)))
    a = np.where(rng.random(shape) < 0.2, patterns, near_one)
    b = np.where(rng.random(shape) < 0.05, rng.choice(CORNERS, shape), near_one[:, ::-1])
    check_against_golden(a, b, rng.random(shape) < 0.85, rng.random(shape) < 0.05, seed)
