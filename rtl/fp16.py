"""Classification and binary logarithm of IEEE binary16 bit patterns (subnormals included)."""

from amaranth import C, Cat, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

FRAC_BITS = 10
EXP_ALL_ONES = 0b11111
EXP_BIAS = 15
LOG2_SHAPE = signed(6)  # floor(log2|x|) of a finite non-zero binary16 value lies in -24..15


class Fp16Log2(wiring.Component):
    """Combinational decoder: ``|value| = 2**log2 * (1 + frac/4 + r)`` with ``0 <= r < 1/4``.

    The significand with its hidden bit, ``sig`` (11 bits), gives ``|value| = sig * 2**(max(E, 1) - 25)``;
    a priority encoder finds its leading one, so subnormals are normalised exactly.

    Members
    -------
    value : In(16)
        IEEE binary16 bit pattern.
    sign : Out(1)
        Sign bit (also for zeros and NaN).
    zero, inf, nan : Out(1)
        Class of ``value``; ``log2``, ``frac`` and ``exact`` are meaningful only when all are 0.
    log2 : Out(signed(6))
        floor(log2|value|), -24..15.
    frac : Out(2)
        The two significand bits right below the leading one (0 where the significand is shorter).
    exact : Out(1)
        ``|value|`` is a power of two (no significand bit set below the leading one).
    """

    latency = 0

    value: In(16)
    sign: Out(1)
    zero: Out(1)
    inf: Out(1)
    nan: Out(1)
    log2: Out(LOG2_SHAPE)
    frac: Out(2)
    exact: Out(1)

    def elaborate(self, platform):
        m = Module()
        mantissa = self.value[:FRAC_BITS]
        exponent = self.value[FRAC_BITS:15]
        normal = exponent != 0
        sig = Cat(mantissa, normal)
        leading = Signal(range(len(sig)))
        padded = Cat(C(0, 2), sig)  # padded[j + 2] == sig[j]; the two bits below sig[0] read as 0

        with m.Switch(sig):
            for j in reversed(range(len(sig))):
                with m.Case("0" * (len(sig) - 1 - j) + "1" + "-" * j):
                    m.d.comb += [
                        leading.eq(j),
                        self.frac.eq(padded[j:j + 2]),
                        self.exact.eq(sig[:j] == 0),
                    ]
            with m.Default():  # zero: the outputs are don't-care; a full case keeps lint quiet
                m.d.comb += [leading.eq(0), self.frac.eq(0), self.exact.eq(1)]

        m.d.comb += [
            self.sign.eq(self.value[15]),
            self.zero.eq(sig == 0),
            self.inf.eq((exponent == EXP_ALL_ONES) & (mantissa == 0)),
            self.nan.eq((exponent == EXP_ALL_ONES) & (mantissa != 0)),
            self.log2.eq(Mux(normal, exponent - EXP_BIAS, leading - (EXP_BIAS + FRAC_BITS - 1))),
        ]
        return m


class Fp16StreamUnit(wiring.Component):
    """Base of the stream units that take one binary16 value per cycle (``i.payload.value``),
    decode it with :class:`Fp16Log2` and answer on ``o`` after two pipeline stages.

    A subclass annotates ``i`` and ``o`` with its payload layouts and builds its stages in
    :meth:`stages`.
    """

    LATENCY = 2
    latency = LATENCY

    def elaborate(self, platform):
        m = Module()
        m.submodules.decode = decode = Fp16Log2()
        m.d.comb += decode.value.eq(self.i.payload.value)
        self.stages(m, decode)
        return m

    def stages(self, m, decode):
        """Add the two pipeline stages and the handshake to ``m``; ``decode`` is the Fp16Log2 of ``i``'s value."""
        raise NotImplementedError
