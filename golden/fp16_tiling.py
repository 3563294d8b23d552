"""Tiling of FP16 GEMMs onto the FP16 training array (rtl.array.Fp16TrainingArray), bit-exact.

Each PE of the array holds ``sums`` (L) interleaved running sums, so one command covers an
L*R x C output tile: PE row i computes the output rows i*L .. i*L + L - 1. Every k of the
tile takes L beats, l = 0..L-1: beat k*L + l carries A lanes i = A[i*L + l, k] and B lanes
j = B[k, j] (the same B row L times). The tile leaves as L*R output rows in order, row 0 first;
tile rows are outer, M and N are padded with +0. With L = 1 these are the tiles and beats of
:mod:`golden.tiling`. Every output is the :func:`golden.fp16.dot` of its row and column: from
+0, terms in ascending k, each product and each sum rounded to nearest even, with sticky
``invalid`` and ``overflow`` flags. The three modes are the same GEMM on different operands
(Y = X . W, dX = dY . W^T, dW^T = dY^T . X); the mode and the scale exponent ``s`` only travel
to the output beats. Padding lanes multiply +0 by operands that may be Inf or NaN; their
results are computed like any other and cropped away.
"""

from typing import NamedTuple

import numpy as np

from . import fp16, fp4
from .tiling import SIZE_MAX, SIZE_MIN, Mode, check_mode, check_shapes, padded, tile_blocks
from ._checks import check_int

#: Interleaved sums per PE of the FP16 array: the adder stages of rtl.fp16_pipe_mac.Fp16PipeMac.
SUMS = 6
SUMS_MAX = 16


class Fp16Tile(NamedTuple):
    """One array command with its operand beats and expected results."""

    row0: int              #: first output row (of M) this tile covers
    col0: int              #: first output column (of N) this tile covers
    mode: Mode
    k: int                 #: number of operand beats
    s: int                 #: scale exponent, carried to the output beats unchanged
    a_beats: np.ndarray    #: uint16 (k*L, R): beat k*L + l holds rows l, L + l, ... of column k of the A block
    b_beats: np.ndarray    #: uint16 (k*L, C): beat k*L + l holds row k of the B block
    acc: np.ndarray        #: uint16 (L*R, C) expected sums
    invalid: np.ndarray    #: bool (L*R, C) expected sticky invalid flags
    overflow: np.ndarray   #: bool (L*R, C) expected sticky overflow flags


class Fp16OutputBeat(NamedTuple):
    """One beat of the FP16 array's output stream."""

    tile: int
    row: int
    last: bool
    mode: Mode
    s: int
    acc: np.ndarray        #: uint16 (C,)
    invalid: np.ndarray    #: bool (C,)
    overflow: np.ndarray   #: bool (C,)


def gemm(a, b):
    """The untiled FP16 GEMM ``a @ b`` as the array computes each output (:func:`golden.fp16.dot`).

    Returns a :class:`golden.fp16.MacTrace` of shape (M, N).
    """
    a, b = fp16.as_bits("a", a), fp16.as_bits("b", b)
    check_shapes(a, b)
    return fp16.dot(a[:, None, :], b.T[None, :, :])


def tiles(mode, a, b, rows=8, cols=8, s=0, sums=SUMS):
    """Split the FP16 GEMM ``a @ b`` (binary16 patterns) into ``sums*rows`` x ``cols`` tiles, in issue order.

    Raises ValueError/TypeError naming the argument for an unknown mode, patterns outside
    0..0xFFFF, shapes that do not multiply, K outside 1..K_MAX, rows/cols outside 2..32, sums
    outside 1..16 or s out of range.
    """
    mode = check_mode(mode)
    rows = check_int("rows", rows, SIZE_MIN, SIZE_MAX)
    cols = check_int("cols", cols, SIZE_MIN, SIZE_MAX)
    sums = check_int("sums", sums, 1, SUMS_MAX)
    s = fp4.check_scale(s)
    a, b = fp16.as_bits("a", a), fp16.as_bits("b", b)
    check_shapes(a, b)
    a_pad, b_pad = padded(a, sums * rows, 1), padded(b, 1, cols)
    result = gemm(a_pad, b_pad)
    return [Fp16Tile(mode=mode, k=a.shape[1], s=s, **{**block, "a_beats": _a_beats(block["a_beats"], rows, sums),
                                                     "b_beats": np.repeat(block["b_beats"], sums, axis=0)})
            for block in tile_blocks(sums * rows, cols, {"a_beats": a_pad}, {"b_beats": b_pad},
                                     {"acc": result.acc, "invalid": result.invalid, "overflow": result.overflow})]


def _a_beats(columns, rows, sums):
    """(k*L, R) beats from the (k, L*R) columns of an A block: beat k*L + l, lane i = column k, row i*L + l."""
    return columns.reshape(-1, rows, sums).transpose(0, 2, 1).reshape(-1, rows).copy()


def output_beats(tile_list):
    """The FP16 array's output stream for ``tile_list`` issued in order: L*R row beats per tile."""
    return [
        Fp16OutputBeat(index, row, row == len(tile.acc) - 1, tile.mode, tile.s, tile.acc[row],
                       tile.invalid[row], tile.overflow[row])
        for index, tile in enumerate(tile_list) for row in range(len(tile.acc))
    ]
