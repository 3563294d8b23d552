"""golden.tiling: tiles reassemble to the golden.units GEMMs; beats and output order are the array's."""

import numpy as np
import pytest

from golden import fp4, tiling, units
from golden.tiling import Mode


def random_operands(rng, mode, m, k, n):
    a = rng.integers(0, 16, (m, k))
    b = rng.integers(0, 16, (k, n)) if mode is Mode.BWD_WEIGHT else rng.integers(-8, 8, (k, n))
    return a, b


def reference_tile(mode, a_beats, b_beats, width):
    """Python-int reference of one tile from its beats: product per term, clamp after every addition."""
    lo, hi = units.acc_limits(width)
    k, rows = a_beats.shape
    acc, overflow = np.zeros((rows, b_beats.shape[1]), np.int64), np.zeros((rows, b_beats.shape[1]), bool)
    for i in range(rows):
        for j in range(b_beats.shape[1]):
            total, flag = 0, False
            for t in range(k):
                a, b = int(a_beats[t, i]), int(b_beats[t, j])
                if mode is Mode.FWD:
                    term = a * b
                else:
                    e = a & 0b111
                    term = 0 if e == 0 else (-1 if a & 0b1000 else 1) * (b << (2 * e - 1 - (mode is Mode.BWD_WEIGHT)))
                clamped = min(max(total + term, lo), hi)
                flag |= clamped != total + term
                total = clamped
            acc[i, j], overflow[i, j] = total, flag
    return acc, overflow


@pytest.mark.parametrize("mode", list(Mode))
@pytest.mark.parametrize("rows, cols", [(2, 3), (8, 8), (5, 2)])
def test_tiles_reassemble_to_the_untiled_gemm(mode, rows, cols, seed):
    rng = np.random.default_rng([seed, mode, rows, cols])
    for _ in range(5):
        m, k, n = (int(v) for v in rng.integers(1, 30, 3))
        a, b = random_operands(rng, mode, m, k, n)
        tiles = tiling.tiles(mode, a, b, rows, cols)
        assert len(tiles) == -(-m // rows) * -(-n // cols)
        got = tiling.assemble(tiles, m, n)
        if mode is Mode.FWD:
            want = units.gemm_int4(a, b, signed_a=False, width=units.FWD_WIDTH)
        else:
            phase = int(mode is Mode.BWD_WEIGHT)
            want = units.gemm_fp4_int4(a, phase, b, signed_b=mode is Mode.BWD_DATA, width=units.BWD_WIDTH)
        assert np.array_equal(got.acc, want.acc) and np.array_equal(got.overflow, want.overflow), f"seed={seed}"
        direct = tiling.gemm(mode, a, b)
        assert np.array_equal(direct.acc, want.acc) and np.array_equal(direct.overflow, want.overflow)


@pytest.mark.parametrize("mode", list(Mode))
def test_tile_beats_and_results_match_a_sequential_reference(mode, seed):
    """Each tile's expected results follow from its own (padded) beats; small widths saturate."""
    rng = np.random.default_rng([seed, mode])
    width = 8 if mode is Mode.FWD else 12
    a, b = random_operands(rng, mode, 5, 13, 7)
    tiles = tiling.tiles(mode, a, b, 3, 4, s=-5, fwd_width=width, bwd_width=width)
    assert any(tile.overflow.any() for tile in tiles) and any((~tile.overflow).any() for tile in tiles)
    for tile in tiles:
        assert (tile.mode, tile.k, tile.s) == (mode, 13, -5)
        assert tile.a_beats.shape == (13, 3) and tile.b_beats.shape == (13, 4)
        rows_in, cols_in = min(3, 5 - tile.row0), min(4, 7 - tile.col0)
        assert np.array_equal(tile.a_beats[:, :rows_in], a[tile.row0:tile.row0 + rows_in].T)
        assert np.array_equal(tile.b_beats[:, :cols_in], b[:, tile.col0:tile.col0 + cols_in])
        assert not tile.a_beats[:, rows_in:].any() and not tile.b_beats[:, cols_in:].any(), "padding is zero"
        acc, overflow = reference_tile(mode, tile.a_beats, tile.b_beats, width)
        assert np.array_equal(tile.acc, acc) and np.array_equal(tile.overflow, overflow), f"seed={seed} tile {tile[:2]}"


def test_tiles_are_issued_row_major_and_beats_in_row_order():
    a, b = np.ones((5, 2), int), np.ones((2, 7), int)
    tiles = tiling.tiles(Mode.FWD, a, b, 2, 3, s=7)
    assert [(t.row0, t.col0) for t in tiles] == [(r, c) for r in (0, 2, 4) for c in (0, 3, 6)]
    beats = tiling.output_beats(tiles)
    assert [(beat.tile, beat.row, beat.last) for beat in beats] == [
        (t, r, r == 1) for t in range(9) for r in range(2)]
    assert all(beat.mode is Mode.FWD and beat.s == 7 for beat in beats)
    # Tile (4, 6) covers one real row and one real column: only acc[0][0] is non-zero.
    assert beats[-2].acc.tolist() == [2, 0, 0] and beats[-1].acc.tolist() == [0, 0, 0]


def test_weight_gradient_is_the_transpose_of_x_t_dy():
    """BWD_WEIGHT on (dY^T, X) gives dW^T; its transpose is X^T . dY of the decoded values, exactly."""
    rng = np.random.default_rng(5)
    x = rng.integers(0, 16, (9, 6))           # batch 9, 6 inputs
    dy = rng.integers(0, 16, (9, 4))          # FP4 codes, 4 outputs
    dw_t = tiling.tiles(Mode.BWD_WEIGHT, dy.T, x, 3, 3)
    dw = tiling.assemble(dw_t, 4, 6).acc.T
    s = 13  # one accumulator unit is 2**(s - 13) = 1
    assert np.array_equal(dw, (x.T @ fp4.decode(dy, s, 1)).astype(np.int64))


def test_modes_are_the_command_encoding():
    assert [(m.name, int(m)) for m in Mode] == [("FWD", 0), ("BWD_DATA", 1), ("BWD_WEIGHT", 2)]
    assert tiling.K_MAX == 65535 and (tiling.SIZE_MIN, tiling.SIZE_MAX) == (2, 32)
    assert tiling.K_MAX * 8 * 15 < 1 << (units.FWD_WIDTH - 1), "FWD cannot saturate at the default width"


@pytest.mark.parametrize("call, error, message", [
    (lambda: tiling.tiles(3, [[0]], [[0]]), ValueError, r"mode must be one of .* got 3"),
    (lambda: tiling.tiles("FWD", [[0]], [[0]]), ValueError, r"mode must be one of .* got 'FWD'"),
    (lambda: tiling.tiles(1.0, [[0]], [[0]]), ValueError, r"mode must be one of .* got 1.0"),
    (lambda: tiling.gemm(True, [[0]], [[0]]), ValueError, r"mode must be one of .* got True"),
    (lambda: tiling.tiles(Mode.FWD, [[16]], [[0]]), ValueError, r"a must lie in 0..15, got 16"),
    (lambda: tiling.tiles(Mode.BWD_DATA, [[-1]], [[0]]), ValueError, r"a must lie in 0..15, got -1"),
    (lambda: tiling.tiles(Mode.FWD, [[0]], [[8]]), ValueError, r"b must lie in -8..7, got 8"),
    (lambda: tiling.tiles(Mode.BWD_DATA, [[0]], [[-9]]), ValueError, r"b must lie in -8..7, got -9"),
    (lambda: tiling.tiles(Mode.BWD_WEIGHT, [[0]], [[-1]]), ValueError, r"b must lie in 0..15, got -1"),
    (lambda: tiling.tiles(Mode.FWD, [[0.5]], [[0]]), TypeError, r"a must be an integer array, got dtype float64"),
    (lambda: tiling.tiles(Mode.FWD, [[0, 1]], [[0, 1]]), ValueError, r"inner dimensions differ: a has shape \(1, 2\)"),
    (lambda: tiling.tiles(Mode.FWD, [0, 1], [[0], [1]]), ValueError, r"a and b must be 2-D, got shapes \(2,\)"),
    (lambda: tiling.tiles(Mode.FWD, np.zeros((2, 0), int), np.zeros((0, 2), int)), ValueError,
     r"K \(columns of a\) must lie in 1..65535, got 0"),
    (lambda: tiling.gemm(Mode.FWD, np.zeros((1, 65536), int), np.zeros((65536, 1), int)), ValueError,
     r"K \(columns of a\) must lie in 1..65535, got 65536"),
    (lambda: tiling.tiles(Mode.FWD, [[0]], [[0]], rows=1), ValueError, r"rows must lie in 2..32, got 1"),
    (lambda: tiling.tiles(Mode.FWD, [[0]], [[0]], cols=33), ValueError, r"cols must lie in 2..32, got 33"),
    (lambda: tiling.tiles(Mode.FWD, [[0]], [[0]], cols=2.0), TypeError, r"cols must be an int, got 2.0"),
    (lambda: tiling.tiles(Mode.FWD, [[0]], [[0]], s=32), ValueError, r"s must lie in -32..31, got 32"),
    (lambda: tiling.tiles(Mode.FWD, [[0]], [[0]], fwd_width=7), ValueError, r"fwd_width must lie in 8..64, got 7"),
    (lambda: tiling.gemm(Mode.BWD_DATA, [[0]], [[0]], bwd_width=65), ValueError,
     r"bwd_width must lie in 8..64, got 65"),
    (lambda: tiling.assemble([], 0, 3), ValueError, r"m must lie in 1..\d+, got 0"),
])
def test_bad_input_names_the_value(call, error, message):
    with pytest.raises(error, match=message):
        call()
