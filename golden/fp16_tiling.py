"""Tiling of FP16 GEMMs onto the FP16 training array (rtl.array.Fp16TrainingArray), bit-exact.

The same tiles and beats as :mod:`golden.tiling` (one R x C output tile per command, beat k =
column k of the A block and row k of the B block, R output rows per tile, tile rows outer, M and
N padded with +0), with binary16 bit patterns as operands and, per output, the
:func:`golden.fp16.dot` of its row and column: from +0, terms in ascending k, each product and
each sum rounded to nearest even, with sticky ``invalid`` and ``overflow`` flags. The three modes
are the same GEMM on different operands (Y = X . W, dX = dY . W^T, dW^T = dY^T . X); the mode
and the scale exponent ``s`` only travel to the output beats. Padding lanes multiply +0 by
operands that may be Inf or NaN; their results are computed like any other and cropped away.
"""

from typing import NamedTuple

import numpy as np

from . import fp16, fp4
from .tiling import K_MAX, SIZE_MAX, SIZE_MIN, Mode, check_mode
from ._checks import check_int


class Fp16Tile(NamedTuple):
    """One array command with its operand beats and expected results."""

    row0: int              #: first output row (of M) this tile covers
    col0: int              #: first output column (of N) this tile covers
    mode: Mode
    k: int                 #: number of operand beats
    s: int                 #: scale exponent, carried to the output beats unchanged
    a_beats: np.ndarray    #: uint16 (k, R): beat t holds column t of the zero-padded A block
    b_beats: np.ndarray    #: uint16 (k, C): beat t holds row t of the zero-padded B block
    acc: np.ndarray        #: uint16 (R, C) expected sums
    invalid: np.ndarray    #: bool (R, C) expected sticky invalid flags
    overflow: np.ndarray   #: bool (R, C) expected sticky overflow flags


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
    if a.ndim != 2 or b.ndim != 2:
        raise ValueError(f"a and b must be 2-D, got shapes {a.shape} and {b.shape}")
    if a.shape[1] != b.shape[0]:
        raise ValueError(f"inner dimensions differ: a has shape {a.shape}, b has shape {b.shape}")
    if not 1 <= a.shape[1] <= K_MAX:
        raise ValueError(f"K (columns of a) must lie in 1..{K_MAX}, got {a.shape[1]}")
    return fp16.dot(a[:, None, :], b.T[None, :, :])


def tiles(mode, a, b, rows=8, cols=8, s=0):
    """Split the FP16 GEMM ``a @ b`` (binary16 patterns) into ``rows`` x ``cols`` tiles, in issue order.

    Raises ValueError/TypeError naming the argument for an unknown mode, patterns outside
    0..0xFFFF, shapes that do not multiply, K outside 1..K_MAX, rows/cols outside 2..32 or s
    out of range.
    """
    mode = check_mode(mode)
    rows = check_int("rows", rows, SIZE_MIN, SIZE_MAX)
    cols = check_int("cols", cols, SIZE_MIN, SIZE_MAX)
    s = fp4.check_scale(s)
    a, b = fp16.as_bits("a", a), fp16.as_bits("b", b)
    result = None
    if a.ndim == 2 and b.ndim == 2:
        (m, k), n = a.shape, b.shape[1]
        a_pad = np.zeros((-(-m // rows) * rows, k), np.uint16)
        b_pad = np.zeros((b.shape[0], -(-n // cols) * cols), np.uint16)
        a_pad[:m], b_pad[:, :n] = a, b
        result = gemm(a_pad, b_pad)
    else:
        gemm(a, b)   # raises with the shapes
    return [
        Fp16Tile(r0, c0, mode, a_pad.shape[1], s, a_beats=a_pad[r0:r0 + rows].T.copy(),
                 b_beats=b_pad[:, c0:c0 + cols].copy(), acc=result.acc[r0:r0 + rows, c0:c0 + cols],
                 invalid=result.invalid[r0:r0 + rows, c0:c0 + cols],
                 overflow=result.overflow[r0:r0 + rows, c0:c0 + cols])
        for r0 in range(0, a_pad.shape[0], rows) for c0 in range(0, b_pad.shape[1], cols)
    ]


def output_beats(tile_list):
    """The FP16 array's output stream for ``tile_list`` issued in order: R row beats per tile."""
    return [
        Fp16OutputBeat(index, row, row == len(tile.acc) - 1, tile.mode, tile.s, tile.acc[row],
                       tile.invalid[row], tile.overflow[row])
        for index, tile in enumerate(tile_list) for row in range(len(tile.acc))
    ]
