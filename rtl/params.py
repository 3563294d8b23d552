"""Validation of elaboration-time parameters: every error names the parameter and the bad value."""


def check_int(name, value, lo, hi):
    """Return ``value`` if it is an ``int`` (not ``bool``) in ``lo..hi``, else raise."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if not lo <= value <= hi:
        raise ValueError(f"{name} must lie in {lo}..{hi}, got {value}")
    return value


def check_bool(name, value):
    """Return ``value`` if it is a ``bool``, else raise (0/1 are refused to catch swapped arguments)."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {value!r}")
    return value
