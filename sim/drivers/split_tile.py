"""Run jobs of different shapes on the split tile (:mod:`hdl.tile.split`), every mode,
from its memories, under cocotb (host steps: :mod:`sim.drivers.tile`).

Memory layout of a job on sub-array S of ``nr`` x ``nc`` tiles (Rs = nr*T, Cs = nc*T),
for its tile (oy, ox) (``y = oy*T``, ``x = ox*T``), with the lone WS tile's addressing
(:mod:`sim.drivers.tile`: ``beats`` lines per vector, banks in the low bits):

* A: block kb at ``a_base + kb*a_stride``, vector m = ``A[m, kb*Rs + y .. +T]`` (its K
  slice; every tile column of S holds a copy: each feeds its own ``a_in_x`` lanes);
* B: fold f = kb*nbs + nb at ``b_base + f*b_stride``, vector s =
  ``B[kb*Rs + y + T-1-s, nb*Cs + x .. +T]`` (its T weight rows, bottom first, of its T
  columns; each element of B in exactly one tile);
* C (bottom tiles only, oy = nr - 1): bank c holds ``C[m, nb*Cs + x + c]`` at
  ``c_base + nb*M + m``;

past M, K or N: zeros. Strides default to the lone tile's (``M*beats_a``,
``T*beats_b``).
"""
from dataclasses import dataclass, field
from math import ceil

import numpy as np

from hdl.tile import TileError, Mem
from hdl.tile.split import SplitTileConfig, SPLIT_MODE, sub_tiles, tile_roles, mode_words
from sim.drivers.gemm import check_operands, exact_result
from sim.drivers.tile import (_vectors_to_writes, write_step, split_gemm_step, count_step,
                              run_program, decode_words)
from sim.models.split_tile import start_model, split_gemm_error
from sim.models.tile import GemmCommand
from sim.runner import SimulationError

__all__ = ["SplitTileJob", "SplitTileRun", "tile_writes", "tile_c_entries", "start_steps",
           "run_split_tile", "run_split_tile_gemms", "MemoryProgramResult", "program_starts",
           "fit_memories", "run_program_from_memory"]


@dataclass
class SplitTileJob:
    """One GEMM on sub-array ``sub`` (row-major in its mode): ``C = A @ B`` (+ ``C0``)."""
    A: np.ndarray
    B: np.ndarray
    sub: int
    cmd: GemmCommand | None = None     # None: M x K x N at address 0, mode SPLIT_MODE
    C0: np.ndarray | None = None


@dataclass
class SplitTileRun:
    C: list                   # per job: int64 M x N read back
    expected: list            # per job: numpy's
    cycles: int               # RTL: start command edge -> done edge
    model_cycles: int
    subs: list                # sim.models.split_tile.SubRun per job
    tile_done: dict           # RTL: tile -> cycle its tile_done rose
    counters: dict            # RTL: tile -> counters
    mode: tuple               # (row_cut, col_cut)
    extra: dict = field(default_factory=dict)


def _role(cfg, words, sub):
    roles = tile_roles(cfg.grid, *words)
    return {t: r for t, r in enumerate(roles) if r.sub == sub}


def tile_writes(A, B, cfg: SplitTileConfig, cmd: GemmCommand, words, sub):
    """Host WRITE steps of one job: per tile of sub-array ``sub``, its A and B parts."""
    T, s = cfg.sub.rows, cfg.sub
    M, K = A.shape
    N = B.shape[1]
    st = sub_tiles(cfg.grid, *words)[sub]
    Rs, Cs = st.nr * T, st.nc * T
    kbs, nbs = ceil(K / Rs), ceil(N / Cs)
    pa = np.zeros((M, kbs * Rs), np.int64)
    pa[:, :K] = A
    pb = np.zeros((kbs * Rs, nbs * Cs), np.int64)
    pb[:K, :N] = B
    sa, sb = cmd.strides(s)
    n = s.array.mac.width
    steps = []
    for t, r in _role(cfg, words, sub).items():
        y, x = r.oy * T, r.ox * T
        va = [[pa[m, kb * Rs + y:kb * Rs + y + T] for m in range(M)] for kb in range(kbs)]
        vb = [[pb[kb * Rs + y + T - 1 - q, nb * Cs + x:nb * Cs + x + T] for q in range(T)]
              for kb in range(kbs) for nb in range(nbs)]
        steps.append(dict(write_step(*_vectors_to_writes(
            va, cmd.a_base, sa, s.beats_a, s.a_banks, s.width, n, Mem.A)), sub=t))
        steps.append(dict(write_step(*_vectors_to_writes(
            vb, cmd.b_base, sb, s.beats_b, s.b_banks, s.width, n, Mem.B)), sub=t))
    return steps


def tile_c_entries(cfg: SplitTileConfig, cmd: GemmCommand, words, sub):
    """{bottom tile: [(bank, addr, row, col), ...]} of the job's C inside M x N."""
    T = cfg.sub.rows
    st = sub_tiles(cfg.grid, *words)[sub]
    Cs = st.nc * T
    nbs = ceil(cmd.N / Cs)
    out = {}
    for t, r in _role(cfg, words, sub).items():
        if not r.bottom:
            continue
        x = r.ox * T
        ent = [(c, cmd.c_base + nb * cmd.M + m, m, nb * Cs + x + c)
               for c in range(T) for nb in range(nbs) for m in range(cmd.M)]
        out[t] = [e for e in ent if e[2] < cmd.M and e[3] < cmd.N]
    return out


def _checked(job, cfg):
    A, B = check_operands(job.A, job.B, cfg.sub.array.mac)
    M, K = A.shape
    N = B.shape[1]
    cmd = job.cmd or GemmCommand(M, K, N, mode=SPLIT_MODE)
    if (cmd.M, cmd.K, cmd.N) != (M, K, N):
        raise ValueError("the command's M, K, N differ from the operands' shapes")
    return A, B, cmd


def start_steps(jobs, cfg: SplitTileConfig, words, *, watch=True):
    """Host steps of one start: every job's WRITEs (and C0), its staging GEMM command
    (the last one with ``gemm_go``), the per-tile counters and the C READs. Returns
    ``(steps, index of the go step, [(job, A, B, cmd, entries)], model)``."""
    subs = [j.sub for j in jobs]
    if len(set(subs)) != len(subs):
        raise ValueError("two jobs on one sub-array in one start")
    plans, steps = [], []
    for job in jobs:
        A, B, cmd = _checked(job, cfg)
        code, why = split_gemm_error(cmd, cfg, job.sub, words)
        if code != TileError.NONE:
            raise ValueError(why)
        steps += tile_writes(A, B, cfg, cmd, words, job.sub)
        ent = tile_c_entries(cfg, cmd, words, job.sub)
        if job.C0 is not None:
            mask = (1 << cfg.sub.c_width) - 1
            for t, e in ent.items():
                steps.append(dict(write_step([int(Mem.C)] * len(e), [x[0] for x in e],
                                             [x[1] for x in e],
                                             [int(job.C0[x[2], x[3]]) & mask for x in e]),
                                  sub=t))
        plans.append((job, A, B, cmd, ent))
    cycles, model = start_model({j.sub: p[3] for j, p in zip(jobs, plans)}, cfg, words)
    for i, (job, _, _, cmd, _) in enumerate(plans):
        steps.append(split_gemm_step(cmd, cfg.sub, sub=job.sub, words=words,
                                     go=i == len(plans) - 1,
                                     timeout=4 * cycles + 1000,
                                     watch=watch and i == len(plans) - 1))
    go = len(steps) - 1
    tiles = sorted(t for r in model for t in r.tiles)
    steps.append(count_step(tiles))
    for _, _, _, _, ent in plans:
        for t, e in ent.items():
            steps.append({"op": "read", "mem": [int(Mem.C)] * len(e),
                          "bank": [x[0] for x in e], "addr": [x[1] for x in e], "sub": t})
    return steps, go, plans, (cycles, model)


def run_split_tile(starts, cfg: SplitTileConfig, *, build_root=None):
    """Play ``starts`` [(mode, [SplitTileJob, ...]), ...] (mode: a name, a
    (row_cuts, col_cuts) pair or ("words", row_cut, col_cut)) in ONE simulator run, one
    start after the other; returns a :class:`SplitTileRun` per start."""
    program, marks = [], []
    for mode, jobs in starts:
        words = mode_words(cfg, mode)
        steps, go, plans, model = start_steps(jobs, cfg, words)
        marks.append((len(program), go, plans, model, words))
        program += steps
    recs = run_program(program, cfg, build_root=build_root)
    for r in recs:
        if r.get("error"):
            raise SimulationError(f"the split tile raised error "
                                  f"{TileError(r['err_code']).name} in a {r['op']} step")
    out = []
    for at, go, plans, (cycles, model), words in marks:
        g = recs[at + go]
        cnt = recs[at + go + 1]["counters"]
        k = at + go + 2
        Cs, exp = [], []
        for job, A, B, cmd, ent in plans:
            C = np.zeros((cmd.M, cmd.N), np.int64)
            seen = np.zeros((cmd.M, cmd.N), bool)
            for t, e in ent.items():
                words_ = decode_words(recs[k]["data"], cfg.sub.c_width)
                k += 1
                for (_, _, i, j), v in zip(e, words_):
                    C[i, j] = v
                    seen[i, j] = True
            if not seen.all():
                raise SimulationError("some element of C has no word in the C banks")
            Cs.append(C)
            e = exact_result(A, B, cfg.sub.array.mac)
            exp.append(e if job.C0 is None else e + np.asarray(job.C0, np.int64))
        out.append(SplitTileRun(C=Cs, expected=exp, cycles=g["cycles"],
                                model_cycles=cycles, subs=model,
                                tile_done={int(t): v for t, v in g.get("tile_done", {}).items()},
                                counters={int(t): v for t, v in cnt.items()}, mode=words))
    return out


def run_split_tile_gemms(jobs, cfg: SplitTileConfig, *, build_root=None, mode="tiles"):
    """One GEMM ``(A, B)`` per sub-array of ``mode`` (default every tile its own), all
    started together; returns (list of C, RTL cycles, model cycles)."""
    words = mode_words(cfg, mode)
    n = len(sub_tiles(cfg.grid, *words))
    if len(jobs) != n:
        raise ValueError(f"mode {mode!r} has {n} sub-arrays, got {len(jobs)} jobs")
    run = run_split_tile([(mode, [SplitTileJob(A, B, k) for k, (A, B) in
                                  enumerate(jobs)])], cfg, build_root=build_root)[0]
    return run.C, run.cycles, run.model_cycles


# ---------------------------------------------------------------------------------------
# split programs (sim.drivers.split's format) from memory

@dataclass
class MemoryProgramResult:
    """A split program played on the split tile: round r of a phase starts the r-th job
    of every sub-array that has one, all on the same edge."""
    C: list                   # per job, program order (phase, sub-array, job)
    expected: list
    starts: list              # SplitTileRun per start
    cycles: int               # RTL: sum of the starts' command-to-done cycles
    model_cycles: int         # sim.models.split_tile: the same sum


def program_starts(program, cfg: SplitTileConfig):
    """``[(mode, [SplitTileJob, ...]), ...]`` and the job order of ``program`` (a list of
    ``(mode, [[SplitJob or (A, B), ...] per sub-array])`` as :func:`sim.drivers.split.
    run_program` takes): each phase in rounds. Fused precisions and job delays are
    refused (ValueError): the split tile runs int4 from memory."""
    from sim.models.program import normalize_program
    starts, order = [], []
    for p, (mode, lists) in enumerate(normalize_program(program, cfg.split)):
        for r in range(max((len(js) for js in lists), default=0)):
            jobs = []
            for k, js in enumerate(lists):
                if r < len(js):
                    j = js[r]
                    if getattr(j, "precision", "int4") != "int4" or getattr(j, "delay", 0):
                        raise ValueError("the split tile runs int4 jobs without delays from "
                                         "memory")
                    jobs.append(SplitTileJob(j.A, j.B, k))
                    order.append((len(starts), len(jobs) - 1, p, k, r))
            starts.append((mode, jobs))
    order.sort(key=lambda x: x[2:])             # program order: phase, sub-array, job
    return starts, order


def fit_memories(starts, sub_cfg, grid):
    """(depth, c_depth): the fewest lines of A/B and of C every job of ``starts`` needs
    at address 0 with the default strides (at least 2)."""
    cfg = SplitTileConfig(sub_cfg, grid)
    T, s = sub_cfg.rows, sub_cfg
    depth, c_depth = 2, 2
    for mode, jobs in starts:
        subs = sub_tiles(grid, *mode_words(cfg, mode))
        for j in jobs:
            (M, K), N = np.shape(j.A), np.shape(j.B)[1]
            st = subs[j.sub]
            kbs, nbs = ceil(K / (st.nr * T)), ceil(N / (st.nc * T))
            depth = max(depth, kbs * M * s.beats_a, kbs * nbs * T * s.beats_b)
            c_depth = max(c_depth, nbs * M)
    return depth, c_depth


def run_program_from_memory(program, cfg: SplitTileConfig, *, build_root=None):
    """Play a split program (see :func:`program_starts`) on the split tile in one
    simulator run; a :class:`MemoryProgramResult` (C of every job against numpy is the
    caller's check: ``expected``)."""
    starts, order = program_starts(program, cfg)
    runs = run_split_tile(starts, cfg, build_root=build_root)
    C = [runs[s].C[i] for s, i, *_ in order]
    exp = [runs[s].expected[i] for s, i, *_ in order]
    return MemoryProgramResult(C=C, expected=exp, starts=runs,
                               cycles=sum(r.cycles for r in runs),
                               model_cycles=sum(r.model_cycles for r in runs))
