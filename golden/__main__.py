"""`python -m golden`: print the FP4 grids and run the worked examples of docs/numerics.md."""

import doctest
import pathlib
import sys

import numpy as np

from . import fp4

DOCS = pathlib.Path(__file__).resolve().parent.parent / "docs" / "numerics.md"


def main():
    print("fourbit golden model: radix-4 FP4 magnitudes for s = 0")
    for phase in fp4.PHASES:
        levels = ", ".join(f"2^{int(np.log2(v))}" for v in fp4.decode(np.arange(1, 8), 0, phase))
        print(f"  phase {phase}: e = 1..7 -> {levels}")
    result = doctest.testfile(str(DOCS), module_relative=False, optionflags=doctest.NORMALIZE_WHITESPACE)
    print(f"docs/numerics.md: {result.attempted - result.failed}/{result.attempted} worked examples agree")
    return 1 if result.failed else 0


if __name__ == "__main__":
    sys.exit(main())
