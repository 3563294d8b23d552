"""Training schemes: the FP32 baseline, the fourbit contract, all-4-bit and the ablations (docs/training.md)."""

from dataclasses import dataclass

import numpy as np

from .. import units
from ..fp16acc import Fp16ChunkBackend
from ..fp4_radix2 import Radix2Gradients
from .layers import BlockScaledQuant, DynamicScale, FixedScale, Quant, Radix4Gradients


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
    block_format : str or None
        "mxfp4" or "nvfp4": all three GEMMs of the hidden layers in that block-scaled format
        (golden.training.layers.BlockScaledQuant) instead of INT4/radix-4 FP4.
    block_recipe : bool
        With ``block_format``: the format's training recipe (stochastic gradients, random Hadamard
        transform on the dW GEMM inputs; NVFP4 also 16x16 weight tiles); False rounds to nearest everywhere.
    """

    name: str
    description: str
    quantized: bool = True
    quantize_ends: bool = False
    tpr: bool = True
    fixed_scale: bool = False
    radix2: bool = False
    fp16_accumulation: bool = False
    block_format: str = None
    block_recipe: bool = True

    def make_quant(self, backend=None, rng=None):
        """A :class:`golden.training.layers.Quant` shared by the model's 4-bit layers (None for FP32).

        ``backend`` replaces the GEMM backend (default golden.units, or FP16 accumulation for fp16acc; for
        the block-scaled schemes a ``block_gemm`` backend such as golden.mx_gemm.BlockGemm, default BLAS);
        ``rng`` (numpy Generator, default seed 0) draws the stochastic rounding and Hadamard signs of the
        block-scaled schemes.
        """
        if not self.quantized:
            if backend is not None:
                raise ValueError(f"scheme {self.name} has no quantized GEMMs, so backend must be None")
            return None
        if self.block_format:
            return BlockScaledQuant(self.block_format, stochastic_grads=self.block_recipe, hadamard=self.block_recipe,
                                    rng=np.random.default_rng(0) if rng is None else rng,
                                    weights_2d=self.block_format == "nvfp4", backend=backend)
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
    Scheme("mxfp4", "MXFP4 (E2M1, E8M0 scale per 32) in all three GEMMs, Quartet-style backward: stochastic "
                    "gradients, 32-wide random Hadamard transform on the dW inputs; first and last layers FP32",
           block_format="mxfp4"),
    Scheme("nvfp4", "NVFP4 (E2M1, E4M3 scale per 16, FP32 tensor scale) in all three GEMMs, NVIDIA's recipe: "
                    "16x16 weight tiles, stochastic gradients, 16-wide random Hadamard transform on the dW inputs; "
                    "first and last layers FP32", block_format="nvfp4"),
    Scheme("mxfp4_rn", "mxfp4 rounding to nearest everywhere, no Hadamard transform", block_format="mxfp4",
           block_recipe=False),
    Scheme("nvfp4_rn", "nvfp4 rounding to nearest everywhere, no Hadamard transform", block_format="nvfp4",
           block_recipe=False),
)}


def get_scheme(name):
    """The :class:`Scheme` called ``name``; ValueError naming the known schemes otherwise."""
    if name not in SCHEMES:
        raise ValueError(f"scheme must be one of {', '.join(SCHEMES)}; got {name!r}")
    return SCHEMES[name]
