"""cocotb bench of Fp16Mac (rtl/fp16_mac.py) against golden.fp16.mac_step, in the batch wrapper:
the tests and the cycle model are in :mod:`testbench.fp16_mac_bench`."""

from .fp16_mac_bench import *  # noqa: F403  (the tests this module runs: fp16_mac_bench.__all__)
