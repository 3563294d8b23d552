"""The bit-exact numpy golden model: number formats, quantizers, unit models, FP16 and tiling
(the quantized training step built on it is in golden.training)."""
