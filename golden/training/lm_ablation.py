"""Where fourbit loses on the language model: one-epoch runs of the transformer with parts of the fourbit
scheme switched off or changed (docs/training.md, "Language model").

``python -m golden.training.lm_ablation [--variants ...] [--seeds 0 1 2]`` writes
``build/train/lm_ablation.json``: per variant the validation bits per character of every seed, the mean and
its gap to fp32 in %. Variants (all on the fourbit scheme unless named after another scheme):

- ``fp32``, ``fourbit``, ``no_gradscale``, ``mxfp4``, ``nvfp4``: the schemes themselves;
- ``forward_int4_only``: INT4 forward, float gradients (the float16 dY times the INT4 operands, no FP4);
- ``fp4_dx_only``, ``fp4_dw_only``: INT4 forward, radix-4 FP4 gradients in the dX (dW) GEMM only, float16
  gradients in the other;
- ``backward_fp4_only``: float forward (no SAWB, PACT or input quantizer), radix-4 FP4 gradients with TPR
  and GradScale times the float operands;
- ``float_signed_inputs``: the signed inputs (q, k, v, attention output, MLP in) as floats instead of SAWB INT4
  codes; weights SAWB INT4 and gradients radix-4 FP4 as in fourbit;
- ``row_gradscale``: a GradScale per token row of each gradient instead of per tensor (a diagnostic: the GEMMs
  take the rounded values as floats);
- ``signed_pact``: the signed inputs (qkv, attention output, MLP in) by a learned symmetric PACT clip
  instead of SAWB of every batch;
- ``pact_calibrated``: MLP out's PACT alpha starts at the SAWB clip of its first batch instead of 4.0;
- ``pact_all``: both of the above;
- ``ends_fp32``: also the first block's q, k and v and the last block's MLP out in FP32 (the GEMMs next to
  the embedding and the head).

``--fused-qkv`` runs the model with q, k and v as one layer (one GEMM, one GradScale for the three
gradients) and writes ``build/train/lm_ablation_fused_qkv.json``.
"""

import argparse
import json
import multiprocessing
import pathlib
import sys

import numpy as np

from .. import fp4, units
from . import language
from .layers import FP4_UNIT_SHIFT, Quant, Relu
from .runtime import single_blas_thread
from .table import OUT_DIR, SEEDS
from .train import RunConfig


class FloatBackend:
    """The GEMM seam in float32: operands as they come (codes or floats), FP4 codes as their value in units of
    2**(s - 13). On INT4 codes it gives golden.units' accumulators (every sum is an exact float32 integer)."""

    def gemm_int4(self, a, b, signed_a, width):
        return _accumulated(a.astype(np.float32) @ b.astype(np.float32))

    def gemm_fp4_int4(self, codes, phase, b, signed_b, width):
        return _accumulated(fp4.decode(codes, s=FP4_UNIT_SHIFT, phase=phase).astype(np.float32)
                            @ b.astype(np.float32))


def _accumulated(acc):
    return units.Accumulated(acc=acc, overflow=np.zeros(acc.shape, bool))


class ExactGradients:
    """Gradients as they come (float16, in units of 2**(s - 13)) instead of FP4 codes in the GEMMs of
    ``exact_phases`` (0: dX, 1: dW; the others keep the radix-4 codes); the codes are still computed for
    the layer's statistics."""

    phases = (0, 1)

    def __init__(self, exact_phases=(0, 1)):
        self.exact_phases = exact_phases

    def quantize(self, g16, s, phase):
        self._units = g16.astype(np.float32) * np.float32(2.0 ** (FP4_UNIT_SHIFT - s))
        return fp4.quantize(g16, s, phase)

    def gemm(self, backend, codes, phase, b, signed_b, width=units.BWD_WIDTH):
        if phase not in self.exact_phases:
            return backend.gemm_fp4_int4(codes, phase, b, signed_b=signed_b, width=width)
        g = self._units if phase == 0 else self._units.T       # dX = dY W.T (phase 0); dW.T = dY.T X (phase 1)
        return _accumulated(g @ b.astype(np.float32))


def row_scales(g16):
    """GradScale of every row of the float16 matrix ``g16``: the smallest s with 2**s >= the row's max |g|
    (0 for an all-zero row), as golden.fp4.grad_scale_unit gives for each row alone (finite ``g16``)."""
    peak = np.abs(g16).max(axis=1).astype(np.float64)
    mantissa, exponent = np.frexp(peak)
    return np.where(peak == 0, 0, exponent - (mantissa == 0.5))


def row_scaled_values(g16, phase):
    """``(codes, values)``: each row of ``g16`` rounded to radix-4 FP4 with its own GradScale (row_scales),
    and the real values of those codes (float64)."""
    codes, values = np.zeros(g16.shape, np.uint8), np.zeros(g16.shape)
    scales = row_scales(g16)
    for s in np.unique(scales):
        rows = scales == s
        codes[rows] = fp4.quantize(g16[rows], int(s), phase)[0]
        values[rows] = fp4.decode(codes[rows], s=int(s), phase=phase)
    return codes, values


class RowScaledGradients(ExactGradients):
    """Radix-4 gradients with a GradScale per token row instead of per tensor (a diagnostic, not a scheme: the
    rows' different scales need a float GEMM); values in the layer's units of 2**(s - 13), s the tensor's."""

    def quantize(self, g16, s, phase):
        codes, values = row_scaled_values(g16, phase)
        self._units = (values * 2.0 ** (FP4_UNIT_SHIFT - s)).astype(np.float32)
        return codes, fp4.QuantFlags(overflow=np.zeros(codes.shape, bool), invalid=np.zeros(codes.shape, bool))


class FloatInput:
    """Input stage that hands the float input on with step 1 (a ReLU first where the layer had PACT)."""

    quantized, needs_grad = True, True

    def __init__(self, relu):
        self.relu, self.signed, self.params, self.grad_alpha = relu, True, {}, 0.0

    def forward(self, x):
        self._mask = x > 0 if self.relu else None
        return (np.where(self._mask, x, 0).astype(x.dtype) if self.relu else x), 1.0

    def backward(self, grad):
        return np.where(self._mask, grad, 0).astype(grad.dtype) if self.relu else grad


def forward_int4_only(model):
    quant = Quant(backend=FloatBackend(), grads=ExactGradients())
    for layer in model.quantized_layers:
        layer.quant = quant


def fp4_dx_only(model):
    quant = Quant(backend=FloatBackend(), grads=ExactGradients(exact_phases=(1,)))
    for layer in model.quantized_layers:
        layer.quant = quant


def fp4_dw_only(model):
    quant = Quant(backend=FloatBackend(), grads=ExactGradients(exact_phases=(0,)))
    for layer in model.quantized_layers:
        layer.quant = quant


def backward_fp4_only(model):
    quant = Quant(backend=FloatBackend(), weights=lambda w: (w, 1.0))
    for layer in model.quantized_layers:
        layer.quant = quant
        layer.stage = FloatInput(relu="alpha" in layer.params)


def row_gradscale(model):
    quant = Quant(backend=FloatBackend(), grads=RowScaledGradients())
    for layer in model.quantized_layers:
        layer.quant = quant


def float_signed_inputs(model):
    quant = Quant(backend=FloatBackend())
    for layer in model.quantized_layers:
        if layer.stage.signed:
            layer.quant, layer.stage = quant, FloatInput(relu=False)


def _replace_stage(layer, stage):
    layer.params.pop("alpha", None)
    layer.stage = stage
    layer.params.update(stage.params)


def signed_pact(model):
    for layer in model.quantized_layers:
        if layer.stage.signed:
            _replace_stage(layer, language.SignedPact(layer.params["w"].dtype))


def pact_calibrated(model):
    for layer in model.quantized_layers:
        if not layer.stage.signed:
            _replace_stage(layer, language.CalibratedPact(layer.params["w"].dtype))


def pact_all(model):
    signed_pact(model)
    pact_calibrated(model)


def ends_fp32(model):
    for layer in (*model.blocks[0].attn.inputs, model.blocks[-1].fc2):
        _replace_stage(layer, Relu() if "alpha" in layer.params else language.Through())
        layer.quant = layer.stats = None


# variant -> (scheme, configure)
VARIANTS = {"fp32": ("fp32", None), "fourbit": ("fourbit", None), "no_gradscale": ("no_gradscale", None),
            "mxfp4": ("mxfp4", None), "nvfp4": ("nvfp4", None),
            "forward_int4_only": ("fourbit", forward_int4_only), "backward_fp4_only": ("fourbit", backward_fp4_only),
            "fp4_dx_only": ("fourbit", fp4_dx_only), "fp4_dw_only": ("fourbit", fp4_dw_only),
            "float_signed_inputs": ("fourbit", float_signed_inputs), "row_gradscale": ("fourbit", row_gradscale),
            "signed_pact": ("fourbit", signed_pact), "pact_calibrated": ("fourbit", pact_calibrated),
            "pact_all": ("fourbit", pact_all), "ends_fp32": ("fourbit", ends_fp32)}


def _run(item):
    variant, seed, fused_qkv = item
    scheme, configure = VARIANTS[variant]
    config = RunConfig(language.DATASET, language.MODEL, scheme, 1, seed)
    result = language.run(config, configure=configure, shape=dict(fused_qkv=fused_qkv))
    return variant, seed, result["final_val_bpc"], result["epoch_cpu_seconds"]


def record(path, fused_qkv, variant, seed, bpc, cpu_seconds):
    """Merge one run into the JSON at ``path`` (written after every run) and recompute means and gaps."""
    report = json.loads(path.read_text()) if path.exists() else {"fused_qkv": fused_qkv, "variants": {}}
    runs = report["variants"].setdefault(variant, {"runs": {}})["runs"]
    runs[str(seed)] = {"val_bpc": bpc, "epoch_cpu_seconds": cpu_seconds}
    report["variants"][variant]["runs"] = dict(sorted(runs.items()))
    for entry in report["variants"].values():
        entry["mean_val_bpc"] = float(np.mean([r["val_bpc"] for r in entry["runs"].values()]))
    base = report["variants"].get("fp32", {}).get("mean_val_bpc")
    for entry in report["variants"].values():
        entry["gap_to_fp32_percent"] = None if base is None else 100 * (entry["mean_val_bpc"] / base - 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1))
    return report


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m golden.training.lm_ablation", description=__doc__.split("\n")[0])
    parser.add_argument("--variants", nargs="+", choices=tuple(VARIANTS), default=tuple(VARIANTS))
    parser.add_argument("--seeds", nargs="+", type=int, default=SEEDS)
    parser.add_argument("--fused-qkv", action="store_true", help="q, k and v as one layer (one GradScale)")
    parser.add_argument("--out", type=pathlib.Path)
    args = parser.parse_args(argv)
    out = args.out or OUT_DIR / f"lm_ablation{'_fused_qkv' if args.fused_qkv else ''}.json"
    items = [(variant, seed, args.fused_qkv) for variant in args.variants for seed in args.seeds]
    report = None
    with multiprocessing.get_context("fork").Pool(2, initializer=single_blas_thread) as pool:
        for variant, seed, bpc, cpu in pool.imap_unordered(_run, items):
            report = record(out, args.fused_qkv, variant, seed, bpc, cpu)
            print(f"{variant} seed {seed}: {bpc:.4f} bpc ({cpu:.0f} CPU s)", flush=True)
    for variant, entry in report["variants"].items():
        gap = entry["gap_to_fp32_percent"]
        print(f"{variant:18s} {entry['mean_val_bpc']:.4f} bpc over seeds {', '.join(entry['runs'])}"
              + ("" if gap is None else f", {gap:+.2f} % vs fp32"))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
