"""amaranth.sim host model of the training array, and its utilization benchmark.

``python -m testbench.array_bench`` streams back-to-back tiles with K = 16, 64 and 256 through the
default 8 x 8 array, checks every output beat against golden.tiling and writes
build/sim/array_utilization.json. ``stream_tiles`` is the host model the tests use.
"""

import argparse
import json
from pathlib import Path
from typing import NamedTuple

import numpy as np
from amaranth import Cat, Elaboratable, Module, Signal

from golden import tiling
from golden.units import BWD_WIDTH, FWD_WIDTH

from rtl.array import TrainingArray

from .payloads import commands_and_beats
from .sim import simulate


class Harness(Elaboratable):
    """A TrainingArray whose inputs come from one ``stimulus`` word and outputs go to one ``observed`` word.

    Every testbench ``ctx.set`` settles the whole design, so one wide write per cycle keeps the
    simulation fast. ``stimulus``: cmd payload, cmd valid, a payload, a valid, b payload, b valid,
    o ready. ``observed``: cmd ready, a ready, b ready, o valid, error, o payload.
    """

    def __init__(self, dut):
        self.dut = dut
        self.fields = [dut.cmd.payload.as_value(), dut.cmd.valid, dut.a.payload.as_value(), dut.a.valid,
                       dut.b.payload.as_value(), dut.b.valid, dut.o.ready]
        self.stimulus = Signal(sum(len(field) for field in self.fields))
        self.observed = Signal(5 + len(dut.o.payload.as_value()))

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = dut = self.dut
        m.d.comb += [Cat(*self.fields).eq(self.stimulus),
                     self.observed.eq(Cat(dut.cmd.ready, dut.a.ready, dut.b.ready, dut.o.valid, dut.error,
                                          dut.o.payload.as_value()))]
        return m

    def pack(self, values):
        """The stimulus word for field values in ``fields`` order."""
        word, offset = 0, 0
        for field, value in zip(self.fields, values):
            word |= (value & ((1 << len(field)) - 1)) << offset
            offset += len(field)
        return word


class _Source:
    """One input stream: offers its items in order, with random gaps between transfers."""

    def __init__(self, items, rate, rng):
        self.items, self.rate, self.rng = items, rate, rng
        self.sent = 0
        self.valid = False

    def offer(self):
        if not self.valid and self.sent < len(self.items):
            self.valid = self.rate >= 1 or self.rng.random() < self.rate
        return (self.items[self.sent] if self.valid else 0), int(self.valid)

    def transferred(self, fired):
        if fired:
            self.sent += 1
            self.valid = False


class Trace(NamedTuple):
    """What the host saw; cycles count from 0 = the first simulated cycle."""

    outputs: list          #: decoded output payloads (data.Const views) in order
    out_cycles: list       #: cycle of each output transfer
    beat_cycles: list      #: cycle of each operand beat transfer (A and B together)
    cmd_cycles: list       #: cycle of each command transfer
    error: bool            #: final value of ``error``
    cycles: int            #: simulated cycles


def stream_tiles(dut, commands, a_beats, b_beats, expected_outputs, *, rng=None, in_rate=1.0, out_rate=1.0,
                 drain_cycles=0, max_cycles=None):
    """Drive raw command and beat payloads into ``dut``; collect ``expected_outputs`` output beats.

    Each input stream is offered independently: while idle it asserts ``valid`` with probability
    ``in_rate`` per cycle and then holds it until the transfer; ``o.ready`` is high with probability
    ``out_rate`` in each cycle. After the expected outputs, ``drain_cycles`` more cycles run with
    ``o.ready`` high, so that surplus outputs show up in the trace. Raises AssertionError when A and
    B transfer in different cycles or when the outputs do not arrive within ``max_cycles``.
    """
    harness = Harness(dut)
    rng = np.random.default_rng(0) if rng is None else rng
    sources = [_Source(commands, in_rate, rng), _Source(a_beats, in_rate, rng), _Source(b_beats, in_rate, rng)]
    out_layout = dut.o.payload.shape()
    if max_cycles is None:
        max_cycles = 100 + 2 * (len(a_beats) + len(commands) * (dut.tile_period + dut.latency)) / min(in_rate, out_rate)
    outputs, out_cycles, beat_cycles, cmd_cycles = [], [], [], []
    status = {}

    async def testbench(ctx):
        cycle, observed, done = 0, 0, None
        while done is None or cycle < done + drain_cycles:
            assert cycle < max_cycles, f"only {len(outputs)} of {expected_outputs} outputs after {cycle} cycles"
            offers = [source.offer() for source in sources]
            ready = int(done is not None or out_rate >= 1 or rng.random() < out_rate)
            ctx.set(harness.stimulus, harness.pack([value for offer in offers for value in offer] + [ready]))
            _, _, observed = await ctx.tick().sample(harness.observed)
            fired = [bool(observed >> bit & 1 and offer[1]) for bit, offer in enumerate(offers)]
            assert fired[1] == fired[2], f"cycle {cycle}: A transfer {fired[1]} but B transfer {fired[2]}"
            for source, fire in zip(sources, fired):
                source.transferred(fire)
            if fired[0]:
                cmd_cycles.append(cycle)
            if fired[1]:
                beat_cycles.append(cycle)
            if observed >> 3 & 1 and ready:
                outputs.append(out_layout.from_bits(observed >> 5))
                out_cycles.append(cycle)
            cycle += 1
            if done is None and len(outputs) >= expected_outputs:
                done = cycle
        status.update(error=bool(observed >> 4 & 1), cycles=cycle)

    simulate(harness, testbench)
    return Trace(outputs, out_cycles, beat_cycles, cmd_cycles, **status)


def output_fields(beat):
    """Comparable fields of an output beat (a decoded payload or a golden.tiling.OutputBeat)."""
    return (int(beat.row), bool(beat.last), int(beat.mode), int(beat.s),
            [int(v) for v in beat.acc], [bool(v) for v in beat.overflow])


def first_mismatch(outputs, expected):
    """None if ``outputs`` equals the golden ``expected`` beats, else (index, description) of the first difference."""
    names = ("row", "last", "mode", "s", "acc", "overflow")
    for index, (got, want) in enumerate(zip(outputs, expected)):
        if output_fields(got) != output_fields(want):
            return index, (f"output beat {index} (tile {want.tile}, row {want.row}): expected "
                           f"{dict(zip(names, output_fields(want)))}, got {dict(zip(names, output_fields(got)))}")
    if len(outputs) != len(expected):
        return min(len(outputs), len(expected)), f"expected {len(expected)} output beats, got {len(outputs)}"
    return None


def measure(k, rows=8, cols=8, tile_rows=4, tile_cols=2, seed=0):
    """Utilization of ``tile_rows * tile_cols`` back-to-back FWD tiles of depth ``k``, host never stalling.

    Returns a dict: cycles from the first operand beat to the last output row (inclusive), useful
    MACs, utilization = MACs / (R * C * cycles), and the steady-state tile period (cycles between
    the first output rows of consecutive tiles) with its utilization k / period.
    """
    rng = np.random.default_rng([seed, k])
    a = rng.integers(0, 16, (rows * tile_rows, k))
    b = rng.integers(-8, 8, (k, cols * tile_cols))
    tiles = tiling.tiles(tiling.Mode.FWD, a, b, rows, cols)
    expected = tiling.output_beats(tiles)
    dut = TrainingArray(rows, cols)
    trace = stream_tiles(dut, *commands_and_beats(tiles), len(expected))
    mismatch = first_mismatch(trace.outputs, expected)
    if mismatch:
        raise AssertionError(f"k={k} seed={seed}: {mismatch[1]}")
    cycles = trace.out_cycles[-1] + 1 - trace.beat_cycles[0]
    macs = len(tiles) * rows * cols * k
    period = (trace.out_cycles[-rows] - trace.out_cycles[0]) / (len(tiles) - 1)
    predicted = dut.timing([(tile.mode, tile.k) for tile in tiles])
    return {
        "k": k,
        "tiles": len(tiles),
        "cycles": cycles,
        "predicted_cycles": predicted[-1][2] + rows,
        "useful_macs": macs,
        "utilization": macs / (rows * cols * cycles),
        "steady_state_tile_period": period,
        "steady_state_utilization": k / period,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m testbench.array_bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="build/sim/array_utilization.json", help="output file (default: %(default)s)")
    args = parser.parse_args(argv)
    rows = cols = 8
    report = {
        "array": {"rows": rows, "cols": cols, "fwd_width": FWD_WIDTH, "bwd_width": BWD_WIDTH},
        "host": "operands and commands always valid, output always ready; 8 tiles (4 x 2) per K, mode FWD",
        "results": [],
    }
    for k in (16, 64, 256):
        result = measure(k, rows, cols)
        report["results"].append(result)
        print(f"K = {k:3}: {result['cycles']} cycles for {result['tiles']} tiles, utilization "
              f"{result['utilization']:.1%} (steady state {result['steady_state_utilization']:.1%})")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(out)


if __name__ == "__main__":
    main()
