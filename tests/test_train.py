"""golden.training.train / schemes / data / models / table: the training step, determinism, seam, bad input."""

import json
import random
import socket

import numpy as np
import pytest

from golden import units
from golden.training import data, train
from golden.training.layers import Quant, RecordingBackend
from golden.training.models import build_model
from golden.training.schemes import SCHEMES, get_scheme
from golden.training.table import markdown, summarize


@pytest.fixture(scope="module")
def digits():
    return data.load("digits")


def test_digits_split_is_stratified_75_25(digits):
    assert digits.x_train.shape == (1347, 1, 8, 8) and digits.x_test.shape == (450, 1, 8, 8)
    assert digits.x_train.min() == 0 and digits.x_train.max() == 1
    train_share = np.bincount(digits.y_train) / np.bincount(np.concatenate([digits.y_train, digits.y_test]))
    assert np.all(np.abs(train_share - 0.75) < 0.01)


def test_mnist1d_is_generated_without_network(tmp_path, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("mnist1d generation tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    np.random.seed(123)
    random.seed(123)
    before = (np.random.random(), random.random())
    np.random.seed(123)
    random.seed(123)
    ds = data.load("mnist1d", cache_dir=tmp_path)
    assert (np.random.random(), random.random()) == before, "mnist1d changed the global RNG state"
    assert ds.x_train.shape == (4000, 1, 1, 40) and ds.x_test.shape == (1000, 1, 1, 40)
    assert (tmp_path / "mnist1d.npz").exists()
    again = data.load("mnist1d", cache_dir=tmp_path)
    assert np.array_equal(again.x_train, ds.x_train)


def test_softmax_cross_entropy_value_and_gradient(rng, seed):
    logits = rng.standard_normal((5, 4))
    labels = rng.integers(0, 4, 5)
    loss, grad = train.softmax_cross_entropy(logits, labels)
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    assert np.isclose(loss, -np.log(p[np.arange(5), labels]).mean(), rtol=1e-12)
    eps, numeric = 1e-6, np.zeros_like(logits)
    for index in np.ndindex(logits.shape):
        step = np.zeros_like(logits)
        step[index] = eps
        numeric[index] = (train.softmax_cross_entropy(logits + step, labels)[0]
                          - train.softmax_cross_entropy(logits - step, labels)[0]) / (2 * eps)
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-9, err_msg=f"seed {seed}")


def _params(model):
    return [p.copy() for layer in model.layers for p in layer.params.values()]


def _steps(digits, scheme, seed, n_steps=3, backend=None):
    model = build_model("mlp", digits, get_scheme(scheme), np.random.default_rng(seed),
                        quant=get_scheme(scheme).make_quant(backend))
    opt = train.SGD(model)
    losses = [train.train_step(model, opt, digits.x_train[i * 32:(i + 1) * 32],
                               digits.y_train[i * 32:(i + 1) * 32], lr=0.05).loss for i in range(n_steps)]
    return losses, _params(model)


@pytest.mark.parametrize("scheme", ["fp32", "fourbit", "all4bit", "radix2", "mxfp4", "nvfp4"])
def test_training_steps_are_deterministic_per_seed(digits, scheme):
    losses, params = _steps(digits, scheme, seed=5)
    losses2, params2 = _steps(digits, scheme, seed=5)
    assert losses == losses2 and all(np.array_equal(a, b) for a, b in zip(params, params2))
    losses3, _ = _steps(digits, scheme, seed=6)
    assert losses3 != losses


def test_recording_backend_reproduces_the_step_bit_for_bit(digits):
    recorder = RecordingBackend()
    losses, params = _steps(digits, "fourbit", seed=2, n_steps=2, backend=recorder)
    reference_losses, reference = _steps(digits, "fourbit", seed=2, n_steps=2)
    assert losses == reference_losses and all(np.array_equal(a, b) for a, b in zip(params, reference))
    # per step: 2 hidden 4-bit layers x (forward gemm_int4 + backward dX phase 0 + dW phase 1)
    per_step = [(c.name, c.args.get("phase")) for c in recorder.calls[:6]]
    assert per_step == [("gemm_int4", None), ("gemm_int4", None), ("gemm_fp4_int4", 0), ("gemm_fp4_int4", 1),
                        ("gemm_fp4_int4", 0), ("gemm_fp4_int4", 1)]
    assert len(recorder.calls) == 12
    for call in recorder.calls:          # what the RTL array must reproduce: the golden.units result
        golden_gemm = getattr(units, call.name)
        assert np.array_equal(golden_gemm(**call.args).acc, call.result.acc)


def test_all4bit_quantizes_first_and_last_layers(digits):
    model = build_model("mlp", digits, get_scheme("all4bit"), np.random.default_rng(0))
    assert len(model.quantized_layers) == len(model.layers) == 4
    fourbit = build_model("cnn", digits, get_scheme("fourbit"), np.random.default_rng(0))
    assert [layer.quant is not None for layer in fourbit.layers] == [False, True, True, False]
    assert build_model("cnn", digits, get_scheme("fp32"), np.random.default_rng(0)).quantized_layers == []


def test_two_epochs_improve_the_loss(digits):
    result = train.run(train.RunConfig("digits", "mlp", "fourbit", epochs=2, seed=0), dataset=digits)
    first, second = result["history"]
    assert second["train_loss"] < first["train_loss"] < np.log(10)
    assert second["test_acc"] > 0.8
    stats = result["grad_stats_last_epoch"]
    assert set(stats) == {"linear1", "linear2"} and sum(stats["linear1"]["histogram"]["dW"]) > 0
    json.dumps(result)


@pytest.mark.parametrize("scheme", sorted(SCHEMES))
def test_every_scheme_trains_one_step(digits, scheme):
    losses, params = _steps(digits, scheme, seed=0, n_steps=2)
    assert all(np.isfinite(losses)) and all(np.isfinite(p).all() for p in params)


def test_bad_names_and_numbers():
    with pytest.raises(ValueError, match="dataset must be one of digits, mnist1d, pydoc; got 'cifar'"):
        train.RunConfig("cifar", "mlp", "fp32", 1)
    with pytest.raises(ValueError, match="model must be one of"):
        train.RunConfig("digits", "resnet", "fp32", 1)
    with pytest.raises(ValueError, match="scheme must be one of"):
        train.RunConfig("digits", "mlp", "int2", 1)
    with pytest.raises(ValueError, match="epochs must be a positive integer, got 0"):
        train.RunConfig("digits", "mlp", "fp32", 0)
    with pytest.raises(ValueError, match="batch_size must be a positive integer, got -4"):
        train.RunConfig("digits", "mlp", "fp32", 1, batch_size=-4)
    with pytest.raises(ValueError, match="dataset must be one of"):
        data.load("mnist")
    with pytest.raises(ValueError, match="scheme must be one of"):
        get_scheme("fp8")
    with pytest.raises(ValueError, match="backend must be None"):
        get_scheme("fp32").make_quant(units)
    assert isinstance(get_scheme("fourbit").make_quant(), Quant)


@pytest.mark.parametrize("argv, message", [
    (["--dataset", "cifar", "--model", "mlp", "--scheme", "fp32", "--epochs", "1"], "invalid choice: 'cifar'"),
    (["--dataset", "digits", "--model", "mlp", "--scheme", "fp32", "--epochs", "0"], "must be a positive integer"),
    (["--dataset", "digits", "--model", "mlp", "--scheme", "fp32", "--epochs", "1", "--batch-size", "0"],
     "must be a positive integer"),
    (["--dataset", "digits", "--model", "mlp", "--scheme", "fp4"], "invalid choice: 'fp4'"),
    (["--seed", "-1"], "must be a non-negative integer, got -1"),
])
def test_cli_rejects_bad_arguments(usage_error, argv, message):
    assert message in usage_error(train.main, argv)


def test_cli_defaults_are_the_accuracy_table_settings():
    from golden.training import table
    args = train.parse_args([])
    assert (args.dataset, args.model, args.scheme, args.seed) == ("digits", "mlp", "fourbit", 0)
    epochs = {entry.dataset: entry.epochs for entry in table.FULL}
    assert args.epochs == epochs["digits"]
    assert train.parse_args(["--dataset", "mnist1d"]).epochs == epochs["mnist1d"]
    assert train.parse_args(["--epochs", "3"]).epochs == 3


def test_cli_help_gives_every_default(capsys):
    with pytest.raises(SystemExit):
        train.parse_args(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    for fragment in ("--dataset {digits,mnist1d} default: digits", "--model {mlp,cnn} default: mlp",
                     "default: fourbit", "default: the accuracy table's, 20 for digits, 30 for mnist1d",
                     "--seed SEED default: 0", "64 for digits, 128 for mnist1d", "0.05 for digits, 0.1 for mnist1d"):
        assert fragment in text


def test_cli_reports_a_diverging_run(capsys):
    code = train.main(["--dataset", "digits", "--model", "mlp", "--scheme", "fourbit", "--epochs", "1",
                       "--lr", "1e6", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 1 and "diverged in epoch 1" in err


def test_cli_json_result(capsys):
    assert train.main(["--dataset", "digits", "--model", "mlp", "--scheme", "fp32", "--epochs", "1", "--json",
                       "--no-progress", "--batch-size", "128"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["config"]["batch_size"] == 128 and 0.5 < result["final_test_acc"] <= 1


def test_table_summary_marks_divergence_and_gaps():
    def fake(scheme, seed, acc=None):
        config = {"dataset": "digits", "model": "mlp", "scheme": scheme, "epochs": 2, "seed": seed,
                  "batch_size": 64, "lr": 0.05}
        if acc is None:
            return {"config": config, "diverged": "boom"}
        return {"config": config, "final_test_acc": acc, "epoch_seconds": 1.0 if scheme == "fp32" else 2.0,
                "epoch_cpu_seconds": 1.0 if scheme == "fp32" else 2.5, "wall_seconds": 3.0, "history": []}

    results = [fake("fp32", 0, 0.98), fake("fp32", 1, 0.96), fake("fourbit", 0, 0.965), fake("fourbit", 1, 0.955),
               fake("radix2", 0), fake("radix2", 1, 0.5)]
    rows, ratios, targets = summarize(results)
    by_scheme = {r["scheme"]: r for r in rows}
    assert np.isclose(by_scheme["fourbit"]["gap_to_fp32"], 1.0)
    assert np.isclose(by_scheme["fp32"]["acc_std"], np.std([98, 96], ddof=1))
    assert ratios == {"digits-mlp": 2.5}
    assert [t["met"] for t in targets] == [True, True]
    text = markdown(rows, targets, {"mode": "test", "seeds": [0, 1], "workers": 2, "total_wall_seconds": 1})
    assert "diverged (1/2 seeds)" in text and "nan" not in text.lower()
