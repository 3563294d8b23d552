"""Validation of elaboration-time parameters: the golden model's checks, so that RTL and golden
refuse the same values with the same messages (naming the parameter and the bad value)."""

from golden._checks import check_bool, check_int

__all__ = ["check_bool", "check_int"]
