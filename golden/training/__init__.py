"""The quantized training step on top of the golden numerics: layers, models, schemes, data, driver, table."""
