"""cocotb bench of Fp32ScaledAdd (rtl/fp32_scaled_add.py) against golden.mx_gemm.scaled_add.

Each accumulate is one input transfer (acc, sig, exp, nan packed LSB first) and one output transfer
(the float32 bits of the sum), through :class:`testbench.stream_bench.StreamBench`.
"""

import numpy as np

from .checks import bench_test
from .mx_vectors import F32_SPECIALS, scaled_add_expected, scaled_add_vectors
from .stream_bench import StreamBench

RANDOM = {"quick": 6_000, "full": 20_000, "long": 200_000}
STALLS = [(0.6, 0.5), (1.0, 0.3)]   # (valid_rate, ready_rate) of random_stalls


def widths(ctx):
    return ctx.params.get("sig_width", 14), ctx.params.get("exp_width", 10)


def pack(vectors, sig_width, exp_width):
    """Input payloads: acc in bits 31..0, then sig, exp (two's complement) and nan."""
    return (vectors["acc"] | (vectors["sig"] & ((1 << sig_width) - 1)) << 32
            | (vectors["exp"] & ((1 << exp_width) - 1)) << (32 + sig_width)
            | vectors["nan"] << (32 + sig_width + exp_width))


async def check(bench, vectors, valid_rate=1.0, ready_rate=1.0):
    sig_width, exp_width = widths(bench.ctx)
    received = await bench.transfer(pack(vectors, sig_width, exp_width), len(vectors["acc"]), valid_rate, ready_rate)
    bench.ctx.compare({"sum": scaled_add_expected(vectors)}, {"sum": received}, lambda index: _describe(vectors, index))


def _describe(vectors, index):
    i = index[0]
    return (f"acc=0x{int(vectors['acc'][i]):08x} sig={int(vectors['sig'][i])} exp={int(vectors['exp'][i])} "
            f"nan={int(vectors['nan'][i])}")


def corner_vectors(sig_width, exp_width):
    """Every special accumulator against terms of every size class: zero, +-1, the largest
    significands, at the smallest, largest and middle exponents and near the float32 edges;
    plus hand-worked ties (2**24 + 1 -> 2**24, (2**24 + 2) + 1 -> 2**24 + 4), the smallest
    subnormal and the tie below it, the overflow tie at the largest float, and NaN scales."""
    top = (1 << (sig_width - 1)) - 1
    sigs = np.array([0, 1, -1, 4, -4, 3, top, -top - 1])
    exp_lo, exp_hi = -(1 << (exp_width - 1)), (1 << (exp_width - 1)) - 1
    exps = np.unique(np.clip([exp_lo, exp_hi, 0, -2, -126, -149, -150 - sig_width, 103, 104, 127 - sig_width],
                             exp_lo, exp_hi))
    acc, sig, exp = (a.ravel() for a in np.meshgrid(F32_SPECIALS.astype(np.int64), sigs, exps, indexing="ij"))
    hand = {"acc": [0x4B800000, 0x4B800001, 0, 0, 0x7F7FFFFF, 0x7F7FFFFF, 0x3F800000],
            "sig": [4, 4, 128, 128, 1, 1, 1], "exp": [-2, -2, -156, -157, 103, 102, -2]}
    keep = [i for i, e in enumerate(hand["exp"]) if exp_lo <= e <= exp_hi]
    acc = np.concatenate([acc, np.array(hand["acc"])[keep]])
    sig = np.concatenate([sig, np.array(hand["sig"])[keep]])
    exp = np.concatenate([exp, np.array(hand["exp"])[keep]])
    nan = np.zeros(acc.size, np.int64)
    nan[-1] = 1                                                   # a NaN scale with a finite acc
    return {"acc": acc.astype(np.int64), "sig": sig.astype(np.int64), "exp": exp.astype(np.int64), "nan": nan}


@bench_test(StreamBench)
async def corners(bench):
    """Special accumulators x term classes x edge exponents, and the hand-worked ties, back to back."""
    await check(bench, corner_vectors(*widths(bench.ctx)))


@bench_test(StreamBench, (("valid_rate", "ready_rate"), STALLS))
async def random_stalls(bench, valid_rate, ready_rate):
    """Seeded random accumulates (near-cancelling, tie-making and arbitrary accumulators) with
    input gaps and output back-pressure (a stalled result holds the whole pipeline)."""
    ctx = bench.ctx
    await check(bench, scaled_add_vectors(ctx.rng, RANDOM[ctx.level] // len(STALLS), *widths(ctx)), valid_rate, ready_rate)
