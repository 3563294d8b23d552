"""Streaming GradScale reducer: s = ceil(log2 max|g|) of one FP16 tensor (golden.fp4.grad_scale_unit)."""

from amaranth import Mux, Signal, signed
from amaranth.lib import data, stream
from amaranth.lib.wiring import In, Out

from .fp16 import Fp16StreamUnit

InputLayout = data.StructLayout({"value": 16, "last": 1})
OutputLayout = data.StructLayout({"s": signed(6), "nonfinite": 1})


class GradScaleUnit(Fp16StreamUnit):
    """Reduces a stream of binary16 gradients, one tensor at a time, to its scale exponent.

    ``s`` is the smallest integer with ``2**s >= max|g|`` over the finite values (0 when none is
    non-zero); since ceil(log2 .) is monotonic, the unit keeps the maximum of the per-value
    exponents instead of the maximum magnitude. NaN and +-Inf are left out of the maximum and
    raise ``nonfinite``. One value per cycle; tensors may follow each other without a gap.

    Two pipeline stages (per-value exponent, running maximum); the whole pipeline stalls while a
    result waits on ``o`` with ``o.ready`` low. The result of a tensor appears on ``o`` in cycle
    t + LATENCY, where t is the cycle its ``last`` value is accepted.

    Members
    -------
    i : In(stream.Signature(InputLayout))
        ``value``: binary16 bit pattern; ``last``: the final value of the tensor.
    o : Out(stream.Signature(OutputLayout))
        One result per tensor: ``s`` (-24..16 for binary16 inputs) and ``nonfinite``.
    """

    i: In(stream.Signature(InputLayout))
    o: Out(stream.Signature(OutputLayout))

    def stages(self, m, decode):
        advance = ~self.o.valid | self.o.ready
        m.d.comb += self.i.ready.eq(advance)

        # Stage 1: ceil(log2|g|) of each value.
        full, last, counted, nonfinite = Signal(), Signal(), Signal(), Signal()
        scale = Signal(signed(6))
        with m.If(advance):
            m.d.sync += [
                full.eq(self.i.valid),
                last.eq(self.i.payload.last),
                counted.eq(~decode.zero & ~decode.inf & ~decode.nan),
                nonfinite.eq(decode.inf | decode.nan),
                scale.eq(decode.log2 + ~decode.exact),
            ]

        # Stage 2: running maximum over the tensor; emitted and restarted on `last`.
        seen, seen_nonfinite = Signal(), Signal()
        peak = Signal(signed(6))
        new_seen = seen | counted
        new_peak = Mux(counted & (~seen | (scale > peak)), scale, peak)
        new_nonfinite = seen_nonfinite | nonfinite
        with m.If(advance):
            m.d.sync += self.o.valid.eq(full & last)
            with m.If(full & last):
                m.d.sync += [
                    self.o.payload.s.eq(Mux(new_seen, new_peak, 0)),
                    self.o.payload.nonfinite.eq(new_nonfinite),
                    seen.eq(0),
                    seen_nonfinite.eq(0),
                ]
            with m.Elif(full):
                m.d.sync += [seen.eq(new_seen), peak.eq(new_peak), seen_nonfinite.eq(new_nonfinite)]
