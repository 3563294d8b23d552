"""Deeply pipelined binary16 MAC PE with interleaved running sums: the FP16 baseline at full clock.

Bit-exact to :mod:`golden.fp16` like :class:`rtl.fp16_mac.Fp16Mac` (the product and then the sum
are each rounded to nearest, ties to even; subnormals, Inf, canonical NaN, IEEE signed zeros),
but no arithmetic closes on itself within one cycle. The multiplier is ``Fp16PipeMultiplier``
(``MUL_STAGES`` register stages) and the adder is split into ``SUMS`` stages that form a ring:
what leaves the last adder stage is the ``x`` operand of the next product entering the first.
So the ring holds ``SUMS`` independent running sums, and the product of input cycle ``t`` is
added to sum ``t mod SUMS`` (cycles counted from any origin: sums are told apart only by the
cycle an input arrives in). Each sum still adds its own terms one after the other, in the order
they arrive, so it is exactly :func:`golden.fp16.mac_sequence` of its sub-stream
(:func:`golden.fp16.interleaved_mac_sequence`). Floating-point dot-product engines interleave
their accumulations the same way.

The stage boundaries are placed so that no register-to-register path holds more than about
one carry chain plus a few LUT levels, for a clock near 100 MHz on ECP5 without DSPs.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .fp16_mac import CANONICAL_NAN, INF, Fp16MacInterface, Fp16MultiplierInterface, Operand, leading_zeros, pack_rounded


def _register(m, name, value):
    """A register that takes ``value`` at every clock edge (reset to 0, which every stage reads
    as "no term, +0")."""
    value = Value.cast(value)
    reg = Signal(value.shape(), name=name)
    m.d.sync += reg.eq(value)
    return reg


class Fp16PipeMultiplier(Fp16MultiplierInterface):
    __doc__ = Fp16MultiplierInterface._doc_template.format(description="""\
Five-stage pipelined binary16 multiplier, round to nearest even; idle cycles give +0.

    Stage 1 forms two partial products of the 11-bit significands, stage 2 adds them, stage 3
    counts leading zeros, stage 4 normalises (or denormalises a tiny product) and stage 5 rounds
    and packs. The outputs follow the inputs by ``LATENCY`` cycles.""", extra="""valid : In(1)
        The operands are a term; otherwise ``p`` is +0 and the flags are low.
    """)

    LATENCY = 5
    LOW_BITS = 6    # the significand of ``b`` is split into bits [0, 6) and [6, 11)

    valid: In(1)

    def elaborate(self, platform):
        m = Module()
        a, b = Operand(self.a), Operand(self.b)
        low = self.LOW_BITS

        # Stage 1: value = (low_product + high_product << 6) * 2**(exp_sum - 50).
        zero_times_inf = (a.zero & b.inf) | (a.inf & b.zero)
        low_product = _register(m, "low_product", a.sig * b.sig[:low])
        high_product = _register(m, "high_product", a.sig * b.sig[low:])
        exp_sum = _register(m, "exp_sum", a.exp_eff + b.exp_eff)
        flags = {
            "sign": a.sign ^ b.sign,
            "nan": a.nan | b.nan | zero_times_inf,
            "inf": a.inf | b.inf,
            "invalid": zero_times_inf,
            "valid": self.valid,
        }
        flags = {name: _register(m, f"{name}_1", value) for name, value in flags.items()}

        # Stage 2: the 22-bit significand product.
        prod = _register(m, "prod", (low_product + (high_product << low))[:22])
        exp_sum_2 = _register(m, "exp_sum_2", exp_sum)
        flags = {name: _register(m, f"{name}_2", value) for name, value in flags.items()}

        # Stage 3: leading one to bit 21 (exponent field exp_sum - 14 - shift) unless that field
        # would drop below 1; exp_sum < 15 needs a right shift even for field 1.
        lz = _register(m, "prod_lz", leading_zeros(prod))
        prod_3 = _register(m, "prod_3", prod)
        shift_left = _register(m, "shift_left", exp_sum_2 >= 15)
        room = _register(m, "room", (exp_sum_2 - 15)[:6])   # how far left before the field reaches 1
        right_amount = _register(m, "right_amount", (15 - exp_sum_2)[:4])
        flags = {name: _register(m, f"{name}_3", value) for name, value in flags.items()}

        # Stage 4: normalise or denormalise.
        left_amount = Signal(range(23))
        m.d.comb += left_amount.eq(Mux(lz < room, lz, room))
        left_norm = (prod_3 << left_amount)[:22]
        right_full = Cat(Const(0, 13), prod_3) >> right_amount
        norm = _register(m, "prod_norm", Mux(shift_left, left_norm, right_full[13:]))
        sticky = _register(m, "prod_sticky", ~shift_left & right_full[:13].any())
        exp_minus_1 = _register(m, "prod_exp_minus_1", Mux(shift_left, room - left_amount, 0)[:6])
        flags = {name: _register(m, f"{name}_4", value) for name, value in flags.items()}

        # Stage 5: round and pack; an idle cycle leaves +0 and no flags.
        product_round_up = Signal()
        m.d.comb += product_round_up.eq(norm[10] & (sticky | norm[:10].any() | norm[11]))
        magnitude, rounded_to_inf = pack_rounded(m, exp_minus_1, norm[11:], product_round_up)
        packed = Mux(flags["nan"], CANONICAL_NAN, Cat(Mux(flags["inf"], INF, magnitude), flags["sign"]))
        m.d.sync += [
            self.p.eq(Mux(flags["valid"], packed, 0)),
            self.invalid.eq(flags["valid"] & flags["invalid"]),
            self.overflow.eq(flags["valid"] & ~flags["nan"] & ~flags["inf"] & rounded_to_inf),
        ]
        return m


class Fp16PipeMac(Fp16MacInterface):
    __doc__ = Fp16MacInterface._doc_template.format(description="""\
Pipelined binary16 MAC with ``SUMS`` interleaved sums: ``acc_k <- fp16(acc_k + fp16(a * b))``.

    One term per cycle; the term of input cycle ``t`` belongs to sum ``t mod SUMS``. A cycle with
    ``valid`` adds ``a*b`` to its sum; ``clear`` starts that sum anew (+0, flags cleared) and,
    with ``valid`` in the same cycle, that product is its first term (``fp16(+0 + a*b)``). A cycle
    without ``valid`` leaves its sum as it is (the ring adds +0, which changes no value a sum can
    hold: a sum is never -0). ``rst`` empties the pipeline (the inputs of its own cycle and of the
    ``LATENCY - 1`` before it are lost) and sets every sum to +0.

    The outputs show, ``LATENCY`` cycles after input cycle ``t``, the sum that input belongs to
    together with its sticky flags, as they are after that input: the ring's last stage, so every
    sum comes past once every ``SUMS`` cycles.""",
        sum="this cycle's sum", acc="Sum", since="that sum's last clear")

    MUL_STAGES = Fp16PipeMultiplier.LATENCY
    SUMS = 6                       # adder stages in the ring = independent running sums
    LATENCY = MUL_STAGES + SUMS
    latency = LATENCY

    def elaborate(self, platform):
        m = Module()
        m.submodules.multiplier = multiplier = Fp16PipeMultiplier()
        m.d.comb += [multiplier.a.eq(self.a), multiplier.b.eq(self.b), multiplier.valid.eq(self.valid)]
        clear = self.clear
        for stage in range(self.MUL_STAGES):
            clear = _register(m, f"clear_{stage + 1}", clear)

        # Ring stage 1: the sum leaving the ring (or +0 on clear) meets the product; order the
        # addends by magnitude and take the exponent distance, saturated at 15 (a shift of 15
        # already moves the whole 14-bit aligned operand into the sticky bit).
        x, y = Operand(Mux(clear, 0, self.acc)), Operand(multiplier.p)
        swap = y.magnitude > x.magnitude
        big_sign, big_sig, big_exp = (Mux(swap, getattr(y, f), getattr(x, f)) for f in ("sign", "sig", "exp_eff"))
        small_sig = Mux(swap, x.sig, y.sig)
        distance = Mux(swap, y.exp_eff - x.exp_eff, x.exp_eff - y.exp_eff)[:5]
        inf_minus_inf = x.inf & y.inf & (x.sign ^ y.sign)
        carried = {
            "sign": big_sign,
            "exp": big_exp,
            "subtract": x.sign ^ y.sign,
            "nan": x.nan | y.nan | inf_minus_inf,
            "inf": x.inf | y.inf,
            "zero_sign": x.sign & y.sign,             # sign of an exact zero sum
            "finite": ~x.special & ~y.special,
            "invalid": Mux(clear, 0, self.invalid) | multiplier.invalid | inf_minus_inf,
            "overflow": Mux(clear, 0, self.overflow) | multiplier.overflow,
        }
        carried = {name: _register(m, f"sum_{name}_1", value) for name, value in carried.items()}
        big_sig = _register(m, "big_sig", big_sig)
        small_sig = _register(m, "small_sig", small_sig)
        amount = _register(m, "align_amount", Mux(distance > 15, 15, distance)[:4])

        # Ring stage 2: align the smaller significand with guard, round and sticky bits.
        aligned_full = Cat(Const(0, 15), Const(0, 3), small_sig) >> amount
        aligned = _register(m, "aligned", Cat(aligned_full[15] | aligned_full[:15].any(), aligned_full[16:]))
        big_sig = _register(m, "big_sig_2", big_sig)
        carried = {name: _register(m, f"sum_{name}_2", value) for name, value in carried.items()}

        # Ring stage 3: add or subtract with one adder: big + ~aligned + 1 (mod 2**15) subtracts.
        subtract = carried["subtract"]
        raw = _register(m, "raw_sum", (Cat(Const(0, 3), big_sig) + (Cat(aligned, 0) ^ subtract.replicate(15))
                                       + subtract)[:15])
        carried = {name: _register(m, f"sum_{name}_3", value) for name, value in carried.items()}

        # Ring stage 4: normalisation distance, leading one to bit 14 (field big_exp + 1 - shift),
        # never below field 1.
        lz = leading_zeros(raw)
        distance = Signal(5)
        m.d.comb += distance.eq(Mux(lz < carried["exp"], lz, carried["exp"]))
        raw_4 = _register(m, "raw_sum_4", raw)
        shift = _register(m, "norm_shift", distance)
        exp_minus_1 = _register(m, "sum_exp_minus_1", (carried["exp"] - distance)[:5])
        exact_zero = _register(m, "exact_zero", ~raw.any())
        carried = {name: _register(m, f"sum_{name}_4", value) for name, value in carried.items()}

        # Ring stage 5: normalise and decide the rounding.
        norm = (raw_4 << shift)[:15]
        sig = _register(m, "sum_sig", norm[4:])
        sum_round_up = _register(m, "sum_round_up", norm[3] & (norm[:3].any() | norm[4]))
        exp_minus_1 = _register(m, "sum_exp_minus_1_5", exp_minus_1)
        exact_zero = _register(m, "exact_zero_5", exact_zero)
        carried = {name: _register(m, f"sum_{name}_5", value) for name, value in carried.items()}

        # Ring stage 6: round and pack; this register is the ring's exit and the output.
        magnitude, rounded_to_inf = pack_rounded(m, exp_minus_1, sig, sum_round_up)
        with m.If(carried["nan"]):
            m.d.sync += self.acc.eq(CANONICAL_NAN)
        with m.Elif(carried["inf"]):
            m.d.sync += self.acc.eq(Cat(Const(INF, 15), carried["sign"]))
        with m.Elif(exact_zero):
            m.d.sync += self.acc.eq(Cat(Const(0, 15), carried["zero_sign"]))
        with m.Else():
            m.d.sync += self.acc.eq(Cat(magnitude, carried["sign"]))
        m.d.sync += [
            self.invalid.eq(carried["invalid"]),
            self.overflow.eq(carried["overflow"] | (carried["finite"] & rounded_to_inf)),
        ]
        return m
