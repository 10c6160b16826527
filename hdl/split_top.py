"""The text of the ``splittable_array`` top module (:mod:`hdl.split`): Verilog-2005
generate loops over the PE grid, with the boundary logic of each style (``mux``: 2:1
muxes and the partial-sum cut at every tile boundary; ``ports``: inner tiles fed through
their own edge ports). Same arguments, same bytes."""
from .array import module_head, os_out_lanes
from .pe import os_flag

__all__ = ["ws_split_top", "os_split_top"]


def _head(R, C, TR, TC, n, W, ports):
    """Module header (clk, rst, then ``ports`` in order) and the localparams."""
    return module_head("splittable_array", [("input" if d == "in" else "output", bits, name)
                                        for name, (d, bits) in ports.items()],
                       R=R, C=C, TR=TR, TC=TC, GR=R // TR, GC=C // TC, N=n, W=W)


def _pads(items):
    """``assign`` of each padded copy ``(net, extra port or None, lanes per boundary)``:
    the extra-port vector above an unused zero boundary 0, so that the generate code is
    the same for every grid."""
    out = []
    for net, port, lanes in items:
        zero = "1'b0" if lanes == "1" else f"{{{lanes}{{1'b0}}}}"
        out.append(f"    assign {net} = " + (f"{{{port}, {zero}}};\n" if port else f"{zero};\n"))
    return "".join(out)


def _cases(var, tile, labels, edge, bound, inner):
    """The generate block of operand chains crossing tile boundaries along ``var`` (r or
    c, tile edge ``tile``): ``edge`` assigns at the array edge (var == 0), ``bound`` at a
    tile boundary, ``inner`` elsewhere; each a list of ``(net, expression)``."""
    ind = " " * 20
    out = []
    for (kw, label), assigns in zip(((f"if ({var} == 0)", labels[0]),
                                     (f"end else if ({var} % {tile} == 0)", labels[1]),
                                     ("end else", labels[2])), (edge, bound, inner)):
        out.append(f"                {kw} begin : {label}\n")
        out += [f"{ind}assign {net} = {expr};\n" for net, expr in assigns]
    return "".join(out) + "                end\n"


def _a_chain(sigs, sel):
    """The activation chain (along c): ``sigs`` = [(net, edge lane, extra lane, left
    neighbour's output)]; a tile boundary takes the extra lane if ``sel``."""
    return _cases("c", "TC", ("a_left", "a_bound", "a_inner"),
                  [(net, e) for net, e, _, _ in sigs],
                  [(net, f"{sel} ? {x} : {q}") for net, _, x, q in sigs],
                  [(net, q) for net, _, _, q in sigs])


def _sel(feature, features, ports_style, cut):
    """Select of a boundary mux: ``1'b1`` in the ports style (always the extra edge
    port), the cut bit in the mux style, ``1'b0`` without the feature."""
    if feature not in features:
        return "1'b0"
    return "1'b1" if ports_style else cut


def _row_taps(src, valid):
    """Bottom-edge taps of the sub-arrays that end at PE row g*TR-1 (``c_out_x``)."""
    return f"""\
        for (g = 1; g < GR; g = g + 1) begin : tap
            for (c = 0; c < C; c = c + 1) begin : col
                assign c_out_x[((g-1)*C+c)*W +: W] = {src}[(g*TR-1)*C+c];
                assign c_valid_x[(g-1)*C+c] = {valid}[(g*TR-1)*C+c];
            end
        end
"""


def _tag_text(tags, template):
    """``template`` once per digit tag (``{t}``: the tag's name), joined."""
    return "".join(template.format(t=t) for t in tags)


def _tag_chain(tags):
    """The activation-chain entries of the digit tags (:mod:`hdl.fusion`): each a 1-bit
    lane entering with A (port ``a_t``, padded extra lanes ``tx``), muxed like A."""
    return [(f"{t}_i", f"a_{t}[r]", f"{t}x[(c/TC)*R+r]", f"{t}_q[r*C+c-1]") for t in tags]


def _tag_wires(tags):
    """Declarations and PE pins of the digit tags: ``(padded extra lanes, PE outputs,
    per-PE input net, input pin, output pin)`` texts."""
    return (_tag_text(tags, "    wire [GC*R-1:0]   {t}x;\n"),
            _tag_text(tags, "    wire         {t}_q [0:R*C-1];\n"),
            _tag_text(tags, "                wire         {t}_i;\n"),
            _tag_text(tags, "                    .{t}_in({t}_i),\n"),
            _tag_text(tags, "                    .{t}_out({t}_q[r*C+c]),\n"))


def ws_split_top(R, C, TR, TC, n, W, features, style, ports, tags=()):
    """The WS top; ``ports``: :func:`hdl.split.split_ports` of this array; ``tags``: the
    digit tags of a fused PE (:data:`hdl.fusion.TAGS`), lanes that travel with A."""
    GR, GC = R // TR, C // TC
    ports_style = style == "ports"
    head = _head(R, C, TR, TC, n, W, ports)
    rows_x, cols_x = GR > 1, GC > 1
    pads = _pads([("rcut", rows_x and "row_cut", "1"), ("wx", rows_x and "w_in_x", "(C*N)"),
                  ("wenx", rows_x and "w_en_x", "C")])
    if cols_x and ports_style:
        pads += "    assign ccut = {GC{1'b1}};\n"
    else:
        pads += _pads([("ccut", cols_x and "col_cut", "1")])
    pads += _pads([("ax", cols_x and "a_in_x", "(R*N)"), ("swx", cols_x and "a_swap_x", "R"),
                   ("vx", cols_x and "a_valid_x", "R")]
                  + [(f"{t}x", cols_x and f"a_{t}_x", "R") for t in tags])
    t_x, t_q, t_i, t_in, t_out = _tag_wires(tags)
    taps = _row_taps("p_q", "pv_q") if rows_x else ""
    act = _sel("act_mux", features, ports_style, "ccut[c/TC]")
    pcut = "rcut[r/TR]" if "psum_cut" in features else "1'b0"
    wcut = _sel("w_mux", features, ports_style, "rcut[g]")
    wcut_r = _sel("w_mux", features, ports_style, "rcut[r/TR]")
    a_chain = _a_chain([("a_i", "a_in[r*N +: N]", "ax[((c/TC)*R+r)*N +: N]", "a_q[r*C+c-1]"),
                        ("sw_i", "a_swap[r]", "swx[(c/TC)*R+r]", "sw_q[r*C+c-1]"),
                        ("v_i", "a_valid[r]", "vx[(c/TC)*R+r]", "v_q[r*C+c-1]"),
                        *_tag_chain(tags)], act)
    p_chain = _cases("r", "TR", ("p_top", "p_bound", "p_inner"),
                     [("w_i", "w_in[c*N +: N]"), ("p_i", "{W{1'b0}}"), ("pv_i", "1'b0")],
                     [("w_i", f"{wcut_r} ? wx[((r/TR)*C+c)*N +: N] : w_q[(r-1)*C+c]"),
                      ("p_i", f"p_q[(r-1)*C+c] & {{W{{~{pcut}}}}}"),
                      ("pv_i", f"pv_q[(r-1)*C+c] & ~{pcut}")],
                     [("w_i", "w_q[(r-1)*C+c]"), ("p_i", "p_q[(r-1)*C+c]"),
                      ("pv_i", "pv_q[(r-1)*C+c]")])
    return head + f"""\
    // Cut bits and extra edge inputs, padded with an unused boundary 0.
    wire [GR-1:0] rcut;
    /* verilator lint_off UNUSEDSIGNAL */
    wire [GC-1:0] ccut;
    wire [GR*C*N-1:0] wx;
    wire [GR*C-1:0]   wenx;
    wire [GC*R*N-1:0] ax;
    wire [GC*R-1:0]   swx;
    wire [GC*R-1:0]   vx;
{t_x}    // PE outputs: index r*C+c is PE(r, c)'s output (last row/column: no consumer).
    // One net per PE port (arrays of nets, not slices of one wide vector), as in
    // hdl.array: an event-driven simulator then wakes only the PE a changed value feeds.
    wire [N-1:0] a_q  [0:R*C-1];
    wire         sw_q [0:R*C-1];
    wire         v_q  [0:R*C-1];
{t_q}    wire [N-1:0] w_q  [0:R*C-1];
    /* verilator lint_on UNUSEDSIGNAL */
    wire [W-1:0] p_q  [0:R*C-1];
    wire         pv_q [0:R*C-1];
    // w_en seen by tile row g, column c.
    wire         wen_g [0:GR*C-1];
{pads}    genvar r, c, g;
    generate
        for (g = 0; g < GR; g = g + 1) begin : wen_seg
            for (c = 0; c < C; c = c + 1) begin : col
                if (g == 0) begin : top
                    assign wen_g[c] = w_en[c];
                end else begin : below
                    assign wen_g[g*C+c] = {wcut} ? wenx[g*C+c] : wen_g[(g-1)*C+c];
                end
            end
        end
        for (c = 0; c < C; c = c + 1) begin : edge_bottom
            assign c_out[c*W +: W] = p_q[(R-1)*C+c];
            assign c_valid[c] = pv_q[(R-1)*C+c];
        end
{taps}        for (r = 0; r < R; r = r + 1) begin : row
            for (c = 0; c < C; c = c + 1) begin : col
                wire [N-1:0] a_i;
                wire         sw_i;
                wire         v_i;
{t_i}                wire [N-1:0] w_i;
                wire [W-1:0] p_i;
                wire         pv_i;
{a_chain}{p_chain}                pe u_pe (
                    .clk(clk),
                    .rst(rst),
                    .a_in(a_i),
                    .sw_in(sw_i),
                    .v_in(v_i),
{t_in}                    .w_in(w_i),
                    .w_en(wen_g[(r/TR)*C+c]),
                    .psum_in(p_i),
                    .pv_in(pv_i),
                    .a_out(a_q[r*C+c]),
                    .sw_out(sw_q[r*C+c]),
                    .v_out(v_q[r*C+c]),
{t_out}                    .w_out(w_q[r*C+c]),
                    .psum_out(p_q[r*C+c]),
                    .pv_out(pv_q[r*C+c])
                );
            end
        end
    endgenerate
endmodule
"""


def os_split_top(R, C, TR, TC, n, W, features, style, double_buffer, ports, tags=()):
    """The OS top; ``ports``: :func:`hdl.split.split_ports` of this array; ``tags`` as
    for :func:`ws_split_top`."""
    GR, GC = R // TR, C // TC
    ports_style = style == "ports"
    flag = os_flag(double_buffer)
    head = _head(R, C, TR, TC, n, W, ports)
    rows_x, cols_x = GR > 1, GC > 1
    pads = _pads([("rcut", rows_x and "row_cut", "1"), ("ccut", cols_x and "col_cut", "1"),
                  ("bx", rows_x and "b_in_x", "(C*N)"), ("ax", cols_x and "a_in_x", "(R*N)"),
                  ("fx", cols_x and f"a_{flag}_x", "R")]
                 + [(f"{t}x", cols_x and f"a_{t}_x", "R") for t in tags])
    t_x, t_q, t_i, t_in, t_out = _tag_wires(tags)
    taps = _row_taps("d_q", "dv_q") if rows_x else ""
    if cols_x:
        taps += """\
        for (g = 1; g < GC; g = g + 1) begin : tap_left
            for (r = 0; r < R; r = r + 1) begin : row
                assign l_out_x[((g-1)*R+r)*W +: W] = d_q[r*C+g*TC];
                assign l_valid_x[(g-1)*R+r] = dv_q[r*C+g*TC];
            end
        end
"""
    act = _sel("act_mux", features, ports_style, "ccut[c/TC]")
    bsel = _sel("w_mux", features, ports_style, "rcut[r/TR]")
    # the drain chain from PE(r-1, c+1) is cut at a cut row boundary r = g*TR and at a
    # cut column boundary c+1 = j*TC
    dcut = ("((r % TR == 0) ? rcut[r/TR] : 1'b0) | (((c+1) % TC == 0) ? ccut[(c+1)/TC] : 1'b0)"
            if "psum_cut" in features else "1'b0")
    a_chain = _a_chain([("a_i", "a_in[r*N +: N]", "ax[((c/TC)*R+r)*N +: N]", "a_q[r*C+c-1]"),
                        ("f_i", f"a_{flag}[r]", "fx[(c/TC)*R+r]", "f_q[r*C+c-1]"),
                        *_tag_chain(tags)], act)
    b_chain = _cases("r", "TR", ("b_top", "b_bound", "b_inner"), [("b_i", "b_in[c*N +: N]")],
                     [("b_i", f"{bsel} ? bx[((r/TR)*C+c)*N +: N] : b_q[(r-1)*C+c]")],
                     [("b_i", "b_q[(r-1)*C+c]")])
    ind = "\n" + " " * 16
    dv_wire = f"{ind}wire         dv_i;" if double_buffer else ""
    dv_chain = f"{ind}    assign dv_i = dv_q[(r-1)*C+c+1] & ~cut;" if double_buffer else ""
    dv_end = f"{ind}    assign dv_i = 1'b0;" if double_buffer else ""
    dv_in = "\n                    .dv_in(dv_i)," if double_buffer else ""
    return head + f"""\
    // Cut bits and extra edge inputs, padded with an unused boundary 0.
    /* verilator lint_off UNUSEDSIGNAL */
    wire [GR-1:0] rcut;
    wire [GC-1:0] ccut;
    wire [GR*C*N-1:0] bx;
    wire [GC*R*N-1:0] ax;
    wire [GC*R-1:0]   fx;
{t_x}    // PE outputs: index r*C+c is PE(r, c)'s output. PE(r, c) drains from PE(r-1, c+1)
    // (zero at the array's top and right edges and across a cut), so every
    // anti-diagonal of a sub-array leaves through the sub-array's bottom-left PE, as in
    // hdl.array's OS array; the exit PEs are the array's lanes and the taps.
    wire [N-1:0] a_q  [0:R*C-1];
    wire         f_q  [0:R*C-1];
{t_q}    wire [N-1:0] b_q  [0:R*C-1];
    wire [W-1:0] d_q  [0:R*C-1];
    wire         dv_q [0:R*C-1];
    /* verilator lint_on UNUSEDSIGNAL */
{pads}    genvar r, c{", g" if taps else ""};
    generate
{os_out_lanes("d_q", "dv_q")}{taps}        for (r = 0; r < R; r = r + 1) begin : row
            for (c = 0; c < C; c = c + 1) begin : col
                wire [N-1:0] a_i;
                wire         f_i;
{t_i}                wire [N-1:0] b_i;
                wire [W-1:0] d_i;{dv_wire}
{a_chain}{b_chain}                if (r > 0 && c < C - 1) begin : chain
                    wire cut;
                    assign cut = {dcut};
                    assign d_i = d_q[(r-1)*C+c+1] & {{W{{~cut}}}};{dv_chain}
                end else begin : chain_end
                    assign d_i = {{W{{1'b0}}}};{dv_end}
                end
                pe u_pe (
                    .clk(clk),
                    .rst(rst),
                    .a_in(a_i),
                    .{flag}_in(f_i),
{t_in}                    .b_in(b_i),
                    .d_in(d_i),{dv_in}
                    .a_out(a_q[r*C+c]),
                    .{flag}_out(f_q[r*C+c]),
{t_out}                    .b_out(b_q[r*C+c]),
                    .d_out(d_q[r*C+c]),
                    .dv_out(dv_q[r*C+c])
                );
            end
        end
    endgenerate
endmodule
"""


