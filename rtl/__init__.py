"""Amaranth 0.5 hardware of fourbit, one concept per module, with its Verilog generation
(``python -m rtl``) and the toolchain module :mod:`rtl.tools`."""
