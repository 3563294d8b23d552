"""The property list: what each proof claims, its mode and depth, and whether ``make test`` runs it."""

from dataclasses import dataclass

from . import array, fp16, streams, units


@dataclass(frozen=True)
class Property:
    """One sby job.

    ``make`` builds the harness; its keyword arguments (``edit``, ``dut_params``) build mutants.
    ``mode`` is prove (k-induction, unbounded), bmc (bounded to ``depth`` cycles) or cover.
    ``quick`` properties run in ``make test`` (measured: 86 s together on an idle core, 2026-12-04).
    """

    name: str
    claim: str
    mode: str
    depth: int
    make: object
    quick: bool = True

    def harness(self, **variant):
        return self.make(**variant)


def _mac(unit, **params):
    def make(dut_params=None, edit=None):
        return units.MacHarness(unit, params, dut_params=dut_params, edit=edit)
    return make


def _check(harness, check):
    def make(edit=None):
        return harness(check, edit=edit)
    return make


def _stream_unit(unit, harness, values, handshake, scoreboard):
    """The three proofs of a stream unit, with these claims: its values without back-pressure and its
    handshake (unbounded), and a scoreboard under any back-pressure (bounded, not quick)."""
    return [
        Property(f"{unit}_values", values, "prove", 4, _check(harness, "values")),
        Property(f"{unit}_handshake", handshake, "prove", 2, _check(harness, "handshake")),
        Property(f"{unit}_scoreboard", scoreboard, "bmc", 12, _check(harness, "scoreboard"), quick=False),
    ]


PROPERTIES = [
    Property("accumulator_sum", "SaturatingAccumulator (W=8, 10-bit terms) equals the reference saturating "
             "sum with its sticky overflow flag", "prove", 3, units.AccumulatorHarness),
    Property("int4_mac_unsigned_sum", "Int4Mac (W=24, unsigned A) equals the reference saturating sum of "
             "exact products LATENCY cycles later", "prove", 4, _mac("int4_mac", width=24, signed_a=False)),
    Property("int4_mac_signed_sum", "Int4Mac (W=24, signed A) equals the reference saturating sum",
             "prove", 4, _mac("int4_mac", width=24, signed_a=True)),
    Property("int4_mac_saturation", "Int4Mac (W=8, unsigned A: sums saturate within a few terms) equals "
             "the reference saturating sum and flag", "prove", 4, _mac("int4_mac", width=8, signed_a=False)),
    Property("shift_mac_signed_sum", "ShiftMac (W=32, signed B) equals the reference sum of shifted "
             "products", "prove", 4, _mac("shift_mac", width=32, signed_b=True)),
    Property("shift_mac_unsigned_sum", "ShiftMac (W=32, unsigned B) equals the reference sum of shifted "
             "products", "prove", 4, _mac("shift_mac", width=32, signed_b=False)),
    Property("shift_mac_saturation", "ShiftMac (W=16, signed B: single products saturate) equals the "
             "reference saturating sum and flag", "prove", 4, _mac("shift_mac", width=16, signed_b=True)),
    Property("pe_sum", "ProcessingElement (24/32-bit): the captured shadow, descaled, is the reference "
             "saturating sum of the mode (FWD or FP4, either phase and B signedness)", "prove", 4,
             units.PeSumHarness),
    Property("pe_shadow_chain", "ProcessingElement: without capture the shadow holds, or loads shift_in "
             "on shift", "prove", 2, units.PeShadowHarness),

    Property("fp16_nan", "Fp16Mac: a NaN operand gives the canonical NaN 0x7E00 LATENCY cycles later; every "
             "NaN on acc is canonical", "prove", 5, _check(fp16.Fp16Harness, "nan")),
    Property("fp16_inf_minus_inf", "Fp16Mac: +-Inf product added to an accumulated Inf of the other sign "
             "gives NaN and raises invalid", "prove", 5, _check(fp16.Fp16Harness, "inf_minus_inf")),
    Property("fp16_reset", "Fp16Mac: at power-up and after reset the sum is +0 and invalid/overflow are down", "prove", 2,
             _check(fp16.Fp16Harness, "reset")),
    Property("fp16_product_rounding", "Fp16Mac: a new sum of one product of normal operands with a normal "
             "result is the product rounded to nearest, ties to even", "prove", 5, _check(fp16.Fp16Harness, "product_rounding")),

    *_stream_unit("quantizer", streams.QuantizerHarness,
                  values="Radix4Quantizer: without back-pressure every value leaves LATENCY cycles later with "
                  "both phases' codes and flags of the contract (numerics section 4)",
                  handshake="Radix4Quantizer: o holds valid and payload while stalled; i.ready is high whenever "
                  "o can move",
                  scoreboard="Radix4Quantizer under any back-pressure and input gaps: the outputs are those of a "
                  "never-stalled instance fed the accepted inputs, in order, each exactly once"),
    *_stream_unit("grad_scale", streams.GradScaleHarness,
                  values="GradScaleUnit: one-value tensors, one per cycle, give the smallest s with 2**s >= |g| "
                  "(0 and nonfinite for NaN/Inf) LATENCY cycles later (numerics section 5)",
                  handshake="GradScaleUnit: o holds valid and payload while stalled; i.ready is exactly 'o can move'",
                  scoreboard="GradScaleUnit, any tensors under any back-pressure: one result per tensor, in order, "
                  "the contract's maximum over its finite values"),

    Property("array_protocol", "TrainingArray 2x2, any commands, gaps and back-pressure: rows in order exactly "
             "once with their tile's mode and s, beats taken from a and b together, commands consumed with their "
             "last beat (K = 0 or mode 3 at once), error exactly K = 0 or "
             "mode 3 (sticky), no beat of another mode while tiles accumulate", "bmc", 16,
             _check(array.ArrayHarness, "protocol"), quick=False),
    Property("array_modes_complete", "TrainingArray 2x2: a tile of each mode (FWD, BWD_DATA, BWD_WEIGHT) "
             "leaves completely", "cover", 20, _check(array.ArrayHarness, "cover"), quick=False),
]

BY_NAME = {prop.name: prop for prop in PROPERTIES}
