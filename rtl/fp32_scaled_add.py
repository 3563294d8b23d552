"""Float32 accumulate of an exact block term: ``sum = RNE(acc + sig * 2**exp)`` (golden.mx_gemm.scaled_add).

The shared unit of the block-scaled PEs: a block sum finishes only once every 16 or 32 beats, so
one of these serves a whole row of PEs (docs/rtl.md). The term is added exactly and the sum rounded
once, to nearest even, with subnormals (an exact zero sum is +0, a sum that rounds to zero keeps its sign); overflow gives +-Inf; a NaN accumulator or the ``nan``
input gives 0x7FC00000; an infinite accumulator stays as it is (the term is always finite).

Datapath. The term's magnitude is normalised to a 24-bit significand with its exponent kept wide
(an MX term may lie far outside float32's range). Both operands are then ``m * 2**(b - 150)`` with
a 24-bit ``m`` and a biased exponent ``b >= 1`` (the accumulator's field, 1 for subnormals). The
operand with the smaller ``b`` is shifted right into three guard bits and a sticky bit, the two
are added or subtracted (a negative difference is negated and flips the sign); the result is normalised with a left shift limited so that ``b``
stays >= 1, rounded, and packed with the rounding increment carrying from the fraction into the
exponent (and on to Inf).
"""

from amaranth import C, Cat, Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .fp16_mac import leading_zeros
from .params import check_int

NAN = 0x7FC00000
INF = 0x7F800000
SIG = 24            # float32 significand bits, hidden bit included
BIAS_LSB = 150      # a float32 with biased exponent field b is m * 2**(b - 150), m the 24-bit significand
GRS = 3             # guard, round and sticky bits below the significand
FIELD = SIG + GRS   # aligned operand width
EXP_BITS = 12       # signed biased exponents inside the unit


def input_layout(sig_width, exp_width):
    """One accumulate: ``acc`` (float32 bits), the term ``sig * 2**exp`` and ``nan`` (a NaN scale)."""
    return data.StructLayout({"acc": 32, "sig": signed(sig_width), "exp": signed(exp_width), "nan": 1})


OutputLayout = data.StructLayout({"sum": 32})


class Fp32ScaledAdd(wiring.Component):
    """Pipelined float32 ``acc + sig * 2**exp``, one per cycle, round to nearest even.

    LATENCY stages of at most one carry chain or one shifter each (term magnitude; its leading
    zeros; its normalisation; exponent order; alignment; add; magnitude; leading zeros; shift
    limit; normalisation; round and pack; overflow and specials). The whole pipeline stalls while a result waits on ``o`` with
    ``o.ready`` low. A sum accepted in cycle t is on ``o`` in cycle t + LATENCY.

    Parameters
    ----------
    sig_width : int
        Width of the signed term significand ``sig`` (2..24): 14 for MXFP4 block sums, 21 for
        NVFP4 block sums times the two E4M3 scale significands.
    exp_width : int
        Width of the signed term exponent ``exp`` (4..10; MXFP4 needs 10: -258..252).

    Members
    -------
    i : In(stream.Signature(input_layout(sig_width, exp_width)))
        ``acc``: float32 bit pattern; the exact term ``sig * 2**exp``; ``nan``: give NaN.
    o : Out(stream.Signature(OutputLayout))
        ``sum``: the float32 bit pattern of the rounded sum.
    """

    LATENCY = 12

    def __init__(self, sig_width=14, exp_width=10):
        self.sig_width = check_int("sig_width", sig_width, 2, SIG)
        self.exp_width = check_int("exp_width", exp_width, 4, 10)
        super().__init__({
            "i": In(stream.Signature(input_layout(sig_width, exp_width))),
            "o": Out(stream.Signature(OutputLayout)),
        })

    def elaborate(self, platform):
        m = Module()
        advance = ~self.o.valid | self.o.ready
        m.d.comb += self.i.ready.eq(advance)
        exp_shape = signed(EXP_BITS)

        registers = []

        def reg(value, shape=None):
            """``value`` registered when the pipeline advances."""
            register = Signal(shape if shape is not None else value.shape(), name=f"r{len(registers)}")
            registers.append(register)
            with m.If(advance):
                m.d.sync += register.eq(value)
            return register

        # 1: classify the accumulator; the term's magnitude.
        p = self.i.payload
        acc_exp, acc_frac = p.acc[23:31], p.acc[:23]
        special = acc_exp.all()
        valid = reg(self.i.valid)
        nan = reg(p.nan | (special & acc_frac.any()))
        inf, inf_neg = reg(special & ~acc_frac.any()), reg(p.acc[31])   # an infinite accumulator is the result
        sa, ma = reg(p.acc[31]), reg(Cat(acc_frac, acc_exp.any()))
        ba = reg(acc_exp | ~acc_exp.any())             # the exponent field, 1 for subnormals and zero
        st = reg(p.sig < 0)
        exp = reg(p.exp + (BIAS_LSB - (SIG - self.sig_width)), exp_shape)   # biased, before normalisation
        magnitude = reg(Mux(p.sig < 0, -p.sig, p.sig), self.sig_width)

        def carry(*signals):
            return [reg(s) for s in signals]

        # 2: leading zeros of the term; the exponents' distance before normalising the term.
        shift = reg(leading_zeros(magnitude), range(self.sig_width + 1))
        ahead, behind = reg(exp - ba, exp_shape), reg(ba - exp, exp_shape)
        ahead_far, behind_far = reg(exp - ba - (FIELD + 1), exp_shape), reg(ba - exp - (FIELD + 1), exp_shape)
        valid, nan, inf, inf_neg, sa, ma, ba, st, exp, magnitude = carry(valid, nan, inf, inf_neg, sa, ma, ba, st, exp, magnitude)

        # 3: the term as a 24-bit significand with a wide biased exponent bt, and bt - ba both
        # ways round, and whether each is > FIELD (stage 4 then needs no carry chain to order
        # the operands and clamp their distance).
        mt = reg(Cat(C(0, SIG - self.sig_width), (magnitude << shift)[:self.sig_width]), SIG)
        bt = reg(exp - shift, exp_shape)
        ahead, behind = reg(ahead - shift, exp_shape), reg(behind + shift, exp_shape)
        ahead_far, behind_far = reg(ahead_far - shift >= 0), reg(behind_far + shift >= 0)
        tzero = reg(magnitude == 0)
        valid, nan, inf, inf_neg, sa, ma, ba, st = carry(valid, nan, inf, inf_neg, sa, ma, ba, st)

        # 4: X is the operand with the larger exponent, Y the other; their distance.
        term_big = ~tzero & (behind < 0)
        far = Mux(term_big, ahead_far, behind_far)
        clamped = reg(Mux(tzero | far, FIELD, Mux(term_big, ahead, behind)[:5]), range(FIELD + 1))
        sx, sy = Mux(term_big, st, sa), Mux(term_big, sa, st)
        sub = reg((sx ^ sy) & ~tzero)
        mx, bx = reg(Mux(term_big, mt, ma)), reg(Mux(term_big, bt, ba), exp_shape)
        my = reg(Mux(term_big, ma, Mux(tzero, 0, mt)), SIG)
        sx = reg(sx)
        valid, nan, inf, inf_neg = carry(valid, nan, inf, inf_neg)

        # 5: align Y to X: three guard bits and a sticky bit for what is shifted out.
        y_ext = Cat(C(0, GRS), my)
        # the bits below ``clamped`` (a mask from a shifted constant: ``clamped > i`` would give
        # Yosys a carry chain per bit)
        below = ~(C((1 << FIELD) - 1, FIELD) << clamped)[:FIELD]
        dropped = (y_ext[:FIELD] & below).any()
        y = reg(Cat((y_ext >> clamped)[0] | dropped, (y_ext >> clamped)[1:]), FIELD)
        valid, nan, inf, inf_neg, sub, mx, bx, sx = carry(valid, nan, inf, inf_neg, sub, mx, bx, sx)

        # 6: add or subtract, one carry chain.
        x_ext = Cat(C(0, GRS), mx)
        y_wide = Cat(y, C(0, 2))                       # ~y_wide + 1 == -y modulo 2**(FIELD + 2)
        total = reg(x_ext + Mux(sub, ~y_wide, y_wide) + sub, signed(FIELD + 2))
        valid, nan, inf, inf_neg, bx, sx = carry(valid, nan, inf, inf_neg, bx, sx)

        # 6b: the magnitude; a negative difference (Y larger: only when X is a subnormal or zero
        # accumulator, or at equal exponents) flips the sign.
        negative = total < 0
        r = reg(Mux(negative, -total, total)[:FIELD + 1], FIELD + 1)
        sx = reg(sx ^ negative)
        valid, nan, inf, inf_neg, bx = carry(valid, nan, inf, inf_neg, bx)

        # 7: leading zeros of the sum; the smallest exponent allowed (b >= 1).
        lz = reg(leading_zeros(r[:FIELD]), range(FIELD + 1))
        bx_minus_1 = reg(bx - 1, exp_shape)
        valid, nan, inf, inf_neg, bx, sx, r = carry(valid, nan, inf, inf_neg, bx, sx, r)

        # 8: the normalising shift: right by one on a carry, else left by lz but not below b = 1.
        limited = bx_minus_1 < lz
        left = reg(Mux(limited, bx_minus_1[:5], lz), range(FIELD + 1))
        b = reg(Mux(r[FIELD], bx + 1, Mux(limited, 1, bx - lz)), exp_shape)
        valid, nan, inf, inf_neg, sx, r = carry(valid, nan, inf, inf_neg, sx, r)

        # 9: normalise.
        field = reg(Mux(r[FIELD], Cat(r[0] | r[1], r[2:]), (r[:FIELD] << left)[:FIELD]), FIELD)
        nonzero = reg(r.any())
        too_big = reg(b > 254)
        valid, nan, inf, inf_neg, sx, b = carry(valid, nan, inf, inf_neg, sx, b)

        # 10: round to nearest even and pack; the hidden bit selects the exponent field (0 if
        # subnormal), and a rounding carry moves into the exponent (one carry chain).
        significand = field[GRS:]
        guard, round_up = Signal(name="round_guard"), Signal(name="round_up")
        m.d.comb += [guard.eq(field[GRS - 1]), round_up.eq(guard & (field[:GRS - 1].any() | significand[0]))]
        packed = reg(Cat(significand[:23], Mux(significand[23], b[:8], 0)) + round_up, 31)
        too_big = reg(significand[23] & too_big)
        valid, nan, inf, inf_neg, sx, nonzero = carry(valid, nan, inf, inf_neg, sx, nonzero)

        # 11: overflow to Inf, and the special results.
        overflow = too_big | packed[23:].all()
        magnitude_bits = Mux(overflow, INF, Mux(nonzero, packed, 0))
        result = Mux(nan, NAN, Mux(inf, Cat(C(INF, 31), inf_neg), Cat(magnitude_bits, sx & nonzero)))
        with m.If(advance):
            m.d.sync += self.o.valid.eq(valid)
            with m.If(valid):
                m.d.sync += self.o.payload.sum.eq(result)
        return m
