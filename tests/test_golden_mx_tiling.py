"""golden.mx_tiling: tiles reassemble to the untiled golden.mx_gemm result, bit for bit."""

import numpy as np
import pytest

from golden import mx, mx_gemm, mx_tiling


def quantized(rng, fmt, m, k, n):
    quantize = mx.mxfp4_quantize if fmt == "mxfp4" else (lambda x: mx.nvfp4_quantize(x)[:2])
    x = (rng.standard_normal((m, k)) * 2.0 ** rng.integers(-8, 8, (m, 1))).astype(np.float32)
    w = rng.standard_normal((k, n)).astype(np.float32)
    a, a_s = quantize(x)
    bt, bt_s = quantize(np.ascontiguousarray(w.T))
    return a, a_s, bt.T.copy(), bt_s.T.copy()


@pytest.mark.parametrize("fmt", ["mxfp4", "nvfp4"])
@pytest.mark.parametrize("seed", range(3))
def test_tiles_reassemble_to_the_gemm(fmt, seed):
    rng = np.random.default_rng(seed)
    block = mx_tiling.FORMATS[fmt][0]
    m, k, n = int(rng.integers(1, 20)), block * int(rng.integers(1, 4)), int(rng.integers(1, 20))
    rows, cols = int(rng.integers(2, 9)), int(rng.integers(2, 9))
    operands = quantized(rng, fmt, m, k, n)
    tile_list = mx_tiling.tiles(fmt, *operands, rows=rows, cols=cols)
    assert len(tile_list) == -(-m // rows) * -(-n // cols)
    want = mx_gemm.float32_bits(mx_tiling.gemm(fmt, *operands))
    got = mx_gemm.float32_bits(mx_tiling.assemble(tile_list, m, n))
    assert (got == want).all(), f"seed {seed}: first difference at {np.argwhere(got != want)[0]}"
    first = tile_list[0]
    assert first.a_beats.shape == (k, rows) and first.b_scale_beats.shape == (k // block, cols)
    padded = tile_list[-1]
    assert (padded.sums[m - padded.row0:] == 0).all() and (padded.sums[:, n - padded.col0:] == 0).all()


def test_bad_input():
    rng = np.random.default_rng(0)
    operands = quantized(rng, "nvfp4", 4, 16, 4)
    with pytest.raises(ValueError, match="cols must lie in 2..16, got 17"):
        mx_tiling.tiles("nvfp4", *operands, cols=17)
    with pytest.raises(ValueError, match="fmt must be one of"):
        mx_tiling.tiles("fp8", *operands)
    with pytest.raises(ValueError, match="K must be a positive multiple of the block size 32"):
        mx_tiling.tiles("mxfp4", *operands)
