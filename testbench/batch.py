"""Batch mode: a generated Verilog wrapper replays numpy stimulus through LANES copies of a unit.

Per-cycle Python (about 20k cycles/s) cannot check a million MACs per second, so for cycle-level
units (the MACs) cocotb only writes a stimulus file, starts the wrapper and compares the response
file with the golden model in numpy. When a batch starts, the wrapper (:func:`wrapper_verilog`)
reads ``stim.bin`` into memory; in each cycle it applies one row of inputs to all lanes and
writes the lanes' outputs, sampled just before the clock edge that takes those inputs, as one row
of ``resp.bin``. Outside a batch every lane follows the wrapper's own input ports (named like the
unit's), so the same build also serves per-cycle cocotb tests; lane 0 drives the output ports.

The files are binary because Verilator's $readmemh/$writememh parse only about 10M characters/s,
which would cap the bench below 1M vectors/s. Rows are what $fread and $fwrite("%u") expect:
``stim.bin`` holds per cycle the concatenation of all lanes' input words (lane 0 least
significant), big-endian, each lane word a whole number of bytes; ``resp.bin`` holds per cycle
32-bit little-endian words, lane 0 first, each output field of a lane on its own words.
"""

import os
import time
from pathlib import Path

import numpy as np
from cocotb.triggers import Edge

STIM_FILE = "stim.bin"
RESP_FILE = "resp.bin"


class StimLayout:
    """Input fields of one lane packed LSB first into a word of whole bytes.

    Parameters
    ----------
    fields : sequence of (str, int)
        Port names and widths; at most 64 bits in all.
    """

    def __init__(self, fields):
        self.fields = tuple((str(name), int(width)) for name, width in fields)
        self.offset, position = {}, 0
        for name, width in self.fields:
            self.offset[name] = position
            position += width
        if position > 64:
            raise ValueError(f"input fields must fit 64 bits, got {position}")
        self.bytes = (position + 7) // 8
        self.width = 8 * self.bytes

    def encode(self, columns):
        """Bytes of ``columns`` (dict name -> int array (lanes, cycles)) as rows for $fread."""
        dtype, size = (np.uint32, 4) if self.width <= 32 else (np.uint64, 8)
        word = 0
        for name, width in self.fields:
            values = np.asarray(columns[name]).astype(np.int64).astype(dtype) & dtype((1 << width) - 1)
            word = word | (values << dtype(self.offset[name]))
        rows = np.ascontiguousarray(word.T[:, ::-1], dtype=f">u{size}")
        return rows.view(np.uint8).reshape(*rows.shape, size)[:, :, size - self.bytes:].tobytes()


class RespLayout:
    """Output fields of one lane, each on whole 32-bit words (what $fwrite("%u") writes).

    Parameters
    ----------
    fields : sequence of (str, int)
        Port names and widths (1..64 bits each).
    """

    def __init__(self, fields):
        self.fields = tuple((str(name), int(width)) for name, width in fields)
        self.words, self.first_word, position = {}, {}, 0
        for name, width in self.fields:
            if not 1 <= width <= 64:
                raise ValueError(f"output field {name!r} width must lie in 1..64, got {width}")
            self.first_word[name], self.words[name] = position, (width + 31) // 32
            position += self.words[name]
        self.slot = position
        self.width = 32 * position

    def decode(self, data, lanes):
        """Inverse of the wrapper's rows: dict name -> uint64 array (lanes, cycles)."""
        row = lanes * self.slot * 4
        if len(data) % row:
            raise ValueError(f"{RESP_FILE} holds {len(data)} bytes, not a whole number of {row}-byte rows")
        words = np.frombuffer(data, "<u4").reshape(-1, lanes, self.slot).astype(np.uint64)
        columns = {}
        for name, width in self.fields:
            first = self.first_word[name]
            value = words[:, :, first]
            if self.words[name] == 2:
                value = value | (words[:, :, first + 1] << np.uint64(32))
            columns[name] = (value & np.uint64((1 << width) - 1)).T
        return columns


def as_signed(values, width):
    """Reinterpret ``width``-bit two's-complement fields (uint64) as int64."""
    values = np.asarray(values, dtype=np.uint64)
    if width == 64:
        return values.view(np.int64)
    signed = values.astype(np.int64)
    return np.where(signed >= 1 << (width - 1), signed - (1 << width), signed)


def layouts(ports):
    """(StimLayout, RespLayout) of a unit from its port list (``rtl.generate.ports``)."""
    inputs = [(p["name"], p["width"]) for p in ports if p["dir"] == "in" and p["name"] != "clk"]
    outputs = [(p["name"], p["width"]) for p in ports if p["dir"] == "out"]
    return StimLayout(inputs), RespLayout(outputs)


def wrapper_verilog(top, dut_module, ports, lanes, depth):
    """Verilog source of the batch wrapper module ``top`` around ``lanes`` instances of ``dut_module``.

    ``depth`` is the largest batch (cycles) and must be a power of two.
    """
    if depth < 2 or depth & (depth - 1):
        raise ValueError(f"depth must be a power of two >= 2, got {depth}")
    stim, resp = layouts(ports)
    bits = (depth - 1).bit_length()
    ports_text = ["    input  wire clk,"]
    ports_text += [f"    input  wire {_range(width)}{name}," for name, width in stim.fields]
    ports_text += [f"    output wire {_range(width)}{name}," for name, width in resp.fields]
    ports_text += [
        "    input  wire [31:0] batch_cycles,  // cycles in the next batch, 1..DEPTH",
        f"    input  wire batch_start,          // toggle: run a batch from {STIM_FILE}",
        f"    output reg  batch_done = 1'b0     // toggles when {RESP_FILE} is complete",
    ]
    pad = stim.width - sum(width for _, width in stim.fields)
    direct = ", ".join(([f"{pad}'d0"] if pad else []) + [name for name, _ in reversed(stim.fields)])
    connections = [".clk(clk)"]
    connections += [f".{name}(lane_in[{stim.offset[name] + width - 1}:{stim.offset[name]}])"
                    for name, width in stim.fields]
    connections += [f".{name}(out_{name})" for name, _ in resp.fields]
    response = ", ".join(_padded(f"out_{name}", width, 32 * resp.words[name]) for name, width in reversed(resp.fields))
    return "\n".join([
        f"// Batch wrapper generated by testbench.batch for {dut_module}: {lanes} lanes.",
        f"module {top} (",
        *ports_text,
        ");",
        f"    localparam LANES = {lanes};",
        f"    localparam SW = {stim.width};",
        f"    localparam RW = {resp.width};",
        f"    localparam DEPTH = {depth};",
        "    reg [LANES*SW-1:0] stim [0:DEPTH-1];",
        "    reg [LANES*SW-1:0] batch_in = 0;",
        f"    reg [{bits - 1}:0] cycle = 0;",
        "    reg running = 1'b0;",
        "    reg started = 1'b0;",
        "    integer stim_fd = 0;",
        "    integer resp_fd = 0;",
        "    integer got = 0;",
        f"    wire [SW-1:0] direct = {{{direct}}};",
        "    wire [LANES*RW-1:0] resp_now;",
        "    genvar i;",
        "    generate",
        "        for (i = 0; i < LANES; i = i + 1) begin : lane",
        "            wire [SW-1:0] lane_in = running ? batch_in[i*SW +: SW] : direct;",
        *[f"            wire {_range(width)}out_{name};" for name, width in resp.fields],
        f"            {dut_module} dut (",
        "                " + ",\n                ".join(connections),
        "            );",
        f"            assign resp_now[i*RW +: RW] = {{{response}}};",
        "        end",
        "    endgenerate",
        *[f"    assign {name} = lane[0].out_{name};" for name, _ in resp.fields],
        "    // Outputs are written before this edge's nonblocking updates: the values of the cycle",
        "    // whose inputs the edge takes. File handles and $fread results are used at once, so",
        "    // they are assigned with '='.",
        "    /* verilator lint_off BLKSEQ */",
        "    always @(posedge clk) begin",
        "        if (running) begin",
        '            $fwrite(resp_fd, "%u", resp_now);',
        f"            if ({{{32 - bits}'d0, cycle}} + 32'd1 == batch_cycles) begin",
        "                $fclose(resp_fd);",
        "                running <= 1'b0;",
        "                batch_done <= ~batch_done;",
        "            end",
        f"            batch_in <= stim[cycle + {bits}'d1];",
        f"            cycle <= cycle + {bits}'d1;",
        "        end else if (batch_start != started) begin",
        "            started <= batch_start;",
        f'            stim_fd = $fopen("{STIM_FILE}", "rb");',
        "            got = $fread(stim, stim_fd);",
        "            $fclose(stim_fd);",
        f'            resp_fd = $fopen("{RESP_FILE}", "wb");',
        "            batch_in <= stim[0];",
        "            running <= 1'b1;",
        f"            cycle <= {bits}'d0;",
        "        end",
        "    end",
        "    /* verilator lint_on BLKSEQ */",
        "endmodule",
        "",
    ])


def _range(width):
    return f"[{width - 1}:0] " if width > 1 else ""


def _padded(name, width, bits):
    return name if bits == width else f"{bits - width}'d0, {name}"


class BatchRunner:
    """Runs stimulus through the batch wrapper from a cocotb test, in chunks of ``depth`` cycles.

    Between chunks the units see at least one cycle of the wrapper's input ports, which the bench
    holds at zero (a no-op for the MAC units); :meth:`chunk_starts` says where those gaps are.

    Parameters
    ----------
    dut : cocotb handle of the wrapper
    ports : list of dict
        The unit's ports (``rtl.generate.ports``).
    lanes, depth : int
        Lanes of the wrapper and cycles per chunk (bounds the size of the files).
    """

    def __init__(self, dut, ports, lanes, depth):
        self.dut, self.lanes, self.depth = dut, lanes, depth
        self.stim, self.resp = layouts(ports)
        self.workdir = Path(os.getcwd())
        self.sim_seconds = 0.0  # wall time spent waiting for the simulator, for speed reports

    def chunk_starts(self, cycles):
        """Cycle indices (after the first) at which a new chunk, hence an input gap, begins."""
        return list(range(self.depth, cycles, self.depth))

    async def run(self, columns):
        """Apply ``columns`` (name -> (lanes, cycles) ints); returns outputs like :meth:`RespLayout.decode`."""
        cycles = np.asarray(columns[self.stim.fields[0][0]]).shape[1]
        outputs = []
        for start in range(0, cycles, self.depth):
            stop = min(start + self.depth, cycles)
            chunk = {name: np.asarray(values)[:, start:stop] for name, values in columns.items()}
            (self.workdir / STIM_FILE).write_bytes(self.stim.encode(chunk))
            self.dut.batch_cycles.value = stop - start
            done = Edge(self.dut.batch_done)
            self.dut.batch_start.value = 1 - int(self.dut.batch_start.value)
            started = time.perf_counter()
            await done
            self.sim_seconds += time.perf_counter() - started
            outputs.append(self.resp.decode((self.workdir / RESP_FILE).read_bytes(), self.lanes))
            if outputs[-1][self.resp.fields[0][0]].shape[1] != stop - start:
                raise RuntimeError(f"{RESP_FILE} has {outputs[-1][self.resp.fields[0][0]].shape[1]} rows, "
                                   f"expected {stop - start}")
        return {name: np.concatenate([o[name] for o in outputs], axis=1) for name, _ in self.resp.fields}
