"""A split tile: the splittable WS array (:mod:`hdl.split`, ``ports`` style) cut into
all its tiles, each sub-array with its own memories, feeders and collector
(:func:`hdl.tile.top.tile_block`), so independent GEMMs run concurrently from memory.

Host interface: that of :func:`hdl.tile.host.host_ports` for one sub-array's tile, plus
``host_sub`` (which sub-array a WRITE or READ addresses) and ``gemm_mask`` (the
sub-arrays a GEMM command starts, all on the same edge with the same fields, each on its
own memories; none: MODE). A WRITE/READ to ``host_sub`` past the last sub-array raises
ADDR_RANGE. The GEMM's ``mode`` must be :data:`SPLIT_MODE` (every tile its own
sub-array: quad on a 2x2 grid of tiles); any other mode raises MODE in every selected
sub-array (the whole array and the coarser splits are not built). ``done`` is high when
every sub-array of the last command's mask is done; ``error`` if any of them (or the
addressed one) raised it, ``err_code`` the first such code; ``busy`` if any is busy.
Sub-arrays are numbered row-major; sub-array (g, j) sits at PE rows g*T.., columns
j*T.. (T: the tile edge).
"""
from dataclasses import dataclass

from amaranth.hdl import Module, Instance, ClockSignal, ResetSignal, Cat, Const, Signal, Mux
from amaranth.lib import wiring
from amaranth.lib.wiring import In

from ..emit import to_verilog
from ..mac import ConfigError
from ..split import SPLIT_TOPLEVEL, split_verilog
from .config import TileConfig, TileError, HostOp
from .host import host_ports
from .top import tile_block, OUT_PORTS

__all__ = ["SplitTileConfig", "SplitTile", "split_tile_verilog", "SPLIT_TILE_TOP",
           "SPLIT_MODE"]

SPLIT_TILE_TOP = "systolic_split_tile"
#: The GEMM ``mode`` of this tile: every tile of the grid is its own sub-array.
SPLIT_MODE = 1


@dataclass(frozen=True)
class SplitTileConfig:
    """``grid`` x ``grid`` sub-arrays, each the WS tile ``sub`` (its array: one tile of
    the splittable array)."""
    sub: TileConfig
    grid: int = 2

    def __post_init__(self):
        if self.sub.dataflow != "ws" or self.sub.rows != self.sub.cols:
            raise ConfigError("dataflow", "the split tile runs square WS sub-arrays only")
        if isinstance(self.grid, bool) or not isinstance(self.grid, int) or \
                not 2 <= self.grid <= 4:
            raise ConfigError("grid", f"{self.grid!r}; allowed: 2..4")

    @property
    def subs(self):
        return self.grid * self.grid

    @property
    def size(self):
        """Rows (= columns) of the whole array."""
        return self.sub.rows * self.grid

    @property
    def slug(self):
        return f"split{self.grid}x{self.grid}_{self.sub.slug}"


def _ports(cfg):
    ports = host_ports(cfg.sub)
    ports |= {"host_sub": In(4), "gemm_mask": In(cfg.subs)}
    return ports


class SplitTile(wiring.Component):
    def __init__(self, cfg: SplitTileConfig):
        self.cfg = cfg
        super().__init__(_ports(cfg))

    def elaborate(self, platform):
        cfg = self.cfg
        sub = cfg.sub
        m = Module()
        T, G = sub.rows, cfg.grid
        R = C = cfg.size
        n, W = sub.array.mac.width, sub.array.mac.acc_width
        logics = [tile_block(m, sub, f"s{k}_") for k in range(cfg.subs)]
        is_gemm = self.host_op == HostOp.GEMM
        mask = Signal(cfg.subs)                       # the last command's sub-arrays
        rd_sub = Signal(4)
        m.d.sync += rd_sub.eq(self.host_sub)
        with m.If(self.host_valid & is_gemm):
            m.d.sync += mask.eq(self.gemm_mask)
        for k, lg in enumerate(logics):
            sel = Mux(is_gemm, self.gemm_mask[k], self.host_sub == k)
            for name in host_ports(sub):
                if name in OUT_PORTS or name.startswith("cnt_"):
                    continue
                if name == "host_valid":
                    m.d.comb += lg.host_valid.eq(self.host_valid & sel)
                elif name == "mode":
                    # the sub-arrays run mode 0; any other split mode -> 3: MODE error
                    m.d.comb += lg.mode.eq(Mux(self.mode == SPLIT_MODE, 0, 3))
                else:
                    m.d.comb += getattr(lg, name).eq(getattr(self, name))
        # Errors of the split tile itself: a WRITE/READ to a sub-array that does not
        # exist (ADDR_RANGE), a GEMM selecting none (MODE). Either raises error and done
        # one edge later (done drops for the cycle in between), like a refused command.
        own = Signal(3)
        blip = Signal()
        rw = (self.host_op == HostOp.WRITE) | (self.host_op == HostOp.READ)
        m.d.sync += blip.eq(0)
        with m.If(self.host_valid & rw & (self.host_sub >= cfg.subs)):
            m.d.sync += [own.eq(TileError.ADDR_RANGE), blip.eq(1)]
        with m.Elif(self.host_valid & is_gemm & (self.gemm_mask == 0)):
            m.d.sync += [own.eq(TileError.MODE), blip.eq(1)]
        with m.Elif(self.host_valid & is_gemm):
            m.d.sync += own.eq(0)
        m.d.comb += [
            self.busy.eq(Cat(*(lg.busy for lg in logics)).any()),
            self.done.eq(Cat(*(lg.done | ~mask[k] for k, lg in enumerate(logics))).all()
                         & ~blip),
            self.error.eq(Cat(*(lg.error for lg in logics)).any() | (own != 0))]
        code = Const(0, 3)
        for lg in reversed(logics):
            code = Mux(lg.error, lg.err_code, code)
        m.d.comb += self.err_code.eq(Mux(own != 0, own, code))
        with m.Switch(rd_sub):
            for k, lg in enumerate(logics):
                with m.Case(k):
                    m.d.comb += [self.host_rdata.eq(lg.host_rdata),
                                 self.host_rvalid.eq(lg.host_rvalid)]
                    if sub.counters:
                        m.d.comb += [getattr(self, c).eq(getattr(lg, c)) for c in
                                     ("cnt_a_reads", "cnt_b_reads", "cnt_c_reads",
                                      "cnt_c_writes")]

        # Edge ports of the splittable array (ports style, every boundary cut):
        # sub (g, j) takes activations from a_in (j = 0) or a_in_x lanes of column
        # boundary j, weights from w_in (g = 0) or w_in_x lanes of row boundary g, and
        # gives results on c_out (g = G-1) or the c_out_x taps of row boundary g+1.
        a_in, a_sw, a_v = [None] * R, [None] * R, [None] * R
        a_x, a_sw_x, a_v_x = ([None] * ((G - 1) * R) for _ in range(3))
        w_in, w_en = [None] * C, [None] * C
        w_x, w_en_x = [None] * ((G - 1) * C), [None] * ((G - 1) * C)
        c_out, c_valid = Signal(C * W), Signal(C)
        c_out_x, c_valid_x = Signal((G - 1) * C * W), Signal((G - 1) * C)
        for k, lg in enumerate(logics):
            g, j = divmod(k, G)
            for r in range(T):
                row = g * T + r
                lanes = (a_in, a_sw, a_v, row) if j == 0 else \
                    (a_x, a_sw_x, a_v_x, (j - 1) * R + row)
                lanes[0][lanes[3]] = lg.arr_a_in[r * n:(r + 1) * n]
                lanes[1][lanes[3]] = lg.arr_a_swap[r]
                lanes[2][lanes[3]] = lg.arr_a_valid[r]
            for c in range(T):
                col = j * T + c
                if g == 0:
                    w_in[col], w_en[col] = lg.arr_w_in[c * n:(c + 1) * n], lg.arr_w_en[c]
                else:
                    i = (g - 1) * C + col
                    w_x[i], w_en_x[i] = lg.arr_w_in[c * n:(c + 1) * n], lg.arr_w_en[c]
                if g == G - 1:
                    out, val = c_out[col * W:(col + 1) * W], c_valid[col]
                else:
                    i = g * C + col
                    out, val = c_out_x[i * W:(i + 1) * W], c_valid_x[i]
                m.d.comb += [lg.arr_c_out[c * W:(c + 1) * W].eq(out),
                             lg.arr_c_valid[c].eq(val)]
        m.submodules.array = Instance(
            SPLIT_TOPLEVEL, i_clk=ClockSignal(), i_rst=ResetSignal(),
            i_a_in=Cat(*a_in), i_a_swap=Cat(*a_sw), i_a_valid=Cat(*a_v),
            i_w_in=Cat(*w_in), i_w_en=Cat(*w_en), o_c_out=c_out, o_c_valid=c_valid,
            i_row_cut=Const((1 << (G - 1)) - 1, G - 1), i_w_in_x=Cat(*w_x),
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
