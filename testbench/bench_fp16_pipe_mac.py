"""cocotb bench of Fp16PipeMac (rtl/fp16_pipe_mac.py) against golden.fp16, in the batch wrapper.

The tests are those of :mod:`testbench.fp16_mac_bench` (corner products and sums, ties, overflow
edge, cancellation, random streams with gaps/clears/resets, cycle-by-cycle drive); only the cycle
model differs. Expected values come only from :func:`golden.fp16.interleaved_mac_sequence`
(``SUMS`` sums fed in turn, each a :func:`golden.fp16.mac_sequence`); :func:`expected_outputs`
adds the pipeline:

* The outputs of cycle ``t`` show the state, after input cycle ``t - LATENCY``, of the sum that
  input belongs to (+0 and flags low before the first input).
* A reset in cycle ``r`` zeroes every register: the inputs of cycles ``r - LATENCY + 1 .. r``
  are lost and every sum restarts at +0. The model drops those inputs and puts a clear without a
  term into each sum's first cycle of that window (``SUMS <= LATENCY``, so each sum has one).
"""

import numpy as np

import golden.fp16
from rtl.fp16_pipe_mac import Fp16PipeMac

from .fp16_mac_bench import *  # noqa: F403  (the tests this module runs: fp16_mac_bench.__all__)
from .fp16_mac_bench import Fp16MacBench

LATENCY, SUMS = Fp16PipeMac.LATENCY, Fp16PipeMac.SUMS


def _any_in_window(flags, start, stop):
    """``out[:, t]`` = any of ``flags[:, t + start : t + stop]`` (cycles past the end read False)."""
    lanes, cycles = flags.shape
    counts = np.concatenate([np.zeros((lanes, 1), np.int64), np.cumsum(flags, axis=1)], axis=1)
    counts = np.pad(counts, ((0, 0), (0, stop)), mode="edge")
    return counts[:, np.arange(cycles) + stop] != counts[:, np.arange(cycles) + start]


def expected_outputs(columns, gaps=()):
    """Expected ``acc`` (pattern), ``invalid`` and ``overflow`` (int64), each of shape (lanes, cycles).

    ``columns`` maps ``rst``, ``clear``, ``valid``, ``a``, ``b`` to arrays (lanes, cycles); ``gaps``
    are cycles before which the unit saw one extra idle cycle (between batch chunks).
    """
    columns = {name: np.asarray(values) for name, values in columns.items()}
    lanes, cycles = columns["rst"].shape
    if len(gaps):
        columns = {name: np.insert(values, gaps, 0, axis=1) for name, values in columns.items()}
    rst = columns["rst"].astype(bool)
    lost = _any_in_window(rst, 0, LATENCY)                   # a reset within the next LATENCY cycles
    restart = _any_in_window(rst, LATENCY - SUMS, LATENCY)   # ... and t is in the window's first SUMS
    valid = columns["valid"].astype(bool) & ~lost
    clear = (columns["clear"].astype(bool) & ~lost) | restart
    trace = golden.fp16.interleaved_mac_sequence(columns["a"], columns["b"], valid, clear, SUMS)
    outputs = {}
    for name, values in zip(("acc", "invalid", "overflow"), trace):
        shown = np.pad(values.astype(np.int64), ((0, 0), (LATENCY, 0)))[:, :values.shape[1]]
        outputs[name] = np.delete(shown, np.asarray(gaps, int) + np.arange(len(gaps)), axis=1) if len(gaps) else shown
    assert outputs["acc"].shape == (lanes, cycles)
    return outputs


class Fp16PipeMacBench(Fp16MacBench):
    """Fp16PipeMac lanes inside the batch wrapper: the Fp16Mac tests with interleaved sums."""

    unit = "fp16_pipe_mac"
    latency = LATENCY
    interleave = SUMS

    def expected(self, columns, gaps=()):
        return expected_outputs(columns, gaps)

    def describe(self, columns, lane, cycle):
        """Inputs of ``lane`` whose effect can show at ``cycle``: the last cycles of its sum, and resets."""
        source = cycle - LATENCY
        rows = []
        for t in range(max(0, source - 3 * SUMS), min(cycle + 1, columns["rst"].shape[1])):
            if (t - source) % SUMS == 0 and t <= source or columns["rst"][lane, t]:
                fields = [f"{name}={int(columns[name][lane, t])}" for name in ("rst", "clear", "valid")]
                fields += [f"{name}={self.show(name, columns[name][lane, t])}" for name in self.operand_names]
                rows.append(f"[cycle {t}: {' '.join(fields)}]")
        return " ".join(rows) or f"[no input: cycle {cycle} is within the first {LATENCY} cycles]"
