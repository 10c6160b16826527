"""Exact cycles and SRAM accesses of the split tile (:mod:`hdl.tile.split`): every
sub-array of a start on its own shape, every tile's memories.

A job (M, K, N) on a sub-array of ``nr`` x ``nc`` tiles (Rs = nr*T rows, Cs = nc*T
columns) runs the lone WS tile's timeline (:mod:`sim.models.tile`) with the sub-array's
folds and gap: F = ceil(K/Rs) * ceil(N/Cs) folds, each Rs weight slots of
``bb = beats_b`` cycles and M activations of ``ba = beats_a``, ``g = Rs + Cs + P - 1``
from a fold's last activation to the next fold's first weight::

    cycles = 2 + bb + F * ((Rs - 1) * bb + M * ba) + (F - 1) * max(g, bb) + Rs + Cs + P

from the edge that samples the starting command (``gemm_go``) to the edge of the
sub-array's last C write; all sub-arrays of a start begin on the same edge, and the
command's ``done`` is the slowest one's. Tile (oy, ox) of the sub-array runs the same
timeline ``D = (oy + ox) * T`` cycles late and its ``tile_done`` rises
``cycles - (Rs + Cs) + D + 2T`` (the bottom-right tile's is the sub-array's). A command
that only stages, or is refused: 1 cycle (the check cycle).

Accesses per tile (bank words): A ``F * M * ba * a_banks`` reads (every tile reads its K
slice of A for every fold), B ``F * T * bb * b_banks`` (its T weight rows of each fold);
bottom tiles (oy = nr - 1) only: C ``F * M * T`` writes and ``(F or F - ceil(N/Cs)) * M
* T`` reads (read-add-write from the second K block on, or every fold when the command
accumulates).
"""
from dataclasses import dataclass
from math import ceil

from hdl.tile import TileError, DIM_BITS, ADDR_BITS
from hdl.tile.split import SplitTileConfig, SPLIT_MODE, sub_tiles, tile_roles
from sim.models.tile import GemmCommand

__all__ = ["SubRun", "sub_job_cycles", "split_gemm_error", "start_model"]


@dataclass(frozen=True)
class SubRun:
    """The model of one sub-array's job in a start."""
    sub: int
    shape: tuple           # (M, K, N)
    tiles: tuple           # grid indices of its tiles
    cycles: int            # start command edge -> the sub-array's last write
    folds: int
    tile_done: dict        # tile -> cycle its tile_done rises
    counters: dict         # tile -> {a_reads, b_reads, c_reads, c_writes}


def sub_job_cycles(cmd: GemmCommand, cfg: SplitTileConfig, nr, nc):
    T, P = cfg.sub.rows, cfg.sub.array.latency
    ba, bb = cfg.sub.beats_a, cfg.sub.beats_b
    Rs, Cs = nr * T, nc * T
    F = ceil(cmd.K / Rs) * ceil(cmd.N / Cs)
    g = Rs + Cs + P - 1
    return (2 + bb + F * ((Rs - 1) * bb + cmd.M * ba) + (F - 1) * max(g, bb) + Rs + Cs + P,
            F)


def start_model(jobs, cfg: SplitTileConfig, words):
    """``jobs``: {sub-array index: GemmCommand} of one start in mode ``words`` =
    (row_cut, col_cut); returns ``(cycles, [SubRun, ...])``."""
    T = cfg.sub.rows
    sub = cfg.sub
    roles = tile_roles(cfg.grid, *words)
    subs = {s.index: s for s in sub_tiles(cfg.grid, *words)}
    runs = []
    for k, cmd in sorted(jobs.items()):
        s = subs[k]
        cycles, F = sub_job_cycles(cmd, cfg, s.nr, s.nc)
        nbs = ceil(cmd.N / (s.nc * T))
        tiles = tuple(t for t, r in enumerate(roles) if r.sub == k)
        done, cnt = {}, {}
        for t in tiles:
            r = roles[t]
            done[t] = cycles - (s.nr + s.nc) * T + (r.oy + r.ox) * T + 2 * T
            c = F * cmd.M * T if r.bottom else 0
            cnt[t] = {"a_reads": F * cmd.M * sub.beats_a * sub.a_banks,
                      "b_reads": F * T * sub.beats_b * sub.b_banks,
                      "c_writes": c,
                      "c_reads": 0 if not r.bottom else
                      (F if cmd.accumulate else F - nbs) * cmd.M * T}
        runs.append(SubRun(k, (cmd.M, cmd.K, cmd.N), tiles, cycles, F, done, cnt))
    return max(r.cycles for r in runs), runs


def split_gemm_error(cmd: GemmCommand, cfg: SplitTileConfig, sub_index, words,
                     staged_words=None):
    """The :class:`~hdl.tile.config.TileError` the split tile raises for a GEMM command
    staging ``cmd`` on sub-array ``sub_index`` of mode ``words`` (``staged_words``: the
    cuts of the sub-arrays already staged, None if none), with a one-line reason; the
    RTL's order."""
    sub = cfg.sub
    T = sub.rows
    dims = (cmd.M, cmd.K, cmd.N)
    fields = (cmd.a_base, cmd.b_base, cmd.c_base) + cmd.strides(sub)
    if any(not 0 <= x < (1 << DIM_BITS) for x in dims) or \
            any(not 0 <= x < (1 << ADDR_BITS) for x in fields):
        raise ValueError(f"a GEMM field does not fit its port: M, K, N < {1 << DIM_BITS}, "
                         f"addresses and strides < {1 << ADDR_BITS}")
    subs = sub_tiles(cfg.grid, *words)
    if cmd.mode != SPLIT_MODE:
        return TileError.MODE, f"mode {cmd.mode}: the split tile runs mode {SPLIT_MODE}"
    if not 0 <= sub_index < len(subs):
        return TileError.MODE, (f"sub-array {sub_index}: this mode has {len(subs)} "
                                f"sub-arrays (0..{len(subs) - 1})")
    if staged_words is not None and tuple(staged_words) != tuple(words):
        return TileError.MODE, ("the sub-arrays staged so far are of another mode; start "
                                "them first")
    if 0 in dims:
        return TileError.SHAPE, f"M, K, N must be >= 1, got {cmd.M}x{cmd.K}x{cmd.N}"
    s = subs[sub_index]
    kbs, nbs = ceil(cmd.K / (s.nr * T)), ceil(cmd.N / (s.nc * T))
    sa, sb = cmd.strides(sub)
    blk_a, blk_b = cmd.M * sub.beats_a, T * sub.beats_b
    end_a = cmd.a_base + (kbs - 1) * sa + blk_a
    end_b = cmd.b_base + (kbs * nbs - 1) * sb + blk_b
    end_c = cmd.c_base + nbs * cmd.M
    for name, end, depth in (("A", end_a, sub.depth), ("B", end_b, sub.depth),
                             ("C", end_c, sub.c_depth)):
        if end > depth:
            return TileError.NO_FIT, (f"the GEMM's {name} region ends at line {end}, past "
                                      f"the {depth} lines of each tile's {name}; use a "
                                      f"larger depth or a smaller GEMM")
    if (kbs > 1 and sa < blk_a) or (kbs * nbs > 1 and sb < blk_b):
        return TileError.OVERLAP, ("the A or B stride is shorter than one block: blocks "
                                   "would overlap")
    return TileError.NONE, ""
