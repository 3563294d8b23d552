"""The MLP and the small CNN of the training table, built for a scheme (docs/training.md).

- ``mlp``: flatten -> 256 -> 256 -> 256 -> classes (four Linear layers, ReLU/PACT between them).
- ``cnn``: three convolutions then one Linear. Images (H > 1): 3x3 kernels, 16 -> 32 (stride 2) -> 32
  channels, padding 1. 1-D signals (H == 1): (1, 5) then (1, 3) kernels, 32 channels each, stride 2.

Under a quantized scheme the hidden layers are 4-bit (PACT input stage, or a ReLU for the block-scaled
formats, which quantize inside the layer), and the first and last layers too when ``scheme.quantize_ends``;
every other layer is FP32 (ReLU input stage, none for the first).
"""

import numpy as np

from .layers import Conv2d, DataQuantizer, Identity, Linear, Pact, Relu

MODELS = ("mlp", "cnn")
MLP_HIDDEN = (256, 256, 256)
PACT_ALPHA_INIT = 4.0


class Model:
    """A chain of layers; :meth:`backward` runs them in reverse from dL/dlogits."""

    def __init__(self, layers):
        self.layers = list(layers)

    def forward(self, x):
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, grad_logits):
        grad = grad_logits
        for layer in reversed(self.layers):
            grad = layer.backward(grad)

    @property
    def quantized_layers(self):
        return [layer for layer in self.layers if layer.quant is not None]


def _layer_specs(name, input_shape, n_classes):
    """(kind, kwargs) per layer, without stage/quant/rng."""
    c, h, w = input_shape
    if name == "mlp":
        sizes = (c * h * w, *MLP_HIDDEN, n_classes)
        return [("linear", dict(n_in=a, n_out=b)) for a, b in zip(sizes[:-1], sizes[1:])]
    if name == "cnn":
        if h == 1:
            convs = [dict(c_in=c, c_out=32, kernel=(1, 5), stride=(1, 2), padding=(0, 2)),
                     dict(c_in=32, c_out=32, kernel=(1, 3), stride=(1, 2), padding=(0, 1)),
                     dict(c_in=32, c_out=32, kernel=(1, 3), stride=(1, 2), padding=(0, 1))]
        else:
            convs = [dict(c_in=c, c_out=16, kernel=3, stride=1, padding=1),
                     dict(c_in=16, c_out=32, kernel=3, stride=2, padding=1),
                     dict(c_in=32, c_out=32, kernel=3, stride=1, padding=1)]
        for spec in convs:
            h, w = ((size + 2 * p - k) // s + 1 for size, k, s, p in zip((h, w), *_pairs(spec)))
        return [("conv", spec) for spec in convs] + [("linear", dict(n_in=convs[-1]["c_out"] * h * w,
                                                                     n_out=n_classes))]
    raise ValueError(f"model must be one of {', '.join(MODELS)}; got {name!r}")


def _pairs(spec):
    """(kernel, stride, padding) of a conv spec as (h, w) pairs."""
    return tuple((spec[k], spec[k]) if isinstance(spec[k], int) else spec[k] for k in ("kernel", "stride", "padding"))


def build_model(name, dataset, scheme, rng, quant=None, dtype=np.float32):
    """Model ``name`` for ``dataset`` (a golden.training.data.Dataset) under ``scheme``.

    ``quant`` is the shared golden.training.layers.Quant of the 4-bit layers (default ``scheme.make_quant()``);
    ``rng`` (numpy Generator) draws the initial weights in layer order.
    """
    specs = _layer_specs(name, dataset.input_shape, dataset.n_classes)
    if quant is None:
        quant = scheme.make_quant()
    layers = []
    for index, (kind, spec) in enumerate(specs):
        first, last = index == 0, index == len(specs) - 1
        quantized = scheme.quantized and (scheme.quantize_ends or not (first or last))
        if quantized and quant.int4_inputs:
            stage = DataQuantizer.from_data(dataset.x_train) if first else Pact(PACT_ALPHA_INIT, dtype)
        else:
            stage = Identity() if first else Relu()
        make = Linear if kind == "linear" else Conv2d
        layers.append(make(f"{kind}{index}", **spec, rng=rng, stage=stage, quant=quant if quantized else None,
                           dtype=dtype))
    return Model(layers)
