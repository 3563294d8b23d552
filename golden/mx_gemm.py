"""Block-scaled GEMMs, bit for bit as the MX hardware computes them (docs/numerics.md section 10).

Y[m, n] = sum over k of A[m, k] * B[k, n] with MXFP4 or NVFP4 operands (golden.mx), both blocked along
the reduction axis k: ``a_codes`` (M, K) with one scale per block of a row, ``b_codes`` (K, N) with one
scale per block of a column (``b_scales`` has shape (K // block, N)). For a weight matrix W (K, N) that
is ``mxfp4_quantize(W.T)`` transposed.

1. Products of E2M1 elements are exact integers in units of 1/4 (|p| <= 144, i.e. 36).
2. Each block's sum of products is exact: an integer S with |S| <= 4,608 (14 bits signed) for a block of
   32, |S| <= 2,304 (13 bits) for 16.
3. The block's term is S times its two scales, exact as sig * 2**exp with an integer ``sig``: MX
   sig = S, exp = (ea - 127) + (eb - 127) - 2; NVFP4 sig = S * qa * qb, exp = xa + xb - 2 with each
   E4M3 scale q * 2**x (q = 8 + mantissa, x = exponent - 10; subnormal q = mantissa, x = -9).
4. Starting from +0, the terms are added in ascending block order in float32, each addition rounded once,
   to nearest even, with gradual underflow (subnormals kept, no flush to zero): acc = RNE(acc + term).
   The exact term is added, so it is never rounded on its own; MX terms may lie far outside float32's range.
   Overflow gives +-Inf (IEEE), which stays: later finite terms do not change it.
5. A NaN scale code (E8M0 0xFF; E4M3 0x7F or 0xFF) in any block of a reduction makes that output NaN
   (0 * NaN is NaN too, as in IEEE); NaN and +-Inf outputs are the flags of invalid scales and overflow.
6. NVFP4 only: the two tensor scales are applied once at the output, out = RNE(acc * RNE(ga * gb)).

The float32 additions are evaluated as RNE(float64(acc) + float64(term)): acc has 24 significant bits,
a term at most 20, and float64 keeps 53 >= 2 * 24 + 2, so the float64 rounding of the sum never changes
the float32 rounding (tests/test_golden_mx_gemm.py checks this against exact rational arithmetic).
"""

import numpy as np

from . import mx

#: Largest |block sum| in units of 1/4: 32 products of 6 * 6 = 36.
MX_SUM_MAX = mx.MX_BLOCK * 144
NV_SUM_MAX = mx.NV_BLOCK * 144
#: float32 bits of the NaN the hardware outputs (the quiet NaN with an empty payload).
NAN_BITS = 0x7FC00000

# every E2M1 code's value times 2, an integer
_E2M1_DOUBLED = (mx.E2M1_VALUES * 2).astype(np.int64)


def _codes(name, value, shape=None):
    mx._check_uint8(name, value, shape)
    if value.ndim != 2:
        raise ValueError(f"{name} must be 2-D, got shape {value.shape}")
    return value


def _check_e2m1(name, codes):
    if (codes > 0xF).any():
        raise ValueError(f"{name} must be E2M1 codes 0..15, got {codes[codes > 0xF].flat[0]}")


def _operands(a_codes, a_scales, b_codes, b_scales, block):
    """Check shapes and dtypes; return the number of blocks along K."""
    _codes("a_codes", a_codes)
    _codes("b_codes", b_codes)
    _check_e2m1("a_codes", a_codes)
    _check_e2m1("b_codes", b_codes)
    (m, k), (kb, n) = a_codes.shape, b_codes.shape
    if k != kb:
        raise ValueError(f"inner dimensions differ: a_codes has shape {a_codes.shape}, b_codes has shape {b_codes.shape}")
    if k == 0 or k % block:
        raise ValueError(f"K must be a positive multiple of the block size {block}, got a_codes shape {a_codes.shape}")
    _codes("a_scales", a_scales, (m, k // block))
    _codes("b_scales", b_scales, (k // block, n))
    return k // block


def e2m1_products(a, b):
    """Exact products of E2M1 codes ``a`` and ``b`` (broadcast), int64 in units of 1/4."""
    return _E2M1_DOUBLED[a] * _E2M1_DOUBLED[b]


def block_sums(a_codes, b_codes, block):
    """Exact sums of products per block: int64 (K // block, M, N) in units of 1/4, block j over
    k = j * block .. (j + 1) * block - 1 (a float32 matmul of integers below 2**24 is exact)."""
    (m, k), n = a_codes.shape, b_codes.shape[1]
    a2 = _E2M1_DOUBLED[a_codes].astype(np.float32).reshape(m, k // block, block).transpose(1, 0, 2)
    b2 = _E2M1_DOUBLED[b_codes].astype(np.float32).reshape(k // block, block, n)
    return np.matmul(a2, b2).astype(np.int64)


def e4m3_parts(codes):
    """Each E4M3 code as ``(q, x, nan)``: value = q * 2**x exactly, q signed (|q| <= 15)."""
    codes = np.asarray(codes).astype(np.int64)
    exponent, mantissa = (codes >> 3) & 0xF, codes & 0x7
    q = np.where(exponent == 0, mantissa, 8 + mantissa)
    x = np.maximum(exponent, 1) - 10
    return np.where(codes & 0x80, -q, q), x, (codes & 0x7F) == mx.E4M3_NAN


def block_terms(fmt, sums, a_scales, b_scales):
    """Block terms ``sig * 2**exp`` of exact block sums ``sums`` (units of 1/4) and their two scale
    codes, element by element (the three arrays broadcast): ``(sig, exp, nan)``, int64, int64, bool.

    MXFP4 (E8M0 codes ca, cb): sig = S, exp = ca + cb - 256 (the 1/4 unit included), nan where a code
    is 0xFF. NVFP4 (E4M3 codes, :func:`e4m3_parts`): sig = S * qa * qb (|sig| < 2**20), exp = xa + xb - 2,
    nan where a code is 0x7F or 0xFF. sig and exp are defined for NaN codes too (the codes' fields).
    """
    sums = np.asarray(sums, np.int64)
    if fmt == "mxfp4":
        ca, cb = np.asarray(a_scales, np.int64), np.asarray(b_scales, np.int64)
        shape = np.broadcast_shapes(sums.shape, ca.shape, cb.shape)
        nan = (ca == mx.E8M0_NAN) | (cb == mx.E8M0_NAN)
        return (np.broadcast_to(sums, shape), np.broadcast_to(ca + cb - 2 * mx.E8M0_BIAS - 2, shape),
                np.broadcast_to(nan, shape))
    if fmt == "nvfp4":
        (qa, xa, nan_a), (qb, xb, nan_b) = e4m3_parts(a_scales), e4m3_parts(b_scales)
        sig = sums * qa * qb
        return sig, np.broadcast_to(xa + xb - 2, sig.shape), np.broadcast_to(nan_a | nan_b, sig.shape)
    raise ValueError(f"fmt must be 'mxfp4' or 'nvfp4', got {fmt!r}")


def mx_terms(sums, a_scales, b_scales):
    """MX :func:`block_terms` of ``sums`` (nb, M, N) with a_scales (M, nb) and b_scales (nb, N)."""
    return block_terms("mxfp4", sums, a_scales.T[:, :, None], b_scales[:, None, :])


def nv_terms(sums, a_scales, b_scales):
    """NVFP4 :func:`block_terms` of ``sums`` (nb, M, N) with a_scales (M, nb) and b_scales (nb, N)."""
    return block_terms("nvfp4", sums, a_scales.T[:, :, None], b_scales[:, None, :])


def scaled_add(acc, sig, exp):
    """RNE(acc + sig * 2**exp) in float32 (one rounding, gradual underflow, overflow to +-Inf).

    ``acc`` float32, ``sig`` integers with |sig| < 2**24, ``exp`` integers in -300..300; an exact
    zero sum is +0, a non-zero sum that rounds to zero keeps its sign (-0). The float64 sum rounds once more, which never changes the float32 result
    (module docstring).
    """
    term = np.ldexp(np.asarray(sig, np.float64), np.asarray(exp, np.int64))
    with np.errstate(over="ignore", invalid="ignore"):
        return (acc.astype(np.float64) + term).astype(np.float32)


def accumulate(sig, exp, nan):
    """float32 sum of the block terms along axis 0 in ascending order, from +0; NaN where ``nan``
    holds for any block."""
    acc = np.zeros(sig.shape[1:], np.float32)
    for j in range(sig.shape[0]):
        acc = scaled_add(acc, sig[j], exp[j])
    return np.where(nan.any(axis=0), np.float32(np.nan), acc)


def gemm_mxfp4(a_codes, a_scales, b_codes, b_scales):
    """MXFP4 GEMM: float32 (M, N) from E2M1 codes a (M, K), b (K, N) and E8M0 scale codes
    a_scales (M, K // 32), b_scales (K // 32, N), all uint8 (module docstring for the rules)."""
    _operands(a_codes, a_scales, b_codes, b_scales, mx.MX_BLOCK)
    return accumulate(*mx_terms(block_sums(a_codes, b_codes, mx.MX_BLOCK), a_scales, b_scales))


def gemm_nvfp4(a_codes, a_scales, a_global, b_codes, b_scales, b_global):
    """NVFP4 GEMM: float32 (M, N) from E2M1 codes a (M, K), b (K, N), E4M3 block scale codes
    a_scales (M, K // 16), b_scales (K // 16, N) (uint8) and the float32 tensor scales
    a_global, b_global applied at the output."""
    _operands(a_codes, a_scales, b_codes, b_scales, mx.NV_BLOCK)
    for name, g in (("a_global", a_global), ("b_global", b_global)):
        if not (isinstance(g, (float, np.floating)) and np.isfinite(g) and g > 0):
            raise ValueError(f"{name} must be a finite float > 0, got {g!r}")
    acc = nvfp4_accumulate(a_codes, a_scales, b_codes, b_scales)
    with np.errstate(over="ignore", under="ignore"):
        return acc * (np.float32(a_global) * np.float32(b_global))


def nvfp4_accumulate(a_codes, a_scales, b_codes, b_scales):
    """The NVFP4 GEMM before the tensor scales: what the array outputs (float32 (M, N))."""
    _operands(a_codes, a_scales, b_codes, b_scales, mx.NV_BLOCK)
    return accumulate(*nv_terms(block_sums(a_codes, b_codes, mx.NV_BLOCK), a_scales, b_scales))


def float32_bits(x):
    """uint32 bit patterns of float32 ``x`` with every NaN as :data:`NAN_BITS` (the hardware's NaN)."""
    x = np.asarray(x, np.float32)
    return np.where(np.isnan(x), np.uint32(NAN_BITS), x.view(np.uint32))


class BlockGemm:
    """The block-scaled GEMMs of a training step with the MX hardware's accumulation (a backend of
    golden.training.layers.BlockScaledQuant; MXFP4 only).

    ``block_gemm(mode, a, b)`` is ``a @ b.T`` for float32 ``a`` (M, K) and ``b`` (N, K) that are
    already MXFP4 values in blocks of 32 along K (decoded fake-quantized operands): they are
    quantized again, which gives back exactly their codes' values (checked), and multiplied by
    :func:`gemm_mxfp4`. ``mode`` (golden.tiling.Mode) says which GEMM of the step it is.
    """

    def block_gemm(self, mode, a, b):
        return gemm_mxfp4(*mxfp4_operands(a, b))


def mxfp4_operands(a, b):
    """(a_codes, a_scales, b_codes, b_scales) of :func:`gemm_mxfp4` for ``a @ b.T``, from float32 ``a``
    (M, K) and ``b`` (N, K) whose 32-blocks along K are MXFP4 values (ValueError if one is not)."""
    operands = []
    for name, x in (("a", a), ("b", b)):
        codes, scales = mx.mxfp4_quantize(np.ascontiguousarray(x, np.float32))
        back = mx.mxfp4_decode(codes, scales)
        exact = (back == x) | (np.isnan(back) & np.isnan(x))
        if not exact.all():
            index = tuple(int(i) for i in np.argwhere(~exact)[0])
            raise ValueError(f"{name} must hold MXFP4 values in blocks of 32 along its rows, got {float(x[index])!r} at {index}")
        operands.append((codes, scales))
    (a_codes, a_scales), (b_codes, b_scales) = operands
    return a_codes, a_scales, b_codes.T.copy(), b_scales.T.copy()
