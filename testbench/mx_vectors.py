"""Stimulus and expected results of the block-scaled units, shared by the amaranth.sim tests and the
cocotb benches: corner classes (zero terms, NaN, Inf, extreme exponents, overflow, underflow to
subnormals, ties in the float32 add) plus seeded random vectors."""

import numpy as np

from golden import mx_gemm

F32_SPECIALS = np.array([0, 0x80000000, 1, 0x80000001, 0x007FFFFF, 0x00800000, 0x80800000, 0x3F800000,
                         0xBF800000, 0x4B800000, 0x4B800001, 0x7F7FFFFF, 0xFF7FFFFF, 0x7F800000, 0xFF800000,
                         0x7FC00000, 0x7F800001, 0xFFFFFFFF, 0x33800000, 0x0C000000], np.uint32)


def scaled_add_vectors(rng, count, sig_width, exp_width):
    """``count`` accumulates (dict of int64 arrays acc, sig, exp, nan) mixing specials and random.

    Random accumulators are either arbitrary bit patterns or values near the term's magnitude (so
    that cancellation, ties and carries happen); exponents are either anywhere in the signed range
    or close to the accumulator's.
    """
    sig_lo, sig_hi = -(1 << (sig_width - 1)), (1 << (sig_width - 1)) - 1
    exp_lo, exp_hi = -(1 << (exp_width - 1)), (1 << (exp_width - 1)) - 1
    sig = rng.integers(sig_lo, sig_hi + 1, count)
    small = rng.random(count) < 0.2
    sig[small] = rng.integers(-4, 5, small.sum())
    sig[rng.random(count) < 0.03] = sig_lo
    sig[rng.random(count) < 0.03] = sig_hi
    exp = rng.integers(exp_lo, exp_hi + 1, count)
    extreme = rng.random(count) < 0.1
    exp[extreme] = rng.choice(np.clip([exp_lo, exp_hi, -149 - sig_width, -126, 104, 0], exp_lo, exp_hi), extreme.sum())
    kind = rng.random(count)
    acc = rng.integers(0, 1 << 32, count, dtype=np.uint64).astype(np.int64)
    # accumulators near the term: its value times +-(1 + tiny) or a power of two that makes a tie
    near = kind < 0.5
    term = np.ldexp(sig[near].astype(np.float64), np.clip(exp[near], -300, 300))
    with np.errstate(over="ignore", under="ignore"):
        jitter = 2.0 ** rng.integers(-30, 30, near.sum()) * rng.choice([-1, 1], near.sum())
        near_acc = (term * jitter + rng.choice([0, 1], near.sum()) * term).astype(np.float32)
    acc[near] = near_acc.view(np.uint32).astype(np.int64)
    specials = kind > 0.9
    acc[specials] = rng.choice(F32_SPECIALS, specials.sum())
    nan = (rng.random(count) < 0.02).astype(np.int64)
    return {"acc": acc, "sig": sig, "exp": exp, "nan": nan}


def scaled_add_expected(vectors):
    """float32 bits of RNE(acc + sig * 2**exp), NaN as the hardware's NaN (golden.mx_gemm)."""
    acc = vectors["acc"].astype(np.uint32).view(np.float32)
    total = mx_gemm.scaled_add(acc, vectors["sig"], vectors["exp"])
    total = np.where(np.isinf(acc), acc, total)
    total = np.where(vectors["nan"].astype(bool), np.float32(np.nan), total)
    return mx_gemm.float32_bits(total).astype(np.int64)
