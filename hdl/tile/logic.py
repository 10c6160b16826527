"""Feeders, collector and controller of the tile (everything but memories and array).

:class:`TileLogic` is one Amaranth component; :mod:`hdl.tile.top` wires it to the
scratchpad memories and to the generated array. Its logic area is what
``systolic bench --only tile`` measures against the array's.

Timeline of a GEMM (cycle t: the period whose signals edge t samples; the command is
sampled by edge 0). Edge 0 registers the fields; cycle 1 checks them (errors: ``done``
and ``error`` after edge 1), then the bounds walk takes ``w = max(MB, NB) - 1`` cycles
(NO_FIT, OVERLAP after edge 1 + w); reading starts in cycle 2 + w (below, cycles count
from there: add w). With ``b`` = beats per edge
vector, vector v (one k of one output tile: R lanes of A column k, C lanes of B row k)
is read in cycles ``s_v .. s_v + b - 1`` (A's lines in the last ``beats_a`` of them,
B's in the last ``beats_b``), its last line arrives in cycle ``e_v = s_v + b`` and is
registered, pre-skew, by edge ``e_v``. ``s_0 = 2``; inside a tile
``s_v = e_{v-1}`` (back to back); the first vector of the next tile waits for the drain
window of the compact OS PE: ``s_v = e_{v-1} + max(m + 1 - b, 0)``, ``m = min(R, C)``.
The skew lines delay row i (column j) by i (j) more edges, so the array sees vector v
on row 0 in cycle ``e_v + 1``: the bare schedule of :mod:`sim.models.cycles` with
``base + k = e_v + 1``. The drain flag is high pre-skew for the ``m`` cycles from the
tile's last vector. Result s of lane d is on ``c_out`` in cycle
``e_last + 2 + d + P + s``; the collector reads C (accumulate) the cycle before and
writes C in that cycle. ``done`` rises with edge ``e_final + R + C + P``, the edge of
the last write (lane R+C-2, s = 0).

Square array at one line per vector (:attr:`~hdl.tile.config.TileConfig.skewed`): the
memories hold the skewed streams, there are no skew lines and no pre-skew register, so
everything from the array on happens one cycle earlier (``done`` with edge
``e_final + R + C + P - 1``). Two output lanes share a C bank there
(:attr:`~hdl.tile.config.TileConfig.paired`), which needs a tile's last vector at least
2m cycles after the previous tile's.

The compact OS PE has no reset: after ``rst`` the controller plays the power-up drain
(:func:`hdl.pe.init_cycles`) and ignores its outputs; ``busy`` is high meanwhile.
"""
from amaranth.hdl import Module, Signal, Cat, Mux
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .config import TileConfig, TileError, DIM_BITS, ADDR_BITS
from .host import (host_ports, build_host, delayed, skew_taps, clamp, assemble, finish_counters,
                   bound_walk,
                   drive_c_lane, drive_readers,
                   COUNTER_BITS)

__all__ = ["TileLogic", "host_ports", "COUNTER_BITS"]


class TileLogic(wiring.Component):
    """Controller, feeders (A, B: reader and skew lines) and collector of one tile.

    Ports: :func:`hdl.tile.host.host_ports`, plus the memory ports (``a_raddr``/
    ``a_ren``/``a_rdata`` a line of A, ``a_waddr``/``a_wdata``/``a_wen`` one bit per
    bank; B alike; per C bank d ``c{d}_raddr``, ``c{d}_ren``, ``c{d}_rdata``,
    ``c{d}_waddr``, ``c{d}_wdata``, ``c{d}_wen``) and the array's ports with an
    ``arr_`` prefix (OS: ``a_in``, ``a_flag`` (``a_drain``, or ``a_last`` with fold
    overlap), ``b_in``; WS: ``a_in``, ``a_swap``,
    ``a_valid``, ``w_in``, ``w_en``; both ``c_out``, ``c_valid``). Read ports are
    synchronous (data one edge later). The WS datapath is :mod:`hdl.tile.ws`.
    """

    def __init__(self, cfg: TileConfig):
        self.cfg = cfg
        R, C, n = cfg.rows, cfg.cols, cfg.array.mac.width
        W, L = cfg.array.mac.acc_width, cfg.lanes
        ports = host_ports(cfg)
        la, lb = cfg.a_banks * cfg.width, cfg.b_banks * cfg.width
        # memory addresses as wide as the banks' depths (the host's are range-checked)
        ab, cb = range(cfg.depth), range(cfg.c_depth)
        ports |= {"a_raddr": Out(ab), "a_ren": Out(1), "a_rdata": In(la),
                  "a_waddr": Out(ab), "a_wdata": Out(cfg.width),
                  "a_wen": Out(cfg.a_banks),
                  "b_raddr": Out(ab), "b_ren": Out(1), "b_rdata": In(lb),
                  "b_waddr": Out(ab), "b_wdata": Out(cfg.width),
                  "b_wen": Out(cfg.b_banks)}
        for d in range(cfg.c_banks):
            ports |= {f"c{d}_raddr": Out(cb), f"c{d}_ren": Out(1),
                      f"c{d}_rdata": In(cfg.c_width), f"c{d}_waddr": Out(cb),
                      f"c{d}_wdata": Out(cfg.c_width), f"c{d}_wen": Out(1)}
        ports |= {"arr_a_in": Out(R * n), "arr_c_out": In(L * W), "arr_c_valid": In(L)}
        if cfg.array.dataflow == "ws":
            ports |= {"arr_a_swap": Out(R), "arr_a_valid": Out(R), "arr_w_in": Out(C * n),
                      "arr_w_en": Out(C)}
        else:
            ports |= {"arr_a_flag": Out(R), "arr_b_in": Out(C * n)}
        super().__init__(ports)

    def elaborate(self, platform):
        if self.cfg.array.dataflow == "ws":
            if self.cfg.overlap:
                from .ws_overlap import elaborate_ws_overlap
                return elaborate_ws_overlap(self)
            from .ws import elaborate_ws
            return elaborate_ws(self)
        return self._elaborate_os()

    def _elaborate_os(self):
        cfg = self.cfg
        m = Module()
        R, C, n = cfg.rows, cfg.cols, cfg.array.mac.width
        P = cfg.array.latency
        drain = cfg.drain
        b, ba, bb = cfg.beats, cfg.beats_a, cfg.beats_b
        lr, lc = R.bit_length() - 1, C.bit_length() - 1
        overlap = cfg.overlap
        tail = cfg.tail                 # skewed layout: R - 1 lines per block past K
        # power-up flush of the compact PE and its outputs (the double-buffered PE resets)
        init_len = 0 if overlap else drain + R + C + P + 4
        h = build_host(self, m, cfg, init_len=init_len)
        f, check = h.f, h.check

        # Blocks of the GEMM: MB = ceil(M/R), NB = ceil(N/C) (R, C powers of two).
        mb_total = Signal(DIM_BITS)
        nb_total = Signal(DIM_BITS)
        m.d.comb += [mb_total.eq((f["m"] + (R - 1)) >> lr), nb_total.eq((f["n"] + (C - 1)) >> lc)]
        blk_a = Signal(ADDR_BITS + 4)                      # lines of one A block: K * beats_a
        blk_b = Signal(ADDR_BITS + 4)
        m.d.comb += [blk_a.eq(f["k"] * ba + tail), blk_b.eq(f["k"] * bb + tail)]
        kb_total = Signal(ADDR_BITS + 4)                  # K * b: one tile's stream
        m.d.comb += kb_total.eq(f["k"] * b)

        # ---- reader state ----------------------------------------------------------------
        mb, nb, kk = Signal(DIM_BITS), Signal(DIM_BITS), Signal(DIM_BITS)
        beat = Signal(range(b))
        hold = Signal(range(2 * drain + 2))
        a_blk, b_blk = Signal(range(cfg.depth)), Signal(range(cfg.depth))
        a_ptr, b_ptr = Signal(range(cfg.depth)), Signal(range(cfg.depth))
        reading = Signal()
        last_tile = Signal()
        m.d.comb += last_tile.eq((mb == mb_total - 1) & (nb == nb_total - 1))
        # arrival pipeline (data of the reads issued last cycle)
        arr_beat = Signal(range(b))
        arr_valid, arr_last_k, arr_final = Signal(), Signal(), Signal()
        done_cnt = Signal(range(R + C + P + 2))
        done_run = Signal()
        acc = Signal()                                   # collector: read-add-write
        h.busy_terms += [reading, done_run]

        bad_shape = (f["m"] == 0) | (f["k"] == 0) | (f["n"] == 0) | (f["k"] > cfg.max_k)
        with m.If(check):
            with m.If(f["mode"] != 0):
                h.fail(TileError.MODE)
            with m.Elif(bad_shape):
                h.fail(TileError.SHAPE)
        # Bounds (NO_FIT), one block per cycle: the A region ends at a_base + (MB - 1) *
        # a_stride + blk_a, B's alike, C's at c_base + MB * NB * m; max(MB, NB) - 1 cycles
        # after the check cycle (adders, no multipliers). NB is clamped for C: more than
        # c_depth / m + 1 never fits.
        nbc = clamp(m, nb_total, cfg.c_depth // drain + 1) * drain
        final, over, walking = bound_walk(m, check & (f["mode"] == 0) & ~bad_shape, [
            (f["a_base"] + blk_a, f["a_stride"], mb_total, cfg.depth),
            (f["b_base"] + blk_b, f["b_stride"], nb_total, cfg.depth),
            (f["c_base"] + nbc, nbc, mb_total, cfg.c_depth)])
        h.busy_terms.append(walking)
        with m.If(final):
            with m.If(over):
                h.fail(TileError.NO_FIT)
            with m.Elif(((mb_total > 1) & (f["a_stride"] < blk_a)) |
                        ((nb_total > 1) & (f["b_stride"] < blk_b))):
                h.fail(TileError.OVERLAP)
            with m.Else():
                m.d.sync += [reading.eq(1), mb.eq(0), nb.eq(0), kk.eq(0), beat.eq(0),
                             hold.eq(0), a_blk.eq(f["a_base"]), b_blk.eq(f["b_base"]),
                             a_ptr.eq(f["a_base"]), b_ptr.eq(f["b_base"]),
                             acc.eq(f["accumulate"])]

        # ---- reader: one beat per cycle, A's lines in the last beats_a beats ------------
        issue = Signal()
        m.d.comb += issue.eq(reading & (hold == 0))
        a_on = issue & (beat >= b - ba)
        b_on = issue & (beat >= b - bb)
        drive_readers(self, m, h, reading=reading, a_on=a_on, b_on=b_on, a_ptr=a_ptr,
                      b_ptr=b_ptr, hold=hold)
        vec_end = issue & (beat == b - 1)
        k_end = vec_end & (kk == f["k"] - 1)             # the tile's last vector
        tile_end = (vec_end & (kk == f["k"] - 1 + tail)) if tail else k_end   # last line
        m.d.sync += [arr_valid.eq(issue), arr_beat.eq(beat),
                     arr_last_k.eq(k_end), arr_final.eq(k_end & last_tile)]
        with m.If(issue):
            m.d.sync += beat.eq(Mux(beat == b - 1, 0, beat + 1))
        with m.If(vec_end):
            m.d.sync += kk.eq(kk + 1)
        with m.If(tile_end):
            if overlap:     # the next tile's last k at least m cycles after this one's
                m.d.sync += [kk.eq(0), hold.eq(Mux(kb_total < drain, drain - kb_total, 0))]
            else:           # the drain window: m + 1 cycles from last k to next first
                gap = max(drain + 1 - b, 0)
                if cfg.paired:  # and the next tile's last k >= 2m cycles after this one's
                    gap = Mux(kb_total + gap < 2 * drain, 2 * drain - kb_total, gap)
                m.d.sync += [kk.eq(0), hold.eq(gap - tail)]
            with m.If(last_tile):
                m.d.sync += reading.eq(0)
            with m.Elif(nb == nb_total - 1):       # next row block of A, first of B
                m.d.sync += [nb.eq(0), mb.eq(mb + 1), a_blk.eq(a_blk + f["a_stride"]),
                             a_ptr.eq(a_blk + f["a_stride"]), b_blk.eq(f["b_base"]),
                             b_ptr.eq(f["b_base"])]
            with m.Else():                         # same A block again, next B block
                m.d.sync += [nb.eq(nb + 1), a_ptr.eq(a_blk), b_blk.eq(b_blk + f["b_stride"]),
                             b_ptr.eq(b_blk + f["b_stride"])]

        # ---- assembly of an edge vector from its lines ---------------------------------
        vec_a = assemble(m, self.a_rdata, ba, R * n, arr_valid, arr_beat, b - 1)
        vec_b = assemble(m, self.b_rdata, bb, C * n, arr_valid, arr_beat, b - 1)
        emit = arr_valid & (arr_beat == b - 1)

        # ---- pre-skew registers and skew lines -------------------------------------------
        # Skewed blocks: no pre-skew register, the memory's output (zero between
        # vectors) goes to the array one cycle earlier, and so does the flag.
        pa, pb, pf = Signal(R * n), Signal(C * n), Signal()
        pf_next = Signal()                   # the pre-skew flag of the next cycle
        flag_cnt = Signal(range(drain + 1))
        dom = m.d.comb if cfg.skewed else m.d.sync
        dom += [pa.eq(Mux(emit, vec_a, 0)), pb.eq(Mux(emit, vec_b, 0)), pf.eq(pf_next)]
        if overlap:                          # a_last: one cycle, with the last k
            m.d.comb += pf_next.eq(emit & arr_last_k)
        else:                                # a_drain: m cycles from the last k
            init_flag = (h.init_cnt > init_len - drain)
            m.d.comb += pf_next.eq((emit & arr_last_k) | (flag_cnt != 0) | init_flag)
            with m.If(emit & arr_last_k):
                m.d.sync += flag_cnt.eq(drain - 1)
            with m.Elif(flag_cnt != 0):
                m.d.sync += flag_cnt.eq(flag_cnt - 1)

        m.d.comb += self.arr_a_flag.eq(Cat(*skew_taps(m, pf, R, "skew_f")))
        if cfg.skewed:                       # the memories hold the skewed streams
            m.d.comb += [self.arr_a_in.eq(pa), self.arr_b_in.eq(pb)]
        else:
            m.d.comb += [
                self.arr_a_in.eq(Cat(*(delayed(m, pa[i * n:(i + 1) * n], i, f"skew_a{i}")
                                       for i in range(R)))),
                self.arr_b_in.eq(Cat(*(delayed(m, pb[j * n:(j + 1) * n], j, f"skew_b{j}")
                                       for j in range(C))))]

        # ---- done: the last write of the collector -------------------------------------
        with m.If(emit & arr_final):
            m.d.sync += [done_run.eq(1), done_cnt.eq(R + C + P - 1 + overlap - cfg.skewed)]
        with m.If(done_run):
            m.d.sync += done_cnt.eq(done_cnt - 1)
            with m.If(done_cnt == 0):
                m.d.sync += [done_run.eq(0), h.done.eq(1)]

        if overlap:
            c_reads, c_writes = self._collector_delayed(m, h, acc, reading | arr_valid | done_run)
        elif cfg.paired:
            c_reads, c_writes = self._collector_paired(m, h, acc, pf,
                                                      reading | arr_valid | done_run)
        else:
            c_reads, c_writes = self._collector_early(m, h, acc, pf, reading, arr_valid,
                                                     done_run)
        finish_counters(self, m, cfg, h, a_on, b_on, c_reads, c_writes)
        return m

    def _collector_early(self, m, h, acc, pf, reading, arr_valid, done_run):
        """Compact OS PE: per lane, write each chain result into its bank; returns the
        per-lane C read and write strobes."""
        cfg = self.cfg
        W, P, drain = cfg.array.mac.acc_width, cfg.array.latency, cfg.drain
        f, check = h.f, h.check
        # ---- collector: per lane, write each chain result into its bank ---------------
        # Lane d's s-th valid cycle of a window holds PE chain[d][s] (s < len_d; the rest
        # are the drain zeros). Windows are m cycles
        # long and lane d's is lane d-1's one cycle later (lane 0's: the pre-skew drain
        # flag 1 + P cycles later), so lane d-1 tells lane d one cycle ahead that a result
        # comes: lane d reads the old C word then (accumulate) and writes the sum in the
        # cycle the result is on c_out; no result register.
        # Tile t's result s of every lane goes to address c_base + t*m + s of its bank:
        # lane 0 counts its valid cycles (m per window) from c_base, and lane d's address
        # and window position are lane d-1's one cycle later (a shift chain, no counter
        # per lane); lane d-1's are also lane d's read address and position one cycle
        # ahead.
        collecting = h.collecting
        c_reads, c_writes = [], []
        # window position (read only in the window: 0..m-1; m a power of two, so s + 1
        # wraps to 0 after the window's last cycle)
        s = Signal(max(1, (drain - 1).bit_length()), name="col_s0")
        ptr = Signal(range(cfg.c_depth), name="col_ptr0")      # this cycle's address
        valid = self.arr_c_valid[0] & collecting
        m.d.sync += s.eq(Mux(valid, s + 1, 0))
        with m.If(check):
            m.d.sync += ptr.eq(f["c_base"])
        with m.Elif(valid):
            m.d.sync += ptr.eq(ptr + 1)
        prev_valid = delayed(m, pf, P, "col_pf") & collecting     # lane 0's valid, next cycle
        real_next = prev_valid & ~valid          # lane 0 holds one result per window
        raddr = ptr
        for d, length in enumerate(cfg.lane_len):
            if d:
                s_d = Signal.like(s, name=f"col_s{d}", reset_less=True)
                ptr_d = Signal.like(ptr, name=f"col_ptr{d}", reset_less=True)
                m.d.sync += [s_d.eq(s), ptr_d.eq(ptr)]
                valid = self.arr_c_valid[d] & collecting
                real_next, raddr = prev_valid & (s < length), ptr
                s, ptr = s_d, ptr_d
            real = valid & (s < length)
            c_reads.append(real_next & acc)
            c_writes.append(real)
            drive_c_lane(self, m, h, d, W, ren=real_next & acc, raddr=raddr,
                         array_addr=reading | arr_valid | done_run, write=real, waddr=ptr,
                         acc=acc)
            prev_valid = valid

        return c_reads, c_writes

    def _collector_paired(self, m, h, acc, pf, running):
        """Square compact OS PE: bank d takes lanes d and d + m (m = R). Lane d's window
        of a tile (m cycles) ends as lane d + m's begins, and tiles come at least 2m
        cycles apart, so the two never write in the same cycle. Tile t's result s goes to
        ``c_base + t*m + s`` (lane d) and ``c_base + t*m + m - 1 - s`` (lane d + m: len_d
        + len_{d+m} = m words exactly). Bank 0 counts lane 0's valid cycles up from
        c_base (``up``) and lane m's down from the tile's last word (``down``); bank d's
        address and window position are bank d-1's one cycle later (a shift chain),
        which are also bank d's read address and position one cycle ahead (accumulate:
        read the old word then, write the sum in the result's cycle)."""
        cfg = self.cfg
        W, P, mm, L = cfg.array.mac.acc_width, cfg.array.latency, cfg.drain, cfg.lanes
        lens = cfg.lane_len
        valid = [self.arr_c_valid[u] & h.collecting for u in range(L)]
        sbits = max(1, (mm - 1).bit_length())       # window position, wraps at m
        s = Signal(sbits, name="col_s0")
        up = Signal(range(cfg.c_depth), name="col_up")
        down = Signal(range(cfg.c_depth), name="col_down")
        m.d.sync += s.eq(Mux(valid[0] | valid[mm], s + 1, 0))
        with m.If(h.check):
            m.d.sync += up.eq(h.f["c_base"])
        with m.Elif(valid[0]):
            m.d.sync += up.eq(up + 1)
        down_next = Mux(valid[0], up, down - 1)      # lane m's address next cycle
        m.d.sync += down.eq(down_next)
        pos, addr = [s], [Mux(valid[mm], down, up)]  # per bank, this cycle
        for d in range(1, mm):
            s_d = Signal(sbits, name=f"col_s{d}", reset_less=True)
            a_d = Signal(range(cfg.c_depth), name=f"col_ptr{d}", reset_less=True)
            m.d.sync += [s_d.eq(pos[-1]), a_d.eq(addr[-1])]
            pos.append(s_d)
            addr.append(a_d)
        lane0_next = delayed(m, pf, P, "col_pf") & h.collecting & ~valid[0]
        c_reads, c_writes = [], []
        for d in range(mm):
            hi = d + mm
            real = valid[d] & (pos[d] < lens[d])
            res = self.arr_c_out[d * W:(d + 1) * W]
            if hi < L:
                real |= valid[hi] & (pos[d] < lens[hi])
                res = Mux(valid[hi], self.arr_c_out[hi * W:(hi + 1) * W], res)
            if d == 0:          # lane 0's first cycle, or lane m's next (from lane m-1)
                ahead = lane0_next | (valid[mm - 1] & (pos[mm - 1] < lens[mm]))
                raddr = Mux(lane0_next, up, down_next)
            else:
                ahead = valid[d - 1] & (pos[d - 1] < lens[d])
                if hi < L:
                    ahead |= valid[hi - 1] & (pos[d - 1] < lens[hi])
                raddr = addr[d - 1]
            c_reads.append(ahead & acc)
            c_writes.append(real)
            drive_c_lane(self, m, h, d, W, ren=ahead & acc, raddr=raddr, array_addr=running,
                         write=real, waddr=addr[d], acc=acc, result=res)
        return c_reads, c_writes

    def _collector_delayed(self, m, h, acc, running):
        """Double-buffered OS PE (fold overlap): lane d shows exactly its chain's len_d
        results per tile, back to back with the next tile's, so every valid cycle is a
        result; the collector reads the old C word in that cycle (accumulate) and writes
        the sum the next (a result register per lane). ``ptr`` is the address of the
        pending write, else of the next result."""
        cfg = self.cfg
        W = cfg.array.mac.acc_width
        c_reads, c_writes = [], []
        for d in range(cfg.lanes):
            real = self.arr_c_valid[d]
            ptr = Signal(range(cfg.c_depth), name=f"col_ptr{d}")
            val = Signal(W, name=f"col_v{d}")
            pend = Signal(name=f"col_pend{d}")
            with m.If(h.check):
                m.d.sync += ptr.eq(h.f["c_base"])
            with m.Elif(pend):
                m.d.sync += ptr.eq(ptr + 1)
            m.d.sync += [pend.eq(real), val.eq(self.arr_c_out[d * W:(d + 1) * W])]
            c_reads.append(real & acc)
            c_writes.append(real)
            drive_c_lane(self, m, h, d, W, ren=real & acc, raddr=ptr + pend,
                         array_addr=running, write=pend, waddr=ptr, acc=acc, result=val)
        return c_reads, c_writes
