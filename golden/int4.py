"""INT4 forward quantizers: SAWB for weights, PACT for activations (docs/numerics.md, sections 1-2)."""

import numpy as np

SAWB_C1 = 12.035
SAWB_C2 = -12.03
W_CODE_MAX = 7
X_CODE_MAX = 15


def _finite_float_array(name, value):
    arr = np.asarray(value)
    if not np.issubdtype(arr.dtype, np.floating):
        raise TypeError(f"{name} must be a floating-point array, got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains a non-finite value ({arr[~np.isfinite(arr)].flat[0]})")
    return arr


def _check_alpha(alpha):
    alpha = float(alpha)
    if not (np.isfinite(alpha) and alpha > 0):
        raise ValueError(f"alpha must be finite and > 0, got {alpha}")
    return alpha


def sawb_alpha(w):
    """SAWB clipping scale alpha = c1*sqrt(mean(w^2)) + c2*mean(|w|), max|w| where that is <= 0."""
    w = _finite_float_array("w", w)
    if w.size == 0:
        raise ValueError("w is empty")
    mag = np.abs(w)
    alpha = SAWB_C1 * np.sqrt(np.mean(w * w)) + SAWB_C2 * np.mean(mag)
    if not (np.isfinite(alpha) and alpha > 0):
        alpha = mag.max()
    return float(alpha)


def sawb(w):
    """Quantize weights to signed INT4 codes -7..7. Returns ``(codes int8, step)``, w ~ codes * step."""
    alpha = sawb_alpha(w)
    w = np.asarray(w, dtype=np.float64)
    if alpha == 0.0:
        return np.zeros(w.shape, np.int8), 1.0
    step = alpha / W_CODE_MAX
    codes = np.clip(np.rint(w / step), -W_CODE_MAX, W_CODE_MAX).astype(np.int8)
    return codes, step


def pact(x, alpha):
    """Quantize activations to unsigned INT4 codes 0..15 on [0, alpha]. Returns ``(codes uint8, step)``."""
    x = _finite_float_array("x", x)
    alpha = _check_alpha(alpha)
    codes = np.rint(np.clip(x, 0.0, alpha) * X_CODE_MAX / alpha).astype(np.uint8)
    return codes, alpha / X_CODE_MAX


def pact_backward(x, alpha, grad_out):
    """Straight-through PACT gradients: ``(grad_x, grad_alpha)``.

    grad_x passes grad_out where 0 <= x < alpha; grad_alpha sums grad_out where x >= alpha.
    """
    x = _finite_float_array("x", x)
    alpha = _check_alpha(alpha)
    grad_out = np.asarray(grad_out, dtype=np.float64)
    if grad_out.shape != x.shape:
        raise ValueError(f"grad_out shape {grad_out.shape} differs from x shape {x.shape}")
    clipped = x >= alpha
    grad_x = np.where((x >= 0) & ~clipped, grad_out, 0.0)
    return grad_x, float(grad_out[clipped].sum())
