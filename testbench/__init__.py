"""Verification of the generated Verilog: cocotb benches on Icarus and Verilator against
``golden`` with their runner, amaranth.sim helpers, and formal proofs (docs/verification.md)."""
