# amaranth: UnusedElaboratable=no
"""Built-in self-test of the training array: a stored GEMM in all three modes, checked on chip.

:func:`self_test_program` draws a seeded random GEMM per mode (FWD, BWD_DATA, BWD_WEIGHT), tiles
it with golden.tiling and packs the commands, operand beats and the expected output beats (the
whole ``o`` payload: accumulators, flags, row, last, mode, s) as ROM contents. :class:`SelfTest`
streams the program through a :class:`~rtl.array.TrainingArray` at full rate, compares every
output beat with its stored expectation and repeats; :class:`BoardSelfTest` puts it on an
amaranth-boards platform with LEDs (pass steady, fail steady, running blinks) and a restart button.
"""

from typing import NamedTuple

import numpy as np
from amaranth import Elaboratable, Module, Mux, ResetInserter, Signal
from amaranth.lib import io, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import Out

from golden import tiling
from golden.units import BWD_WIDTH, FWD_WIDTH

from .array import CommandLayout, TrainingArray, output_layout
from .array import pack_command, pack_lanes
from .params import check_int

#: Operand ranges (inclusive) of A and B per mode, as the array takes them (golden/tiling.py).
OPERAND_RANGES = {
    tiling.Mode.FWD: ((0, 15), (-8, 7)),
    tiling.Mode.BWD_DATA: ((0, 15), (-8, 7)),
    tiling.Mode.BWD_WEIGHT: ((0, 15), (0, 15)),
}
RUNS_WIDTH = 24  # completed-run counter of SelfTest (wraps)


class SelfTestProgram(NamedTuple):
    """ROM contents of a self-test and what the array is built with.

    ``commands``, ``beats`` and ``expected`` are raw bit patterns: command payloads, operand beats
    (A lanes in bits 0..4R-1, B lanes above) and output payloads (``rtl.array.output_layout``).
    """

    rows: int
    cols: int
    fwd_width: int
    bwd_width: int
    commands: tuple
    beats: tuple
    expected: tuple
    cycles: int        #: cycles of one run (first command to last output) for a host that never stalls


def self_test_program(rows=2, cols=2, k=16, seed=0, fwd_width=FWD_WIDTH, bwd_width=BWD_WIDTH):
    """The stored GEMMs of a self-test for a ``rows`` x ``cols`` array.

    Each mode gets one GEMM of shape (rows + 1, k) x (k, cols + 1) with uniform random codes from
    ``numpy.random.default_rng([seed, mode])`` and a random scale exponent s: four tiles, three of
    them partly zero padding. Expected results come from golden.tiling.

    Raises
    ------
    TypeError, ValueError
        For a parameter that is not an int in its range (rows, cols 2..32; k 1..65535; seed >= 0;
        widths 8..64).
    """
    rows = check_int("rows", rows, tiling.SIZE_MIN, tiling.SIZE_MAX)
    cols = check_int("cols", cols, tiling.SIZE_MIN, tiling.SIZE_MAX)
    k = check_int("k", k, 1, tiling.K_MAX)
    seed = check_int("seed", seed, 0, (1 << 63) - 1)
    tiles = []
    for mode, ((a_lo, a_hi), (b_lo, b_hi)) in OPERAND_RANGES.items():
        rng = np.random.default_rng([seed, int(mode)])
        a = rng.integers(a_lo, a_hi + 1, (rows + 1, k))
        b = rng.integers(b_lo, b_hi + 1, (k, cols + 1))
        s = int(rng.integers(-32, 32))
        tiles += tiling.tiles(mode, a, b, rows, cols, s=s, fwd_width=fwd_width, bwd_width=bwd_width)
    layout = output_layout(rows, cols, max(fwd_width, bwd_width))
    expected = tuple(
        layout.const({"acc": [int(v) for v in beat.acc], "overflow": [bool(v) for v in beat.overflow],
                      "row": beat.row, "last": beat.last, "mode": int(beat.mode), "s": beat.s}).as_bits()
        for beat in tiling.output_beats(tiles))
    # An array built only for its timing model (the pragma on line 1 keeps amaranth quiet about it).
    timing = TrainingArray(rows, cols, fwd_width, bwd_width).timing([(tile.mode, tile.k) for tile in tiles])
    return SelfTestProgram(
        rows, cols, fwd_width, bwd_width,
        commands=tuple(pack_command(tile.mode, tile.k, tile.s) for tile in tiles),
        beats=tuple(pack_lanes(a) | pack_lanes(b) << (4 * rows)
                    for tile in tiles for a, b in zip(tile.a_beats, tile.b_beats)),
        expected=expected,
        cycles=timing[-1][2] + rows,
    )


class SelfTest(wiring.Component):
    """Runs a :class:`SelfTestProgram` through a TrainingArray over and over, checking every output beat.

    Commands and operand beats come from ROMs at full rate (each stream offered in every cycle
    until the program is through); ``o.ready`` is always high. A run ends with its last expected
    output beat, or fails on a timeout of twice the predicted run time plus 64 cycles; then the
    next run starts from the first command.

    Parameters
    ----------
    program : SelfTestProgram

    Members
    -------
    done : Out(1)
        At least one run has ended since reset.
    passed : Out(1)
        ``done`` and no failure since reset.
    failed : Out(1)
        Sticky since reset: an output beat differed from its expectation, a run timed out or the
        array raised ``error``.
    runs : Out(24)
        Runs ended since reset (wraps): a heartbeat.

    Attributes
    ----------
    array : TrainingArray
    roms : dict of str -> Memory
        ``commands``, ``beats`` and ``expected``, initialised from the program (simulations may
        rewrite words to check that the self-test fails).
    """

    done: Out(1)
    passed: Out(1)
    failed: Out(1)
    runs: Out(RUNS_WIDTH)

    def __init__(self, program):
        if not isinstance(program, SelfTestProgram):
            raise TypeError(f"program must be a SelfTestProgram, got {program!r}")
        self.program = program
        self.array = TrainingArray(program.rows, program.cols, program.fwd_width, program.bwd_width)
        widths = {"commands": CommandLayout.size, "beats": 4 * (program.rows + program.cols),
                  "expected": self.array.o.payload.shape().size}
        self.roms = {name: Memory(shape=width, depth=len(getattr(program, name)), init=getattr(program, name))
                     for name, width in widths.items()}
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        m.submodules.array = array = self.array
        a_bits = 4 * self.program.rows

        # Each ROM is read one cycle ahead: the address is the index the next cycle will hold.
        roms = {}
        for name, rom in self.roms.items():
            m.submodules[f"{name}_rom"] = rom
            index = Signal(range(rom.depth + 1), name=f"{name}_index")
            next_index = Signal(range(rom.depth + 1), name=f"{name}_next")
            port = rom.read_port()
            m.d.comb += port.addr.eq(next_index)
            m.d.sync += index.eq(next_index)
            roms[name] = (index, next_index, port.data, rom.depth)

        primed = Signal()  # the ROM outputs hold the words at the current indices
        limit = 2 * self.program.cycles + 64
        timer = Signal(range(limit + 1))
        timeout = timer == limit
        m.d.sync += primed.eq(1)

        cmd_index, cmd_next, cmd_word, cmd_count = roms["commands"]
        beat_index, beat_next, beat_word, beat_count = roms["beats"]
        out_index, out_next, out_word, out_count = roms["expected"]
        m.d.comb += [
            array.cmd.valid.eq(primed & (cmd_index < cmd_count)),
            array.cmd.payload.eq(cmd_word),
            array.a.valid.eq(primed & (beat_index < beat_count)),
            array.b.valid.eq(primed & (beat_index < beat_count)),
            array.a.payload.eq(beat_word[:a_bits]),
            array.b.payload.eq(beat_word[a_bits:]),
            array.o.ready.eq(1),
        ]
        output = array.o.valid
        run_end = (output & (out_index == out_count - 1)) | timeout
        mismatch = output & (array.o.payload.as_value() != out_word)
        for index, next_index, fired in ((cmd_index, cmd_next, array.cmd.valid & array.cmd.ready),
                                         (beat_index, beat_next, array.a.valid & array.a.ready),
                                         (out_index, out_next, output)):
            m.d.comb += next_index.eq(Mux(run_end, 0, Mux(fired, index + 1, index)))

        m.d.sync += timer.eq(Mux(run_end, 0, timer + 1))
        with m.If(run_end):
            m.d.sync += [self.done.eq(1), self.runs.eq(self.runs + 1)]
        with m.If(mismatch | timeout | array.error):
            m.d.sync += self.failed.eq(1)
        m.d.comb += self.passed.eq(self.done & ~self.failed)
        return m


class BoardSelfTest(Elaboratable):
    """A :class:`SelfTest` on an amaranth-boards platform: LEDs and a restart button.

    The ``passed`` and ``failed`` LEDs are steady; the ``running`` LED toggles every 2**n runs,
    with n chosen from the platform clock so that it blinks about once per second while runs
    complete. The platform's ``button`` 0 restarts the self-test (and resets the array).

    Parameters
    ----------
    program : SelfTestProgram
    leds : dict of str -> int
        Indices of the platform's ``led`` resources for ``passed``, ``failed`` and ``running``.
    """

    def __init__(self, program, leds):
        if set(leds) != {"passed", "failed", "running"}:
            raise ValueError(f"leds must map exactly 'passed', 'failed' and 'running' to LED indices, got {leds!r}")
        self.program, self.leds = program, dict(leds)

    def blink_bit(self, clock_hz):
        """Bit of the run counter that toggles about every half second at ``clock_hz``."""
        runs_per_second = clock_hz / self.program.cycles
        return int(min(RUNS_WIDTH - 1, max(0, round(np.log2(runs_per_second)) - 1)))

    def elaborate(self, platform):
        m = Module()
        restart = Signal()
        m.submodules.button = button = io.Buffer("i", platform.request("button", 0, dir="-"))
        m.submodules.button_sync = FFSynchronizer(button.i, restart)
        m.submodules.self_test = self_test = ResetInserter(restart)(SelfTest(self.program))
        running = self_test.runs[self.blink_bit(platform.default_clk_frequency)]
        for name, signal in (("passed", self_test.passed), ("failed", self_test.failed), ("running", running)):
            m.submodules[f"led_{name}"] = led = io.Buffer("o", platform.request("led", self.leds[name], dir="-"))
            m.d.comb += led.o.eq(signal)
        return m
