"""cocotb bench of the MX training array (rtl.array.MxTrainingArray) against golden.mx_tiling.

The array is the simulation top, driven through its streams by the FP16 array's driver with
12-bit block-scaled lanes (code | block scale << 4): GEMMs of all three modes with random shapes
(M, N not multiples of R, C), K of 1..4 blocks, random scales (some at the ends of the range, a
few NaN) and zero blocks, random valid gaps and back-pressure, several GEMMs back to back so that
mode changes meet busy tiles; GEMMs of corner classes (NaN scales, overflow to +-Inf, subnormal
and vanishing sums, all-zero blocks, ties in the float32 add); the cycle of every output row
against the timing formula. Every output row is checked against golden.mx_tiling.output_beats
(float32 bits, invalid, overflow, row, last, mode, s).
"""

import json
import os
import time

import numpy as np
from cocotb.task import bridge, resume

from golden import mx_gemm, mx_tiling
from golden.tiling import Mode
from golden.training import data as datasets
from golden.training.schemes import get_scheme
from golden.training.train import SGD, evaluate, train_step
from rtl.array import SCALE_SHAPE
from rtl.array_pe import MxPe

from .array_driver import RATES, GemmRecord, cycles_by_mode, random_size
from .bench_fp16_array import Fp16ArrayBench, Fp16ArrayDriver
from .bench_train_steps import (BATCH, DATASET, LR, REPORT, batch_indices, build_mlp, network_description, raw_bits,
                                train, write_report)
from .bench_training_array import documented_timing
from .checks import bench_test
from .mx_vectors import block_operands
from .payloads import mx_commands_and_beats

RANDOM_GEMMS = {"quick": 6, "full": 10, "long": 100}
CORNER_GEMMS = {"quick": 3, "full": 4, "long": 30}


class MxArrayDriver(Fp16ArrayDriver):
    """:class:`Fp16ArrayDriver` for block-scaled lanes and the float32 output beat (golden.mx_tiling)."""

    def __init__(self, dut, ctx, valid_rate=1.0, ready_rate=1.0):
        super().__init__(dut, ctx, valid_rate, ready_rate)
        self.fmt = ctx.params["fmt"]
        self.block = mx_tiling.FORMATS[self.fmt][0]
        self.pe = MxPe(self.fmt, self.rows, self.cols)
        self.layout = self.pe.output_layout(self.rows, self.cols, SCALE_SHAPE)

    def tiles(self, mode, operands, s=0):
        return mx_tiling.tiles(self.fmt, *operands, self.rows, self.cols, mode, s)

    def payloads(self, tiles):
        return mx_commands_and_beats(tiles)

    def expected(self, tiles):
        return mx_tiling.output_beats(tiles)

    async def block_gemm(self, mode, a, b):
        """``a @ b.T`` on the array for float32 MXFP4 values ``a`` (M, K), ``b`` (N, K) blocked along K
        (golden.mx_gemm.BlockGemm's contract): float32 (M, N) assembled from the emitted rows."""
        operands = mx_gemm.mxfp4_operands(a, b)
        tiles = self.tiles(mode, operands)
        transfers = await self.run(tiles)
        self.records.append(GemmRecord(Mode(mode), (a.shape[0], a.shape[1], b.shape[0]), len(tiles), transfers.cycles))
        beats = transfers.beats
        emitted = [tile._replace(sums=np.array([beat.acc for beat in beats[n * self.rows:(n + 1) * self.rows]], np.uint32))
                   for n, tile in enumerate(tiles)]
        return mx_tiling.assemble(emitted, a.shape[0], b.shape[0])

    def _decode(self, index, bits):
        row = self.layout.from_bits(bits)
        return mx_tiling.MxOutputBeat(index // self.rows, int(row.row), bool(row.last), int(row.mode), int(row.s),
                                      np.array(list(row.acc), np.int64), np.array(list(row.invalid), bool),
                                      np.array(list(row.overflow), bool))

    def _describe(self, tiles, expected, index):
        beat, col = divmod(index, self.cols)
        want = expected[beat]
        tile = tiles[want.tile]
        return (f"output beat {beat} = tile {want.tile} ({Mode(tile.mode).name}, k={len(tile.a_beats)}, s={tile.s}, "
                f"output rows {tile.row0}.., columns {tile.col0}..) row {want.row} column {col}; A lane {want.row}: "
                f"codes {tile.a_beats[:, want.row].tolist()}, block scales {tile.a_scale_beats[:, want.row].tolist()}; "
                f"B lane {col}: codes {tile.b_beats[:, col].tolist()}, block scales {tile.b_scale_beats[:, col].tolist()}")


class MxArrayBench(Fp16ArrayBench):
    def driver(self, valid_rate=1.0, ready_rate=1.0):
        return MxArrayDriver(self.dut, self.ctx, valid_rate, ready_rate)


async def run_random(bench, count, **draw):
    """``count`` GEMMs of random modes, shapes, K (1..4 blocks) and s, 1-3 per run back to back,
    random rates; ``draw`` goes to :func:`testbench.mx_vectors.block_operands`. Returns the tiles."""
    rng, rows, cols = bench.ctx.rng, bench.rows, bench.cols
    done, sent = 0, []
    while done < count:
        driver = bench.driver(*RATES[int(rng.integers(len(RATES)))])
        tiles = []
        for mode in rng.permutation(list(Mode))[:min(count - done, int(rng.integers(1, 4)))]:
            k = driver.block * int(rng.integers(1, 5))
            m, n = random_size(rng, rows), random_size(rng, cols)
            operands = block_operands(rng, driver.fmt, m, k, n, **draw)
            tiles += driver.tiles(Mode(int(mode)), operands, int(rng.integers(-32, 32)))
            done += 1
        await driver.run(tiles)
        sent += tiles
    return sent


@bench_test(MxArrayBench)
async def random_gemms(bench):
    """Random GEMMs of every mode; 10 % of the scales at the ends of the range, 1 % NaN, 10 % zero blocks."""
    await run_random(bench, RANDOM_GEMMS[bench.ctx.level])


@bench_test(MxArrayBench)
async def corner_classes(bench):
    """GEMMs with most scales at the ends of the range, NaN scales and zero blocks, then the
    float32 ties; the sums must include NaN, zeros, normal numbers and (MXFP4) +-Inf and subnormals."""
    tiles = await run_random(bench, CORNER_GEMMS[bench.ctx.level], extreme=0.6, nan=0.05, zero_blocks=0.3)
    driver = bench.driver()
    await driver.run(driver.tiles(Mode.BWD_DATA, tie_operands(driver.fmt, driver.block, bench.cols)))
    sums = np.concatenate([tile.sums.ravel() for tile in tiles])
    exponent, fraction = sums & 0x7F800000, sums & 0x007FFFFF
    classes = {"NaN": (exponent == 0x7F800000) & (fraction != 0), "Inf": (exponent == 0x7F800000) & (fraction == 0),
               "subnormal": (exponent == 0) & (fraction != 0), "zero": sums & 0x7FFFFFFF == 0,
               "normal": (exponent != 0) & (exponent != 0x7F800000)}
    if driver.fmt == "nvfp4":   # its terms lie within 2**-20..2**28: no float32 overflow or subnormal
        del classes["Inf"], classes["subnormal"]
    missing = [name for name, found in classes.items() if not found.any()]
    bench.ctx.expect(not missing, f"the corner GEMMs produced no {missing} sums")


def tie_operands(fmt, block, cols):
    """One output row whose blocks add 2**24, 1 and 3: 2**24 + 1 ties to 2**24 (even), 2**24 + 3
    to 2**24 + 4 (docs/numerics.md section 10); MXFP4 columns j > 0 start from 2**(24 - j) instead."""
    a = np.zeros((1, 3 * block), np.uint8)
    b = np.zeros((3 * block, cols), np.uint8)
    a[0, [block, 2 * block]] = [2, 5]                            # E2M1 codes of 1 and 3
    b[[block, 2 * block], :] = 2
    if fmt == "mxfp4":                                           # 1 * 1 * 2**24 * 2**-j
        a[0, 0], b[0] = 2, 2
        a_s = np.array([[127 + 24, 127, 127]], np.uint8)
        b_s = np.full((3, cols), 127, np.uint8)
        b_s[0] -= np.arange(cols, dtype=np.uint8)
    else:   # 16 products 4 * 4 (code 6) with both E4M3 scales 2**8 (0x78: q = 8, x = 5), then 1 and 3 at 1.0
        a[0, :block], b[:block] = 6, 6
        a_s = np.array([[0x78, 0x38, 0x38]], np.uint8)
        b_s = np.full((3, cols), 0x38, np.uint8)
        b_s[0] = 0x78
    return a, a_s, b, b_s


@bench_test(MxArrayBench)
async def cycle_counts(bench):
    """Back-to-back tiles with mode changes, host never stalling: every command, beat and output row
    in the cycle of the timing formula of docs/architecture.md with the MX latency and tile period."""
    rng, driver = bench.ctx.rng, bench.driver()
    tiles = []
    for mode in (Mode.FWD, Mode.FWD, Mode.BWD_WEIGHT, Mode.BWD_DATA):
        k = driver.block * int(rng.integers(1, 3))
        tiles += driver.tiles(mode, block_operands(rng, driver.fmt, bench.rows, k, 2 * bench.cols, nan=0))
    transfers = await driver.run(tiles)
    plan = [(tile.mode, len(tile.a_beats)) for tile in tiles]
    want = documented_timing(plan, bench.rows, bench.cols, driver.pe.sum_latency, driver.pe.period_extra)
    got = (transfers.cmd_cycles, transfers.beat_cycles, transfers.out_cycles)
    for name, expected, actual in zip(("command", "beat", "output row"), want, got):
        bench.ctx.compare({"cycle": np.array(expected)}, {"cycle": np.array(actual)},
                          lambda index, name=name: f"{name} {index[0]} of the tiles (mode, k) {plan}")


# --- training steps of the mxfp4 scheme on the array ----------------------------------------------

MX_REPORT = REPORT.with_name("mx_train_steps.json")
TRAIN_STEPS = {"quick": 2, "full": 2, "long": 5}
TRAIN_HIDDEN = 32     # one block of K in every GEMM of the two MXFP4 layers: a small, cheap run


class MxArrayBackend:
    """A block_gemm backend of golden.training.layers.BlockScaledQuant on the simulated array, for
    code running in a cocotb bridge thread (golden.mx_gemm.BlockGemm is its golden twin)."""

    def __init__(self, driver):
        self._gemm = resume(driver.block_gemm)

    def block_gemm(self, mode, a, b):
        return self._gemm(mode, a, b)


def _trains():
    """Training steps run on the MXFP4 configurations under Verilator (Icarus is too slow for them)."""
    return (json.loads(os.environ.get("FOURBIT_PARAMS", "{}")).get("fmt") == "mxfp4"
            and os.environ.get("FOURBIT_SIM") == "verilator")


def mxfp4_mlp(dataset, backend, seed):
    """The MLP of testbench.bench_train_steps with TRAIN_HIDDEN units and its two hidden layers in the
    mxfp4 scheme (its recipe's stochastic rounding and Hadamard signs drawn from ``seed``)."""
    quant = get_scheme("mxfp4").make_quant(backend=backend, rng=np.random.default_rng([seed, 2]))
    return build_mlp(dataset, quant, seed, TRAIN_HIDDEN)


@bench_test(MxArrayBench, skip=not _trains())
async def train_steps(bench):
    """TRAIN_STEPS[level] steps of the mxfp4 scheme with every GEMM of its two MXFP4 layers on the array:
    the weights must be bit-identical to the pure-golden run (golden.mx_gemm) and the held-out loss
    must decrease. Figures into build/sim/mx_train_steps.json."""
    ctx = bench.ctx
    dataset = datasets.load(DATASET)
    batches = batch_indices(dataset, TRAIN_STEPS[ctx.level], ctx.seed)
    reference = mxfp4_mlp(dataset, mx_gemm.BlockGemm(), ctx.seed)
    before = evaluate(reference, dataset.x_test, dataset.y_test)[0]
    golden_losses = train(reference, dataset, batches)
    after = evaluate(reference, dataset.x_test, dataset.y_test)[0]

    driver = bench.driver()
    model = mxfp4_mlp(dataset, MxArrayBackend(driver), ctx.seed)
    optimizer = SGD(model)
    losses, per_step = [], []
    wall = time.perf_counter()
    for idx in batches:
        seen = len(driver.records)
        step = bridge(lambda idx=idx: train_step(model, optimizer, dataset.x_train[idx], dataset.y_train[idx], LR).loss)
        losses.append(await step())
        cycles, macs = cycles_by_mode(driver.records[seen:])
        per_step.append({"gemms": len(driver.records) - seen, "array_cycles": sum(cycles.values()),
                         "array_cycles_by_kind": cycles, "macs": sum(macs.values()), "macs_by_kind": macs})
    wall = time.perf_counter() - wall

    got, want = raw_bits(model), raw_bits(reference)
    identical = all(np.array_equal(got[key], want[key]) for key in want)
    last, pes = per_step[-1], bench.rows * bench.cols
    write_report(ctx.level, ctx.sim, {
        "seed": ctx.seed, "scheme": "mxfp4", "dataset": DATASET, "steps": len(batches), "batch": BATCH, "lr": LR,
        "network": network_description(model), "array": ctx.params, "gemms_per_step": last["gemms"],
        "array_cycles_per_step": last["array_cycles"], "array_cycles_per_step_by_kind": last["array_cycles_by_kind"],
        "macs_per_step": last["macs"], "utilization": round(last["macs"] / (pes * last["array_cycles"]), 4),
        "per_step": per_step, "wall_seconds": round(wall, 2),
        "simulated_cycles_per_second": round(sum(step["array_cycles"] for step in per_step) / wall),
        "losses": losses, "golden_losses": golden_losses, "test_loss_before": before, "test_loss_after": after,
        "weights_identical": identical,
    }, MX_REPORT)
    for key in want:
        ctx.compare({"bits": want[key].ravel()}, {"bits": got[key].ravel()},
                    lambda index, key=key: f"float32 parameter {key[1]} of layer {key[0]}, element {index[0]}, "
                                           f"after {len(batches)} steps")
    ctx.expect(losses == golden_losses, f"batch losses {losses} differ from golden {golden_losses}")
    ctx.expect(after < before, f"held-out loss did not decrease in {len(batches)} steps: {before} -> {after}")
