"""IEEE binary16 multiply-accumulate PE: the 16-bit baseline the 4-bit units are measured against.

Bit-exact to :mod:`golden.fp16`: the product and the sum are each rounded to nearest, ties to
even, with subnormals, Inf, canonical NaN (0x7E00) and IEEE signed-zero rules.

Datapath. A finite binary16 value is ``sig * 2**(exp_eff - 25)`` with the 11-bit significand
``sig`` (hidden bit = exponent field != 0) and ``exp_eff = max(exponent field, 1)``. Both units
normalise with a leading-zero count limited so the exponent never drops below 1, and pack the
result as ``((E - 1) << 10) + sig``: the hidden bit carries into the exponent field, a subnormal
(hidden bit 0) gets field 0, and a rounding carry moves on into the exponent (and up to Inf)
with one 15-bit increment.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

CANONICAL_NAN = 0x7E00
INF = 0x7C00
EXP_INF_MINUS_1 = 30    # packed exponent field minus one that already means overflow


def leading_zeros(value):
    """Leading-zero count of ``value`` (its width when it is zero), as a balanced tree of 2:1 muxes."""
    width = len(value)
    if width < 1:
        raise ValueError(f"value must be at least 1 bit wide, got width {width}")
    padded_width = max(2, 1 << (width - 1).bit_length())
    pad = padded_width - width
    # Ones below the LSB stop the count at ``width`` for a zero value.
    zero, count = _lzc_tree(Cat(Const((1 << pad) - 1, pad), value))
    return count if pad else Mux(zero, width, count)


def _lzc_tree(bits):
    """Return (all bits zero, leading-zero count) of a power-of-two-wide value."""
    if len(bits) == 2:
        return ~(bits[0] | bits[1]), ~bits[1]
    half = len(bits) // 2
    hi_zero, hi_count = _lzc_tree(bits[half:])
    lo_zero, lo_count = _lzc_tree(bits[:half])
    return hi_zero & lo_zero, Cat(Mux(hi_zero, lo_count, hi_count), hi_zero)


class Operand:
    """Fields and class of a binary16 bit pattern (combinational views of ``bits``)."""

    def __init__(self, bits):
        self.sign = bits[15]
        self.magnitude = bits[:15]
        exp, frac = bits[10:15], bits[:10]
        normal = exp.any()
        self.sig = Cat(frac, normal)
        self.exp_eff = Cat(exp[0] | ~normal, exp[1:])
        self.special = exp.all()
        self.nan = self.special & frac.any()
        self.inf = self.special & ~frac.any()
        self.zero = ~normal & ~frac.any()


def round_and_pack(m, exp_minus_1, sig, guard, sticky):
    """Round-to-nearest-even of ``sig`` (11 bits, hidden bit at the top) at exponent ``exp_minus_1 + 1``.

    Returns ``(magnitude, overflow)``: the 15-bit packed magnitude (Inf on overflow) and whether
    the value rounded to Inf.
    """
    return pack_rounded(m, exp_minus_1, sig, guard & (sticky | sig[0]))


def pack_rounded(m, exp_minus_1, sig, round_up):
    """Pack ``sig`` (11 bits, hidden bit at the top) at exponent ``exp_minus_1 + 1``, plus one ulp
    if ``round_up``; returns ``(magnitude, overflow)`` like :func:`round_and_pack`."""
    rounded = Signal(15)
    m.d.comb += rounded.eq((exp_minus_1 << 10) + sig + round_up)
    overflow = (exp_minus_1 >= EXP_INF_MINUS_1) | rounded[10:].all()
    return Mux(overflow, INF, rounded), overflow


class Fp16MultiplierInterface(wiring.Component):
    """The ports and member docs of the pipelined binary16 multipliers (:class:`Fp16Multiplier`,
    ``Fp16PipeMultiplier``): a subclass sets ``__doc__`` from ``_doc_template`` with its
    ``description`` and the docs of its ``extra`` members, as amaranth.lib.fifo does for its FIFOs.
    """

    _doc_template = """{description}

    Members
    -------
    a, b : In(16)
        Operand bit patterns.
    p : Out(16)
        Rounded product bit pattern (``CANONICAL_NAN`` for any NaN result).
    invalid : Out(1)
        The product is 0 * Inf (not sticky; travels with ``p``).
    overflow : Out(1)
        Finite operands whose product rounded to Inf (not sticky; travels with ``p``).
    {extra}"""

    a: In(16)
    b: In(16)
    p: Out(16)
    invalid: Out(1)
    overflow: Out(1)


class Fp16Multiplier(Fp16MultiplierInterface):
    __doc__ = Fp16MultiplierInterface._doc_template.format(description="""\
Two-stage pipelined binary16 multiplier, round to nearest even.

    Stage 1 multiplies the 11-bit significands and adds the exponents; stage 2 normalises,
    denormalises tiny results and rounds. ``p`` follows ``a``/``b`` by ``LATENCY`` cycles.""", extra="")

    LATENCY = 2

    def elaborate(self, platform):
        m = Module()
        a, b = Operand(self.a), Operand(self.b)

        # Stage 1: value = prod * 2**(exp_sum - 50).
        prod, exp_sum, sign = Signal(22), Signal(6), Signal()
        nan, inf, invalid = Signal(), Signal(), Signal()
        zero_times_inf = (a.zero & b.inf) | (a.inf & b.zero)
        m.d.sync += [
            prod.eq(a.sig * b.sig),
            exp_sum.eq(a.exp_eff + b.exp_eff),
            sign.eq(a.sign ^ b.sign),
            nan.eq(a.nan | b.nan | zero_times_inf),
            inf.eq(a.inf | b.inf),
            invalid.eq(zero_times_inf),
        ]

        # Stage 2: put the leading one at bit 21 (exponent field exp_sum - 14 - shift) unless
        # that field would drop below 1; exp_sum < 15 needs a right shift even for field 1.
        lz = leading_zeros(prod)
        shift_left = exp_sum >= 15
        room = Signal(6)            # how far left we may shift before the field reaches 1 (if shift_left)
        left_amount = Signal(range(23))
        right_amount = Signal(4)
        m.d.comb += [
            room.eq(exp_sum - 15),
            left_amount.eq(Mux(lz < room, lz, room)),
            right_amount.eq(15 - exp_sum),
        ]
        left_norm = (prod << left_amount)[:22]
        right_full = Cat(Const(0, 13), prod) >> right_amount
        norm = Mux(shift_left, left_norm, right_full[13:])
        sticky = norm[:10].any() | (~shift_left & right_full[:13].any())
        exp_minus_1 = Mux(shift_left, room - left_amount, 0)
        magnitude, rounded_to_inf = round_and_pack(m, exp_minus_1, norm[11:], norm[10], sticky)

        m.d.sync += [
            self.p.eq(Mux(nan, CANONICAL_NAN, Cat(Mux(inf, INF, magnitude), sign))),
            self.invalid.eq(invalid),
            self.overflow.eq(~nan & ~inf & rounded_to_inf),
        ]
        return m


class Fp16Adder(wiring.Component):
    """Combinational binary16 adder, round to nearest even (the accumulator's single-cycle loop).

    The larger magnitude ``L`` keeps its significand; the smaller one is aligned right with guard,
    round and sticky bits, added or subtracted, normalised by a leading-zero count and rounded.

    Members
    -------
    x, y : In(16)
        Addend bit patterns.
    s : Out(16)
        Rounded sum bit pattern (``CANONICAL_NAN`` for any NaN result; an exact zero is +0 unless
        both addends are -0).
    invalid : Out(1)
        The sum is Inf - Inf.
    overflow : Out(1)
        Finite addends whose sum rounded to Inf.
    """

    x: In(16)
    y: In(16)
    s: Out(16)
    invalid: Out(1)
    overflow: Out(1)

    def elaborate(self, platform):
        m = Module()
        x, y = Operand(self.x), Operand(self.y)
        swap = y.magnitude > x.magnitude
        big_sign, big_sig, big_exp = (Mux(swap, getattr(y, f), getattr(x, f)) for f in ("sign", "sig", "exp_eff"))
        small_sig, small_exp = (Mux(swap, getattr(x, f), getattr(y, f)) for f in ("sig", "exp_eff"))

        # Align with 3 extra bits (guard, round, sticky). A shift of 15 already moves the whole
        # 14-bit operand into the sticky bit, so the distance saturates there.
        distance = Signal(5)
        amount = Signal(4)
        m.d.comb += [
            distance.eq(big_exp - small_exp),
            amount.eq(Mux(distance > 15, 15, distance)),
        ]
        aligned_full = Cat(Const(0, 15), Const(0, 3), small_sig) >> amount
        aligned = Cat(aligned_full[15] | aligned_full[:15].any(), aligned_full[16:])
        big = Cat(Const(0, 3), big_sig)
        subtract = x.sign ^ y.sign
        raw = Signal(15)    # big +- aligned with one adder: big + ~aligned + 1 (mod 2**15) subtracts
        m.d.comb += raw.eq(big + (Cat(aligned, 0) ^ subtract.replicate(15)) + subtract)

        # Normalise: leading one to bit 14 (field big_exp + 1 - shift), never below field 1.
        lz = leading_zeros(raw)
        shift = Signal(5)
        m.d.comb += shift.eq(Mux(lz < big_exp, lz, big_exp))
        norm = (raw << shift)[:15]
        exp_minus_1 = Signal(5)
        m.d.comb += exp_minus_1.eq(big_exp - shift)
        magnitude, rounded_to_inf = round_and_pack(m, exp_minus_1, norm[4:], norm[3], norm[:3].any())

        inf_minus_inf = x.inf & y.inf & subtract
        nan = x.nan | y.nan | inf_minus_inf
        any_inf = x.inf | y.inf
        exact_zero = ~raw.any()
        with m.If(nan):
            m.d.comb += self.s.eq(CANONICAL_NAN)
        with m.Elif(any_inf):
            m.d.comb += self.s.eq(Cat(Const(INF, 15), big_sign))
        with m.Elif(exact_zero):
            m.d.comb += self.s.eq(Cat(Const(0, 15), x.sign & y.sign))
        with m.Else():
            m.d.comb += self.s.eq(Cat(magnitude, big_sign))
        m.d.comb += [
            self.invalid.eq(inf_minus_inf),
            self.overflow.eq(~x.special & ~y.special & rounded_to_inf),
        ]
        return m


class Fp16MacInterface(wiring.Component):
    """The ports and member docs every binary16 MAC shares (:class:`Fp16Mac`, ``Fp16PipeMac``).

    A subclass sets ``__doc__ = Fp16MacInterface._doc_template.format(...)`` with its own
    ``description``, ``sum`` (the sum a cycle's term joins), ``acc`` (what ``acc`` shows) and
    ``since`` (since when the flags are sticky), as amaranth.lib.fifo does for its FIFOs.
    """

    _doc_template = """{description}

    Members
    -------
    a, b : In(16)
        Operand bit patterns (IEEE binary16).
    valid : In(1)
        Add ``a*b`` to {sum}.
    clear : In(1)
        Start {sum} anew.
    acc : Out(16)
        {acc} bit pattern (NaN is always ``CANONICAL_NAN``; never -0, since a sum starts at +0).
    invalid : Out(1)
        Sticky since {since}: some step computed 0 * Inf or Inf - Inf.
    overflow : Out(1)
        Sticky since {since}: some product or sum of finite operands rounded to Inf.
    """

    a: In(16)
    b: In(16)
    valid: In(1)
    clear: In(1)
    acc: Out(16)
    invalid: Out(1)
    overflow: Out(1)


class Fp16Mac(Fp16MacInterface):
    __doc__ = Fp16MacInterface._doc_template.format(description="""\
Pipelined binary16 MAC: ``acc <- fp16(acc + fp16(a * b))``, one MAC per cycle.

    A two-stage multiplier feeds a single-cycle adder closed around the accumulator register,
    so a new product can be added every cycle; that loop (a whole binary16 add) sets the clock,
    since a deeper adder would need several interleaved sums and change the summation order. Same valid/clear protocol as ``Int4Mac``: a cycle
    with ``valid`` adds ``a*b``; ``clear`` starts a new sum (accumulator +0, flags cleared) and,
    with ``valid`` in the same cycle, that product is its first term (``fp16(+0 + a*b)``).
    The result of an input is visible on ``acc`` ``LATENCY`` cycles later.""",
        sum="the sum", acc="Accumulator", since="the last clear")

    LATENCY = 3
    latency = LATENCY

    def elaborate(self, platform):
        m = Module()
        valid, clear = self.valid, self.clear    # delayed to the product's stage below
        m.submodules.multiplier = multiplier = Fp16Multiplier()
        m.submodules.adder = adder = Fp16Adder()

        for stage in range(Fp16Multiplier.LATENCY):
            valid_next, clear_next = Signal(name=f"valid_{stage + 1}"), Signal(name=f"clear_{stage + 1}")
            m.d.sync += [valid_next.eq(valid), clear_next.eq(clear)]
            valid, clear = valid_next, clear_next

        m.d.comb += [
            multiplier.a.eq(self.a),
            multiplier.b.eq(self.b),
            adder.x.eq(Mux(clear, 0, self.acc)),
            adder.y.eq(multiplier.p),
        ]
        step_invalid = valid & (multiplier.invalid | adder.invalid)
        step_overflow = valid & (multiplier.overflow | adder.overflow)
        with m.If(valid):
            m.d.sync += self.acc.eq(adder.s)
        with m.Elif(clear):
            m.d.sync += self.acc.eq(0)
        m.d.sync += [
            self.invalid.eq(Mux(clear, 0, self.invalid) | step_invalid),
            self.overflow.eq(Mux(clear, 0, self.overflow) | step_overflow),
        ]
        return m
