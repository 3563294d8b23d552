"""Fp32ScaledAdd in amaranth.sim against golden.mx_gemm.scaled_add: corners and seeded random vectors."""

import numpy as np
import pytest

from rtl.fp32_scaled_add import Fp32ScaledAdd
from testbench.mx_vectors import scaled_add_expected, scaled_add_vectors
from testbench.sim import stream_lanes

LANES = 8


def pack(vectors, sig_width, exp_width):
    """Raw input payloads: acc, sig, exp, nan fields LSB first."""
    sig_mask, exp_mask = (1 << sig_width) - 1, (1 << exp_width) - 1
    return (vectors["acc"] | (vectors["sig"] & sig_mask) << 32 | (vectors["exp"] & exp_mask) << (32 + sig_width)
            | vectors["nan"] << (32 + sig_width + exp_width))


def run(vectors, sig_width, exp_width):
    raw = pack(vectors, sig_width, exp_width)
    lanes = np.array_split(raw, LANES)
    outputs = stream_lanes(lambda: Fp32ScaledAdd(sig_width, exp_width), lanes, drain_cycles=Fp32ScaledAdd.LATENCY + 4)
    return np.concatenate([np.array(out, np.int64) for out in outputs])


def assert_matches(vectors, got, want, seed):
    assert len(got) == len(want)
    bad = np.flatnonzero(got != want)
    if bad.size:
        i = bad[0]
        raise AssertionError(
            f"seed {seed}: vector {i}: acc=0x{int(vectors['acc'][i]):08x} sig={int(vectors['sig'][i])} "
            f"exp={int(vectors['exp'][i])} nan={int(vectors['nan'][i])}: got 0x{int(got[i]):08x}, "
            f"want 0x{int(want[i]):08x} ({bad.size} mismatches)")


@pytest.mark.parametrize("sig_width, exp_width", [(14, 10), (21, 6)])
def test_random_and_corners(sig_width, exp_width):
    seed = 1000 + sig_width
    vectors = scaled_add_vectors(np.random.default_rng(seed), 4000, sig_width, exp_width)
    assert_matches(vectors, run(vectors, sig_width, exp_width), scaled_add_expected(vectors), seed)


def test_hand_worked_ties_and_edges():
    """2**24 + 1 ties to 2**24; 2**24 + 2 + 1 ties to 2**24 + 4; 32 * 2**-154 is the smallest
    subnormal and 32 * 2**-155 ties to +0; the largest float plus half an ulp overflows."""
    acc = np.array([0x4B800000, 0x4B800001, 0, 0, 0x7F7FFFFF, 0x7F7FFFFF, 0xBF800000], np.int64)
    sig = np.array([4, 4, 32 * 4, 32 * 4, 1, 1, 4])
    exp = np.array([-2, -2, -156, -157, 103, 102, -2])
    vectors = {"acc": acc, "sig": sig, "exp": exp, "nan": np.zeros(7, np.int64)}
    want = [0x4B800000, 0x4B800002, 0x00000001, 0x00000000, 0x7F800000, 0x7F7FFFFF, 0x00000000]
    got = run(vectors, 14, 10)
    assert list(got) == want and list(scaled_add_expected(vectors)) == want


def test_parameters_are_checked():
    with pytest.raises(ValueError, match="sig_width must lie in 2..24, got 25"):
        Fp32ScaledAdd(sig_width=25)
    with pytest.raises(TypeError, match="exp_width must be an int, got 8.0"):
        Fp32ScaledAdd(exp_width=8.0)
