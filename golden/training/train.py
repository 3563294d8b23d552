"""The fourbit training step and the training driver (docs/training.md).

Library use::

    data = golden.training.data.load("digits")
    model = golden.training.models.build_model("mlp", data, golden.training.schemes.get_scheme("fourbit"), rng)
    opt = SGD(model, lr=0.05)
    result = train_step(model, opt, x_batch, y_batch, lr=0.05)   # StepResult(loss, correct)

Command line::

    python -m golden.training.train --dataset digits --model mlp --scheme fourbit --epochs 20 --seed 0 [--json]
    python -m golden.training.table [--quick]      # the whole accuracy table

Softmax cross-entropy (mean over the batch), SGD with momentum on FP32 master weights with a cosine
learning-rate schedule, L2 decay on weights and PACT alphas. A run is a pure function of its
configuration: all randomness comes from ``numpy.random.default_rng(seed)``.
"""

import argparse
import json
import math
import sys
import time
from dataclasses import asdict, dataclass
from typing import NamedTuple

import numpy as np

from . import data as datasets
from .layers import NonFiniteGradient
from .models import MODELS, build_model
from .runtime import single_blas_thread
from .schemes import SCHEMES, get_scheme

ALPHA_MIN = 1e-2        # PACT alpha is kept >= this (it must stay > 0)
EVAL_BATCH = 500
DEFAULTS = {"digits": {"batch_size": 64, "lr": 0.05}, "mnist1d": {"batch_size": 128, "lr": 0.1},
            "pydoc": {"batch_size": 16, "lr": 3e-3}}
LANGUAGE = ("pydoc", "transformer")     # the language-model dataset and model: golden.training.language
#: Epochs of the accuracy table (golden.training.table) and of a run without --epochs.
TABLE_EPOCHS = {"digits": 20, "mnist1d": 30}


CHANCE_FACTOR = 1.5     # a run whose best test accuracy is below this times chance (1 / classes) did not learn


class Diverged(FloatingPointError):
    """The loss or a parameter became non-finite (or a gradient overflowed float16)."""


class NotLearning(RuntimeError):
    """The run finished but did not learn: every 4-bit gradient was zero for an epoch, or the accuracy
    stayed at chance."""


class StepResult(NamedTuple):
    loss: float     #: mean cross-entropy of the batch (before the update)
    correct: int    #: correctly classified samples of the batch (before the update)


def softmax_cross_entropy(logits, labels):
    """Mean cross-entropy and its gradient with respect to ``logits`` (same dtype)."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    rows = np.arange(len(labels))
    grad = np.exp(log_p)
    grad[rows, labels] -= 1
    return float(-log_p[rows, labels].mean()), (grad / len(labels)).astype(logits.dtype)


class SGD:
    """SGD with momentum: v = m*v + g (+ decay*p for weights and alphas); p -= lr*v, in place."""

    DECAYED = ("w", "alpha")

    def __init__(self, model, momentum=0.9, weight_decay=5e-4):
        self.model, self.momentum, self.weight_decay = model, momentum, weight_decay
        self.velocity = [{k: np.zeros_like(p) for k, p in layer.params.items()} for layer in model.layers]

    def step(self, lr):
        for layer, velocity in zip(self.model.layers, self.velocity):
            for name, param in layer.params.items():
                grad = layer.grads[name]
                if name in self.DECAYED:
                    grad = grad + self.weight_decay * param
                velocity[name] *= self.momentum
                velocity[name] += grad
                param -= (lr * velocity[name]).astype(param.dtype)
            if "alpha" in layer.params:
                np.maximum(layer.params["alpha"], ALPHA_MIN, out=layer.params["alpha"])


def train_step(model, optimizer, x, y, lr):
    """One forward, backward and update on batch ``(x, y)``; raises :class:`Diverged` on non-finite values."""
    logits = model.forward(x)
    loss, grad = softmax_cross_entropy(logits, y)
    backward_and_update(model, optimizer, loss, grad, lr)
    return StepResult(loss, int((logits.argmax(axis=1) == y).sum()))


def backward_and_update(model, optimizer, loss, grad, lr, backward_errors=NonFiniteGradient):
    """Backward of ``grad`` (the loss gradient at the logits) and one optimizer step at ``lr``.

    Raises :class:`Diverged` on a non-finite ``loss``, on ``backward_errors`` from the backward pass,
    and on a parameter the step made non-finite.
    """
    if not math.isfinite(loss):
        raise Diverged(f"the loss is {loss}")
    try:
        model.backward(grad)
    except backward_errors as error:
        raise Diverged(str(error)) from error
    optimizer.step(lr)
    for layer in model.layers:
        for name, param in layer.params.items():
            if not np.isfinite(param).all():
                raise Diverged(f"parameter {name} of layer {layer.name} became non-finite")


def evaluate(model, x, y, batch_size=EVAL_BATCH):
    """``(mean loss, accuracy)`` of the model's forward pass on ``(x, y)``."""
    loss, correct = 0.0, 0
    for start in range(0, len(y), batch_size):
        logits = model.forward(x[start:start + batch_size])
        batch_loss, _ = softmax_cross_entropy(logits, y[start:start + batch_size])
        loss += batch_loss * len(logits)
        correct += int((logits.argmax(axis=1) == y[start:start + batch_size]).sum())
    return loss / len(y), correct / len(y)


def cosine_lr(lr, step, total):
    return lr * 0.5 * (1.0 + math.cos(math.pi * step / total))


@dataclass(frozen=True)
class RunConfig:
    dataset: str
    model: str
    scheme: str
    epochs: int
    seed: int = 0
    batch_size: int = None      # None: DEFAULTS[dataset]
    lr: float = None            # None: DEFAULTS[dataset]
    momentum: float = 0.9
    weight_decay: float = 5e-4

    def __post_init__(self):
        for name, known in (("dataset", datasets.DATASETS + LANGUAGE[:1]), ("model", MODELS + LANGUAGE[1:]),
                            ("scheme", SCHEMES)):
            if getattr(self, name) not in known:
                raise ValueError(f"{name} must be one of {', '.join(known)}; got {getattr(self, name)!r}")
        if (self.dataset == LANGUAGE[0]) != (self.model == LANGUAGE[1]):
            raise ValueError(f"the {LANGUAGE[1]} model goes with the {LANGUAGE[0]} dataset and only with it; "
                             f"got dataset {self.dataset!r}, model {self.model!r}")
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if name == "batch_size" and value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed!r}")
        if self.lr is not None and not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be finite and > 0, got {self.lr!r}")

    @property
    def learning_rate(self):
        return DEFAULTS[self.dataset]["lr"] if self.lr is None else self.lr

    @property
    def batch(self):
        return DEFAULTS[self.dataset]["batch_size"] if self.batch_size is None else self.batch_size

    def resolved(self):
        """The configuration as a dict with the defaults filled in."""
        return {**asdict(self), "lr": self.learning_rate, "batch_size": self.batch}


def run(config, progress=False, backend=None, dataset=None):
    """Train one configuration; returns a JSON-ready dict (history per epoch, final accuracy, timings).

    ``backend`` replaces the GEMM backend of the 4-bit layers; ``dataset`` a preloaded golden.training.data.Dataset.
    Raises :class:`Diverged` when the run diverges and :class:`NotLearning` when every 4-bit gradient code
    of an epoch is zero or the best test accuracy stays below CHANCE_FACTOR times chance.
    """
    if config.dataset == LANGUAGE[0]:
        raise ValueError(f"the {LANGUAGE[0]} language model trains with golden.training.language.run")
    data = dataset if dataset is not None else datasets.load(config.dataset)
    scheme = get_scheme(config.scheme)
    rng = np.random.default_rng(config.seed)
    model = build_model(config.model, data, scheme, rng, quant=scheme.make_quant(backend))
    optimizer = SGD(model, config.momentum, config.weight_decay)
    n, batch_size = len(data.y_train), config.batch
    batches = math.ceil(n / batch_size)
    history, started, invalid_blocks = [], time.perf_counter(), 0
    name = f"{config.dataset}-{config.model}-{config.scheme} seed {config.seed}"
    for epoch in range(config.epochs):
        for layer in model.quantized_layers:
            layer.stats.reset()
        order = rng.permutation(n)
        bar = _progress(batches, f"{config.dataset}-{config.model}-{config.scheme} s{config.seed} "
                                 f"epoch {epoch + 1}/{config.epochs}", progress)
        loss_sum, correct, tic, cpu = 0.0, 0, time.perf_counter(), time.process_time()
        for b in range(batches):
            idx = order[b * batch_size:(b + 1) * batch_size]
            lr = cosine_lr(config.learning_rate, epoch * batches + b, config.epochs * batches)
            try:
                step = train_step(model, optimizer, data.x_train[idx], data.y_train[idx], lr)
            except Diverged as error:
                bar.close()
                raise Diverged(f"{config.dataset}-{config.model}-{config.scheme} seed {config.seed} diverged "
                               f"in epoch {epoch + 1}: {error}") from error
            loss_sum += step.loss * len(idx)
            correct += step.correct
            seen = b * batch_size + len(idx)
            bar.set_postfix(loss=f"{loss_sum / seen:.4f}", acc=f"{correct / seen:.3f}", refresh=False)
            bar.update()
        seconds, cpu_seconds = time.perf_counter() - tic, time.process_time() - cpu
        test_loss, test_acc = evaluate(model, data.x_test, data.y_test)
        bar.set_postfix(loss=f"{loss_sum / n:.4f}", acc=f"{correct / n:.3f}", test_acc=f"{test_acc:.3f}")
        bar.close()
        history.append({"epoch": epoch + 1, "train_loss": loss_sum / n, "train_acc": correct / n,
                        "test_loss": test_loss, "test_acc": test_acc, "train_seconds": seconds,
                        "train_cpu_seconds": cpu_seconds})
        invalid_blocks += sum(getattr(layer.stats, "invalid_blocks", 0) for layer in model.quantized_layers)
        if model.quantized_layers and not sum(layer.stats.nonzero_codes for layer in model.quantized_layers):
            raise NotLearning(f"{name} did not learn: every 4-bit gradient code was zero in epoch {epoch + 1} "
                              f"(test accuracy {100 * test_acc:.1f}%)")
    chance = 1 / data.n_classes
    best = max(h["test_acc"] for h in history)
    if best < CHANCE_FACTOR * chance:
        raise NotLearning(f"{name} did not learn: the best test accuracy {100 * best:.1f}% stayed below "
                          f"{CHANCE_FACTOR} x chance ({100 * chance:.1f}%)")
    return {"config": config.resolved(), "final_test_acc": history[-1]["test_acc"], "history": history,
            "epoch_seconds": float(np.mean([h["train_seconds"] for h in history])),
            "epoch_cpu_seconds": float(np.mean([h["train_cpu_seconds"] for h in history])),
            "wall_seconds": time.perf_counter() - started, "invalid_blocks": invalid_blocks,
            "grad_stats_last_epoch": {layer.name: layer.stats.as_dict() for layer in model.quantized_layers}}


class _NoBar:
    def set_postfix(self, *args, **kwargs):
        pass

    def update(self):
        pass

    def close(self):
        pass


def _progress(total, desc, enabled):
    if not enabled:
        return _NoBar()
    from tqdm import tqdm
    return tqdm(total=total, desc=desc, leave=True, file=sys.stderr, dynamic_ncols=True)


def argument_type(convert, accept, what):
    """An argparse ``type`` that converts with ``convert`` and refuses values ``accept`` rejects."""
    def parse(text):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}") from None
        if not accept(value):
            raise argparse.ArgumentTypeError(f"must be {what}, got {text}")
        return value
    return parse


positive_int = argument_type(int, lambda value: value >= 1, "a positive integer")
_non_negative_int = argument_type(int, lambda value: value >= 0, "a non-negative integer")
_positive_float = argument_type(float, lambda value: math.isfinite(value) and value > 0, "a positive number")


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m golden.training.train", description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", choices=datasets.DATASETS, default="digits", help="default: %(default)s")
    parser.add_argument("--model", choices=MODELS, default="mlp", help="default: %(default)s")
    parser.add_argument("--scheme", choices=tuple(SCHEMES), default="fourbit", help="default: %(default)s")
    parser.add_argument("--epochs", type=positive_int,
                        help="default: the accuracy table's, " + ", ".join(
                            f"{n} for {name}" for name, n in TABLE_EPOCHS.items()))
    parser.add_argument("--seed", type=_non_negative_int, default=0, help="default: %(default)s")
    parser.add_argument("--batch-size", type=positive_int, help="default: " + ", ".join(
        f"{DEFAULTS[name]['batch_size']} for {name}" for name in datasets.DATASETS))
    parser.add_argument("--lr", type=_positive_float, help="peak learning rate (default: " + ", ".join(
        f"{DEFAULTS[name]['lr']} for {name}" for name in datasets.DATASETS) + ")")
    parser.add_argument("--json", action="store_true", help="print the run's result as JSON on stdout (default: a summary line)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars (default: progress bars)")
    args = parser.parse_args(argv)
    if args.epochs is None:
        args.epochs = TABLE_EPOCHS[args.dataset]
    return args


def main(argv=None):
    args = parse_args(argv)
    config = RunConfig(args.dataset, args.model, args.scheme, args.epochs, args.seed, args.batch_size, args.lr)

    def summary(result):
        return (f"{config.dataset}-{config.model}-{config.scheme} seed {config.seed}: test accuracy "
                f"{100 * result['final_test_acc']:.2f}% after {config.epochs} epochs "
                f"({result['epoch_seconds']:.2f} s/epoch"
                + (f", {result['invalid_blocks']} invalid (NaN/Inf) blocks" if get_scheme(config.scheme).block_format
                   else "") + ")")

    return run_from_command_line(run, config, args, summary, (Diverged, NotLearning, datasets.DamagedCache))


def run_from_command_line(run, config, args, summary, errors):
    """``run(config)`` for a command line: the result as JSON (``--json``) or ``summary(result)`` and
    exit status 0; ``errors`` printed as ``error: ...`` on stderr with status 1."""
    single_blas_thread(warm_up=False)
    try:
        result = run(config, progress=not args.no_progress)
    except errors as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=1) if args.json else summary(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
