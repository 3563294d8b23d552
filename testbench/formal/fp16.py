"""Properties of the FP16 MAC baseline: IEEE special cases, reset, and the product's rounding."""

from amaranth import Cat, Module, Mux, Signal
from amaranth.hdl import Assert, Assume, ResetSignal

from rtl.fp16_mac import Fp16Mac

from .harness import CheckHarness, Dut, delayed, no_reset

NAN = 0x7E00        # the canonical NaN of the contract (golden/fp16.py)
B_FRACTION_BITS = 3


def fields(bits):
    """(sign, exponent field, fraction) of a binary16 bit pattern."""
    return bits[15], bits[10:15], bits[:10]


def is_nan(bits):
    _, exp, frac = fields(bits)
    return (exp == 31) & (frac != 0)


def is_inf(bits):
    _, exp, frac = fields(bits)
    return (exp == 31) & (frac == 0)


def is_zero(bits):
    return bits[:15] == 0


class Fp16Harness(CheckHarness):
    """Fp16Mac through its ports; ``check`` is one of the claims below."""

    def __init__(self, check, edit=None):
        super().__init__(check, Dut(Fp16Mac(), "fp16_mac", edit=edit))

    def elaborate(self, platform):
        m = Module()
        self.free_ports(m, self.dut)
        getattr(self, self.check)(m, self.dut.ports)
        return m

    def nan(self, m, p):
        """NaN in gives the canonical NaN LATENCY cycles later; every NaN on ``acc`` is canonical."""
        no_reset(m)
        nan_in = delayed(m, p.valid & (is_nan(p.a) | is_nan(p.b)), Fp16Mac.LATENCY, "nan_in")
        m.d.comb += [Assert(~nan_in | (p.acc == NAN)), Assert(~is_nan(p.acc) | (p.acc == NAN))]

    def inf_minus_inf(self, m, p):
        """A product of +-Inf added to an accumulator holding Inf of the other sign gives NaN and ``invalid``.

        Inf times a non-zero, non-NaN operand is Inf with the XOR of the signs (IEEE 754); the
        product of the inputs of cycle t meets the accumulator as it is in cycle t + LATENCY - 1.
        """
        no_reset(m)
        a_inf, b_inf = is_inf(p.a), is_inf(p.b)
        finite_or_inf = lambda bits: ~is_nan(bits) & ~is_zero(bits)
        inf_product = p.valid & ~p.clear & ((a_inf & finite_or_inf(p.b)) | (b_inf & finite_or_inf(p.a)))
        pending = delayed(m, inf_product, Fp16Mac.LATENCY - 1, "inf_product")
        sign = delayed(m, p.a[15] ^ p.b[15], Fp16Mac.LATENCY - 1, "product_sign")
        meets = delayed(m, pending & is_inf(p.acc) & (p.acc[15] != sign), 1, "inf_minus_inf")
        m.d.comb += Assert(~meets | ((p.acc == NAN) & p.invalid))

    def reset(self, m, p):
        """At power-up and after a reset cycle the sum is +0 and both sticky flags are down.

        (An unreset or uninitialised register is free in the proof, so it is caught at step 0.)
        """
        powered_up = Signal()
        m.d.sync += powered_up.eq(1)
        rst = delayed(m, ResetSignal(), 1, "rst")
        m.d.comb += Assert((powered_up & ~rst) | ((p.acc == 0) & ~p.invalid & ~p.overflow))

    def product_rounding(self, m, p):
        """A new sum of one product of normal operands with a normal result is that product rounded
        to nearest, ties to even (IEEE 754), written out from the significands.

        ``b`` has at most ``B_FRACTION_BITS`` fraction bits: a full 11 x 11-bit multiplier equivalence
        is out of reach of the SAT solver in minutes, while ties, sticky bits and carries into the
        exponent all still occur.
        """
        no_reset(m)
        sign_a, exp_a, frac_a = fields(p.a)
        sign_b, exp_b, frac_b = fields(p.b)
        m.d.comb += Assume(~p.valid | ((exp_a != 0) & (exp_a != 31) & (exp_b != 0) & (exp_b != 31)))
        m.d.comb += Assume(frac_b[:10 - B_FRACTION_BITS] == 0)
        exact = Signal(22)                                  # Cat(frac, 1) * Cat(frac, 1): 1.f * 1.f * 2**20
        m.d.comb += exact.eq(Cat(frac_a, 1) * Cat(frac_b, 1))
        top = exact[21]                                     # the product is in [2, 4)
        mantissa = Mux(top, exact[11:21], exact[10:20])
        guard = Mux(top, exact[10], exact[9])
        sticky = Mux(top, exact[:10] != 0, exact[:9] != 0)
        exponent = Signal(range(-16, 64))
        m.d.comb += exponent.eq(exp_a + exp_b - 15 + top)
        normal = (exponent >= 1) & (exponent <= 30)
        round_up = guard & (sticky | mantissa[0])
        rounded = Signal(15)
        m.d.comb += rounded.eq(Cat(mantissa, exponent[:5]) + round_up)   # a carry moves into the exponent
        checked = delayed(m, p.valid & p.clear & normal, Fp16Mac.LATENCY, "checked")
        expected = delayed(m, Cat(rounded, sign_a ^ sign_b), Fp16Mac.LATENCY, "expected")
        m.d.comb += Assert(~checked | (p.acc == expected))
