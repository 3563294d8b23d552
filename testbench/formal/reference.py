"""Reference models written from docs/numerics.md, independent of the RTL's formulation."""

from amaranth import Mux, Signal, signed


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
