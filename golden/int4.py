"""INT4 forward quantizers: SAWB for weights, PACT for activations (docs/numerics.md, sections 1-2)."""

import numbers
import warnings

import numpy as np

SAWB_C1 = 12.035
SAWB_C2 = -12.03
W_CODE_MAX = 7
X_CODE_MAX = 15


_NATIVE_FLOATS = (np.float16, np.float32, np.float64)


def _finite_float_array(name, value):
    """``value`` as a floating-point array with finite values, in its own dtype if float16/32/64.

    The computations below cast to float64 where they need it (inside the ufunc or with one astype),
    which gives the same values as converting the array first.
    """
    arr = np.asarray(value)
    if not np.issubdtype(arr.dtype, np.floating):
        raise TypeError(f"{name} must be a floating-point array, got dtype {arr.dtype}")
    if arr.dtype not in _NATIVE_FLOATS:
        arr = arr.astype(np.float64)
    finite = np.isfinite(arr)
    if not finite.all():
        raise ValueError(f"{name} contains a non-finite value ({arr[~finite].astype(np.float64).flat[0]})")
    return arr


def _check_alpha(alpha):
    if np.ndim(alpha) != 0:
        raise TypeError(f"alpha must be a real scalar, got an array of shape {np.shape(alpha)}")
    if isinstance(alpha, np.ndarray):
        alpha = alpha[()]
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real):
        raise TypeError(f"alpha must be a real number, got {alpha!r}")
    alpha = float(alpha)
    if not (np.isfinite(alpha) and alpha > 0):
        raise ValueError(f"alpha must be finite and > 0, got {alpha}")
    return alpha


def sawb_alpha(w):
    """SAWB clipping scale alpha = c1*sqrt(mean(w^2)) + c2*mean(|w|), max|w| where that is <= 0."""
    w = _finite_float_array("w", w)
    if w.size == 0:
        raise ValueError("w is empty")
    w = w.astype(np.float64, copy=False)
    return _sawb_alpha(w, np.empty_like(w))


def _sawb_alpha(w, scratch, warn=False):
    """sawb_alpha of a checked float64 ``w``, using ``scratch`` (laid out like ``w``); leaves |w| there.

    With ``warn``, a RuntimeWarning when alpha < mean|w|: the magnitudes are (nearly) all equal,
    the formula's two terms cancel, and most codes saturate (docs/numerics.md, section 1).
    """
    mean_square = np.mean(np.multiply(w, w, out=scratch))
    mean_abs = np.mean(np.abs(w, out=scratch))
    alpha = SAWB_C1 * np.sqrt(mean_square) + SAWB_C2 * mean_abs
    if not (np.isfinite(alpha) and alpha > 0):
        alpha = scratch.max()
    elif warn and alpha < mean_abs:
        warnings.warn(f"SAWB alpha {alpha:.6g} is below mean|w| {mean_abs:.6g}: the weights have (nearly) "
                      f"constant magnitude, most codes saturate at +-7 and codes * step is up to "
                      f"{mean_abs / alpha:.0f}x smaller than w (docs/numerics.md, section 1)",
                      RuntimeWarning, stacklevel=3)
    return float(alpha)


def sawb(w):
    """Quantize weights to signed INT4 codes -7..7. Returns ``(codes int8, step)``, w ~ codes * step."""
    w = _finite_float_array("w", w)
    if w.size == 0:
        raise ValueError("w is empty")
    w = w.astype(np.float64, copy=False)
    scratch = np.empty_like(w)
    alpha = _sawb_alpha(w, scratch, warn=True)
    if alpha == 0.0:
        return np.zeros(w.shape, np.int8), 1.0
    step = alpha / W_CODE_MAX
    np.divide(w, step, out=scratch)
    np.rint(scratch, out=scratch)
    np.clip(scratch, -W_CODE_MAX, W_CODE_MAX, out=scratch)
    return scratch.astype(np.int8)[()], step       # [()]: a scalar for 0-d input, like numpy's operators


def pact(x, alpha):
    """Quantize activations to unsigned INT4 codes 0..15 on [0, alpha]. Returns ``(codes uint8, step)``."""
    x = _finite_float_array("x", x)
    alpha = _check_alpha(alpha)
    scaled = np.clip(x, 0.0, alpha, out=np.empty(x.shape), dtype=np.float64)
    scaled *= X_CODE_MAX
    scaled /= alpha
    return np.rint(scaled, out=scaled).astype(np.uint8)[()], alpha / X_CODE_MAX


def pact_backward(x, alpha, grad_out):
    """Straight-through PACT gradients: ``(grad_x, grad_alpha)``.

    grad_x passes grad_out where 0 <= x < alpha; grad_alpha sums grad_out where x >= alpha.
    A non-finite ``grad_out`` is bad input (a ValueError), not passed through.
    """
    x = _finite_float_array("x", x)
    alpha = _check_alpha(alpha)
    grad_out = np.asarray(grad_out)
    if np.issubdtype(grad_out.dtype, np.integer) or grad_out.dtype == np.bool_:
        grad_out = grad_out.astype(np.float64)
    grad_out = _finite_float_array("grad_out", grad_out)
    if grad_out.shape != x.shape:
        raise ValueError(f"grad_out shape {grad_out.shape} differs from x shape {x.shape}")
    clipped = x >= np.float64(alpha)        # a float64 scalar: compared in float64 whatever x's dtype
    grad_x = np.zeros(x.shape)
    np.copyto(grad_x, grad_out, where=(x >= 0) & ~clipped)
    return grad_x, float(grad_out[clipped].astype(np.float64).sum())
