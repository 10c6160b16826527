"""Clock gates inside every WS PE, enabled by the PE's own valid bits (``pe_gate=True``
of :class:`hdl.array.ArrayConfig` and :class:`hdl.split.SplitConfig`; default off, and
then the Verilog is byte for byte what it was).

Why: in decode a tile is busy, but most of its PEs are idle in most cycles (a one-token
GEMV mostly shifts weights), and a clocked flop burns its clock-pin energy every cycle
whatever its data: a clocked idle 16x16 tile costs 86% of a busy one
(docs/energy.md). A tile-level gate (:mod:`hdl.clock_gate`) cannot reach these PEs. Here
each PE gates its own two groups of registers, with no port and no driver contract:

* **weights**: the shadow (or, in the compact PE, only) weight register is clocked only
  when ``w_en`` is high; the gate is its load enable (the ungated PE's multiplexer is
  gone, which pays for most of the two gates' area);
* **data**: every other register (the activation, swap and valid flags, the active
  weight, the product pipeline and the partial sum) is clocked while ``en_d`` is high
  (:func:`hdl.pe.data_enable`): ``v_in``, its P delayed copies, ``v_out``, ``pv_in``,
  ``pv_out``, ``sw_in``, ``sw_out`` (and a fused PE's tags in and out) OR-ed. It covers
  every cycle in which an operand, a partial sum or a swap flag is in the PE or at its
  inputs, and one cycle after, in which every register takes its inputs' rest value.

Why the results do not change: with ``en_d`` low no valid bit or swap flag is in the
PE or at its inputs, the active weight holds (no swap), and no register's next value
depends on its own value but ``wact``'s (which holds). A register then keeps the value
it took in its last clocked cycle instead of following its inputs; only the operands
and partial sums of invalid slots, which no valid result reads, can differ (the drivers
put zeros there, and the values then agree exactly). Tested against the ungated array
on both simulators and on the mapped netlist (:mod:`tests.test_pe_gate`).

The PE is emitted as two modules: ``pe_core`` (the Amaranth PE with ``pe_gate``: the
weight register in its own clock domain ``wgt``, and the output ``en_d``) and a
wrapper ``pe`` with the PE's own ports, two ``clock_gate`` instances of
:mod:`hdl.clock_gate` (mapped to ``CLKGATE_X1`` in the Liberty flow; their enables are
``en_d | rst`` and ``w_en | rst``, as reset is synchronous) and the core. The array tops
instantiate ``pe`` unchanged. The cost is two ``CLKGATE_X1`` and the enable's OR per PE.
"""
from amaranth.hdl import Shape
from amaranth.lib.wiring import In

from .clock_gate import CLOCK_GATE_MODULE
from .mac import ConfigError
from .pe import build_pe

__all__ = ["gated_pe_verilog", "with_clock_gate_module", "check_pe_gate"]


def check_pe_gate(pe_gate, dataflow):
    """:class:`hdl.mac.ConfigError` unless ``pe_gate`` is a bool, and False for OS."""
    if not isinstance(pe_gate, bool):
        raise ConfigError("pe_gate", f"{pe_gate!r}; allowed: true, false")
    if pe_gate and dataflow != "ws":
        raise ConfigError("pe_gate", "clock gates inside the PE exist for the WS PE only; "
                                     "use the WS dataflow, or the row/tile gates (clock_gate)")


def gated_pe_verilog(core, mac, dataflow, *, double_buffer, fusion="none", name="pe"):
    """Verilog of the gated PE: ``core`` (the text of module ``{name}_core``, the PE
    built with ``pe_gate=True``: :func:`hdl.array.pe_verilog`) and the wrapper ``{name}``
    (see the module docstring); the ``clock_gate`` module is not included
    (:func:`hdl.array.assemble` adds it, :func:`with_clock_gate_module`)."""
    if dataflow != "ws":
        raise ValueError("per-PE clock gates exist for the WS PE only")
    pe = build_pe(mac, dataflow, double_buffer=double_buffer, fusion=fusion, pe_gate=True)
    pe._MustUse__silence = True                 # only its signature is read
    ports = [(p, "in" if m.flow == In else "out", Shape.cast(m.shape).width)
             for p, m in pe.signature.members.items() if p != "en_d"]
    decl = ["    input  wire clk", "    input  wire rst"]
    decl += [f"    {'input ' if flow == 'in' else 'output'} wire "
             f"{f'[{w - 1}:0] ' if w > 1 else ''}{p}" for p, flow, w in ports]
    conns = [".clk(gclk_d)", ".rst(rst)", ".wgt_clk(gclk_w)", ".wgt_rst(rst)", ".en_d(en_d)"]
    conns += [f".{p}({p})" for p, _, _ in ports]
    wrapper = (f"// {name}: the PE with clock gates of its own (hdl.pe_gate): weights on "
               f"gclk_w (w_en), the rest on gclk_d (en_d).\n"
               f"module {name} (\n" + ",\n".join(decl) + "\n);\n"
               f"    wire en_d, gclk_d, gclk_w;\n"
               f"    clock_gate u_gd (.clk(clk), .en(en_d | rst), .gclk(gclk_d));\n"
               f"    clock_gate u_gw (.clk(clk), .en(w_en | rst), .gclk(gclk_w));\n"
               f"    {name}_core u_core (\n        " + ",\n        ".join(conns) + "\n    );\n"
               "endmodule\n")
    return core.rstrip() + "\n\n" + wrapper


def with_clock_gate_module(text):
    """``text`` with the ``clock_gate`` module appended, if it instantiates one and does
    not define it already."""
    if "clock_gate u_" not in text or "module clock_gate (" in text:
        return text
    return text.rstrip() + "\n\n" + CLOCK_GATE_MODULE
