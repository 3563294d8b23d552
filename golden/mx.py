"""Block-scaled FP4 formats: MXFP4 (OCP MX v1.0) and NVFP4, bit for bit (docs/numerics.md section 9).

Both store E2M1 elements (OCP encoding: bit 3 sign, bits 2..1 exponent with bias 1, bit 0 mantissa;
magnitudes 0, 0.5, 1, 1.5, 2, 3, 4, 6) in blocks along the last axis:

- MXFP4: one E8M0 scale (power of two, bias 127, 0xFF = NaN) per 32 elements.
- NVFP4: one E4M3 (fn) scale per 16 elements and one float32 scale per tensor.

Elements round to nearest (ties to even, or away from zero with ``rounding="away"``) or stochastically
(``rounding="stochastic"`` with a numpy Generator ``rng``). A block holding NaN or Inf gets the NaN scale
code and zero elements; :func:`invalid_blocks` counts such blocks. :func:`hadamard` is the random
Hadamard transform of the gradient GEMMs.
"""

import functools
import math

import numpy as np

MX_BLOCK = 32
NV_BLOCK = 16
E2M1_MAX = 6.0
E4M3_MAX = 448.0
NV_GLOBAL_DIVISOR = E4M3_MAX * E2M1_MAX     # 2688: the largest block scale times the largest element
E8M0_BIAS = 127
E8M0_NAN = 0xFF
E4M3_NAN = 0x7F
SIGN_BIT = 0x8
ROUNDINGS = ("even", "away", "stochastic")

# magnitude of every non-negative code, in code order (so a code's parity is its mantissa bit)
E2M1_GRID = np.array([0, 0.5, 1, 1.5, 2, 3, 4, 6], np.float64)
_E4M3_EXP, _E4M3_MAN = np.divmod(np.arange(0x7F), 8)
E4M3_GRID = np.where(_E4M3_EXP == 0, _E4M3_MAN * 2.0**-9, (1 + _E4M3_MAN / 8) * 2.0 ** (_E4M3_EXP - 7))
# every E2M1 code 0..15 as float32
E2M1_VALUES = np.concatenate([E2M1_GRID, -E2M1_GRID]).astype(np.float32)


def _check_float32(name, x):
    if not isinstance(x, np.ndarray) or x.dtype != np.float32:
        what = x.dtype if isinstance(x, np.ndarray) else type(x).__name__
        raise TypeError(f"{name} must be a float32 numpy array, got {what}")


def _check_blocks(name, x, block):
    if x.ndim == 0 or x.shape[-1] == 0 or x.shape[-1] % block:
        raise ValueError(f"{name} must have a last axis that is a positive multiple of the block size {block}, "
                         f"got shape {x.shape}")
    return x.reshape(*x.shape[:-1], x.shape[-1] // block, block)


def _check_uint8(name, value, shape):
    if not isinstance(value, np.ndarray) or value.dtype != np.uint8:
        what = value.dtype if isinstance(value, np.ndarray) else type(value).__name__
        raise TypeError(f"{name} must be a uint8 numpy array, got {what}")
    if shape is not None and value.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got shape {value.shape}")


def _check_rounding(rounding, rng):
    if rounding not in ROUNDINGS:
        raise ValueError(f"rounding must be one of {', '.join(ROUNDINGS)}; got {rounding!r}")
    if rounding == "stochastic" and not isinstance(rng, np.random.Generator):
        raise TypeError(f"rounding='stochastic' needs rng, a numpy Generator; got rng={rng!r}")


def round_to_grid(a, grid, rounding="even", rng=None):
    """Index of ``a`` (float32 magnitudes >= 0, not NaN) on ``grid`` (increasing, grid[0] = 0), saturating.

    "even": nearest, ties to the even index; "away": nearest, ties to the larger index; "stochastic":
    the larger neighbour with probability (a - lo) / (hi - lo), i.e. u * (hi - lo) < a - lo for one
    float32 draw u in [0, 1) per element (``rng.random(a.shape, dtype=np.float32)``, multiples of 2**-24),
    so that E[value] = a below the top of the grid. Values above the grid's top saturate to its last index.
    """
    top = len(grid) - 1
    if rounding == "stochastic":
        u = rng.random(a.shape, dtype=np.float32)
        lo = np.minimum(np.searchsorted(grid, a, side="right") - 1, top - 1)
        low, high = grid[lo], grid[lo + 1]
        up = u * (high - low) < a - low         # u < (a - lo) / (hi - lo), without a division
        return np.where(a >= grid[top], top, lo + up)
    midpoints = (grid[1:] + grid[:-1]) / 2
    if rounding == "away":
        return np.searchsorted(midpoints, a, side="right")
    index = np.searchsorted(midpoints, a, side="left")
    tie = (index < top) & (a == midpoints[np.minimum(index, top - 1)]) & (index % 2 == 1)
    return index + tie


def e2m1_encode(y, rounding="even", rng=None):
    """E2M1 codes (uint8) of float32 ``y`` (not NaN): rounded as :func:`round_to_grid`, saturating to +-6."""
    code = round_to_grid(np.abs(y), E2M1_GRID, rounding, rng).astype(np.uint8)
    return code | np.where(np.signbit(y), np.uint8(SIGN_BIT), np.uint8(0))


def e4m3_encode(v):
    """E4M3 (fn) codes of float32 magnitudes ``v >= 0`` (not NaN): nearest, ties to even, saturating at 448."""
    return round_to_grid(v, E4M3_GRID).astype(np.uint8)


def e4m3_decode(codes):
    """float32 values of E4M3 (fn) codes (0x7F and 0xFF are NaN)."""
    table = np.concatenate([E4M3_GRID, [np.nan], -E4M3_GRID, [np.nan]]).astype(np.float32)
    return table[codes]


def e8m0_decode(codes):
    """float32 values 2**(code - 127) of E8M0 codes (0xFF is NaN; code 0 is 2**-127, a float32 subnormal)."""
    values = np.ldexp(np.float32(1), np.minimum(codes, E8M0_NAN - 1).astype(np.int32) - E8M0_BIAS).astype(np.float32)
    return np.where(codes == E8M0_NAN, np.float32(np.nan), values)


def _finite_blocks(blocks):
    """(amax per block with 0 for invalid blocks, mask of blocks holding NaN or Inf)."""
    invalid = ~np.isfinite(blocks).all(axis=-1)
    amax = np.abs(np.where(invalid[..., None], np.float32(0), blocks)).max(axis=-1)
    return amax, invalid


def mxfp4_quantize(x, rounding="even", rng=None):
    """MXFP4 codes of float32 ``x`` in blocks of 32 along the last axis.

    Returns ``(codes, scales)``: uint8 E2M1 codes of x's shape, and uint8 E8M0 scale codes of shape
    ``x.shape[:-1] + (n // 32,)``. Scale exponent e = floor(log2(amax)) - 2 clamped to -127..127 (code
    e + 127; code 0 for an all-zero block), elements e2m1(x / 2**e); a block with NaN or Inf gets scale
    0xFF and zero elements.
    """
    _check_float32("x", x)
    blocks = _check_blocks("x", x, MX_BLOCK)
    _check_rounding(rounding, rng)
    amax, invalid = _finite_blocks(blocks)
    exponent = np.frexp(amax)[1] - 1 - 2                  # frexp is exact: amax = m * 2**(floor(log2)+1)
    exponent = np.where(amax == 0, -E8M0_BIAS, np.clip(exponent, -E8M0_BIAS, E8M0_BIAS))
    scaled = np.ldexp(np.where(invalid[..., None], np.float32(0), blocks), -exponent[..., None]).astype(np.float32)
    codes = e2m1_encode(scaled, rounding, rng).reshape(x.shape)
    scales = np.where(invalid, E8M0_NAN, exponent + E8M0_BIAS).astype(np.uint8)
    return codes, scales


def mxfp4_decode(codes, scales):
    """float32 values of MXFP4 ``codes`` with E8M0 ``scales`` (one per 32; NaN blocks decode to NaN)."""
    _check_uint8("codes", codes, None)
    blocks = _check_blocks("codes", codes, MX_BLOCK)
    _check_uint8("scales", scales, blocks.shape[:-1])
    _check_codes(codes)
    return (E2M1_VALUES[blocks] * e8m0_decode(scales)[..., None]).reshape(codes.shape)


def nvfp4_quantize(x, rounding="even", rng=None):
    """NVFP4 codes of float32 ``x`` in blocks of 16 along the last axis.

    Returns ``(codes, block_scales, global_scale)``: uint8 E2M1 codes, uint8 E4M3 block scale codes of
    shape ``x.shape[:-1] + (n // 16,)`` and the float32 tensor scale g = amax / 2688 (amax over the
    finite values; g = 1 when that is 0 or g underflows to 0). In float32: s_b = e4m3(amax_block / 6 / g),
    elements e2m1(x / (decode(s_b) * g)); a block whose scale decodes to 0 has zero elements, a block with
    NaN or Inf gets the E4M3 NaN code 0x7F and zero elements.
    """
    _check_float32("x", x)
    blocks = _check_blocks("x", x, NV_BLOCK)
    _check_rounding(rounding, rng)
    codes, block_scales, global_scale = _nvfp4(blocks, rounding, rng)
    return codes.reshape(x.shape), block_scales, global_scale


def nvfp4_quantize_2d(x, rounding="even", rng=None):
    """NVFP4 codes of a float32 matrix in 16x16 tiles (NVIDIA's weight blocks): one E4M3 scale per tile.

    The rules of :func:`nvfp4_quantize` with the tile as the block, so the codes of x.T are the transposed
    codes. Returns ``(codes, block_scales, global_scale)``, codes of x's shape, block_scales of shape
    (rows // 16, cols // 16).
    """
    _check_float32("x", x)
    if x.ndim != 2 or min(x.shape) == 0 or x.shape[0] % NV_BLOCK or x.shape[1] % NV_BLOCK:
        raise ValueError(f"x must be a matrix whose sides are positive multiples of {NV_BLOCK}, got shape {x.shape}")
    _check_rounding(rounding, rng)
    codes, block_scales, global_scale = _nvfp4(_tiles(x), rounding, rng)
    return _untile(codes, x.shape), block_scales, global_scale


def _tiles(x):
    rows, cols = x.shape
    tiles = x.reshape(rows // NV_BLOCK, NV_BLOCK, cols // NV_BLOCK, NV_BLOCK).transpose(0, 2, 1, 3)
    return tiles.reshape(rows // NV_BLOCK, cols // NV_BLOCK, NV_BLOCK * NV_BLOCK)


def _untile(tiles, shape):
    rows, cols = shape
    return tiles.reshape(rows // NV_BLOCK, cols // NV_BLOCK, NV_BLOCK, NV_BLOCK).transpose(0, 2, 1, 3).reshape(shape)


def _nvfp4(blocks, rounding, rng):
    amax, invalid = _finite_blocks(blocks)
    g = np.float32(amax.max()) / np.float32(NV_GLOBAL_DIVISOR)
    global_scale = np.float32(1) if g == 0 else g
    scale_codes = e4m3_encode(amax / np.float32(E2M1_MAX) / global_scale)
    denominator = E4M3_GRID.astype(np.float32)[scale_codes] * global_scale
    empty = invalid | (denominator == 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        scaled = np.where(empty[..., None], np.float32(0), blocks / denominator[..., None])
    codes = e2m1_encode(scaled.astype(np.float32), rounding, rng)
    block_scales = np.where(invalid, E4M3_NAN, scale_codes).astype(np.uint8)
    return codes, block_scales, np.float32(global_scale)


def nvfp4_decode(codes, block_scales, global_scale):
    """float32 values of NVFP4 ``codes``: e2m1 * (decode(block_scale) * global_scale), in float32."""
    _check_uint8("codes", codes, None)
    blocks = _check_blocks("codes", codes, NV_BLOCK)
    _check_uint8("block_scales", block_scales, blocks.shape[:-1])
    return _nv_decode(blocks, block_scales, global_scale).reshape(codes.shape)


def nvfp4_decode_2d(codes, block_scales, global_scale):
    """float32 values of the 16x16-tile NVFP4 ``codes`` of :func:`nvfp4_quantize_2d`."""
    _check_uint8("codes", codes, None)
    if codes.ndim != 2 or codes.shape[0] % NV_BLOCK or codes.shape[1] % NV_BLOCK:
        raise ValueError(f"codes must be a matrix whose sides are multiples of {NV_BLOCK}, got shape {codes.shape}")
    _check_uint8("block_scales", block_scales, (codes.shape[0] // NV_BLOCK, codes.shape[1] // NV_BLOCK))
    return _untile(_nv_decode(_tiles(codes), block_scales, global_scale), codes.shape)


def _nv_decode(blocks, block_scales, global_scale):
    _check_codes(blocks)
    if not (isinstance(global_scale, (float, np.floating)) and np.isfinite(global_scale) and global_scale > 0):
        raise ValueError(f"global_scale must be a finite float > 0, got {global_scale!r}")
    scale = e4m3_decode(block_scales) * np.float32(global_scale)
    return E2M1_VALUES[blocks] * scale[..., None]


def fake_quantize(x, fmt, rounding="even", rng=None, tiles_2d=False):
    """``(decoded, invalid)``: the decoded quantize of ``x`` in format ``fmt`` ("mxfp4" or "nvfp4") and
    its number of invalid blocks, computed without codes (for training; equal to decode(quantize(x))).

    ``rounding`` is "even" or "stochastic" (drawing ``rng`` as :func:`round_to_grid` does); with
    ``tiles_2d`` (nvfp4 only) x is a matrix quantized in 16x16 tiles as :func:`nvfp4_quantize_2d`.
    Rounding is float32 arithmetic instead of a grid search: v + 2**k - 2**k rounds v to the multiple of
    2**(k - 23) nearest, ties to even, with k chosen from v's exponent so that 2**(k - 23) is the E2M1
    (or E4M3) spacing of v's binade.
    """
    _check_float32("x", x)
    if rounding not in ("even", "stochastic"):
        raise ValueError(f"rounding must be 'even' or 'stochastic' here, got {rounding!r}")
    _check_rounding(rounding, rng)
    if fmt not in ("mxfp4", "nvfp4") or (tiles_2d and fmt != "nvfp4"):
        raise ValueError(f"fmt must be 'mxfp4' or 'nvfp4' (2-D tiles: nvfp4 only), got {fmt!r}")
    if tiles_2d:
        if x.ndim != 2 or x.shape[0] % NV_BLOCK or x.shape[1] % NV_BLOCK:
            raise ValueError(f"x must be a matrix whose sides are multiples of {NV_BLOCK}, got shape {x.shape}")
        blocks = _tiles(x)
    else:
        blocks = np.ascontiguousarray(_check_blocks("x", x, MX_BLOCK if fmt == "mxfp4" else NV_BLOCK))
    bits = blocks.view(np.uint32)
    sign = bits & np.uint32(0x80000000)
    magnitude = (bits & np.uint32(0x7FFFFFFF)).view(np.float32)
    amax = _block_max(magnitude)
    invalid = ~np.isfinite(amax)
    any_invalid = bool(invalid.any())
    if any_invalid:
        amax[invalid] = 0
        magnitude[invalid] = 0
    if fmt == "mxfp4":
        exponent = np.maximum((amax.view(np.uint32) >> 23).astype(np.int32) - E8M0_BIAS - 2, -E8M0_BIAS)
        magnitude *= _per_element(np.ldexp(np.float32(1), -exponent), magnitude)
        scale = _per_element(np.ldexp(np.float32(1), exponent), magnitude)
    else:
        g = np.float32(amax.max()) / np.float32(NV_GLOBAL_DIVISOR)
        global_scale = np.float32(1) if g == 0 else g
        scale = _round_by_magic(amax / np.float32(E2M1_MAX) / global_scale, 121, 20, E4M3_MAX) * global_scale
        empty = scale == 0
        scale = _per_element(scale, magnitude)
        with np.errstate(divide="ignore", invalid="ignore"):
            magnitude /= scale
        if empty.any():
            magnitude[empty] = 0
            sign[empty] = 0                     # the codes of an empty block are +0
    # scaled magnitudes are below 8 (MX: amax / 2**e < 8; NV: amax / scale <= 6 up to rounding); a larger
    # one would round to a multiple of 4 or more, >= 8, and saturate to 6 all the same
    rounded = _round_by_magic(magnitude, 127, 22, E2M1_MAX, rng if rounding == "stochastic" else None)
    rounded *= scale
    decoded = np.bitwise_or(rounded.view(np.uint32), sign, out=sign).view(np.float32)
    if any_invalid:
        decoded[invalid] = np.nan
    decoded = _untile(decoded, x.shape) if tiles_2d else decoded.reshape(x.shape)
    return decoded, int(np.count_nonzero(invalid))


# up to this many rows per element of a block, numpy's reduction beats the column loop of _block_max
_REDUCE_ROWS_PER_WIDTH = 16


def _block_max(a):
    """Maximum over the last axis of float32 magnitudes ``a`` (sign bits clear), taken on their bit patterns
    as int32, which order as the values do (a block with NaN or Inf gets a non-finite maximum).

    A short axis (a 16 or 32 block) over many rows is reduced one column at a time into a running maximum,
    about twice as fast as numpy's reduction over a short axis; few rows (where the per-call cost of that
    loop dominates) and a long axis (a 16x16 tile) take numpy's reduction.
    """
    bits = a.view(np.int32)
    if a.shape[-1] > MX_BLOCK or a.size <= _REDUCE_ROWS_PER_WIDTH * a.shape[-1] ** 2:
        return bits.max(axis=-1).view(np.float32)
    columns = bits.reshape(-1, a.shape[-1])
    result = columns[:, 0].copy()
    for column in range(1, columns.shape[1]):
        np.maximum(result, columns[:, column], out=result)
    return result.reshape(a.shape[:-1]).view(np.float32)


def _round_by_magic(v, min_field, offset, top, rng=None):
    """Finite float32 ``v >= 0`` rounded to a 1-bit (E2M1: min_field 127, offset 22) or 3-bit (E4M3: 121,
    20) mantissa grid, saturating at ``top``: nearest-even, or stochastic as :func:`round_to_grid`.

    The spacing at v is s = 2**(max(exponent field, min_field) + offset - 127 - 23); adding and
    subtracting 2**23 s rounds v to it. Stochastic: q = v / s (exact, s a power of two) has the integer
    part floor(q) = lo / s and the fraction (v - lo) / s, so u * (hi - lo) < v - lo is u < q - floor(q).
    """
    field_bits = v.view(np.uint32) & np.uint32(0x7F800000)
    np.maximum(field_bits, _filled(v.shape, np.uint32(min_field << 23)), out=field_bits)
    if rng is not None:
        u = rng.random(v.shape, dtype=np.float32)
        field_bits += np.uint32((offset - 23) << 23 & 0xFFFFFFFF)   # the bits of s
        inverse = np.subtract(np.uint32(254 << 23), field_bits).view(np.float32)  # 1 / s
        spacing = field_bits.view(np.float32)
        scaled = np.multiply(v, inverse, out=inverse)
        rounded = np.floor(scaled)
        scaled -= rounded
        rounded += np.less(u, scaled)                # hi where u < (v - lo) / s
        rounded *= spacing
        return np.minimum(rounded, _filled(v.shape, np.float32(top)), out=rounded)
    field_bits += np.uint32(offset << 23)
    magic = field_bits.view(np.float32)
    rounded = v + magic
    rounded -= magic
    return np.minimum(rounded, _filled(v.shape, np.float32(top)), out=rounded)


_FILLED = {}


@functools.lru_cache(maxsize=1024, typed=True)
def _filled(shape, value):
    """A read-only array of ``shape`` filled with the numpy scalar ``value``: numpy's minimum and maximum
    against a whole array run several times faster than against a broadcast scalar. Every shape is a view
    of one buffer per value, grown (at least doubled) to the largest size asked for, so the cache holds
    every operand shape of a run (a cache of 32 arrays evicted itself on every call in models with more)."""
    size = math.prod(shape)
    key = (value.dtype.str, value.item())
    buffer = _FILLED.get(key)
    if buffer is None or buffer.size < size:
        buffer = np.full(max(size, 0 if buffer is None else 2 * buffer.size), value)
        buffer.flags.writeable = False
        _FILLED[key] = buffer
    return buffer[:size].reshape(shape)


def _per_element(block_values, blocks):
    """``block_values`` (one per block) repeated across each block of ``blocks``: a contiguous operand, much
    faster in numpy's element-wise arithmetic than the broadcast ``block_values[..., None]``."""
    return block_values.repeat(blocks.shape[-1]).reshape(blocks.shape)


def _check_codes(codes):
    if (codes > 0xF).any():
        raise ValueError(f"codes must be E2M1 codes 0..15, got {codes[codes > 0xF].flat[0]}")


def invalid_blocks(scales, fmt):
    """Number of blocks of format ``fmt`` ("mxfp4" or "nvfp4") whose scale code is NaN (E8M0 0xFF, E4M3
    0x7F or 0xFF): the blocks that held NaN or Inf."""
    _check_uint8("scales", scales, None)
    if fmt == "mxfp4":
        return int(np.count_nonzero(scales == E8M0_NAN))
    if fmt == "nvfp4":
        return int(np.count_nonzero((scales & 0x7F) == E4M3_NAN))
    raise ValueError(f"fmt must be 'mxfp4' or 'nvfp4', got {fmt!r}")


def hadamard(x, signs):
    """Random Hadamard transform of float32 ``x`` in blocks of ``len(signs)`` (16 or 32) along the last axis.

    Each block b becomes H (signs * b) / sqrt(n), with H the n x n Sylvester Hadamard matrix: an orthogonal
    map, so applying it with the same signs to both inputs of a GEMM along its reduction axis leaves the
    exact product unchanged while spreading outliers across the block. ``signs`` are +-1 (float32).
    """
    _check_float32("x", x)
    _check_float32("signs", signs)
    if signs.shape not in ((NV_BLOCK,), (MX_BLOCK,)) or not (np.abs(signs) == 1).all():
        raise ValueError(f"signs must be 16 or 32 values +-1, got shape {signs.shape}")
    blocks = _check_blocks("x", x, len(signs))
    # (b * signs) @ H == b @ (signs[:, None] * H) bit for bit: a sign flip is exact in either product
    return (blocks @ (signs[:, None] * hadamard_matrix(len(signs)))).reshape(x.shape)


def random_signs(n, rng):
    """``n`` random signs +-1 (float32) for :func:`hadamard`, one ``rng.integers(0, 2)`` draw each."""
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy Generator, got {rng!r}")
    return (1 - 2 * rng.integers(0, 2, n)).astype(np.float32)


@functools.cache
def hadamard_matrix(n):
    """The n x n Sylvester Hadamard matrix divided by sqrt(n), float32 (n a power of two; symmetric; read-only)."""
    h = np.ones((1, 1), np.float32)
    while len(h) < n:
        h = np.block([[h, h], [h, -h]])
    h = (h / np.sqrt(np.float32(n))).astype(np.float32)
    h.flags.writeable = False
    return h
