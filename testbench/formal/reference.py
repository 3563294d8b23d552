"""Reference models written from docs/numerics.md, independent of the RTL's formulation."""

from amaranth import Cat, Const, Mux, Signal, signed


def int4_product(a, b, signed_a, signed_b=True):
    """Section 7: the exact integer product of two 4-bit operands."""
    return (a.as_signed() if signed_a else a.as_unsigned()) * (b.as_signed() if signed_b else b.as_unsigned())


def shift_product(m, code, phase, b, name):
    """Section 7: ``b`` shifted left by 2e - 1 - p bits, negated for a set sign bit, 0 for e = 0.

    ``code`` is the 4-bit FP4 code (bit 3 sign, bits 2..0 e), ``b`` an already signed or
    unsigned operand value. Returns a signed(19) signal.
    """
    e, sign = code[:3], code[3]
    amount = Signal(range(14), name=f"{name}_amount")
    m.d.comb += amount.eq(2 * e - 1 - phase)
    magnitude = Signal(signed(19), name=f"{name}_magnitude")
    m.d.comb += magnitude.eq(b << amount)
    product = Signal(signed(19), name=f"{name}_product")
    m.d.comb += product.eq(Mux(e == 0, 0, Mux(sign, -magnitude, magnitude)))
    return product


def saturating_sum(m, width, term, valid, clear, name):
    """Section 7: a W-bit accumulator that clamps every sum, with a sticky ``overflow``.

    Returns registered ``(acc, overflow)``: after a cycle with ``clear`` the old sum and flag are
    gone; a ``valid`` term is added to the (possibly cleared) sum and the result is clamped to
    the W-bit limits, ``overflow`` recording any clamp since the last clear.
    """
    lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
    acc = Signal(signed(width), name=f"{name}_acc")
    overflow = Signal(name=f"{name}_overflow")
    start = Mux(clear, 0, acc)
    exact = Signal(signed(max(width, len(term)) + 2), name=f"{name}_exact")
    m.d.comb += exact.eq(start + term)
    clamped = (exact > hi) | (exact < lo)
    with m.If(valid):
        m.d.sync += [
            acc.eq(Mux(exact > hi, hi, Mux(exact < lo, lo, exact))),
            overflow.eq((overflow & ~clear) | clamped),
        ]
    with m.Else():
        m.d.sync += [acc.eq(start), overflow.eq(overflow & ~clear)]
    return acc, overflow


def fp16_parts(bits):
    """Sign, X = |x| * 2**24 (an exact integer < 2**41 for finite x), and the classes of a binary16 pattern."""
    sign, exp, frac = bits[15], bits[10:15], bits[:10]
    significand = Cat(frac, exp != 0)
    shift = Mux(exp == 0, 0, exp - 1)[:5]
    scaled = (significand << shift)[:41]     # sig * 2**(max(exp, 1) - 1)
    special = exp == 31
    return sign, scaled, special & (frac == 0), special & (frac != 0), bits[:15] == 0


def at_least(scaled, factor, exponent, name, m):
    """``|x| >= factor * 2**exponent`` for X = |x| * 2**24, exactly: X * 2**48 >= factor * 2**(exponent + 72).

    ``exponent`` is a signed value >= -72 here (scale exponents >= -32).
    """
    amount = Signal(range(128), name=f"{name}_amount")
    m.d.comb += amount.eq(exponent + 72)
    bound = Signal(136, name=f"{name}_bound")
    m.d.comb += bound.eq(Const(factor, 3) << amount)
    return Cat(Const(0, 48), scaled) >= bound


def radix4_quantize(m, bits, s, phase, name):
    """Section 4: the FP4 code of binary16 ``bits`` for scale ``s`` and TPR ``phase``, with its flags.

    Levels are 2**(s + 2(e - 7) - p). The exponent field is the number of thresholds |x| reaches:
    half the smallest level for e >= 1, then the midpoints 2.5 * level(e - 1) for e = 2..7
    (nearest level in linear value, ties away from zero); ``overflow`` when |x| reaches 2.5 * top
    or is Inf; NaN gives code 0 with ``invalid``. Returns (code, overflow, invalid).
    """
    sign, scaled, inf, nan, _ = fp16_parts(bits)
    reached = [at_least(scaled, 1, s - 13 - phase, f"{name}_t1", m)]
    for e in range(2, 8):
        reached.append(at_least(scaled, 5, s + 2 * e - 17 - phase, f"{name}_t{e}", m))
    above_top = at_least(scaled, 5, s - 1 - phase, f"{name}_top", m)
    count = Signal(3, name=f"{name}_e")
    m.d.comb += count.eq(Mux(inf, 7, sum(reached)))
    e = Mux(nan, 0, count)
    code = Cat(e, sign & (e != 0))
    return code, ~nan & (inf | above_top), nan


#: Bit patterns of 2**k as binary16, k = -24..15 (subnormal below 2**-14).
POWERS_OF_TWO = {k: (1 << (k + 24)) if k < -14 else (k + 15) << 10 for k in range(-24, 16)}


def grad_scale_exponent(bits):
    """Section 5 for one value: the smallest s with 2**s >= |x| (finite, non-zero x), as signed(6).

    Counted from the contract: s = -24 + the number of k in -24..15 with |x| > 2**k (the
    magnitudes of positive binary16 values order like their bit patterns).
    """
    magnitude = bits[:15]
    return -24 + sum((magnitude > pattern).as_unsigned() for pattern in POWERS_OF_TWO.values())
