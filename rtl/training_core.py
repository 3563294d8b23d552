"""The compute of a 4-bit training step in one design: the training array, the gradient quantizer
and the GradScale unit side by side, each behind its own streams.

The units share only the clock and reset; the host (testbench/bench_train_steps.py) runs the
three GEMMs of each 4-bit layer on the array, the radix-4 quantization of every gradient on the
quantizer and the per-layer scale exponent on the GradScale unit.
"""

from amaranth import Module
from amaranth.lib import wiring
from golden.units import BWD_WIDTH, FWD_WIDTH

from .array import TrainingArray
from .grad_scale import GradScaleUnit
from .radix4_quantizer import Radix4Quantizer


class TrainingCore(wiring.Component):
    """A :class:`~rtl.array.TrainingArray`, a :class:`~rtl.radix4_quantizer.Radix4Quantizer` and a
    :class:`~rtl.grad_scale.GradScaleUnit` with their ports brought out unchanged.

    Parameters
    ----------
    rows, cols, fwd_width, bwd_width : int
        Parameters of the array (see :class:`~rtl.array.TrainingArray`).

    Members
    -------
    cmd, a, b, o, error
        The array's ports (Verilog ``cmd__payload``, ..., ``o__ready``, ``error``).
    quant_i, quant_o
        The quantizer's ``i`` and ``o`` streams: binary16 value and scale exponent in, the FP4
        codes of both TPR phases and their flags out.
    scale_i, scale_o
        The GradScale unit's ``i`` and ``o`` streams: binary16 values with ``last`` in, one scale
        exponent and ``nonfinite`` flag per tensor out.

    Raises
    ------
    TypeError, ValueError
        For an array parameter that is not an int in its range (raised by the array).
    """

    def __init__(self, rows=8, cols=8, fwd_width=FWD_WIDTH, bwd_width=BWD_WIDTH):
        self.array = TrainingArray(rows, cols, fwd_width, bwd_width)
        self.quantizer = Radix4Quantizer()
        self.grad_scale = GradScaleUnit()
        #: Cycles to the outputs on each path: the array's, the quantizer's, the GradScale unit's.
        self.latency = {"array": self.array.latency, "quant": self.quantizer.latency,
                        "scale": self.grad_scale.latency}
        super().__init__({
            **dict(self.array.signature.members.items()),
            "quant_i": self.quantizer.signature.members["i"],
            "quant_o": self.quantizer.signature.members["o"],
            "scale_i": self.grad_scale.signature.members["i"],
            "scale_o": self.grad_scale.signature.members["o"],
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.array = array = self.array
        m.submodules.quantizer = quantizer = self.quantizer
        m.submodules.grad_scale = grad_scale = self.grad_scale
        for name in ("cmd", "a", "b"):
            wiring.connect(m, wiring.flipped(getattr(self, name)), getattr(array, name))
        wiring.connect(m, array.o, wiring.flipped(self.o))
        m.d.comb += self.error.eq(array.error)
        wiring.connect(m, wiring.flipped(self.quant_i), quantizer.i)
        wiring.connect(m, quantizer.o, wiring.flipped(self.quant_o))
        wiring.connect(m, wiring.flipped(self.scale_i), grad_scale.i)
        wiring.connect(m, grad_scale.o, wiring.flipped(self.scale_o))
        return m
