"""cocotb benches of the generated Verilog on Icarus and Verilator, checked bit for bit against
``golden`` (docs/verification.md). ``python -m testbench`` runs them; :mod:`testbench.runner`
builds and runs one target; the ``bench_*`` modules are the cocotb test modules."""
