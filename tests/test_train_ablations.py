"""The ablation formats: radix-2 FP4 gradients and chunked FP16 accumulation, against brute force / golden.fp16."""

import numpy as np
import pytest

from golden import fp4, fp4_radix2, fp16, units
from golden.fp16acc import Fp16ChunkBackend, chunked_fp16_matmul, round_to_binary16
from golden.training.layers import Linear, Pact, Quant, RecordingBackend

F64 = np.float64
FINITE_FLOAT16 = np.arange(1 << 16, dtype=np.uint16).view(np.float16)
FINITE_FLOAT16 = FINITE_FLOAT16[np.isfinite(FINITE_FLOAT16)]


@pytest.mark.parametrize("s", [-20, -3, 0, 5])
def test_radix2_quantizer_is_the_nearest_level_with_ties_away(s):
    codes, flags = fp4_radix2.quantize(FINITE_FLOAT16, s)
    levels = np.concatenate(([0.0], 2.0 ** (s - 6 + np.arange(7))))
    mag = np.abs(FINITE_FLOAT16.astype(F64))
    dist = np.abs(mag[:, None] - levels[None, :])
    nearest = np.where(dist == dist.min(1)[:, None], np.arange(8), -1).max(1)   # a tie takes the larger level
    e = codes & 7
    bad = e != nearest
    assert not bad.any(), f"s={s}: x={FINITE_FLOAT16[bad][0]} gave e={e[bad][0]}, nearest is {nearest[bad][0]}"
    assert np.array_equal(flags.overflow, mag >= 1.5 * 2.0**s)
    sign = np.where(np.signbit(FINITE_FLOAT16) & (e > 0), -1, 1)
    assert np.array_equal(fp4_radix2.decode(codes, s), sign * levels[e])


def test_radix2_special_values():
    codes, flags = fp4_radix2.quantize(np.array([np.nan, np.inf, -np.inf, -0.0], np.float16), 0)
    assert codes.tolist() == [0, 7, 15, 0]
    assert flags.invalid.tolist() == [True, False, False, False]
    assert flags.overflow.tolist() == [False, True, True, False]
    with pytest.raises(ValueError, match="s must lie in -32..31, got 40"):
        fp4_radix2.quantize(np.zeros(2, np.float16), 40)


def test_radix2_pair_decodes_to_the_same_values():
    codes = np.arange(16)
    phase0, phase1 = fp4_radix2.as_radix4_pair(codes)
    for s in (-9, 0, 4):
        assert np.array_equal(fp4.decode(phase0, s, 0) + fp4.decode(phase1, s, 1),
                              np.where(codes == 8, 0.0, fp4_radix2.decode(codes, s)))
    assert not np.any((phase0 & 7) & (phase1 & 7))


def test_radix2_layer_runs_each_backward_gemm_as_two_radix4_gemms(rng, seed):
    backend = RecordingBackend()
    layer = Linear("l", 8, 3, rng, Pact(2.0, F64), quant=Quant(backend=backend, grads=fp4_radix2.Radix2Gradients()),
                   dtype=F64)
    x = rng.standard_normal((4, 8))
    g = rng.standard_normal(layer.forward(x).shape) * 1e-2
    layer.backward(g)
    assert [c.args.get("phase") for c in backend.calls] == [None, 0, 1, 0, 1]
    g16 = g.astype(np.float16)
    s = fp4.grad_scale(g16)
    codes, _ = fp4_radix2.quantize(g16, s)
    x_codes, x_step = backend.calls[0].args["a"], 2.0 / 15
    expected = fp4_radix2.decode(codes, s).T @ (x_codes * x_step)
    np.testing.assert_allclose(layer.grads["w"], expected.T, rtol=1e-12, err_msg=f"seed {seed}")


def _float32_probe(rng):
    """float32 values around every binary16 value, ties and near-ties, plus random bit patterns."""
    base = FINITE_FLOAT16.astype(np.float32)
    bits = base.view(np.uint32)
    neighbours = [(bits + d).view(np.float32) for d in (0, 1, 0x0FFF, 0x1000, 0x1001, 0x1FFF)]
    random = rng.integers(0, 1 << 32, 200_000, dtype=np.uint64).astype(np.uint32).view(np.float32)
    probe = np.concatenate(neighbours + [random, np.float32([65519.9, 65520.0, -65520.0, 3e38])])
    return probe[np.isfinite(probe)]


def test_round_to_binary16_equals_numpy_conversion(rng, seed):
    probe = _float32_probe(rng)
    with np.errstate(over="ignore"):
        expected = probe.astype(np.float16).astype(np.float32)
    got = round_to_binary16(probe)
    bad = got.view(np.uint32) != expected.view(np.uint32)
    assert not bad.any(), f"seed {seed}: x={probe[bad][0]!r} -> {got[bad][0]!r}, expected {expected[bad][0]!r}"


def _reference_chunked(a, b, unit, chunk):
    """Chunked FP16 dot products with golden.fp16.dot (bit-level MAC model), element by element."""
    bits = lambda v: np.asarray(v, np.float16).view(np.uint16)  # noqa: E731
    out = np.zeros((a.shape[0], b.shape[1]), np.uint16)
    for i in range(a.shape[0]):
        for j in range(b.shape[1]):
            sums = [fp16.dot(bits(a[i, k:k + chunk] * unit), bits(b[k:k + chunk, j])).acc
                    for k in range(0, a.shape[1], chunk)]
            out[i, j] = fp16.dot(np.array(sums, np.uint16), bits(np.ones(len(sums)))).acc
    return out


@pytest.mark.parametrize("kind", ["fp4", "int4"])
def test_chunked_fp16_matmul_matches_the_fp16_mac_model(rng, seed, kind):
    if kind == "fp4":
        a, unit = fp4.code_multiplier(rng.integers(0, 16, (4, 150)), 0), 2.0**-13
        a[0, :] = a[0, 0] * 0 + 1                    # a row of smallest products: the exact shortcut
    else:
        a, unit = rng.integers(0, 16, (4, 150)) * 9, 1.0   # large sums: rounding beyond 2048
    b = rng.integers(-7, 8, (150, 5))
    got = chunked_fp16_matmul(a, b, unit, chunk=64).astype(np.float16).view(np.uint16)
    expected = _reference_chunked(a, b, unit, 64)
    bad = got != expected
    assert not bad.any(), f"seed {seed}: first differing element {np.argwhere(bad)[0]}"


def test_fp16_accumulation_loses_what_the_exact_accumulator_keeps():
    a = np.full((1, 3000), 15)
    b = np.ones((3000, 1), np.int64)
    assert units.gemm_int4(a, b).acc[0, 0] == 45000
    rounded = Fp16ChunkBackend(chunk=64).gemm_int4(a, b, signed_a=False).acc[0, 0]
    # 46 chunk sums of 960 (multiples of 64) add exactly to 44160; + 840 rounds on the 32-ulp grid
    assert rounded == 44992
    whole = Fp16ChunkBackend(chunk=3000).gemm_int4(a, b, signed_a=False).acc[0, 0]
    assert whole == 32768              # one long FP16 sum stalls where 15 is below half an ulp


def test_fp16_backend_reports_overflow_to_inf():
    b = np.full((8, 1), 7)
    codes = np.full((1, 8), 7)        # phase 0, top code: 2**13 units = 1.0 * 2**s each
    result = Fp16ChunkBackend().gemm_fp4_int4(codes, 0, b)
    assert result.acc[0, 0] == 8 * 7 * 2**13 and not result.overflow.any()
    result = Fp16ChunkBackend().gemm_int4(np.full((1, 1000), 15), np.full((1000, 1), 7), signed_a=False)
    assert np.isinf(result.acc[0, 0]) and result.overflow.all()
    with pytest.raises(ValueError, match="chunk"):
        Fp16ChunkBackend(chunk=0)
