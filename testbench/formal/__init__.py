"""Formal proofs of the RTL with SymbiYosys: harnesses, properties and the job runner.

Each property wraps the unit's generated Verilog (the same text that is simulated and
synthesised) in an Amaranth harness that drives its ports with free inputs and checks them
against a reference model written from docs/numerics.md and the documented ports and LATENCY.
"""
