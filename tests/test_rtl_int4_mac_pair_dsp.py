# amaranth: UnusedElaboratable=no
"""Int4MacPairDsp in amaranth.sim: every (a0, a1, b) as the single term of new sums, against golden."""

import numpy as np
import pytest
from amaranth import Cat

import golden.units as gu
from rtl.int4_mac_pair_dsp import Int4MacPairDsp
from testbench.sim import simulate


@pytest.mark.parametrize("signed_a, width", [(False, 24), (True, 8)])
def test_every_operand_triple(signed_a, width):
    dut = Int4MacPairDsp(width=width, signed_a=signed_a)
    a_values = np.arange(-8, 8) if signed_a else np.arange(16)
    a0, a1, b = (v.ravel() for v in np.meshgrid(a_values, a_values, np.arange(-8, 8), indexing="ij"))
    expected = [gu.int4_mac(np.zeros_like(b), a, b, signed_a, width)[0] for a in (a0, a1)]
    got = [[], []]

    async def testbench(ctx):
        ctx.set(Cat(dut.valid, dut.clear), 0b11)
        for t in range(len(b) + dut.LATENCY):
            if t < len(b):
                ctx.set(Cat(dut.a0, dut.a1, dut.b), (int(a0[t]) & 0xF) | (int(a1[t]) & 0xF) << 4 | (int(b[t]) & 0xF) << 8)
            await ctx.tick()
            if t + 1 >= dut.LATENCY:
                got[0].append(ctx.get(dut.acc0))
                got[1].append(ctx.get(dut.acc1))

    simulate(dut, testbench)
    for lane in range(2):
        actual = np.array(got[lane][:len(b)])
        bad = np.flatnonzero(actual != expected[lane])
        if bad.size:
            t = bad[0]
            pytest.fail(f"lane {lane}: a0={a0[t]} a1={a1[t]} b={b[t]}: expected {expected[lane][t]}, "
                        f"got {actual[t]} ({bad.size} bad)")


def test_bad_parameters_name_the_value():
    with pytest.raises(ValueError, match="width must lie in 8..64, got 7"):
        Int4MacPairDsp(width=7)
    with pytest.raises(TypeError, match="signed_a must be a bool, got 1"):
        Int4MacPairDsp(signed_a=1)
