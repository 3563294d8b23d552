"""golden.training.layers: FP32 gradients vs finite differences, and the 4-bit layers' exact golden-unit calls."""

import numpy as np
import pytest

from golden import fp4, int4, units
from golden.training.layers import (Conv2d, DataQuantizer, FixedScale, Identity, Linear, NonFiniteGradient, Pact, Quant,
                           Radix4Gradients, RecordingBackend, Relu, col2im, im2col)

F64 = np.float64


def _direct_conv(x, w, kernel, stride, padding):
    """Reference convolution by explicit loops over output positions (test-only)."""
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    n, c, h, wd = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    oh, ow = (h + 2 * ph - kh) // sh + 1, (wd + 2 * pw - kw) // sw + 1
    filt = w.T.reshape(-1, c, kh, kw)
    out = np.zeros((n, filt.shape[0], oh, ow))
    for i in range(oh):
        for j in range(ow):
            patch = xp[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw]
            out[:, :, i, j] = np.einsum("nchw,ochw->no", patch, filt)
    return out


@pytest.mark.parametrize("kernel,stride,padding", [((3, 3), (1, 1), (1, 1)), ((3, 3), (2, 2), (1, 1)),
                                                   ((1, 5), (1, 2), (0, 2)), ((2, 3), (1, 2), (0, 1))])
def test_conv_forward_matches_direct_convolution(rng, seed, kernel, stride, padding):
    layer = Conv2d("c", 3, 4, kernel, rng, Identity(), stride=stride, padding=padding, dtype=F64)
    x = rng.standard_normal((2, 3, 5, 7))
    expected = _direct_conv(x, layer.params["w"], kernel, stride, padding) + layer.params["b"][:, None, None]
    np.testing.assert_allclose(layer.forward(x), expected, rtol=1e-12, atol=1e-12, err_msg=f"seed {seed}")


def test_col2im_is_the_adjoint_of_im2col(rng, seed):
    args = ((3, 3), (2, 2), (1, 1))
    x = rng.standard_normal((2, 3, 6, 5))
    cols = rng.standard_normal(im2col(x, *args).shape)
    lhs = np.sum(im2col(x, *args) * cols)
    rhs = np.sum(x * col2im(cols, x.shape, *args))
    assert np.isclose(lhs, rhs, rtol=1e-12), f"seed {seed}: <im2col x, c> = {lhs} but <x, col2im c> = {rhs}"


def _numeric_grad(f, array, eps=1e-6):
    grad = np.zeros_like(array)
    for index in np.ndindex(array.shape):
        saved = array[index]
        array[index] = saved + eps
        up = f()
        array[index] = saved - eps
        down = f()
        array[index] = saved
        grad[index] = (up - down) / (2 * eps)
    return grad


@pytest.mark.parametrize("kind", ["linear", "conv"])
def test_fp32_layer_gradients_match_finite_differences(rng, seed, kind):
    if kind == "linear":
        layer = Linear("l", 6, 4, rng, Relu(), dtype=F64)
        x = rng.standard_normal((5, 2, 3))
    else:
        layer = Conv2d("c", 2, 3, 3, rng, Relu(), stride=2, padding=1, dtype=F64)
        x = rng.standard_normal((2, 2, 5, 4))
    x[np.abs(x) < 1e-3] = 0.5                       # keep finite differences away from the ReLU kink
    probe = rng.standard_normal(layer.forward(x).shape)

    def loss():
        return float(np.sum(layer.forward(x) * probe))

    loss()
    grad_x = layer.backward(probe)
    for name in ("w", "b"):
        np.testing.assert_allclose(layer.grads[name], _numeric_grad(loss, layer.params[name]), rtol=1e-6,
                                   atol=1e-8, err_msg=f"seed {seed}: d{name}")
    np.testing.assert_allclose(grad_x, _numeric_grad(loss, x), rtol=1e-6, atol=1e-8, err_msg=f"seed {seed}: dx")


def _expected_backward(g, w_codes, w_step, x_codes, x_step, x_signed, phases=(0, 1)):
    """The contract's backward, computed here from golden.fp4 and an int64 matmul (not golden.units)."""
    g16 = g.astype(np.float16)
    s = fp4.grad_scale(g16)
    codes0, _ = fp4.quantize(g16, s, phases[0])
    codes1, _ = fp4.quantize(g16, s, phases[1])
    unit = 2.0 ** (s - 13)
    grad_a = (fp4.code_multiplier(codes0, phases[0]) @ w_codes.astype(np.int64).T) * (w_step * unit)
    grad_w = (fp4.code_multiplier(codes1, phases[1]).T @ x_codes.astype(np.int64)).T * (x_step * unit)
    return codes0, codes1, grad_a, grad_w


def _assert_call(call, name, expected_args, seed):
    assert call.name == name, f"seed {seed}: expected a {name} call, got {call.name}"
    for key, value in expected_args.items():
        got = call.args[key]
        if isinstance(value, np.ndarray):
            assert got.shape == value.shape and np.array_equal(got, value), \
                f"seed {seed}: {name} argument {key} differs from the golden codes"
        else:
            assert got == value, f"seed {seed}: {name} argument {key} = {got!r}, expected {value!r}"


def test_quantized_linear_makes_exactly_the_contract_unit_calls(rng, seed):
    backend = RecordingBackend()
    layer = Linear("l", 12, 5, rng, Pact(1.5, F64), quant=Quant(backend=backend), dtype=F64)
    layer.params["b"][:] = rng.standard_normal(5)
    x = rng.standard_normal((7, 12)) * 1.5
    y = layer.forward(x)
    x_codes, x_step = int4.pact(x, 1.5)
    w_codes, w_step = int4.sawb(layer.params["w"])
    assert len(backend.calls) == 1
    _assert_call(backend.calls[0], "gemm_int4",
                 dict(a=x_codes, b=w_codes, signed_a=False, width=units.FWD_WIDTH), seed)
    acc = x_codes.astype(np.int64) @ w_codes.astype(np.int64)
    assert np.array_equal(y, acc * (x_step * w_step) + layer.params["b"]), f"seed {seed}: forward dequantization"

    g = rng.standard_normal(y.shape) * 1e-3
    grad_x = layer.backward(g)
    codes0, codes1, grad_a, grad_w = _expected_backward(g, w_codes, w_step, x_codes, x_step, False)
    assert [c.name for c in backend.calls[1:]] == ["gemm_fp4_int4", "gemm_fp4_int4"]
    _assert_call(backend.calls[1], "gemm_fp4_int4",
                 dict(codes=codes0, phase=0, b=w_codes.T, signed_b=True, width=units.BWD_WIDTH), seed)
    _assert_call(backend.calls[2], "gemm_fp4_int4",
                 dict(codes=codes1.T, phase=1, b=x_codes, signed_b=False, width=units.BWD_WIDTH), seed)
    assert np.array_equal(layer.grads["w"], grad_w), f"seed {seed}: dW dequantization"
    assert np.array_equal(layer.grads["b"], g.astype(np.float16).astype(F64).sum(0)), f"seed {seed}: db"
    expected_x, expected_alpha = int4.pact_backward(x, 1.5, grad_a)
    assert np.array_equal(grad_x, expected_x), f"seed {seed}: dX dequantization and PACT backward"
    assert layer.grads["alpha"] == expected_alpha


def test_quantized_conv_feeds_im2col_codes_to_the_units(rng, seed):
    backend = RecordingBackend()
    layer = Conv2d("c", 2, 3, 3, rng, Pact(2.0, F64), quant=Quant(backend=backend), stride=2, padding=1,
                   dtype=F64)
    x = rng.standard_normal((2, 2, 5, 5)) * 2
    y = layer.forward(x)
    x_codes, x_step = int4.pact(x, 2.0)
    cols = im2col(x_codes, (3, 3), (2, 2), (1, 1))
    w_codes, w_step = int4.sawb(layer.params["w"])
    _assert_call(backend.calls[0], "gemm_int4", dict(a=cols, b=w_codes, signed_a=False), seed)
    g = rng.standard_normal(y.shape) * 1e-2
    grad_x = layer.backward(g)
    rows = g.transpose(0, 2, 3, 1).reshape(-1, 3)
    codes0, codes1, grad_a, grad_w = _expected_backward(rows, w_codes, w_step, cols, x_step, False)
    _assert_call(backend.calls[1], "gemm_fp4_int4", dict(codes=codes0, phase=0, b=w_codes.T), seed)
    _assert_call(backend.calls[2], "gemm_fp4_int4", dict(codes=codes1.T, phase=1, b=cols), seed)
    assert np.array_equal(layer.grads["w"], grad_w), f"seed {seed}: conv dW"
    expected_x, _ = int4.pact_backward(x, 2.0, col2im(grad_a, x.shape, (3, 3), (2, 2), (1, 1)))
    assert np.array_equal(grad_x, expected_x), f"seed {seed}: conv dX"


def test_the_layer_uses_what_the_backend_returns(rng):
    class OffByOne:
        def gemm_int4(self, a, b, signed_a, width):
            result = units.gemm_int4(a, b, signed_a=signed_a, width=width)
            return units.Accumulated(result.acc + 1, result.overflow)

        gemm_fp4_int4 = staticmethod(units.gemm_fp4_int4)

    x = rng.standard_normal((4, 8))
    exact = Linear("l", 8, 3, np.random.default_rng(1), Pact(2.0, F64), quant=Quant(), dtype=F64)
    shifted = Linear("l", 8, 3, np.random.default_rng(1), Pact(2.0, F64), quant=Quant(backend=OffByOne()),
                     dtype=F64)
    step = (2.0 / 15) * int4.sawb(exact.params["w"])[1]
    np.testing.assert_allclose(shifted.forward(x) - exact.forward(x), step, rtol=1e-9)


def test_first_layer_skips_dx_and_uses_signed_data_codes(rng, seed):
    backend = RecordingBackend()
    x = rng.standard_normal((6, 10))
    stage = DataQuantizer.from_data(x)
    assert stage.signed and stage.step == int4.sawb_alpha(x) / 7
    layer = Linear("first", 10, 4, rng, stage, quant=Quant(backend=backend), dtype=F64)
    y = layer.forward(x)
    assert backend.calls[0].args["signed_a"] is True
    assert np.array_equal(backend.calls[0].args["a"], np.clip(np.rint(x / stage.step), -7, 7))
    assert layer.backward(rng.standard_normal(y.shape) * 1e-2) is None
    assert [(c.name, c.args["phase"], c.args["signed_b"]) for c in backend.calls[1:]] == \
        [("gemm_fp4_int4", 1, True)], f"seed {seed}"
    unsigned = DataQuantizer.from_data(np.abs(x))
    assert not unsigned.signed and unsigned.step == np.abs(x).max() / 15


def test_no_tpr_uses_phase_0_for_both_gemms(rng):
    backend = RecordingBackend()
    layer = Linear("l", 8, 3, rng, Pact(2.0, F64), quant=Quant(backend=backend, grads=Radix4Gradients(tpr=False)),
                   dtype=F64)
    layer.backward(rng.standard_normal(layer.forward(rng.standard_normal((4, 8))).shape) * 1e-2)
    assert [c.args.get("phase") for c in backend.calls] == [None, 0, 0]
    assert np.array_equal(backend.calls[1].args["codes"], backend.calls[2].args["codes"].T)


def test_fixed_scale_keeps_the_first_scale_and_flags_saturation(rng):
    quant = Quant(scale=FixedScale())
    layer = Linear("l", 8, 3, rng, Pact(2.0, F64), quant=quant, dtype=F64)
    y = layer.forward(rng.standard_normal((4, 8)))
    layer.backward(np.full(y.shape, 2.0**-6))
    assert quant.scale.s == -6
    layer.forward(rng.standard_normal((4, 8)))
    layer.backward(np.full(y.shape, 2.0**-2))        # 16x the top level: saturates, the scale stays
    assert quant.scale.s == -6 and layer.stats.fp4_overflow == {"dX": y.size, "dW": y.size}


@pytest.mark.parametrize("bad", [np.inf, np.nan, 1e6])
def test_non_finite_float16_gradient_is_an_error(rng, bad):
    layer = Linear("hidden2", 8, 3, rng, Pact(2.0, F64), quant=Quant(), dtype=F64)
    g = np.zeros(layer.forward(rng.standard_normal((4, 8))).shape)
    g[1, 2] = bad
    with pytest.raises(NonFiniteGradient, match="hidden2"):
        layer.backward(g)


def test_gradient_statistics_count_flushes_and_codes(rng):
    layer = Linear("l", 4, 2, rng, Pact(2.0, F64), quant=Quant(), dtype=F64)
    layer.forward(rng.standard_normal((2, 4)))
    # s = 0: phase 0 levels 1, 2^-2, ..., 2^-12; 2^-14 flushes (below half of 2^-12), 0 stays 0
    layer.backward(np.array([[1.0, 2.0**-14], [0.0, -2.0**-4]]))
    stats = layer.stats.as_dict()
    assert stats["nonzero"] == {"dX": 3, "dW": 3}
    assert stats["flushed"]["dX"] == 1
    assert stats["histogram"]["dX"][7] == 1 and stats["histogram"]["dX"][0b1000 | 5] == 1
    assert stats["histogram"]["dX"][0] == 2


@pytest.mark.parametrize("make, message", [
    (lambda r: Linear("l", 0, 3, r, Relu()), "n_in"),
    (lambda r: Linear("l", 3, -1, r, Relu()), "n_out"),
    (lambda r: Linear("l", 3, 2, r, Pact(1.0)), "does not fit"),
    (lambda r: Linear("l", 3, 2, r, Relu(), quant=Quant()), "does not fit"),
    (lambda r: Conv2d("c", 1, 2, 0, r, Relu()), "kernel"),
    (lambda r: Conv2d("c", 1, 2, 3, r, Relu(), padding=-1), "padding"),
    (lambda r: DataQuantizer(0.0, signed=False), "step"),
])
def test_bad_layer_parameters(rng, make, message):
    with pytest.raises(ValueError, match=message):
        make(rng)


def test_bad_layer_types_and_shapes(rng):
    for kernel in ("3", 2.5, (3,), (3, True)):
        with pytest.raises(TypeError, match="kernel must be an int or a pair of ints"):
            Conv2d("c", 1, 2, kernel, rng, Relu())
    with pytest.raises(TypeError, match="rng"):
        Linear("l", 3, 2, 42, Relu())
    with pytest.raises(ValueError, match="expects 3 input features"):
        Linear("l", 3, 2, rng, Relu()).forward(np.ones((2, 4), np.float32))
    with pytest.raises(ValueError, match=r"expects input \(N, 2, H, W\)"):
        Conv2d("c", 2, 2, 3, rng, Relu()).forward(np.ones((1, 3, 4, 4), np.float32))
    with pytest.raises(ValueError, match="smaller than the kernel"):
        Conv2d("c", 1, 2, 5, rng, Relu()).forward(np.ones((1, 1, 3, 3), np.float32))
