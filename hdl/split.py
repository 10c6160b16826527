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
(``--split cuts:ROWS/COLS`` on the command line, 1-based boundary numbers). Both are read
combinationally by the boundary muxes (sampled through the
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
    -- fused PE only (``fusion`` "w4a8": t = ua, x16; "int8": t = ua, ub, x16; both
       dataflows, :mod:`hdl.fusion`): the digit tags, timed and muxed like a_in
    input  [R-1:0]          a_t                            left edge, after the row flag
    input  [(GC-1)*R-1:0]   a_t_x                          only if GC > 1, after the flag's
                                                           _x lanes

Boundary logic (the whole split overhead; a fused PE adds one 2:1 mux per tag to the
activation muxes of the mux style):

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

from .array import ArrayConfig, pe_verilog, assemble, DATAFLOWS
from .clock_gate import CLOCK_GATE_MODULE, gate_top
from .fusion import TAGS, precisions_of
from .pe_gate import check_pe_gate
from .mac import ConfigError, MacConfig
from .pe import default_double_buffer, os_flag, pe_kind
from .split_top import os_split_top, ws_split_top

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
            raise ConfigError("tile", f"{tile!r} is not a tile size; allowed: an int "
                                        f"or (rows, cols)") from None
    for v in (tr, tc):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ConfigError("tile", f"{tile!r} is not a positive tile size")
    if rows % tr or cols % tc:
        raise ConfigError("tile", f"tile {tr}x{tc} does not divide the {rows}x{cols} "
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
    """An R x C splittable array (``rows``, ``cols``: 1..256) of ``tile`` (int or
    (TR, TC), dividing the array) tiles, ``dataflow`` "ws" or "os", boundary ``style``
    (:data:`STYLES`), every PE a MAC of ``mac``. ``double_buffer`` and ``fold_overlap``
    mean what they mean in :class:`hdl.array.ArrayConfig`, with one more rule: WS always
    has the double-buffered PE (its shadow weights let a sub-array switch jobs);
    ``fold_overlap`` is then its schedule. OS has the compact PE, or the double-buffered
    one with ``fold_overlap``. ``fusion`` (:data:`hdl.fusion.FUSIONS`): every PE the
    fused digit PE of :mod:`hdl.fusion` ("w4a8" or "int8"; default "none", the int4 PE,
    Verilog unchanged); its digit tags enter with A (ports ``a_ua``/``a_ub``/``a_x16``
    and their ``_x`` lanes) and cross tile boundaries like A, so each sub-array runs the
    precision its own A stream carries."""
    rows: int = 4
    cols: int = 4
    tile: object = 2
    mac: MacConfig = field(default_factory=MacConfig)
    style: str = "mux"        # boundary style of hdl.split: "mux" or "ports"
    fold_overlap: bool = False
    dataflow: str = "ws"
    double_buffer: bool | None = None
    clock_gate: bool = False
    fusion: str = "none"
    pe_gate: bool = False

    def __post_init__(self):
        if not isinstance(self.clock_gate, bool):
            raise ConfigError("clock_gate", f"{self.clock_gate!r}; allowed: true, false")
        check_pe_gate(self.pe_gate, self.dataflow)
        array = ArrayConfig(self.rows, self.cols, self.dataflow, self.mac,        # same checks
                            fold_overlap=self.fold_overlap, double_buffer=self.double_buffer,
                            fusion=self.fusion)
        object.__setattr__(self, "double_buffer", _check_pe(self.dataflow,
                                                            array.double_buffer))
        tile_grid(self.rows, self.cols, self.tile)              # ConfigError("tile")
        if not isinstance(self.fold_overlap, bool):
            raise ConfigError("fold_overlap", f"{self.fold_overlap!r}; allowed: true, "
                                                f"false")
        if self.style not in STYLES:
            raise ConfigError("style", f"unknown style {self.style!r}; allowed: "
                                         f"{', '.join(STYLES)}")

    @property
    def grid(self):
        """``(TR, TC, GR, GC)``."""
        return tile_grid(self.rows, self.cols, self.tile)

    @property
    def compact_os(self):
        """True for the compact OS PE (no reset, drains through its accumulator)."""
        return self.dataflow == "os" and not self.double_buffer

    @property
    def slug(self):
        tr, tc, _, _ = self.grid
        kind = pe_kind(self.dataflow, self.double_buffer)
        gate = ("_cg" if self.clock_gate else "") + ("_pg" if self.pe_gate else "")
        fused = "" if self.fusion == "none" else f"_f{self.fusion}"
        return (f"split_{self.style}_{kind}{fused}_{self.rows}x{self.cols}_t{tr}x{tc}{gate}_"
                f"{self.mac.slug}")

    @property
    def precisions(self):
        """The run-time precisions every sub-array runs (:func:`hdl.fusion.precisions_of`)."""
        return precisions_of(self.fusion)

    def verilog(self, **kw):
        return split_verilog(self.rows, self.cols, self.tile, self.mac, style=self.style,
                             dataflow=self.dataflow, double_buffer=self.double_buffer,
                             clock_gate=self.clock_gate, fusion=self.fusion,
                             pe_gate=self.pe_gate, **kw)

    def ports(self):
        """``{name: (direction, bits)}`` of the generated top (with ``clock_gate``: also
        ``clk_en``, one bit per tile)."""
        ports = split_ports(self.rows, self.cols, self.tile, self.mac.width,
                            self.mac.acc_width, self.style, dataflow=self.dataflow,
                            double_buffer=self.double_buffer, fusion=self.fusion)
        if self.clock_gate:
            _, _, gr, gc = self.grid
            ports = {"clk_en": ("in", gr * gc), **ports}
        return ports

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
                           fold_overlap=self.fold_overlap, fusion=self.fusion)


def split_ports(rows, cols, tile, n, W, style="mux", *, dataflow="ws", double_buffer=None,
                fusion="none"):
    """``{name: (direction, bits)}`` of ``splittable_array`` (see the module doc), in
    port order. ``dataflow="os"``: the OS ports (``double_buffer``: ``a_last`` instead of
    ``a_drain``). ``fusion``: one more left-edge lane per digit tag ``t``
    (:data:`hdl.fusion.TAGS`), ``a_t`` after the row flag and ``a_t_x`` after its ``_x``
    lanes, timed like ``a_in``."""
    _check_style(style)
    double_buffer = _check_pe(dataflow, double_buffer)
    tr, tc, gr, gc = tile_grid(rows, cols, tile)
    R, C = rows, cols
    tags = TAGS[fusion]
    tag = {f"a_{t}": ("in", R) for t in tags}
    tag_x = {f"a_{t}_x": ("in", (gc - 1) * R) for t in tags}
    if dataflow == "ws":
        ports = {"a_in": ("in", R * n), "a_swap": ("in", R), "a_valid": ("in", R), **tag,
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
                         a_swap_x=("in", (gc - 1) * R), a_valid_x=("in", (gc - 1) * R),
                         **tag_x)
        return ports
    flag = os_flag(double_buffer)
    L = R + C - 1
    ports = {"a_in": ("in", R * n), f"a_{flag}": ("in", R), **tag, "b_in": ("in", C * n),
             "c_out": ("out", L * W), "c_valid": ("out", L)}
    if gr > 1:          # both styles: row_cut cuts the drain chain
        ports.update(row_cut=("in", gr - 1), b_in_x=("in", (gr - 1) * C * n),
                     c_out_x=("out", (gr - 1) * C * W), c_valid_x=("out", (gr - 1) * C))
    if gc > 1:          # both styles: so does col_cut
        ports.update(col_cut=("in", gc - 1), a_in_x=("in", (gc - 1) * R * n),
                     **{f"a_{flag}_x": ("in", (gc - 1) * R)}, **tag_x,
                     l_out_x=("out", (gc - 1) * R * W), l_valid_x=("out", (gc - 1) * R))
    return ports


def _check_style(style):
    if style not in STYLES:
        raise ConfigError("style", f"unknown style {style!r}; allowed: "
                                     f"{', '.join(STYLES)}")


def _check_pe(dataflow, double_buffer):
    """The PE variant (``double_buffer``, None for the default) of a split array of
    ``dataflow``; ConfigError for an unknown dataflow or the compact WS PE (a WS
    sub-array needs the shadow weights)."""
    if dataflow not in DATAFLOWS:
        raise ConfigError("dataflow", f"unknown dataflow {dataflow!r}; allowed: "
                                        f"{', '.join(DATAFLOWS)}")
    if double_buffer is None:
        return default_double_buffer(dataflow)
    if dataflow == "ws" and not double_buffer:
        raise ConfigError("double_buffer", "the splittable WS array needs the "
                                           "double-buffered PE (shadow weights), not the "
                                           "compact one")
    return bool(double_buffer)


def split_verilog(rows, cols, tile, mac, *, style="mux", stats=None, features=FEATURES,
                  dataflow="ws", double_buffer=None, cache=True, clock_gate=False,
                  fusion="none", pe_gate=False):
    """Verilog text (module ``pe`` then module ``splittable_array``) of an R x C
    splittable array of ``tile`` tiles, dataflow ``"ws"`` or ``"os"`` (``double_buffer``:
    the OS PE with a separate drain register, for fold overlap). ``stats``, if a dict,
    receives ``seconds`` and ``bytes``. ``features``: for area breakdowns only (see
    :data:`FEATURES`). ``clock_gate``: one clock gate per tile, enabled by the port
    ``clk_en[GR*GC]`` (:mod:`hdl.clock_gate`). ``fusion``: the fused digit PE and its
    tag lanes (:class:`SplitConfig`). ``pe_gate``: clock gates inside every (WS) PE,
    enabled by its valid bits (:mod:`hdl.pe_gate`)."""
    t0 = time.perf_counter()
    tr, tc, _, _ = tile_grid(rows, cols, tile)
    _check_style(style)
    double_buffer = _check_pe(dataflow, double_buffer)
    bad = set(features) - set(FEATURES)
    if bad:
        raise ValueError(f"unknown split features {sorted(bad)}; allowed: {', '.join(FEATURES)}")
    features = tuple(features)
    ports = split_ports(rows, cols, (tr, tc), mac.width, mac.acc_width, style,
                        dataflow=dataflow, double_buffer=double_buffer, fusion=fusion)
    tags = TAGS[fusion]
    if dataflow == "ws":
        pe = pe_verilog(mac, "ws", cache=cache, fusion=fusion, pe_gate=pe_gate)
        top = ws_split_top(rows, cols, tr, tc, mac.width, mac.acc_width, features, style, ports,
                           tags)
        kind = "WS"
    else:
        pe = pe_verilog(mac, "os", double_buffer=double_buffer, cache=cache, fusion=fusion)
        top = os_split_top(rows, cols, tr, tc, mac.width, mac.acc_width, features, style,
                           double_buffer, ports, tags)
        kind = "OS double-buffered" if double_buffer else "OS"
    if clock_gate:
        top = gate_top(top, (rows // tr) * (cols // tc), "(r/TR)*GC + c/TC") + "\n" \
            + CLOCK_GATE_MODULE
        kind += " (clock-gated per tile)"
    if pe_gate:
        kind += " (clock gates in every PE)"
    header = (f"// {SPLIT_TOPLEVEL}: {rows}x{cols} splittable {kind} array of {tr}x{tc} tiles "
              f"({style} style) "
              f"of gate-level MAC PEs ({mac.slug}"
              f"{'' if fusion == 'none' else ', fused digits up to ' + fusion})\n"
              f"// generated by hdl.split; do not edit\n")
    return assemble(header, pe, top, t0, stats)
