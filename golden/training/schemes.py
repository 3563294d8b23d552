"""Training schemes: the FP32 baseline, the fourbit contract, all-4-bit and the ablations (docs/training.md)."""

from dataclasses import dataclass

from .. import units
from ..fp16acc import Fp16ChunkBackend
from ..fp4_radix2 import Radix2Gradients
from .layers import DynamicScale, FixedScale, Quant, Radix4Gradients


@dataclass(frozen=True)
class Scheme:
    """What a training run quantizes and how.

    Attributes
    ----------
    name, description : str
    quantized : bool
        Hidden layers are 4-bit (False: the FP32 baseline, same code with float matmuls).
    quantize_ends : bool
        First and last layers are 4-bit too.
    tpr : bool
        Two-phase rounding (phase 0 for dX, phase 1 for dW); False uses phase 0 for both.
    fixed_scale : bool
        One global gradient scale, fixed at the first step, instead of per-layer per-step GradScale.
    radix2 : bool
        Radix-2 FP4 [1,3,0] gradients instead of radix-4 (no TPR).
    fp16_accumulation : bool
        Chunked FP16 accumulation (chunk 64) instead of the exact integer accumulator.
    """

    name: str
    description: str
    quantized: bool = True
    quantize_ends: bool = False
    tpr: bool = True
    fixed_scale: bool = False
    radix2: bool = False
    fp16_accumulation: bool = False

    def make_quant(self, backend=None):
        """A :class:`golden.training.layers.Quant` shared by the model's 4-bit layers (None for FP32).

        ``backend`` replaces the GEMM backend (default golden.units, or FP16 accumulation for fp16acc).
        """
        if not self.quantized:
            if backend is not None:
                raise ValueError(f"scheme {self.name} has no integer GEMMs, so backend must be None")
            return None
        if backend is None:
            backend = Fp16ChunkBackend() if self.fp16_accumulation else units
        grads = Radix2Gradients() if self.radix2 else Radix4Gradients(tpr=self.tpr)
        return Quant(backend=backend, grads=grads, scale=FixedScale() if self.fixed_scale else DynamicScale())


SCHEMES = {s.name: s for s in (
    Scheme("fp32", "FP32 baseline: no quantization, ReLU, float matmuls", quantized=False),
    Scheme("fourbit", "the contract: SAWB/PACT INT4 forward, radix-4 FP4 TPR backward with GradScale, "
                      "first and last layers FP32"),
    Scheme("all4bit", "fourbit with the first and last layers quantized too", quantize_ends=True),
    Scheme("no_tpr", "fourbit without two-phase rounding (phase 0 for dX and dW)", tpr=False),
    Scheme("no_gradscale", "fourbit with one global gradient scale fixed at the first step", fixed_scale=True),
    Scheme("radix2", "fourbit with radix-2 FP4 [1,3,0] gradients (no TPR)", radix2=True),
    Scheme("fp16acc", "fourbit with chunked FP16 accumulation (chunk 64) instead of exact",
           fp16_accumulation=True),
)}


def get_scheme(name):
    """The :class:`Scheme` called ``name``; ValueError naming the known schemes otherwise."""
    if name not in SCHEMES:
        raise ValueError(f"scheme must be one of {', '.join(SCHEMES)}; got {name!r}")
    return SCHEMES[name]
