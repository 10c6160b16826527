"""Run GEMMs on the tile (:mod:`hdl.tile`) from its own memory, under cocotb.

The host side of the tile: :func:`layout_a` / :func:`layout_b` turn A and B into the
host WRITEs that put them into the scratchpads (edge vectors: for A, column k of an
R-row block; for B, row k of a C-column block; ``beats`` lines each, every line split
over the banks, bank 0 in the low bits; OS at one line per vector on a square array:
skewed, lane i of line tau holding vector tau - i), :func:`c_reads` / :func:`decode_c`
read C back (lane d's bank holds tile t's results at ``c_base + t * m + s``, s-th PE of
the lane's chain, m = min(R, C); with fold overlap ``c_base + t * len_d + s``; on the
square OS tile without fold overlap lane d >= m shares bank d - m, from the top:
``c_base + t * m + m - 1 - s``).
:func:`run_tile_gemm` writes A and B, issues the GEMM command, reads C and returns
the RTL's cycles and access counters next to the model's (:mod:`sim.models.tile`).

A host program is a plain list of steps, each one host-port operation with named fields
(played by :mod:`sim.tb.tile`): ``write`` (mem, bank, addr, data lists), ``read`` (mem,
bank, addr lists), ``gemm`` (``fields``: port name -> value, :func:`gemm_step`) and, for
the split tile (:mod:`sim.drivers.split_tile`), ``"sub"`` on a write/read (the tile,
port ``host_sub``), the GEMM fields of :data:`SPLIT_GEMM_FIELDS`
(:func:`split_gemm_step`; ``"watch": 1`` records each ``tile_done`` edge) and ``count``
(:func:`count_step`: each tile's access counters).
"""
import json
import shutil
import tempfile
from dataclasses import dataclass, field
from math import ceil
from pathlib import Path

import numpy as np

from hdl.emit import write_if_changed
from hdl.tile import TileConfig, TileError, Mem, tile_verilog, TILE_TOP
from hdl.array import os_chains
from sim.drivers.gemm import check_operands, exact_result
from sim.models.tile import GemmCommand, tile_cycles, gemm_error
from sim.runner import REPO_ROOT, run_cocotb, SimulationError

__all__ = ["layout_a", "layout_b", "c_reads", "decode_c", "run_tile_gemm", "run_program",
           "TileRun", "PROGRAM_ENV", "run_tile_gemms", "gemm_step", "write_step",
           "split_gemm_step", "count_step", "decode_words", "SPLIT_GEMM_FIELDS"]

PROGRAM_ENV = "SYSTOLIC_TILE_PROGRAM"
DEFAULT_BUILD_ROOT = REPO_ROOT / "build" / "sim"


def _vectors_to_writes(vecs, base, stride, beats, banks, width, lane_bits, mem):
    """``vecs[blk][k]``: a list of lane values (two's complement ``lane_bits``) ->
    (mem, bank, addr, word) lists."""
    mask = (1 << lane_bits) - 1
    line = banks * width
    out = ([], [], [], [])
    for blk, per_k in enumerate(vecs):
        for k, lanes in enumerate(per_k):
            word = 0
            for i, v in enumerate(lanes):
                word |= (int(v) & mask) << (i * lane_bits)
            for j in range(beats):
                bits = word >> (j * line)
                for bank in range(banks):
                    out[0].append(int(mem))
                    out[1].append(bank)
                    out[2].append(base + blk * stride + k * beats + j)
                    out[3].append((bits >> (bank * width)) & ((1 << width) - 1))
    return out


def _skew(vectors, tail):
    """A block's lines in the skewed layout (:attr:`hdl.tile.config.TileConfig.skewed`):
    lane i of line tau holds ``vectors[tau - i]`` (0 outside the block); ``K + tail``
    lines."""
    K, lanes = len(vectors), len(vectors[0])
    return [[vectors[t - i][i] if 0 <= t - i < K else 0 for i in range(lanes)]
            for t in range(K + tail)]


def layout_a(A, cfg: TileConfig, cmd: GemmCommand):
    """Host WRITEs of A. OS: block mb, vector k = A[mb*R : mb*R+R, k]; WS: block kb,
    vector m = A[m, kb*R : kb*R+R] (past M or K: 0)."""
    M, K = A.shape
    R = cfg.rows
    if cfg.dataflow == "ws":
        pad = np.zeros((M, ceil(K / R) * R), np.int64)
        pad[:, :K] = A
        vecs = [[pad[m, kb * R:(kb + 1) * R] for m in range(M)] for kb in range(ceil(K / R))]
        return _vectors_to_writes(vecs, cmd.a_base, cmd.strides(cfg)[0], cfg.beats_a,
                                  cfg.a_banks, cfg.width, cfg.array.mac.width, Mem.A)
    pad = np.zeros((ceil(M / R) * R, K), np.int64)
    pad[:M] = A
    vecs = [[pad[mb * R:(mb + 1) * R, k] for k in range(K)] for mb in range(ceil(M / R))]
    if cfg.skewed:
        vecs = [_skew(v, cfg.tail) for v in vecs]
    return _vectors_to_writes(vecs, cmd.a_base, cmd.strides(cfg)[0], cfg.beats_a,
                              cfg.a_banks, cfg.width, cfg.array.mac.width, Mem.A)


def layout_b(B, cfg: TileConfig, cmd: GemmCommand):
    """Host WRITEs of B. OS: block nb, vector k = B[k, nb*C : nb*C+C]; WS: fold
    (kb, nb), vector s = B[kb*R + R-1-s, nb*C : nb*C+C] (bottom row first; past K or N:
    0)."""
    K, N = B.shape
    C = cfg.cols
    if cfg.dataflow == "ws":
        R = cfg.rows
        pad = np.zeros((ceil(K / R) * R, ceil(N / C) * C), np.int64)
        pad[:K, :N] = B
        vecs = [[pad[kb * R + R - 1 - s, nb * C:(nb + 1) * C] for s in range(R)]
                for kb in range(ceil(K / R)) for nb in range(ceil(N / C))]
        return _vectors_to_writes(vecs, cmd.b_base, cmd.strides(cfg)[1], cfg.beats_b,
                                  cfg.b_banks, cfg.width, cfg.array.mac.width, Mem.B)
    pad = np.zeros((K, ceil(N / C) * C), np.int64)
    pad[:, :N] = B
    vecs = [[pad[k, nb * C:(nb + 1) * C] for k in range(K)] for nb in range(ceil(N / C))]
    if cfg.skewed:
        vecs = [_skew(v, cfg.tail) for v in vecs]
    return _vectors_to_writes(vecs, cmd.b_base, cmd.strides(cfg)[1], cfg.beats_b,
                              cfg.b_banks, cfg.width, cfg.array.mac.width, Mem.B)


def _c_entries(cfg, cmd):
    """(bank, addr, row, col) of every C word the GEMM writes (row/col may be past M/N).
    OS: lane d's bank holds tile t's results at c_base + t*m + s (m = min(R, C); fold
    overlap: c_base + t*len_d + s); on the square array lane d >= m shares bank d - m,
    at c_base + t*m + m - 1 - s; WS: bank c holds
    C[m, nb*C + c] at c_base + nb*M + m."""
    R, C = cfg.rows, cfg.cols
    MB, NB = ceil(cmd.M / R), ceil(cmd.N / C)
    if cfg.dataflow == "ws":
        return [(c, cmd.c_base + nb * cmd.M + m, m, nb * C + c)
                for c in range(C) for nb in range(NB) for m in range(cmd.M)]
    out = []
    m = cfg.drain
    for d, chain in enumerate(os_chains(R, C)):
        per_tile = len(chain) if cfg.overlap else m
        for t in range(MB * NB):
            mb, nb = divmod(t, NB)
            for s, (i, j) in enumerate(chain):
                if cfg.paired and d >= m:        # lane d shares bank d - m, top down
                    out.append((d - m, cmd.c_base + t * m + m - 1 - s, mb * R + i, nb * C + j))
                else:
                    out.append((d, cmd.c_base + t * per_tile + s, mb * R + i, nb * C + j))
    return out


def c_reads(cfg, cmd):
    """Host READs of C for ``cmd``'s results inside M x N: (mem, bank, addr) lists."""
    ent = [e for e in _c_entries(cfg, cmd) if e[2] < cmd.M and e[3] < cmd.N]
    return [int(Mem.C)] * len(ent), [e[0] for e in ent], [e[1] for e in ent]


def decode_c(words, cfg, cmd):
    """C (int64 M x N) from the words of :func:`c_reads` (``c_width``-bit two's complement)."""
    ent = [e for e in _c_entries(cfg, cmd) if e[2] < cmd.M and e[3] < cmd.N]
    if len(words) != len(ent):
        raise SimulationError(f"expected {len(ent)} C words, got {len(words)}")
    out = np.zeros((cmd.M, cmd.N), np.int64)
    seen = np.zeros((cmd.M, cmd.N), bool)
    w = cfg.c_width
    for (_, _, i, j), v in zip(ent, words):
        v = int(v)
        if v >= 1 << (w - 1):
            v -= 1 << w
        out[i, j] = v
        seen[i, j] = True
    if not seen.all():
        raise SimulationError("some element of C has no word in the C banks")
    return out


def _design(cfg):
    """(top module, Verilog text) of a tile or a split tile."""
    from hdl.tile.split import SplitTileConfig, split_tile_verilog, SPLIT_TILE_TOP
    if isinstance(cfg, SplitTileConfig):
        return SPLIT_TILE_TOP, split_tile_verilog(cfg)
    return TILE_TOP, tile_verilog(cfg)


def run_program(steps, cfg, *, simulator="icarus", build_root=None):
    """Play host ``steps`` (see :mod:`sim.tb.tile`) on the tile (a :class:`TileConfig`,
    or a :class:`hdl.tile.split.SplitTileConfig`); returns their records."""
    if simulator != "icarus":
        raise ValueError(f"the tile bench runs on icarus only so far, not {simulator!r}")
    top, text = _design(cfg)
    build_dir = Path(build_root or DEFAULT_BUILD_ROOT) / f"{cfg.slug}_icarus"
    build_dir.mkdir(parents=True, exist_ok=True)
    source = write_if_changed(build_dir / f"{top}.v", text)
    (build_dir / "jobs").mkdir(exist_ok=True)
    job_dir = Path(tempfile.mkdtemp(dir=build_dir / "jobs", prefix="run-"))
    try:
        out = job_dir / "out.json"
        spec = job_dir / "program.json"
        spec.write_text(json.dumps({"steps": steps, "output": str(out)}))
        outcome = run_cocotb(sources=[source], toplevel=top, test_module="sim.tb.tile",
                             simulator=simulator, build_dir=build_dir,
                             extra_env={PROGRAM_ENV: str(spec)}, testcase="run_program")
        if not outcome.ok or not out.exists():
            raise SimulationError(f"{simulator}: tile bench failed: {outcome.summary()}")
        return json.loads(out.read_text())["steps"]
    finally:
        shutil.rmtree(job_dir, ignore_errors=True)


def gemm_step(cmd: GemmCommand, cfg: TileConfig, timeout=None):
    """The program step issuing ``cmd``."""
    sa, sb = cmd.strides(cfg)
    fields = {"a_base": cmd.a_base, "b_base": cmd.b_base, "c_base": cmd.c_base,
              "a_stride": sa, "b_stride": sb, "m": cmd.M, "k": cmd.K, "n": cmd.N,
              "accumulate": int(cmd.accumulate), "mode": cmd.mode}
    step = {"op": "gemm", "fields": fields}
    if timeout:
        step["timeout"] = int(timeout)
    return step


#: The split tile's GEMM fields beyond the lone tile's (:mod:`hdl.tile.split.top`).
SPLIT_GEMM_FIELDS = ("host_sub", "row_cut", "col_cut", "gemm_go")


def split_gemm_step(cmd: GemmCommand, sub_cfg: TileConfig, *, sub, words, go, timeout=None,
                    watch=False):
    """The split tile's GEMM step: ``cmd`` staged on sub-array ``sub`` of the mode
    ``words`` = (row_cut, col_cut), starting every staged sub-array when ``go``.
    ``watch``: the bench records the cycle each ``tile_done`` bit rises."""
    step = gemm_step(cmd, sub_cfg, timeout=timeout)
    step["fields"] |= dict(zip(SPLIT_GEMM_FIELDS, (int(sub), int(words[0]), int(words[1]),
                                                   int(bool(go)))))
    if watch:
        step["watch"] = 1
    return step


def count_step(tiles):
    """The split tile's step reading the access counters of ``tiles`` (one cycle each,
    ``host_sub`` = tile)."""
    return {"op": "count", "tiles": [int(t) for t in tiles]}


def decode_words(words, width):
    """``width``-bit two's complement words as ints."""
    out = []
    for v in words:
        v = int(v)
        out.append(v - (1 << width) if v >= 1 << (width - 1) else v)
    return out


def write_step(*lists):
    mem, bank, addr, data = (list(x) for x in lists)
    return {"op": "write", "mem": mem, "bank": bank, "addr": addr, "data": data}


@dataclass
class TileRun:
    C: np.ndarray                 # int64 M x N read back from the C banks
    cycles: int                   # RTL: command edge -> done edge
    model: object                 # sim.models.tile.TileCycles
    counters: dict                # RTL access counters (bank words)
    host_writes: int
    host_reads: int
    extra: dict = field(default_factory=dict)


def _job_steps(A, B, cfg, cmd, C0):
    """Host steps of one GEMM: write A, B (and C0), run, read C."""
    steps = [write_step(*layout_a(A, cfg, cmd)), write_step(*layout_b(B, cfg, cmd))]
    entries = [e for e in _c_entries(cfg, cmd) if e[2] < cmd.M and e[3] < cmd.N]
    if C0 is not None:
        mem, bank, addr = c_reads(cfg, cmd)
        mask = (1 << cfg.c_width) - 1
        steps.append(write_step(mem, bank, addr, [int(C0[i, j]) & mask
                                                  for (_, _, i, j) in entries]))
    model = tile_cycles(cmd, cfg)
    steps.append(gemm_step(cmd, cfg, timeout=4 * model.cycles + 1000))
    mem, bank, addr = c_reads(cfg, cmd)
    steps.append({"op": "read", "mem": mem, "bank": bank, "addr": addr})
    return steps, model


def run_tile_gemms(jobs, cfg: TileConfig, *, build_root=None, path="cocotb", model="gate",
                   save_stream=None):
    """Run every job ``(A, B, cmd or None, C0 or None)`` in ONE simulator run (one after
    the other, each writing its operands first); returns a list of :class:`TileRun`.
    ``cmd`` None: M x K x N at address 0; ``C0``: C's initial value for an
    accumulating command. ``path``: ``"cocotb"`` (the bench on Icarus) or ``"native"``
    (the host stream on Verilator, :mod:`sim.native.tile`; ``save_stream``: keep it
    there); ``model``: ``"gate"`` or ``"twin"`` (the array's proven behavioural MAC).
    Each run's ``extra`` holds ``path``, ``model``, ``proof`` and, native, ``native``
    (the player's build, seconds and stream size)."""
    if path not in ("cocotb", "native"):
        raise ValueError(f"unknown path {path!r}; allowed: cocotb, native")
    program, plans = [], []
    for A, B, cmd, C0 in jobs:
        A, B = check_operands(A, B, cfg.array.mac)
        M, K = A.shape
        N = B.shape[1]
        cmd = cmd or GemmCommand(M, K, N)
        if (cmd.M, cmd.K, cmd.N) != (M, K, N):
            raise ValueError("the command's M, K, N differ from the operands' shapes")
        code, why = gemm_error(cmd, cfg)
        if code != TileError.NONE:
            raise ValueError(why)
        steps, predicted = _job_steps(A, B, cfg, cmd, C0)
        plans.append((A, B, cmd, predicted, steps, len(program)))
        program += steps
    info = None
    if path == "native":
        from sim.native.tile import run_program_native
        recs, info = run_program_native(program, cfg, model=model, build_root=build_root,
                                        save_stream=save_stream)
        proof = info["proof"]
    else:
        from sim.native.tile import tile_design
        design, proof = tile_design(cfg, model) if model != "gate" else (cfg, None)
        recs = run_program(program, design, build_root=build_root)
    for r in recs:
        if r.get("error"):
            raise SimulationError(f"the tile raised error {TileError(r['err_code']).name} "
                                  f"in a {r['op']} step")
    runs = []
    for A, B, cmd, predicted, steps, at in plans:
        g, rd = recs[at + len(steps) - 2], recs[at + len(steps) - 1]
        runs.append(TileRun(
            C=decode_c(rd["data"], cfg, cmd), cycles=g["cycles"], model=predicted,
            counters={k[4:]: v for k, v in g.items() if k.startswith("cnt_")},
            host_writes=sum(len(s["data"]) for s in steps if s["op"] == "write"),
            host_reads=len(rd["data"]), extra={"expected": exact_result(A, B, cfg.array.mac),
                                               "path": path, "model": model,
                                               "proof": proof, "native": info}))
    return runs


def run_tile_gemm(A, B, cfg: TileConfig, cmd: GemmCommand | None = None, *,
                  build_root=None, C0=None, path="cocotb", model="gate", save_stream=None):
    """One job of :func:`run_tile_gemms`."""
    return run_tile_gemms([(A, B, cmd, C0)], cfg, build_root=build_root, path=path,
                          model=model, save_stream=save_stream)[0]
