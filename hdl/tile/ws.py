"""The weight-stationary datapath of the tile (:class:`hdl.tile.logic.TileLogic` with a
WS array: double-buffered PE, sequential folds).

A fold (kb, nb) loads the weight tile ``B[kb*R .. +R, nb*C .. +C]`` (R edge vectors from
B, bottom row first: vector s is row ``R-1-s``), then streams the M activation vectors
``A[m, kb*R .. +R]`` (from A, ``a_swap`` with the first, ``a_valid`` with each); folds
run kb outer, nb inner. Column c's result for token m is ``C[m, nb*C + c]``'s partial,
which the collector adds into C bank c at ``c_base + nb*M + m`` (read-add-write for
kb > 0 or an accumulating command).

Timeline (as :mod:`hdl.tile.logic`'s, per vector v with its own beats ``b_v``: B's
``beats_b`` for weights, A's ``beats_a`` for activations): ``s_0 = 2``,
``s_v = e_{v-1} + max(gap_v - b_v, 0)``, ``e_v = s_v + b_v``, where ``gap_v`` is 1
inside a fold and ``R + C + P - 1`` from a fold's last activation to the next fold's
first weight (the bare sequential schedule: the next weights enter as the last result
leaves). The skew lines give row r (column c) r (c) more edges; token m's result is on
lane c in cycle ``e + 1 + R + c + P`` (``e`` its activation's emission), written by
that edge; ``done`` with edge ``e_final + R + C + P``.
"""
from amaranth.hdl import Module, Signal, Cat, Mux

from .config import TileError, DIM_BITS, ADDR_BITS
from .host import (build_host, delayed, skew_taps, clamp, assemble, drive_c_lane, drive_readers,
                   finish_counters)

__all__ = ["elaborate_ws", "ws_check"]


def elaborate_ws(self):
    cfg = self.cfg
    m = Module()
    R, C, n = cfg.rows, cfg.cols, cfg.array.mac.width
    W, P = cfg.array.mac.acc_width, cfg.array.latency
    ba, bb = cfg.beats_a, cfg.beats_b
    bmax = max(ba, bb)
    gap = R + C + P - 1
    h = build_host(self, m, cfg, init_len=0)
    f = h.f

    kb_total, nb_total, start = ws_check(m, h, cfg)

    # ---- reader state --------------------------------------------------------------------
    kb, nb, idx = Signal(DIM_BITS), Signal(DIM_BITS), Signal(DIM_BITS)
    act = Signal()                         # 0: weight vectors of the fold, 1: activations
    beat = Signal(range(bmax))
    hold = Signal(range(gap + 1))
    a_blk, b_blk = Signal(range(cfg.depth)), Signal(range(cfg.depth))
    a_ptr, b_ptr = Signal(range(cfg.depth)), Signal(range(cfg.depth))
    c_blk = Signal(range(cfg.c_depth))
    reading, done_run = Signal(), Signal()
    done_cnt = Signal(range(R + C + P + 2))
    h.busy_terms += [reading, done_run]
    last_fold = (kb == kb_total - 1) & (nb == nb_total - 1)

    with m.If(start):
        m.d.sync += [reading.eq(1), kb.eq(0), nb.eq(0), idx.eq(0), act.eq(0),
                     beat.eq(0), hold.eq(0), a_blk.eq(f["a_base"]),
                     a_ptr.eq(f["a_base"]), b_blk.eq(f["b_base"]),
                     b_ptr.eq(f["b_base"]), c_blk.eq(f["c_base"])]

    issue = reading & (hold == 0)
    a_on, b_on = issue & act, issue & ~act
    drive_readers(self, m, h, reading=reading, a_on=a_on, b_on=b_on, a_ptr=a_ptr,
                  b_ptr=b_ptr, hold=hold)
    vec_end = issue & (beat == Mux(act, ba - 1, bb - 1))
    with m.If(issue):
        m.d.sync += beat.eq(Mux(vec_end, 0, beat + 1))
    # arrival pipeline: what the reads of the last cycle carry
    arr_valid, arr_act, arr_first, arr_final = Signal(), Signal(), Signal(), Signal()
    arr_beat = Signal(range(bmax))
    arr_cbase, arr_acc = Signal(range(cfg.c_depth)), Signal()
    m.d.sync += [arr_valid.eq(issue), arr_act.eq(act), arr_beat.eq(beat),
                 arr_first.eq(act & (idx == 0)),
                 arr_final.eq(act & (idx == f["m"] - 1) & last_fold),
                 arr_cbase.eq(c_blk), arr_acc.eq(f["accumulate"] | (kb != 0))]
    with m.If(vec_end):
        with m.If(~act):
            with m.If(idx == R - 1):
                m.d.sync += [act.eq(1), idx.eq(0)]
            with m.Else():
                m.d.sync += idx.eq(idx + 1)
        with m.Elif(idx != f["m"] - 1):
            m.d.sync += idx.eq(idx + 1)
        with m.Else():                                   # the fold's last activation
            m.d.sync += [act.eq(0), idx.eq(0), hold.eq(max(gap - bb, 0)),
                         b_blk.eq(b_blk + f["b_stride"]), b_ptr.eq(b_blk + f["b_stride"])]
            with m.If(last_fold):
                m.d.sync += reading.eq(0)
            with m.Elif(nb == nb_total - 1):             # next K block, first N block
                m.d.sync += [nb.eq(0), kb.eq(kb + 1), a_blk.eq(a_blk + f["a_stride"]),
                             a_ptr.eq(a_blk + f["a_stride"]), c_blk.eq(f["c_base"])]
            with m.Else():                               # same activations, next N block
                m.d.sync += [nb.eq(nb + 1), a_ptr.eq(a_blk), c_blk.eq(c_blk + f["m"])]

    vec_a = assemble(m, self.a_rdata, ba, R * n, arr_valid & arr_act, arr_beat, ba - 1)
    vec_w = assemble(m, self.b_rdata, bb, C * n, arr_valid & ~arr_act, arr_beat, bb - 1)
    emit_a = arr_valid & arr_act & (arr_beat == ba - 1)
    emit_w = arr_valid & ~arr_act & (arr_beat == bb - 1)

    # ---- pre-skew registers and skew lines ----------------------------------------------
    pa, pv, psw = Signal(R * n), Signal(), Signal()
    pw, pwen = Signal(C * n), Signal()
    m.d.sync += [pa.eq(Mux(emit_a, vec_a, 0)), pv.eq(emit_a), psw.eq(emit_a & arr_first),
                 pw.eq(Mux(emit_w, vec_w, 0)), pwen.eq(emit_w)]
    valid_lines = skew_taps(m, pv, R, "skew_v")
    m.d.comb += [
        self.arr_a_in.eq(Cat(*(delayed(m, pa[r * n:(r + 1) * n], r, f"skew_a{r}")
                               for r in range(R)))),
        self.arr_a_valid.eq(Cat(*valid_lines)),
        self.arr_a_swap.eq(Cat(*skew_taps(m, psw, R, "skew_s"))),
        self.arr_w_in.eq(Cat(*(delayed(m, pw[c * n:(c + 1) * n], c, f"skew_w{c}")
                               for c in range(C)))),
        self.arr_w_en.eq(Cat(*skew_taps(m, pwen, C, "skew_e")))]

    with m.If(emit_a & arr_final):
        m.d.sync += [done_run.eq(1), done_cnt.eq(R + C + P - 1)]
    with m.If(done_run):
        m.d.sync += done_cnt.eq(done_cnt - 1)
        with m.If(done_cnt == 0):
            m.d.sync += [done_run.eq(0), h.done.eq(1)]

    # ---- collector: lane c = column c; token results in order ---------------------------
    # Lane c's results are lane c-1's one cycle later; lane 0's come R + P cycles after
    # the activation's pre-skew valid (row R-1's valid line, P more), so each lane reads
    # the old C word one cycle ahead and writes the sum in the result's cycle.
    acc = Signal()
    with m.If(emit_a & arr_first):
        m.d.sync += acc.eq(arr_acc)
    c_reads, c_writes = [], []
    nxt = delayed(m, valid_lines[R - 1], P, "col_v")
    for c in range(C):
        real = self.arr_c_valid[c]
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
    finish_counters(self, m, cfg, h, a_on, b_on, c_reads, c_writes)
    return m


def ws_check(m, h, cfg):
    """The WS command's blocks and bound checks: ``(kb_total, nb_total, start)``, start
    high in the check cycle of a command that runs (else ``h.fail`` raised its code)."""
    f, check = h.f, h.check
    R, C = cfg.rows, cfg.cols
    ba, bb = cfg.beats_a, cfg.beats_b
    lr, lc = R.bit_length() - 1, C.bit_length() - 1
    kb_total, nb_total, start = Signal(DIM_BITS), Signal(DIM_BITS), Signal()
    m.d.comb += [kb_total.eq((f["k"] + (R - 1)) >> lr), nb_total.eq((f["n"] + (C - 1)) >> lc)]
    folds = Signal(2 * DIM_BITS)
    m.d.comb += folds.eq(kb_total * nb_total)
    blk_a, blk_b = Signal(ADDR_BITS + 4), Signal(ADDR_BITS + 4)
    m.d.comb += [blk_a.eq(f["m"] * ba), blk_b.eq(R * bb)]
    end_a, end_b, end_c = (Signal(2 * ADDR_BITS + 4) for _ in range(3))
    m.d.comb += [
        end_a.eq(f["a_base"] + clamp(m, kb_total - 1, cfg.depth)
                 * clamp(m, f["a_stride"], cfg.depth) + blk_a),
        end_b.eq(f["b_base"] + (clamp(m, folds, cfg.depth + 1) - 1)
                 * clamp(m, f["b_stride"], cfg.depth) + blk_b),
        end_c.eq(f["c_base"] + clamp(m, nb_total, cfg.c_depth + 1) * f["m"])]

    with m.If(check):
        with m.If(f["mode"] != 0):
            h.fail(TileError.MODE)
        with m.Elif((f["m"] == 0) | (f["k"] == 0) | (f["n"] == 0)):
            h.fail(TileError.SHAPE)
        with m.Elif((end_a > cfg.depth) | (end_b > cfg.depth) | (end_c > cfg.c_depth)):
            h.fail(TileError.NO_FIT)
        with m.Elif(((kb_total > 1) & (f["a_stride"] < blk_a)) |
                    ((folds > 1) & (f["b_stride"] < blk_b))):
            h.fail(TileError.OVERLAP)
        with m.Else():
            m.d.comb += start.eq(1)
    return kb_total, nb_total, start
