"""Feeders, collector and controller of the tile (everything but memories and array).

:class:`TileLogic` is one Amaranth component; :mod:`hdl.tile.top` wires it to the
scratchpad memories and to the generated array. Its logic area is what
``systolic bench --only tile`` measures against the array's.

Timeline of a GEMM (cycle t: the period whose signals edge t samples; the command is
sampled by edge 0). Edge 0 registers the fields; cycle 1 checks them (errors: ``done``
and ``error`` after edge 1); reading starts in cycle 2. With ``b`` = beats per edge
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

The compact OS PE has no reset: after ``rst`` the controller plays the power-up drain
(:func:`hdl.pe.init_cycles`) and ignores its outputs; ``busy`` is high meanwhile.
"""
from amaranth.hdl import Module, Signal, Cat, Mux
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .config import TileConfig, TileError, HostOp, Mem, DIM_BITS, ADDR_BITS

__all__ = ["TileLogic", "host_ports", "COUNTER_BITS"]

COUNTER_BITS = 32


def host_ports(cfg: TileConfig):
    """The host interface (ports of the tile's top module, sampled on rising edges)."""
    hw = max(cfg.width, cfg.c_width)
    ports = {
        "host_valid": In(1), "host_op": In(2), "host_mem": In(2), "host_bank": In(8),
        "host_addr": In(ADDR_BITS), "host_wdata": In(hw),
        "host_rdata": Out(hw), "host_rvalid": Out(1),
        "a_base": In(ADDR_BITS), "b_base": In(ADDR_BITS), "c_base": In(ADDR_BITS),
        "a_stride": In(ADDR_BITS), "b_stride": In(ADDR_BITS),
        "m": In(DIM_BITS), "k": In(DIM_BITS), "n": In(DIM_BITS),
        "accumulate": In(1), "mode": In(2),
        "busy": Out(1), "done": Out(1), "error": Out(1), "err_code": Out(3),
    }
    if cfg.counters:
        for name in ("cnt_a_reads", "cnt_b_reads", "cnt_c_reads", "cnt_c_writes"):
            ports[name] = Out(COUNTER_BITS)
    return ports


def _bits(x):
    return max(1, (x - 1).bit_length())


class TileLogic(wiring.Component):
    """Controller, feeders (A, B: reader and skew lines) and collector of one tile.

    Ports: :func:`host_ports`, plus the memory ports (``a_raddr``/``a_ren``/``a_rdata``
    a line of A, ``a_waddr``/``a_wdata``/``a_wen`` one bit per bank; B alike; per C bank d
    ``c{d}_raddr``, ``c{d}_ren``, ``c{d}_rdata``, ``c{d}_waddr``, ``c{d}_wdata``,
    ``c{d}_wen``) and the OS array's ports (``arr_a_in``, ``arr_a_drain``, ``arr_b_in``,
    ``arr_c_out``, ``arr_c_valid``). Read ports are synchronous (data one edge later).
    """

    def __init__(self, cfg: TileConfig):
        self.cfg = cfg
        R, C, n = cfg.rows, cfg.cols, cfg.array.mac.width
        W, L = cfg.array.mac.acc_width, cfg.lanes
        ports = host_ports(cfg)
        la, lb = cfg.a_banks * cfg.width, cfg.b_banks * cfg.width
        ports |= {"a_raddr": Out(ADDR_BITS), "a_ren": Out(1), "a_rdata": In(la),
                  "a_waddr": Out(ADDR_BITS), "a_wdata": Out(cfg.width),
                  "a_wen": Out(cfg.a_banks),
                  "b_raddr": Out(ADDR_BITS), "b_ren": Out(1), "b_rdata": In(lb),
                  "b_waddr": Out(ADDR_BITS), "b_wdata": Out(cfg.width),
                  "b_wen": Out(cfg.b_banks)}
        for d in range(L):
            ports |= {f"c{d}_raddr": Out(ADDR_BITS), f"c{d}_ren": Out(1),
                      f"c{d}_rdata": In(cfg.c_width), f"c{d}_waddr": Out(ADDR_BITS),
                      f"c{d}_wdata": Out(cfg.c_width), f"c{d}_wen": Out(1)}
        ports |= {"arr_a_in": Out(R * n), "arr_a_drain": Out(R), "arr_b_in": Out(C * n),
                  "arr_c_out": In(L * W), "arr_c_valid": In(L)}
        super().__init__(ports)

    def elaborate(self, platform):
        cfg = self.cfg
        m = Module()
        R, C, n = cfg.rows, cfg.cols, cfg.array.mac.width
        W, L, P = cfg.array.mac.acc_width, cfg.lanes, cfg.array.latency
        drain = cfg.drain
        b, ba, bb = cfg.beats, cfg.beats_a, cfg.beats_b
        lr, lc = R.bit_length() - 1, C.bit_length() - 1

        # ---- command fields, registered at acceptance --------------------------------
        f = {name: Signal(len(getattr(self, name)), name=f"f_{name}")
             for name in ("a_base", "b_base", "c_base", "a_stride", "b_stride",
                          "m", "k", "n", "accumulate", "mode")}
        init_len = drain + R + C + P + 4           # power-up flush and its outputs
        init_cnt = Signal(range(init_len + 1), init=init_len)
        busy = Signal()
        done, error, err_code = Signal(), Signal(), Signal(3)
        m.d.comb += [self.busy.eq(busy), self.done.eq(done), self.error.eq(error),
                     self.err_code.eq(err_code)]

        def fail(code):
            m.d.sync += [done.eq(1), error.eq(1), err_code.eq(code)]

        # Blocks of the GEMM: MB = ceil(M/R), NB = ceil(N/C) (R, C powers of two).
        mb_total = Signal(DIM_BITS)
        nb_total = Signal(DIM_BITS)
        m.d.comb += [mb_total.eq((f["m"] + (R - 1)) >> lr), nb_total.eq((f["n"] + (C - 1)) >> lc)]
        blk_a = Signal(ADDR_BITS + 4)                      # lines of one A block: K * beats_a
        blk_b = Signal(ADDR_BITS + 4)
        m.d.comb += [blk_a.eq(f["k"] * ba), blk_b.eq(f["k"] * bb)]
        # Bounds. A stride >= depth can only fit with one block: clamping it to depth
        # keeps the multipliers (blocks x stride) depth-wide, not 16 bits wide; likewise
        # the tile count for C, clamped to c_depth / m + 1.
        def clamp(x, top):
            out = Signal(range(top + 1))
            m.d.comb += out.eq(Mux(x >= top, top, x))
            return out

        tmax = cfg.c_depth // drain + 1
        end_a = Signal(2 * ADDR_BITS + 2)
        end_b = Signal(2 * ADDR_BITS + 2)
        end_c = Signal(2 * ADDR_BITS + 2)
        m.d.comb += [
            end_a.eq(f["a_base"] + (mb_total - 1) * clamp(f["a_stride"], cfg.depth) + blk_a),
            end_b.eq(f["b_base"] + (nb_total - 1) * clamp(f["b_stride"], cfg.depth) + blk_b),
            end_c.eq(f["c_base"] + clamp(mb_total, tmax) * clamp(nb_total, tmax) * drain)]

        # ---- reader state ----------------------------------------------------------------
        mb, nb, kk = Signal(DIM_BITS), Signal(DIM_BITS), Signal(DIM_BITS)
        beat = Signal(range(b))
        hold = Signal(range(drain + 2))
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

        # ---- host interface ------------------------------------------------------------
        hv, op = self.host_valid, self.host_op
        mem_a = self.host_mem == Mem.A
        mem_b = self.host_mem == Mem.B
        mem_c = self.host_mem == Mem.C
        in_range = Signal()
        m.d.comb += in_range.eq(
            (mem_a & (self.host_bank < cfg.a_banks) & (self.host_addr < cfg.depth)) |
            (mem_b & (self.host_bank < cfg.b_banks) & (self.host_addr < cfg.depth)) |
            (mem_c & (self.host_bank < L) & (self.host_addr < cfg.c_depth)))
        host_ok = Signal()
        m.d.comb += host_ok.eq(hv & ~busy & in_range & ((op == HostOp.WRITE) | (op == HostOp.READ)))
        host_we = host_ok & (op == HostOp.WRITE)
        host_re = host_ok & (op == HostOp.READ)
        m.d.comb += [self.a_waddr.eq(self.host_addr), self.a_wdata.eq(self.host_wdata),
                     self.b_waddr.eq(self.host_addr), self.b_wdata.eq(self.host_wdata)]
        for i in range(cfg.a_banks):
            m.d.comb += self.a_wen[i].eq(host_we & mem_a & (self.host_bank == i))
        for i in range(cfg.b_banks):
            m.d.comb += self.b_wen[i].eq(host_we & mem_b & (self.host_bank == i))
        rd_mem, rd_bank = Signal(2), Signal(8)
        m.d.sync += [self.host_rvalid.eq(host_re), rd_mem.eq(self.host_mem),
                     rd_bank.eq(self.host_bank)]
        la = cfg.a_banks * cfg.width
        with m.Switch(rd_mem):
            with m.Case(Mem.A):
                m.d.comb += self.host_rdata.eq(self.a_rdata.word_select(rd_bank, cfg.width)
                                               if cfg.a_banks > 1 else self.a_rdata[:la])
            with m.Case(Mem.B):
                m.d.comb += self.host_rdata.eq(self.b_rdata.word_select(rd_bank, cfg.width)
                                               if cfg.b_banks > 1 else self.b_rdata)
            with m.Case(Mem.C):
                with m.Switch(rd_bank):
                    for d in range(L):
                        with m.Case(d):
                            m.d.comb += self.host_rdata.eq(getattr(self, f"c{d}_rdata"))

        # ---- controller ------------------------------------------------------------------
        with m.If(hv & ((op == HostOp.WRITE) | (op == HostOp.READ)) & ~busy & ~in_range):
            fail(TileError.ADDR_RANGE)
        with m.If(hv & (op != 0) & busy):       # refused; a running GEMM goes on
            m.d.sync += [error.eq(1), err_code.eq(TileError.BUSY)]
        check = Signal()
        with m.If(init_cnt != 0):
            m.d.sync += init_cnt.eq(init_cnt - 1)
        m.d.comb += busy.eq((init_cnt != 0) | check | reading | done_run)
        with m.If(hv & (op == HostOp.GEMM) & ~busy):
            m.d.sync += [check.eq(1), done.eq(0), error.eq(0), err_code.eq(0)]
            m.d.sync += [f[k].eq(getattr(self, k)) for k in f]
        with m.If(check):
            m.d.sync += check.eq(0)
            with m.If(f["mode"] != 0):
                fail(TileError.MODE)
            with m.Elif((f["m"] == 0) | (f["k"] == 0) | (f["n"] == 0) | (f["k"] > cfg.max_k)):
                fail(TileError.SHAPE)
            with m.Elif((end_a > cfg.depth) | (end_b > cfg.depth) | (end_c > cfg.c_depth)):
                fail(TileError.NO_FIT)
            with m.Elif(((mb_total > 1) & (f["a_stride"] < blk_a)) |
                        ((nb_total > 1) & (f["b_stride"] < blk_b))):
                fail(TileError.OVERLAP)
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
        m.d.comb += [self.a_ren.eq(a_on | host_re & mem_a),
                     self.b_ren.eq(b_on | host_re & mem_b),
                     self.a_raddr.eq(Mux(reading, a_ptr, self.host_addr)),
                     self.b_raddr.eq(Mux(reading, b_ptr, self.host_addr))]
        with m.If(a_on):
            m.d.sync += a_ptr.eq(a_ptr + 1)
        with m.If(b_on):
            m.d.sync += b_ptr.eq(b_ptr + 1)
        with m.If(reading & (hold != 0)):
            m.d.sync += hold.eq(hold - 1)
        vec_end = issue & (beat == b - 1)
        k_end = vec_end & (kk == f["k"] - 1)
        m.d.sync += [arr_valid.eq(issue), arr_beat.eq(beat),
                     arr_last_k.eq(k_end), arr_final.eq(k_end & last_tile)]
        with m.If(issue):
            m.d.sync += beat.eq(Mux(beat == b - 1, 0, beat + 1))
        with m.If(vec_end):
            m.d.sync += kk.eq(kk + 1)
        with m.If(k_end):
            m.d.sync += [kk.eq(0), hold.eq(max(drain + 1 - b, 0))]
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
        def assemble(rdata, beats, lanes_bits):
            held = [Signal(len(rdata), name=f"line_{lanes_bits}_{j}") for j in range(beats - 1)]
            for j, reg in enumerate(held):
                with m.If(arr_valid & (arr_beat == b - beats + j)):
                    m.d.sync += reg.eq(rdata)
            return Cat(*held, rdata)[:lanes_bits]

        vec_a = assemble(self.a_rdata, ba, R * n)
        vec_b = assemble(self.b_rdata, bb, C * n)
        emit = arr_valid & (arr_beat == b - 1)

        # ---- pre-skew registers and skew lines -------------------------------------------
        pa, pb, pf = Signal(R * n), Signal(C * n), Signal()
        flag_cnt = Signal(range(drain + 1))
        m.d.sync += [pa.eq(Mux(emit, vec_a, 0)), pb.eq(Mux(emit, vec_b, 0))]
        init_flag = (init_cnt > init_len - drain)
        with m.If(emit & arr_last_k):
            m.d.sync += [pf.eq(1), flag_cnt.eq(drain - 1)]
        with m.Elif(flag_cnt != 0):
            m.d.sync += [pf.eq(1), flag_cnt.eq(flag_cnt - 1)]
        with m.Else():
            m.d.sync += pf.eq(init_flag)

        def delayed(sig, stages, name):
            for s in range(stages):
                reg = Signal(len(sig), name=f"{name}_d{s + 1}")
                m.d.sync += reg.eq(sig)
                sig = reg
            return sig

        m.d.comb += [
            self.arr_a_in.eq(Cat(*(delayed(pa[i * n:(i + 1) * n], i, f"skew_a{i}")
                                   for i in range(R)))),
            self.arr_a_drain.eq(Cat(*(delayed(pf, i, f"skew_f{i}") for i in range(R)))),
            self.arr_b_in.eq(Cat(*(delayed(pb[j * n:(j + 1) * n], j, f"skew_b{j}")
                                   for j in range(C))))]

        # ---- done: the last write of the collector -------------------------------------
        with m.If(emit & arr_final):
            m.d.sync += [done_run.eq(1), done_cnt.eq(R + C + P - 1)]
        with m.If(done_run):
            m.d.sync += done_cnt.eq(done_cnt - 1)
            with m.If(done_cnt == 0):
                m.d.sync += [done_run.eq(0), done.eq(1)]

        # ---- collector: per lane, write each chain result into its bank ---------------
        # Lane d's s-th valid cycle of a window holds PE chain[d][s] (s < len_d; the rest
        # are the drain zeros). Lane d writes its results at consecutive addresses from
        # c_base: tile t's result s lands at c_base + t * len_d + s. Windows are m cycles
        # long and lane d's is lane d-1's one cycle later (lane 0's: the pre-skew drain
        # flag 1 + P cycles later), so lane d-1 tells lane d one cycle ahead that a result
        # comes: lane d reads the old C word then (accumulate) and writes the sum in the
        # cycle the result is on c_out; no result register.
        collecting = ~(init_cnt != 0)
        sb = _bits(drain + 1)
        c_reads, c_writes = [], []
        prev_valid = delayed(pf, P, "col_pf") & collecting     # lane 0's valid, next cycle
        prev_s0 = None
        for d, length in enumerate(cfg.lane_len):
            valid = self.arr_c_valid[d] & collecting
            s = Signal(sb, name=f"col_s{d}")
            ptr = Signal(range(cfg.c_depth), name=f"col_ptr{d}")   # next write's address
            real = valid & (s < length)
            m.d.sync += s.eq(Mux(valid, s + 1, 0))
            if d == 0:
                real_next = prev_valid & ~valid      # lane 0 holds one result per window
            else:
                real_next = prev_valid & (prev_s0 < length)
            prev_valid, prev_s0 = valid, s
            with m.If(check):
                m.d.sync += ptr.eq(f["c_base"])
            with m.Elif(real):
                m.d.sync += ptr.eq(ptr + 1)
            c_reads.append(real_next & acc)
            c_writes.append(real)
            host_c = host_ok & mem_c & (self.host_bank == d)
            old = Mux(acc, getattr(self, f"c{d}_rdata"), 0)
            res = self.arr_c_out[d * W:(d + 1) * W].as_signed()
            m.d.comb += [
                getattr(self, f"c{d}_ren").eq(real_next & acc | host_c & (op == HostOp.READ)),
                getattr(self, f"c{d}_raddr").eq(Mux(reading | done_run, Mux(real, ptr + 1, ptr),
                                                    self.host_addr)),
                getattr(self, f"c{d}_wen").eq(real | host_c & (op == HostOp.WRITE)),
                getattr(self, f"c{d}_waddr").eq(Mux(real, ptr, self.host_addr)),
                getattr(self, f"c{d}_wdata").eq(Mux(real, old + res, self.host_wdata))]

        # ---- access counters (benches) ---------------------------------------------------
        if cfg.counters:
            cnt = {k: Signal(COUNTER_BITS, name=k) for k in
                   ("cnt_a_reads", "cnt_b_reads", "cnt_c_reads", "cnt_c_writes")}
            m.d.comb += [getattr(self, k).eq(v) for k, v in cnt.items()]
            with m.If(check):
                m.d.sync += [v.eq(0) for v in cnt.values()]
            with m.Else():
                m.d.sync += [cnt["cnt_a_reads"].eq(cnt["cnt_a_reads"] + (a_on * cfg.a_banks)),
                             cnt["cnt_b_reads"].eq(cnt["cnt_b_reads"] + (b_on * cfg.b_banks)),
                             cnt["cnt_c_reads"].eq(cnt["cnt_c_reads"] + sum(c_reads)),
                             cnt["cnt_c_writes"].eq(cnt["cnt_c_writes"] + sum(c_writes))]
        return m
