# amaranth: UnusedElaboratable=no
"""MxTrainingArray in amaranth.sim, bit-exact against golden.mx_tiling.

Random shapes in all three modes (M, N not multiples of R, C; K of 1..3 blocks) with random
scales (extremes and NaN included), operand gaps and back-pressure, for MXFP4 and NVFP4; the
cycle formula; bad commands (K not a multiple of the block); parameter validation. The cocotb
bench (testbench/bench_mx_array.py) runs the same checks on Icarus and Verilator.
"""

import numpy as np
import pytest

from golden import mx_tiling
from golden.tiling import Mode
from rtl.array import MxTrainingArray, pack_command
from rtl.mx_array_pe import MxArrayProcessingElement, MxGroupUnit
from testbench.array_bench import stream_tiles
from testbench.mx_vectors import block_operands
from testbench.payloads import mx_commands_and_beats

FIELDS = ("row", "last", "mode", "s")
FLAGS = ("acc", "invalid", "overflow")


def run(dut, tiles, **options):
    expected = mx_tiling.output_beats(tiles)
    return stream_tiles(dut, *mx_commands_and_beats(tiles), len(expected), **options), expected


def check(trace, expected, seed):
    assert len(trace.outputs) == len(expected), f"seed {seed}: {len(trace.outputs)} output beats, expected {len(expected)}"
    for index, (got, want) in enumerate(zip(trace.outputs, expected)):
        actual = {name: [int(v) for v in getattr(got, name)] for name in FLAGS}
        actual.update({name: int(getattr(got, name)) for name in FIELDS})
        wanted = {name: [int(v) for v in getattr(want, name)] for name in FLAGS}
        wanted.update({name: int(getattr(want, name)) for name in FIELDS})
        assert actual == wanted, (f"seed {seed}: output beat {index} (tile {want.tile}, row {want.row}) differs: "
                                  f"expected {wanted}, got {actual}")


def gemm_tiles(rng, fmt, mode, rows, cols, m, k, n, **options):
    operands = block_operands(rng, fmt, m, k, n, **options)
    return mx_tiling.tiles(fmt, *operands, rows, cols, mode, int(rng.integers(-32, 32)))


@pytest.mark.parametrize("fmt", ["mxfp4", "nvfp4"])
@pytest.mark.parametrize("mode", list(Mode))
def test_random_gemms_in_every_mode(fmt, mode, seed):
    rng = np.random.default_rng([seed, int(mode), fmt == "nvfp4"])
    block = mx_tiling.FORMATS[fmt][0]
    tiles = [tile for _ in range(2) for tile in
             gemm_tiles(rng, fmt, mode, 3, 2, int(rng.integers(1, 6)), block * int(rng.integers(1, 4)),
                        int(rng.integers(1, 4)))]
    trace, expected = run(MxTrainingArray(3, 2, fmt), tiles, rng=rng, in_rate=0.7, out_rate=0.6)
    check(trace, expected, seed)


def test_mode_changes_and_back_to_back_tiles(seed):
    """Tiles of one block back to back (the shared unit busy every block), mode changes between GEMMs."""
    rng = np.random.default_rng(seed)
    tiles = [tile for mode in (Mode.FWD, Mode.FWD, Mode.BWD_WEIGHT, Mode.BWD_DATA)
             for tile in gemm_tiles(rng, "mxfp4", mode, 2, 4, 4, 32 * int(rng.integers(1, 3)), 8, nan=0)]
    dut = MxTrainingArray(2, 4)
    trace, expected = run(dut, tiles)
    check(trace, expected, seed)
    timing = dut.timing([(tile.mode, len(tile.a_beats)) for tile in tiles])
    assert trace.out_cycles == [last + dut.latency + row for _, last, _ in timing for row in range(dut.rows)]
    assert trace.beat_cycles[-1] == timing[-1][1]


def test_bad_depth_is_dropped_with_error(seed):
    rng = np.random.default_rng(seed)
    tiles = gemm_tiles(rng, "nvfp4", Mode.FWD, 2, 2, 2, 16, 2)
    commands, a_beats, b_beats = mx_commands_and_beats(tiles)
    trace = stream_tiles(MxTrainingArray(2, 2, "nvfp4"), [pack_command(Mode.FWD, 8, 0)] + commands, a_beats, b_beats,
                         2, drain_cycles=4)
    assert trace.error and len(trace.outputs) == 2
    check(trace, mx_tiling.output_beats(tiles), seed)


def test_parameters_are_validated():
    with pytest.raises(ValueError, match="cols must lie in 2..16, got 17"):
        MxTrainingArray(2, 17, "nvfp4")
    with pytest.raises(ValueError, match="fmt must be one of"):
        MxTrainingArray(2, 2, "fp8")
    with pytest.raises(ValueError, match="rows must lie in 2..32, got 1"):
        MxTrainingArray(1, 2)
    with pytest.raises(ValueError, match=r"block must be one of \(16, 32\), got 8"):
        MxArrayProcessingElement(8)
    with pytest.raises(ValueError, match=r"fmt must be one of \['mxfp4', 'nvfp4'\], got 'fp8'"):
        MxGroupUnit("fp8", 4)
    with pytest.raises(ValueError, match="slots must lie in 2..16, got 17"):
        MxGroupUnit("nvfp4", 17)
    with pytest.raises(ValueError, match="slots must lie in 2..32, got 1"):
        MxGroupUnit("mxfp4", 1)


@pytest.mark.parametrize("rows, cols, fmt", [(4, 4, "mxfp4"), (8, 8, "mxfp4"), (3, 16, "nvfp4"), (4, 4, "nvfp4")])
def test_unit_groups_back_to_back(rows, cols, fmt, seed):
    """One float32 unit for all 4 x 4 PEs, two for 8 x 8 (tile period 36 > 32 beats binds), one
    per row at C = 16 = block (busy in every cycle of a block), and the 4 x 4 NVFP4 whose one-block
    tiles wait three deep in the metadata queue: back-to-back one-block tiles and the cycle
    formula, then gaps and back-pressure."""
    rng = np.random.default_rng([seed, rows, cols])
    block = mx_tiling.FORMATS[fmt][0]
    tiles = [tile for k in (block, 2 * block) for tile in gemm_tiles(rng, fmt, Mode.FWD, rows, cols, rows, k, 2 * cols)]
    dut = MxTrainingArray(rows, cols, fmt)
    assert dut.meta_depth == (3 if (rows, cols, fmt) == (4, 4, "nvfp4") else 2)
    trace, expected = run(dut, tiles)
    check(trace, expected, seed)
    timing = dut.timing([(tile.mode, len(tile.a_beats)) for tile in tiles])
    assert trace.out_cycles == [last + dut.latency + row for _, last, _ in timing for row in range(dut.rows)]
    trace, expected = run(MxTrainingArray(rows, cols, fmt), tiles, rng=rng, in_rate=0.8, out_rate=0.4)
    check(trace, expected, seed)
