"""Expected output fields of the streaming units, from the golden model: the radix-4 quantizer
(golden.fp4.quantize, both TPR phases per value) and GradScale (golden.fp4.grad_scale_unit, one
result per tensor). Field names are those of the units' output layouts (testbench.payloads)."""

import numpy as np

import golden.fp4

from .payloads import QUANTIZER_OUT


def quantizer_outputs(patterns, scales):
    """Codes and overflow flags of phases 0 and 1 and ``invalid`` of each binary16 pattern at its own scale."""
    patterns, scales = np.asarray(patterns).astype(np.uint16), np.asarray(scales, np.int64)
    out = {name: np.zeros(patterns.shape, np.int64) for name in QUANTIZER_OUT.fields}
    values = patterns.view(np.float16)
    for s in np.unique(scales):
        chosen = scales == s
        for phase in (0, 1):
            codes, flags = golden.fp4.quantize(values[chosen], int(s), phase)
            out[f"code{phase}"][chosen] = codes
            out[f"overflow{phase}"][chosen] = flags.overflow
        out["invalid"][chosen] = flags.invalid
    return out


def grad_scale_outputs(tensors):
    """``s`` and ``nonfinite`` of each tensor (a sequence of binary16 pattern arrays)."""
    results = [golden.fp4.grad_scale_unit(np.asarray(t).astype(np.uint16).view(np.float16)) for t in tensors]
    return {"s": np.array([r.s for r in results], np.int64),
            "nonfinite": np.array([r.nonfinite for r in results], np.int64)}
