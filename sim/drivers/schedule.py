"""The split scheduler: which split modes, and which GEMMs on which sub-arrays.

:func:`plan_jobs` chooses split modes and an assignment of a list of GEMM shapes
minimizing the model's total cycles; :func:`compare_plans` sets it against always-whole
and always-finest. A shape may carry a precision, ``(M, K, N, "int8")`` (a fused array,
:mod:`hdl.fusion`): its cycles are those of its digit steps, and a sub-array that cannot
run it (WS: fewer rows than digit steps per MAC) is never given it.
"""
import math
from dataclasses import dataclass

import numpy as np

from hdl.fusion import PRECISIONS
from hdl.mac import MacConfig
from hdl.split import SplitConfig
from sim.models.program import SplitJob, job_cycles, program_cycles
from sim.drivers.gemm import random_operands
from sim.runner import SimulationError

__all__ = ["Plan", "plan_jobs", "plan_to_program", "compare_plans", "four_gemms_comparison"]


@dataclass
class Plan:
    phases: list              # [(mode name, [[job index, ...] per sub-array])]
    cycles: int               # model total
    label: str = ""

    def describe(self):
        return "; ".join(f"{m}: " + " | ".join(",".join(map(str, js)) or "-" for js in subs)
                         for m, subs in self.phases)


def _shape(s):
    """``(M, K, N, precision)`` of a shape ``(M, K, N)`` (int4) or ``(M, K, N, precision)``."""
    s = tuple(s)
    precision = s[3] if len(s) == 4 else "int4"
    if len(s) not in (3, 4) or precision not in PRECISIONS:
        raise ValueError(f"shape {s!r} is not (M, K, N) or (M, K, N, precision) with a "
                         f"precision of {', '.join(PRECISIONS)}")
    return (*(int(v) for v in s[:3]), precision)


def _cost(shape, sub, config):
    """Model cycles of ``shape`` on ``sub``; infinite if the sub-array cannot run it."""
    try:
        return job_cycles(*shape[:3], sub, config, shape[3])
    except ValueError:          # a WS sub-array with fewer rows than digit steps per MAC
        return math.inf


def _lpt(indices, shapes, config, mode):
    """Longest-processing-time-first assignment of ``indices`` to the sub-arrays of
    ``mode`` (sub-arrays may differ in size: each job goes where it would finish first)."""
    subs = config.subarrays(mode)
    cost = {(i, s.index): _cost(shapes[i], s, config) for i in indices for s in subs}
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
    lpt = [(mode, _lpt(idx, shapes, config, mode)) for mode, idx in groups if idx]
    phases = [(mode, work) for mode, (work, _) in lpt]
    if not phases:
        return phases, 0
    if any(load == math.inf for _, (_, load) in lpt):
        return phases, math.inf
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
    shapes = [_shape(s) for s in shapes]
    idx = list(range(len(shapes)))
    candidates = [[(m, idx)] for m in modes]

    def share(i, m):
        subs = config.subarrays(m)
        return min(_cost(shapes[i], s, config) for s in subs) / len(subs)
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
    shapes = [_shape(s) for s in shapes]
    idx = list(range(len(shapes)))
    out = {"planned": plan_jobs(shapes, config)}
    for label, mode in (("whole", "whole"), ("finest", "tiles")):
        phases, t = _evaluate([(mode, idx)], shapes, config)
        out[label] = Plan(phases, t, label)
    return out


def four_gemms_comparison(size=32, tile=16, gemm=(16, 16, 16), mac=None, *,
                          simulator=None, seed=0, dataflow="ws", executor=None):
    """Model cycles of four independent ``gemm`` GEMMs on a ``size`` x ``size`` array:
    split into quadrants (one GEMM each, concurrently) vs one after another on the whole
    array. With ``simulator``, also plays both on the RTL (random operands, checked
    against numpy) and adds ``rtl_quad`` / ``rtl_whole_sequential``; that simulator run
    goes to ``executor`` (:func:`sim.batch.simulate_many`)."""
    cfg = SplitConfig(size, size, tile, mac or MacConfig(), dataflow=dataflow)
    quad = program_cycles([("quad", [gemm] * 4)], cfg)
    whole = program_cycles([("whole", [[gemm] * 4])], cfg)
    out = {"quad": quad, "whole_sequential": whole, "speedup": whole / quad,
           "per_job_quad": job_cycles(*gemm, cfg.subarrays("quad")[0], cfg),
           "per_job_whole": job_cycles(*gemm, (size, size), cfg)}
    if simulator:
        rng = np.random.default_rng(seed)
        jobs = [SplitJob(*random_operands(rng, *gemm, cfg.mac)) for _ in range(4)]
        from sim.batch import SimBatch, simulate_many
        (q, w), = simulate_many([SimBatch([[("quad", jobs)], [("whole", [list(jobs)])]], cfg,
                                          simulator, label="four GEMMs")], executor=executor)
        for res in (q, w):
            for r, j in zip(res.jobs, jobs):
                if not np.array_equal(r.C, j.A.astype(np.int64) @ j.B.astype(np.int64)):
                    raise SimulationError(f"wrong result in {r.mode}")
        out.update(rtl_quad=q.cycles, rtl_whole_sequential=w.cycles)
    return out
