"""The weight-stationary datapath with fold overlap: the next fold's weights shift into
the shadow registers while the current fold streams (:class:`hdl.tile.logic.TileLogic`
with a WS array, ``fold_overlap=True``).

Two readers run at once, each on its own memory: the weight reader (B: R vectors per
fold, ``beats_b`` cycles each) and the activation reader (A: M vectors per fold,
``beats_a``). A reader holds a read vector (the memory keeps its output, earlier lines
stay in registers) until it may be emitted, and reads the next one from the cycle it
emits. Emission rules (``e``: the cycle whose edge takes the vector into the pre-skew
register):

* a fold's first activation: at least one cycle after its last weight;
* fold f+1's first weight: at least ``R - 1`` cycles after fold f's first activation
  (column c's last PE has swapped to fold f's weights by then; the shadow chain may
  shift);
* everything else: as soon as read.

With one line per vector this is the bare array's fold-overlap schedule
(:func:`sim.models.cycles.ws_period`: ``max(M, 2R - 1)`` per fold). The collector's
lanes switch from one fold's C addresses to the next's at the fold's first token, which
a marker travelling with the results tells each lane (with the fold's C base and
accumulate flag, passed down the lanes one cycle apart like the results).
"""
from amaranth.hdl import Module, Signal, Cat, Mux

from .config import DIM_BITS
from .host import (build_host, delayed, skew_taps, assemble, drive_c_lane,
                   finish_counters)
from .ws import ws_check

__all__ = ["elaborate_ws_overlap"]


def _reader(m, name, *, beats, mem_rdata, lanes_bits, next_ok):
    """A vector reader: issues ``beats`` reads per vector while it has vectors left and
    its held vector (if any) leaves; ``next_ok`` (comb) allows the held vector to leave.
    Returns (issue, emit, vec, left): ``left`` counts the vectors still to read (load it
    at the start)."""
    beat = Signal(range(beats), name=f"{name}_beat")
    full = Signal(name=f"{name}_full")            # a whole vector is held
    left = Signal(2 * DIM_BITS + 6, name=f"{name}_left")   # vectors still to read
    emit = Signal(name=f"{name}_emit")
    m.d.comb += emit.eq(full & next_ok)
    issue = (left != 0) & (~full | emit)
    last = issue & (beat == beats - 1)
    with m.If(issue):
        m.d.sync += beat.eq(Mux(last, 0, beat + 1))
    with m.If(last):
        m.d.sync += [full.eq(1), left.eq(left - 1)]
    with m.Elif(emit):
        m.d.sync += full.eq(0)
    arr_valid, arr_beat = Signal(name=f"{name}_arr"), Signal(range(beats), name=f"{name}_ab")
    m.d.sync += [arr_valid.eq(issue), arr_beat.eq(beat)]
    vec = assemble(m, mem_rdata, beats, lanes_bits, arr_valid, arr_beat, beats - 1)
    return issue, emit, vec, left


def elaborate_ws_overlap(self):
    cfg = self.cfg
    m = Module()
    R, C, n = cfg.rows, cfg.cols, cfg.array.mac.width
    W, P = cfg.array.mac.acc_width, cfg.array.latency
    ba, bb = cfg.beats_a, cfg.beats_b
    h = build_host(self, m, cfg, init_len=0)
    f = h.f
    kb_total, nb_total, start = ws_check(m, h, cfg)
    folds = Signal(2 * DIM_BITS)
    m.d.comb += folds.eq(kb_total * nb_total)

    # ---- counters of emitted vectors -----------------------------------------------------
    w_s, w_fold = Signal(range(R)), Signal(2 * DIM_BITS)         # next weight to emit
    a_m, a_fold = Signal(DIM_BITS), Signal(2 * DIM_BITS)         # next activation
    a_kb, a_nb = Signal(DIM_BITS), Signal(DIM_BITS)              # its fold's blocks
    a_first_done = Signal(2 * DIM_BITS)     # folds whose first activation was emitted
    tmr = Signal(range(R + 1))              # cycles until the next fold's weights may go
    running, done_run = Signal(), Signal()
    done_cnt = Signal(range(R + C + P + 2))
    h.busy_terms += [running, done_run]

    w_next_ok = Signal()
    a_next_ok = Signal()
    # a fold's first weight: fold 0 at once; fold f: R-1 cycles after A(f-1, 0)
    m.d.comb += w_next_ok.eq((w_s != 0) | (w_fold == 0) |
                             ((a_first_done >= w_fold) & (tmr == 0)))
    # a fold's first activation: after all its weights (emitted in an earlier cycle)
    m.d.comb += a_next_ok.eq((a_m != 0) | (w_fold > a_fold))

    b_issue, w_emit, vec_w, w_left = _reader(m, "rw", beats=bb, mem_rdata=self.b_rdata,
                                             lanes_bits=C * n, next_ok=w_next_ok)
    a_issue, a_emit, vec_a, a_left = _reader(m, "ra", beats=ba, mem_rdata=self.a_rdata,
                                             lanes_bits=R * n, next_ok=a_next_ok)

    # ---- read addresses: B is one run of folds*R vectors (b_stride per fold); A repeats
    # its K block for every N block ----------------------------------------------------
    b_ptr, b_blk, b_cnt = Signal(range(cfg.depth)), Signal(range(cfg.depth)), \
        Signal(range(R * bb + 1))
    a_ptr, a_blk = Signal(range(cfg.depth)), Signal(range(cfg.depth))
    a_rd_m, a_rd_nb = Signal(DIM_BITS), Signal(DIM_BITS)
    a_cnt = Signal(range(ba + 1))
    with m.If(b_issue):
        with m.If(b_cnt == R * bb - 1):           # the fold's last weight line
            m.d.sync += [b_cnt.eq(0), b_blk.eq(b_blk + f["b_stride"]),
                         b_ptr.eq(b_blk + f["b_stride"])]
        with m.Else():
            m.d.sync += [b_cnt.eq(b_cnt + 1), b_ptr.eq(b_ptr + 1)]
    with m.If(a_issue):
        with m.If(a_cnt == ba - 1):
            m.d.sync += a_cnt.eq(0)
            with m.If(a_rd_m == f["m"] - 1):      # the fold's last activation
                m.d.sync += a_rd_m.eq(0)
                with m.If(a_rd_nb == nb_total - 1):
                    m.d.sync += [a_rd_nb.eq(0), a_blk.eq(a_blk + f["a_stride"]),
                                 a_ptr.eq(a_blk + f["a_stride"])]
                with m.Else():
                    m.d.sync += [a_rd_nb.eq(a_rd_nb + 1), a_ptr.eq(a_blk)]
            with m.Else():
                m.d.sync += [a_rd_m.eq(a_rd_m + 1), a_ptr.eq(a_ptr + 1)]
        with m.Else():
            m.d.sync += [a_cnt.eq(a_cnt + 1), a_ptr.eq(a_ptr + 1)]
    m.d.comb += [self.a_ren.eq(a_issue | h.host_re & h.mem_a),
                 self.b_ren.eq(b_issue | h.host_re & h.mem_b),
                 self.a_raddr.eq(Mux(running, a_ptr, self.host_addr)),
                 self.b_raddr.eq(Mux(running, b_ptr, self.host_addr))]

    with m.If(start):
        m.d.sync += [running.eq(1), w_s.eq(0), w_fold.eq(0), a_m.eq(0), a_fold.eq(0),
                     a_kb.eq(0), a_nb.eq(0), a_first_done.eq(0), tmr.eq(0),
                     b_ptr.eq(f["b_base"]), b_blk.eq(f["b_base"]), b_cnt.eq(0),
                     a_ptr.eq(f["a_base"]), a_blk.eq(f["a_base"]), a_rd_m.eq(0),
                     a_rd_nb.eq(0), a_cnt.eq(0)]
        # vectors to read: folds * R weights, folds * M activations
        m.d.sync += [w_left.eq(folds * R), a_left.eq(folds * f["m"])]

    # ---- emission bookkeeping ------------------------------------------------------------
    last_a = a_emit & (a_m == f["m"] - 1) & (a_fold == folds - 1)
    with m.If(w_emit):
        with m.If(w_s == R - 1):
            m.d.sync += [w_s.eq(0), w_fold.eq(w_fold + 1)]
        with m.Else():
            m.d.sync += w_s.eq(w_s + 1)
    with m.If(tmr != 0):
        m.d.sync += tmr.eq(tmr - 1)
    first_a = a_emit & (a_m == 0)
    with m.If(first_a):
        m.d.sync += [a_first_done.eq(a_first_done + 1), tmr.eq(R - 2)]
    with m.If(a_emit):
        with m.If(a_m == f["m"] - 1):
            m.d.sync += [a_m.eq(0), a_fold.eq(a_fold + 1)]
            with m.If(a_nb == nb_total - 1):
                m.d.sync += [a_nb.eq(0), a_kb.eq(a_kb + 1)]
            with m.Else():
                m.d.sync += a_nb.eq(a_nb + 1)
        with m.Else():
            m.d.sync += a_m.eq(a_m + 1)
    with m.If(last_a):
        m.d.sync += [running.eq(0), done_run.eq(1), done_cnt.eq(R + C + P - 1)]
    with m.If(done_run):
        m.d.sync += done_cnt.eq(done_cnt - 1)
        with m.If(done_cnt == 0):
            m.d.sync += [done_run.eq(0), h.done.eq(1)]

    # ---- pre-skew registers and skew lines -----------------------------------------------
    pa, pv, psw = Signal(R * n), Signal(), Signal()
    pw, pwen = Signal(C * n), Signal()
    m.d.sync += [pa.eq(Mux(a_emit, vec_a, 0)), pv.eq(a_emit), psw.eq(first_a),
                 pw.eq(Mux(w_emit, vec_w, 0)), pwen.eq(w_emit)]
    valid_lines = skew_taps(m, pv, R, "skew_v")
    swap_lines = skew_taps(m, psw, R, "skew_s")
    m.d.comb += [
        self.arr_a_in.eq(Cat(*(delayed(m, pa[r * n:(r + 1) * n], r, f"skew_a{r}")
                               for r in range(R)))),
        self.arr_a_valid.eq(Cat(*valid_lines)),
        self.arr_a_swap.eq(Cat(*swap_lines)),
        self.arr_w_in.eq(Cat(*(delayed(m, pw[c * n:(c + 1) * n], c, f"skew_w{c}")
                               for c in range(C)))),
        self.arr_w_en.eq(Cat(*skew_taps(m, pwen, C, "skew_e")))]

    # ---- collector -------------------------------------------------------------------------
    # The fold of the activation just emitted first: its C base and accumulate flag, held
    # until lane 0's first token of that fold (R + P + 1 cycles later; the next fold's
    # first activation comes at least 2R - 1 cycles later, R > P + 1).
    fi_base, fi_acc = Signal(range(cfg.c_depth)), Signal()
    with m.If(first_a):
        m.d.sync += [fi_base.eq(f["c_base"] + a_nb * f["m"]),
                     fi_acc.eq(f["accumulate"] | (a_kb != 0))]
    nxt = delayed(m, valid_lines[R - 1], P, "col_v")
    nfirst = delayed(m, swap_lines[R - 1], P, "col_s")
    nbase, nacc = fi_base, fi_acc
    c_reads, c_writes = [], []
    for c in range(C):
        real = self.arr_c_valid[c]
        first = Signal(name=f"col_first{c}")
        base = Signal(range(cfg.c_depth), name=f"col_base{c}")
        tacc = Signal(name=f"col_tacc{c}")          # accumulate flag passed down
        acc = Signal(name=f"col_acc{c}")            # this lane's current fold
        ptr = Signal(range(cfg.c_depth), name=f"col_ptr{c}")
        m.d.sync += [first.eq(nfirst), base.eq(nbase), tacc.eq(nacc)]
        wacc = Mux(first, tacc, acc)
        waddr = Mux(first, base, ptr)
        with m.If(real):
            m.d.sync += ptr.eq(waddr + 1)
            with m.If(first):
                m.d.sync += acc.eq(tacc)
        racc = Mux(nfirst, nacc, wacc)
        raddr = Mux(nfirst, nbase, Mux(real, waddr + 1, ptr))
        c_reads.append(nxt & racc)
        c_writes.append(real)
        drive_c_lane(self, m, h, c, W, ren=nxt & racc, raddr=raddr,
                     array_addr=running | done_run, write=real, waddr=waddr, acc=wacc)
        nxt, nfirst, nbase, nacc = real, first, base, tacc
    finish_counters(self, m, cfg, h, a_issue, b_issue, c_reads, c_writes)
    return m
