"""Hierarchical Verilog for an R x C systolic array of gate-level MAC PEs.

The PE (:mod:`hdl.pe`) is emitted once by Amaranth as module ``pe``; the top module
``systolic_array`` is written here as plain Verilog-2005 text with nested ``generate``
loops that instantiate ``pe`` R*C times. The text of the top is the same size for every
R and C (only the ``localparam`` values change), so emission time and file size do not
grow with the array. Everything is deterministic: same arguments, same bytes.

Ports of ``systolic_array`` (n = 4 operand bits, W = acc width; lane i of a flat vector
is bits ``[i*w +: w]``), all inputs sampled on the rising edge of ``clk``, ``rst``
synchronous and active high (clears every register):

Weight stationary (``dataflow="ws"``)::

    input  [R*n-1:0] a_in      activation entering row r from the left
    input  [R-1:0]   a_swap    with a_in: PE uses (and keeps) its shadow weight from now on
    input  [R-1:0]   a_valid   with a_in: marks a real activation (for c_valid)
    input  [C*n-1:0] w_in      weight entering column c's shadow shift chain at the top
    input  [C-1:0]   w_en      shift column c's shadow chain down by one PE
    output [C*W-1:0] c_out     partial sums leaving the bottom of column c
    output [C-1:0]   c_valid   c_out lane c holds a result

Output stationary (``dataflow="os"``), L = R + C - 1 output lanes, one per
anti-diagonal (see :mod:`hdl.pe`: every PE drains down-left, so diagonal ``d = r + c``
leaves through lane ``d``: PE(d, 0) for d < R, else PE(R-1, d-R+1))::

    input  [R*n-1:0] a_in      A entering row r from the left
    input  [R-1:0]   a_drain   compact PE (default): drain window, from the last k
                               for min(R, C) cycles; no reset, see hdl.pe.init_cycles
    input  [R-1:0]   a_last    double_buffer=True instead: the tile's last k
    input  [C*n-1:0] b_in      B entering column c from the top
    output [L*W-1:0] c_out     finished sums leaving anti-diagonal lane d
    output [L-1:0]   c_valid   c_out lane d holds a finished sum (compact PE: or a
                               drain zero)

Exact timing is documented in :mod:`sim.models.cycles`.
"""
import re
import time
from dataclasses import dataclass, field

from .cache import cached_verilog
from .clock_gate import CLOCK_GATE_MODULE, gate_top
from .pe_gate import check_pe_gate, gated_pe_verilog, with_clock_gate_module
from .mac import ConfigError, MacConfig
from .pe import build_pe, default_double_buffer, os_flag, pe_kind
from .fusion import TAGS, check_fusion, precisions_of

__all__ = ["ArrayConfig", "array_verilog", "pe_verilog", "TOPLEVEL", "DATAFLOWS", "os_chains",
           "DIM_RANGE", "LINT_WAIVERS"]

TOPLEVEL = "systolic_array"
DATAFLOWS = ("ws", "os")
#: Rows and columns an array may have.
DIM_RANGE = range(1, 257)


@dataclass(frozen=True)
class ArrayConfig:
    """A systolic array: ``rows`` x ``cols`` PEs (1..256 each), ``dataflow`` "ws" or
    "os", every PE a MAC configured by ``mac`` (4-bit operands).

    ``double_buffer`` picks the PE (:mod:`hdl.pe`): True for the PE with a second
    register (WS: shadow weights and a swap flag; OS: a separate drain register), False
    for the compact PE (WS: the weights are the shift chain; OS: the accumulator is the
    drain chain). ``fold_overlap`` is the schedule: consecutive folds overlap, which
    needs the double-buffered PE. Defaults: WS double-buffered; OS double-buffered
    exactly when ``fold_overlap`` (the OS drain register serves nothing else).
    """
    rows: int = 4
    cols: int = 4
    dataflow: str = "ws"
    mac: MacConfig = field(default_factory=MacConfig)
    fold_overlap: bool = False
    double_buffer: bool | None = None
    clock_gate: bool = False
    fusion: str = "none"
    pe_gate: bool = False

    def __post_init__(self):
        if not isinstance(self.clock_gate, bool):
            raise ConfigError("clock_gate", f"{self.clock_gate!r}; allowed: true, false")
        check_pe_gate(self.pe_gate, self.dataflow)
        check_fusion(self.fusion, numerics=self.mac.numerics if isinstance(
            self.mac, MacConfig) else "int4")
        for field_name, value in (("rows", self.rows), ("cols", self.cols)):
            if isinstance(value, bool) or not isinstance(value, int) or value not in DIM_RANGE:
                raise ConfigError(field_name, f"{value!r} is out of range; allowed: "
                                          f"{DIM_RANGE.start}..{DIM_RANGE.stop - 1}")
        if self.dataflow not in DATAFLOWS:
            raise ConfigError("dataflow", f"unknown dataflow {self.dataflow!r}; "
                                            f"allowed: {', '.join(DATAFLOWS)}")
        if not isinstance(self.mac, MacConfig):
            raise ConfigError("mac", f"expected a MacConfig, got {type(self.mac).__name__}")
        if self.mac.width != 4:
            raise ConfigError("width", "the array supports 4-bit operands only; "
                                         "allowed: 4")
        if not isinstance(self.fold_overlap, bool):
            raise ConfigError("fold_overlap", f"{self.fold_overlap!r}; allowed: true, false")
        db = self.double_buffer
        if db is None:
            db = self.fold_overlap or default_double_buffer(self.dataflow)
            object.__setattr__(self, "double_buffer", db)
        if not isinstance(db, bool):
            raise ConfigError("double_buffer", f"double_buffer={db!r}; allowed: true, false")
        if self.fold_overlap and not db:
            raise ConfigError("fold_overlap", "overlapping folds needs the double-buffered "
                                              "PE, not the compact one")
        if self.dataflow == "os" and db and not self.fold_overlap:
            raise ConfigError("fold_overlap", "the double-buffered OS PE exists for fold "
                                              "overlap; overlap the folds or use the compact PE")

    @property
    def pe_kind(self):
        """:func:`hdl.pe.pe_kind` of this array's PE."""
        return pe_kind(self.dataflow, self.double_buffer)

    @property
    def slug(self):
        """File-name-safe name of the hardware (WS: fold_overlap is schedule only)."""
        gate = ("_cg" if self.clock_gate else "") + ("_pg" if self.pe_gate else "")
        fused = "" if self.fusion == "none" else f"_f{self.fusion}"
        return re.sub(r"[^A-Za-z0-9_]", "_", f"array_{self.pe_kind}{fused}_{self.rows}x"
                      f"{self.cols}{gate}_{self.mac.slug}")

    @property
    def precisions(self):
        """The run-time precisions this array runs (:func:`hdl.fusion.precisions_of`)."""
        return precisions_of(self.fusion)

    @property
    def out_lanes(self):
        """Output lanes of ``c_out``: WS one per column, OS one per anti-diagonal."""
        return self.cols if self.dataflow == "ws" else self.rows + self.cols - 1

    @property
    def latency(self):
        """The PE's latency (:attr:`hdl.pe.WSPE.latency`): the exact result cycles of
        :mod:`sim.models.cycles` add it once to the systolic skew (WS: ``C[m][c]`` leaves
        column c in cycle ``base + m + R + c + latency``)."""
        return self.mac.latency

    def verilog(self, *, stats=None, cache=True):
        """:func:`array_verilog` of this configuration."""
        return array_verilog(self.rows, self.cols, self.dataflow, self.mac,
                             double_buffer=self.double_buffer, stats=stats, cache=cache,
                             clock_gate=self.clock_gate, fusion=self.fusion,
                             pe_gate=self.pe_gate)

# Verilator -Wall findings waived, and why. All but the first are switched off around
# the Amaranth-emitted ``pe`` module only and switched on again after it.
LINT_WAIVERS = {
    "DECLFILENAME": "one file holds both modules; ``pe`` does not match the file name "
                    "(the file is named after the top, systolic_array.v)",
    "UNUSEDSIGNAL": "the flat wiring vectors of the top include the pass-through outputs of "
                    "the last column/row (a_out, sw_out, v_out, w_out, b_out, last_out), "
                    "which have no consumer at the array edge; inside the PE the carry-out "
                    "of the final adder is unused by design (sums are mod 2**W)",
    "PROCASSINIT": "Amaranth declares every register with its reset value as an initial "
                   "value and also resets it synchronously; both agree (rst clears it)",
    "WIDTHEXPAND": "behavioral PEs only: Amaranth's own sized arithmetic (a*b + psum) "
                   "extends operands as the Amaranth semantics define",
    "WIDTHTRUNC": "behavioral PEs only: the W-bit result is the low bits of the wider sum",
}
_PE_WAIVED = ("DECLFILENAME", "UNUSEDSIGNAL", "PROCASSINIT", "WIDTHEXPAND", "WIDTHTRUNC")


def pe_verilog(mac, dataflow, *, double_buffer=None, cache=True, fusion="none", name="pe",
               pe_gate=False):
    """Verilog of the PE alone (module ``name``); ``double_buffer`` and ``fusion`` as for
    :func:`hdl.pe.build_pe`; remembered in ``cache`` (:func:`hdl.cache.cached_verilog`).
    ``pe_gate``: the PE with clock gates of its own (:mod:`hdl.pe_gate`), the modules
    ``{name}_core`` and ``{name}`` (instantiating ``clock_gate``, which :func:`assemble`
    adds)."""
    if double_buffer is None:
        double_buffer = default_double_buffer(dataflow)
    module = f"{name}_core" if pe_gate else name
    key = f"pe {dataflow} double_buffer={bool(double_buffer)} {mac!r}"
    if fusion != "none":
        key += f" fusion={fusion}"
    if module != "pe":
        key += f" name={module}"
    if pe_gate:
        key += " pe_gate"
    text = cached_verilog(key, lambda: build_pe(mac, dataflow, double_buffer=double_buffer,
                                                fusion=fusion, pe_gate=pe_gate),
                          name=module, cache=cache)
    if not pe_gate:
        return text
    return gated_pe_verilog(text, mac, dataflow, double_buffer=double_buffer, fusion=fusion,
                            name=name)


def add_tag_lanes(text, tags, *, net, port, pin):
    """A top module's text with one more 1-bit lane per digit tag (:mod:`hdl.fusion`),
    each wired exactly like an existing 1-bit flag that travels with A: every line that
    mentions the flag's ``net`` (e.g. ``v_h``) is repeated once per tag, with the net,
    the top port (``port``, e.g. ``a_valid``) and the PE pins (``.{pin}_in``,
    ``.{pin}_out``) renamed to the tag's (``{tag}_h``, ``a_{tag}``, ``.{tag}_in``...)."""
    out = []
    for line in text.splitlines(True):
        out.append(line)
        if net in line or f"[{port}]" in line or f"] {port}\n" in line \
                or line.rstrip().endswith(f" {port},"):
            for t in tags:
                out.append(line.replace(net, f"{t}_h").replace(port, f"a_{t}")
                           .replace(f".{pin}_in(", f".{t}_in(")
                           .replace(f".{pin}_out(", f".{t}_out("))
    return "".join(out)


def module_head(name, ports, **params):
    """``module name (clk, rst, ports...);`` plus one ``localparam`` per keyword.
    ``ports``: ``(direction, width, port name)`` triples, in order."""
    lines = ["    input  wire clk", "    input  wire rst"]
    lines += [f"    {d:<6} wire [{w - 1}:0] {p}" for d, w, p in ports]
    text = f"module {name} (\n" + ",\n".join(lines) + "\n);\n"
    return text + "".join(f"    localparam {k} = {v};\n" for k, v in params.items())


def _ws_top(R, C, n, W, double_buffer=True):
    ports = [("input", R * n, "a_in"), ("input", R, "a_swap"), ("input", R, "a_valid"),
             ("input", C * n, "w_in"), ("input", C, "w_en"),
             ("output", C * W, "c_out"), ("output", C, "c_valid")]
    body = _WS_BODY
    if not double_buffer:             # the compact PE has no swap flag: drop its nets
        ports = [p for p in ports if p[2] != "a_swap"]
        body = "".join(line for line in body.splitlines(True) if "sw_h" not in line)
    return module_head(TOPLEVEL, ports, R=R, C=C, N=n, W=W) + body


_WS_BODY = """\
    // Horizontal nets: (R rows) x (C+1 positions); position c feeds PE column c.
    // Vertical nets:   (R+1 positions) x (C columns); position r feeds PE row r.
    // One net per PE port (arrays of nets, not slices of one wide vector): an
    // event-driven simulator then wakes only the PE a changed value feeds.
    /* verilator lint_off UNUSEDSIGNAL */
    wire [N-1:0] a_h  [0:R*(C+1)-1];
    wire         sw_h [0:R*(C+1)-1];
    wire         v_h  [0:R*(C+1)-1];
    wire [N-1:0] w_v  [0:(R+1)*C-1];
    /* verilator lint_on UNUSEDSIGNAL */
    wire [W-1:0] p_v  [0:(R+1)*C-1];
    wire         pv_v [0:(R+1)*C-1];
    genvar r, c;
    generate
        for (r = 0; r < R; r = r + 1) begin : edge_left
            assign a_h[r*(C+1)] = a_in[r*N +: N];
            assign sw_h[r*(C+1)] = a_swap[r];
            assign v_h[r*(C+1)] = a_valid[r];
        end
        for (c = 0; c < C; c = c + 1) begin : edge_top
            assign w_v[c] = w_in[c*N +: N];
            assign p_v[c] = {W{1'b0}};
            assign pv_v[c] = 1'b0;
            assign c_out[c*W +: W] = p_v[R*C+c];
            assign c_valid[c] = pv_v[R*C+c];
        end
        for (r = 0; r < R; r = r + 1) begin : row
            for (c = 0; c < C; c = c + 1) begin : col
                pe u_pe (
                    .clk(clk),
                    .rst(rst),
                    .a_in(a_h[r*(C+1)+c]),
                    .sw_in(sw_h[r*(C+1)+c]),
                    .v_in(v_h[r*(C+1)+c]),
                    .w_in(w_v[r*C+c]),
                    .w_en(w_en[c]),
                    .psum_in(p_v[r*C+c]),
                    .pv_in(pv_v[r*C+c]),
                    .a_out(a_h[r*(C+1)+c+1]),
                    .sw_out(sw_h[r*(C+1)+c+1]),
                    .v_out(v_h[r*(C+1)+c+1]),
                    .w_out(w_v[(r+1)*C+c]),
                    .psum_out(p_v[(r+1)*C+c]),
                    .pv_out(pv_v[(r+1)*C+c])
                );
            end
        end
    endgenerate
endmodule
"""


def os_chains(R, C):
    """Per output lane d of an R x C OS array: the PEs (i, j) in the order their sums
    leave it (lane d's exit PE first: (d, 0) for d < R, else (R-1, d-R+1); then up and
    to the right along the anti-diagonal)."""
    lanes = []
    for d in range(R + C - 1):
        i, j = (d, 0) if d < R else (R - 1, d - R + 1)
        chain = []
        while i >= 0 and j < C:
            chain.append((i, j))
            i, j = i - 1, j + 1
        lanes.append(chain)
    return lanes


def os_out_lanes(d, dv):
    """Verilog (generate items) driving the R + C - 1 anti-diagonal output lanes of an
    OS top from the drain nets ``d[r*C+c]`` / ``dv[r*C+c]`` of PE(r, c)."""
    return f"""\
        // Output lane r (0..R-1): PE(r, 0); lane R-1+c (c = 1..C-1): PE(R-1, c).
        for (r = 0; r < R; r = r + 1) begin : out_left
            assign c_out[r*W +: W] = {d}[r*C];
            assign c_valid[r] = {dv}[r*C];
        end
        for (c = 1; c < C; c = c + 1) begin : out_bottom
            assign c_out[(R-1+c)*W +: W] = {d}[(R-1)*C+c];
            assign c_valid[R-1+c] = {dv}[(R-1)*C+c];
        end
"""


def _os_top(R, C, n, W, double_buffer):
    flag = os_flag(double_buffer)
    L = R + C - 1
    dv_in = "\n                    .dv_in(dv_in_d),\n" if double_buffer else "\n"
    ind = "\n" + " " * 16
    dv_wire = f"{ind}wire         dv_in_d;" if double_buffer else ""
    dv_chain = f"{ind}    assign dv_in_d = dv_o[(r-1)*C+c+1];" if double_buffer else ""
    dv_end = f"{ind}    assign dv_in_d = 1'b0;" if double_buffer else ""
    head = module_head(TOPLEVEL, [
        ("input", R * n, "a_in"), ("input", R, f"a_{flag}"), ("input", C * n, "b_in"),
        ("output", L * W, "c_out"), ("output", L, "c_valid")], R=R, C=C, N=n, W=W)
    return head + f"""\
    // Horizontal nets: (R rows) x (C+1 positions); position c feeds PE column c.
    // Vertical nets:   (R+1 positions) x (C columns); position r feeds PE row r.
    // Drain nets: d_o[r*C+c] is d_out of PE(r, c); PE(r, c) drains from PE(r-1, c+1)
    // (zero at the top and right edges), so anti-diagonal r+c is one shift chain that
    // leaves at its bottom-left PE: output lane r+c.
    // One net per PE port (arrays of nets, not slices of one wide vector): an
    // event-driven simulator then wakes only the PE a changed value feeds.
    /* verilator lint_off UNUSEDSIGNAL */
    wire [N-1:0] a_h  [0:R*(C+1)-1];
    wire         f_h  [0:R*(C+1)-1];
    wire [N-1:0] b_v  [0:(R+1)*C-1];
    wire [W-1:0] d_o  [0:R*C-1];
    wire         dv_o [0:R*C-1];
    /* verilator lint_on UNUSEDSIGNAL */
    genvar r, c;
    generate
        for (r = 0; r < R; r = r + 1) begin : edge_left
            assign a_h[r*(C+1)] = a_in[r*N +: N];
            assign f_h[r*(C+1)] = a_{flag}[r];
        end
        for (c = 0; c < C; c = c + 1) begin : edge_top
            assign b_v[c] = b_in[c*N +: N];
        end
{os_out_lanes("d_o", "dv_o")}        for (r = 0; r < R; r = r + 1) begin : row
            for (c = 0; c < C; c = c + 1) begin : col
                wire [W-1:0] d_in_d;{dv_wire}
                if (r > 0 && c < C - 1) begin : chain
                    assign d_in_d = d_o[(r-1)*C+c+1];{dv_chain}
                end else begin : chain_end
                    assign d_in_d = {{W{{1'b0}}}};{dv_end}
                end
                pe u_pe (
                    .clk(clk),
                    .rst(rst),
                    .a_in(a_h[r*(C+1)+c]),
                    .{flag}_in(f_h[r*(C+1)+c]),
                    .b_in(b_v[r*C+c]),
                    .d_in(d_in_d),{dv_in}\
                    .a_out(a_h[r*(C+1)+c+1]),
                    .{flag}_out(f_h[r*(C+1)+c+1]),
                    .b_out(b_v[(r+1)*C+c]),
                    .d_out(d_o[r*C+c]),
                    .dv_out(dv_o[r*C+c])
                );
            end
        end
    endgenerate
endmodule
"""


def array_verilog(rows, cols, dataflow, mac, *, double_buffer=None, stats=None, cache=True,
                  clock_gate=False, fusion="none", pe_gate=False):
    """Verilog text (module ``pe`` then module ``systolic_array``) for a ``rows`` x
    ``cols`` array. ``double_buffer`` selects the PE with a second register, needed
    for fold overlap (OS: a separate drain register; WS: shadow weights and the swap
    flag); None: :func:`hdl.pe.default_double_buffer` (WS yes, OS no).
    ``stats``, if a dict, receives ``seconds`` and ``bytes``. ``clock_gate``: one clock
    gate per PE row, enabled by the port ``clk_en[R]`` (:mod:`hdl.clock_gate`).
    ``pe_gate``: clock gates inside every (WS) PE, enabled by its valid bits
    (:mod:`hdl.pe_gate`)."""
    t0 = time.perf_counter()
    if dataflow not in DATAFLOWS:
        raise ValueError(f"unknown dataflow {dataflow!r}; allowed: {', '.join(DATAFLOWS)}")
    if double_buffer is None:
        double_buffer = default_double_buffer(dataflow)
    pe = pe_verilog(mac, dataflow, double_buffer=double_buffer, cache=cache, fusion=fusion,
                    pe_gate=pe_gate)
    if dataflow == "ws":
        top = _ws_top(rows, cols, mac.width, mac.acc_width, double_buffer)
        kind = "WS" if double_buffer else "WS compact (no shadow weights)"
        flag = ("v_h", "a_valid", "v")
    else:
        top = _os_top(rows, cols, mac.width, mac.acc_width, double_buffer)
        kind = "OS double-buffered" if double_buffer else "OS"
        flag = ("f_h", f"a_{os_flag(double_buffer)}", os_flag(double_buffer))
    fused = ""
    if fusion != "none":
        top = add_tag_lanes(top, TAGS[fusion], net=flag[0], port=flag[1], pin=flag[2])
        fused = f", fused digits up to {fusion}"
    if clock_gate:
        top = gate_top(top, rows, "r") + "\n" + CLOCK_GATE_MODULE
        kind += " (clock-gated per row)"
    if pe_gate:
        kind += " (clock gates in every PE)"
    header = (f"// systolic_array: {rows}x{cols} {kind} array of gate-level "
              f"MAC PEs ({mac.slug}{fused})\n// generated by hdl.array; do not edit\n")
    return assemble(header, pe, top, t0, stats)


def assemble(header, pe, top, t0, stats):
    """``header``, the ``pe`` module inside its lint waivers, then ``top``, then the
    ``clock_gate`` module if either instantiates it and ``top`` does not hold it
    (:func:`hdl.pe_gate.with_clock_gate_module`); ``stats`` (a dict, or None) gets
    ``seconds`` since ``t0`` and ``bytes``."""
    off = "".join(f"/* verilator lint_off {w} */\n" for w in _PE_WAIVED)
    on = "".join(f"/* verilator lint_on {w} */\n" for w in _PE_WAIVED)
    text = with_clock_gate_module(header + off + pe.rstrip() + "\n" + on + "\n" + top)
    if isinstance(stats, dict):
        stats["seconds"] = time.perf_counter() - t0
        stats["bytes"] = len(text.encode())
    return text
