"""cocotb bench of MxBlockTerm (rtl/mx_row.py) against golden.mx_gemm.block_terms, in the batch wrapper.

Each vector is one finished block sum with its two scale codes; its term ``(sig, exp, nan)`` shows
LATENCY cycles later. Every lane takes a new vector every cycle, and every output cycle is compared
(the cycles before a vector's term show the term of the idle inputs: sum 0, codes 0).

* ``every_scale_pair``: all 65,536 pairs of scale codes (so every NaN, zero, subnormal, negative and
  extreme code against every other), each with a block sum drawn from the corner sums or uniformly.
* ``every_block_sum``: every block sum (-MAX..MAX) against the scale pairs of :data:`SUM_SWEEP_SCALES`.
* ``corners``: directed classes (:func:`corner_classes`): zero block sums, NaN codes, extreme codes
  and, by the float32 value golden gives the term alone (RNE(+0 + term)), the terms that underflow
  to zero, land on a subnormal, overflow to Inf or are the largest finite; every class must be met.
* ``direct_drive``: random vectors cycle by cycle through the wrapper ports (an X or Z fails).
"""

import numpy as np
from cocotb.triggers import ClockCycles

from golden import mx, mx_gemm
from rtl.mx_row import MxBlockTerm

from .batch import as_signed
from .checks import bench_test
from .mac_bench import BatchBench

LATENCY = MxBlockTerm.LATENCY
SUM_MAX = {"mxfp4": mx_gemm.MX_SUM_MAX, "nvfp4": mx_gemm.NV_SUM_MAX}
PASSES = {"quick": 1, "full": 2, "long": 16}   # random block sums per scale pair (65,536 pairs a pass)
DIRECT_CYCLES = {"quick": 400, "full": 2_000, "long": 5_000}
#: Scale code pairs of every_block_sum. MXFP4: 1 x 1, the smallest and largest, both ends mixed,
#: NaN either side. NVFP4: 1 x 1, the smallest subnormal, the largest, a negative, -0, NaN (0x7F, 0xFF)
#: and a subnormal times a negative normal.
SUM_SWEEP_SCALES = {
    "mxfp4": [(127, 127), (0, 0), (254, 254), (0, 254), (255, 127), (127, 255)],
    "nvfp4": [(0x38, 0x38), (0x01, 0x01), (0x7E, 0x7E), (0xFE, 0x7E), (0x80, 0x38), (0x7F, 0x38), (0x38, 0xFF),
              (0x07, 0xB9)],
}


def corner_sums(fmt):
    """Block sums at the edges: 0, +-1, +-2, +-3, the largest magnitudes and one below them."""
    top = SUM_MAX[fmt]
    return np.array([0, 1, -1, 2, -2, 3, -3, top, -top, top - 1, -top + 1])


def golden_terms(fmt, sums, a_scales, b_scales):
    """The expected outputs: golden.mx_gemm.block_terms as dict sig, exp, nan (int64)."""
    sig, exp, nan = mx_gemm.block_terms(fmt, sums, a_scales, b_scales)
    return {"sig": np.asarray(sig, np.int64), "exp": np.asarray(exp, np.int64), "nan": np.asarray(nan, np.int64)}


def term_value(fmt, sums, a_scales, b_scales):
    """float32 of each term added to +0 (golden.mx_gemm.scaled_add), NaN where a scale code is NaN."""
    sig, exp, nan = mx_gemm.block_terms(fmt, sums, a_scales, b_scales)
    value = mx_gemm.scaled_add(np.zeros(np.shape(sig), np.float32), sig, exp)
    return np.where(nan, np.float32(np.nan), value)


def grid(*axes):
    """Every combination of the values of ``axes``, as one flat array per axis."""
    return [axis.ravel() for axis in np.meshgrid(*axes, indexing="ij")]


def corner_classes(fmt, rng, per_class=512):
    """Directed vectors by class: dict name -> (sums, a_scales, b_scales), int64 arrays.

    Classes on the inputs: zero block sums against every code (so negative and NaN codes with a
    zero sum: sig must be 0, there is no -0 term), NaN codes with every sum class, and the extreme
    codes with the extreme sums. Classes on the golden float32 value of the term alone are drawn by
    rejection from random vectors: underflow to +-0 from a non-zero sum, subnormal, overflow to
    +-Inf and the largest finite values. NVFP4 terms cannot leave float32's normal range (2**-20 <=
    |term| < 2**27), so those classes are MXFP4 only; NVFP4 adds its subnormal and negative codes.
    """
    codes = np.arange(256)
    sums = corner_sums(fmt)
    nan_code = mx.E8M0_NAN if fmt == "mxfp4" else mx.E4M3_NAN
    ends = np.array([0, 1, 254, 255, 126, 127, 128]) if fmt == "mxfp4" else np.array(
        [0x00, 0x80, 0x01, 0x81, 0x7E, 0xFE, 0x7F, 0xFF, 0x08, 0x88])
    classes = {
        "zero sum": grid(np.array([0]), codes, rng.choice(codes, 8)),
        "NaN scale": grid(sums, np.array([nan_code, nan_code | 0x80]), rng.choice(codes, 16)),
        "extreme codes": grid(sums, ends, ends),
    }
    if fmt == "nvfp4":
        subnormal = np.concatenate([np.arange(0x01, 0x08), np.arange(0x81, 0x88)])
        classes["subnormal codes"] = grid(sums, subnormal, np.concatenate([subnormal, ends]))
        classes["negative codes"] = grid(sums, np.arange(0x80, 0x100), np.array([0x38, 0xB8, 0x00]))
        return {name: tuple(np.asarray(part, np.int64) for part in vectors) for name, vectors in classes.items()}
    count = 1 << 18
    pool = (rng.integers(-SUM_MAX[fmt], SUM_MAX[fmt] + 1, count), rng.integers(0, 255, count),
            rng.integers(0, 255, count))
    value = term_value(fmt, *pool)
    biggest = np.finfo(np.float32).max
    wanted = {
        "underflow to zero": (value == 0) & (pool[0] != 0),
        "subnormal": (value != 0) & (np.abs(value) < np.finfo(np.float32).tiny),
        "overflow to Inf": np.isinf(value),
        "largest finite": np.isfinite(value) & (np.abs(value) >= biggest / 2**8),
    }
    for name, mask in wanted.items():
        chosen = np.flatnonzero(mask)[:per_class]
        classes[name] = [part[chosen] for part in pool]
    return {name: tuple(np.asarray(part, np.int64) for part in vectors) for name, vectors in classes.items()}


class BlockTermBench(BatchBench):
    """MxBlockTerm lanes inside the batch wrapper: one vector per lane and cycle, golden.mx_gemm.block_terms."""

    latency = LATENCY
    outputs = ("sig", "exp", "nan")

    def __init__(self, dut, ctx):
        super().__init__(dut, ctx)
        self.fmt = ctx.params["fmt"]
        self.widths = {name: width for name, width in self.batch.resp.fields}

    async def start(self):
        await super().start()
        await ClockCycles(self.dut.clk, LATENCY + 1)    # the pipeline holds the idle inputs' term

    def expected(self, columns, gaps=()):
        """The golden terms of each cycle's inputs, LATENCY cycles later (idle inputs' term before)."""
        shifted = {name: np.pad(np.asarray(columns[name], np.int64), ((0, 0), (LATENCY, 0)))[:, :-LATENCY]
                   for name in ("block_sum", "a_scale", "b_scale")}
        return golden_terms(self.fmt, shifted["block_sum"], shifted["a_scale"], shifted["b_scale"])

    def decode(self, outputs):
        return {"sig": as_signed(outputs["sig"], self.widths["sig"]), "exp": as_signed(outputs["exp"], self.widths["exp"]),
                "nan": outputs["nan"].astype(np.int64)}

    def describe(self, columns, lane, cycle):
        t = cycle - LATENCY
        if t < 0:
            return f"[no vector: cycle {cycle} is within the first {LATENCY} cycles; idle inputs]"
        s, a, b = (int(columns[name][lane, t]) for name in ("block_sum", "a_scale", "b_scale"))
        value = term_value(self.fmt, np.array([s]), np.array([a]), np.array([b]))[0]
        return (f"[lane {lane}, cycle {t}: block_sum={s} a_scale=0x{a:02x} b_scale=0x{b:02x} "
                f"(term alone as float32: {float(value)!r})]")

    async def check_vectors(self, sums, a_scales, b_scales):
        """Spread the vectors over the lanes, back to back, in windows of at most one batch chunk, each
        followed by LATENCY idle cycles; compare every cycle of every lane."""
        count = len(sums)
        per_lane = -(-count // self.lanes)
        laid = {name: np.pad(np.asarray(values, np.int64), (0, per_lane * self.lanes - count)).reshape(self.lanes, per_lane)
                for name, values in (("block_sum", sums), ("a_scale", a_scales), ("b_scale", b_scales))}
        window = self.batch.depth - LATENCY
        for start in range(0, per_lane, window):
            columns = {name: np.pad(values[:, start:start + window], ((0, 0), (0, LATENCY)))
                       for name, values in laid.items()}
            columns["rst"] = np.zeros_like(columns["block_sum"])
            outputs = await self.batch.run(columns)
            actual = self.decode({name: outputs[name] for name in self.outputs})
            self.ctx.compare(self.expected(columns), actual, lambda index: self.describe(columns, *index))


@bench_test(BlockTermBench)
async def every_scale_pair(bench):
    """All 65,536 scale code pairs (PASSES[level] times), each with a block sum that is a corner sum
    (a quarter of them) or uniform in -MAX..MAX."""
    ctx, fmt = bench.ctx, bench.fmt
    a, b = grid(np.arange(256), np.arange(256))
    for _ in range(PASSES[ctx.level]):
        sums = ctx.rng.integers(-SUM_MAX[fmt], SUM_MAX[fmt] + 1, a.size)
        corner = ctx.rng.random(a.size) < 0.25
        sums[corner] = ctx.rng.choice(corner_sums(fmt), int(corner.sum()))
        await bench.check_vectors(sums, a, b)


@bench_test(BlockTermBench)
async def every_block_sum(bench):
    """Every block sum -MAX..MAX (9,217 for MXFP4, 4,609 for NVFP4) against each pair of SUM_SWEEP_SCALES."""
    top = SUM_MAX[bench.fmt]
    pairs = np.array(SUM_SWEEP_SCALES[bench.fmt])
    sums = np.tile(np.arange(-top, top + 1), len(pairs))
    a, b = (np.repeat(pairs[:, i], 2 * top + 1) for i in (0, 1))
    await bench.check_vectors(sums, a, b)


@bench_test(BlockTermBench)
async def corners(bench):
    """The classes of :func:`corner_classes`, shuffled together; a class with no vector fails."""
    ctx = bench.ctx
    classes = corner_classes(bench.fmt, ctx.rng)
    for name, (sums, _, _) in classes.items():
        if sums.size == 0:
            ctx.fail(f"corner class {name!r} drew no vector")
        bench.dut._log.info("corner class %s: %d vectors", name, sums.size)
    sums, a, b = (np.concatenate(parts) for parts in zip(*classes.values()))
    order = ctx.rng.permutation(sums.size)
    await bench.check_vectors(sums[order], a[order], b[order])


@bench_test(BlockTermBench)
async def direct_drive(bench):
    """Random vectors on lane 0, cycle by cycle through the wrapper's ports (outputs read every cycle)."""
    ctx, fmt, cycles = bench.ctx, bench.fmt, DIRECT_CYCLES[bench.ctx.level]
    columns = {"rst": np.zeros((1, cycles), np.int64),
               "block_sum": ctx.rng.integers(-SUM_MAX[fmt], SUM_MAX[fmt] + 1, (1, cycles)),
               "a_scale": ctx.rng.integers(0, 256, (1, cycles)), "b_scale": ctx.rng.integers(0, 256, (1, cycles))}
    await bench.check_direct(columns)
