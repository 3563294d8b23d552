"""Tiling of block-scaled GEMMs onto an R x C array of MX PEs, bit-exact with golden.mx_gemm.

Like golden.tiling for the fourbit array: one R x C output tile per command, tiles row-major over
the output, K never split (every output is one float32 sum over the blocks in ascending k), M and
N padded with zero codes (and scale code 1.0), so the padded outputs are +0 and the cropped tile
results equal the untiled GEMM. Beat t of a tile carries column t of its A block (R lanes) and row
t of its B block (C lanes); the block's scale codes go with its last beat (R A scales, C B scales).
A tile's result is R rows of C float32 sums, row 0 first.

The GEMMs of a training step all have this form, each blocked along its own reduction axis:
Y = X.W (K = input features), dX = dY.W^T (K = output features; W quantized along them) and
dW^T = dY^T.X (K = batch). So one PE type serves all three; the mode only says which operands
the host quantizes along which axis, and travels with ``s`` to the output beats.

The MX array (rtl.array.MxTrainingArray) takes one 12-bit lane per operand: the E2M1 code in bits
3..0 and the scale code of its block in bits 11..4 (:func:`lanes`); its output stream is
:func:`output_beats`: R beats per tile, row 0 first, each with the C float32 sums, their
``invalid`` (NaN: a NaN scale) and ``overflow`` (+-Inf) flags, and the tile's mode and ``s``.
"""

from typing import NamedTuple

import numpy as np

from . import fp4, mx, mx_gemm
from ._checks import check_int
from .tiling import K_MAX, Mode, check_mode, padded, tile_blocks

FORMATS = {"mxfp4": (mx.MX_BLOCK, 127), "nvfp4": (mx.NV_BLOCK, 0x38)}   # block, scale code of 1.0
SIZE_MIN, SIZE_MAX = 2, 32


class Tile(NamedTuple):
    """One array command with its operand beats and expected results."""

    row0: int                  #: first output row (of M) this tile covers
    col0: int                  #: first output column (of N)
    a_beats: np.ndarray        #: uint8 (K, R): beat t holds column t of the padded A block
    b_beats: np.ndarray        #: uint8 (K, C): beat t holds row t of the padded B block
    a_scale_beats: np.ndarray  #: uint8 (K / block, R): A scale codes, given with each block's last beat
    b_scale_beats: np.ndarray  #: uint8 (K / block, C)
    sums: np.ndarray           #: uint32 (R, C) float32 bits of the expected sums (NaN as 0x7FC00000)
    mode: Mode = Mode.FWD      #: the array command's mode (which GEMM of the step)
    s: int = 0                 #: scale exponent, carried to the output beats unchanged


class MxOutputBeat(NamedTuple):
    """One beat of the MX array's output stream."""

    tile: int
    row: int
    last: bool
    mode: Mode
    s: int
    acc: np.ndarray            #: uint32 (C,) float32 bits
    invalid: np.ndarray        #: bool (C,): the sum is NaN
    overflow: np.ndarray       #: bool (C,): the sum is +-Inf


def check_format(fmt):
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {sorted(FORMATS)}, got {fmt!r}")
    return FORMATS[fmt]


def gemm(fmt, a_codes, a_scales, b_codes, b_scales):
    """The untiled GEMM as the array outputs it: ``gemm_mxfp4``, or ``nvfp4_accumulate`` (the
    NVFP4 tensor scales are the host's)."""
    check_format(fmt)
    run = mx_gemm.gemm_mxfp4 if fmt == "mxfp4" else mx_gemm.nvfp4_accumulate
    return run(a_codes, a_scales, b_codes, b_scales)


def tiles(fmt, a_codes, a_scales, b_codes, b_scales, rows=8, cols=8, mode=Mode.FWD, s=0):
    """Split the block-scaled GEMM into ``rows`` x ``cols`` array tiles, in issue order.

    Operands as for :func:`golden.mx_gemm.gemm_mxfp4` (uint8 codes a (M, K), b (K, N), scales
    (M, K / block) and (K / block, N)); ``rows``, ``cols`` 2..32 (``cols`` at most the block size,
    since one shared float32 unit serves a row); K at most K_MAX; ``mode`` and ``s`` go with every
    tile. Errors name the bad argument and value.
    """
    block, one = check_format(fmt)
    rows = check_int("rows", rows, SIZE_MIN, SIZE_MAX)
    cols = check_int("cols", cols, SIZE_MIN, block)
    mode, s = check_mode(mode), fp4.check_scale(s)
    gemm(fmt, a_codes[:1], a_scales[:1], b_codes[:, :1], b_scales[:, :1])       # checks the operands
    if a_codes.shape[1] > K_MAX:
        raise ValueError(f"K must be at most {K_MAX}, got a_codes shape {a_codes.shape}")
    a, b = padded(a_codes, rows, 1), padded(b_codes, 1, cols)
    a_s, b_s = padded(a_scales, rows, 1, one), padded(b_scales, 1, cols, one)
    sums = mx_gemm.float32_bits(gemm(fmt, a, a_s, b, b_s))
    return [Tile(mode=mode, s=s, **block)
            for block in tile_blocks(rows, cols, {"a_beats": a, "a_scale_beats": a_s},
                                     {"b_beats": b, "b_scale_beats": b_s}, {"sums": sums})]


def assemble(tile_list, m, n):
    """The (m, n) float32 result from the tiles' sums, dropping the padding."""
    m, n = check_int("m", m, 1, 1 << 62), check_int("n", n, 1, 1 << 62)
    out = np.zeros((m, n), np.uint32)
    for tile in tile_list:
        r1, c1 = min(tile.row0 + tile.sums.shape[0], m), min(tile.col0 + tile.sums.shape[1], n)
        out[tile.row0:r1, tile.col0:c1] = tile.sums[:r1 - tile.row0, :c1 - tile.col0]
    return out.view(np.float32)


def lanes(codes, scale_beats):
    """The MX array's 12-bit lanes of operand beats: uint16 (K, lanes), code | block scale << 4.

    ``codes`` (K, lanes) are a tile's ``a_beats`` or ``b_beats``, ``scale_beats`` (K / block,
    lanes) its ``a_scale_beats`` or ``b_scale_beats``; every beat carries its block's scale codes.
    """
    block = len(codes) // len(scale_beats)
    return codes.astype(np.uint16) | (np.repeat(scale_beats, block, axis=0).astype(np.uint16) << 4)


def output_beats(tile_list):
    """The MX array's output stream for ``tile_list`` issued in order: R row beats per tile."""
    beats = []
    for index, tile in enumerate(tile_list):
        exponent_ones = (tile.sums & 0x7F800000) == 0x7F800000
        fraction = (tile.sums & 0x007FFFFF) != 0
        for row in range(len(tile.sums)):
            beats.append(MxOutputBeat(index, row, row == len(tile.sums) - 1, tile.mode, tile.s, tile.sums[row],
                                      exponent_ones[row] & fraction[row], exponent_ones[row] & ~fraction[row]))
    return beats
