"""The MXFP4/NVFP4 training schemes: each GEMM against golden.mx quantize/decode, and runs that do not learn."""

import numpy as np
import pytest

from golden import mx
from golden.training import data, train
from golden.training.layers import BlockScaledQuant, Linear, Relu
from golden.training.models import build_model
from golden.training.schemes import get_scheme
from golden.training.table import markdown, summarize


@pytest.fixture(scope="module")
def digits():
    return data.load("digits")


@pytest.fixture(autouse=True)
def one_blas_thread():
    """Small float matmuls on a shared machine: one BLAS thread is several times faster than many."""
    from threadpoolctl import threadpool_limits
    with threadpool_limits(1):
        yield


def pad(x, block):
    return np.pad(np.asarray(x, np.float32), ((0, 0), (0, -x.shape[1] % block)))


def golden_q(x, fmt, rounding="even", rng=None):
    """decode(quantize(x)) by the code-level golden functions, blocks along the last axis."""
    if fmt == "mxfp4":
        return mx.mxfp4_decode(*mx.mxfp4_quantize(np.ascontiguousarray(x), rounding, rng))
    return mx.nvfp4_decode(*mx.nvfp4_quantize(np.ascontiguousarray(x), rounding, rng))


def golden_q2d(w):
    padded = np.pad(w, ((0, -w.shape[0] % 16), (0, -w.shape[1] % 16)))
    return mx.nvfp4_decode_2d(*mx.nvfp4_quantize_2d(np.ascontiguousarray(padded)))[:w.shape[0], :w.shape[1]]


@pytest.mark.parametrize("scheme", ["mxfp4", "nvfp4", "mxfp4_rn", "nvfp4_rn"])
def test_block_scaled_layer_gemms_equal_golden_quantize_decode(rng, seed, scheme):
    s = get_scheme(scheme)
    fmt, block = s.block_format, 32 if s.block_format == "mxfp4" else 16
    quant = s.make_quant(rng=np.random.default_rng(seed))
    layer = Linear("l", 72, 40, rng, Relu(), quant=quant)        # 72, 40: not multiples of the blocks
    x = rng.standard_normal((24, 72)).astype(np.float32)         # 24 rows: the dW reduction axis is padded
    grad_y = (rng.standard_normal((24, 40)) * 1e-3).astype(np.float32)
    y = layer.forward(x)
    grad_x = layer.backward(grad_y)

    a, w = np.maximum(x, 0), layer.params["w"]
    qw = golden_q2d(w) if fmt == "nvfp4" else None
    qw_t = pad(qw.T, block) if qw is not None else golden_q(pad(w.T, block), fmt)
    qw_n = pad(qw, block) if qw is not None else golden_q(pad(w, block), fmt)
    expected_y = golden_q(pad(a, block), fmt) @ qw_t.T + layer.params["b"]
    assert np.array_equal(y, expected_y), f"seed {seed}: forward differs"

    replay = np.random.default_rng(seed)                         # the layer's draws, in the layer's order
    rounding = "stochastic" if s.block_recipe else "even"
    q_dx = golden_q(pad(grad_y, block), fmt, rounding, replay if s.block_recipe else None)
    expected_dx = (q_dx @ qw_n.T)[:, :72]
    a_t, g_t = pad(a.T, block), pad(grad_y.T, block)
    if s.block_recipe:
        signs = mx.random_signs(block, replay)
        a_t, g_t = mx.hadamard(a_t, signs), mx.hadamard(g_t, signs)
    expected_dw = golden_q(a_t, fmt) @ golden_q(g_t, fmt, rounding, replay if s.block_recipe else None).T
    assert np.array_equal(layer.grads["w"], expected_dw), f"seed {seed}: dW differs"
    assert np.array_equal(grad_x, np.where(x > 0, expected_dx, 0)), f"seed {seed}: dX differs"
    assert np.array_equal(layer.grads["b"], grad_y.sum(axis=0))


def test_nvfp4_weights_are_one_matrix_for_both_gemms(rng):
    layer = Linear("l", 48, 32, rng, Relu(), quant=get_scheme("nvfp4").make_quant())
    layer.forward(rng.standard_normal((16, 48)).astype(np.float32))
    assert np.array_equal(layer._qw_t[:, :48], layer._qw[:, :32].T)
    mx_layer = Linear("l", 64, 32, rng, Relu(), quant=get_scheme("mxfp4").make_quant())
    mx_layer.forward(rng.standard_normal((16, 64)).astype(np.float32))
    assert not np.array_equal(mx_layer._qw_t, mx_layer._qw.T)   # MXFP4: 1-D blocks along each reduction axis


def test_block_stats_count_codes_and_invalid_blocks(rng):
    layer = Linear("l", 64, 32, rng, Relu(), quant=get_scheme("mxfp4_rn").make_quant())
    x = rng.standard_normal((32, 64)).astype(np.float32)
    x[3, 5] = np.inf                                             # the ReLU keeps Inf (and makes NaN 0)
    layer.forward(x)
    assert layer.stats.invalid_blocks == 1
    layer.forward(np.abs(x[:, ::-1]).copy())                      # Inf moves into another block: counted again
    assert layer.stats.invalid_blocks == 2
    layer.backward(np.zeros((32, 32), np.float32))
    assert layer.stats.nonzero_codes == 0
    layer.backward(np.ones((32, 32), np.float32))
    assert layer.stats.as_dict()["codes_nonzero"] == {"dX": 32 * 32, "dW": 32 * 32}


def test_block_scaled_quant_rejects_an_unknown_format(rng):
    with pytest.raises(ValueError, match="'fp8'"):
        BlockScaledQuant("fp8", True, True, rng)


@pytest.mark.parametrize("scheme", ["mxfp4", "nvfp4"])
def test_block_scaled_schemes_learn_digits(digits, scheme):
    result = train.run(train.RunConfig("digits", "mlp", scheme, epochs=2, seed=0), dataset=digits)
    assert result["final_test_acc"] > 0.85 and result["invalid_blocks"] == 0
    again = train.run(train.RunConfig("digits", "mlp", scheme, epochs=2, seed=0), dataset=digits)
    assert again["history"][-1]["test_loss"] == result["history"][-1]["test_loss"]
    model = build_model("cnn", digits, get_scheme(scheme), np.random.default_rng(0))
    assert [layer.quant is not None for layer in model.layers] == [False, True, True, False]


def test_all_zero_gradients_fail_the_run(capsys):
    code = train.main(["--dataset", "digits", "--model", "mlp", "--scheme", "fourbit", "--epochs", "2",
                       "--lr", "2", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 1 and "did not learn: every 4-bit gradient code was zero in epoch 2" in err


def test_chance_accuracy_fails_the_run(digits, monkeypatch):
    monkeypatch.setattr(train, "evaluate", lambda model, x, y: (2.3, 0.12))
    with pytest.raises(train.NotLearning, match=r"best test accuracy 12.0% stayed below 1.5 x chance \(10.0%\)"):
        train.run(train.RunConfig("digits", "mlp", "fp32", epochs=1, seed=0), dataset=digits)


def test_table_reports_runs_that_do_not_learn():
    config = {"dataset": "digits", "model": "mlp", "epochs": 2, "batch_size": 64, "lr": 0.05}
    results = [{"config": {**config, "scheme": "fp32", "seed": 0}, "final_test_acc": 0.97, "epoch_seconds": 1.0,
                "epoch_cpu_seconds": 1.0, "wall_seconds": 2.0, "history": []},
               {"config": {**config, "scheme": "mxfp4", "seed": 0}, "not_learning": "stuck"},
               {"config": {**config, "scheme": "mxfp4", "seed": 1}, "final_test_acc": 0.965, "epoch_seconds": 2.0,
                "epoch_cpu_seconds": 2.9, "wall_seconds": 2.0, "history": []}]
    rows, _, targets = summarize(results)
    text = markdown(rows, targets, {"mode": "test", "seeds": [0, 1], "workers": 2, "total_wall_seconds": 1})
    assert "not learning (1/2 seeds)" in text
    assert [(t["what"], t["met"]) for t in targets] == [("digits-mlp: mxfp4 within 1.0 points of fp32", True),
                                                        ("digits-mlp: mxfp4 epoch <= 3.0x fp32 epoch", True)]
