"""A character-level transformer language model under every scheme (docs/training.md, "Language model").

Data: CPython's ``pydoc_data.topics`` (the English help text shipped with every Python, about 465,000
characters), topics concatenated in sorted order, characters indexed by sorted code point, split 90/10
into training and validation text. Metric: validation bits per character.

Model (pre-LayerNorm GPT): token and position embeddings, ``N_LAYERS`` blocks of causal self-attention
(``N_HEADS`` heads) and a ReLU MLP (``D_MODEL`` -> 4 x -> ``D_MODEL``), a final LayerNorm and a linear head.
The four linear layers of each block (qkv, attention output, MLP in, MLP out) run through the scheme;
the embeddings, the head (first and last layers), LayerNorm, the attention score and value products,
the softmax and the loss stay FP32. Under fourbit the inputs of qkv, the attention output and MLP in
(which can be negative) are signed INT4 by SAWB per tensor and step; MLP out's input is PACT (its ReLU).

Command line::

    python -m golden.training.language --scheme fourbit --epochs 3 --seed 0 [--json]
"""

import argparse
import math
import sys
import time

import numpy as np

from .. import int4
from .layers import Identity, Linear, Pact, Relu
from .models import PACT_ALPHA_INIT
from .schemes import SCHEMES, get_scheme
from .train import (ALPHA_MIN, Diverged, NotLearning, RunConfig, _non_negative_int, backward_and_update, cosine_lr,
                    positive_int, run_from_command_line, softmax_cross_entropy)

DATASET, MODEL = "pydoc", "transformer"
CONTEXT, D_MODEL, N_HEADS, N_LAYERS = 64, 128, 4, 2
EVAL_WINDOWS = 64           # validation windows per forward pass
LN_EPS = 1e-5
INIT_STD = 0.02             # block linear layers; the residual outputs (attention proj, fc2) / sqrt(2 layers)


class Text:
    """The character-indexed text: ``train`` and ``val`` int64 arrays of indices into ``vocab``."""

    def __init__(self, text, split=0.9):
        self.vocab = "".join(sorted(set(text)))
        index = {c: i for i, c in enumerate(self.vocab)}
        ids = np.fromiter((index[c] for c in text), np.int64, len(text))
        cut = int(split * len(ids))
        self.train, self.val = ids[:cut], ids[cut:]

    @property
    def unigram_bpc(self):
        """Validation bits per character of the training text's character frequencies (add-one smoothed):
        the "chance" level of a language model that learned nothing about context."""
        counts = np.bincount(self.train, minlength=len(self.vocab)) + 1.0
        return float(-np.log2(counts / counts.sum())[self.val].mean())


def load_text():
    """:class:`Text` of ``pydoc_data.topics``, topics concatenated in sorted order."""
    try:
        from pydoc_data.topics import topics
    except ImportError as error:    # some distributions split the standard library's data out
        raise RuntimeError(f"the language model needs CPython's pydoc_data.topics, which this Python "
                           f"({sys.executable}) lacks: {error}") from error
    return Text("".join(topics[key] for key in sorted(topics)))


class Through:
    """Input stage of a float layer whose input needs a gradient (the identity)."""

    quantized, needs_grad = False, True
    params = {}

    def forward(self, x):
        return x

    def backward(self, grad):
        return grad


class SawbInput:
    """Input stage of a fourbit layer with signed input: INT4 codes -7..7 by SAWB of the tensor (per step);
    the gradient passes straight through where |x| <= alpha (the clipping range) and is 0 elsewhere."""

    quantized, needs_grad, signed = True, True, True
    params = {}

    def forward(self, x):
        codes, step = int4.sawb(x)
        self._inside = np.abs(x) <= step * int4.W_CODE_MAX
        return codes, step

    def backward(self, grad):
        return np.where(self._inside, grad, 0).astype(grad.dtype)


class CalibratedPact(Pact):
    """PACT input stage (unsigned codes 0..15 on [0, alpha]) whose alpha starts at the SAWB clip of the first
    batch it sees (golden.int4.sawb_alpha), then is learned by the PACT gradient."""

    def __init__(self, dtype):
        super().__init__(np.nan, dtype)

    def forward(self, x):
        _calibrate(self.params["alpha"], x)
        return super().forward(x)


class SignedPact:
    """Symmetric PACT input stage for a signed input: codes round(clip(x, -alpha, alpha) * 7 / alpha), -7..7,
    step alpha / 7; alpha starts at the SAWB clip of the first batch and is learned: the gradient passes where
    |x| < alpha, and alpha gets the sum of grad * sign(x) where |x| >= alpha."""

    quantized, needs_grad, signed = True, True, True

    def __init__(self, dtype):
        self.params = {"alpha": np.array(np.nan, dtype)}

    def forward(self, x):
        alpha = _calibrate(self.params["alpha"], x)
        self._x, self._alpha = x, alpha
        scaled = np.clip(x, -alpha, alpha, out=np.empty(x.shape), dtype=np.float64)
        scaled *= int4.W_CODE_MAX / alpha
        return np.rint(scaled, out=scaled).astype(np.int8), alpha / int4.W_CODE_MAX

    def backward(self, grad):
        clipped = np.abs(self._x) >= self._alpha
        self.grad_alpha = float((grad * np.sign(self._x))[clipped].astype(np.float64).sum())
        return np.where(clipped, 0, grad).astype(grad.dtype)


def _calibrate(alpha, x):
    """Set the 0-d array ``alpha`` to the SAWB clip of ``x`` if it is not set yet (NaN); its value as a float."""
    if np.isnan(alpha):
        alpha[...] = max(int4.sawb_alpha(x), ALPHA_MIN)
    return float(alpha)


class LayerNorm:
    """LayerNorm over the last axis with gain ``g`` and bias ``b`` (FP32)."""

    def __init__(self, name, d, dtype):
        self.name = name
        self.params = {"g": np.ones(d, dtype), "b": np.zeros(d, dtype)}
        self.grads = {}

    def forward(self, x):
        mean = x.mean(axis=-1, keepdims=True)
        centred = x - mean
        self._inv_std = 1 / np.sqrt((centred * centred).mean(axis=-1, keepdims=True) + LN_EPS)
        self._xhat = centred * self._inv_std
        return self._xhat * self.params["g"] + self.params["b"]

    def backward(self, grad):
        axes = tuple(range(grad.ndim - 1))
        self.grads["g"] = (grad * self._xhat).sum(axis=axes)
        self.grads["b"] = grad.sum(axis=axes)
        dxhat = grad * self.params["g"]
        return self._inv_std * (dxhat - dxhat.mean(axis=-1, keepdims=True)
                                - self._xhat * (dxhat * self._xhat).mean(axis=-1, keepdims=True))


class Embedding:
    """Token and position embeddings (FP32): x[b, t] = tok[ids[b, t]] + pos[t]."""

    def __init__(self, vocab, d, context, rng, dtype):
        self.name = "embedding"
        self.params = {"tok": (rng.standard_normal((vocab, d)) * 0.1).astype(dtype),
                       "pos": (rng.standard_normal((context, d)) * 0.1).astype(dtype)}
        self.grads = {}

    def forward(self, ids):
        self._ids = ids
        return self.params["tok"][ids] + self.params["pos"][:ids.shape[1]]

    def backward(self, grad):
        vocab, d = self.params["tok"].shape
        onehot = np.zeros((self._ids.size, vocab), grad.dtype)
        onehot[np.arange(self._ids.size), self._ids.ravel()] = 1
        self.grads["tok"] = onehot.T @ grad.reshape(-1, d)
        pos = np.zeros_like(self.params["pos"])
        pos[:grad.shape[1]] = grad.sum(axis=0)
        self.grads["pos"] = pos


def _linear(name, n_in, n_out, rng, scheme, quant, dtype, after_relu=False, std=INIT_STD):
    """A block's linear layer under ``scheme`` (its input stage depends on the scheme's kind), initial
    weights normal with standard deviation ``std`` (GPT-2's 0.02; Linear draws He-normal, rescaled here)."""
    if quant is not None and quant.int4_inputs:
        stage = Pact(PACT_ALPHA_INIT, dtype) if after_relu else SawbInput()
    else:
        stage = Relu() if after_relu else Through()
    layer = Linear(name, n_in, n_out, rng, stage, quant=quant, dtype=dtype)
    layer.params["w"] *= np.asarray(std / math.sqrt(2 / n_in), dtype)
    return layer


class Attention:
    """Causal multi-head self-attention; the q, k and v projections and the output projection are scheme layers
    (each 4-bit layer with its own GradScale), the rest FP32. With ``fused`` q, k and v are one layer (one GEMM,
    one GradScale for the three gradients)."""

    def __init__(self, name, d, heads, rng, scheme, quant, dtype, out_std, fused=False):
        self.heads = heads
        self.inputs = ([_linear(f"{name}.qkv", d, 3 * d, rng, scheme, quant, dtype)] if fused else
                       [_linear(f"{name}.{part}", d, d, rng, scheme, quant, dtype) for part in "qkv"])
        self.proj = _linear(f"{name}.proj", d, d, rng, scheme, quant, dtype, std=out_std)

    def forward(self, x):
        b, t, d = x.shape
        h, dh = self.heads, d // self.heads
        x = x.reshape(b * t, d)
        qkv = np.concatenate([layer.forward(x) for layer in self.inputs], axis=1)
        self._q, self._k, self._v = qkv.reshape(b, t, 3, h, dh).transpose(2, 0, 3, 1, 4)
        scores = self._q @ self._k.transpose(0, 1, 3, 2) * (1 / math.sqrt(dh))
        scores = np.where(np.tri(t, dtype=bool), scores, -np.inf)
        scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
        self._p = scores / scores.sum(axis=-1, keepdims=True)
        out = (self._p @ self._v).transpose(0, 2, 1, 3).reshape(b * t, d)
        return self.proj.forward(out).reshape(b, t, d)

    def backward(self, grad):
        b, t, d = grad.shape
        h, dh = self.heads, d // self.heads
        d_out = self.proj.backward(grad.reshape(b * t, d)).reshape(b, t, h, dh).transpose(0, 2, 1, 3)
        d_p = d_out @ self._v.transpose(0, 1, 3, 2)
        d_v = self._p.transpose(0, 1, 3, 2) @ d_out
        d_scores = self._p * (d_p - (d_p * self._p).sum(axis=-1, keepdims=True)) * (1 / math.sqrt(dh))
        d_q = d_scores @ self._k
        d_k = d_scores.transpose(0, 1, 3, 2) @ self._q
        d_qkv = np.stack([d_q, d_k, d_v]).transpose(1, 3, 0, 2, 4).reshape(b * t, 3 * d)
        parts = np.split(d_qkv, len(self.inputs), axis=1)
        grad_x = self.inputs[0].backward(np.ascontiguousarray(parts[0]))
        for layer, part in zip(self.inputs[1:], parts[1:]):
            grad_x = grad_x + layer.backward(np.ascontiguousarray(part))
        return grad_x.reshape(b, t, d)


class Block:
    """x + attention(ln1(x)), then + mlp(ln2(x)); the MLP is fc1 -> ReLU (fc2's input stage) -> fc2."""

    def __init__(self, name, d, heads, rng, scheme, quant, dtype, n_layers, fused_qkv=False):
        out_std = INIT_STD / math.sqrt(2 * n_layers)
        self.ln1, self.ln2 = LayerNorm(f"{name}.ln1", d, dtype), LayerNorm(f"{name}.ln2", d, dtype)
        self.attn = Attention(f"{name}.attn", d, heads, rng, scheme, quant, dtype, out_std, fused_qkv)
        self.fc1 = _linear(f"{name}.fc1", d, 4 * d, rng, scheme, quant, dtype)
        self.fc2 = _linear(f"{name}.fc2", 4 * d, d, rng, scheme, quant, dtype, after_relu=True, std=out_std)

    def forward(self, x):
        x = x + self.attn.forward(self.ln1.forward(x))
        b, t, d = x.shape
        hidden = self.fc1.forward(self.ln2.forward(x).reshape(b * t, d))
        return x + self.fc2.forward(hidden).reshape(b, t, d)

    def backward(self, grad):
        b, t, d = grad.shape
        d_hidden = self.fc2.backward(grad.reshape(b * t, d))
        grad = grad + self.ln2.backward(self.fc1.backward(d_hidden).reshape(b, t, d))
        return grad + self.ln1.backward(self.attn.backward(grad))

    @property
    def layers(self):
        return [self.ln1, *self.attn.inputs, self.attn.proj, self.ln2, self.fc1, self.fc2]


class Transformer:
    """The character model; ``layers`` are the parameter holders (params/grads dicts) in a fixed order."""

    def __init__(self, vocab, scheme, rng, quant=None, dtype=np.float32, d=D_MODEL, heads=N_HEADS,
                 n_layers=N_LAYERS, context=CONTEXT, fused_qkv=False):
        if d % heads:
            raise ValueError(f"d must be a multiple of heads, got d={d}, heads={heads}")
        if quant is None:
            quant = scheme.make_quant()
        self.context = context
        self.embedding = Embedding(vocab, d, context, rng, dtype)
        self.blocks = [Block(f"block{i}", d, heads, rng, scheme, quant, dtype, n_layers, fused_qkv)
                       for i in range(n_layers)]
        self.ln_f = LayerNorm("ln_f", d, dtype)
        self.head = Linear("head", d, vocab, rng, Through(), dtype=dtype)

    def forward(self, ids):
        """Logits (B*T, vocab) for token ids (B, T)."""
        x = self.embedding.forward(ids)
        for block in self.blocks:
            x = block.forward(x)
        b, t, d = x.shape
        return self.head.forward(self.ln_f.forward(x).reshape(b * t, d))

    def backward(self, grad_logits):
        b, t = self.embedding._ids.shape
        grad = self.head.backward(grad_logits)
        grad = self.ln_f.backward(grad.reshape(b, t, -1))
        for block in reversed(self.blocks):
            grad = block.backward(grad)
        self.embedding.backward(grad)

    @property
    def layers(self):
        return [self.embedding] + [layer for block in self.blocks for layer in block.layers] + [self.ln_f, self.head]

    @property
    def quantized_layers(self):
        return [layer for layer in self.layers if getattr(layer, "quant", None) is not None]


class Adam:
    """Adam (beta1 0.9, beta2 0.99, eps 1e-8) on FP32 master parameters; PACT alphas kept >= ALPHA_MIN."""

    def __init__(self, model, betas=(0.9, 0.99), eps=1e-8):
        self.model, self.betas, self.eps, self.t = model, betas, eps, 0
        self.moments = [{k: (np.zeros_like(p), np.zeros_like(p)) for k, p in layer.params.items()}
                        for layer in model.layers]

    def step(self, lr):
        self.t += 1
        b1, b2 = self.betas
        rate = lr * math.sqrt(1 - b2 ** self.t) / (1 - b1 ** self.t)
        for layer, moments in zip(self.model.layers, self.moments):
            for name, param in layer.params.items():
                m, v = moments[name]
                grad = layer.grads[name]
                m *= b1
                m += (1 - b1) * grad
                v *= b2
                v += (1 - b2) * grad * grad
                param -= (rate * m / (np.sqrt(v) + self.eps)).astype(param.dtype)
            if "alpha" in layer.params:
                np.maximum(layer.params["alpha"], ALPHA_MIN, out=layer.params["alpha"])


def windows(ids, starts, context):
    """(inputs, targets), each (len(starts), context): the characters at start.. and the next ones."""
    index = np.asarray(starts)[:, None] + np.arange(context)
    return ids[index], ids[index + 1]


def train_step(model, optimizer, inputs, targets, lr):
    """One step on a batch of windows; returns the mean cross-entropy in nats per character.

    The backward runs on the summed token loss (a static loss scale of B*T over the mean, which Adam's
    update does not see), so that gradients reach the 4-bit formats at a useful magnitude.
    """
    logits = model.forward(inputs)
    loss, grad = softmax_cross_entropy(logits, targets.ravel())
    backward_and_update(model, optimizer, loss, grad * np.asarray(targets.size, grad.dtype), lr,
                        backward_errors=FloatingPointError)
    return loss


def evaluate_bpc(model, ids, context=CONTEXT, batch=EVAL_WINDOWS):
    """Bits per character of predicting every character of ``ids`` after the first, in windows of ``context``."""
    starts = np.arange(0, len(ids) - 1 - context + 1, context)
    total, count = 0.0, 0
    for first in range(0, len(starts), batch):
        inputs, targets = windows(ids, starts[first:first + batch], context)
        loss, _ = softmax_cross_entropy(model.forward(inputs), targets.ravel())
        total += loss * targets.size
        count += targets.size
    return total / count / math.log(2)


def run(config, progress=False, text=None, shape=None, configure=None):
    """Train the language model for ``config`` (dataset "pydoc", model "transformer"); a JSON-ready dict.

    An epoch is one pass over the training text in windows of CONTEXT characters (a random offset per
    epoch, windows shuffled), ``config.batch`` windows a step, Adam with a cosine schedule from ``config.lr``.
    Raises Diverged, or NotLearning when every 4-bit gradient code of an epoch is zero or the best
    validation bpc is not below the unigram (character frequency) bpc. ``text`` replaces the pydoc text,
    ``shape`` (dict of d, heads, n_layers) the model size (for tests); ``configure`` is called with the new
    model before training (ablations: golden.training.lm_ablation).
    """
    text = text if text is not None else load_text()
    scheme = get_scheme(config.scheme)
    rng = np.random.default_rng(config.seed)
    model = Transformer(len(text.vocab), scheme, rng, quant=scheme.make_quant(rng=np.random.default_rng([config.seed, 1])),
                        **(shape or {}))
    if configure is not None:
        configure(model)
    optimizer = Adam(model)
    batch, lr = config.batch, config.learning_rate
    n_windows = (len(text.train) - 1) // CONTEXT - 1
    steps = n_windows // batch
    name = f"{DATASET}-{MODEL}-{config.scheme} seed {config.seed}"
    history, started, invalid_blocks = [], time.perf_counter(), 0
    for epoch in range(config.epochs):
        for layer in model.quantized_layers:
            layer.stats.reset()
        offset = int(rng.integers(CONTEXT))
        order = offset + CONTEXT * rng.permutation(n_windows)
        bar = _progress(steps, f"{name} epoch {epoch + 1}/{config.epochs}", progress)
        loss_sum, tic, cpu = 0.0, time.perf_counter(), time.process_time()
        for step in range(steps):
            inputs, targets = windows(text.train, order[step * batch:(step + 1) * batch], CONTEXT)
            try:
                loss = train_step(model, optimizer, inputs, targets,
                                  cosine_lr(lr, epoch * steps + step, config.epochs * steps))
            except Diverged as error:
                bar.close()
                raise Diverged(f"{name} diverged in epoch {epoch + 1}: {error}") from error
            loss_sum += loss
            bar.set_postfix(bpc=f"{loss_sum / (step + 1) / math.log(2):.3f}", refresh=False)
            bar.update()
        seconds, cpu_seconds = time.perf_counter() - tic, time.process_time() - cpu
        val_bpc = evaluate_bpc(model, text.val)
        bar.set_postfix(bpc=f"{loss_sum / steps / math.log(2):.3f}", val_bpc=f"{val_bpc:.3f}")
        bar.close()
        history.append({"epoch": epoch + 1, "train_bpc": loss_sum / steps / math.log(2), "val_bpc": val_bpc,
                        "train_seconds": seconds, "train_cpu_seconds": cpu_seconds})
        invalid_blocks += sum(getattr(layer.stats, "invalid_blocks", 0) for layer in model.quantized_layers)
        if model.quantized_layers and not sum(layer.stats.nonzero_codes for layer in model.quantized_layers):
            raise NotLearning(f"{name} did not learn: every 4-bit gradient code was zero in epoch {epoch + 1} "
                              f"(validation {val_bpc:.3f} bits per character)")
    best, chance = min(h["val_bpc"] for h in history), text.unigram_bpc
    if not best < chance:
        raise NotLearning(f"{name} did not learn: the best validation {best:.3f} bits per character is not below "
                          f"the character-frequency model's {chance:.3f}")
    return {"config": config.resolved(), "metric": "val_bpc", "final_val_bpc": history[-1]["val_bpc"],
            "history": history, "steps_per_epoch": steps, "unigram_bpc": chance,
            "epoch_seconds": float(np.mean([h["train_seconds"] for h in history])),
            "epoch_cpu_seconds": float(np.mean([h["train_cpu_seconds"] for h in history])),
            "wall_seconds": time.perf_counter() - started, "invalid_blocks": invalid_blocks,
            "grad_stats_last_epoch": {layer.name: layer.stats.as_dict() for layer in model.quantized_layers}}


def _progress(total, desc, enabled):
    from .train import _progress as bar
    return bar(total, desc, enabled)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m golden.training.language", description=__doc__.split("\n")[0])
    parser.add_argument("--scheme", choices=tuple(SCHEMES), required=True)
    parser.add_argument("--epochs", type=positive_int, required=True, help="the accuracy table uses 1")
    parser.add_argument("--seed", type=_non_negative_int, default=0)
    parser.add_argument("--batch-size", type=positive_int, help=f"windows of {CONTEXT} characters (default 16)")
    parser.add_argument("--json", action="store_true", help="print the run's result as JSON on stdout")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    config = RunConfig(DATASET, MODEL, args.scheme, args.epochs, args.seed, args.batch_size)

    def summary(result):
        return (f"{DATASET}-{MODEL}-{config.scheme} seed {config.seed}: validation {result['final_val_bpc']:.3f} "
                f"bits per character after {config.epochs} epochs ({result['epoch_seconds']:.1f} s/epoch, "
                f"{result['invalid_blocks']} invalid blocks)")

    return run_from_command_line(run, config, args, summary, (Diverged, NotLearning))


if __name__ == "__main__":
    sys.exit(main())
