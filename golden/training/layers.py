"""Quantized Linear and Conv2d (im2col) layers of the fourbit training step (docs/training.md).

A 4-bit layer quantizes its input (PACT after a ReLU, or a fixed data quantizer for a network input)
and its weights (SAWB) to INT4 codes and runs exactly three integer GEMMs through its GEMM backend
(default: golden.units; the RTL array plugs in here), with the dequantization of contract item 8::

    forward  Y  = gemm_int4(X, W)                              * dX_step * dW_step + bias
    backward dX = gemm_fp4_int4(G0, 0, W.T)                    * dW_step * 2**(s - 13)
             dW = gemm_fp4_int4(G1.T, 1, X, signed_b=False).T  * dX_step * 2**(s - 13)

X and W are the INT4 codes, G0 and G1 the FP4 codes of the incoming gradient dY (cast to float16 first)
rounded in phase 0 and phase 1 (two-phase rounding), and s its GradScale exponent. dX is skipped where
nothing consumes it (a network input). Without a ``quant`` a layer is the FP32 reference: the same code
with float matmuls and a ReLU instead of PACT.
"""

from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

import numpy as np

from .. import fp4, int4, mx, units
from ..tiling import Mode

FP4_UNIT_SHIFT = 13     # backward accumulators count units of 2**(s - 13)


class NonFiniteGradient(FloatingPointError):
    """A gradient overflowed float16 or was NaN: the run diverged."""


class GemmBackend(Protocol):
    """The three integer GEMMs of a 4-bit layer; the module golden.units is the reference backend.

    Both return :class:`golden.units.Accumulated`; results must equal golden.units bit for bit for a
    training run to be reproducible with another backend.
    """

    def gemm_int4(self, a, b, signed_a, width): ...

    def gemm_fp4_int4(self, codes, phase, b, signed_b, width): ...


class GemmCall(NamedTuple):
    """One recorded backend call: function name, keyword arguments (copies) and result."""

    name: str
    args: dict
    result: units.Accumulated


class RecordingBackend:
    """A backend that forwards to ``inner`` and records every call in :attr:`calls`."""

    def __init__(self, inner=units):
        self.inner = inner
        self.calls = []

    def gemm_int4(self, a, b, signed_a, width):
        result = self.inner.gemm_int4(a, b, signed_a=signed_a, width=width)
        self._record("gemm_int4", dict(a=a, b=b, signed_a=signed_a, width=width), result)
        return result

    def gemm_fp4_int4(self, codes, phase, b, signed_b, width):
        result = self.inner.gemm_fp4_int4(codes, phase, b, signed_b=signed_b, width=width)
        self._record("gemm_fp4_int4", dict(codes=codes, phase=phase, b=b, signed_b=signed_b, width=width), result)
        return result

    def _record(self, name, args, result):
        args = {k: np.array(v) if isinstance(v, np.ndarray) else v for k, v in args.items()}
        self.calls.append(GemmCall(name, args, result))


class Radix4Gradients:
    """Radix-4 FP4 gradients (golden.fp4); with ``tpr`` phase 0 feeds dX and phase 1 dW, else phase 0 both."""

    def __init__(self, tpr=True):
        self.tpr = bool(tpr)
        self.phases = (0, 1) if self.tpr else (0, 0)

    def quantize(self, g16, s, phase):
        return fp4.quantize(g16, s, phase)

    def gemm(self, backend, codes, phase, b, signed_b, width=units.BWD_WIDTH):
        return backend.gemm_fp4_int4(codes, phase, b, signed_b=signed_b, width=width)


class DynamicScale:
    """GradScale (contract item 5): per layer and per step, s from the tensor's max |g|."""

    def __call__(self, g16, layer_name):
        result = fp4.grad_scale_unit(g16)
        if result.nonfinite:
            raise NonFiniteGradient(f"the float16 gradient of layer {layer_name} has NaN or Inf values")
        return result.s


class FixedScale(DynamicScale):
    """One global s for all layers and steps, set from the first gradient tensor seen (no_gradscale)."""

    def __init__(self):
        self.s = None

    def __call__(self, g16, layer_name):
        s = super().__call__(g16, layer_name)
        if self.s is None:
            self.s = s
        return self.s


@dataclass
class Quant:
    """How a 4-bit layer computes: GEMM backend, gradient format and scale policy (see golden.training.schemes)."""

    backend: GemmBackend = units
    grads: object = field(default_factory=Radix4Gradients)
    scale: DynamicScale = field(default_factory=DynamicScale)
    weights: object = int4.sawb     # weight quantizer: w -> (INT4 codes, step)
    int4_inputs = True      # the layer's input stage delivers INT4 codes (PACT or the data quantizer)


class GradStats:
    """Counts over the FP4 gradient codes of one layer, per role ("dX" and "dW" operands)."""

    ROLES = ("dX", "dW")

    def __init__(self):
        self.reset()

    def reset(self):
        self.histogram = {role: np.zeros(16, np.int64) for role in self.ROLES}
        self.nonzero = dict.fromkeys(self.ROLES, 0)       # non-zero float16 gradients quantized
        self.flushed = dict.fromkeys(self.ROLES, 0)       # ... of which became code 0
        self.fp4_overflow = dict.fromkeys(self.ROLES, 0)  # quantizer overflow flags (saturation changed a value)
        self.acc_overflow = 0                             # saturated accumulators, all GEMMs incl. evaluation

    def note_codes(self, role, g16, codes, flags):
        histogram = np.bincount(codes.ravel(), minlength=16)
        self.histogram[role] += histogram
        nonzero = int(np.count_nonzero(g16.view(np.uint16) << 1))   # the bits without the sign: -0.0 is zero
        self.nonzero[role] += nonzero
        # a zero code comes from a zero or a flushed gradient; quantize never gives a non-zero code for 0
        self.flushed[role] += nonzero - (codes.size - int(histogram[0] + histogram[fp4.SIGN_BIT]))
        self.fp4_overflow[role] += int(np.count_nonzero(flags.overflow))

    def note_acc(self, accumulated):
        self.acc_overflow += int(np.count_nonzero(accumulated.overflow))

    def as_dict(self):
        return {"histogram": {r: h.tolist() for r, h in self.histogram.items()}, "nonzero": dict(self.nonzero),
                "flushed": dict(self.flushed), "fp4_overflow": dict(self.fp4_overflow),
                "acc_overflow": self.acc_overflow}


    @property
    def nonzero_codes(self):
        """Non-zero FP4 gradient codes (either sign) fed to the backward GEMMs since :meth:`reset`."""
        return int(sum(h.sum() - h[0] - h[fp4.SIGN_BIT] for h in self.histogram.values()))


class BlockStats:
    """Counts over the block-scaled (MXFP4/NVFP4) gradient operands of one layer, per role."""

    ROLES = ("dX", "dW")

    def __init__(self):
        self.reset()

    def reset(self):
        self.nonzero = dict.fromkeys(self.ROLES, 0)        # non-zero float32 gradients quantized
        self.codes_nonzero = dict.fromkeys(self.ROLES, 0)  # non-zero values after quantization
        self.invalid_blocks = 0                            # blocks holding NaN or Inf, every operand

    def note(self, role, g, quantized):
        self.nonzero[role] += int(np.count_nonzero(g))
        self.codes_nonzero[role] += int(np.count_nonzero(quantized))

    @property
    def nonzero_codes(self):
        return sum(self.codes_nonzero.values())

    def as_dict(self):
        return {"nonzero": dict(self.nonzero), "codes_nonzero": dict(self.codes_nonzero),
                "invalid_blocks": self.invalid_blocks}


class BlockScaledQuant:
    """The three GEMMs of a layer in MXFP4 or NVFP4 (golden.mx), on float inputs (docs/training.md).

    Every GEMM operand is quantized in blocks along the GEMM's reduction axis (zero-padded to a multiple
    of the block), decoded and multiplied in float32::

        forward  Y  = q(X) @ q(W.T).T                  X and W to nearest
        backward dX = q_g(dY) @ q(W).T                 q_g: stochastic with ``stochastic_grads``
                 dW = q(H X.T) @ q_g(H dY.T).T

    H is the random Hadamard transform (``hadamard``: blocks of 16 for NVFP4, 32 for MXFP4, fresh random
    signs per GEMM, the same for both operands) along the batch axis, the reduction axis of dW. With
    ``weights_2d`` (NVFP4's recipe) weights use 16x16 tiles, one scale per tile, so W and W.T are the
    same quantized matrix. ``rng`` draws the stochastic rounding and the signs. ``backend`` computes
    the three products (:meth:`matmul`; default float32 BLAS).
    """

    int4_inputs = False

    def __init__(self, fmt, stochastic_grads, hadamard, rng, weights_2d=False, backend=None):
        if fmt not in ("mxfp4", "nvfp4"):
            raise ValueError(f"fmt must be 'mxfp4' or 'nvfp4', got {fmt!r}")
        self.fmt, self.stochastic_grads, self.hadamard = fmt, bool(stochastic_grads), bool(hadamard)
        self.weights_2d = bool(weights_2d)
        self.block = mx.MX_BLOCK if fmt == "mxfp4" else mx.NV_BLOCK
        self.rng = rng
        self.backend = backend

    def matmul(self, mode, a, b):
        """``a @ b.T`` of quantized operands blocked along their rows: float32 BLAS by default, else
        ``backend.block_gemm(mode, a, b)`` (a golden.mx_gemm.BlockGemm or the simulated array)."""
        return a @ b.T if self.backend is None else self.backend.block_gemm(mode, a, b)

    def fake_quantize(self, x, stats, stochastic=False):
        """Decoded ``x`` (float32, 2-D) quantized in blocks along its last axis, zero-padded to whole blocks."""
        x = _pad_columns(x, self.block)
        decoded, invalid = mx.fake_quantize(x, self.fmt, "stochastic" if stochastic else "even",
                                            self.rng if stochastic else None)
        stats.invalid_blocks += invalid
        return decoded

    def weight(self, w, stats):
        """(q(W.T) for the forward, q(W) for dX): 1-D blocks along each GEMM's reduction axis, or 2-D tiles."""
        if not self.weights_2d:
            return self.fake_quantize(w.T, stats), self.fake_quantize(w, stats)
        decoded, invalid = mx.fake_quantize(_pad_matrix(w, mx.NV_BLOCK), "nvfp4", tiles_2d=True)
        stats.invalid_blocks += invalid
        decoded = decoded[:w.shape[0], :w.shape[1]]
        return _pad_columns(decoded.T, self.block), _pad_columns(decoded, self.block)

    def forward(self, layer, a, w):
        layer._qw_t, layer._qw = self.weight(w, layer.stats)
        return self.matmul(Mode.FWD, self.fake_quantize(a, layer.stats), layer._qw_t)

    def backward(self, layer, a, grad_y, need_dx):
        """(dX or None, dW) for the layer's float input ``a`` and upstream gradient ``grad_y`` (float32)."""
        grad_y = np.asarray(grad_y, np.float32)
        stochastic = self.stochastic_grads
        grad_a = None
        if need_dx:
            qg = self.fake_quantize(grad_y, layer.stats, stochastic)
            layer.stats.note("dX", grad_y, qg)
            grad_a = self.matmul(Mode.BWD_DATA, qg, layer._qw)[:, :a.shape[1]]
        a_t, g_t = _pad_columns(a.T, self.block), _pad_columns(grad_y.T, self.block)
        if self.hadamard:
            signs = mx.random_signs(self.block, self.rng)
            a_t, g_t = mx.hadamard(a_t, signs), mx.hadamard(g_t, signs)
        qg = self.fake_quantize(g_t, layer.stats, stochastic)
        layer.stats.note("dW", g_t, qg)
        grad_w = self.matmul(Mode.BWD_WEIGHT, self.fake_quantize(a_t, layer.stats), qg)
        return grad_a, grad_w


def _pad_matrix(w, block):
    """``w`` (float32, C order) with zero rows and columns appended up to multiples of ``block``."""
    rows, cols = (-(-n // block) * block for n in w.shape)
    if (rows, cols) == w.shape:
        return np.ascontiguousarray(w, np.float32)
    padded = np.zeros((rows, cols), np.float32)
    padded[:w.shape[0], :w.shape[1]] = w
    return padded


def _pad_columns(x, block):
    """``x`` with zero columns appended up to a multiple of ``block`` (float32, C order)."""
    x = np.asarray(x, np.float32)
    extra = -x.shape[-1] % block
    if extra:
        x = np.concatenate([x, np.zeros((*x.shape[:-1], extra), np.float32)], axis=-1)
    return np.ascontiguousarray(x)


class Identity:
    """Input stage of an FP32 layer fed by the network input."""

    quantized, needs_grad = False, False
    params = {}

    def forward(self, x):
        return x


class Relu:
    """Input stage of an FP32 hidden layer: ReLU of the previous layer's output."""

    quantized, needs_grad = False, True
    params = {}

    def forward(self, x):
        self._mask = x > 0
        return np.where(self._mask, x, 0).astype(x.dtype)

    def backward(self, grad):
        return np.where(self._mask, grad, 0).astype(grad.dtype)


class Pact:
    """Input stage of a 4-bit hidden layer: PACT clip to [0, alpha] and unsigned INT4 codes (contract item 2)."""

    quantized, needs_grad, signed = True, True, False

    def __init__(self, alpha, dtype=np.float32):
        self.params = {"alpha": np.array(alpha, dtype)}

    def forward(self, x):
        self._x = x
        return int4.pact(x, float(self.params["alpha"]))

    def backward(self, grad):
        if not np.isfinite(grad).all():
            raise NonFiniteGradient("a gradient into a PACT activation is not finite")
        grad_x, self.grad_alpha = int4.pact_backward(self._x, float(self.params["alpha"]), grad)
        return grad_x.astype(grad.dtype)


class DataQuantizer:
    """Input stage of a 4-bit first layer: fixed-step INT4 codes of the network input (all4bit scheme).

    Non-negative data get unsigned codes 0..15 with step max/15; signed data get codes -7..7 with the
    SAWB step of the training set (golden.int4.sawb_alpha / 7). No gradient flows to the data.
    """

    quantized, needs_grad = True, False
    params = {}

    def __init__(self, step, signed):
        step = float(step)
        if not (np.isfinite(step) and step > 0):
            raise ValueError(f"step must be finite and > 0, got {step}")
        self.step, self.signed = step, bool(signed)

    @classmethod
    def from_data(cls, x_train):
        x_train = np.asarray(x_train)
        if x_train.min() < 0:
            return cls(int4.sawb_alpha(x_train) / int4.W_CODE_MAX, signed=True)
        return cls(float(x_train.max()) / int4.X_CODE_MAX, signed=False)

    def forward(self, x):
        if self.signed:
            codes = np.clip(np.rint(x / self.step), -int4.W_CODE_MAX, int4.W_CODE_MAX).astype(np.int8)
        else:
            codes = np.clip(np.rint(x / self.step), 0, int4.X_CODE_MAX).astype(np.uint8)
        return codes, self.step


class _Layer:
    """Shared forward/backward of Linear and Conv2d over the GEMM operand matrix (rows = samples or pixels)."""

    def __init__(self, name, fan_in, n_out, rng, stage, quant, dtype):
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng must be a numpy Generator, got {type(rng).__name__}")
        if stage.quantized != (quant is not None and quant.int4_inputs):
            raise ValueError(f"layer {name}: input stage {type(stage).__name__} does not fit quant={quant!r}")
        self.name, self.stage, self.quant = name, stage, quant
        self.params = {"w": (rng.standard_normal((fan_in, n_out)) * np.sqrt(2.0 / fan_in)).astype(dtype),
                       "b": np.zeros(n_out, dtype), **stage.params}
        self.grads = {}
        self.stats = None if quant is None else GradStats() if quant.int4_inputs else BlockStats()

    def forward(self, x):
        """Output of the layer for input ``x`` (pre-activation of the previous layer, or the data)."""
        self._in_shape = x.shape
        w, b = self.params["w"], self.params["b"]
        if self.quant is None or not self.quant.int4_inputs:
            self._a = self._to_matrix(self.stage.forward(x))
            y = self._a @ w if self.quant is None else self.quant.forward(self, self._a, w)
            return self._from_matrix(y + b)
        x_codes, self._x_step = self.stage.forward(x)
        self._x_codes = self._to_matrix(x_codes)
        self._w_codes, self._w_step = self.quant.weights(w)
        acc = self.quant.backend.gemm_int4(self._x_codes, self._w_codes, signed_a=self.stage.signed,
                                           width=units.FWD_WIDTH)
        self.stats.note_acc(acc)
        return self._from_matrix((acc.acc * (self._x_step * self._w_step)).astype(w.dtype) + b)

    def backward(self, grad_y):
        """Fill :attr:`grads` from dL/dY; return dL/dx for the input of :meth:`forward` (None for data)."""
        grad_y = self._to_rows(grad_y)
        if self.quant is None:
            self.grads["w"] = self._a.T @ grad_y
            self.grads["b"] = grad_y.sum(axis=0)
            grad_a = grad_y @ self.params["w"].T if self.stage.needs_grad else None
        elif not self.quant.int4_inputs:
            grad_a, grad_w = self.quant.backward(self, self._a, grad_y, self.stage.needs_grad)
            self.grads["w"] = grad_w[:self._a.shape[1], :grad_y.shape[1]].astype(grad_y.dtype)
            self.grads["b"] = grad_y.sum(axis=0)
            grad_a = None if grad_a is None else grad_a.astype(grad_y.dtype)
        else:
            grad_a = self._quantized_backward(grad_y)
        if grad_a is None:
            return None
        grad_x = self.stage.backward(self._from_matrix_grad(grad_a).reshape(self._in_shape))
        if "alpha" in self.params:
            self.grads["alpha"] = np.array(self.stage.grad_alpha, self.params["alpha"].dtype)
        return grad_x

    def _quantized_backward(self, grad_y):
        quant, dtype = self.quant, grad_y.dtype
        g16 = to_float16(grad_y)
        s = quant.scale(g16, self.name)
        unit = 2.0 ** (s - FP4_UNIT_SHIFT)
        phase_dx, phase_dw = quant.grads.phases
        grad_a = None
        if self.stage.needs_grad:
            codes, flags = quant.grads.quantize(g16, s, phase_dx)
            self.stats.note_codes("dX", g16, codes, flags)
            acc = quant.grads.gemm(quant.backend, codes, phase_dx, self._w_codes.T, signed_b=True)
            self.stats.note_acc(acc)
            grad_a = (acc.acc * (self._w_step * unit)).astype(dtype)
        codes, flags = quant.grads.quantize(g16, s, phase_dw)
        self.stats.note_codes("dW", g16, codes, flags)
        acc = quant.grads.gemm(quant.backend, codes.T, phase_dw, self._x_codes, signed_b=self.stage.signed)
        self.stats.note_acc(acc)
        self.grads["w"] = (acc.acc * (self._x_step * unit)).astype(dtype).T
        self.grads["b"] = float16_to(g16, dtype).sum(axis=0)
        return grad_a


def to_float16(x):
    """``x.astype(np.float16)`` without overflow warnings; bit for bit the same, faster for float32.

    numpy converts to float16 with scalar code; for float32 the same rounding (nearest, ties to even,
    subnormals, Inf from 65520 on, NaN payloads) is done with whole-array operations. The rounding is
    one float32 addition: 4|x| (as |x| * 2**112 * 2**-110, which is Inf from 2**16 on, like the half) plus
    4 * 2**(e + 13), e = max(x's exponent, -14), whose ulp is 4 times the half's ulp at x's exponent; the
    sum's low bits then hold the rounded half. Checked against numpy for all 2**32 float32 bit patterns
    (tests/test_golden_units_fastpath.py checks the rounding corners).
    """
    if x.dtype != np.float32:
        with np.errstate(over="ignore"):
            return x.astype(np.float16)
    x = np.ascontiguousarray(x)
    bits = x.view(np.uint32)
    with np.errstate(over="ignore", invalid="ignore"):     # no flags for Inf/NaN, like numpy's cast
        rounded = np.abs(x)
        rounded *= np.float32(2.0**112)
        rounded *= np.float32(2.0**-110)
    work = np.add(bits, bits)                           # exponent in the top byte, sign dropped
    nan = work > np.uint32(0xFF000000)
    np.bitwise_and(work, np.uint32(0xFF000000), out=work)
    np.maximum(work, np.uint32(0x71000000), out=work)   # exponents below a half's normal range: 2**-14's
    work >>= 1
    work += np.uint32(0x07800000)                       # 4 * 2**(e + 13)
    with np.errstate(invalid="ignore"):
        rounded += work.view(np.float32)
    low = rounded.view(np.uint32)
    np.right_shift(low, 13, out=work)
    work &= np.uint32(0x7C00)                           # the half's exponent field ...
    low &= np.uint32(0x0FFF)
    work += low                                         # ... plus its fraction (a carry is right)
    np.right_shift(bits, 16, out=low)
    low &= np.uint32(0x8000)
    work |= low
    if nan.any():                                       # numpy keeps the top 10 payload bits, and a NaN
        payload = np.uint32(0x7C00) + ((bits[nan] & np.uint32(0x007FFFFF)) >> 13)
        work[nan] = (payload + (payload == 0x7C00)) | ((bits[nan] >> 16) & np.uint32(0x8000))
    return work.astype(np.uint16).view(np.float16)


# every float16 bit pattern as float32 (numpy's exact conversion)
_FLOAT16_AS_FLOAT32 = np.arange(1 << 16, dtype=np.uint16).view(np.float16).astype(np.float32)


def float16_to(g16, dtype):
    """``g16.astype(dtype)``; float32 by table lookup, which is faster than numpy's float16 conversion."""
    if np.dtype(dtype) != np.float32:
        return g16.astype(dtype)
    return np.take(_FLOAT16_AS_FLOAT32, g16.view(np.uint16))


def _int_pair(name, value):
    pair = (value, value) if isinstance(value, (int, np.integer)) else value
    if not (isinstance(pair, (tuple, list)) and len(pair) == 2
            and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in pair)):
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
    return tuple(int(v) for v in pair)


class Linear(_Layer):
    """Fully connected layer; inputs of any shape (N, ...) are flattened to (N, n_in).

    Parameters
    ----------
    name : str
        Layer name used in messages and statistics.
    n_in, n_out : int
        Input and output features; ``w`` has shape (n_in, n_out), ``b`` shape (n_out,).
    rng : numpy.random.Generator
        Source of the He-normal initial weights.
    stage : Identity | Relu | Pact | DataQuantizer
        What is applied to the input first (Pact/DataQuantizer for a 4-bit layer).
    quant : Quant or None
        4-bit computation settings; None for an FP32 layer.
    dtype : numpy dtype
        Dtype of the master weights and activations (float32; float64 for gradient checks).
    """

    def __init__(self, name, n_in, n_out, rng, stage, quant=None, dtype=np.float32):
        for arg, v in (("n_in", n_in), ("n_out", n_out)):
            if not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"{arg} must be a positive int, got {v!r}")
        self.n_in = n_in
        super().__init__(name, n_in, n_out, rng, stage, quant, dtype)

    def _to_matrix(self, a):
        a = a.reshape(a.shape[0], -1)
        if a.shape[1] != self.n_in:
            raise ValueError(f"layer {self.name} expects {self.n_in} input features, got input shape {self._in_shape}")
        return a

    def _from_matrix(self, y):
        return y

    def _to_rows(self, grad_y):
        return grad_y

    def _from_matrix_grad(self, grad_a):
        return grad_a


def im2col(x, kernel, stride, padding):
    """(N, C, H, W) -> (N*OH*OW, C*kh*kw) patch matrix, columns ordered (c, i, j); zero padding.

    Built channels-last: each kernel offset (i, j) copies whole channel vectors, which is several
    times faster than reordering a 6-D window view element by element.
    """
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    n, c, h, w = x.shape
    oh, ow = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    padded = np.zeros((n, h + 2 * ph, w + 2 * pw, c), x.dtype)
    padded[:, ph:ph + h, pw:pw + w, :] = x.transpose(0, 2, 3, 1)
    cols = np.empty((n, oh, ow, c, kh, kw), x.dtype)
    for i in range(kh):
        for j in range(kw):
            cols[..., i, j] = padded[:, i:i + sh * oh:sh, j:j + sw * ow:sw, :]
    return cols.reshape(n * oh * ow, c * kh * kw)


def col2im(cols, x_shape, kernel, stride, padding):
    """Adjoint of :func:`im2col`: sum each patch gradient back onto the (N, C, H, W) input.

    Sums channels-last, in kernel-offset order (i, j); the result is an (N, C, H, W) view.
    """
    (n, c, h, w), (kh, kw), (sh, sw), (ph, pw) = x_shape, kernel, stride, padding
    oh, ow = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    patches = cols.reshape(n, oh, ow, c, kh, kw)
    grad = np.zeros((n, h + 2 * ph, w + 2 * pw, c), cols.dtype)
    for i in range(kh):
        for j in range(kw):
            grad[:, i:i + sh * oh:sh, j:j + sw * ow:sw, :] += patches[..., i, j]
    return grad[:, ph:ph + h, pw:pw + w, :].transpose(0, 3, 1, 2)


class Conv2d(_Layer):
    """2-D convolution (cross-correlation) as im2col followed by the layer GEMM; NCHW tensors.

    Parameters are those of :class:`Linear` with ``c_in``/``c_out`` channels and ``kernel``, ``stride``,
    ``padding`` (int or (h, w) pair). ``w`` is the GEMM matrix of shape (c_in*kh*kw, c_out), rows
    ordered (c, i, j) like the :func:`im2col` columns.
    """

    def __init__(self, name, c_in, c_out, kernel, rng, stage, quant=None, stride=1, padding=0, dtype=np.float32):
        for arg, v in (("c_in", c_in), ("c_out", c_out)):
            if not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"{arg} must be a positive int, got {v!r}")
        self.c_in, self.c_out = c_in, c_out
        self.kernel, self.stride = _int_pair("kernel", kernel), _int_pair("stride", stride)
        self.padding = _int_pair("padding", padding)
        if min(self.kernel + self.stride) < 1 or min(self.padding) < 0:
            raise ValueError(f"kernel and stride must be >= 1 and padding >= 0, got kernel={kernel!r}, "
                             f"stride={stride!r}, padding={padding!r}")
        super().__init__(name, c_in * self.kernel[0] * self.kernel[1], c_out, rng, stage, quant, dtype)

    def output_shape(self, in_hw):
        """(OH, OW) for an input of spatial size ``in_hw``."""
        return tuple((size + 2 * p - k) // st + 1
                     for size, k, st, p in zip(in_hw, self.kernel, self.stride, self.padding))

    def _to_matrix(self, a):
        if a.ndim != 4 or a.shape[1] != self.c_in:
            raise ValueError(f"layer {self.name} expects input (N, {self.c_in}, H, W), got shape {a.shape}")
        if min(self.output_shape(a.shape[2:])) < 1:
            raise ValueError(f"layer {self.name}: input {a.shape} is smaller than the kernel {self.kernel}")
        self._out_hw = self.output_shape(a.shape[2:])
        return im2col(a, self.kernel, self.stride, self.padding)

    def _from_matrix(self, y):
        oh, ow = self._out_hw
        return y.reshape(self._in_shape[0], oh, ow, self.c_out).transpose(0, 3, 1, 2)

    def _to_rows(self, grad_y):
        return grad_y.transpose(0, 2, 3, 1).reshape(-1, self.c_out)

    def _from_matrix_grad(self, grad_a):
        return col2im(grad_a, self._in_shape, self.kernel, self.stride, self.padding)
