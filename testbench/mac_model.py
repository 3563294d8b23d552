"""Cycle-by-cycle expected outputs of a MAC unit (Int4Mac, ShiftMac), built on golden.units.

The numerics come only from a golden step function (``golden.units.int4_mac`` or ``shift_mac``);
this module adds the cycle protocol of the units (docs/rtl.md, "MAC protocol"):

* Input cycle t is taken by clock edge t; its product is added by edge t + 1, so it shows on
  ``acc``/``overflow`` from cycle t + 2 (LATENCY = 2). Outputs of cycle t are the values seen
  just before edge t.
* ``rst`` is synchronous and empties the pipeline: the inputs of the reset cycle and of the cycle
  before it are lost; the sum restarts at 0 with the flag low.
* ``clear`` starts a new sum (0, flag low) whose first term is that cycle's product if ``valid``.
* The unit powers up (and each bench starts) in the reset state.
"""

import numpy as np


def expected_outputs(columns, step, gaps=()):
    """Expected ``acc`` (int64) and ``overflow`` (bool), each of shape (lanes, cycles).

    Parameters
    ----------
    columns : dict of str -> array (lanes, cycles)
        Inputs per lane and cycle: ``rst``, ``clear``, ``valid`` and the operands.
    step : callable(acc, operands) -> (acc, overflowed_now)
        One golden MAC step for a batch of independent sums; ``operands`` maps each operand name
        to the values of the terms being added.
    gaps : sequence of int
        Cycles before which the unit saw one extra cycle of all-zero inputs (a no-op), as between
        the chunks of a :class:`testbench.batch.BatchRunner` run.
    """
    columns = {name: np.asarray(values) for name, values in columns.items()}
    if len(gaps):
        columns = {name: np.insert(values, gaps, 0, axis=1) for name, values in columns.items()}
    lanes, cycles = columns["rst"].shape
    recorded = np.insert(np.ones(cycles - len(gaps), bool), np.asarray(gaps, dtype=np.intp), False)
    rst, clear, valid = (columns[name].astype(bool) for name in ("rst", "clear", "valid"))

    # Index k of a lane's row is the state after edge k - 1; k = 0 is the power-up (reset) state.
    absorbed = ~rst & ~np.pad(rst[:, 1:], ((0, 0), (0, 1)))
    term = np.zeros((lanes, cycles + 1), bool)
    restart = np.zeros((lanes, cycles + 1), bool)
    restart[:, 0] = True
    restart[:, 1:] |= rst
    term[:, 2:] = (absorbed & valid)[:, :-1]
    restart[:, 2:] |= (absorbed & clear)[:, :-1]
    term, restart = term.ravel(), restart.ravel()

    sum_id = np.cumsum(restart) - 1
    starts = np.flatnonzero(restart)
    terms_so_far = np.cumsum(term)
    before_start = terms_so_far[starts] - term[starts]
    term_index = np.flatnonzero(term)
    term_sum = sum_id[term_index]
    position = terms_so_far[term_index] - 1 - before_start[term_sum]
    lane, k = np.divmod(term_index, cycles + 1)
    taken = lane * cycles + k - 2  # flat index of the input cycle whose product is added
    operands = {name: values.ravel()[taken] for name, values in columns.items()
                if name not in ("rst", "clear", "valid")}

    # Step all sums at once, one term position at a time; a stable sort of small integers is a
    # radix sort in numpy, and sorting once makes every position's terms a contiguous slice.
    order = np.argsort(position.astype(np.uint16 if position.max(initial=0) < 1 << 16 else np.int64),
                       kind="stable")
    bounds = np.searchsorted(position[order], np.arange(position.max(initial=-1) + 2))
    sorted_sum = term_sum[order]
    sorted_operands = {name: values[order] for name, values in operands.items()}
    sorted_acc = np.zeros(order.size, np.int64)
    sorted_flag = np.zeros(order.size, bool)
    running_acc = np.zeros(starts.size, np.int64)
    running_flag = np.zeros(starts.size, bool)
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        sums = sorted_sum[lo:hi]
        acc, now = step(running_acc[sums], {name: values[lo:hi] for name, values in sorted_operands.items()})
        running_acc[sums] = acc
        flag = running_flag[sums] | now
        running_flag[sums] = flag
        sorted_acc[lo:hi] = acc
        sorted_flag[lo:hi] = flag

    state_acc = np.zeros(term.size, np.int64)
    state_flag = np.zeros(term.size, bool)
    state_acc[term_index[order]], state_flag[term_index[order]] = sorted_acc, sorted_flag
    latest = np.maximum.accumulate(np.where(term | restart, np.arange(term.size), 0))
    acc = state_acc[latest].reshape(lanes, cycles + 1)[:, :cycles]
    flag = state_flag[latest].reshape(lanes, cycles + 1)[:, :cycles]
    return (acc[:, recorded], flag[:, recorded]) if len(gaps) else (acc, flag)
