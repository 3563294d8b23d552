"""fourbit hardware: Amaranth 0.5 components, one concept per module, and their Verilog generation.

Units: :class:`rtl.int4_mac.Int4Mac`, :class:`rtl.shift_mac.ShiftMac`,
:class:`rtl.radix4_quantizer.Radix4Quantizer`, :class:`rtl.grad_scale.GradScaleUnit`,
:class:`rtl.fp16_mac.Fp16Mac`; ``python -m rtl`` writes them to build/verilog (docs/rtl.md).
"""
