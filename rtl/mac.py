"""The skeleton every INT4/FP4 MAC shares: a checked width, the valid/clear/acc/overflow ports and
one SaturatingAccumulator per lane, fed a product term each cycle."""

from amaranth.lib import wiring

from golden.units import WIDTH_MAX, WIDTH_MIN

from .accumulator import SaturatingAccumulator, accumulator_ports
from .params import check_int


class SaturatingMac(wiring.Component):
    """A MAC whose lanes each add a product term into a :class:`rtl.accumulator.SaturatingAccumulator`.

    A subclass checks its signedness flag, passes its operand ports (they come first in the
    signature, then ``valid``, ``clear`` and the outputs of each lane) and calls
    :meth:`accumulate` from ``elaborate``. Its ``__doc__`` is :meth:`document`'s filling of
    ``_doc_template``, as amaranth.lib.fifo does for its FIFOs.
    """

    _doc_template = """{description}

    Parameters
    ----------
    width : int
        Accumulator width W, 8..64 (default {width}).
    {flag} : bool
        {flag_doc}

    Members
    -------
    {operands}
    valid : In(1)
        Accumulate the product this cycle{scope}.
    clear : In(1)
        Start a new sum{scope} (``acc`` and ``overflow`` reset); if ``valid`` is also high,
        the product is the first term of the new sum.
    {acc} : Out(signed(width))
        Saturated running sum{each}.
    {overflow} : Out(1)
        Sticky{each}: a sum was clamped since the last ``clear``.

    Raises
    ------
    TypeError, ValueError
        For a ``width`` that is not an int in 8..64 or a ``{flag}`` that is not a bool.
    """

    LATENCY = SaturatingAccumulator.LATENCY

    @classmethod
    def document(cls, description, width, flag, flag_doc, operands, lanes=("",)):
        """A subclass's docstring: its ``description``, default ``width`` (with what it is for), the
        name and meaning of its signedness parameter ``flag``, its ``operands``' member docs and
        its lane suffixes ``lanes``."""
        several = len(lanes) > 1
        return cls._doc_template.format(
            description=description, width=width, flag=flag, flag_doc=flag_doc, operands=operands,
            acc=", ".join(f"acc{lane}" for lane in lanes), overflow=", ".join(f"overflow{lane}" for lane in lanes),
            each=" (one per lane)" if several else "", scope=" in every lane" if several else "")

    def __init__(self, width, operands, lanes=("",)):
        """``operands``: the operand ports by name; ``lanes``: the suffix of each lane's ``acc``/``overflow``."""
        self.width = check_int("width", width, WIDTH_MIN, WIDTH_MAX)
        super().__init__({**operands, **accumulator_ports(width, lanes)})

    def accumulate(self, m, term, carry, valid, lane=""):
        """Add a SaturatingAccumulator to ``m`` summing ``term`` + ``carry`` when ``valid``; it drives
        ``acc<lane>``/``overflow<lane>`` and restarts on ``clear``. ``term``'s shape is the accumulator's."""
        accumulator = SaturatingAccumulator(self.width, term.shape())
        m.submodules[f"lane{lane}" if lane else "accumulator"] = accumulator
        m.d.comb += [
            accumulator.term.eq(term),
            accumulator.carry.eq(carry),
            accumulator.valid.eq(valid),
            accumulator.clear.eq(self.clear),
            getattr(self, f"acc{lane}").eq(accumulator.acc),
            getattr(self, f"overflow{lane}").eq(accumulator.overflow),
        ]

