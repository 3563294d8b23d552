"""Tiling of whole GEMMs onto the R x C training array (rtl/array.py), bit-exact with golden.units.

The array computes one R x C output tile per command. A tile of depth K takes K operand beats:
beat k carries column k of the tile's A block (R lanes) and row k of its B block (C lanes). It
then emits R output beats, rows 0..R-1 in order, each with the C saturated accumulators of that
row and their overflow flags. Tiles are issued row-major over the output (tile rows outer).

M and N are padded up to multiples of R and C with zero codes, whose products are exactly 0 in
every mode, so the cropped tile results equal the untiled golden.units GEMM. K is never split:
every output is one saturating sum over k = 0..K-1 in ascending order, as docs/numerics.md
section 7 requires.

Modes (the operands as the array sees them):

==========  ===================  ==============================  ===========================
mode        GEMM                 A (R lanes)                     B (C lanes)
==========  ===================  ==============================  ===========================
FWD         Y = X . W            activation codes 0..15          weight codes -8..7
BWD_DATA    dX = dY . W^T        FP4 codes of dY, phase 0        weight codes -8..7 (W^T)
BWD_WEIGHT  dW^T = dY^T . X      FP4 codes of dY^T, phase 1      activation codes 0..15
==========  ===================  ==============================  ===========================

FWD accumulates in ``fwd_width`` bits, both backward modes in ``bwd_width`` bits. BWD_WEIGHT
computes the transpose of dW = X^T . dY so that the FP4 operand is always A: the host passes
``a = dY.T`` and ``b = X`` and transposes the result. Each dW[i, j] is still the sum over the
batch index k in ascending order, so the result (saturation and flags included) is exactly
``golden.units.gemm_fp4_int4(dY.T, 1, X, signed_b=False).T``.
"""

import enum
from typing import NamedTuple

import numpy as np

from . import fp4, units
from ._checks import as_int_array, check_int

#: The K field of an array command is 16 bits wide.
K_MAX = (1 << 16) - 1
#: Array rows R and columns C lie in this range.
SIZE_MIN, SIZE_MAX = 2, 32


class Mode(enum.IntEnum):
    """The array's GEMM modes; the values are the 2-bit ``mode`` field of a command (3 is invalid)."""

    FWD = 0
    BWD_DATA = 1
    BWD_WEIGHT = 2


class Tile(NamedTuple):
    """One array command with its operand beats and expected results."""

    row0: int              #: first output row (of M) this tile covers
    col0: int              #: first output column (of N) this tile covers
    mode: Mode
    k: int                 #: number of operand beats
    s: int                 #: scale exponent, carried to the output beats unchanged
    a_beats: np.ndarray    #: int64 (k, R): beat t holds column t of the zero-padded A block
    b_beats: np.ndarray    #: int64 (k, C): beat t holds row t of the zero-padded B block
    acc: np.ndarray        #: int64 (R, C) expected accumulators (zero in the padding)
    overflow: np.ndarray   #: bool (R, C) expected sticky overflow flags


class OutputBeat(NamedTuple):
    """One beat of the array's output stream."""

    tile: int              #: index of the tile in issue order
    row: int               #: row of the tile, 0..R-1
    last: bool             #: row == R - 1
    mode: Mode
    s: int
    acc: np.ndarray        #: int64 (C,)
    overflow: np.ndarray   #: bool (C,)


def check_mode(mode):
    """Return ``mode`` as a :class:`Mode`; anything else is a ValueError naming it."""
    if isinstance(mode, (bool, np.bool_)) or not isinstance(mode, (int, np.integer)) or mode not in set(Mode):
        raise ValueError(f"mode must be one of {[m.name for m in Mode]}, got {mode!r}")
    return Mode(mode)


def check_shapes(a, b):
    """Refuse operand matrices that are not 2-D, do not multiply or have K outside 1..K_MAX."""
    if a.ndim != 2 or b.ndim != 2:
        raise ValueError(f"a and b must be 2-D, got shapes {a.shape} and {b.shape}")
    if a.shape[1] != b.shape[0]:
        raise ValueError(f"inner dimensions differ: a has shape {a.shape}, b has shape {b.shape}")
    if not 1 <= a.shape[1] <= K_MAX:
        raise ValueError(f"K (columns of a) must lie in 1..{K_MAX}, got {a.shape[1]}")


def _operands(mode, a, b):
    """The operands as int64 matrices after the range and shape checks of ``mode``."""
    a = as_int_array("a", a, 0, 15)
    b = as_int_array("b", b, 0, 15) if mode is Mode.BWD_WEIGHT else as_int_array("b", b, -8, 7)
    check_shapes(a, b)
    return a, b


def padded(value, rows, cols, fill=0):
    """``value`` (2-D) padded with ``fill`` up to a multiple of ``rows`` rows and ``cols`` columns."""
    out = np.full((-(-value.shape[0] // rows) * rows, -(-value.shape[1] // cols) * cols), fill, value.dtype)
    out[:value.shape[0], :value.shape[1]] = value
    return out


def tile_blocks(rows, cols, a_side, b_side, results):
    """Cut padded operands and results into the tiles of an R x C array, in issue order (tile rows outer).

    ``a_side`` maps names to arrays with one row per output row (A and its per-row data), ``b_side``
    to arrays with one column per output column, ``results`` to (M, N) arrays. Yields per tile a
    dict: ``row0``, ``col0``, the tile's beats of each ``a_side`` array (its R rows, transposed:
    beat t holds column t) and of each ``b_side`` array (its C columns), and the R x C block of
    each result.
    """
    m, n = next(iter(a_side.values())).shape[0], next(iter(b_side.values())).shape[1]
    for r0 in range(0, m, rows):
        for c0 in range(0, n, cols):
            yield {"row0": r0, "col0": c0,
                   **{name: value[r0:r0 + rows].T.copy() for name, value in a_side.items()},
                   **{name: value[:, c0:c0 + cols].copy() for name, value in b_side.items()},
                   **{name: value[r0:r0 + rows, c0:c0 + cols] for name, value in results.items()}}


def gemm(mode, a, b, fwd_width=units.FWD_WIDTH, bwd_width=units.BWD_WIDTH):
    """The untiled GEMM of ``mode`` (see the module docstring) as golden.units computes it.

    Returns
    -------
    golden.units.Accumulated
        ``acc`` (int64, shape (M, N)) and sticky ``overflow`` flags.
    """
    mode = check_mode(mode)
    check_int("fwd_width", fwd_width, units.WIDTH_MIN, units.WIDTH_MAX)
    check_int("bwd_width", bwd_width, units.WIDTH_MIN, units.WIDTH_MAX)
    a, b = _operands(mode, a, b)
    if mode is Mode.FWD:
        return units.gemm_int4(a, b, signed_a=False, width=fwd_width)
    if mode is Mode.BWD_DATA:
        return units.gemm_fp4_int4(a, 0, b, signed_b=True, width=bwd_width)
    return units.gemm_fp4_int4(a, 1, b, signed_b=False, width=bwd_width)


def tiles(mode, a, b, rows=8, cols=8, s=0, fwd_width=units.FWD_WIDTH, bwd_width=units.BWD_WIDTH):
    """Split the GEMM ``a @ b`` of ``mode`` into ``rows`` x ``cols`` array tiles, in issue order.

    Parameters
    ----------
    mode : Mode or int
    a : integer array (M, K)
        Operand A (activation codes 0..15 for FWD, FP4 codes 0..15 otherwise).
    b : integer array (K, N)
        Operand B (weight codes -8..7, or activation codes 0..15 for BWD_WEIGHT).
    rows, cols : int
        Array size R, C (2..32).
    s : int
        Scale exponent (-32..31) written into every command.
    fwd_width, bwd_width : int
        Accumulator widths (8..64) of FWD and of the backward modes.

    Returns
    -------
    list of Tile
        ``ceil(M/R) * ceil(N/C)`` tiles, tile rows outer.

    Raises
    ------
    TypeError, ValueError
        Naming the argument and the bad value: unknown mode, codes out of range, shapes that do
        not multiply, K outside 1..K_MAX, rows/cols outside 2..32, s or widths out of range.
    """
    mode = check_mode(mode)
    rows = check_int("rows", rows, SIZE_MIN, SIZE_MAX)
    cols = check_int("cols", cols, SIZE_MIN, SIZE_MAX)
    s = fp4.check_scale(s)
    a, b = _operands(mode, a, b)
    a_pad, b_pad = padded(a, rows, 1), padded(b, 1, cols)
    result = gemm(mode, a_pad, b_pad, fwd_width, bwd_width)
    return [Tile(mode=mode, k=a.shape[1], s=s, **block)
            for block in tile_blocks(rows, cols, {"a_beats": a_pad}, {"b_beats": b_pad},
                                     {"acc": result.acc, "overflow": result.overflow})]


def output_beats(tile_list):
    """The array's output stream for the tiles of ``tile_list`` issued in order: R row beats per tile."""
    return [
        OutputBeat(index, row, row == len(tile.acc) - 1, tile.mode, tile.s, tile.acc[row], tile.overflow[row])
        for index, tile in enumerate(tile_list) for row in range(len(tile.acc))
    ]


def assemble(tile_list, m, n):
    """Place the results of the tiles of ``tile_list`` into the (m, n) output, dropping the zero padding."""
    m, n = check_int("m", m, 1, 1 << 62), check_int("n", n, 1, 1 << 62)
    acc, overflow = np.zeros((m, n), np.int64), np.zeros((m, n), bool)
    for tile in tile_list:
        r1, c1 = min(tile.row0 + len(tile.acc), m), min(tile.col0 + tile.acc.shape[1], n)
        acc[tile.row0:r1, tile.col0:c1] = tile.acc[:r1 - tile.row0, :c1 - tile.col0]
        overflow[tile.row0:r1, tile.col0:c1] = tile.overflow[:r1 - tile.row0, :c1 - tile.col0]
    return units.Accumulated(acc, overflow)
