"""Yosys/nextpnr synthesis of the generated Verilog for ECP5 and iCE40: the flow, sweeps, board
bitstreams and the reports."""
