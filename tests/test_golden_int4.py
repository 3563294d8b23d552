"""SAWB and PACT against their formulas, written out directly."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from golden import int4

weights = hnp.arrays(np.float64, st.integers(1, 200), elements=st.floats(-10, 10, width=32))


@pytest.mark.filterwarnings("ignore:SAWB alpha:RuntimeWarning")   # small drawn tensors are often degenerate
@given(weights)
def test_sawb_matches_formula(w):
    codes, step = int4.sawb(w)
    alpha = 12.035 * np.sqrt(np.mean(w**2)) - 12.03 * np.mean(np.abs(w))
    if not (np.isfinite(alpha) and alpha > 0):
        alpha = np.abs(w).max()
    if alpha == 0:
        assert step == 1.0 and not codes.any()
        return
    assert step == alpha / 7
    want = np.clip(np.round(w / (alpha / 7)), -7, 7)
    assert codes.dtype == np.int8 and np.array_equal(codes, want)
    assert codes.min() >= -7


@given(hnp.arrays(np.float64, st.integers(1, 200), elements=st.floats(-4, 4, width=32)),
       st.floats(0.01, 8))
def test_pact_matches_formula(x, alpha):
    codes, step = int4.pact(x, alpha)
    want = np.round(np.clip(x, 0, alpha) * 15 / alpha)
    assert codes.dtype == np.uint8 and np.array_equal(codes, want)
    assert step == alpha / 15
    assert codes.max(initial=0) <= 15


def test_pact_round_half_even():
    codes, _ = int4.pact(np.array([0.5 / 15, 1.5 / 15, 2.5 / 15]) * 1.0, 1.0)
    assert codes.tolist() == [0, 2, 2]


def test_pact_backward_straight_through():
    x = np.array([-0.5, 0.0, 0.4, 1.0, 2.0])
    grad_x, grad_alpha = int4.pact_backward(x, 1.0, np.array([1.0, 2.0, 3.0, 4.0, 5.0]))
    assert grad_x.tolist() == [0.0, 2.0, 3.0, 0.0, 0.0]
    assert grad_alpha == 9.0


@pytest.mark.parametrize("call, error, message", [
    (lambda: int4.pact(np.ones(2), 0.0), ValueError, "alpha must be finite and > 0, got 0.0"),
    (lambda: int4.pact(np.ones(2), float("nan")), ValueError, "got nan"),
    (lambda: int4.pact(np.array([1.0, np.inf]), 1.0), ValueError, "x contains a non-finite value"),
    (lambda: int4.sawb(np.array([1, 2])), TypeError, "w must be a floating-point array, got dtype int64"),
    (lambda: int4.sawb(np.array([np.nan])), ValueError, "w contains a non-finite value"),
    (lambda: int4.pact_backward(np.ones(2), 1.0, np.ones(3)), ValueError, "grad_out shape"),
])
def test_bad_input(call, error, message):
    with pytest.raises(error, match=message):
        call()
