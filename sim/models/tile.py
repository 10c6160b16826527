"""Exact cycles and SRAM accesses of a GEMM command on the tile (:mod:`hdl.tile`).

``cycles``: from the edge that samples the GEMM command (edge 0) to the edge that raises
``done`` (the edge of the collector's last write), as the RTL's timeline
(:mod:`hdl.tile.logic`) defines them. With T = ceil(M/R) * ceil(N/C) output tiles,
K vectors per tile, b = :attr:`~hdl.tile.config.TileConfig.beats` cycles per edge
vector (lines of A and B read in parallel), m = min(R, C) (drain window), P the MAC
pipeline:

* vector v is emitted (pre-skew) in cycle ``e_v``; ``e_0 = 2 + w + b`` (edge 0 takes the
  command, cycle 1 checks it, the bounds walk ``w = max(MB, NB) - 1`` more cycles (one
  block per cycle, no multiplier: :func:`bound_steps`), reads start in cycle 2 + w and
  take b cycles);
* inside a tile ``e_v = e_{v-1} + b``: b - 1 stall cycles per vector when b > 1;
* across a tile boundary ``e_v = e_{v-1} + max(m + 1, b)``: the drain window (m + 1
  cycles from the last k to the next tile's first, as in the bare schedule) hides up to
  m + 1 - b cycles of reading;
* ``done`` with edge ``e_last + R + C + P``: the last result (lane R + C - 2) is on
  ``c_out`` in cycle ``e_last + R + C + P`` and written by that edge.

So ``cycles = 2 + w + b + (T - 1) * max(m + 1, b) + T * (K - 1) * b + R + C + P``. With
b = 1 this is the bare array's :func:`sim.models.cycles.model_cycles` (compact OS PE)
plus 4 + w: edge 0 and the check cycle, the bounds walk, one cycle of read latency, one
pre-skew register. On the
square array two output lanes share a C bank (:attr:`~hdl.tile.config.TileConfig.paired`),
so a tile's last k also comes at least 2m cycles after the previous tile's:
``cycles = 2 + w + b + (K - 1) * b + (T - 1) * max(max(m + 1, b) + (K - 1) * b, 2m) + R
+ C + P`` (the same as above when K * b >= m).
``stalls`` = cycles - the same with b = 1.

OS with fold overlap (double-buffered PE, ``a_last`` with the last k): the next tile's
vectors follow at once, but its last k comes at least m cycles after this tile's (the
drain of the longest diagonal): ``e_last(t+1) = e_last(t) + max(m, K*b)``; the
collector writes each result one cycle after it leaves (a result register per lane),
so ``cycles = 3 + w + K*b + (T - 1) * max(m, K*b) + R + C + P``: bare + 5 + w with
b = 1.

SRAM accesses (bank-word reads and writes; the host's LOAD/STORE are not counted):
A ``T * (K * beats_a + tail) * a_banks`` reads (every tile re-reads its A block: the
tile has no operand reuse buffer beyond the array; ``tail`` = R - 1 lines of a skewed
block, :attr:`~hdl.tile.config.TileConfig.skewed`, else 0), B
``T * (K * beats_b + tail) * b_banks`` reads, C
``T * R * C`` writes (one per PE result; drain zeros are not written) and as many reads
when the command accumulates (read-add-write), else 0.

Weight stationary (:mod:`hdl.tile.ws`): F = ceil(K/R) * ceil(N/C) folds, each R weight
vectors of ``bb = beats_b`` cycles and M activation vectors of ``ba = beats_a``, the next
fold's weights ``g = R + C + P - 1`` cycles after the last activation (the bare
sequential schedule)::

    cycles = 2 + bb + F * ((R - 1) * bb + M * ba) + (F - 1) * max(g, bb) + R + C + P

(with ba = bb = 1: the bare :func:`~sim.models.cycles.model_cycles` + 4). With fold
overlap (:mod:`hdl.tile.ws_overlap`) the two readers run at once; ``_ws_overlap_last``
replays their rule (bare + 4 with one line per vector). Accesses: A
``F * M * ba * a_banks`` reads, B ``F * R * bb * b_banks``, C ``F * M * C`` writes and
``(F or F - ceil(N/C)) * M * C`` reads (every fold but the first K block adds into C;
all of them when the command accumulates).
"""
from dataclasses import dataclass, asdict
from math import ceil

from hdl.tile import TileConfig, TileError, DIM_BITS, ADDR_BITS
from sim.models.cycles import model_cycles

__all__ = ["TileCycles", "tile_cycles", "gemm_error", "GemmCommand", "bound_steps",
           "error_cycles"]


@dataclass(frozen=True)
class GemmCommand:
    """The fields of a GEMM command (see :func:`hdl.tile.logic.host_ports`)."""
    M: int
    K: int
    N: int
    a_base: int = 0
    b_base: int = 0
    c_base: int = 0
    a_stride: int | None = None       # None: K * beats_a (blocks back to back)
    b_stride: int | None = None
    accumulate: bool = False
    mode: int = 0

    def strides(self, cfg: TileConfig):
        """(a_stride, b_stride) with the defaults filled in: blocks back to back (OS: K
        vectors per A and B block; WS: M activation vectors per K block of A, R weight
        vectors per fold of B)."""
        if cfg.dataflow == "ws":
            sa, sb = self.M * cfg.beats_a, cfg.rows * cfg.beats_b
        else:
            sa, sb = self.K * cfg.beats_a + cfg.tail, self.K * cfg.beats_b + cfg.tail
        return (sa if self.a_stride is None else self.a_stride,
                sb if self.b_stride is None else self.b_stride)


@dataclass(frozen=True)
class TileCycles:
    cycles: int            # command edge -> done edge
    stalls: int            # cycles lost to the scratchpads' bandwidth (0 when b = 1)
    bare_cycles: int       # sim.models.cycles.model_cycles of the bare array
    tiles: int
    vectors: int           # edge vectors read (T * K)
    a_reads: int
    b_reads: int
    c_reads: int
    c_writes: int
    edge_bytes: float      # bytes per streaming cycle the array's edges take
    sram_bytes: float      # bytes per cycle A and B can deliver (peak)
    read_bytes_per_cycle: float   # bytes read from A and B per cycle of the command

    def as_dict(self):
        return asdict(self)


def bound_steps(cmd, cfg):
    """OS: cycles the bounds check walks after the check cycle, one block per cycle (no
    multiplier): max(ceil(M/R), ceil(N/C)) - 1. WS: 0 (multipliers)."""
    if cfg.dataflow == "ws":
        return 0
    return max(ceil(cmd.M / cfg.rows), ceil(cmd.N / cfg.cols)) - 1


def error_cycles(cmd, cfg):
    """Cycles from a refused GEMM command to ``done``: 1 for MODE and SHAPE (the check
    cycle), 1 + :func:`bound_steps` for NO_FIT and OVERLAP."""
    code, _ = gemm_error(cmd, cfg)
    if code == TileError.NONE:
        raise ValueError("the command runs; see tile_cycles")
    return 1 if code in (TileError.MODE, TileError.SHAPE) else 1 + bound_steps(cmd, cfg)


def _cycles(T, K, b, cfg):
    m, R, C, P = cfg.drain, cfg.rows, cfg.cols, cfg.array.latency
    if cfg.overlap:
        return 2 + K * b + (T - 1) * max(m, K * b) + R + C + P + 1
    # last k to the next tile's last k: the drain window, and 2m with paired C banks
    period = max(m + 1, b) + (K - 1) * b
    if cfg.paired:
        period = max(period, 2 * m)
    # skewed blocks: no pre-skew register, one cycle less
    return 2 + b + (K - 1) * b + (T - 1) * period + R + C + P - cfg.skewed


def _ws_cycles(F, M, ba, bb, cfg):
    R, C, P = cfg.rows, cfg.cols, cfg.array.latency
    if cfg.overlap:
        return _ws_overlap_last(F, M, ba, bb, R) + R + C + P
    return (2 + bb + F * ((R - 1) * bb + M * ba) + (F - 1) * max(R + C + P - 1, bb)
            + R + C + P)


def _ws_overlap_last(F, M, ba, bb, R):
    """WS fold overlap: emission cycle of the last activation. Each reader reads its next
    vector from the cycle it emitted the previous one (cycle 2 for the first) and holds
    it until allowed: a fold's first activation one cycle after its last weight, fold
    f+1's first weight R - 1 cycles after fold f's first activation. O(F * (R + M))."""
    e_w = e_a = None
    a0 = None
    for f in range(F):
        for s in range(R):
            e = (2 if e_w is None else e_w) + bb
            if s == 0 and f > 0:
                e = max(e, a0 + R - 1)
            e_w = e
        for mm in range(M):
            e = (2 if e_a is None else e_a) + ba
            if mm == 0:
                e = max(e, e_w + 1)
                a0 = e
            e_a = e
    return e_a


def _ws_tile_cycles(cmd, cfg):
    R, C = cfg.rows, cfg.cols
    nb = ceil(cmd.N / C)
    F = ceil(cmd.K / R) * nb
    ba, bb = cfg.beats_a, cfg.beats_b
    cycles = _ws_cycles(F, cmd.M, ba, bb, cfg)
    mac = cfg.array.mac
    bare = model_cycles(cmd.M, cmd.K, cmd.N, R, C, "ws", pipeline=mac.pipeline,
                        k_chunk=mac.max_safe_k, fold_overlap=cfg.overlap)
    a = F * cmd.M * ba * cfg.a_banks
    b = F * R * bb * cfg.b_banks
    writes = F * cmd.M * C
    return TileCycles(cycles=cycles, stalls=cycles - _ws_cycles(F, cmd.M, 1, 1, cfg),
                      bare_cycles=bare, tiles=F, vectors=F * (R + cmd.M), a_reads=a,
                      b_reads=b, c_reads=(F if cmd.accumulate else F - nb) * cmd.M * C,
                      c_writes=writes, edge_bytes=cfg.edge_bytes, sram_bytes=cfg.sram_bytes,
                      read_bytes_per_cycle=(a + b) * cfg.width / 8 / cycles)


def tile_cycles(cmd: GemmCommand, cfg: TileConfig) -> TileCycles:
    """Cycles and accesses of a valid GEMM command (see the module docstring); ``tiles``
    counts output tiles (OS) or folds (WS)."""
    if cfg.dataflow == "ws":
        return _ws_tile_cycles(cmd, cfg)
    R, C = cfg.rows, cfg.cols
    T = ceil(cmd.M / R) * ceil(cmd.N / C)
    walk = bound_steps(cmd, cfg)
    cycles = _cycles(T, cmd.K, cfg.beats, cfg) + walk
    mac = cfg.array.mac
    bare = model_cycles(cmd.M, cmd.K, cmd.N, R, C, "os", pipeline=mac.pipeline,
                        k_chunk=mac.max_safe_k, double_buffer=cfg.overlap,
                        fold_overlap=cfg.overlap)
    a = T * (cmd.K * cfg.beats_a + cfg.tail) * cfg.a_banks
    b = T * (cmd.K * cfg.beats_b + cfg.tail) * cfg.b_banks
    writes = T * R * C
    return TileCycles(cycles=cycles, stalls=cycles - walk - _cycles(T, cmd.K, 1, cfg),
                      bare_cycles=bare, tiles=T, vectors=T * cmd.K, a_reads=a, b_reads=b,
                      c_reads=writes if cmd.accumulate else 0, c_writes=writes,
                      edge_bytes=cfg.edge_bytes, sram_bytes=cfg.sram_bytes,
                      read_bytes_per_cycle=(a + b) * cfg.width / 8 / cycles)


def gemm_error(cmd: GemmCommand, cfg: TileConfig):
    """The :class:`~hdl.tile.config.TileError` the controller raises for ``cmd``
    (``NONE``: it runs), with a one-line reason; checked in the RTL's order."""
    dims = (cmd.M, cmd.K, cmd.N)
    fields = (cmd.a_base, cmd.b_base, cmd.c_base) + cmd.strides(cfg)
    if any(not 0 <= x < (1 << DIM_BITS) for x in dims) or \
            any(not 0 <= x < (1 << ADDR_BITS) for x in fields):
        raise ValueError(f"a GEMM field does not fit its port: M, K, N < {1 << DIM_BITS}, "
                         f"addresses and strides < {1 << ADDR_BITS}")
    if cmd.mode != 0:
        return TileError.MODE, f"mode {cmd.mode}: this tile runs the plain array only (mode 0)"
    if 0 in dims or cmd.K > cfg.max_k:
        return TileError.SHAPE, (f"M, K, N must be >= 1 and K <= {cfg.max_k} (one pass of "
                                 f"the {cfg.array.mac.acc_width}-bit accumulator), got "
                                 f"{cmd.M}x{cmd.K}x{cmd.N}")
    mb, nb = ceil(cmd.M / cfg.rows), ceil(cmd.N / cfg.cols)
    sa, sb = cmd.strides(cfg)
    if cfg.dataflow == "ws":
        kb = ceil(cmd.K / cfg.rows)
        blk_a, blk_b, n_a, n_b = cmd.M * cfg.beats_a, cfg.rows * cfg.beats_b, kb, kb * nb
        end_c = cmd.c_base + nb * cmd.M
    else:
        blk_a, blk_b = cmd.K * cfg.beats_a + cfg.tail, cmd.K * cfg.beats_b + cfg.tail
        n_a, n_b = mb, nb
        end_c = cmd.c_base + mb * nb * cfg.drain
    end_a = cmd.a_base + (n_a - 1) * sa + blk_a
    end_b = cmd.b_base + (n_b - 1) * sb + blk_b
    for name, end, depth in (("A", end_a, cfg.depth), ("B", end_b, cfg.depth),
                             ("C", end_c, cfg.c_depth)):
        if end > depth:
            return TileError.NO_FIT, (f"the GEMM's {name} region ends at line {end}, past "
                                      f"the {depth} lines of {name}; use a larger depth or "
                                      f"a smaller GEMM")
    if (n_a > 1 and sa < blk_a) or (n_b > 1 and sb < blk_b):
        return TileError.OVERLAP, ("the A or B stride is shorter than one block: blocks "
                                   "would overlap")
    return TileError.NONE, ""


#: The cited SRAM read energy: an 8 KB array, 64-bit read, 45 nm (CACTI through
#: AccelForge's HWComponents; quoted, not measured here).
SRAM_PJ_PER_64BIT = 6.1


def sram_energy_pj(model: TileCycles, cfg, *, pj_per_64bit=SRAM_PJ_PER_64BIT):
    """SRAM energy (pJ) of a command's accesses per memory: each bank-word access
    priced at ``pj_per_64bit`` per 64 bits (A and B words of ``cfg.width`` bits, C words
    of ``cfg.c_width``), writes like reads. A first-order estimate: a real macro's
    energy per access does not scale exactly with its word width or depth."""
    bits = {"a_reads": cfg.width, "b_reads": cfg.width, "c_reads": cfg.c_width,
            "c_writes": cfg.c_width}
    out = {name: getattr(model, name) * w * pj_per_64bit / 64 for name, w in bits.items()}
    out["total"] = sum(out.values())
    return out
