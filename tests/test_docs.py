"""The worked examples of docs/numerics.md are executed against the golden model."""

import doctest
import os

from conftest import ROOT


def test_numerics_examples():
    result = doctest.testfile(
        os.path.join(ROOT, "docs", "numerics.md"),
        module_relative=False,
        optionflags=doctest.NORMALIZE_WHITESPACE,
    )
    assert result.attempted >= 20
    assert result.failed == 0
