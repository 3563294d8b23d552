"""Argument validation shared by the golden model: every error names the argument and value."""

import numpy as np


def as_int_array(name, value, lo, hi):
    """Return ``value`` as an int64 array after checking its dtype and that lo <= value <= hi."""
    arr = np.asarray(value)
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must be an integer array, got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    bad = (arr < lo) | (arr > hi)
    if bad.any():
        first = arr[bad].flat[0]
        raise ValueError(f"{name} must lie in {lo}..{hi}, got {first}")
    return arr


def check_int(name, value, lo, hi):
    """Check a scalar integer parameter and return it as ``int``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if not lo <= value <= hi:
        raise ValueError(f"{name} must lie in {lo}..{hi}, got {value}")
    return int(value)


def check_bool(name, value):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {value!r}")
    return bool(value)


def check_matmul_shapes(a_name, a, b_name, b):
    if a.ndim != 2 or b.ndim != 2:
        raise ValueError(f"{a_name} and {b_name} must be 2-D, got shapes {a.shape} and {b.shape}")
    if a.shape[1] != b.shape[0]:
        raise ValueError(f"inner dimensions differ: {a_name} has shape {a.shape}, {b_name} has shape {b.shape}")
    if a.shape[1] == 0:
        raise ValueError(f"the inner dimension K must be at least 1, got {a_name} shape {a.shape}")


def as_float16(name, value):
    """Return ``value`` as float16, refusing dtypes that do not hold float16 values exactly."""
    arr = np.asarray(value)
    if arr.dtype == np.float16:
        return arr
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)) or arr.dtype == np.bool_:
        raise TypeError(f"{name} must be float16 (or exactly castable to it), got dtype {arr.dtype}")
    with np.errstate(over="ignore", invalid="ignore"):
        half = arr.astype(np.float16)
        exact = (half.astype(np.float64) == arr.astype(np.float64)) | (np.isnan(half) & np.isnan(arr.astype(np.float64)))
    if not exact.all():
        first = arr[~exact].flat[0]
        raise TypeError(f"{name} has dtype {arr.dtype} and value {first!r} is not exactly a float16")
    return half
