"""The split tile's top: the splittable WS array (:mod:`hdl.split`, ``ports`` style) cut
into its ``G x G`` tiles, each with its own memories and feeders/collector
(:class:`~hdl.tile.split.member.SplitMember`), and the controller that stages GEMMs per
sub-array of a mode and starts them together.

Host interface: the ports of :func:`hdl.tile.host.host_ports` for one tile, plus
``host_sub``, ``row_cut``, ``col_cut``, ``gemm_go`` (inputs) and ``tile_done`` (output,
one bit per tile):

* WRITE / READ (``host_op`` 1 / 2): the memories of tile ``host_sub`` (row-major in the
  grid; past the last tile, or a bank/address outside its memories: ADDR_RANGE).
* GEMM (``host_op`` 3): ``mode`` must be :data:`~hdl.tile.split.config.SPLIT_MODE`; the
  mode's cuts are ``row_cut``/``col_cut`` (bit b-1: cut at tile boundary b); the command
  *stages* its fields (``a_base`` .. ``accumulate``) for sub-array ``host_sub`` of that
  mode (row-major), into every tile of it with the tile's role. ``gemm_go`` = 0: only
  that (``done`` after the check cycle). ``gemm_go`` = 1: stage, then start every
  sub-array staged since the last start, all on the same edge; ``done`` when all of them
  are done. Errors (``done`` and ``error`` after the check cycle; the command is then
  dropped, earlier stagings kept): MODE (``mode`` != SPLIT_MODE, ``host_sub`` past the
  mode's sub-arrays, or cuts other than those of the sub-arrays already staged), SHAPE (M,
  K or N = 0), NO_FIT (the sub-array's regions past a tile's memories), OVERLAP (A or B
  stride shorter than one block), BUSY (any op while a GEMM runs; it goes on).
* ``tile_done[t]``: tile t finished its part of the last start (the sub-array's ``done``
  is its bottom-right tile's).

Timing: edge 0 samples the command, cycle 1 checks it, the tiles start with edge 1, as
the lone WS tile's timeline (:mod:`hdl.tile.ws`), each sub-array on its own shape
(:mod:`hdl.tile.split.member`; cycles: :mod:`sim.models.split_tile`).
"""
from amaranth.hdl import Module, Instance, ClockSignal, ResetSignal, Cat, Signal, Mux
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.hdl import unsigned

from ...emit import to_verilog
from ...split import SPLIT_TOPLEVEL, split_verilog
from ..config import TileError, HostOp, Mem, DIM_BITS, ADDR_BITS
from ..host import host_ports, clamp
from .config import SplitTileConfig, SPLIT_MODE, bands
from .member import SplitMember, FIELD_PORTS

__all__ = ["SplitTile", "split_tile_verilog", "SPLIT_TILE_TOP", "split_ports"]

SPLIT_TILE_TOP = "systolic_split_tile"
_COUNTERS = ("cnt_a_reads", "cnt_b_reads", "cnt_c_reads", "cnt_c_writes")
_CMD = ("a_base", "b_base", "c_base", "a_stride", "b_stride", "m", "k", "n", "accumulate",
        "mode", "host_sub", "row_cut", "col_cut", "gemm_go")


def split_ports(cfg: SplitTileConfig):
    """The split tile's host interface (ports of its top, sampled on rising edges)."""
    G = cfg.grid
    ports = host_ports(cfg.sub)
    ports |= {"host_sub": In(4), "row_cut": In(G - 1), "col_cut": In(G - 1),
              "gemm_go": In(1), "tile_done": Out(G * G)}
    return ports


def _member_block(m, cfg, k):
    """A :class:`SplitMember` and its memories (submodules ``t{k}_...``)."""
    sub = cfg.sub
    mb = SplitMember(sub, cfg.grid)
    m.submodules[f"t{k}_logic"] = mb

    def bank(name, width, depth, raddr, ren, waddr, wdata, wen):
        mem = Memory(shape=unsigned(width), depth=depth, init=[])
        m.submodules[f"t{k}_{name}"] = mem
        rp, wp = mem.read_port(), mem.write_port()
        m.d.comb += [rp.addr.eq(raddr), rp.en.eq(ren), wp.addr.eq(waddr),
                     wp.data.eq(wdata), wp.en.eq(wen)]
        return rp.data

    for mem_name, banks in (("a", sub.a_banks), ("b", sub.b_banks)):
        port = lambda x: getattr(mb, f"{mem_name}_{x}")   # noqa: E731
        datas = [bank(f"{mem_name}_bank{i}", sub.width, sub.depth, port("raddr"),
                      port("ren"), port("waddr"), port("wdata"), port("wen")[i])
                 for i in range(banks)]
        m.d.comb += port("rdata").eq(Cat(*datas))
    for d in range(sub.c_banks):
        p = lambda x: getattr(mb, f"c{d}_{x}")   # noqa: E731
        m.d.comb += p("rdata").eq(bank(f"c_bank{d}", sub.c_width, sub.c_depth, p("raddr"),
                                       p("ren"), p("waddr"), p("wdata"), p("wen")))
    return mb


def _band_signals(m, word, G, name):
    """Per tile row (column) g: (band, offset, size) signals of the cut ``word``, and the
    number of bands (a table over the 2^(G-1) words)."""
    band = [Signal(range(G), name=f"{name}_band{g}") for g in range(G)]
    off = [Signal(range(G), name=f"{name}_off{g}") for g in range(G)]
    size = [Signal(range(G + 1), name=f"{name}_size{g}") for g in range(G)]
    count = Signal(range(G + 1), name=f"{name}_count")
    with m.Switch(word):
        for w in range(1 << (G - 1)):
            with m.Case(w):
                tab = bands(w, G)
                for g, (b, o, s) in enumerate(tab):
                    m.d.comb += [band[g].eq(b), off[g].eq(o), size[g].eq(s)]
                m.d.comb += count.eq(tab[-1][0] + 1)
    return band, off, size, count


def _ceil_div(x, q, G):
    """ceil(x / q) for a run-time q in 1..G (a multiplexer of constant divisions)."""
    out = x
    for d in range(2, G + 1):
        out = Mux(q == d, (x + (d - 1)) // d, out)
    return out


class SplitTile(wiring.Component):
    def __init__(self, cfg: SplitTileConfig):
        self.cfg = cfg
        super().__init__(split_ports(cfg))

    def elaborate(self, platform):
        cfg = self.cfg
        sub = cfg.sub
        m = Module()
        T, G = sub.rows, cfg.grid
        NT = G * G
        R = C = cfg.size
        n, W, P = sub.array.mac.width, sub.array.mac.acc_width, sub.array.latency
        ba, bb = sub.beats_a, sub.beats_b
        lt = T.bit_length() - 1
        mbs = [_member_block(m, cfg, k) for k in range(NT)]

        # ---- command registers, check cycle ---------------------------------------------
        f = {k: Signal(len(getattr(self, k)), name=f"f_{k}") for k in _CMD}
        check, running = Signal(), Signal()
        cmd_done, error, err_code = Signal(), Signal(), Signal(3)
        staged, run_mask = Signal(NT), Signal(NT)
        st_rc, st_cc, run_rc = Signal(G - 1), Signal(G - 1), Signal(G - 1)
        busy = Signal()
        m.d.comb += busy.eq(check | Cat(*(mb.busy for mb in mbs)).any())
        hv, op = self.host_valid, self.host_op

        def fail(code):
            m.d.sync += [cmd_done.eq(1), error.eq(1), err_code.eq(code)]

        with m.If(hv & (op == HostOp.GEMM) & ~busy):
            m.d.sync += [check.eq(1), cmd_done.eq(0), error.eq(0), err_code.eq(0)]
            m.d.sync += [f[k].eq(getattr(self, k)) for k in _CMD]
        with m.If(check):
            m.d.sync += check.eq(0)
        with m.If(hv & (op != 0) & busy):           # refused; a running GEMM goes on
            m.d.sync += [error.eq(1), err_code.eq(TileError.BUSY)]

        # roles of the command's mode (from the registered cut words)
        rband, roff, rsize, rcount = _band_signals(m, f["row_cut"], G, "rc")
        cband, coff, csize, ccount = _band_signals(m, f["col_cut"], G, "cc")
        sel = Signal(NT)
        nr, nc = Signal(range(G + 1)), Signal(range(G + 1))
        for t in range(NT):
            g, j = divmod(t, G)
            m.d.comb += sel[t].eq(rband[g] * ccount + cband[j] == f["host_sub"])
            with m.If(sel[t]):
                m.d.comb += [nr.eq(rsize[g]), nc.eq(csize[j])]
        kbs, nbs = Signal(DIM_BITS), Signal(DIM_BITS)
        m.d.comb += [kbs.eq(_ceil_div((f["k"] + (T - 1)) >> lt, nr, G)),
                     nbs.eq(_ceil_div((f["n"] + (T - 1)) >> lt, nc, G))]
        folds = Signal(2 * DIM_BITS)
        m.d.comb += folds.eq(kbs * nbs)
        blk_a = Signal(ADDR_BITS + 4)
        m.d.comb += blk_a.eq(f["m"] * ba)
        blk_b = T * bb
        end_a, end_b, end_c = (Signal(2 * ADDR_BITS + 4) for _ in range(3))
        m.d.comb += [
            end_a.eq(f["a_base"] + clamp(m, kbs - 1, sub.depth)
                     * clamp(m, f["a_stride"], sub.depth) + blk_a),
            end_b.eq(f["b_base"] + (clamp(m, folds, sub.depth + 1) - 1)
                     * clamp(m, f["b_stride"], sub.depth) + blk_b),
            end_c.eq(f["c_base"] + clamp(m, nbs, sub.c_depth + 1) * f["m"])]
        ok = Signal()
        other_mode = (staged != 0) & ((f["row_cut"] != st_rc) | (f["col_cut"] != st_cc))
        with m.If(check):
            with m.If((f["mode"] != SPLIT_MODE) | (f["host_sub"] >= rcount * ccount) |
                      other_mode):
                fail(TileError.MODE)
            with m.Elif((f["m"] == 0) | (f["k"] == 0) | (f["n"] == 0)):
                fail(TileError.SHAPE)
            with m.Elif((end_a > sub.depth) | (end_b > sub.depth) | (end_c > sub.c_depth)):
                fail(TileError.NO_FIT)
            with m.Elif(((kbs > 1) & (f["a_stride"] < blk_a)) |
                        ((folds > 1) & (f["b_stride"] < blk_b))):
                fail(TileError.OVERLAP)
            with m.Else():
                m.d.comb += ok.eq(1)
        start = Signal(NT)
        with m.If(ok & f["gemm_go"]):
            m.d.comb += start.eq(staged | sel)
            m.d.sync += [run_mask.eq(staged | sel), staged.eq(0), running.eq(1),
                         run_rc.eq(f["row_cut"])]
        with m.Elif(ok):
            m.d.sync += [staged.eq(staged | sel), st_rc.eq(f["row_cut"]),
                         st_cc.eq(f["col_cut"]), cmd_done.eq(1)]
        all_done = Cat(*(mb.done | ~run_mask[t] for t, mb in enumerate(mbs))).all()
        with m.If(running & all_done):
            m.d.sync += [running.eq(0), cmd_done.eq(1)]

        # ---- per tile: the staged fields and role (loaded when ok & sel) ---------------
        rs, cs = nr * T, nc * T
        gap = rs + cs + (P - 1)
        for t, mb in enumerate(mbs):
            g, j = divmod(t, G)
            load = ok & sel[t]
            now = {k: f[k] for k in FIELD_PORTS if k in f}
            now |= {"kbs": kbs, "nbs": nbs, "slots": rs, "own_from": rs - T,
                    "gap_hold": Mux(gap > bb, gap - bb, 0),
                    "delay": (roff[g] + coff[j]) * T, "collect": roff[g] == rsize[g] - 1}
            for k, v in now.items():
                port = getattr(mb, k)
                reg = Signal(len(port), name=f"t{t}_{k}")
                with m.If(load):
                    m.d.sync += reg.eq(v)
                m.d.comb += port.eq(Mux(load, v, reg))
            m.d.comb += mb.start.eq(start[t])

        # ---- host WRITE/READ ---------------------------------------------------------------
        mem_a, mem_b, mem_c = (self.host_mem == Mem.A), (self.host_mem == Mem.B), \
            (self.host_mem == Mem.C)
        in_range = Signal()
        m.d.comb += in_range.eq(
            (self.host_sub < NT) &
            ((mem_a & (self.host_bank < sub.a_banks) & (self.host_addr < sub.depth)) |
             (mem_b & (self.host_bank < sub.b_banks) & (self.host_addr < sub.depth)) |
             (mem_c & (self.host_bank < sub.c_banks) & (self.host_addr < sub.c_depth))))
        rw = (op == HostOp.WRITE) | (op == HostOp.READ)
        with m.If(hv & rw & ~busy & ~in_range):
            fail(TileError.ADDR_RANGE)
        rd_sub = Signal(4)
        m.d.sync += rd_sub.eq(self.host_sub)
        for t, mb in enumerate(mbs):
            m.d.comb += [mb.host_ok.eq(hv & rw & ~busy & in_range & (self.host_sub == t)),
                         mb.host_op.eq(op), mb.host_mem.eq(self.host_mem),
                         mb.host_bank.eq(self.host_bank), mb.host_addr.eq(self.host_addr),
                         mb.host_wdata.eq(self.host_wdata)]
        with m.Switch(rd_sub):
            for t, mb in enumerate(mbs):
                with m.Case(t):
                    m.d.comb += [self.host_rdata.eq(mb.host_rdata),
                                 self.host_rvalid.eq(mb.host_rvalid)]
        if sub.counters:
            with m.Switch(self.host_sub):
                for t, mb in enumerate(mbs):
                    with m.Case(t):
                        m.d.comb += [getattr(self, c).eq(getattr(mb, c)) for c in _COUNTERS]
        m.d.comb += [self.busy.eq(busy), self.done.eq(cmd_done | (running & all_done)),
                     self.error.eq(error), self.err_code.eq(err_code),
                     self.tile_done.eq(Cat(*(mb.done for mb in mbs)))]

        # ---- the splittable array (ports style): tile (g, j) takes activations from a_in
        # (j = 0) or the a_in_x lanes of column boundary j, weights from w_in (g = 0) or
        # the w_in_x lanes of row boundary g; its results are on c_out (g = G-1) or the
        # c_out_x taps of row boundary g+1 (partial sums where that boundary is not cut).
        a_in, a_sw, a_v = [None] * R, [None] * R, [None] * R
        a_x, a_sw_x, a_v_x = ([None] * ((G - 1) * R) for _ in range(3))
        w_in, w_en = [None] * C, [None] * C
        w_x, w_en_x = [None] * ((G - 1) * C), [None] * ((G - 1) * C)
        c_out, c_valid = Signal(C * W), Signal(C)
        c_out_x, c_valid_x = Signal((G - 1) * C * W), Signal((G - 1) * C)
        for k, mb in enumerate(mbs):
            g, j = divmod(k, G)
            for r in range(T):
                row = g * T + r
                lanes = (a_in, a_sw, a_v, row) if j == 0 else \
                    (a_x, a_sw_x, a_v_x, (j - 1) * R + row)
                lanes[0][lanes[3]] = mb.arr_a_in[r * n:(r + 1) * n]
                lanes[1][lanes[3]] = mb.arr_a_swap[r]
                lanes[2][lanes[3]] = mb.arr_a_valid[r]
            for c in range(T):
                col = j * T + c
                if g == 0:
                    w_in[col], w_en[col] = mb.arr_w_in[c * n:(c + 1) * n], mb.arr_w_en[c]
                else:
                    i = (g - 1) * C + col
                    w_x[i], w_en_x[i] = mb.arr_w_in[c * n:(c + 1) * n], mb.arr_w_en[c]
                if g == G - 1:
                    out, val = c_out[col * W:(col + 1) * W], c_valid[col]
                else:
                    i = g * C + col
                    out, val = c_out_x[i * W:(i + 1) * W], c_valid_x[i]
                m.d.comb += [mb.arr_c_out[c * W:(c + 1) * W].eq(out),
                             mb.arr_c_valid[c].eq(val)]
        m.submodules.array = Instance(
            SPLIT_TOPLEVEL, i_clk=ClockSignal(), i_rst=ResetSignal(), i_a_in=Cat(*a_in),
            i_a_swap=Cat(*a_sw), i_a_valid=Cat(*a_v), i_w_in=Cat(*w_in), i_w_en=Cat(*w_en),
            o_c_out=c_out, o_c_valid=c_valid, i_row_cut=run_rc, i_w_in_x=Cat(*w_x),
            i_w_en_x=Cat(*w_en_x), o_c_out_x=c_out_x, o_c_valid_x=c_valid_x,
            i_a_in_x=Cat(*a_x), i_a_swap_x=Cat(*a_sw_x), i_a_valid_x=Cat(*a_v_x))
        return m


def split_tile_verilog(cfg: SplitTileConfig):
    """Verilog of the split tile: top ``systolic_split_tile`` then the splittable
    array's modules (``pe``, ``splittable_array``, ports style)."""
    top = to_verilog(SplitTile(cfg), name=SPLIT_TILE_TOP)
    arr = split_verilog(cfg.size, cfg.size, cfg.sub.rows, cfg.sub.array.mac, style="ports")
    return (f"// {SPLIT_TILE_TOP}: {cfg.size}x{cfg.size} split tile ({cfg.slug}); "
            f"generated by hdl.tile; do not edit\n" + top + "\n" + arr)
