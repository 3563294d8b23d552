"""golden.fp16 against numpy float16 arithmetic, an integer-only rounding reference and hand-worked cases."""

import numpy as np
import pytest

from golden import fp16

CORNERS = fp16.CORNER_PATTERNS
ALL_BITS = np.arange(1 << 16, dtype=np.uint16)


def numpy_bits(halves):
    """Bit patterns of float16 results with every NaN made canonical."""
    return np.where(np.isnan(halves), np.uint16(fp16.CANONICAL_NAN), halves.view(np.uint16))


def numpy_mul(a, b):
    with np.errstate(all="ignore"):
        return numpy_bits(a.view(np.float16) * b.view(np.float16))


def numpy_add(a, b):
    with np.errstate(all="ignore"):
        return numpy_bits(a.view(np.float16) + b.view(np.float16))


def assert_bits_equal(what, inputs, want, got, seed=None):
    bad = np.flatnonzero(np.asarray(want) != np.asarray(got))
    if bad.size:
        i = bad[0]
        operands = ", ".join(f"{name}=0x{int(np.ravel(v)[i]):04x}" for name, v in inputs.items())
        raise AssertionError(f"{what}: {bad.size} mismatches (seed={seed}); first: {operands} "
                             f"expected 0x{int(np.ravel(want)[i]):04x} got 0x{int(np.ravel(got)[i]):04x}")


# Integer-only reference: exact value n * 2**k, rounded to binary16 with Python ints.

def decode(bits):
    """(sign, n, k) with |value| = n * 2**k, or (sign, 'inf'/'nan', None)."""
    sign, exp, frac = bits >> 15, (bits >> 10) & 31, bits & 1023
    if exp == 31:
        return sign, ("nan" if frac else "inf"), None
    return (sign, frac, -24) if exp == 0 else (sign, frac | 1024, exp - 25)


def round_exact(sign, n, k, ties):
    """Binary16 bits of (-1)**sign * n * 2**k, nearest-even; counts exact ties in ``ties``."""
    if n == 0:
        return sign << 15
    quantum = max(n.bit_length() - 1 + k, -14) - 10
    if k >= quantum:
        sig = n << (k - quantum)
    else:
        sig, rem = divmod(n, 1 << (quantum - k))
        half = 1 << (quantum - k - 1)
        ties[0] += rem == half
        sig += rem > half or (rem == half and sig & 1)
    if sig == 2048:
        sig, quantum = 1024, quantum + 1
    if sig < 1024:
        return (sign << 15) | sig
    field = quantum + 25
    return (sign << 15) | (0x7C00 if field >= 31 else (field << 10) | (sig - 1024))


def reference_mul(a, b, ties):
    (sa, na, ka), (sb, nb, kb) = decode(a), decode(b)
    sign = sa ^ sb
    if "nan" in (na, nb) or ({na, nb} & {"inf"} and 0 in (na, nb)):
        return fp16.CANONICAL_NAN
    if "inf" in (na, nb):
        return (sign << 15) | 0x7C00
    return round_exact(sign, na * nb, ka + kb, ties)


def reference_add(a, b, ties):
    (sa, na, ka), (sb, nb, kb) = decode(a), decode(b)
    if "nan" in (na, nb) or (na == nb == "inf" and sa != sb):
        return fp16.CANONICAL_NAN
    if "inf" in (na, nb):
        return ((sa if na == "inf" else sb) << 15) | 0x7C00
    k = min(ka, kb)
    total = (-1) ** sa * (na << (ka - k)) + (-1) ** sb * (nb << (kb - k))
    sign = (sa & sb) if total == 0 else int(total < 0)
    return round_exact(sign, abs(total), k, ties)


def tie_rich_operands(rng, size):
    """Patterns with few significant bits and nearby exponents, so products and sums often tie."""
    exp = rng.integers(1, 31, size)
    frac = rng.integers(0, 1024, size) & ~((1 << rng.integers(0, 11, size)) - 1)
    return ((rng.integers(0, 2, size) << 15) | (exp << 10) | frac).astype(np.uint16)


PRODUCTS = [  # a, b, product, invalid, overflow
    (0x3C01, 0x3C01, 0x3C02, 0, 0),  # (1 + 2**-10)**2 = 1 + 2**-9 + 2**-20 rounds down
    (0x3E00, 0x3E00, 0x4080, 0, 0),  # 1.5 * 1.5 = 2.25
    (0x0400, 0x3800, 0x0200, 0, 0),  # 2**-14 / 2 becomes subnormal
    (0x0001, 0x3800, 0x0000, 0, 0),  # 2**-25: tie between 0 and 2**-24, to even 0
    (0x0001, 0x3A00, 0x0001, 0, 0),  # 0.75 * 2**-24 rounds up
    (0x0003, 0x3800, 0x0002, 0, 0),  # 1.5 * 2**-24: tie, to even 2
    (0x8001, 0x3400, 0x8000, 0, 0),  # underflow keeps the sign: -0
    (0x5C00, 0x5C00, 0x7C00, 0, 1),  # 256 * 256 overflows
    (0x7BFF, 0x3C01, 0x7C00, 0, 1),  # 65504 * (1 + 2**-10) is past 65520
    (0x7BFF, 0x3BFF, 0x7BFE, 0, 0),  # 65504 * (1 - 2**-11) = 65472.02
    (0x7C00, 0x0000, 0x7E00, 1, 0),  # Inf * 0
    (0xFC00, 0xBC00, 0x7C00, 0, 0),  # -Inf * -1: Inf from Inf is no overflow
    (0x7D55, 0x3C00, 0x7E00, 0, 0),  # NaN payload made canonical, not invalid
]

SUMS = [  # x, y, sum, invalid, overflow
    (0x3C00, 0x1000, 0x3C00, 0, 0),  # 1 + 2**-11: tie, to even 1
    (0x3C01, 0x1000, 0x3C02, 0, 0),  # tie, to even upward
    (0x3C00, 0x1001, 0x3C01, 0, 0),  # just above the tie
    (0x3C00, 0x0FFF, 0x3C00, 0, 0),  # just below the tie
    (0x7BFF, 0x4C00, 0x7C00, 0, 1),  # 65504 + 16: tie at 65520, odd, rounds to Inf
    (0x7BFF, 0x4BFF, 0x7BFF, 0, 0),  # 65504 + 15.99
    (0x3C00, 0xBC00, 0x0000, 0, 0),  # x - x = +0
    (0x8000, 0x0000, 0x0000, 0, 0),  # -0 + +0 = +0
    (0x8000, 0x8000, 0x8000, 0, 0),  # -0 + -0 = -0
    (0x0200, 0x0200, 0x0400, 0, 0),  # two subnormals make the smallest normal
    (0x0400, 0x8001, 0x03FF, 0, 0),  # and back
    (0x3C00, 0xBBFF, 0x1000, 0, 0),  # 1 - (1 - 2**-11): cancellation, exact
    (0x7C00, 0xFC00, 0x7E00, 1, 0),  # Inf - Inf
    (0x7C00, 0x7BFF, 0x7C00, 0, 0),  # Inf + finite is no overflow
]


@pytest.mark.parametrize("name, op, flags_of, cases", [("mul", fp16.fp16_mul, fp16.mul_flags, PRODUCTS),
                                                       ("add", fp16.fp16_add, fp16.add_flags, SUMS)])
def test_hand_worked_results(name, op, flags_of, cases):
    x, y, result, invalid, overflow = (np.array(c) for c in zip(*cases))
    assert_bits_equal(name, {"x": x, "y": y}, result, op(x, y))
    flags = flags_of(x, y)
    assert np.array_equal(flags.invalid, invalid.astype(bool))
    assert np.array_equal(flags.overflow, overflow.astype(bool))


def test_to_float64_decodes_every_pattern():
    values = fp16.to_float64(ALL_BITS)
    finite = np.isfinite(values)
    assert np.array_equal(fp16.from_float64(values[finite]), ALL_BITS[finite])
    assert fp16.to_float64(0x0001) == 2.0**-24 and fp16.to_float64(0x7BFF) == 65504.0
    assert fp16.to_float64(0xFC00) == -np.inf and np.isnan(fp16.to_float64(0x7C01))
    assert np.signbit(fp16.to_float64(0x8000))


def test_cast_rounds_float64_once():
    # 1 + 2**-11 + 2**-40 is just above a tie; a detour through float32 would land on the tie.
    assert fp16.from_float64(1 + 2.0**-11 + 2.0**-40) == 0x3C01
    assert fp16.from_float64(1 + 2.0**-11 - 2.0**-40) == 0x3C00
    assert fp16.from_float64(65520.0 - 2.0**-30) == 0x7BFF
    assert fp16.from_float64(np.nan) == fp16.CANONICAL_NAN


@pytest.mark.parametrize("op, numpy_op", [(fp16.fp16_mul, numpy_mul), (fp16.fp16_add, numpy_add)])
def test_every_pattern_against_corners_matches_numpy(op, numpy_op):
    a, b = np.meshgrid(ALL_BITS, CORNERS)
    assert_bits_equal(op.__name__, {"a": a, "b": b}, numpy_op(a, b), op(a, b))
    assert_bits_equal(op.__name__, {"a": b, "b": a}, numpy_op(b, a), op(b, a))


@pytest.mark.parametrize("op, numpy_op", [(fp16.fp16_mul, numpy_mul), (fp16.fp16_add, numpy_add)])
def test_random_patterns_match_numpy(op, numpy_op, rng, seed):
    a = rng.integers(0, 1 << 16, 1 << 20).astype(np.uint16)
    b = rng.integers(0, 1 << 16, 1 << 20).astype(np.uint16)
    assert_bits_equal(op.__name__, {"a": a, "b": b}, numpy_op(a, b), op(a, b), seed)
    a, b = tie_rich_operands(rng, 1 << 20), tie_rich_operands(rng, 1 << 20)
    assert_bits_equal(op.__name__, {"a": a, "b": b}, numpy_op(a, b), op(a, b), seed)


@pytest.mark.parametrize("op, reference", [(fp16.fp16_mul, reference_mul), (fp16.fp16_add, reference_add)])
def test_against_integer_reference(op, reference, rng, seed):
    a, b = (v.ravel() for v in np.meshgrid(CORNERS, CORNERS))
    a = np.concatenate([a, rng.integers(0, 1 << 16, 5000), tie_rich_operands(rng, 10000)]).astype(np.uint16)
    b = np.concatenate([b, rng.integers(0, 1 << 16, 5000), tie_rich_operands(rng, 10000)]).astype(np.uint16)
    ties = [0]
    want = np.array([reference(int(x), int(y), ties) for x, y in zip(a, b)], dtype=np.uint16)
    assert_bits_equal(op.__name__, {"a": a, "b": b}, want, op(a, b), seed)
    assert ties[0] > 500, f"only {ties[0]} exact ties exercised"


def test_flags_against_nan_and_inf_creation(rng):
    a, b = (v.ravel() for v in np.meshgrid(ALL_BITS[::7], CORNERS))
    half_a, half_b = a.view(np.float16), b.view(np.float16)
    with np.errstate(all="ignore"):
        product, total = half_a * half_b, half_a + half_b
    for flags, result in ((fp16.mul_flags(a, b), product), (fp16.add_flags(a, b), total)):
        nan_in = np.isnan(half_a) | np.isnan(half_b)
        assert np.array_equal(flags.invalid, np.isnan(result) & ~nan_in)
        assert np.array_equal(flags.overflow, np.isinf(result) & np.isfinite(half_a) & np.isfinite(half_b))
        assert flags.invalid.any() and flags.overflow.any()


def numpy_sequence(a, b, valid, clear):
    """MAC cycle model in numpy float16 arithmetic, lanes along axis 0; flags from NaN/Inf creation."""
    a16, b16 = a.view(np.float16), b.view(np.float16)
    acc = np.zeros(a.shape[0], np.float16)
    invalid, overflow = np.zeros(a.shape[0], bool), np.zeros(a.shape[0], bool)
    out = []
    with np.errstate(all="ignore"):
        for t in range(a.shape[1]):
            acc = np.where(clear[:, t], np.float16(0), acc)
            invalid, overflow = invalid & ~clear[:, t], overflow & ~clear[:, t]
            p = a16[:, t] * b16[:, t]
            s = acc + p
            finite_in = np.isfinite(a16[:, t]) & np.isfinite(b16[:, t])
            nan_in = np.isnan(a16[:, t]) | np.isnan(b16[:, t])
            step_invalid = (np.isnan(p) & ~nan_in) | (np.isnan(s) & ~np.isnan(acc) & ~np.isnan(p))
            step_overflow = (np.isinf(p) & finite_in) | (np.isinf(s) & np.isfinite(acc) & np.isfinite(p))
            on = valid[:, t]
            acc = np.where(on, s, acc)
            invalid, overflow = invalid | (on & step_invalid), overflow | (on & step_overflow)
            out.append((numpy_bits(acc), invalid, overflow))
    return [np.stack(v, axis=1) for v in zip(*out)]


def test_mac_sequence_matches_numpy_loop(rng, seed):
    shape = (64, 300)
    a = np.where(rng.random(shape) < 0.1, rng.choice(CORNERS, shape), tie_rich_operands(rng, shape))
    b = np.where(rng.random(shape) < 0.1, rng.choice(CORNERS, shape), tie_rich_operands(rng, shape))
    b = np.where(rng.random(shape) < 0.5, (b & 0x83FF) | (15 << 10), b)  # keep many sums finite
    valid, clear = rng.random(shape) < 0.9, rng.random(shape) < 0.05
    got = fp16.mac_sequence(a, b, valid, clear)
    want = numpy_sequence(a, b, valid, clear)
    for name, w, g in zip(("acc", "invalid", "overflow"), want, got):
        bad = np.argwhere(w != g)
        assert bad.size == 0, f"{name} differs (seed={seed}) at lane, cycle {bad[0]}"
    assert got.invalid.any() and got.overflow.any() and (~got.invalid & ~got.overflow).any()


def test_mac_sequence_hand_worked():
    one, two, inf, zero = 0x3C00, 0x4000, 0x7C00, 0x0000
    a = [one, two, inf, one, 0x7BFF, 0x7BFF, one]
    b = [one, two, zero, one, two, one, one]
    valid = [1, 1, 1, 0, 1, 1, 1]
    clear = [1, 0, 0, 1, 1, 0, 1]
    trace = fp16.mac_sequence(a, b, valid, clear)
    # 1; 1 + 4 = 5; Inf * 0 -> NaN; clear without valid -> +0; 65504 * 2 -> Inf; Inf + 65504; new sum 1.
    assert trace.acc.tolist() == [0x3C00, 0x4500, 0x7E00, 0x0000, 0x7C00, 0x7C00, 0x3C00]
    assert trace.invalid.tolist() == [0, 0, 1, 0, 0, 0, 0]
    assert trace.overflow.tolist() == [0, 0, 0, 0, 1, 1, 0]


def test_clear_starts_from_positive_zero():
    trace = fp16.mac_sequence([0x8000], [0x3C00], [1], [1])  # -0 * 1 = -0; +0 + -0 = +0
    assert trace.acc.tolist() == [0x0000]
    assert fp16.fp16_mac(0x8000, 0x8000, 0x3C00) == 0x8000


def test_dot_matches_sequence(rng):
    a, b = tie_rich_operands(rng, (5, 40)), tie_rich_operands(rng, (5, 40))
    result = fp16.dot(a.T, b.T, axis=0)
    trace = fp16.mac_sequence(a, b, True, False)
    assert np.array_equal(result.acc, trace.acc[:, -1])
    assert np.array_equal(result.overflow, trace.overflow[:, -1])
    empty = fp16.dot(np.zeros((3, 0), np.uint16), np.zeros((3, 0), np.uint16))
    assert empty.acc.tolist() == [0, 0, 0] and not empty.invalid.any()


@pytest.mark.parametrize("call, exc, name", [
    (lambda: fp16.fp16_mul(-1, 0), ValueError, "a"),
    (lambda: fp16.fp16_add(0, 1 << 16), ValueError, "b"),
    (lambda: fp16.fp16_mul(np.float16(1.0), 0), TypeError, "a"),
    (lambda: fp16.fp16_mac(70000, 0, 0), ValueError, "acc"),
    (lambda: fp16.mac_sequence([1], [1], [2], [0]), ValueError, "valid"),
    (lambda: fp16.mac_sequence([1], [1], [1], [0.5]), TypeError, "clear"),
    (lambda: fp16.mac_sequence(1, 1, 1, 0), ValueError, "scalars"),
    (lambda: fp16.dot(1, 1), ValueError, "shape"),
])
def test_bad_arguments(call, exc, name):
    with pytest.raises(exc, match=name):
        call()


def all_fraction_pairs(sign_b, exp_a, exp_b):
    """Every (fraction a, fraction b) pair for fixed exponent fields (a positive, b of sign ``sign_b``)."""
    fa, fb = np.meshgrid(np.arange(1024, dtype=np.uint16), np.arange(1024, dtype=np.uint16))
    return (exp_a << 10) | fa, (sign_b << 15) | (exp_b << 10) | fb


# The product's rounding depends on the exponents only through their sum and the hidden bits; the
# sum's on the exponent difference, the larger exponent and the sign: these classes cover them all.
MUL_CLASSES = [(0, ea, eb) for ea in (0, 1, 15) for eb in range(32)]
ADD_CLASSES = [(s, ea, eb) for s in (0, 1) for ea in (0, 1, 2, 15, 30, 31)
               for eb in sorted({0, *range(max(0, ea - 14), ea + 1)})]


@pytest.mark.slow
@pytest.mark.parametrize("op, numpy_op, classes", [(fp16.fp16_mul, numpy_mul, MUL_CLASSES),
                                                   (fp16.fp16_add, numpy_add, ADD_CLASSES)])
def test_all_fraction_pairs_match_numpy(op, numpy_op, classes):
    for sign_b, exp_a, exp_b in classes:
        a, b = all_fraction_pairs(sign_b, exp_a, exp_b)
        assert_bits_equal(op.__name__, {"a": a, "b": b}, numpy_op(a, b), op(a, b))


def test_interleaved_sums_are_mac_sequences_of_their_cycles(rng):
    shape = (3, 41)
    a, b = rng.integers(0, 1 << 16, shape), rng.choice(fp16.CORNER_PATTERNS, shape)
    valid, clear = rng.random(shape) < 0.8, rng.random(shape) < 0.2
    trace = fp16.interleaved_mac_sequence(a, b, valid, clear, 4)
    for k in range(4):
        own = fp16.mac_sequence(a[:, k::4], b[:, k::4], valid[:, k::4], clear[:, k::4])
        for name in ("acc", "invalid", "overflow"):
            assert (getattr(trace, name)[:, k::4] == getattr(own, name)).all(), (k, name)
    single = fp16.interleaved_mac_sequence(a, b, valid, clear, 1)
    assert (single.acc == fp16.mac_sequence(a, b, valid, clear).acc).all()


@pytest.mark.parametrize("sums", [0, -1, 2.0, True])
def test_interleaved_sums_must_be_a_positive_integer(sums):
    with pytest.raises(ValueError, match="sums must be a positive integer"):
        fp16.interleaved_mac_sequence([1], [1], 1, 0, sums)
