"""Stimulus and expected results of the block-scaled units, shared by the amaranth.sim tests and the
cocotb benches: corner classes (zero terms, NaN, Inf, extreme exponents, overflow, underflow to
subnormals, ties in the float32 add) plus seeded random vectors."""

import numpy as np

from golden import mx, mx_gemm

BLOCK = {"mxfp4": mx.MX_BLOCK, "nvfp4": mx.NV_BLOCK}
NAN = {"mxfp4": mx.E8M0_NAN, "nvfp4": mx.E4M3_NAN}   # the scale codes that mean NaN

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


#: Scale codes drawn for random block operands: near 1.0 mostly, both ends of the range (overflow,
#: subnormal and vanishing sums) and NaN.
SCALES = {"mxfp4": (np.array([127, 126, 128, 131, 120, 124]), np.array([0, 1, 10, 60, 200, 250, 254]), 0xFF),
          "nvfp4": (np.array([0x38, 0x30, 0x40, 0x41, 0xB8, 0x2F]), np.array([0x00, 0x01, 0x07, 0x7E, 0xFE, 0x08]), 0x7F)}


def block_operands(rng, fmt, m, k, n, extreme=0.1, nan=0.01, zero_blocks=0.1):
    """Random E2M1 codes a (m, k), b (k, n) with scale codes a_s (m, k / block), b_s (k / block, n),
    all uint8: a fraction ``extreme`` of the scales at the ends of the range, ``nan`` NaN codes and
    ``zero_blocks`` of A's blocks all +-0 codes (for golden.mx_tiling.tiles)."""
    block = mx_gemm.mx.MX_BLOCK if fmt == "mxfp4" else mx_gemm.mx.NV_BLOCK
    usual, extremes, nan_code = SCALES[fmt]

    def scales(shape):
        codes = rng.choice(usual, shape)
        far = rng.random(shape) < extreme
        codes[far] = rng.choice(extremes, int(far.sum()))
        codes[rng.random(shape) < nan] = nan_code
        return codes.astype(np.uint8)

    a = rng.integers(0, 16, (m, k), dtype=np.uint8)
    b = rng.integers(0, 16, (k, n), dtype=np.uint8)
    a_s, b_s = scales((m, k // block)), scales((k // block, n))
    zero = np.repeat(rng.random((m, k // block)) < zero_blocks, block, axis=1)
    a[zero] = rng.choice(np.array([0, 8], np.uint8), int(zero.sum()))
    return a, a_s, b, b_s


def random_tiles(rng, fmt, columns, count, scales, max_blocks=4, p_nan=0.02):
    """``count`` MxRow tiles ``(a, a_scales, b, b_scales)`` of 1..``max_blocks`` blocks: random
    codes (B rows zero with probability 0.2; in 30 % of the tiles one A block of +0/-0 codes), scale
    codes drawn from ``scales`` and, with probability ``p_nan`` each, B's NaN scale code."""
    block = BLOCK[fmt]
    tiles = []
    for _ in range(count):
        nb = int(rng.integers(1, max_blocks + 1))
        a = rng.integers(0, 16, (1, nb * block), dtype=np.uint8)
        b = rng.integers(0, 16, (nb * block, columns), dtype=np.uint8)
        b[rng.random(nb * block) < 0.2] = 0
        a_s = rng.choice(scales, (1, nb)).astype(np.uint8)
        b_s = rng.choice(scales, (nb, columns)).astype(np.uint8)
        b_s[rng.random(b_s.shape) < p_nan] = NAN[fmt]
        if rng.random() < 0.3:
            blk = int(rng.integers(nb))
            a[:, blk * block:(blk + 1) * block] = rng.choice([0, 8], block)   # a zero block (+0 and -0 codes)
        tiles.append((a, a_s, b, b_s))
    return tiles
