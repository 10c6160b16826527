"""One tile of the split tile: its feeders and collector, run by the role the command's
mode gives it (:mod:`hdl.tile.split.top` loads the role with the fields).

The datapath is :mod:`hdl.tile.ws`'s (same reader, skew lines, collector; for a 1x1
sub-array the same cycles), run with the shape of the sub-array it belongs to, of
``nr`` x ``nc`` tiles (Rs = nr*T rows, Cs = nc*T columns), at offsets ``(oy, ox)`` tiles
(``y = oy*T``, ``x = ox*T`` PEs):

* the sub-array's folds: ``kbs = ceil(K/Rs)`` x ``nbs = ceil(N/Cs)``, each ``Rs`` weight
  slots of ``beats_b`` cycles, then M activations of ``beats_a``, then the sequential
  gap ``Rs + Cs + P - 1`` to the next fold's weights (:mod:`sim.models.cycles`);
* the whole timeline ``D = x + y`` cycles after the sub-array's (the reader waits D
  cycles before its first read): the ports style gives tile column ``ox`` the
  activations ``x`` cycles late (through its own ``a_in_x`` lanes) and tile row ``oy``
  the weights ``y`` late, so tile (oy, ox) sees everything ``x + y`` late; its own
  column skew (c) and row skew (r) come from its skew lines as in a lone tile;
* weights: only the last T of the Rs slots read and shift (``w_en``): the tile's T
  weight rows, bottom first; its shadow registers then hold what the bare sub-array's
  ``Rs``-long load window (:mod:`sim.drivers.split_lanes`, ``w_en`` undelayed) leaves
  there, and the swap comes after the last shift as in the lone tile;
* activations: its K slice ``A[m, kb*Rs + y .. +T]`` every activation slot;
* collector: only a bottom tile (``oy = nr - 1``) reads and writes C: its columns'
  results leave the sub-array there, ``D + 2T + P`` after its own emission = the
  sub-array's ``Rs + Cs + P`` (the lone tile's collector timing, unchanged). The other
  tiles' partial sums flow down through the uncut row boundaries.

``done`` rises with the edge of its last write (collector) or where that write would be
(others): the bottom-right tile's is the sub-array's.
"""
from amaranth.hdl import Module, Signal, Cat, Mux
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..config import TileConfig, HostOp, Mem, DIM_BITS, ADDR_BITS
from ..host import (COUNTER_BITS, delayed, skew_taps, assemble, drive_c_lane, drive_readers)

__all__ = ["SplitMember", "FIELD_PORTS"]

#: Per-tile GEMM inputs, loaded by the top with the tile's role.
FIELD_PORTS = {"a_base": ADDR_BITS, "b_base": ADDR_BITS, "c_base": ADDR_BITS,
               "a_stride": ADDR_BITS, "b_stride": ADDR_BITS, "m": DIM_BITS,
               "accumulate": 1, "kbs": DIM_BITS, "nbs": DIM_BITS}


class SplitMember(wiring.Component):
    """Feeders and collector of one tile. Ports: host strobes (``host_ok``: this tile's
    WRITE/READ, checked by the top), ``host_op``/``host_mem``/``host_bank``/
    ``host_addr``/``host_wdata``, ``host_rdata``/``host_rvalid``; the fields of
    :data:`FIELD_PORTS` and the role (``slots`` = Rs, ``own_from`` = Rs - T, ``gap_hold``
    = max(Rs + Cs + P - 1 - beats_b, 0), ``delay`` = D, ``collect``), ``start``;
    ``busy``, ``done``, the access counters; memory and array ports as
    :class:`hdl.tile.logic.TileLogic`'s (WS)."""

    def __init__(self, cfg: TileConfig, grid: int):
        self.cfg = cfg
        T, n, W = cfg.rows, cfg.array.mac.width, cfg.array.mac.acc_width
        hw = max(cfg.width, cfg.c_width)
        ports = {"host_ok": In(1), "host_op": In(2), "host_mem": In(2), "host_bank": In(8),
                 "host_addr": In(ADDR_BITS), "host_wdata": In(hw),
                 "host_rdata": Out(hw), "host_rvalid": Out(1)}
        ports |= {k: In(v) for k, v in FIELD_PORTS.items()}
        span = grid * T
        ports |= {"slots": In(range(span + 1)), "own_from": In(range(span + 1)),
                  "gap_hold": In(range(2 * span + cfg.array.latency + 1)),
                  "delay": In(range(2 * span)), "collect": In(1), "start": In(1),
                  "busy": Out(1), "done": Out(1)}
        if cfg.counters:
            ports |= {k: Out(COUNTER_BITS) for k in
                      ("cnt_a_reads", "cnt_b_reads", "cnt_c_reads", "cnt_c_writes")}
        ab, cb = range(cfg.depth), range(cfg.c_depth)
        ports |= {"a_raddr": Out(ab), "a_ren": Out(1), "a_rdata": In(cfg.a_banks * cfg.width),
                  "a_waddr": Out(ab), "a_wdata": Out(cfg.width), "a_wen": Out(cfg.a_banks),
                  "b_raddr": Out(ab), "b_ren": Out(1), "b_rdata": In(cfg.b_banks * cfg.width),
                  "b_waddr": Out(ab), "b_wdata": Out(cfg.width), "b_wen": Out(cfg.b_banks)}
        for d in range(cfg.c_banks):
            ports |= {f"c{d}_raddr": Out(cb), f"c{d}_ren": Out(1),
                      f"c{d}_rdata": In(cfg.c_width), f"c{d}_waddr": Out(cb),
                      f"c{d}_wdata": Out(cfg.c_width), f"c{d}_wen": Out(1)}
        ports |= {"arr_a_in": Out(T * n), "arr_a_swap": Out(T), "arr_a_valid": Out(T),
                  "arr_w_in": Out(T * n), "arr_w_en": Out(T),
                  "arr_c_out": In(T * W), "arr_c_valid": In(T)}
        super().__init__(ports)

    def elaborate(self, platform):
        cfg = self.cfg
        m = Module()
        T, n = cfg.rows, cfg.array.mac.width
        W, P = cfg.array.mac.acc_width, cfg.array.latency
        ba, bb = cfg.beats_a, cfg.beats_b
        bmax = max(ba, bb)
        h = self._host(m)

        # ---- reader state (hdl.tile.ws's, with the sub-array's slots and gap) ------------
        kb, nb, idx = Signal(DIM_BITS), Signal(DIM_BITS), Signal(DIM_BITS)
        act = Signal()
        beat = Signal(range(bmax))
        hold = Signal(len(self.gap_hold) + len(self.delay))
        a_blk, b_blk = Signal(range(cfg.depth)), Signal(range(cfg.depth))
        a_ptr, b_ptr = Signal(range(cfg.depth)), Signal(range(cfg.depth))
        c_blk = Signal(range(cfg.c_depth))
        reading, done_run, done = Signal(), Signal(), Signal()
        done_cnt = Signal(range(2 * T + P + 2))
        m.d.comb += [self.busy.eq(reading | done_run), self.done.eq(done)]
        last_fold = (kb == self.kbs - 1) & (nb == self.nbs - 1)

        with m.If(self.start):
            m.d.sync += [reading.eq(1), kb.eq(0), nb.eq(0), idx.eq(0), act.eq(0),
                         beat.eq(0), hold.eq(self.delay), a_blk.eq(self.a_base),
                         a_ptr.eq(self.a_base), b_blk.eq(self.b_base),
                         b_ptr.eq(self.b_base), c_blk.eq(self.c_base), done.eq(0)]

        issue = reading & (hold == 0)
        own = idx >= self.own_from                      # a weight slot of this tile's rows
        a_on, b_on = issue & act, issue & ~act & own
        drive_readers(self, m, h, reading=reading, a_on=a_on, b_on=b_on, a_ptr=a_ptr,
                      b_ptr=b_ptr, hold=hold)
        vec_end = issue & (beat == Mux(act, ba - 1, bb - 1))
        with m.If(issue):
            m.d.sync += beat.eq(Mux(vec_end, 0, beat + 1))
        arr_valid, arr_act, arr_first, arr_final, arr_own = (Signal() for _ in range(5))
        arr_beat = Signal(range(bmax))
        arr_cbase, arr_acc = Signal(range(cfg.c_depth)), Signal()
        m.d.sync += [arr_valid.eq(issue), arr_act.eq(act), arr_beat.eq(beat),
                     arr_own.eq(own), arr_first.eq(act & (idx == 0)),
                     arr_final.eq(act & (idx == self.m - 1) & last_fold),
                     arr_cbase.eq(c_blk), arr_acc.eq(self.accumulate | (kb != 0))]
        with m.If(vec_end):
            with m.If(~act):
                with m.If(idx == self.slots - 1):
                    m.d.sync += [act.eq(1), idx.eq(0)]
                with m.Else():
                    m.d.sync += idx.eq(idx + 1)
            with m.Elif(idx != self.m - 1):
                m.d.sync += idx.eq(idx + 1)
            with m.Else():                                   # the fold's last activation
                m.d.sync += [act.eq(0), idx.eq(0), hold.eq(self.gap_hold),
                             b_blk.eq(b_blk + self.b_stride), b_ptr.eq(b_blk + self.b_stride)]
                with m.If(last_fold):
                    m.d.sync += reading.eq(0)
                with m.Elif(nb == self.nbs - 1):
                    m.d.sync += [nb.eq(0), kb.eq(kb + 1), a_blk.eq(a_blk + self.a_stride),
                                 a_ptr.eq(a_blk + self.a_stride), c_blk.eq(self.c_base)]
                with m.Else():
                    m.d.sync += [nb.eq(nb + 1), a_ptr.eq(a_blk), c_blk.eq(c_blk + self.m)]

        vec_a = assemble(m, self.a_rdata, ba, T * n, arr_valid & arr_act, arr_beat, ba - 1)
        vec_w = assemble(m, self.b_rdata, bb, T * n, arr_valid & ~arr_act & arr_own,
                         arr_beat, bb - 1)
        emit_a = arr_valid & arr_act & (arr_beat == ba - 1)
        emit_w = arr_valid & ~arr_act & arr_own & (arr_beat == bb - 1)

        # ---- pre-skew registers and skew lines ----------------------------------------
        pa, pv, psw = Signal(T * n), Signal(), Signal()
        pw, pwen = Signal(T * n), Signal()
        m.d.sync += [pa.eq(Mux(emit_a, vec_a, 0)), pv.eq(emit_a), psw.eq(emit_a & arr_first),
                     pw.eq(Mux(emit_w, vec_w, 0)), pwen.eq(emit_w)]
        valid_lines = skew_taps(m, pv, T, "skew_v")
        m.d.comb += [
            self.arr_a_in.eq(Cat(*(delayed(m, pa[r * n:(r + 1) * n], r, f"skew_a{r}")
                                   for r in range(T)))),
            self.arr_a_valid.eq(Cat(*valid_lines)),
            self.arr_a_swap.eq(Cat(*skew_taps(m, psw, T, "skew_s"))),
            self.arr_w_in.eq(Cat(*(delayed(m, pw[c * n:(c + 1) * n], c, f"skew_w{c}")
                                   for c in range(T)))),
            self.arr_w_en.eq(Cat(*skew_taps(m, pwen, T, "skew_e")))]

        with m.If(emit_a & arr_final):
            m.d.sync += [done_run.eq(1), done_cnt.eq(2 * T + P - 1)]
        with m.If(done_run):
            m.d.sync += done_cnt.eq(done_cnt - 1)
            with m.If(done_cnt == 0):
                m.d.sync += [done_run.eq(0), done.eq(1)]

        # ---- collector (bottom tiles only): lane c = column c ---------------------------
        acc = Signal()
        with m.If(emit_a & arr_first):
            m.d.sync += acc.eq(arr_acc)
        c_reads, c_writes = [], []
        nxt = delayed(m, valid_lines[T - 1], P, "col_v") & self.collect
        for c in range(T):
            real = self.arr_c_valid[c] & self.collect
            ptr = Signal(range(cfg.c_depth), name=f"col_ptr{c}")
            with m.If(emit_a & arr_first):
                m.d.sync += ptr.eq(arr_cbase)
            with m.Elif(real):
                m.d.sync += ptr.eq(ptr + 1)
            c_reads.append(nxt & acc)
            c_writes.append(real)
            drive_c_lane(self, m, h, c, W, ren=nxt & acc, raddr=Mux(real, ptr + 1, ptr),
                         array_addr=reading | arr_valid | done_run, write=real, waddr=ptr,
                         acc=acc)
            nxt = real
        if cfg.counters:
            cnt = {k: getattr(self, k) for k in
                   ("cnt_a_reads", "cnt_b_reads", "cnt_c_reads", "cnt_c_writes")}
            regs = {k: Signal(COUNTER_BITS, name=k) for k in cnt}
            m.d.comb += [cnt[k].eq(regs[k]) for k in cnt]
            with m.If(self.start):
                m.d.sync += [v.eq(0) for v in regs.values()]
            with m.Else():
                m.d.sync += [
                    regs["cnt_a_reads"].eq(regs["cnt_a_reads"] + a_on * cfg.a_banks),
                    regs["cnt_b_reads"].eq(regs["cnt_b_reads"] + b_on * cfg.b_banks),
                    regs["cnt_c_reads"].eq(regs["cnt_c_reads"] + sum(c_reads)),
                    regs["cnt_c_writes"].eq(regs["cnt_c_writes"] + sum(c_writes))]
        return m

    def _host(self, m):
        """WRITE/READ of this tile's memories (the top checked range and busy): the
        strobes :func:`hdl.tile.host.drive_readers` and ``drive_c_lane`` take."""
        cfg = self.cfg
        from types import SimpleNamespace
        op = self.host_op
        mem_a, mem_b, mem_c = (self.host_mem == Mem.A), (self.host_mem == Mem.B), \
            (self.host_mem == Mem.C)
        host_we = self.host_ok & (op == HostOp.WRITE)
        host_re = self.host_ok & (op == HostOp.READ)
        m.d.comb += [self.a_waddr.eq(self.host_addr), self.a_wdata.eq(self.host_wdata),
                     self.b_waddr.eq(self.host_addr), self.b_wdata.eq(self.host_wdata)]
        for i in range(cfg.a_banks):
            m.d.comb += self.a_wen[i].eq(host_we & mem_a & (self.host_bank == i))
        for i in range(cfg.b_banks):
            m.d.comb += self.b_wen[i].eq(host_we & mem_b & (self.host_bank == i))
        rd_mem, rd_bank = Signal(2), Signal(8)
        m.d.sync += [self.host_rvalid.eq(host_re), rd_mem.eq(self.host_mem),
                     rd_bank.eq(self.host_bank)]
        with m.Switch(rd_mem):
            with m.Case(Mem.A):
                m.d.comb += self.host_rdata.eq(self.a_rdata.word_select(rd_bank, cfg.width)
                                               if cfg.a_banks > 1 else self.a_rdata)
            with m.Case(Mem.B):
                m.d.comb += self.host_rdata.eq(self.b_rdata.word_select(rd_bank, cfg.width)
                                               if cfg.b_banks > 1 else self.b_rdata)
            with m.Case(Mem.C):
                with m.Switch(rd_bank):
                    for d in range(cfg.c_banks):
                        with m.Case(d):
                            m.d.comb += self.host_rdata.eq(getattr(self, f"c{d}_rdata"))
        return SimpleNamespace(host_ok=self.host_ok, host_re=host_re, mem_a=mem_a,
                               mem_b=mem_b, mem_c=mem_c, op=op)
