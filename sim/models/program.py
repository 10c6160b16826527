"""Programs on a splittable array and their exact cycle counts (:mod:`hdl.split`).

Independent GEMMs on the sub-arrays of a splittable array, WS or OS (:mod:`hdl.split`).

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

Precision (an array built with ``SplitConfig.fusion``, :mod:`hdl.fusion`): a job may run
W4A8 or int8 (``SplitJob.precision``; a bare shape ``(M, K, N, precision)``). Its
digit tags travel with its A stream, so sub-arrays run different precisions at once; a
job of precision p takes ``model_cycles(..., k_chunk=precision_max_safe_k(p, W),
digits=D)`` cycles (its K becomes D*K digit steps, pass by pass:
:func:`sim.models.cycles.fold_counts`).
"""
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from hdl.fusion import DIGIT_STEPS, PRECISIONS, precision_max_safe_k
from hdl.split import SplitMode, SubArray
from sim.models.cycles import model_cycles

__all__ = ["SplitJob", "job_cycles", "next_job_delay", "drain_tail", "switch_gap",
           "normalize_program", "program_schedule", "program_timeline", "program_cycles"]


@dataclass
class SplitJob:
    A: object
    B: object
    delay: int = 0            # idle cycles before the job, after its sub-array is free
    precision: str = "int4"   # hdl.fusion.PRECISIONS; not int4: a fusable array only


def job_cycles(M, K, N, sub, config, precision="int4"):
    """Model cycles of one ``M x K x N`` GEMM of ``precision`` on sub-array ``sub`` (or an
    (Rs, Cs))."""
    rs, cs = (sub.rows, sub.cols) if isinstance(sub, SubArray) else sub
    return _job_cycles(int(M), int(K), int(N), rs, cs, config, precision)


@lru_cache(maxsize=1 << 16)
def _job_cycles(M, K, N, rs, cs, config, precision):
    """:func:`job_cycles`, memoized: the scheduler asks for the same shapes many times."""
    if precision == "int4":
        k_chunk, digits = config.mac.max_safe_k, 1
    else:
        k_chunk = precision_max_safe_k(precision, config.mac.acc_width)
        digits = DIGIT_STEPS[precision]
    return model_cycles(M, K, N, rs, cs, config.dataflow, pipeline=config.mac.pipeline,
                        fold_overlap=config.fold_overlap, k_chunk=k_chunk, digits=digits)


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
    if (shapes_only and isinstance(x, tuple) and len(x) in (3, 4)
            and all(isinstance(v, (int, np.integer)) for v in x[:3])
            and (len(x) == 3 or x[3] in PRECISIONS)):
        return x
    return _as_job(x)


def _shape_of(job):
    """((M, K, N), delay, precision) of a job or of a bare shape ``(M, K, N)`` or
    ``(M, K, N, precision)`` (model only)."""
    if isinstance(job, SplitJob):
        return ((np.shape(job.A)[0], np.shape(job.A)[1], np.shape(job.B)[1]), job.delay,
                job.precision)
    return tuple(job[:3]), 0, job[3] if len(job) > 3 else "int4"


def normalize_program(program, config, shapes_only=False):
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
    rows, total, _ = program_schedule(program, config)
    return rows, total


def program_schedule(program, config):
    """:func:`program_timeline` plus each phase's ``(start, next phase's start)``."""
    norm = program if _is_norm(program) else normalize_program(program, config, shapes_only=True)
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
                (M, K, N), delay, precision = _shape_of(job)
                start = free + delay + (next_job_delay(sub, config) if i else 0)
                end = start + job_cycles(M, K, N, sub, config, precision)
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
