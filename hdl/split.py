"""Splittable systolic array, weight- or output-stationary: one R x C array of ``pe``
modules, built from a grid of TR x TC tiles, that runs at run time either as one array
or as several independent sub-arrays (a guillotine grid of tiles), each doing its own
GEMM. This docstring describes the WS top; the OS top (``dataflow="os"``) follows the
same rules with the OS ports of :mod:`hdl.array` (see :func:`split_ports` and
``_os_top``): (a, flag) muxes at tile-column boundaries, B muxes at tile-row boundaries
(none in the ``ports`` style), the anti-diagonal drain chain ANDed to zero where it
crosses a cut, and output taps of every sub-array's exit PEs.

The PE is the one of :mod:`hdl.pe` (emitted once as module ``pe`` by
:func:`hdl.array.pe_verilog`); the top ``splittable_array`` is Verilog-2005 text with
nested ``generate`` loops, like ``systolic_array`` of :mod:`hdl.array`. Same arguments,
same bytes.

Tile grid: ``GR = R/TR`` tile rows, ``GC = C/TC`` tile columns. Tile-row boundary
``g`` (1..GR-1) lies between PE rows ``g*TR-1`` and ``g*TR``; tile-column boundary ``j``
(1..GC-1) between PE columns ``j*TC-1`` and ``j*TC``.

Run-time split setting: two input ports, the array's config word (no register inside:
whoever drives them -- a config register of the system, or the bench -- holds them; a
register would cost one flop per bit, which :mod:`sim.studies.split_bench` adds to the area
overhead). No reset is needed to change them::

    input [GR-2:0] row_cut   bit g-1 = 1: cut at tile-row boundary g      (only if GR > 1)
    input [GC-2:0] col_cut   bit j-1 = 1: cut at tile-column boundary j   (only if GC > 1;
                                                                           "mux" style only)

The cuts split the array into ``(#row cuts + 1) x (#col cuts + 1)`` rectangular
sub-arrays, numbered row-major from the top left. The named modes of
:meth:`sim.drivers.split.SplitConfig.mode` (and of ``systolic gemm --split MODE``) are
these words: ``whole`` = no cut; ``h2`` = ``row_cut`` bit GR/2-1 (top/bottom halves);
``v2`` = ``col_cut`` bit GC/2-1 (left/right halves); ``quad`` = both; ``tiles`` = all
ones (every tile on its own); any other set of bits is a non-uniform guillotine tiling
(``--split cuts:ROWS/COLS`` on the command line, 1-based boundary numbers). Both are read combinationally by the boundary muxes (sampled through the
PE registers at the next rising edge), so they must be held stable while any data is in
flight across a boundary whose bit changes. Setting a cut bit may happen in the cycle in
which the last result of the sub-array spanning the boundary comes out (cycle X of
:mod:`sim.models.cycles`); clearing one must wait one more cycle (X + 1), because in
cycle X that last result (and, with P = 0, the last activation) still sits in the
register at the boundary. :func:`sim.drivers.split.switch_gap` is that rule. All zeros =
whole array. No reset is needed to change the split.

Ports (n = 4 operand bits, W = acc width, lane i of a flat vector = bits ``[i*w +: w]``;
the first seven are exactly those of ``systolic_array`` for dataflow "ws", with the same
meaning and timing, see :mod:`hdl.array` and :mod:`sim.models.cycles`)::

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
from dataclasses import dataclass, field

from .array import (ArrayConfig, pe_verilog, module_head, os_out_lanes, assemble,
                    DATAFLOWS)
from .mac import ConfigError, MacConfig
from .pe import default_double_buffer, os_flag, pe_kind

__all__ = ["SplitConfig", "SplitMode", "SubArray", "MODE_NAMES", "SPLIT_TOPLEVEL",
           "split_verilog", "tile_grid", "split_ports", "FEATURES", "STYLES"]

SPLIT_TOPLEVEL = "splittable_array"
#: Boundary features; all are needed for a working array. Subsets exist only to
#: measure each one's area (:func:`sim.drivers.split.split_area_overhead`).
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


MODE_NAMES = ("whole", "h2", "v2", "quad", "tiles")


@dataclass(frozen=True)
class SubArray:
    index: int
    r0: int
    c0: int
    rows: int
    cols: int


@dataclass(frozen=True)
class SplitMode:
    """Cuts at tile-row boundaries ``row_cuts`` and tile-column boundaries ``col_cuts``
    (1-based boundary indices, see :mod:`hdl.split`)."""
    name: str
    row_cuts: tuple = ()
    col_cuts: tuple = ()


@dataclass(frozen=True)
class SplitConfig:
    """An R x C splittable array of ``tile`` (int or (TR, TC)) tiles, dataflow "ws" or
    "os", boundary ``style`` (:data:`STYLES`). The PE and ``fold_overlap`` follow
    :class:`hdl.array.ArrayConfig`: WS always has the double-buffered PE (its shadow
    weights let a sub-array switch jobs) and ``fold_overlap`` is its schedule; OS has the
    compact PE, or the double-buffered one with ``fold_overlap``."""
    rows: int = 4
    cols: int = 4
    tile: object = 2
    mac: MacConfig = field(default_factory=MacConfig)
    style: str = "mux"        # boundary style of hdl.split: "mux" or "ports"
    fold_overlap: bool = False
    dataflow: str = "ws"

    def __post_init__(self):
        ArrayConfig(self.rows, self.cols, self.dataflow, self.mac)     # same checks
        tile_grid(self.rows, self.cols, self.tile)              # ConfigError("--tile")
        if not isinstance(self.fold_overlap, bool):
            raise ConfigError("--fold-overlap", f"{self.fold_overlap!r}; allowed: true, "
                                                f"false")
        if self.style not in STYLES:
            raise ConfigError("--style", f"unknown style {self.style!r}; allowed: "
                                         f"{', '.join(STYLES)}")

    @property
    def grid(self):
        """``(TR, TC, GR, GC)``."""
        return tile_grid(self.rows, self.cols, self.tile)

    @property
    def double_buffer(self):
        """The PE (:func:`hdl.pe.build_pe`): WS double-buffered, OS with fold overlap."""
        return self.dataflow == "ws" or self.fold_overlap

    @property
    def compact_os(self):
        """True for the compact OS PE (no reset, drains through its accumulator)."""
        return self.dataflow == "os" and not self.double_buffer

    @property
    def slug(self):
        tr, tc, _, _ = self.grid
        kind = pe_kind(self.dataflow, self.double_buffer)
        return (f"split_{self.style}_{kind}_{self.rows}x{self.cols}_t{tr}x{tc}_"
                f"{self.mac.slug}")

    def verilog(self, **kw):
        return split_verilog(self.rows, self.cols, self.tile, self.mac, style=self.style,
                             dataflow=self.dataflow, double_buffer=self.double_buffer, **kw)

    def ports(self):
        """``{name: (direction, bits)}`` of the generated top."""
        return split_ports(self.rows, self.cols, self.tile, self.mac.width,
                           self.mac.acc_width, self.style, dataflow=self.dataflow,
                           double_buffer=self.double_buffer)

    def modes(self):
        """The named modes this array can do."""
        out = []
        for name in MODE_NAMES:
            try:
                self.mode(name)
            except ValueError:
                continue
            out.append(name)
        return out

    def mode(self, mode):
        """A :class:`SplitMode` from a name (``whole``; ``h2``: top/bottom halves, a
        horizontal cut; ``v2``: left/right halves; ``quad``: both; ``tiles``: every tile
        on its own), a ``(row_cuts, col_cuts)`` pair, or a SplitMode (checked).
        ValueError (one line) if this array cannot do it."""
        _, _, gr, gc = self.grid
        if isinstance(mode, SplitMode):
            rc, cc, name = mode.row_cuts, mode.col_cuts, mode.name
        elif isinstance(mode, str):
            name = mode
            if mode == "whole":
                rc, cc = (), ()
            elif mode == "tiles":
                rc, cc = tuple(range(1, gr)), tuple(range(1, gc))
            elif mode in ("h2", "v2", "quad"):
                rc = cc = ()
                if mode in ("h2", "quad"):
                    if gr % 2:
                        raise ValueError(f"split mode {mode!r} needs an even number of tile "
                                         f"rows; this {self.rows}x{self.cols} array has {gr}")
                    rc = (gr // 2,)
                if mode in ("v2", "quad"):
                    if gc % 2:
                        raise ValueError(f"split mode {mode!r} needs an even number of tile "
                                         f"columns; this {self.rows}x{self.cols} array has "
                                         f"{gc}")
                    cc = (gc // 2,)
            else:
                raise ValueError(f"unknown split mode {mode!r}; allowed: "
                                 f"{', '.join(MODE_NAMES)} or (row_cuts, col_cuts)")
        else:
            try:
                rc, cc = (tuple(sorted(set(int(x) for x in v))) for v in mode)
            except (TypeError, ValueError):
                raise ValueError(f"split mode {mode!r} is not a name or a (row_cuts, "
                                 f"col_cuts) pair") from None
            name = f"cuts r{list(rc)} c{list(cc)}"
        for cuts, top, what in ((rc, gr, "tile-row"), (cc, gc, "tile-column")):
            bad = [x for x in cuts if not 1 <= x < top]
            if bad:
                raise ValueError(f"split mode {name!r}: no {what} boundary {bad[0]} in a "
                                 f"grid of {gr}x{gc} tiles (allowed: 1..{top - 1})")
        return SplitMode(name, tuple(rc), tuple(cc))

    def subarrays(self, mode):
        """The sub-arrays of ``mode`` in row-major order."""
        tr, tc, gr, gc = self.grid
        mode = self.mode(mode)
        rb = [0, *mode.row_cuts, gr]
        cb = [0, *mode.col_cuts, gc]
        out = []
        for i in range(len(rb) - 1):
            for j in range(len(cb) - 1):
                out.append(SubArray(len(out), rb[i] * tr, cb[j] * tc,
                                    (rb[i + 1] - rb[i]) * tr, (cb[j + 1] - cb[j]) * tc))
        return out

    def sub_config(self, sub):
        return ArrayConfig(sub.rows, sub.cols, self.dataflow, self.mac,
                           fold_overlap=self.fold_overlap)


def split_ports(rows, cols, tile, n, W, style="mux", *, dataflow="ws", double_buffer=None):
    """``{name: (direction, bits)}`` of ``splittable_array`` (see the module doc), in
    port order. ``dataflow="os"``: the OS ports (``double_buffer``: ``a_last`` instead of
    ``a_drain``)."""
    _check_style(style)
    double_buffer = _check_pe(dataflow, double_buffer)
    tr, tc, gr, gc = tile_grid(rows, cols, tile)
    R, C = rows, cols
    if dataflow == "ws":
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
    flag = os_flag(double_buffer)
    L = R + C - 1
    ports = {"a_in": ("in", R * n), f"a_{flag}": ("in", R), "b_in": ("in", C * n),
             "c_out": ("out", L * W), "c_valid": ("out", L)}
    if gr > 1:          # both styles: row_cut cuts the drain chain
        ports.update(row_cut=("in", gr - 1), b_in_x=("in", (gr - 1) * C * n),
                     c_out_x=("out", (gr - 1) * C * W), c_valid_x=("out", (gr - 1) * C))
    if gc > 1:          # both styles: so does col_cut
        ports.update(col_cut=("in", gc - 1), a_in_x=("in", (gc - 1) * R * n),
                     **{f"a_{flag}_x": ("in", (gc - 1) * R)},
                     l_out_x=("out", (gc - 1) * R * W), l_valid_x=("out", (gc - 1) * R))
    return ports


def _check_style(style):
    if style not in STYLES:
        raise ConfigError("--style", f"unknown style {style!r}; allowed: "
                                     f"{', '.join(STYLES)}")


def _check_pe(dataflow, double_buffer):
    """The PE variant (``double_buffer``, None for the default) of a split array of
    ``dataflow``; ConfigError for an unknown dataflow or the compact WS PE (a WS
    sub-array needs the shadow weights)."""
    if dataflow not in DATAFLOWS:
        raise ConfigError("--dataflow", f"unknown dataflow {dataflow!r}; allowed: "
                                        f"{', '.join(DATAFLOWS)}")
    if double_buffer is None:
        return default_double_buffer(dataflow)
    if dataflow == "ws" and not double_buffer:
        raise ConfigError("--compact", "the splittable WS array needs the double-buffered "
                                       "PE (shadow weights); drop --compact")
    return bool(double_buffer)


# ---------------------------------------------------------------------------------------
# Scaffolding shared by the WS and OS tops

def _head(R, C, TR, TC, n, W, ports):
    """Module header (clk, rst, then ``ports`` in order) and the localparams."""
    return module_head(SPLIT_TOPLEVEL, [("input" if d == "in" else "output", bits, name)
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


def _ws_top(R, C, TR, TC, n, W, features, style):
    GR, GC = R // TR, C // TC
    ports_style = style == "ports"
    head = _head(R, C, TR, TC, n, W, split_ports(R, C, (TR, TC), n, W, style))
    rows_x, cols_x = GR > 1, GC > 1
    pads = _pads([("rcut", rows_x and "row_cut", "1"), ("wx", rows_x and "w_in_x", "(C*N)"),
                  ("wenx", rows_x and "w_en_x", "C")])
    if cols_x and ports_style:
        pads += "    assign ccut = {GC{1'b1}};\n"
    else:
        pads += _pads([("ccut", cols_x and "col_cut", "1")])
    pads += _pads([("ax", cols_x and "a_in_x", "(R*N)"), ("swx", cols_x and "a_swap_x", "R"),
                   ("vx", cols_x and "a_valid_x", "R")])
    taps = _row_taps("p_q", "pv_q") if rows_x else ""
    act = _sel("act_mux", features, ports_style, "ccut[c/TC]")
    pcut = "rcut[r/TR]" if "psum_cut" in features else "1'b0"
    wcut = _sel("w_mux", features, ports_style, "rcut[g]")
    wcut_r = _sel("w_mux", features, ports_style, "rcut[r/TR]")
    a_chain = _a_chain([("a_i", "a_in[r*N +: N]", "ax[((c/TC)*R+r)*N +: N]", "a_q[r*C+c-1]"),
                        ("sw_i", "a_swap[r]", "swx[(c/TC)*R+r]", "sw_q[r*C+c-1]"),
                        ("v_i", "a_valid[r]", "vx[(c/TC)*R+r]", "v_q[r*C+c-1]")], act)
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
                wire [N-1:0] w_i;
                wire [W-1:0] p_i;
                wire         pv_i;
{a_chain}{p_chain}                pe u_pe (
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


def _os_top(R, C, TR, TC, n, W, features, style, double_buffer):
    GR, GC = R // TR, C // TC
    ports_style = style == "ports"
    flag = os_flag(double_buffer)
    head = _head(R, C, TR, TC, n, W, split_ports(R, C, (TR, TC), n, W, style, dataflow="os",
                                                 double_buffer=double_buffer))
    rows_x, cols_x = GR > 1, GC > 1
    pads = _pads([("rcut", rows_x and "row_cut", "1"), ("ccut", cols_x and "col_cut", "1"),
                  ("bx", rows_x and "b_in_x", "(C*N)"), ("ax", cols_x and "a_in_x", "(R*N)"),
                  ("fx", cols_x and f"a_{flag}_x", "R")])
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
                        ("f_i", f"a_{flag}[r]", "fx[(c/TC)*R+r]", "f_q[r*C+c-1]")], act)
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
    // PE outputs: index r*C+c is PE(r, c)'s output. PE(r, c) drains from PE(r-1, c+1)
    // (zero at the array's top and right edges and across a cut), so every
    // anti-diagonal of a sub-array leaves through the sub-array's bottom-left PE, as in
    // hdl.array's OS array; the exit PEs are the array's lanes and the taps.
    wire [N-1:0] a_q  [0:R*C-1];
    wire         f_q  [0:R*C-1];
    wire [N-1:0] b_q  [0:R*C-1];
    wire [W-1:0] d_q  [0:R*C-1];
    wire         dv_q [0:R*C-1];
    /* verilator lint_on UNUSEDSIGNAL */
{pads}    genvar r, c{", g" if taps else ""};
    generate
{os_out_lanes("d_q", "dv_q")}{taps}        for (r = 0; r < R; r = r + 1) begin : row
            for (c = 0; c < C; c = c + 1) begin : col
                wire [N-1:0] a_i;
                wire         f_i;
                wire [N-1:0] b_i;
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
                    .b_in(b_i),
                    .d_in(d_i),{dv_in}
                    .a_out(a_q[r*C+c]),
                    .{flag}_out(f_q[r*C+c]),
                    .b_out(b_q[r*C+c]),
                    .d_out(d_q[r*C+c]),
                    .dv_out(dv_q[r*C+c])
                );
            end
        end
    endgenerate
endmodule
"""


def split_verilog(rows, cols, tile, mac, *, style="mux", stats=None, features=FEATURES,
                  dataflow="ws", double_buffer=None):
    """Verilog text (module ``pe`` then module ``splittable_array``) of an R x C
    splittable array of ``tile`` tiles, dataflow ``"ws"`` or ``"os"`` (``double_buffer``:
    the OS PE with a separate drain register, for fold overlap). ``stats``, if a dict,
    receives ``seconds`` and ``bytes``. ``features``: for area breakdowns only (see
    :data:`FEATURES`)."""
    t0 = time.perf_counter()
    tr, tc, _, _ = tile_grid(rows, cols, tile)
    _check_style(style)
    double_buffer = _check_pe(dataflow, double_buffer)
    bad = set(features) - set(FEATURES)
    if bad:
        raise ValueError(f"unknown split features {sorted(bad)}; allowed: {', '.join(FEATURES)}")
    features = tuple(features)
    if dataflow == "ws":
        pe = pe_verilog(mac, "ws")
        top = _ws_top(rows, cols, tr, tc, mac.width, mac.acc_width, features, style)
        kind = "WS"
    else:
        pe = pe_verilog(mac, "os", double_buffer=double_buffer)
        top = _os_top(rows, cols, tr, tc, mac.width, mac.acc_width, features, style,
                      double_buffer)
        kind = "OS double-buffered" if double_buffer else "OS"
    header = (f"// {SPLIT_TOPLEVEL}: {rows}x{cols} splittable {kind} array of {tr}x{tc} tiles "
              f"({style} style) "
              f"of gate-level MAC PEs ({mac.slug})\n// generated by hdl.split; do not edit\n")
    return assemble(header, pe, top, t0, stats)
