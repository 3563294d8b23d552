"""golden.fp16_tiling: tiles of the FP16 array against the untiled golden.fp16 dot products."""

import numpy as np
import pytest

from golden import fp16, fp16_tiling
from golden.tiling import Mode


@pytest.mark.parametrize("sums", [1, 2, fp16_tiling.SUMS])
def test_tiles_cover_the_untiled_gemm(rng, sums):
    a = rng.choice(fp16.CORNER_PATTERNS, (7 * sums, 9))
    b = rng.integers(0, 1 << 16, (9, 5))
    tiles = fp16_tiling.tiles(Mode.BWD_WEIGHT, a, b, rows=3, cols=2, s=-5, sums=sums)
    height = 3 * sums
    assert [(t.row0, t.col0) for t in tiles] == [(r, c) for r in (0, height, 2 * height) for c in (0, 2, 4)]
    for tile in tiles:
        assert tile.mode is Mode.BWD_WEIGHT and tile.s == -5 and tile.k == 9
        assert tile.a_beats.shape == (9 * sums, 3) and tile.acc.shape == (height, 2)
        for i in range(3):
            for slot in range(sums):
                for j in range(2):
                    out = i * sums + slot     # PE row i, ring slot l: output row i*L + l of the tile
                    row, col = tile.row0 + out, tile.col0 + j
                    a_row = a[row] if row < 7 * sums else np.zeros(9, np.uint16)
                    b_col = b[:, col] if col < 5 else np.zeros(9, np.uint16)
                    assert (tile.a_beats[slot::sums, i] == a_row).all()
                    assert (tile.b_beats[slot::sums, j] == b_col).all()
                    want = fp16.dot(a_row, b_col)
                    got = (tile.acc[out, j], tile.invalid[out, j], tile.overflow[out, j])
                    assert got == (want.acc, want.invalid, want.overflow), (row, col)


def test_hand_worked_beat_order():
    # sums = 2 on a 2 x 2 array: a 4-row tile; PE row 0 holds output rows 0, 1, PE row 1 rows 2, 3.
    # Beat k*2 + l carries A[l, k] on lane 0 and A[2 + l, k] on lane 1, B row k twice.
    a = np.arange(8, dtype=np.uint16).reshape(4, 2)     # A[r, k] = 2r + k
    b = np.array([[10, 11], [12, 13]], np.uint16)
    (tile,) = fp16_tiling.tiles(Mode.FWD, a, b, rows=2, cols=2, sums=2)
    assert tile.a_beats.tolist() == [[0, 4], [2, 6], [1, 5], [3, 7]]
    assert tile.b_beats.tolist() == [[10, 11], [10, 11], [12, 13], [12, 13]]
    beats = fp16_tiling.output_beats([tile])
    assert [(beat.row, beat.last) for beat in beats] == [(0, False), (1, False), (2, False), (3, True)]


def test_hand_worked_tile():
    # Row (1, Inf) . column (2, 0): 1*2 = 2, then Inf*0 = NaN (invalid); . (1, 1): 1 + Inf = Inf.
    # Row (65504, 65504) . (2, 0): 65504*2 rounds to Inf (overflow); . (1, 1): 65504 + 65504 = Inf (overflow).
    one, two, inf, big = 0x3C00, 0x4000, 0x7C00, 0x7BFF
    tiles = fp16_tiling.tiles(Mode.FWD, [[one, inf], [big, big]], [[two, one], [0, one]], rows=2, cols=2, sums=1)
    (tile,) = tiles
    assert tile.acc.tolist() == [[0x7E00, 0x7C00], [0x7C00, 0x7C00]]
    assert tile.invalid.tolist() == [[True, False], [False, False]]
    assert tile.overflow.tolist() == [[False, False], [True, True]]
    beats = fp16_tiling.output_beats(tiles)
    assert [(b.row, b.last) for b in beats] == [(0, False), (1, True)]


@pytest.mark.parametrize(("call", "message"), [
    (lambda: fp16_tiling.tiles(3, [[0]], [[0]]), "mode must be one of"),
    (lambda: fp16_tiling.tiles(0, [[70000]], [[0]]), "a"),
    (lambda: fp16_tiling.tiles(0, [[0, 0]], [[0]]), "inner dimensions differ"),
    (lambda: fp16_tiling.tiles(0, [[0]], [[0]], rows=1), "rows"),
    (lambda: fp16_tiling.tiles(0, [[0]], [[0]], sums=0), "sums"),
    (lambda: fp16_tiling.tiles(0, [[0]], [[0]], s=40), "s"),
])
def test_bad_input_names_the_value(call, message):
    with pytest.raises((ValueError, TypeError), match=message):
        call()
