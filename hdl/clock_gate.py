"""Optional clock gates for the arrays (``clock_gate=True`` of :func:`hdl.array.array_verilog`
and :func:`hdl.split.split_verilog`; default off, and then the Verilog is byte for byte
what it was).

With gating, the top gets one more input port ``clk_en[G-1:0]`` and one ``clock_gate``
instance per group; every PE of group g is clocked by ``gclk[g]`` instead of ``clk``:

* plain array (``systolic_array``): one group per PE **row** (G = R), ``clk_en[r]``;
* split array (``splittable_array``): one group per **tile** (G = GR*GC), tile
  ``(i, j)`` is group ``i*GC + j``, ``clk_en[i*GC+j]``.

``gclk = clk & en_l``, ``en_l`` a latch transparent while ``clk`` is low, and the
gate's enable is ``clk_en[g] | rst`` (the reset is synchronous: it needs the clock, so
``rst`` opens every gate). An enable written like any other input (before the rising
edge that samples it) applies to that edge, glitch-free. Contract for whoever drives
``clk_en`` (the driver knows when a group is idle): hold it high in every cycle in which
any register of the group may change, from the cycle the group's first operand arrives
until its last result has left and its registers are back at rest; it may be low only
while the group's inputs and registers are at rest (the split driver keeps it high over
the windows of :func:`sim.models.gating.clock_windows`). Results and cycles are then
those of the ungated array.

``clock_gate`` is emitted as Verilog with three bodies chosen by a define:

* none (simulation): the latch and the AND, behavioural;
* ``SYSTOLIC_ICG_CELL`` (the Liberty flow, :func:`hdl.flows.liberty.liberty_script`): one
  instance of the library's integrated clock-gating cell, Nangate45 ``CLKGATE_X1``
  (``CK``, ``E``, ``GCK``; a latch and an AND inside, 3.458 um^2);
* ``SYSTOLIC_ICG_FLOP`` (the CMOS transistor flow, whose ``stat -tech cmos`` prices no
  latch): a negative-edge flop and an AND, priced as a DFF, a clock inverter and an AND
  (16 + 2 + 6 transistors; plus 6 for the ``| rst`` OR). A stand-in of about the
  latch's size, for the transistor count only: it is never simulated.

The gating cost is the gates alone: Nangate45, 16 ``CLKGATE_X1`` on the 16x16 array are
55 um^2 (0.07% of 81,934 um^2; measured in ``systolic bench --only gating``).
"""

__all__ = ["CLOCK_GATE_MODULE", "gate_top", "ICG_CELL", "tile_groups"]


def tile_groups(r0, c0, rows, cols, tr, tc, gc):
    """The clock groups (tile indices ``i*GC + j``) of the PEs rows ``r0 .. r0+rows-1``,
    columns ``c0 .. c0+cols-1`` of a split array of ``tr`` x ``tc`` tiles, ``gc`` tile
    columns."""
    return [i * gc + j for i in range(r0 // tr, (r0 + rows - 1) // tr + 1)
            for j in range(c0 // tc, (c0 + cols - 1) // tc + 1)]

#: The library cell the Liberty flow maps ``clock_gate`` to.
ICG_CELL = "CLKGATE_X1"

CLOCK_GATE_MODULE = f"""\
// clock_gate: gclk = clk & (en latched while clk is low); see hdl.clock_gate.
module clock_gate (
    input  wire clk,
    input  wire en,
    output wire gclk
);
`ifdef SYSTOLIC_ICG_CELL
    {ICG_CELL} u_icg (.CK(clk), .E(en), .GCK(gclk));
`elsif SYSTOLIC_ICG_FLOP
    reg en_q;
    always @(negedge clk) en_q <= en;
    assign gclk = clk & en_q;
`else
    /* verilator lint_off LATCH */
    /* verilator lint_off COMBDLY */
    reg en_l;
    always @(clk or en) if (!clk) en_l <= en;
    /* verilator lint_on COMBDLY */
    /* verilator lint_on LATCH */
    assign gclk = clk & en_l;
`endif
endmodule
"""


def gate_top(top, groups, group_expr):
    """``top`` (a ``systolic_array``/``splittable_array`` module text) with the port
    ``clk_en[groups-1:0]``, ``groups`` clock gates and every PE clocked by
    ``gclk[group_expr]`` (a Verilog expression of the generate variables r, c)."""
    port = "    input  wire rst,\n"
    assert top.count(port) == 1 and top.count("                    .clk(clk),\n") == 1
    top = top.replace(port, port + f"    input  wire [{groups - 1}:0] clk_en,\n", 1)
    gates = (f"    // Clock gates (hdl.clock_gate): PE group g runs on gclk[g].\n"
             f"    wire [{groups - 1}:0] gclk;\n"
             f"    genvar cg;\n"
             f"    generate\n"
             f"        for (cg = 0; cg < {groups}; cg = cg + 1) begin : cgate\n"
             f"            clock_gate u_cg (.clk(clk), .en(clk_en[cg] | rst), .gclk(gclk[cg]));\n"
             f"        end\n"
             f"    endgenerate\n")
    at = top.index("    genvar r")
    top = top[:at] + gates + top[at:]
    return top.replace("                    .clk(clk),\n",
                       f"                    .clk(gclk[{group_expr}]),\n", 1)
