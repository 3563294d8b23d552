"""Fp16TrainingArray in amaranth.sim, bit-exact against golden.fp16_tiling.

Random shapes in all three modes (M, N not multiples of L*R, C), operand gaps and back-pressure,
NaN/Inf/subnormal operands, the timing formula with its phase rule; the 4-bit array's own
Verilog is unchanged by the PE seam (tests/test_rtl_array.py and the cocotb benches cover it). The cocotb bench
(testbench/bench_fp16_array.py) runs the same checks on Icarus and Verilator.
"""

import numpy as np
import pytest

from golden import fp16, fp16_tiling
from golden.tiling import Mode
from rtl.array import Fp16TrainingArray, pack_command
from testbench.array_bench import stream_tiles

FIELDS = ("row", "last", "mode", "s")


def pack16(values):
    """Raw bits of one FP16 operand beat: lane i at bits 16i..16i+15."""
    return sum(int(value) << (16 * lane) for lane, value in enumerate(values))


def run(dut, tiles, **options):
    commands = [pack_command(tile.mode, tile.k, tile.s) for tile in tiles]
    a_beats = [pack16(beat) for tile in tiles for beat in tile.a_beats]
    b_beats = [pack16(beat) for tile in tiles for beat in tile.b_beats]
    expected = fp16_tiling.output_beats(tiles)
    trace = stream_tiles(dut, commands, a_beats, b_beats, len(expected), **options)
    return trace, expected


def check(trace, expected, seed):
    assert len(trace.outputs) == len(expected), f"seed {seed}: {len(trace.outputs)} output beats, expected {len(expected)}"
    for index, (got, want) in enumerate(zip(trace.outputs, expected)):
        actual = {name: [int(v) for v in getattr(got, name)] for name in ("acc", "invalid", "overflow")}
        actual.update({name: int(getattr(got, name)) for name in FIELDS})
        wanted = {name: [int(v) for v in getattr(want, name)] for name in ("acc", "invalid", "overflow")}
        wanted.update({name: int(getattr(want, name)) for name in FIELDS})
        assert actual == wanted, (f"seed {seed}: output beat {index} (tile {want.tile}, row {want.row}) differs: "
                                  f"expected {wanted}, got {actual}")


def operands(rng, shape, specials=0.02):
    """Values 2**-6 .. 2**7 of either sign with short fractions; ``specials`` of them corner patterns."""
    keep = rng.integers(0, 11, shape)
    frac = rng.integers(0, 1 << 10, shape) & ~((1 << (10 - keep)) - 1)
    values = (rng.integers(0, 2, shape) << 15) | (rng.integers(9, 22, shape) << 10) | frac
    special = rng.random(shape) < specials
    values[special] = rng.choice(fp16.CORNER_PATTERNS, int(special.sum()))
    return values


@pytest.mark.parametrize("mode", list(Mode))
def test_random_gemms_in_every_mode(mode, seed):
    rng = np.random.default_rng([seed, int(mode)])
    dut = Fp16TrainingArray(3, 2)
    gemms = [(int(rng.integers(1, 24)), int(rng.integers(1, 12)), int(rng.integers(1, 6))) for _ in range(2)]
    tiles = [tile for m, k, n in gemms
             for tile in fp16_tiling.tiles(mode, operands(rng, (m, k)), operands(rng, (k, n)), 3, 2,
                                           s=int(rng.integers(-32, 32)))]
    trace, expected = run(dut, tiles, rng=rng, in_rate=0.7, out_rate=0.6)
    check(trace, expected, seed)


def test_nan_inf_and_overflow_follow_golden(seed):
    """Corner operands in short sums; rows/columns 0 and 1 make sure of an overflow and a 0 * Inf."""
    rng = np.random.default_rng(seed)
    a = rng.choice(fp16.CORNER_PATTERNS, (14, 3))
    b = rng.choice(fp16.CORNER_PATTERNS, (3, 6))
    a[0], b[:, 0] = [0x7BFF, 0x7BFF, 0x3C00], [0x4000, 0x3C00, 0x0000]   # 65504*2 -> Inf: overflow
    a[1], b[:, 1] = [0x7C00, 0x0000, 0x3C00], [0x0000, 0x3C00, 0x3C00]   # Inf*0 -> NaN: invalid
    tiles = fp16_tiling.tiles(Mode.BWD_DATA, a, b, 2, 2)
    acc = np.concatenate([tile.acc.ravel() for tile in tiles])
    for name in ("invalid", "overflow"):
        flags = np.concatenate([getattr(tile, name).ravel() for tile in tiles])
        assert flags.any() and not flags.all(), name
    assert (acc == fp16.CANONICAL_NAN).any() and ((acc & 0x7FFF) == 0x7C00).any() and ((acc & 0x7C00) != 0x7C00).any()
    trace, expected = run(Fp16TrainingArray(2, 2), tiles)
    check(trace, expected, seed)


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_mode_changes_and_timing_follow_the_formula():
    """A mode change, a K = 1 tile, a tile of the same mode, a K = 2 tile whose last k is held back."""
    rng = np.random.default_rng(3)
    dut = Fp16TrainingArray(2, 3)
    sums = dut.sums
    tiles = (fp16_tiling.tiles(Mode.FWD, operands(rng, (12, 5)), operands(rng, (5, 3)), 2, 3)
             + fp16_tiling.tiles(Mode.BWD_WEIGHT, operands(rng, (12, 1)), operands(rng, (1, 3)), 2, 3)
             + fp16_tiling.tiles(Mode.BWD_WEIGHT, operands(rng, (12, 4)), operands(rng, (4, 3)), 2, 3)
             + fp16_tiling.tiles(Mode.BWD_WEIGHT, operands(rng, (12, 2)), operands(rng, (2, 3)), 2, 3))
    trace, expected = run(dut, tiles)
    check(trace, expected, 3)
    assert (sums, dut.latency, dut.tile_period) == (6, 2 + 3 + 11, 12 + 3 - 1)
    predicted = dut.timing([(tile.mode, tile.k) for tile in tiles])
    # Hand-worked: tile 0 takes beats 0..29; the mode change waits for its drain to start (29 + 16
    # = 45), after the tile period (29 + 14 = 43); tile 1 (K = 1) takes beats 45..50 and starts its
    # own phase; tile 2 starts at 51, its last k step is not held (50 + 14 = 64 <= 51 + 3 * 6);
    # tile 3 starts at 75, its last k step is held from 81 to 74 + 14 = 88, then to 93, in its phase.
    assert predicted == [(0, 29, 45), (45, 50, 66), (51, 74, 90), (75, 98, 114)]
    assert trace.out_cycles[::2 * sums] == [first_row for _, _, first_row in predicted]
    assert trace.out_cycles == [first + row for _, _, first in predicted for row in range(2 * sums)]
    last_beats = np.cumsum([tile.k * sums for tile in tiles]) - 1
    assert [trace.beat_cycles[i] for i in last_beats] == [last for _, last, _ in predicted]
    assert [trace.beat_cycles[i - tile.k * sums + 1] for i, tile in zip(last_beats, tiles)] == [
        first for first, _, _ in predicted]


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_fp16_ports():
    dut = Fp16TrainingArray(4, 3)
    assert len(dut.a.payload.as_value()) == 64 and len(dut.b.payload.as_value()) == 48
    fields = dut.o.payload.shape().members
    assert list(fields) == ["acc", "invalid", "overflow", "row", "last", "mode", "s"]
    assert fields["row"] == range(4 * dut.sums) and dut.sums == fp16_tiling.SUMS


@pytest.mark.parametrize(("rows", "cols", "name"), [(1, 4, "rows"), (4, 33, "cols")])
def test_bad_size_names_the_value(rows, cols, name):
    with pytest.raises(ValueError, match=name):
        Fp16TrainingArray(rows, cols)
