"""Splittable weight-stationary systolic array: one R x C array of ``pe`` modules, built
from a grid of TR x TC tiles, that runs at run time either as one array or as several
independent sub-arrays (a guillotine grid of tiles), each doing its own GEMM.

The PE is the one of :mod:`hdl.pe` (emitted once as module ``pe`` by
:func:`hdl.array.pe_verilog`); the top ``splittable_array`` is Verilog-2005 text with
nested ``generate`` loops, like ``systolic_array`` of :mod:`hdl.array`. Same arguments,
same bytes.

Tile grid: ``GR = R/TR`` tile rows, ``GC = C/TC`` tile columns. Tile-row boundary
``g`` (1..GR-1) lies between PE rows ``g*TR-1`` and ``g*TR``; tile-column boundary ``j``
(1..GC-1) between PE columns ``j*TC-1`` and ``j*TC``.

Run-time split setting: two input ports, the array's config word (no register inside:
whoever drives them -- a config register of the system, or the bench -- holds them; a
register would cost one flop per bit, which :mod:`sim.split_bench` adds to the area
overhead). No reset is needed to change them::

    input [GR-2:0] row_cut   bit g-1 = 1: cut at tile-row boundary g      (only if GR > 1)
    input [GC-2:0] col_cut   bit j-1 = 1: cut at tile-column boundary j   (only if GC > 1;
                                                                           "mux" style only)

The cuts split the array into ``(#row cuts + 1) x (#col cuts + 1)`` rectangular
sub-arrays, numbered row-major from the top left. The named modes of
:meth:`sim.split_gemm.SplitConfig.mode` (and of ``systolic gemm --split MODE``) are
these words: ``whole`` = no cut; ``h2`` = ``row_cut`` bit GR/2-1 (top/bottom halves);
``v2`` = ``col_cut`` bit GC/2-1 (left/right halves); ``quad`` = both; ``tiles`` = all
ones (every tile on its own); any other set of bits is a non-uniform guillotine tiling
(``--split cuts:ROWS/COLS`` on the command line, 1-based boundary numbers). Both are read combinationally by the boundary muxes (sampled through the
PE registers at the next rising edge), so they must be held stable while any data is in
flight across a boundary whose bit changes. Setting a cut bit may happen in the cycle in
which the last result of the sub-array spanning the boundary comes out (cycle X of
:mod:`sim.cycle_model`); clearing one must wait one more cycle (X + 1), because in
cycle X that last result (and, with P = 0, the last activation) still sits in the
register at the boundary. :func:`sim.split_gemm.switch_gap` is that rule. All zeros =
whole array. No reset is needed to change the split.

Ports (n = 4 operand bits, W = acc width, lane i of a flat vector = bits ``[i*w +: w]``;
the first seven are exactly those of ``systolic_array`` for dataflow "ws", with the same
meaning and timing, see :mod:`hdl.array` and :mod:`sim.cycle_model`)::

    input  [R*n-1:0]        a_in, a_swap[R], a_valid[R]    left edge (PE column 0)
    input  [C*n-1:0]        w_in, w_en[C]                  top edge (PE row 0)
    output [C*W-1:0]        c_out, c_valid[C]              bottom edge (PE row R-1)
    -- extra edge ports, only if GC > 1: lane (j-1)*R + r = row r at column boundary j
    input  [(GC-1)*R*n-1:0] a_in_x, a_swap_x, a_valid_x   left edge of a sub-array that
                                                           starts at column j*TC
    -- extra edge ports, only if GR > 1: lane (g-1)*C + c = column c at row boundary g
    input  [(GR-1)*C*n-1:0] w_in_x, w_en_x                 top edge of a sub-array that
                                                           starts at row g*TR
    output [(GR-1)*C*W-1:0] c_out_x, c_valid_x             bottom edge of a sub-array that
                                                           ends at row g*TR-1 (a tap of
                                                           psum_out of PE row g*TR-1; it
                                                           also shows partial sums when
                                                           the boundary is not cut)

Boundary logic (the whole split overhead):

* column boundary j, every row r: 2:1 muxes on (a, swap, valid) (n+2 bits):
  ``col_cut[j-1] ? a_in_x : a_out of PE(r, j*TC-1)``;
* row boundary g, every column c: psum_in and pv_in of PE(g*TR, c) are ANDed with
  ``~row_cut[g-1]`` (W+1 gates: the partial-sum cut); 2:1 muxes on the weight chain
  (``w_in_x`` vs the shadow weight above, n bits) and on the column's ``w_en`` for the
  tile rows below the boundary (1 bit; the ``w_en`` seen by tile row g is that of the
  nearest cut boundary above it, or ``w_en`` of the array).

Style ``"ports"`` (the cheap design point): no activation or weight muxes at all. The
activation chain is cut at every tile-column boundary and the weight chain and ``w_en``
at every tile-row boundary, always; tile column j > 0 always takes (a, swap, valid) from
``a_in_x`` lanes of boundary j, tile row g > 0 always takes (w, w_en) from ``w_in_x`` /
``w_en_x`` of boundary g. There is no ``col_cut`` port (a vertical split needs no
hardware); ``row_cut`` still drives the partial-sum cut (the only split logic left: W+1
AND gates per column per tile-row boundary). A sub-array spanning several tiles (and the
whole array) is driven by giving each inner tile edge the stream its neighbour's chain
would carry: activations delayed by the column offset ``x`` inside the sub-array, weights
delayed by the row offset ``y`` with the sub-array's ``w_en`` unchanged (the first ``y``
values of each load window are shifted out of the bottom). Results and cycles are
exactly those of the mux style; the price is edge-port bandwidth in the bigger modes.

Every sub-array therefore behaves exactly like an unsplit ``systolic_array`` of its size
(same port timing, same cycle counts), driven through the edge ports above; with no cut
the array is the unsplit array plus the (transparent) muxes.
"""
import time

from .array import pe_verilog
try:                                  # the waivers hdl.array wraps its ``pe`` module in
    from .array import _PE_WAIVED
except ImportError:                   # pragma: no cover - hdl.array renamed it
    _PE_WAIVED = ("DECLFILENAME", "UNUSEDSIGNAL", "PROCASSINIT", "WIDTHEXPAND",
                  "WIDTHTRUNC")
from .mac import ConfigError

__all__ = ["SPLIT_TOPLEVEL", "split_verilog", "tile_grid", "split_ports", "FEATURES",
           "STYLES"]

SPLIT_TOPLEVEL = "splittable_array"
#: Boundary features; all are needed for a working array. Subsets exist only to
#: measure each one's area (:func:`sim.split_gemm.split_area_overhead`).
FEATURES = ("act_mux", "psum_cut", "w_mux")
#: Boundary styles (see the module docstring).
STYLES = ("mux", "ports")


def tile_grid(rows, cols, tile):
    """``(TR, TC, GR, GC)`` for an R x C array of ``tile`` (int or (TR, TC)) tiles, or
    :class:`ConfigError` if the tile does not divide the array."""
    if isinstance(tile, int) and not isinstance(tile, bool):
        tr = tc = tile
    else:
        try:
            tr, tc = tile
        except (TypeError, ValueError):
            raise ConfigError("--tile", f"{tile!r} is not a tile size; allowed: an int "
                                        f"or (rows, cols)") from None
    for v in (tr, tc):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ConfigError("--tile", f"{tile!r} is not a positive tile size")
    if rows % tr or cols % tc:
        raise ConfigError("--tile", f"tile {tr}x{tc} does not divide the {rows}x{cols} "
                                    f"array")
    return tr, tc, rows // tr, cols // tc


def split_ports(rows, cols, tile, n, W, style="mux"):
    """``{name: (direction, bits)}`` of ``splittable_array`` (see the module doc)."""
    _check_style(style)
    tr, tc, gr, gc = tile_grid(rows, cols, tile)
    R, C = rows, cols
    ports = {"a_in": ("in", R * n), "a_swap": ("in", R), "a_valid": ("in", R),
             "w_in": ("in", C * n), "w_en": ("in", C),
             "c_out": ("out", C * W), "c_valid": ("out", C)}
    if gr > 1:
        ports.update(row_cut=("in", gr - 1), w_in_x=("in", (gr - 1) * C * n),
                     w_en_x=("in", (gr - 1) * C), c_out_x=("out", (gr - 1) * C * W),
                     c_valid_x=("out", (gr - 1) * C))
    if gc > 1:
        if style == "mux":
            ports["col_cut"] = ("in", gc - 1)
        ports.update(a_in_x=("in", (gc - 1) * R * n),
                     a_swap_x=("in", (gc - 1) * R), a_valid_x=("in", (gc - 1) * R))
    return ports


def _check_style(style):
    if style not in STYLES:
        raise ConfigError("--style", f"unknown style {style!r}; allowed: "
                                     f"{', '.join(STYLES)}")


def _top(R, C, TR, TC, n, W, features, style):
    GR, GC = R // TR, C // TC
    ports_style = style == "ports"
    decl = []
    if GR > 1:
        decl += [f"input  wire [{GR - 2}:0] row_cut",
                 f"input  wire [{(GR - 1) * C * n - 1}:0] w_in_x",
                 f"input  wire [{(GR - 1) * C - 1}:0] w_en_x",
                 f"output wire [{(GR - 1) * C * W - 1}:0] c_out_x",
                 f"output wire [{(GR - 1) * C - 1}:0] c_valid_x"]
    if GC > 1:
        if not ports_style:
            decl += [f"input  wire [{GC - 2}:0] col_cut"]
        decl += [f"input  wire [{(GC - 1) * R * n - 1}:0] a_in_x",
                 f"input  wire [{(GC - 1) * R - 1}:0] a_swap_x",
                 f"input  wire [{(GC - 1) * R - 1}:0] a_valid_x"]
    extra = "".join(f",\n    {d}" for d in decl)
    # Padded internal copies: lane 0 (boundary 0 = the array edge) is unused, so the
    # generate code below is the same for every grid.
    if GR > 1:
        rpad = f"""\
    assign rcut = {{row_cut, 1'b0}};
    assign wx = {{w_in_x, {{(C*N){{1'b0}}}}}};
    assign wenx = {{w_en_x, {{C{{1'b0}}}}}};
"""
    else:
        rpad = """\
    assign rcut = 1'b0;
    assign wx = {(C*N){1'b0}};
    assign wenx = {C{1'b0}};
"""
    if GC > 1:
        cut = "{GC{1'b1}}" if ports_style else "{col_cut, 1'b0}"
        cpad = f"""\
    assign ccut = {cut};
    assign ax = {{a_in_x, {{(R*N){{1'b0}}}}}};
    assign swx = {{a_swap_x, {{R{{1'b0}}}}}};
    assign vx = {{a_valid_x, {{R{{1'b0}}}}}};
"""
    else:
        cpad = """\
    assign ccut = 1'b0;
    assign ax = {(R*N){1'b0}};
    assign swx = {R{1'b0}};
    assign vx = {R{1'b0}};
"""
    taps = ""
    if GR > 1:
        taps = """\
        for (g = 1; g < GR; g = g + 1) begin : tap
            for (c = 0; c < C; c = c + 1) begin : col
                assign c_out_x[((g-1)*C+c)*W +: W] = p_q[(g*TR-1)*C+c];
                assign c_valid_x[(g-1)*C+c] = pv_q[(g*TR-1)*C+c];
            end
        end
"""
    act = ("1'b1" if ports_style else "ccut[c/TC]") if "act_mux" in features else "1'b0"
    pcut = "rcut[r/TR]" if "psum_cut" in features else "1'b0"
    wcut = ("1'b1" if ports_style else "rcut[g]") if "w_mux" in features else "1'b0"
    wcut_r = ("1'b1" if ports_style else "rcut[r/TR]") if "w_mux" in features else "1'b0"
    return f"""\
module {SPLIT_TOPLEVEL} (
    input  wire clk,
    input  wire rst,
    input  wire [{R * n - 1}:0] a_in,
    input  wire [{R - 1}:0] a_swap,
    input  wire [{R - 1}:0] a_valid,
    input  wire [{C * n - 1}:0] w_in,
    input  wire [{C - 1}:0] w_en,
    output wire [{C * W - 1}:0] c_out,
    output wire [{C - 1}:0] c_valid{extra}
);
    localparam R = {R};
    localparam C = {C};
    localparam TR = {TR};
    localparam TC = {TC};
    localparam GR = {GR};
    localparam GC = {GC};
    localparam N = {n};
    localparam W = {W};
    // Cut bits and extra edge inputs, padded with an unused boundary 0.
    wire [GR-1:0] rcut;
    /* verilator lint_off UNUSEDSIGNAL */
    wire [GC-1:0] ccut;
    wire [GR*C*N-1:0] wx;
    wire [GR*C-1:0]   wenx;
    wire [GC*R*N-1:0] ax;
    wire [GC*R-1:0]   swx;
    wire [GC*R-1:0]   vx;
    // PE outputs: index r*C+c is PE(r, c)'s output (last row/column: no consumer).
    // One net per PE port (arrays of nets, not slices of one wide vector), as in
    // hdl.array: an event-driven simulator then wakes only the PE a changed value feeds.
    wire [N-1:0] a_q  [0:R*C-1];
    wire         sw_q [0:R*C-1];
    wire         v_q  [0:R*C-1];
    wire [N-1:0] w_q  [0:R*C-1];
    /* verilator lint_on UNUSEDSIGNAL */
    wire [W-1:0] p_q  [0:R*C-1];
    wire         pv_q [0:R*C-1];
    // w_en seen by tile row g, column c.
    wire         wen_g [0:GR*C-1];
{rpad}{cpad}    genvar r, c, g;
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
                wire [N-1:0] w_i;
                wire [W-1:0] p_i;
                wire         pv_i;
                if (c == 0) begin : a_left
                    assign a_i = a_in[r*N +: N];
                    assign sw_i = a_swap[r];
                    assign v_i = a_valid[r];
                end else if (c % TC == 0) begin : a_bound
                    assign a_i = {act} ? ax[((c/TC)*R+r)*N +: N] : a_q[r*C+c-1];
                    assign sw_i = {act} ? swx[(c/TC)*R+r] : sw_q[r*C+c-1];
                    assign v_i = {act} ? vx[(c/TC)*R+r] : v_q[r*C+c-1];
                end else begin : a_inner
                    assign a_i = a_q[r*C+c-1];
                    assign sw_i = sw_q[r*C+c-1];
                    assign v_i = v_q[r*C+c-1];
                end
                if (r == 0) begin : p_top
                    assign w_i = w_in[c*N +: N];
                    assign p_i = {{W{{1'b0}}}};
                    assign pv_i = 1'b0;
                end else if (r % TR == 0) begin : p_bound
                    assign w_i = {wcut_r} ? wx[((r/TR)*C+c)*N +: N] : w_q[(r-1)*C+c];
                    assign p_i = p_q[(r-1)*C+c] & {{W{{~{pcut}}}}};
                    assign pv_i = pv_q[(r-1)*C+c] & ~{pcut};
                end else begin : p_inner
                    assign w_i = w_q[(r-1)*C+c];
                    assign p_i = p_q[(r-1)*C+c];
                    assign pv_i = pv_q[(r-1)*C+c];
                end
                pe u_pe (
                    .clk(clk),
                    .rst(rst),
                    .a_in(a_i),
                    .sw_in(sw_i),
                    .v_in(v_i),
                    .w_in(w_i),
                    .w_en(wen_g[(r/TR)*C+c]),
                    .psum_in(p_i),
                    .pv_in(pv_i),
                    .a_out(a_q[r*C+c]),
                    .sw_out(sw_q[r*C+c]),
                    .v_out(v_q[r*C+c]),
                    .w_out(w_q[r*C+c]),
                    .psum_out(p_q[r*C+c]),
                    .pv_out(pv_q[r*C+c])
                );
            end
        end
    endgenerate
endmodule
"""


def split_verilog(rows, cols, tile, mac, *, style="mux", stats=None, features=FEATURES):
    """Verilog text (module ``pe`` then module ``splittable_array``) of an R x C
    splittable WS array of ``tile`` tiles. ``stats``, if a dict, receives ``seconds``
    and ``bytes``. ``features``: for area breakdowns only (see :data:`FEATURES`)."""
    t0 = time.perf_counter()
    tr, tc, _, _ = tile_grid(rows, cols, tile)
    _check_style(style)
    bad = set(features) - set(FEATURES)
    if bad:
        raise ValueError(f"unknown split features {sorted(bad)}; allowed: {', '.join(FEATURES)}")
    pe = pe_verilog(mac, "ws")
    top = _top(rows, cols, tr, tc, mac.width, mac.acc_width, tuple(features), style)
    header = (f"// {SPLIT_TOPLEVEL}: {rows}x{cols} splittable WS array of {tr}x{tc} tiles "
              f"({style} style) "
              f"of gate-level MAC PEs ({mac.slug})\n// generated by hdl.split; do not edit\n")
    off = "".join(f"/* verilator lint_off {w} */\n" for w in _PE_WAIVED)
    on = "".join(f"/* verilator lint_on {w} */\n" for w in _PE_WAIVED)
    text = header + off + pe.rstrip() + "\n" + on + "\n" + top
    if isinstance(stats, dict):
        stats["seconds"] = time.perf_counter() - t0
        stats["bytes"] = len(text.encode())
    return text
