"""Independent GEMMs on the sub-arrays of a splittable array, WS or OS (:mod:`hdl.split`).

Model. A sub-array of Rs x Cs PEs behaves exactly like an unsplit ``systolic_array`` of
that size (the boundary logic is combinational; every sub-array has its own edge
ports), so one GEMM on it takes :func:`sim.models.cycles.model_cycles` ``(M, K, N, Rs,
Cs, dataflow, P, k_chunk)`` cycles and is driven by the very schedule
:func:`sim.drivers.gemm.build_schedule` makes for an Rs x Cs array, moved onto the sub-array's
lanes of the edge ports and shifted by the job's start cycle.

A *program* is a list of phases ``(mode, work)``. ``mode`` is a split mode (see
:meth:`SplitConfig.mode`); ``work[s]`` is what sub-array ``s`` (row-major order of the
tile grid) does: nothing (``None``), one job, or a list of jobs run back to back. A job
is ``(A, B)`` or :class:`SplitJob` (``A, B, delay``). Timing (cycle 0 = first cycle
after reset):

* a phase starts when the previous one has drained: ``start = end of previous phase +
  gap`` (0 for the first), ``gap`` = :func:`switch_gap` = 1 if the new mode removes a
  cut the previous one had (the previous phase's last result -- and with P = 0 its last
  activation -- still sits in the register at that boundary in its end cycle), else 0;
  the split ports take the phase's value in the start cycle. No reset.
* on sub-array s, job j starts at ``free + delay_j`` where ``free`` is the phase start
  or the end of job j-1 there (the cycle its last result comes out, when the next job's
  first weight may enter -- as between the folds of one GEMM); it ends at
  ``start + model_cycles(...)``.
* the phase ends with its last job: ``max`` over sub-arrays; the program's cycles are
  the end of its last phase.

:func:`run_program` plays programs on the RTL (cocotb, :mod:`sim.tb.split`), checks
every result against ``A.astype(int64) @ B`` done by the caller, checks that every
sub-array's results came out in exactly the cycles the schedule predicts (no more, no
fewer, none on lanes a sub-array owns outside its jobs), and measures each job's cycles
(last result + 1 - start): RTL == model is asserted by the tests.

:func:`plan_jobs` chooses split modes and an assignment of a list of GEMM shapes
minimizing the model's total cycles; :func:`compare_plans` sets it against always-whole
and always-finest. :func:`split_area_overhead` measures the area of the split logic.
"""
import json
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from hdl.emit import write_if_changed
from hdl.mac import MacConfig, ConfigError
from hdl.split import (split_verilog, split_ports, tile_grid, SPLIT_TOPLEVEL, FEATURES,
                       STYLES)
from sim.models.cycles import model_cycles, max_safe_k
from sim.drivers.gemm import (ArrayConfig, build_schedule, check_operands, collect, read_values,
                      _pack)
from sim.runner import REPO_ROOT, run_cocotb, SimulationError

__all__ = ["SplitConfig", "SplitMode", "SubArray", "SplitJob", "JobResult", "ProgramResult",
           "MODE_NAMES", "job_cycles", "switch_gap", "program_timeline", "program_cycles",
           "run_program", "run_programs", "run_split", "plan_jobs", "Plan", "compare_plans",
           "plan_to_program", "split_area_overhead", "four_gemms_comparison",
           "PROGRAMS_ENV"]

PROGRAMS_ENV = "SYSTOLIC_SPLIT_PROGRAMS"
DEFAULT_BUILD_ROOT = REPO_ROOT / "build" / "sim"
TAIL_CYCLES = 2
MODE_NAMES = ("whole", "h2", "v2", "quad", "tiles")


@dataclass(frozen=True)
class SubArray:
    index: int
    r0: int
    c0: int
    rows: int
    cols: int


@dataclass(frozen=True)
class SplitMode:
    """Cuts at tile-row boundaries ``row_cuts`` and tile-column boundaries ``col_cuts``
    (1-based boundary indices, see :mod:`hdl.split`)."""
    name: str
    row_cuts: tuple = ()
    col_cuts: tuple = ()


@dataclass(frozen=True)
class SplitConfig:
    """An R x C splittable array of ``tile`` (int or (TR, TC)) tiles, dataflow "ws" or
    "os". ``fold_overlap``: WS plays double-buffered weight folds within each job (same
    hardware); OS uses the double-buffered PE (its own hardware, like
    :class:`sim.drivers.gemm.ArrayConfig`)."""
    rows: int = 4
    cols: int = 4
    tile: object = 2
    mac: MacConfig = field(default_factory=MacConfig)
    style: str = "mux"        # boundary style of hdl.split: "mux" or "ports"
    fold_overlap: bool = False
    dataflow: str = "ws"

    def __post_init__(self):
        ArrayConfig(self.rows, self.cols, self.dataflow, self.mac)     # same checks
        tile_grid(self.rows, self.cols, self.tile)              # ConfigError("--tile")
        if not isinstance(self.fold_overlap, bool):
            raise ConfigError("--fold-overlap", f"{self.fold_overlap!r}; allowed: true, "
                                                f"false")
        if self.style not in STYLES:
            raise ConfigError("--style", f"unknown style {self.style!r}; allowed: "
                                         f"{', '.join(STYLES)}")

    @property
    def grid(self):
        """``(TR, TC, GR, GC)``."""
        return tile_grid(self.rows, self.cols, self.tile)

    @property
    def double_buffer(self):
        """True for the double-buffered OS PE (OS with fold overlap)."""
        return self.dataflow == "os" and self.fold_overlap

    @property
    def compact_os(self):
        """True for the compact OS PE (no reset, drains through its accumulator)."""
        return self.dataflow == "os" and not self.fold_overlap

    @property
    def slug(self):
        tr, tc, _, _ = self.grid
        kind = "osdb" if self.double_buffer else self.dataflow
        return (f"split_{self.style}_{kind}_{self.rows}x{self.cols}_t{tr}x{tc}_"
                f"{self.mac.slug}")

    @property
    def k_chunk(self):
        return max_safe_k(self.mac.signed, self.mac.acc_width, self.mac.width)

    def verilog(self, **kw):
        return split_verilog(self.rows, self.cols, self.tile, self.mac, style=self.style,
                             dataflow=self.dataflow, double_buffer=self.double_buffer, **kw)

    def ports(self):
        """``{name: (direction, bits)}`` of the generated top."""
        return split_ports(self.rows, self.cols, self.tile, self.mac.width,
                           self.mac.acc_width, self.style, dataflow=self.dataflow,
                           double_buffer=self.double_buffer)

    def modes(self):
        """The named modes this array can do."""
        out = []
        for name in MODE_NAMES:
            try:
                self.mode(name)
            except ValueError:
                continue
            out.append(name)
        return out

    def mode(self, mode):
        """A :class:`SplitMode` from a name (``whole``; ``h2``: top/bottom halves, a
        horizontal cut; ``v2``: left/right halves; ``quad``: both; ``tiles``: every tile
        on its own), a ``(row_cuts, col_cuts)`` pair, or a SplitMode (checked).
        ValueError (one line) if this array cannot do it."""
        _, _, gr, gc = self.grid
        if isinstance(mode, SplitMode):
            rc, cc, name = mode.row_cuts, mode.col_cuts, mode.name
        elif isinstance(mode, str):
            name = mode
            if mode == "whole":
                rc, cc = (), ()
            elif mode == "tiles":
                rc, cc = tuple(range(1, gr)), tuple(range(1, gc))
            elif mode in ("h2", "v2", "quad"):
                rc = cc = ()
                if mode in ("h2", "quad"):
                    if gr % 2:
                        raise ValueError(f"split mode {mode!r} needs an even number of tile "
                                         f"rows; this {self.rows}x{self.cols} array has {gr}")
                    rc = (gr // 2,)
                if mode in ("v2", "quad"):
                    if gc % 2:
                        raise ValueError(f"split mode {mode!r} needs an even number of tile "
                                         f"columns; this {self.rows}x{self.cols} array has "
                                         f"{gc}")
                    cc = (gc // 2,)
            else:
                raise ValueError(f"unknown split mode {mode!r}; allowed: "
                                 f"{', '.join(MODE_NAMES)} or (row_cuts, col_cuts)")
        else:
            try:
                rc, cc = (tuple(sorted(set(int(x) for x in v))) for v in mode)
            except (TypeError, ValueError):
                raise ValueError(f"split mode {mode!r} is not a name or a (row_cuts, "
                                 f"col_cuts) pair") from None
            name = f"cuts r{list(rc)} c{list(cc)}"
        for cuts, top, what in ((rc, gr, "tile-row"), (cc, gc, "tile-column")):
            bad = [x for x in cuts if not 1 <= x < top]
            if bad:
                raise ValueError(f"split mode {name!r}: no {what} boundary {bad[0]} in a "
                                 f"grid of {gr}x{gc} tiles (allowed: 1..{top - 1})")
        return SplitMode(name, tuple(rc), tuple(cc))

    def subarrays(self, mode):
        """The sub-arrays of ``mode`` in row-major order."""
        tr, tc, gr, gc = self.grid
        mode = self.mode(mode)
        rb = [0, *mode.row_cuts, gr]
        cb = [0, *mode.col_cuts, gc]
        out = []
        for i in range(len(rb) - 1):
            for j in range(len(cb) - 1):
                out.append(SubArray(len(out), rb[i] * tr, cb[j] * tc,
                                    (rb[i + 1] - rb[i]) * tr, (cb[j + 1] - cb[j]) * tc))
        return out

    def sub_config(self, sub):
        return ArrayConfig(sub.rows, sub.cols, self.dataflow, self.mac,
                           fold_overlap=self.fold_overlap)


@dataclass
class SplitJob:
    A: object
    B: object
    delay: int = 0            # idle cycles before the job, after its sub-array is free


@dataclass
class JobResult:
    C: np.ndarray             # int64 [M, N]
    cycles: int               # RTL: last result + 1 - start
    model_cycles: int
    start: int                # program cycle of the job's first operand
    end: int                  # model: start + model_cycles
    phase: int
    subarray: SubArray
    mode: str
    shape: tuple              # (M, K, N)


@dataclass
class ProgramResult:
    jobs: list                # JobResult, in program order (phase, sub-array, job)
    cycles: int               # RTL: last result of the program + 1
    model_cycles: int
    sim_seconds: float


# ---------------------------------------------------------------------------------------
# Model

def job_cycles(M, K, N, sub, config):
    """Model cycles of one ``M x K x N`` GEMM on sub-array ``sub`` (or an (Rs, Cs))."""
    rs, cs = (sub.rows, sub.cols) if isinstance(sub, SubArray) else sub
    return _job_cycles(int(M), int(K), int(N), rs, cs, config)


@lru_cache(maxsize=1 << 16)
def _job_cycles(M, K, N, rs, cs, config):
    """:func:`job_cycles`, memoized: the scheduler asks for the same shapes many times."""
    return model_cycles(M, K, N, rs, cs, config.dataflow, pipeline=config.mac.pipeline,
                        fold_overlap=config.fold_overlap, k_chunk=config.k_chunk)


def _dims(sub):
    return (sub.rows, sub.cols) if isinstance(sub, SubArray) else tuple(sub)


def next_job_delay(sub, config):
    """Cycles after a job's end before the next job on the same sub-array may start its
    stream: 0, except on a 1x1 compact OS sub-array with P = 0 (its one-cycle drain
    window is still on in the cycle its result comes out). In general a compact OS job
    ends P + Rs + Cs - 2 cycles after its last tile's stream, and the next tile of the
    same GEMM may follow after min(Rs, Cs) (:func:`sim.models.cycles.os_period`)."""
    if not config.compact_os:
        return 0
    rs, cs = _dims(sub)
    return max(0, min(rs, cs) - config.mac.pipeline - rs - cs + 2)


def drain_tail(sub, config):
    """Cycles after a sub-array's last result until it is quiet (no valid bit, every
    register zero): the compact OS PE still shifts the zeros of its drain window out for
    min(Rs, Cs) - 1 cycles (see :mod:`sim.models.cycles`); 0 for WS and the double-buffered
    OS PE. A new phase starts after the tail of every busy sub-array."""
    if not config.compact_os:
        return 0
    rs, cs = _dims(sub)
    return max(min(rs, cs) - 1, next_job_delay(sub, config))


def _as_job(x):
    if isinstance(x, SplitJob):
        return x
    if isinstance(x, tuple) and len(x) in (2, 3):
        return SplitJob(*x)
    raise ValueError(f"a job must be (A, B), (A, B, delay) or a SplitJob, not "
                     f"{type(x).__name__}")


def _as_item(x, shapes_only):
    if (shapes_only and isinstance(x, tuple) and len(x) == 3
            and all(isinstance(v, (int, np.integer)) for v in x)):
        return x
    return _as_job(x)


def _shape_of(job):
    """(M, K, N) of a job or of a bare shape triple (model only)."""
    if isinstance(job, SplitJob):
        return (np.shape(job.A)[0], np.shape(job.A)[1], np.shape(job.B)[1]), job.delay
    return tuple(job), 0


def _normalize(program, config, shapes_only=False):
    """``[(SplitMode, [[job, ...] per sub-array])]``; ValueError on bad programs."""
    if not isinstance(program, (list, tuple)) or not program:
        raise ValueError("a program is a non-empty list of (mode, work) phases")
    out = []
    for p, phase in enumerate(program):
        try:
            mode, work = phase
        except (TypeError, ValueError):
            raise ValueError(f"phase {p} is not a (mode, work) pair") from None
        mode = config.mode(mode)
        subs = config.subarrays(mode)
        if not isinstance(work, (list, tuple)):
            raise ValueError(f"phase {p}: work must be a list (one entry per sub-array)")
        if len(work) > len(subs):
            raise ValueError(f"phase {p}: {len(work)} jobs for {len(subs)} sub-arrays "
                             f"in split mode {mode.name!r}")
        lists = []
        for w in list(work) + [None] * (len(subs) - len(work)):
            if w is None:
                lists.append([])
            elif isinstance(w, list):
                lists.append([_as_item(x, shapes_only) for x in w])
            else:
                lists.append([_as_item(w, shapes_only)])
        for js in lists:
            for j in js:
                if isinstance(j, SplitJob) and (not isinstance(j.delay, int) or j.delay < 0):
                    raise ValueError(f"phase {p}: job delay must be an int >= 0, "
                                     f"got {j.delay!r}")
        out.append((mode, lists))
    return out


def program_timeline(program, config):
    """Per job ``(phase, sub, job_index, start, end, (M, K, N))`` and the total cycles,
    under the model (see the module docstring). Jobs may be bare (M, K, N) triples."""
    rows, total, _ = _timeline(program, config)
    return rows, total


def _timeline(program, config):
    """:func:`program_timeline` plus each phase's ``(start, next phase's start)``."""
    norm = program if _is_norm(program) else _normalize(program, config, shapes_only=True)
    rows, windows, prev = [], [], None
    t0 = quiet = end_phase = 0
    for p, (mode, lists) in enumerate(norm):
        t0 = quiet + switch_gap(prev, mode, config)
        if windows:
            windows[-1][1] = t0
        windows.append([t0, None])
        prev = mode
        end_phase = quiet = t0
        for sub, js in zip(config.subarrays(mode), lists):
            free = t0
            for i, job in enumerate(js):
                (M, K, N), delay = _shape_of(job)
                start = free + delay + (next_job_delay(sub, config) if i else 0)
                end = start + job_cycles(M, K, N, sub, config)
                rows.append((p, sub, i, start, end, (M, K, N)))
                free = end
            end_phase = max(end_phase, free)
            quiet = max(quiet, free + (drain_tail(sub, config) if js else 0))
    return rows, end_phase, windows


def switch_gap(prev, mode, config):
    """Idle cycles between two phases (after the previous phase's :func:`drain_tail`):
    1 if the new mode opens a cut the previous one had, else 0. WS: the last result, and
    with P = 0 the last activation, still sit in the registers at the cut in the cycle
    the previous phase ends; in the ports style column cuts are not hardware and never
    cost a cycle. OS, double-buffered PE: the last result sits in its exit PE with its
    valid bit, which would travel on down the joined drain chain; row and column cuts
    both cut that chain, in both styles. OS, compact PE: its valid bit is the drain
    flag, which moves along the row: the last flag of the drain tail still sits in its
    register, so only opening a column cut in the mux style costs the cycle (the drain
    values are zeros by then; the ports style never joins the flag chain)."""
    if prev is None:
        return 0
    opened_cols = set(prev.col_cuts) - set(mode.col_cuts)
    if config.compact_os:
        return 1 if opened_cols and config.style == "mux" else 0
    opened = set(prev.row_cuts) - set(mode.row_cuts)
    if config.style == "mux" or config.dataflow == "os":
        opened |= {("c", x) for x in opened_cols}
    return 1 if opened else 0


def _is_norm(program):
    return (isinstance(program, list) and program and isinstance(program[0], tuple)
            and isinstance(program[0][0], SplitMode))


def program_cycles(program, config):
    """Model cycles of a program (jobs or bare shapes)."""
    return program_timeline(program, config)[1]


# ---------------------------------------------------------------------------------------
# RTL

_A_PORTS = ("a_in", "a_swap", "a_valid", "a_drain", "a_last")   # enter at the left edge
_NIBBLE_PORTS = ("a_in", "w_in", "b_in")                          # 4-bit lanes


def _lane_maps(config, sub):
    """Where the sub-array's edge lanes go: ``(a_entries, w_entries, out)``. An entry is
    ``(port suffix, lane ids, delay)``: the sub-array's a (or w and w_en; OS: b) stream
    is written to those lanes ``delay`` cycles late. Mux style: one entry (the
    sub-array's own edge). Ports style: one entry per tile column (row) inside the
    sub-array, delayed by its offset (see :mod:`hdl.split`). ``out``: per output lane of
    the sub-array (WS: per column; OS: per anti-diagonal, as in :mod:`hdl.array`), the
    ``(output pair, lane id)`` it leaves through (see :func:`_out_pairs`)."""
    tr, tc, _, _ = config.grid
    R, C = config.rows, config.cols
    cols0 = [sub.c0] if config.style == "mux" else list(range(sub.c0, sub.c0 + sub.cols, tc))
    rows0 = [sub.r0] if config.style == "mux" else list(range(sub.r0, sub.r0 + sub.rows, tr))
    a = []
    for x in cols0:
        j = x // tc
        lanes = [((j - 1) * R if j else 0) + sub.r0 + i for i in range(sub.rows)]
        a.append(("_x" if j else "", lanes, x - sub.c0))
    w = []
    for y in rows0:
        g = y // tr
        lanes = [((g - 1) * C if g else 0) + sub.c0 + i for i in range(sub.cols)]
        w.append(("_x" if g else "", lanes, y - sub.r0))
    pair = _pair_index(config)

    def bottom(c):          # PE(last row of the sub-array, c)
        r1 = sub.r0 + sub.rows - 1
        if r1 == R - 1:
            return (0, c if config.dataflow == "ws" else R - 1 + c)
        return (pair["c_out_x"], (r1 // tr) * C + c)     # row boundary (r1+1)/tr
    if config.dataflow == "ws":
        return a, w, [bottom(sub.c0 + i) for i in range(sub.cols)]
    out = []
    for d in range(sub.rows + sub.cols - 1):     # the sub-array's anti-diagonal lanes
        if d < sub.rows:                         # PE(r0 + d, c0)
            r = sub.r0 + d
            out.append((0, r) if sub.c0 == 0 else
                       (pair["l_out_x"], (sub.c0 // tc - 1) * R + r))
        else:                                    # PE(r1, c0 + d - Rs + 1)
            out.append(bottom(sub.c0 + d - sub.rows + 1))
    return a, w, out


def _strip_flush(sched):
    """A compact OS schedule of :mod:`sim.drivers.gemm` without its power-up flush (the program
    plays one flush for the whole array, see :func:`_flush`): cycles from its cycle 0 on,
    row i's flag before its stream (cycle i: the flush window, rows i .. i + m - 1 of
    :mod:`hdl.pe`) cleared, the flush outputs (row -3) dropped."""
    pre = sched.pre
    ports = {}
    for name, (data, bits) in sched.ports.items():
        data = data[pre:].copy()
        if name == "a_drain":
            for i in range(data.shape[1]):
                data[:i, i] = 0
        ports[name] = (data, bits)
    keep = sched.row != -3
    return ports, sched.length - pre, sched.t[keep] - pre, sched.lane[keep], \
        sched.row[keep], sched.col[keep]


def _flush(config):
    """The compact OS array's power-up flush (no reset, :func:`hdl.pe.init_cycles`):
    sim.drivers.gemm's schedule of a zero 1x1x1 GEMM on the whole array (its flush window and one
    zero tile), played in split mode ``whole`` before the program's cycle 0 and waited
    out: from then on every register is zero and no valid bit is set, whatever the
    first phase's mode. ``(schedule, cycles before cycle 0)``; None for WS and the
    double-buffered OS PE (``rst`` clears them)."""
    if not config.compact_os:
        return None, 0
    z = np.zeros((1, 1), np.int64)
    sched = build_schedule(z, z, ArrayConfig(config.rows, config.cols, "os", config.mac))
    return sched, sched.length


def _place(lanes, ports, length, a_map, w_map, start, T):
    """OR a sub-array schedule's input ``ports`` into the program's port ``lanes``."""
    for pname, (data, _bits) in ports.items():
        entries = a_map if pname in _A_PORTS else w_map
        for suffix, lane_ids, delay in entries:
            if pname == "w_en":
                delay = 0           # w_en is not delayed (see hdl.split)
            t0 = start + delay
            L = min(length, T - t0)
            lanes[pname + suffix][0][t0:t0 + L, lane_ids] |= data[:L]


def _build_program(program, config):
    """Checked jobs, port lanes [T, L] per input port, expectations and ownership."""
    norm = [(mode, [[SplitJob(*check_operands(j.A, j.B, config.mac.signed), j.delay)
                     for j in js] for js in lists])
            for mode, lists in _normalize(program, config)]
    rows, total, windows = _timeline(norm, config)
    flush, pre = _flush(config)
    T = pre + total + TAIL_CYCLES + max(drain_tail(s, config) for s in
                                        config.subarrays(norm[-1][0]))
    n = config.mac.width
    lanes = {}
    for name, (d, bits) in config.ports().items():
        if d == "in":
            per = n if name.removesuffix("_x") in _NIBBLE_PORTS else 1
            lanes[name] = (np.zeros((T, bits // per), np.uint8), per)
    if flush is not None:           # in mode whole: every cut bit 0
        (sub,) = config.subarrays("whole")
        a_map, w_map, _ = _lane_maps(config, sub)
        _place(lanes, flush.ports, flush.length, a_map, w_map, 0, T)
    expect = []          # per job: out pair and lane per result, t, row, col, ...
    own = []             # (out pair, lanes, t_from, t_to)
    row_iter = iter(rows)
    for p, (mode, lists) in enumerate(norm):
        subs = config.subarrays(mode)
        t_from, t_to = windows[p]
        t_from += pre
        t_to = T if t_to is None else t_to + pre   # own the lanes until the next phase
        for name, cuts in (("row_cut", mode.row_cuts), ("col_cut", mode.col_cuts)):
            if name in lanes:
                keep = np.zeros(lanes[name][0].shape[1], np.uint8)
                for x in cuts:
                    keep[x - 1] = 1
                lanes[name][0][t_from:] = keep       # held until the next phase
        phase_rows = [next(row_iter) for js in lists for _ in js]
        k = 0
        for sub, js in zip(subs, lists):
            a_map, w_map, o_map = _lane_maps(config, sub)
            o_pair = np.array([x[0] for x in o_map])
            o_lane = np.array([x[1] for x in o_map])
            for q in sorted(set(o_pair.tolist())):
                own.append((q, o_lane[o_pair == q].tolist(), t_from, t_to))
            for job in js:
                (_, _, _, start, end, shape) = phase_rows[k]
                k += 1
                start += pre
                sched = build_schedule(job.A, job.B, config.sub_config(sub))
                if sched.pre:
                    ports, length, t, lane, row, col = _strip_flush(sched)
                else:
                    ports, length, t, lane, row, col = (sched.ports, sched.length, sched.t,
                                                        sched.lane, sched.row, sched.col)
                assert sched.last_cycle == end + pre - start, (sched.last_cycle, end, start)
                _place(lanes, ports, length, a_map, w_map, start, T)
                expect.append(dict(pair=o_pair[lane], t=t + start, lane=o_lane[lane],
                                   row=row, col=col, start=start, end=end + pre,
                                   shape=shape, phase=p, sub=sub, mode=mode.name,
                                   M=shape[0], N=shape[2]))
    return norm, lanes, expect, own, total, T, pre


def _out_pairs(config):
    """The (valid, values, lanes, W) output pairs the bench records, in index order."""
    _, _, gr, gc = config.grid
    W, R, C = config.mac.acc_width, config.rows, config.cols
    if config.dataflow == "ws":
        pairs = [["c_valid", "c_out", C, W]]
    else:
        pairs = [["c_valid", "c_out", R + C - 1, W]]
    if gr > 1:
        pairs.append(["c_valid_x", "c_out_x", (gr - 1) * C, W])
    if gc > 1 and config.dataflow == "os":
        pairs.append(["l_valid_x", "l_out_x", (gc - 1) * R, W])
    return pairs


def _pair_index(config):
    return {p[1]: i for i, p in enumerate(_out_pairs(config))}


def _write_design(config, build_dir):
    build_dir.mkdir(parents=True, exist_ok=True)
    return write_if_changed(build_dir / f"{SPLIT_TOPLEVEL}.v", config.verilog())


def _decode(built, trace, config):
    norm, _, expect, own, total, T, pre = built
    got = {}
    for i in range(len(_out_pairs(config))):
        cyc, val, vals = trace[f"cycles_{i}"], trace[f"valid_{i}"], trace[f"values_{i}"]
        ti, li = np.nonzero(val)
        got[i] = (cyc, val, vals, set(zip(cyc[ti].tolist(), li.tolist())))
    # Every owned (pair, lane, cycle window) must show exactly the expected results.
    want = {}
    for e in expect:
        for q in set(e["pair"].tolist()):
            sel = e["pair"] == q
            want.setdefault(q, set()).update(zip(e["t"][sel].tolist(),
                                                 e["lane"][sel].tolist()))
    for pair, lane_ids, t_from, t_to in own:
        lset = set(lane_ids)
        g = {(t, l) for t, l in got[pair][3] if l in lset and t_from <= t < t_to}
        w = {(t, l) for t, l in want.get(pair, ()) if l in lset and t_from <= t < t_to}
        if g != w:
            raise SimulationError(
                f"results came out at unexpected cycles on output pair {pair} lanes "
                f"{lane_ids[0]}..{lane_ids[-1]}: {len(w - g)} missing (first: "
                f"{sorted(w - g)[:3]}), {len(g - w)} unexpected (first: {sorted(g - w)[:3]})")
    results = []
    for e in expect:
        v = np.zeros(len(e["t"]), np.int64)
        for q in set(e["pair"].tolist()):
            sel = e["pair"] == q
            cyc, _, vals, _ = got[q]
            v[sel] = read_values(cyc, vals, e["t"][sel], e["lane"][sel], config.mac)
        out = collect(e["row"], e["col"], e["t"], v, (e["M"], e["N"]), pre=pre,
                      where=f"{e['mode']} sub-array {e['sub'].index}")
        measured = int(e["t"][e["row"] >= -1].max()) + 1 - e["start"]
        results.append(JobResult(C=out, cycles=measured, model_cycles=e["end"] - e["start"],
                                 start=e["start"] - pre, end=e["end"] - pre, phase=e["phase"],
                                 subarray=e["sub"], mode=e["mode"], shape=e["shape"]))
    # the program's last result (drain zeros of the compact OS PE are not results)
    last = max((r.start + r.cycles for r in results), default=0)
    return results, total, last


def run_programs(programs, config, *, simulator, build_root=None, waves=None):
    """Play every program (list of phases, see the module doc) in ONE simulator run,
    each after its own reset; a list of :class:`ProgramResult`."""
    if not isinstance(config, SplitConfig):
        raise ValueError(f"expected a SplitConfig, got {type(config).__name__}")
    built = [_build_program(p, config) for p in programs]
    build_root = Path(build_root) if build_root is not None else DEFAULT_BUILD_ROOT
    build_dir = build_root / f"{config.slug}_{simulator}"
    source = _write_design(config, build_dir)
    (build_dir / "jobs").mkdir(parents=True, exist_ok=True)
    job_dir = Path(tempfile.mkdtemp(dir=build_dir / "jobs", prefix="run-"))
    try:
        manifest = []
        for i, b in enumerate(built):
            inp = job_dir / f"p{i}_in.npz"
            np.savez(inp, **{name: _pack(data, bits) for name, (data, bits) in b[1].items()})
            manifest.append({"input": str(inp), "output": str(job_dir / f"p{i}_out.npz"),
                             "length": b[5]})
        spec = job_dir / "programs.json"
        spec.write_text(json.dumps({"outputs": _out_pairs(config), "programs": manifest}))
        outcome = run_cocotb(sources=[source], toplevel=SPLIT_TOPLEVEL,
                             test_module="sim.tb.split", simulator=simulator,
                             build_dir=build_dir, extra_env={PROGRAMS_ENV: str(spec)},
                             testcase="run_programs", waves=waves)
        if not outcome.ok:
            raise SimulationError(f"{simulator}: split bench failed: {outcome.summary()}")
        out = []
        for b, entry in zip(built, manifest):
            with np.load(entry["output"]) as tr:
                trace = {k: tr[k] for k in tr.files}
            jobs, total, last = _decode(b, trace, config)
            out.append(ProgramResult(jobs=jobs, cycles=last, model_cycles=total,
                                     sim_seconds=float(trace["seconds"])))
    finally:
        shutil.rmtree(job_dir, ignore_errors=True)
    return out


def run_program(program, config, *, simulator, build_root=None):
    return run_programs([program], config, simulator=simulator, build_root=build_root)[0]


def run_split(mode, jobs, config, *, simulator, build_root=None):
    """One phase: ``jobs[s]`` (a job, a list of jobs, or None) on sub-array ``s`` of
    ``mode``. ValueError if there are more jobs than sub-arrays."""
    return run_program([(mode, list(jobs))], config, simulator=simulator,
                       build_root=build_root)


# ---------------------------------------------------------------------------------------
# Scheduler

@dataclass
class Plan:
    phases: list              # [(mode name, [[job index, ...] per sub-array])]
    cycles: int               # model total
    label: str = ""

    def describe(self):
        return "; ".join(f"{m}: " + " | ".join(",".join(map(str, js)) or "-" for js in subs)
                         for m, subs in self.phases)


def _lpt(indices, shapes, config, mode):
    """Longest-processing-time-first assignment of ``indices`` to the sub-arrays of
    ``mode`` (sub-arrays may differ in size: each job goes where it would finish first)."""
    subs = config.subarrays(mode)
    cost = {(i, s.index): job_cycles(*shapes[i], s, config) for i in indices for s in subs}
    order = sorted(indices, key=lambda i: -min(cost[i, s.index] for s in subs))
    load = [0] * len(subs)
    work = [[] for _ in subs]
    for i in order:
        s = min(range(len(subs)), key=lambda k: (load[k] + cost[i, k], k))
        load[s] += cost[i, s]
        work[s].append(i)
    return work, max(load, default=0)


def _evaluate(groups, shapes, config):
    """Phases (in the given mode order, empty ones dropped) and their model cycles
    (:func:`program_cycles`: with the :func:`switch_gap` and :func:`drain_tail` between
    phases)."""
    phases = [(mode, _lpt(idx, shapes, config, mode)[0]) for mode, idx in groups if idx]
    if not phases:
        return phases, 0
    return phases, program_cycles([(m, [[shapes[i] for i in js] for js in work])
                                   for m, work in phases], config)


def plan_jobs(shapes, config, modes=None):
    """Split modes and an assignment for GEMMs of ``shapes`` [(M, K, N), ...] minimizing
    the model's total cycles. Phases run one after another (each one drains before the
    next split); within a phase, jobs go to sub-arrays by LPT. Search: every single mode,
    then "each job in the mode where its cycles per sub-array-share are lowest", then
    moving single jobs between phases while that lowers the total."""
    modes = list(modes) if modes is not None else config.modes()
    # Fewest cuts first: phases then only add cuts (no switch gaps) as far as possible.
    modes.sort(key=lambda m: (len(config.subarrays(m)), m))
    if not shapes:
        return Plan([], 0, "empty")
    shapes = [tuple(int(v) for v in s) for s in shapes]
    idx = list(range(len(shapes)))
    candidates = [[(m, idx)] for m in modes]

    def share(i, m):
        subs = config.subarrays(m)
        return min(job_cycles(*shapes[i], s, config) for s in subs) / len(subs)
    pref = {m: [i for i in idx if min(modes, key=lambda mm: share(i, mm)) == m] for m in modes}
    candidates.append([(m, pref[m]) for m in modes])
    best_groups, best = None, None
    for groups in candidates:
        _, t = _evaluate(groups, shapes, config)
        if best is None or t < best:
            best, best_groups = t, [(m, list(g)) for m, g in groups]
    # Local search: move one job to another mode's phase while it helps.
    groups = {m: [] for m in modes}
    for m, g in best_groups:
        groups[m] += g
    improved = True
    while improved:
        improved = False
        for i in idx:
            cur = next(m for m in modes if i in groups[m])
            for m in modes:
                if m == cur:
                    continue
                trial = {k: [x for x in v if x != i] for k, v in groups.items()}
                trial[m].append(i)
                _, t = _evaluate(list(trial.items()), shapes, config)
                if t < best:
                    best, groups, improved = t, trial, True
                    break
    phases, total = _evaluate([(m, groups[m]) for m in modes], shapes, config)
    return Plan(phases, total, "planned")


def plan_to_program(plan, jobs):
    """A program (for :func:`run_program`) from a plan and the jobs it indexes."""
    return [(mode, [[jobs[i] for i in js] for js in work]) for mode, work in plan.phases]


def compare_plans(shapes, config):
    """``{"planned", "whole", "finest"}`` -> :class:`Plan` (model cycles)."""
    shapes = [tuple(int(v) for v in s) for s in shapes]
    idx = list(range(len(shapes)))
    out = {"planned": plan_jobs(shapes, config)}
    for label, mode in (("whole", "whole"), ("finest", "tiles")):
        phases, t = _evaluate([(mode, idx)], shapes, config)
        out[label] = Plan(phases, t, label)
    return out


def four_gemms_comparison(size=32, tile=16, gemm=(16, 16, 16), mac=None, *,
                          simulator=None, seed=0, dataflow="ws"):
    """Model cycles of four independent ``gemm`` GEMMs on a ``size`` x ``size`` array:
    split into quadrants (one GEMM each, concurrently) vs one after another on the whole
    array. With ``simulator``, also plays both on the RTL (random operands, checked
    against numpy) and adds ``rtl_quad`` / ``rtl_whole_sequential``."""
    cfg = SplitConfig(size, size, tile, mac or MacConfig(), dataflow=dataflow)
    quad = program_cycles([("quad", [gemm] * 4)], cfg)
    whole = program_cycles([("whole", [[gemm] * 4])], cfg)
    out = {"quad": quad, "whole_sequential": whole, "speedup": whole / quad,
           "per_job_quad": job_cycles(*gemm, cfg.subarrays("quad")[0], cfg),
           "per_job_whole": job_cycles(*gemm, (size, size), cfg)}
    if simulator:
        rng = np.random.default_rng(seed)
        lo, hi = (-8, 8) if cfg.mac.signed else (0, 16)
        M, K, N = gemm
        jobs = [SplitJob(rng.integers(lo, hi, (M, K)), rng.integers(lo, hi, (K, N)))
                for _ in range(4)]
        q, w = run_programs([[("quad", jobs)], [("whole", [list(jobs)])]], cfg,
                            simulator=simulator)
        for res in (q, w):
            for r, j in zip(res.jobs, jobs):
                if not np.array_equal(r.C, j.A.astype(np.int64) @ j.B.astype(np.int64)):
                    raise SimulationError(f"wrong result in {r.mode}")
        out.update(rtl_quad=q.cycles, rtl_whole_sequential=w.cycles)
    return out


# ---------------------------------------------------------------------------------------
# Area

def _analytic_counts(config):
    """Boundary gates the generator writes (before Yosys/abc optimise them); the ports
    style has no activation or weight muxes (OS: "w_mux" is the mux on B, "psum_cut"
    the cut of the drain chain)."""
    tr, tc, gr, gc = config.grid
    n, W, R, C = config.mac.width, config.mac.acc_width, config.rows, config.cols
    muxes = config.style == "mux"
    if config.dataflow == "os":
        cut = sum(1 for r in range(1, R) for c in range(C - 1)
                  if r % tr == 0 or (c + 1) % tc == 0)
        return {"act_mux": {"mux2": (gc - 1) * R * (n + 1) if muxes else 0},
                "psum_cut": {"and2": cut * (W + config.double_buffer)},
                "w_mux": {"mux2": (gr - 1) * C * n if muxes else 0}}
    return {"act_mux": {"mux2": (gc - 1) * R * (n + 2) if muxes else 0},
            "psum_cut": {"and2": (gr - 1) * C * (W + 1)},
            "w_mux": {"mux2": (gr - 1) * C * (n + 1) if muxes else 0}}


def _delta_by_type(base, split, cost):
    """``{cell type: {"cells", "transistors"}}`` of split minus base (nonzero only)."""
    out = {}
    for t in sorted(set(base.cells_by_type) | set(split.cells_by_type)):
        d = split.cells_by_type.get(t, 0) - base.cells_by_type.get(t, 0)
        if d:
            out[t] = {"cells": d, "transistors": d * cost.get(t, 0)}
    return out


def split_area_overhead(rows, cols, tile, mac=None, *, style="mux", breakdown=True,
                        flow="synth", dataflow="ws", fold_overlap=False):
    """Synthesize the splittable array and the unsplit array of the same size (Yosys
    flow ``flow``, CMOS gates, cached); returns a dict with both, the overhead in
    transistors and cells (absolute and %), the extra edge-port bits, the config bits,
    and (``breakdown``) the overhead of each boundary feature alone (one synthesis
    each), plus the analytic gate counts. Seconds are wall time of each synthesis
    (0 when cached)."""
    from hdl.array import array_verilog, TOPLEVEL
    from hdl.flows.synth import synthesize, CMOS_COST
    mac = mac or MacConfig()
    cfg = SplitConfig(rows, cols, tile, mac, style, fold_overlap=fold_overlap,
                      dataflow=dataflow)

    def synth(text, top):
        t = time.monotonic()
        r = synthesize(text, top=top, flow=flow, ice40=False)
        return r, (0.0 if r.cached else round(time.monotonic() - t, 1))

    base, base_s = synth(array_verilog(rows, cols, dataflow, mac,
                                       double_buffer=cfg.double_buffer), TOPLEVEL)
    split, split_s = synth(cfg.verilog(), SPLIT_TOPLEVEL)
    ports = cfg.ports()
    base_bits = sum(b for k, (_, b) in ports.items() if not k.endswith("_x")
                    and k not in ("row_cut", "col_cut"))
    extra = {k: b for k, (_, b) in ports.items() if k.endswith("_x")}
    cfg_bits = {k: ports[k][1] for k in ("row_cut", "col_cut") if k in ports}

    def pct(a, b):
        return round(100.0 * (a - b) / b, 3)
    out = {
        "array": f"{rows}x{cols}", "style": style, "dataflow": dataflow,
        "tile": "x".join(map(str, cfg.grid[:2])),
        "flow": flow,
        "base": {"transistors": base.transistors, "cells": base.cells, "flops": base.flops,
                 "seconds": base_s},
        "split": {"transistors": split.transistors, "cells": split.cells,
                  "flops": split.flops, "seconds": split_s},
        "transistor_overhead_pct": pct(split.transistors, base.transistors),
        "cell_overhead_pct": pct(split.cells, base.cells),
        "extra_transistors": split.transistors - base.transistors,
        "extra_cells": split.cells - base.cells,
        "port_bits_base": base_bits, "extra_port_bits": sum(extra.values()),
        "extra_ports": extra, "config_bits": cfg_bits,
        "config_flops": 0,
        # The cut bits are ports; held in a register they would cost one flop each.
        "config_register_transistors": sum(cfg_bits.values()) * CMOS_COST["$_DFF_P_"],
        "analytic_gates": _analytic_counts(cfg),
        "delta_by_type": _delta_by_type(base, split, CMOS_COST),
    }
    if breakdown and style == "mux":
        parts = {}
        for feat in FEATURES:
            r, s = synth(cfg.verilog(features=(feat,)), SPLIT_TOPLEVEL)
            parts[feat] = {"transistors": r.transistors - base.transistors,
                           "cells": r.cells - base.cells,
                           "transistor_pct": pct(r.transistors, base.transistors),
                           "seconds": s}
        out["breakdown"] = parts
    return out


def main(argv=None):
    """``python -m sim.drivers.split area R C TILE [--no-breakdown]`` | ``four [SIZE TILE]``
    | ``plan R C TILE M,K,N ...``: print JSON."""
    import argparse
    ap = argparse.ArgumentParser(prog="python -m sim.drivers.split")
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("area")
    a.add_argument("rows", type=int)
    a.add_argument("cols", type=int)
    a.add_argument("tile", type=int)
    a.add_argument("--no-breakdown", action="store_true")
    a.add_argument("--style", default="mux", choices=STYLES)
    f = sub.add_parser("four")
    f.add_argument("size", type=int, nargs="?", default=32)
    f.add_argument("tile", type=int, nargs="?", default=16)
    f.add_argument("--gemm", type=int, default=16, help="M = K = N of each GEMM")
    f.add_argument("--simulator", default=None, help="also run on the RTL (icarus)")
    p = sub.add_parser("plan")
    p.add_argument("rows", type=int)
    p.add_argument("cols", type=int)
    p.add_argument("tile", type=int)
    p.add_argument("shapes", nargs="+")
    for x in (a, f, p):
        x.add_argument("--dataflow", default="ws", choices=("ws", "os"))
    args = ap.parse_args(argv)
    if args.cmd == "area":
        out = split_area_overhead(args.rows, args.cols, args.tile, style=args.style,
                                  breakdown=not args.no_breakdown, dataflow=args.dataflow)
    elif args.cmd == "four":
        out = four_gemms_comparison(args.size, args.tile, (args.gemm,) * 3,
                                    simulator=args.simulator, dataflow=args.dataflow)
    else:
        cfg = SplitConfig(args.rows, args.cols, args.tile, dataflow=args.dataflow)
        shapes = [tuple(int(v) for v in s.split(",")) for s in args.shapes]
        out = {k: {"cycles": v.cycles, "plan": v.describe()}
               for k, v in compare_plans(shapes, cfg).items()}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
