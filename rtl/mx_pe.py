"""Block-scaled E2M1 processing element: exact E2M1 x E2M1 products summed exactly per block.

The per-PE half of the MXFP4/NVFP4 datapath (golden.mx_gemm steps 1 and 2); scaling and the float32
sum across blocks happen in a unit shared by a row of PEs (rtl/mx_row.py, rtl/fp32_scaled_add.py).
"""

from amaranth import C, Cat, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from golden import mx

#: Largest |E2M1 x E2M1 product| in units of 1/4 (6 * 6 = 36).
PRODUCT_MAX = 144
BLOCKS = (mx.NV_BLOCK, mx.MX_BLOCK)


def sum_shape(block):
    """Signed shape that holds every sum of ``block`` products (14 bits for 32, 13 for 16)."""
    return signed((block * PRODUCT_MAX).bit_length() + 1)


def e2m1_product(a, b):
    """(sign, magnitude) of the exact product of E2M1 codes ``a`` and ``b`` in units of 1/4.

    Each doubled magnitude is ``sig << shift``: sig = mantissa bit, shift 0 for exponent 0, else
    sig = 2 + mantissa, shift = exponent - 1; so the product is a 2 x 2-bit multiply and a 0..4 shift.
    """
    def parts(code):
        exponent, mantissa = code[1:3], code[0]
        normal = exponent.any()
        return Cat(mantissa, normal), Mux(normal, (exponent - 1)[:2], 0)

    sig_a, shift_a = parts(a)
    sig_b, shift_b = parts(b)
    return a[3] ^ b[3], (sig_a * sig_b) << (shift_a + shift_b)


class MxProcessingElement(wiring.Component):
    """Sums the exact products of one block of E2M1 operand pairs; holds the finished block sum.

    Operands on ``a``/``b`` with ``valid`` in cycle t are multiplied into a register (t + 1) and added
    to the running block sum; with ``last`` (the block's final pair) the finished sum moves to
    ``block_sum`` in cycle t + 2, ``done`` is high in that cycle, and the next block starts from 0.
    ``block_sum`` holds until the next block finishes, so a shared unit has a whole block's time
    to read it.

    Parameters
    ----------
    block : int
        Block size, 16 (NVFP4) or 32 (MXFP4): sets the width of the sums.

    Members
    -------
    a, b : In(4)
        E2M1 codes (bit 3 sign, bits 2..1 exponent, bit 0 mantissa).
    valid : In(1)
        ``a``/``b`` hold a pair of the current block.
    last : In(1)
        With ``valid``: the pair is the block's last.
    block_sum : Out(sum_shape(block))
        The last finished block's exact sum of products, in units of 1/4.
    done : Out(1)
        ``block_sum`` changed to a newly finished block in this cycle.
    """

    LATENCY = 2     # from a block's last pair to its sum on ``block_sum``

    def __init__(self, block=mx.MX_BLOCK):
        if block not in BLOCKS:
            raise ValueError(f"block must be one of {BLOCKS}, got {block!r}")
        self.block = block
        super().__init__({
            "a": In(4), "b": In(4), "valid": In(1), "last": In(1),
            "block_sum": Out(sum_shape(block)), "done": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        sign, magnitude = Signal(name="product_sign"), Signal(8, name="product_magnitude")
        m.d.comb += Cat(sign, magnitude).eq(Cat(*e2m1_product(self.a, self.b)))
        # the product stays sign and magnitude: negating it before its register put a carry chain
        # after the decode; the adder negates instead (x - m = x + ~m + 1, the 1 a carry in below bit 0)
        product_neg, product, valid, last = Signal(), Signal(8), Signal(), Signal()
        m.d.sync += [product_neg.eq(sign), product.eq(magnitude), valid.eq(self.valid),
                     last.eq(self.last & self.valid)]

        running = Signal(sum_shape(self.block))
        width = len(running)
        addend = Cat(product_neg, product ^ product_neg.replicate(8), product_neg.replicate(width - 8))
        total = (Cat(C(1, 1), running) + addend)[1:width + 1].as_signed()
        m.d.sync += self.done.eq(valid & last)
        with m.If(valid):
            m.d.sync += running.eq(Mux(last, 0, total))
            with m.If(last):
                m.d.sync += self.block_sum.eq(total)
        return m

