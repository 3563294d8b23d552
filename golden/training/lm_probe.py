"""How large each fourbit quantizer's error is on the language model, layer by layer (docs/training.md).

``python -m golden.training.lm_probe [--seed 0]`` trains the transformer one epoch under fourbit (the run
itself is unchanged) and writes ``build/train/lm_probe.json``: at a few steps, for every 4-bit layer,

- forward: the relative error ||q - x|| / ||x|| of its input (SAWB or PACT codes times the step) and of its
  SAWB weights, the share of clipped inputs and of zero codes, the input's kurtosis, and the relative error
  of the layer's output (both operands quantized, and each alone);
- backward: the float16 cast's relative error and the share of non-zero gradients it flushes to zero, the
  radix-4 FP4 relative error, the flushed share and the mean scale q.g / g.g of both TPR phases, how many
  binades each token row's maximum lies below the tensor's (median and 90th percentile), the relative error
  of the dX and dW GEMM results, and, as a diagnostic (no scheme does this), the phase-0 error with a
  GradScale per token row instead of per tensor.
"""

import argparse
import json
import pathlib
import sys

import numpy as np

from .. import fp4, int4
from . import language
from .layers import float16_to, to_float16
from .lm_ablation import row_scaled_values
from .runtime import single_blas_thread
from .table import OUT_DIR
from .train import RunConfig

PROBE_STEPS = (10, 100, 200, 300, 400)


def relative_error(approx, exact):
    return float(np.linalg.norm(approx - exact) / max(np.linalg.norm(exact), np.finfo(float).tiny))


def _fp4_values(g16, s, phase):
    codes, _ = fp4.quantize(g16, s, phase)
    return fp4.decode(codes, s=s, phase=phase).astype(np.float64)


def forward_errors(x, codes, step, w, signed):
    """Forward statistics of a layer input ``x`` (before its input stage) and weights ``w``; also (xq, wq)."""
    exact = (x if signed else np.maximum(x, 0)).astype(np.float64)
    xq = codes.astype(np.float64) * step
    w_codes, w_step = int4.sawb(w)
    wq, w = w_codes * w_step, w.astype(np.float64)
    clip = step * (int4.W_CODE_MAX if signed else int4.X_CODE_MAX)
    y = exact @ w
    return {"signed": bool(signed), "x_rel_err": relative_error(xq, exact),
            "x_clipped": float(np.mean(np.abs(exact) > clip)), "x_zero_codes": float(np.mean(codes == 0)),
            "x_kurtosis": float(np.mean(exact ** 4) / np.mean(exact ** 2) ** 2),
            "w_rel_err": relative_error(wq, w), "y_rel_err": relative_error(xq @ wq, y),
            "y_rel_err_input_only": relative_error(xq @ w, y), "y_rel_err_weights_only": relative_error(exact @ wq, y)
            }, (xq, wq)


def backward_errors(grad_y, xq, wq):
    """Backward statistics of the upstream gradient ``grad_y`` (float32, rows = tokens) of a layer whose
    quantized input and weights are ``xq`` and ``wq``."""
    g = grad_y.astype(np.float64)
    g16 = to_float16(grad_y)
    s = fp4.grad_scale_unit(g16).s
    nonzero = max(np.count_nonzero(g), 1)
    out = {"s": int(s), "f16_rel_err": relative_error(float16_to(g16, np.float32).astype(np.float64), g),
           "f16_flushed": float(np.count_nonzero((g16 == 0) & (g != 0)) / nonzero)}
    quantized = [_fp4_values(g16, s, phase) for phase in fp4.PHASES]
    for phase, q in enumerate(quantized):
        out[f"fp4_rel_err_{phase}"] = relative_error(q, g)
        out[f"fp4_flushed_{phase}"] = float(np.count_nonzero((q == 0) & (g != 0)) / nonzero)
        out[f"fp4_scale_{phase}"] = float((q * g).sum() / (g * g).sum())
    row_max = np.abs(g).max(axis=1)
    below = np.log2(row_max.max() / np.maximum(row_max, np.finfo(float).tiny))
    out["row_max_binades_below_median"], out["row_max_binades_below_p90"] = (float(v) for v in np.quantile(below, (0.5, 0.9)))
    dx = g @ wq.T
    out["dx_rel_err"] = relative_error(quantized[0] @ wq.T, dx)
    out["dw_rel_err"] = relative_error(xq.T @ quantized[1], xq.T @ g)
    _, per_row = row_scaled_values(g16, 0)
    out["fp4_rel_err_0_row_scale"] = relative_error(per_row, g)
    out["dx_rel_err_row_scale"] = relative_error(per_row @ wq.T, dx)
    return out


def instrument(layer, records, steps=PROBE_STEPS):
    """Wrap the 4-bit ``layer`` so that training steps ``steps`` (counted by its backward calls) append their
    forward and backward statistics to ``records``; the layer computes exactly as before."""
    forward, backward = layer.forward, layer._quantized_backward
    done = [0]

    def probed_forward(x):
        if done[0] in steps:
            codes, step = layer.stage.forward(x)
            layer._probe, layer._probe_operands = forward_errors(x, codes, step, layer.params["w"], layer.stage.signed)
        return forward(x)

    def probed_backward(grad_y):
        if done[0] in steps:
            records.append({"step": done[0], "layer": layer.name, **layer._probe,
                            **backward_errors(grad_y, *layer._probe_operands)})
        done[0] += 1
        return backward(grad_y)

    layer.forward, layer._quantized_backward = probed_forward, probed_backward


def probe(seed=0, text=None, shape=None, steps=PROBE_STEPS, batch=None):
    """``{"val_bpc": ..., "records": [...]}`` of a one-epoch fourbit run of seed ``seed`` (``text``, ``shape``
    and ``batch`` as for golden.training.language.run)."""
    records = []

    def configure(model):
        for layer in model.quantized_layers:
            instrument(layer, records, steps)

    result = language.run(RunConfig(language.DATASET, language.MODEL, "fourbit", 1, seed, batch), text=text, shape=shape,
                          configure=configure)
    return {"seed": seed, "val_bpc": result["final_val_bpc"], "records": records}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m golden.training.lm_probe", description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=pathlib.Path, default=OUT_DIR / "lm_probe.json")
    args = parser.parse_args(argv)
    single_blas_thread()
    report = probe(args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    print(f"fourbit seed {args.seed}: {report['val_bpc']:.4f} bpc; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
