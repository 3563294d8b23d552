"""A row of block-scaled PEs with the float32 accumulate shared between them (golden.mx_gemm).

All PEs of a row finish a block in the same cycle, but only once every 16 or 32 beats, so one
:class:`rtl.fp32_scaled_add.Fp32ScaledAdd` can scale and add every column's block sum in turn
(``shared=True``); ``shared=False`` gives every PE its own, to measure the difference (docs/rtl.md).
"""

from amaranth import Array, C, Cat, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from golden import mx

from .fp32_scaled_add import Fp32ScaledAdd
from .mx_pe import MxProcessingElement, sum_shape
from .params import check_bool, check_int

FORMATS = {"mxfp4": mx.MX_BLOCK, "nvfp4": mx.NV_BLOCK}
#: Term widths of the shared unit: MX block sums (14 bits) and NVFP4 block sums times the two
#: 4-bit E4M3 significands (21 bits); exponents ca + cb - 256 (10 bits) and xa + xb - 2 (6 bits).
TERM_WIDTHS = {"mxfp4": (14, 10), "nvfp4": (21, 6)}


def check_format(fmt):
    """Refuse a format other than MXFP4 and NVFP4, naming it."""
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {sorted(FORMATS)}, got {fmt!r}")


def e4m3_parts(code):
    """(sign, q, x, nan) of an E4M3 code: value = (-1)**sign * q * 2**x (golden.mx_gemm.e4m3_parts)."""
    exponent, mantissa = code[3:7], code[:3]
    normal = exponent.any()
    return code[7], Cat(mantissa, normal), Mux(normal, exponent, 1) - 10, code[:7] == mx.E4M3_NAN


#: Register stages from a selected block sum to its term: the NVFP4 scale multiply needs them.
TERM_STAGES = 3


def block_term(m, fmt, block_sum, ca, cb):
    """(sig, exp, nan) of a block term, TERM_STAGES registers after ``block_sum`` and the scale codes.

    MX: sig = S, exp = ca + cb - 256, NaN for code 0xFF. NVFP4 (the FP8 scale multiply): the block sum
    with the scales' sign, T = +-S, and the scale significands' product q = qa * qb (4 x 4 bits) first,
    then the partial products T * q[2:0], T * q[5:3] and T * q[7:6] (a 12 x 8 product in one stage
    limited the clock, docs/rtl.md), then their sum: sig = T * q = +-S * qa * qb, exp = xa + xb - 2.
    """
    def reg(value, shape):
        register = Signal(shape)
        m.d.sync += register.eq(value)
        return register

    if fmt == "mxfp4":
        sig, exp = block_sum, ca + cb - (2 * mx.E8M0_BIAS + 2)
        nan = (ca == mx.E8M0_NAN) | (cb == mx.E8M0_NAN)
        stages = [(sig, block_sum.shape()), (exp, signed(10)), (nan, 1)]
        for _ in range(TERM_STAGES):
            stages = [(reg(value, shape), shape) for value, shape in stages]
        return tuple(value for value, _ in stages)
    sa, qa, xa, nan_a = e4m3_parts(ca)
    sb, qb, xb, nan_b = e4m3_parts(cb)
    signed_sum = reg(Mux(sa ^ sb, -block_sum, block_sum), block_sum.shape())   # |S| <= 2,304: no overflow
    q = reg(qa * qb, 8)
    exp, nan = reg(xa + xb - 2, signed(6)), reg(nan_a | nan_b, 1)
    part = signed(len(signed_sum) + 3)
    parts = [reg(signed_sum * q[lo:hi], part) for lo, hi in ((0, 3), (3, 6), (6, 8))]
    exp, nan = reg(exp, signed(6)), reg(nan, 1)
    return (reg(parts[0] + (parts[1] << 3) + (parts[2] << 6), signed(TERM_WIDTHS["nvfp4"][0])), reg(exp, signed(6)),
            reg(nan, 1))


class MxBlockTerm(wiring.Component):
    """The block term ``sig * 2**exp`` of a finished block sum and its two scale codes (``block_term``).

    A unit of its own so that the synthesis flow measures NVFP4's FP8 scale multiply against
    MXFP4's exponent add; the float32 units of ``MxRow`` and the MX array use it. Inputs in cycle t
    give the term in t + LATENCY.

    Parameters
    ----------
    fmt : str
        "mxfp4" or "nvfp4".

    Members
    -------
    block_sum : In(sum_shape(block))
        The exact block sum in units of 1/4.
    a_scale, b_scale : In(8)
        The block's two scale codes (E8M0 for MXFP4, E4M3 for NVFP4).
    sig : Out(signed(TERM_WIDTHS[fmt][0]))
    exp : Out(signed(TERM_WIDTHS[fmt][1]))
        The term: ``sig * 2**exp``.
    nan : Out(1)
        A scale code is NaN.
    """

    LATENCY = TERM_STAGES

    def __init__(self, fmt="mxfp4"):
        check_format(fmt)
        self.fmt = fmt
        sig_width, exp_width = TERM_WIDTHS[fmt]
        super().__init__({"block_sum": In(sum_shape(FORMATS[fmt])), "a_scale": In(8), "b_scale": In(8),
                          "sig": Out(signed(sig_width)), "exp": Out(signed(exp_width)), "nan": Out(1)})

    def elaborate(self, platform):
        m = Module()
        sig, exp, nan = block_term(m, self.fmt, self.block_sum, self.a_scale, self.b_scale)
        m.d.comb += [self.sig.eq(sig), self.exp.eq(exp), self.nan.eq(nan)]
        return m


def select(values, index):
    """``values[index]`` as a full case: the list is padded to every value ``index`` can take."""
    return Array(values + [values[-1]] * ((1 << len(index)) - len(values)))[index]


class MxRow(wiring.Component):
    """``columns`` block-scaled PEs sharing the row operand ``a``, with their float32 accumulators.

    One tile: blocks of ``block`` beats; each beat gives ``a`` and the ``columns`` codes of ``b``.
    With the last beat of a block (``valid & last``) the block's scale codes are given:
    ``a_scale`` and ``b_scales``; ``tile_last`` marks the tile's final block. The first block after
    reset or after a tile's final block starts the sums from +0. When the final block's terms have
    all been added, ``o_valid`` is high for one cycle with the float32 sums on ``o_sums``; they stay
    there until the next tile's first terms overwrite them (at least ``block`` cycles).

    Each finished block sum is held in its PE while the shared unit takes the columns in order, one
    per cycle, so ``columns`` <= ``block``; the unit's input is registered (it also holds the NVFP4
    scale multiply). Tiles follow each other without a gap; beats may have gaps (``valid`` low).

    Parameters
    ----------
    fmt : str
        "mxfp4" (E8M0 scales, blocks of 32) or "nvfp4" (E4M3 scales, blocks of 16).
    columns : int
        PEs in the row, 2..block.
    shared : bool
        One float32 unit for the row (True) or one per PE.

    Members
    -------
    a : In(4)
        E2M1 code of the row operand.
    b : In(4 * columns)
        E2M1 codes of the columns, column c in bits 4c..4c+3.
    valid, last, tile_last : In(1)
        A beat; the block's last beat; (with ``last``) the tile's final block.
    a_scale : In(8)
        The row's scale code of the block (read with ``last``).
    b_scales : In(8 * columns)
        The columns' scale codes of the block, column c in bits 8c..8c+7 (read with ``last``).
    o_valid : Out(1)
        ``o_sums`` holds a finished tile.
    o_sums : Out(32 * columns)
        float32 bit patterns of the tile's sums, column c in bits 32c..32c+31.
    """

    LATENCY = None  # tile-level: o_valid comes Fp32ScaledAdd.LATENCY + columns + 2 cycles after the last beat

    def __init__(self, fmt="mxfp4", columns=8, shared=True):
        check_format(fmt)
        self.fmt, self.block = fmt, FORMATS[fmt]
        self.columns = check_int("columns", columns, 2, self.block)
        self.shared = check_bool("shared", shared)
        super().__init__({
            "a": In(4), "b": In(4 * columns), "valid": In(1), "last": In(1), "tile_last": In(1),
            "a_scale": In(8), "b_scales": In(8 * columns),
            "o_valid": Out(1), "o_sums": Out(32 * columns),
        })

    def elaborate(self, platform):
        m = Module()
        cols = self.columns
        pes = []
        for c in range(cols):
            pe = MxProcessingElement(self.block)
            m.submodules[f"pe{c}"] = pe
            m.d.comb += [pe.a.eq(self.a), pe.b.eq(self.b[4 * c:4 * c + 4]), pe.valid.eq(self.valid), pe.last.eq(self.last)]
            pes.append(pe)

        # Scale codes and tile flags of the block being drained (read with its last beat).
        block_end = self.valid & self.last
        a_scale, b_scales, first, final, fresh = Signal(8), Signal(8 * cols), Signal(), Signal(), Signal(init=1)
        with m.If(block_end):
            m.d.sync += [a_scale.eq(self.a_scale), b_scales.eq(self.b_scales), first.eq(fresh),
                         final.eq(self.tile_last), fresh.eq(self.tile_last)]

        accs = [Signal(32, name=f"acc{c}") for c in range(cols)]
        m.d.comb += self.o_sums.eq(Cat(*accs))
        groups = [list(range(cols))] if self.shared else [[c] for c in range(cols)]
        written = []
        for g, group in enumerate(groups):
            written.append(self._drain(m, f"u{g}", group, pes, accs, a_scale, b_scales, first, final))
        m.d.comb += self.o_valid.eq(written[0])
        return m

    def _drain(self, m, name, group, pes, accs, a_scale, b_scales, first, final):
        """One float32 unit taking the block sums of the PEs in ``group`` in turn after each block.

        Returns a signal high when the final column of a tile's final block has been written.
        """
        sig_width, exp_width = TERM_WIDTHS[self.fmt]
        unit = Fp32ScaledAdd(sig_width, exp_width)
        m.submodules[name] = unit
        count = len(group)
        busy, index = Signal(name=f"{name}_busy"), Signal(range(max(count, 2)), name=f"{name}_index")
        with m.If(pes[0].done):
            m.d.sync += [busy.eq(1), index.eq(0)]
        with m.Elif(busy):
            m.d.sync += [index.eq(index + 1), busy.eq(index != count - 1)]

        column = select([C(c, range(self.columns)) for c in group], index)
        block_sum = select([pes[c].block_sum for c in group], index)
        code = select([b_scales[8 * c:8 * c + 8] for c in group], index)
        m.submodules[f"{name}_term"] = term = MxBlockTerm(self.fmt)
        m.d.comb += [term.block_sum.eq(block_sum), term.a_scale.eq(a_scale), term.b_scale.eq(code)]
        sig, exp, nan = term.sig, term.exp, term.nan
        # the term's column, flags and slot, delayed alongside it
        column_t, first_t, busy_t = column, first, busy
        end_t = busy & final & (index == count - 1)
        for stage in range(TERM_STAGES):
            regs = (Signal(range(self.columns), name=f"{name}_tcol{stage}"), Signal(name=f"{name}_tfirst{stage}"),
                    Signal(name=f"{name}_tbusy{stage}"), Signal(name=f"{name}_tend{stage}"))
            m.d.sync += [r.eq(v) for r, v in zip(regs, (column_t, first_t, busy_t, end_t))]
            column_t, first_t, busy_t, end_t = regs
        p = unit.i.payload
        acc = select(list(accs), column_t)
        m.d.sync += [unit.i.valid.eq(busy_t), p.acc.eq(Mux(first_t, 0, acc)),
                     p.sig.eq(sig), p.exp.eq(exp), p.nan.eq(nan)]
        m.d.comb += unit.o.ready.eq(1)   # so the unit never stalls and its latency is fixed

        # The column and flags of each term, delayed to meet its result (the unit never stalls here).
        delay = Fp32ScaledAdd.LATENCY + 1
        tags = [Signal(range(self.columns), name=f"{name}_col{i}") for i in range(delay)]
        ends = [Signal(name=f"{name}_end{i}") for i in range(delay)]
        m.d.sync += [tags[0].eq(column_t), ends[0].eq(end_t)]
        m.d.sync += [t.eq(prev) for t, prev in zip(tags[1:], tags)] + [e.eq(prev) for e, prev in zip(ends[1:], ends)]
        for c in group:
            with m.If(unit.o.valid & (tags[-1] == c)):
                m.d.sync += accs[c].eq(unit.o.payload.sum)
        done = Signal(name=f"{name}_written")
        m.d.sync += done.eq(unit.o.valid & ends[-1])
        return done
