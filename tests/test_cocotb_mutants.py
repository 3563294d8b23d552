"""The benches can fail: deliberately broken variants of the units must be caught, with a report
that names the seed, the first differing vector, its inputs, expected and actual values."""

import re

import pytest

from testbench import runner

SEED = 7


def _assert_caught(result):
    assert not result.passed, f"the bench passed a broken unit:\n{result.report()}"
    assert result.mismatches > 0
    report = result.report()
    for part in (f"seed {SEED}", "first at", "expected", "actual", "inputs:", f"SEED={SEED}"):
        assert part in report, f"{part!r} missing from the failure report: {report}"


def ties_toward_zero(verilog):
    """Radix4Quantizer mutant: a value at (or up to 1.5x) a midpoint 2.5 * level rounds down.

    The quantizer rounds up when the two significand bits below the leading one are not both 0
    (``hi = frac != 0``, Verilog ``| frac``); keeping only the upper bit sends ties (and values
    just above them) toward zero.
    """
    site = "= | frac;"
    if verilog.count(site) != 1:
        raise AssertionError(f"mutation site {site!r} found {verilog.count(site)} times in the generated "
                             "Verilog; update this mutant to the current rtl/radix4_quantizer.py")
    return verilog.replace(site, "= frac[1];")


def pair_without_borrow(verilog):
    """Int4MacPairDsp mutant: lane 1 drops the borrow of the packed product's low half.

    Lane 1's accumulator registers its carry-in, the sign bit of the low product, as
    ``valid_term ? <port> [0] : 1'h0`` (Yosys passes it as bit 0 of a port); registering 0 instead
    makes a1*b one too small whenever a0*b is negative.
    """
    return runner.mutate(verilog, r"= valid_term \? (\\port\$\d+\$\d+ )\[0\] : 1'h0;", "= 1'h0;", 1,
                         "rtl/int4_mac_pair_dsp.py")


@pytest.mark.cocotb
@pytest.mark.parametrize("sim", runner.SIMULATORS)
def test_pair_without_borrow_is_caught(sim):
    target = runner.Target(sim, "int4_mac_pair_dsp", {"width": 24, "signed_a": False},
                           runner.Mutant("without_borrow", pair_without_borrow))
    _assert_caught(runner.run(target, level="quick", seed=SEED, testcase="exhaustive_pairs"))


@pytest.mark.cocotb
@pytest.mark.parametrize("sim", runner.SIMULATORS)
def test_flipped_signedness_is_caught(sim):
    """Int4Mac built with signed A, bench told it is unsigned: products with a >= 8 differ."""
    mutant = runner.Mutant("told_unsigned", bench_params={"signed_a": False})
    target = runner.Target(sim, "int4_mac", {"width": 8, "signed_a": True}, mutant)
    _assert_caught(runner.run(target, level="quick", seed=SEED, testcase="random_stream"))


@pytest.mark.cocotb
def test_tie_rounded_toward_zero_is_caught():
    target = runner.Target("icarus", "radix4_quantizer", {}, runner.Mutant("ties_toward_zero", ties_toward_zero))
    _assert_caught(runner.run(target, level="quick", seed=SEED, testcase="corners"))


def test_mutant_that_changes_nothing_is_refused():
    target = runner.Target("icarus", "grad_scale", {}, runner.Mutant("identity", lambda text: text))
    with pytest.raises(ValueError, match="identity"):
        runner.run(target, level="quick", seed=SEED)


def ties_away_in_float32_add(verilog):
    """Fp32ScaledAdd mutant: ``round_up = guard`` rounds float32 ties away from zero, not to even."""
    sites = re.findall(r"assign round_up = (\S+) & \S+ ;", verilog)
    if len(sites) != 1:
        raise AssertionError(f"mutation site 'assign round_up = <guard> & <...>' found {len(sites)} times in the "
                             "generated Verilog; update this mutant to the current rtl/fp32_scaled_add.py")
    return re.sub(r"assign round_up = (\S+) & \S+ ;", r"assign round_up = \1;", verilog)


def product_sign_or(verilog):
    """MxProcessingElement mutant: the product sign is ``a[3] | b[3]``, so (-x) * (-y) comes out negative."""
    site = "assign product_sign = a[3] ^ b[3];"
    if verilog.count(site) < 2:
        raise AssertionError(f"mutation site {site!r} found {verilog.count(site)} times in the generated "
                             "Verilog; update this mutant to the current rtl/mx_pe.py")
    return verilog.replace(site, "assign product_sign = a[3] | b[3];")


@pytest.mark.cocotb
def test_float32_ties_away_from_zero_are_caught():
    target = runner.Target("icarus", "fp32_scaled_add", {"sig_width": 14, "exp_width": 10},
                           runner.Mutant("ties_away", ties_away_in_float32_add))
    _assert_caught(runner.run(target, level="quick", seed=SEED, testcase="corners"))


@pytest.mark.cocotb
def test_wrong_e2m1_product_sign_is_caught():
    target = runner.Target("verilator", "mx_row", {"fmt": "mxfp4", "columns": 4, "shared": True},
                           runner.Mutant("product_sign_or", product_sign_or))
    _assert_caught(runner.run(target, level="quick", seed=SEED, testcase="every_e2m1_pair"))


def tile_not_restarted(verilog):
    """MxRow mutant: the shared float32 unit never starts a tile from +0 (``Mux(first, 0, acc)`` keeps
    ``acc``), so each tile adds to the previous tile's sums."""
    return runner.mutate(verilog, r"= u0_tfirst2 \? 32'd0 : ", "= 1'h0 ? 32'd0 : ", 1, "rtl/mx_row.py")


def every_block_first(verilog):
    """MxArrayProcessingElement mutant: the PE marks every block as its tile's first (the held
    ``first`` bit reads 1), so the float32 unit adds each block's term to +0, not to the PE's sum."""
    return runner.mutate(verilog, r"= \{ (\\port\$\d+\$2 )\[0\], \\port\$\d+\$2 \[2\], b\[11:4\], a\[11:4\] \};",
                         r"= { \1[0], 1'h1, b[11:4], a[11:4] };", 6, "rtl/mx_array_pe.py")


def final_sums_requeued(verilog):
    """MxTrainingArray mutant: the float32 unit puts a tile's final sums back into its queue too
    (``w_en = o.valid & ~final`` becomes ``o.valid``), so a later tile of several blocks adds to stale sums."""
    pattern = r"assign w_en = o__valid & \\\$\d+ ;"
    found = len(re.findall(pattern, verilog))
    if found != 1:
        raise AssertionError(f"mutation site {pattern!r} found {found} times, expected once (the 3 x 2 array's "
                             "one float32 unit); update this mutant to the current rtl/mx_array_pe.py")
    return re.sub(pattern, "assign w_en = o__valid;", verilog)


@pytest.mark.cocotb
def test_final_sums_left_in_the_queue_are_caught():
    target = runner.Target("icarus", "mx_array", {"rows": 3, "cols": 2, "fmt": "mxfp4"},
                           runner.Mutant("final_sums_requeued", final_sums_requeued))
    _assert_caught(runner.run(target, level="quick", seed=SEED, testcase="random_gemms"))


def b_nan_code_missed(verilog):
    """MxBlockTerm (MXFP4) mutant: only A's E8M0 code 0xFF flags NaN; B's NaN code gives a finite term."""
    return runner.mutate(verilog, r"= b_scale == 8'hff;", "= 1'h0;", 1, "rtl/mx_row.py")


def e4m3_subnormal_exponent_zero(verilog):
    """MxBlockTerm (NVFP4) mutant: B's subnormal E4M3 codes (exponent field 0) take exponent 0 - 10
    instead of 1 - 10, so their terms are half what they should be."""
    return runner.mutate(verilog, r"\? b_scale\[6:3\] : 4'h1;", "? b_scale[6:3] : 4'h0;", 1, "rtl/mx_row.py")


MX_MUTANTS = [   # (simulator, unit, parameters, mutant, test that must catch it)
    ("verilator", "mx_block_term", {"fmt": "mxfp4"}, b_nan_code_missed, "every_scale_pair"),
    ("icarus", "mx_block_term", {"fmt": "nvfp4"}, e4m3_subnormal_exponent_zero, "every_scale_pair"),
    ("verilator", "mx_block_term", {"fmt": "nvfp4"}, e4m3_subnormal_exponent_zero, "every_scale_pair"),
    ("icarus", "mx_row", {"fmt": "nvfp4", "columns": 3, "shared": True}, tile_not_restarted, "every_e2m1_pair"),
    ("verilator", "mx_array", {"rows": 3, "cols": 2, "fmt": "mxfp4"}, every_block_first, "random_gemms"),
]


@pytest.mark.cocotb
@pytest.mark.parametrize("sim, unit, params, edit, testcase", MX_MUTANTS,
                         ids=[f"{sim}-{edit.__name__}" for sim, _, _, edit, _ in MX_MUTANTS])
def test_mx_unit_mutant_is_caught(sim, unit, params, edit, testcase):
    target = runner.Target(sim, unit, params, runner.Mutant(edit.__name__, edit))
    _assert_caught(runner.run(target, level="quick", seed=SEED, testcase=testcase))
