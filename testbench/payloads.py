"""numpy packing and unpacking of stream payloads, with field offsets and widths taken from the
units' Amaranth layouts (``data.Layout`` iterates its fields with their offsets), so no bench or
test writes a bit mask of its own."""

import numpy as np
from amaranth import Shape
from amaranth.lib import data

from golden import mx_tiling
from rtl import grad_scale, radix4_quantizer
from rtl.array import pack_command, pack_lanes


class Codec:
    """Raw bit patterns of one ``data.Layout`` (at most 63 bits) <-> numpy arrays of its fields.

    Parameters
    ----------
    layout : data.Layout
        Its top-level fields are packed and unpacked; a signed field is sign-extended when unpacked.
    """

    def __init__(self, layout):
        layout = data.Layout.cast(layout)
        if layout.size > 63:
            raise ValueError(f"layout must fit 63 bits, got {layout.size}")
        self.fields = {name: (field.offset, field.width, Shape.cast(field.shape).signed) for name, field in layout}
        self.width = layout.size

    def pack(self, **fields):
        """Raw patterns (int64 array) from field values (arrays or ints); absent fields are 0."""
        unknown = set(fields) - set(self.fields)
        if unknown:
            raise ValueError(f"fields must be among {list(self.fields)}, got {sorted(unknown)}")
        raw = np.int64(0)
        for name, values in fields.items():
            offset, width, _ = self.fields[name]
            raw = raw | ((np.asarray(values, np.int64) & ((1 << width) - 1)) << offset)
        return raw

    def unpack(self, raw):
        """Field values (dict name -> int64 array) of raw patterns (array or sequence of ints)."""
        raw = np.asarray(raw, np.int64)
        fields = {}
        for name, (offset, width, signed) in self.fields.items():
            value = (raw >> offset) & ((1 << width) - 1)
            fields[name] = value - ((value >> (width - 1)) << width) if signed else value
        return fields


QUANTIZER_IN = Codec(radix4_quantizer.InputLayout)
QUANTIZER_OUT = Codec(radix4_quantizer.OutputLayout)
GRAD_SCALE_IN = Codec(grad_scale.InputLayout)
GRAD_SCALE_OUT = Codec(grad_scale.OutputLayout)


def commands_and_beats(tiles):
    """Raw payloads of the training array for ``tiles`` (golden.tiling.Tile) in issue order:
    (commands, A beats, B beats)."""
    commands = [pack_command(tile.mode, tile.k, tile.s) for tile in tiles]
    a_beats = [pack_lanes(beat) for tile in tiles for beat in tile.a_beats]
    b_beats = [pack_lanes(beat) for tile in tiles for beat in tile.b_beats]
    return commands, a_beats, b_beats


def mx_commands_and_beats(tiles):
    """Raw payloads of the MX array for ``tiles`` (golden.mx_tiling.Tile) in issue order: (commands,
    A beats, B beats), every lane 12 bits (golden.mx_tiling.lanes)."""
    commands = [pack_command(tile.mode, len(tile.a_beats), tile.s) for tile in tiles]
    beats = []
    for codes, scales in (("a_beats", "a_scale_beats"), ("b_beats", "b_scale_beats")):
        beats.append([sum(int(lane) << (12 * index) for index, lane in enumerate(beat))
                      for tile in tiles for beat in mx_tiling.lanes(getattr(tile, codes), getattr(tile, scales))])
    return commands, *beats
