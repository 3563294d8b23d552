"""``python -m rtl [--out-dir DIR]``: write all unit configurations as Verilog plus manifest.json."""

import argparse

from .generate import write_all


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m rtl", description=__doc__)
    parser.add_argument("--out-dir", default="build/verilog", help="output directory (default: %(default)s)")
    args = parser.parse_args(argv)
    for entry in write_all(args.out_dir):
        print(f"{args.out_dir}/{entry['file']}")


if __name__ == "__main__":
    main()
