"""The tile's host interface and the parts of its controller every dataflow shares:
command fields, the check cycle, done/error and their codes, LOAD/STORE through the
host port, the read-data multiplexer, the access counters, and the edge-vector
assembly and skew lines the feeders use."""
from types import SimpleNamespace

from amaranth.hdl import Signal, Cat, Mux
from amaranth.lib.wiring import In, Out

from .config import TileConfig, TileError, HostOp, Mem, DIM_BITS, ADDR_BITS

__all__ = ["host_ports", "COUNTER_BITS", "build_host", "delayed", "skew_taps", "clamp",
           "assemble", "finish_counters", "bound_walk"]

COUNTER_BITS = 32
_FIELDS = ("a_base", "b_base", "c_base", "a_stride", "b_stride", "m", "k", "n",
           "accumulate", "mode")


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


def delayed(m, sig, stages, name):
    """``sig`` through ``stages`` registers (reset to 0)."""
    for s in range(stages):
        reg = Signal(len(sig), name=f"{name}_d{s + 1}")
        m.d.sync += reg.eq(sig)
        sig = reg
    return sig


def skew_taps(m, sig, lanes, name):
    """The skew line of one signal shared by every lane: lane i sees ``sig`` delayed by
    i cycles. One shift chain of ``lanes - 1`` registers, tapped after every stage (not
    a separate line per lane: i(i-1)/2 registers fewer)."""
    taps = [sig]
    for i in range(1, lanes):
        reg = Signal(len(sig), name=f"{name}_d{i}")
        m.d.sync += reg.eq(taps[-1])
        taps.append(reg)
    return taps


def clamp(m, x, top):
    """min(x, top), as narrow as ``top`` (keeps bound multipliers small)."""
    out = Signal(range(top + 1))
    m.d.comb += out.eq(Mux(x >= top, top, x))
    return out


def bound_walk(m, start, walks):
    """Where regions of repeated blocks end, without a multiplier: ``walks`` lists
    ``(first_end, stride, count, limit)`` (the end of the first block, the stride, the
    blocks, the memory's depth). From a cycle where ``start`` is high, every end moves
    one stride per cycle while it has blocks left, all at once, saturating at
    ``limit + 1``; ``w`` = max(count) - 1 steps. Returns ``(final, over, walking)``:
    ``final`` is high in the cycle whose ends are complete (``start``'s own cycle when
    w = 0, else w cycles later), ``over`` then tells whether some end is past its limit,
    ``walking`` while the steps run (the fields must stay put)."""
    w = Signal(DIM_BITS, name="walk_w")
    counts = [c for _, _, c, _ in walks]
    top = counts[0]
    for c in counts[1:]:
        top = Mux(c > top, c, top)
    m.d.comb += w.eq(top - 1)
    j, walking = Signal(DIM_BITS, name="walk_j"), Signal(name="walking")
    jj = Mux(walking, j, 0)                  # steps done
    final = Signal(name="walk_final")
    m.d.comb += final.eq((start & (w == 0)) | (walking & (j == w)))
    over = 0
    step = (start & (w != 0)) | (walking & (j != w))
    for i, (first, stride, count, limit) in enumerate(walks):
        def sat(x, limit=limit):
            return Mux(x > limit, limit + 1, x)
        reg = Signal(range(limit + 2), name=f"walk_end{i}")
        cur = Signal(range(limit + 2), name=f"walk_cur{i}")
        m.d.comb += cur.eq(Mux(walking, reg, sat(first)))
        with m.If(step):
            m.d.sync += reg.eq(sat(cur + Mux(jj < count - 1, clamp(m, stride, limit + 1), 0)))
        over = over | (cur > limit)
    with m.If(step):
        m.d.sync += [j.eq(jj + 1), walking.eq(1)]
    with m.If(final):
        m.d.sync += walking.eq(0)
    return final, over, walking


def assemble(m, rdata, beats, lanes_bits, arrived, arr_beat, last_beat):
    """An edge vector from ``beats`` lines of ``rdata``: the first ``beats - 1`` lines
    are held (line j arrives when ``arrived`` with ``arr_beat == last_beat - beats + 1
    + j``), the last is the memory's output itself."""
    held = [Signal(len(rdata), name=f"line_{lanes_bits}_{j}") for j in range(beats - 1)]
    for j, reg in enumerate(held):
        with m.If(arrived & (arr_beat == last_beat - beats + 1 + j)):
            m.d.sync += reg.eq(rdata)
    return Cat(*held, rdata)[:lanes_bits]


def build_host(comp, m, cfg: TileConfig, *, init_len):
    """Host side of ``comp`` (a :class:`hdl.tile.logic.TileLogic`). Returns a namespace:
    ``f`` (registered command fields), ``check`` (high in the cycle after a GEMM is
    accepted), ``fail(code)``, ``done``, ``busy_terms`` (append signals that keep the
    tile busy), ``init_cnt`` (counts down the power-up flush), ``collecting`` (not in
    the flush), host strobes (``host_ok``, ``host_re``, ``mem_a``, ``mem_b``, ``mem_c``,
    ``op``) and ``reading`` (the feeders own the A/B read ports)."""
    L = cfg.c_banks
    f = {name: Signal(len(getattr(comp, name)), name=f"f_{name}") for name in _FIELDS}
    init_cnt = Signal(range(init_len + 1), init=init_len)
    busy = Signal()
    done, error, err_code = Signal(), Signal(), Signal(3)
    m.d.comb += [comp.busy.eq(busy), comp.done.eq(done), comp.error.eq(error),
                 comp.err_code.eq(err_code)]

    def fail(code):
        m.d.sync += [done.eq(1), error.eq(1), err_code.eq(code)]

    hv, op = comp.host_valid, comp.host_op
    mem_a, mem_b, mem_c = (comp.host_mem == Mem.A), (comp.host_mem == Mem.B), \
        (comp.host_mem == Mem.C)
    in_range = Signal()
    m.d.comb += in_range.eq(
        (mem_a & (comp.host_bank < cfg.a_banks) & (comp.host_addr < cfg.depth)) |
        (mem_b & (comp.host_bank < cfg.b_banks) & (comp.host_addr < cfg.depth)) |
        (mem_c & (comp.host_bank < L) & (comp.host_addr < cfg.c_depth)))
    rw = (op == HostOp.WRITE) | (op == HostOp.READ)
    host_ok = Signal()
    m.d.comb += host_ok.eq(hv & ~busy & in_range & rw)
    host_we = host_ok & (op == HostOp.WRITE)
    host_re = host_ok & (op == HostOp.READ)
    m.d.comb += [comp.a_waddr.eq(comp.host_addr), comp.a_wdata.eq(comp.host_wdata),
                 comp.b_waddr.eq(comp.host_addr), comp.b_wdata.eq(comp.host_wdata)]
    for i in range(cfg.a_banks):
        m.d.comb += comp.a_wen[i].eq(host_we & mem_a & (comp.host_bank == i))
    for i in range(cfg.b_banks):
        m.d.comb += comp.b_wen[i].eq(host_we & mem_b & (comp.host_bank == i))
    rd_mem, rd_bank = Signal(2), Signal(8)
    m.d.sync += [comp.host_rvalid.eq(host_re), rd_mem.eq(comp.host_mem),
                 rd_bank.eq(comp.host_bank)]
    with m.Switch(rd_mem):
        with m.Case(Mem.A):
            m.d.comb += comp.host_rdata.eq(comp.a_rdata.word_select(rd_bank, cfg.width)
                                           if cfg.a_banks > 1 else comp.a_rdata)
        with m.Case(Mem.B):
            m.d.comb += comp.host_rdata.eq(comp.b_rdata.word_select(rd_bank, cfg.width)
                                           if cfg.b_banks > 1 else comp.b_rdata)
        with m.Case(Mem.C):
            with m.Switch(rd_bank):
                for d in range(L):
                    with m.Case(d):
                        m.d.comb += comp.host_rdata.eq(getattr(comp, f"c{d}_rdata"))

    with m.If(hv & rw & ~busy & ~in_range):
        fail(TileError.ADDR_RANGE)
    with m.If(hv & (op != 0) & busy):       # refused; a running GEMM goes on
        m.d.sync += [error.eq(1), err_code.eq(TileError.BUSY)]
    check = Signal()
    with m.If(init_cnt != 0):
        m.d.sync += init_cnt.eq(init_cnt - 1)
    with m.If(hv & (op == HostOp.GEMM) & ~busy):
        m.d.sync += [check.eq(1), done.eq(0), error.eq(0), err_code.eq(0)]
        m.d.sync += [f[k].eq(getattr(comp, k)) for k in f]
    with m.If(check):
        m.d.sync += check.eq(0)
    busy_terms = [init_cnt != 0, check]
    ns = SimpleNamespace(f=f, check=check, fail=fail, done=done, busy=busy,
                         busy_terms=busy_terms, init_cnt=init_cnt,
                         collecting=~(init_cnt != 0), host_ok=host_ok, host_re=host_re,
                         host_we=host_we, mem_a=mem_a, mem_b=mem_b, mem_c=mem_c, op=op)
    return ns


def drive_readers(comp, m, h, *, reading, a_on, b_on, a_ptr, b_ptr, hold):
    """The A and B read ports: a beat read at ``a_ptr``/``b_ptr`` when ``a_on``/``b_on``
    (each pointer then moves on), the host's reads while not ``reading``, and the
    ``hold`` countdown (bubbles before a vector) while reading."""
    m.d.comb += [comp.a_ren.eq(a_on | h.host_re & h.mem_a),
                 comp.b_ren.eq(b_on | h.host_re & h.mem_b),
                 comp.a_raddr.eq(Mux(reading, a_ptr, comp.host_addr)),
                 comp.b_raddr.eq(Mux(reading, b_ptr, comp.host_addr))]
    with m.If(a_on):
        m.d.sync += a_ptr.eq(a_ptr + 1)
    with m.If(b_on):
        m.d.sync += b_ptr.eq(b_ptr + 1)
    with m.If(reading & (hold != 0)):
        m.d.sync += hold.eq(hold - 1)


def drive_c_lane(comp, m, h, lane, W, *, ren, raddr, array_addr, write, waddr, acc,
                 result=None):
    """The C bank of output ``lane``: the collector's read (``ren`` at ``raddr`` while
    ``array_addr``, else the host's address) and its write of ``old + result`` (``write``
    at ``waddr``; ``old`` is the word read the cycle before when ``acc``, else 0;
    ``result`` by default the lane's array output), or the host port's READ/WRITE of
    that bank when the collector leaves it."""
    host_c = h.host_ok & h.mem_c & (comp.host_bank == lane)
    old = Mux(acc, getattr(comp, f"c{lane}_rdata"), 0)
    res = (comp.arr_c_out[lane * W:(lane + 1) * W] if result is None else result).as_signed()
    m.d.comb += [
        getattr(comp, f"c{lane}_ren").eq(ren | host_c & (h.op == HostOp.READ)),
        getattr(comp, f"c{lane}_raddr").eq(Mux(array_addr, raddr, comp.host_addr)),
        getattr(comp, f"c{lane}_wen").eq(write | host_c & (h.op == HostOp.WRITE)),
        getattr(comp, f"c{lane}_waddr").eq(Mux(write, waddr, comp.host_addr)),
        getattr(comp, f"c{lane}_wdata").eq(Mux(write, old + res, comp.host_wdata))]


def finish_counters(comp, m, cfg, h, a_on, b_on, c_reads, c_writes):
    """Drive ``busy`` from ``h.busy_terms`` and the access counters (if configured):
    A/B bank-word reads per cycle (``a_on``/``b_on`` a line each), C reads and writes
    (lists of per-lane strobes)."""
    busy = 0
    for t in h.busy_terms:
        busy = busy | t
    m.d.comb += h.busy.eq(busy)
    if not cfg.counters:
        return
    cnt = {k: Signal(COUNTER_BITS, name=k) for k in
           ("cnt_a_reads", "cnt_b_reads", "cnt_c_reads", "cnt_c_writes")}
    m.d.comb += [getattr(comp, k).eq(v) for k, v in cnt.items()]
    with m.If(h.check):
        m.d.sync += [v.eq(0) for v in cnt.values()]
    with m.Else():
        m.d.sync += [cnt["cnt_a_reads"].eq(cnt["cnt_a_reads"] + (a_on * cfg.a_banks)),
                     cnt["cnt_b_reads"].eq(cnt["cnt_b_reads"] + (b_on * cfg.b_banks)),
                     cnt["cnt_c_reads"].eq(cnt["cnt_c_reads"] + sum(c_reads)),
                     cnt["cnt_c_writes"].eq(cnt["cnt_c_writes"] + sum(c_writes))]
