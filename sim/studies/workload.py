"""Whole against split array on the GEMMs of a language model (cycle model).

For a model (:mod:`sim.models.workload`), a phase and a :class:`hdl.split.SplitConfig`,
:func:`compare_workload` computes per GEMM, per stage, per layer and for the whole model:

* **whole**: every GEMM instance one after another on the whole R x C array, as
  :func:`sim.models.program.program_cycles` times a single-phase ``whole`` program (for
  WS and the double-buffered OS PE that is the sum of :func:`sim.models.cycles.
  model_cycles`);
* **SCALE-Sim**: the sum of :func:`sim.models.cycles.scalesim_cycles` over the same
  instances on the whole array (no K split, no pipeline);
* **split**: each stage (GEMMs that do not depend on each other: Q/K/V, the heads, the
  experts) scheduled by :func:`schedule_stage`, stages one after another (a stage starts
  once the previous one has drained: every stage boundary is a phase boundary of the
  program, with :func:`sim.models.program.switch_gap` where a cut reopens).

:func:`schedule_stage` tries every named split mode of the array. Per mode, each GEMM
group may be cut into column blocks (N, aligned to the sub-array width) and row blocks
(M) so that its instances fill the sub-arrays: the cut with the least estimated
makespan is kept (results stay exact: blocks of C are disjoint; K is never cut). The
pieces of all groups of the stage go to the sub-arrays longest first (LPT). Small stages
(at most :data:`PLAN_JOBS_LIMIT` instances) are also given, uncut, to
:func:`sim.drivers.schedule.plan_jobs`, which may mix modes in several phases. The stage
takes the candidate with the fewest cycles of :func:`program_cycles`; ``whole`` is a
candidate, so no stage takes more cycles on the split array than on the whole one.

``precision`` (W4A8 or int8 on a fused array, :mod:`hdl.fusion`): every GEMM runs in it,
on both arrays; its jobs are ``(M, K, N, precision)`` shapes of the program model (their
digit steps), and a WS mode whose sub-arrays are too short for them is never chosen.

Per GEMM, ``split`` is that GEMM group scheduled alone; the stage, layer and model
totals schedule the groups of a stage together. The model total sums every kind of
layer (DeepSeek's dense first layers and its MoE layers, sliding-window and full
layers) times its count, and the LM head; its split cycles follow the layers in order,
with the exact cycles between consecutive layers.
"""
import heapq
from functools import lru_cache
from math import ceil

from hdl.split import SplitConfig
from sim.drivers.schedule import plan_jobs, plan_to_program
from sim.models.program import job_cycles, program_cycles
from sim.models.cycles import scalesim_cycles
from sim.models.workload import (Gemm, ModelShape, Phase, layer_groups, lm_head_gemms,
                                 mla_form, STAGES)

__all__ = ["schedule_stage", "StagePlan", "compare_workload", "whole_cycles",
           "scalesim_total", "block_shapes", "block_spans", "PLAN_JOBS_LIMIT"]

PLAN_JOBS_LIMIT = 8


@lru_cache(maxsize=None)
def _cost(shape, dims, config):
    """Model cycles of a job ``(M, K, N[, precision])`` on a sub-array of ``dims``."""
    return job_cycles(*shape[:3], dims, config, *shape[3:])


def _job(shape, precision):
    """The program-model job of ``shape`` (M, K, N) in ``precision`` (int4: the shape)."""
    return tuple(shape) if precision == "int4" else (*shape, precision)


def _fits(dims, config, precision):
    """Whether a sub-array of ``dims`` runs ``precision`` (a WS pass needs D rows)."""
    try:
        job_cycles(1, 1, 1, dims, config, precision)
    except ValueError:
        return False
    return True


def block_spans(shape, col_blocks, row_blocks, dims):
    """``shape`` (M, K, N) cut into at most ``col_blocks`` blocks of N whose widths are
    multiples of the sub-array's columns and ``row_blocks`` blocks of M (multiples of
    its rows when M allows): ``[(m0, m, n0, n)]``, covering C exactly once."""
    M, K, N = shape
    rs, cs = dims

    def cut(total, parts, unit):
        width = ceil(total / parts)
        if total >= parts * unit:
            width = ceil(width / unit) * unit
        spans, at = [], 0
        while at < total:
            spans.append((at, min(width, total - at)))
            at += spans[-1][1]
        return spans
    return [(m0, m, n0, n) for m0, m in cut(M, row_blocks, rs)
            for n0, n in cut(N, col_blocks, cs)]


def block_shapes(shape, col_blocks, row_blocks, dims):
    """The (M_i, K, N_j) of :func:`block_spans`."""
    return [(m, shape[1], n) for _, m, _, n in block_spans(shape, col_blocks, row_blocks,
                                                           dims)]


def _powers(limit):
    out, x = [], 1
    while x <= limit:
        out.append(x)
        x *= 2
    if out[-1] != limit:
        out.append(limit)
    return out


def _makespan(costs, n):
    """LPT makespan of job ``costs`` on ``n`` identical sub-arrays."""
    heap = [0] * n
    for c in sorted(costs, reverse=True):
        heapq.heapreplace(heap, heap[0] + c)
    return max(heap)


def _pieces(index, gemm, dims, n_sub, config, precision="int4"):
    """The instances of GEMM group ``index`` cut for ``n_sub`` sub-arrays of ``dims``:
    the (column, row) cut with the least LPT makespan, fewer pieces on ties; groups of
    at least ``4 * n_sub`` instances fill the sub-arrays uncut. ``[(shape, tag)]`` with
    ``tag = (index, instance, m0, n0)``: where the piece's block of C sits."""
    M, K, N = gemm.shape
    best = [(0, M, 0, N)]
    if gemm.count < 4 * n_sub:
        key = None
        for p in _powers(min(n_sub, ceil(N / dims[1]))):
            for q in _powers(min(n_sub // p, ceil(M / dims[0]))):
                spans = block_spans(gemm.shape, p, q, dims)
                costs = [_cost(_job((m, K, n), precision), dims, config)
                         for _, m, _, n in spans]
                k = (_makespan(costs * gemm.count, n_sub), len(spans))
                if key is None or k < key:
                    key, best = k, spans
    return [(_job((m, K, n), precision), (index, i, m0, n0)) for i in range(gemm.count)
            for m0, m, n0, n in best]


def _lpt(items, subs, config):
    """Longest first onto the least-loaded sub-array: ``(work lists, makespan)``;
    ``items`` are ``(shape, tag)``."""
    dims = [(s.rows, s.cols) for s in subs]
    costed = sorted(((_cost(it[0], dims[0], config), it) for it in items),
                    key=lambda x: -x[0])
    uniform = len(set(dims)) == 1
    heap = [(0, i) for i in range(len(subs))]
    work = [[] for _ in subs]
    for c, it in costed:
        if uniform:
            load, i = heapq.heappop(heap)
            heapq.heappush(heap, (load + c, i))
        else:
            loads = {i: load for load, i in heap}
            i = min(loads, key=lambda k: (loads[k] + _cost(it[0], dims[k], config), k))
            heap = [(loads[k] + (_cost(it[0], dims[k], config) if k == i else 0), k)
                    for k in loads]
        work[i].append(it)
    return work, max(load for load, _ in heap)


class StagePlan:
    """A stage's ``program`` of shapes (for :func:`program_cycles`), its ``cycles``, a
    description, and ``tags``: per phase, per sub-array, per job ``(gemm index,
    instance, m0, n0)``, where the job's block of C sits in which GEMM instance."""

    def __init__(self, program, cycles, how, tags):
        self.program, self.cycles, self.how, self.tags = program, cycles, how, tags

    @property
    def modes(self):
        return [m for m, _ in self.program]


def _split_items(phases):
    """``[(mode, [[(shape, tag)]])]`` -> (program of shapes, tags)."""
    program = [(m, [[s for s, _ in w] for w in work]) for m, work in phases]
    tags = [[[t for _, t in w] for w in work] for _, work in phases]
    return program, tags


def schedule_stage(gemms, config, precision="int4"):
    """The fastest program found for the independent GEMM groups ``gemms`` (see the
    module docstring), every job in ``precision``; a :class:`StagePlan`."""
    if not isinstance(config, SplitConfig):
        raise TypeError(f"expected a SplitConfig, got {type(config).__name__}")
    bad = [g for g in gemms if not isinstance(g, Gemm)]
    if bad or not gemms:
        raise TypeError("expected a non-empty list of sim.models.workload.Gemm, got "
                        f"{type(bad[0]).__name__ if bad else 'an empty list'}")
    candidates = []
    for mode in config.modes():
        subs = config.subarrays(mode)
        dims = (subs[0].rows, subs[0].cols)
        if not all(_fits((s.rows, s.cols), config, precision) for s in subs):
            continue
        items = [it for i, g in enumerate(gemms)
                 for it in _pieces(i, g, dims, len(subs), config, precision)]
        work, span = _lpt(items, subs, config)
        candidates.append((span, [(mode, work)], f"{mode}: {len(items)} jobs on "
                                                 f"{len(subs)} sub-arrays of "
                                                 f"{dims[0]}x{dims[1]}"))
    candidates.sort(key=lambda c: c[0])
    best = []
    for _, phases, how in candidates[:2]:
        program, tags = _split_items(phases)
        best.append((program_cycles(program, config), program, how, tags))
    instances = [(_job(g.shape, precision), (i, n, 0, 0)) for i, g in enumerate(gemms)
                 for n in range(g.count)]
    if len(instances) <= PLAN_JOBS_LIMIT:
        plan = plan_jobs([s for s, _ in instances], config)
        program, tags = _split_items(plan_to_program(plan, instances))
        best.append((plan.cycles, program, f"plan_jobs: {plan.describe()}", tags))
    cycles, program, how, tags = min(best, key=lambda b: b[0])
    return StagePlan(program, cycles, how, tags)


def whole_cycles(gemms, config, precision="int4"):
    """Every instance one after another on the whole array (model cycles)."""
    shapes = [_job(g.shape, precision) for g in gemms for _ in range(g.count)]
    return program_cycles([("whole", [shapes])], config) if shapes else 0


def scalesim_total(gemms, config):
    """SCALE-Sim's formula cycles of every instance on the whole array, summed."""
    return sum(g.count * scalesim_cycles(*g.shape, config.rows, config.cols,
                                         config.dataflow) for g in gemms)


def _util(macs, config, cycles):
    return round(macs / (config.rows * config.cols * cycles), 5) if cycles else None


def _stages(gemms):
    order = {s: i for i, s in enumerate(STAGES)}
    out = {}
    for g in gemms:
        out.setdefault(g.stage, []).append(g)
    return sorted(out.items(), key=lambda kv: order[kv[0]])


def _program(stage_plans):
    return [ph for sp in stage_plans for ph in sp.program]


def _totals(macs, config, whole, scalesim, split):
    return {"macs": macs, "whole_cycles": whole, "scalesim_cycles": scalesim,
            "split_cycles": split, "whole_util": _util(macs, config, whole),
            "split_util": _util(macs, config, split), "speedup": round(whole / split, 3)}


def compare_workload(model, phase, config, *, stack_gqa=False, mla=None, precision="int4"):
    """Whole vs split cycles and utilization of ``model`` in ``phase`` on ``config``
    (see the module docstring): a JSON-ready dict with ``gemms`` (one row per GEMM
    group of each kind of layer, then the LM head), ``stages``, one total per part
    (``parts``: ``layer`` for a model of one kind of layer, else one per kind, such as
    ``dense layer`` and ``MoE layer``; then ``lm_head``) and the ``model`` total, which
    sums every kind's layers; ``name`` is the model's name. ``stack_gqa`` and ``mla``:
    see :func:`sim.models.workload.layer_gemms` (both arrays run the same GEMMs).
    ``precision``: every GEMM's (both arrays; SCALE-Sim's column stays int4)."""
    if not isinstance(model, ModelShape):
        raise TypeError(f"expected a ModelShape, got {type(model).__name__}")
    if not isinstance(phase, Phase):
        raise TypeError(f"expected a Phase, got {type(phase).__name__}")
    groups = layer_groups(model, phase, stack_gqa=stack_gqa, mla=mla)
    parts = [(g.part, list(g.gemms)) for g in groups]
    parts.append(("lm_head", lm_head_gemms(model, phase)))
    rows, stages, programs, totals = [], [], {}, {}
    for part, gemms in parts:
        for g in gemms:
            alone = schedule_stage([g], config, precision)
            whole = whole_cycles([g], config, precision)
            rows.append({
                "part": part, "name": g.name, "stage": g.stage, "M": g.M, "K": g.K,
                "N": g.N, "count": g.count, "shared_b": g.shared_b, "share": g.share,
                "note": g.note, "macs": g.macs, "whole_cycles": whole,
                "whole_util": _util(g.macs, config, whole),
                "scalesim_cycles": scalesim_total([g], config),
                "split_cycles": alone.cycles,
                "split_util": _util(g.macs, config, alone.cycles),
                "split_plan": alone.how, "speedup": round(whole / alone.cycles, 3)})
    for part, gemms in parts:
        plans = []
        for stage, group in _stages(gemms):
            sp = schedule_stage(group, config, precision)
            plans.append(sp)
            macs = sum(g.macs for g in group)
            whole = whole_cycles(group, config, precision)
            stages.append({"part": part, "stage": stage, "gemms": [g.name for g in group],
                           "macs": macs, "whole_cycles": whole,
                           "scalesim_cycles": scalesim_total(group, config),
                           "split_cycles": sp.cycles, "split_plan": sp.how,
                           "whole_util": _util(macs, config, whole),
                           "split_util": _util(macs, config, sp.cycles),
                           "speedup": round(whole / sp.cycles, 3)})
        programs[part] = _program(plans)
        totals[part] = _totals(sum(g.macs for g in gemms), config,
                               whole_cycles(gemms, config, precision),
                               scalesim_total(gemms, config),
                               program_cycles(programs[part], config))
    # The model's split cycles: its layers in order, then the head, with the exact
    # cycles between consecutive programs. The timeline is shift-invariant, so what a
    # program adds after another depends only on the two: computed once per pair.
    step = {}

    def after(prev, nxt):
        if (prev, nxt) not in step:
            both = program_cycles(programs[prev] + programs[nxt], config)
            step[prev, nxt] = both - totals[prev]["split_cycles"]
        return step[prev, nxt]

    part_of = {g.kind: g.part for g in groups}
    order = [part_of[kind] for kind, n in model.sequence() for _ in range(n)]
    split = totals[order[0]]["split_cycles"]
    for prev, nxt in zip(order, order[1:] + ["lm_head"]):
        split += after(prev, nxt)
    layers = {g.part: g.layers for g in groups}
    head = totals["lm_head"]
    totals["model"] = _totals(
        sum(n * totals[p]["macs"] for p, n in layers.items()) + head["macs"], config,
        sum(n * totals[p]["whole_cycles"] for p, n in layers.items()) + head["whole_cycles"],
        sum(n * totals[p]["scalesim_cycles"] for p, n in layers.items())
        + head["scalesim_cycles"], split)
    return {"name": model.name, "phase": phase.kind, "phase_text": phase.describe(),
            "batch": phase.batch, "tokens": phase.tokens, "context": phase.context,
            "layers": model.layers, "layer_counts": layers,
            "parts": [p for p, _ in parts], "array": f"{config.rows}x{config.cols}",
            "tile": "x".join(map(str, config.grid[:2])), "dataflow": config.dataflow,
            "fold_overlap": config.fold_overlap, "stack_gqa": stack_gqa,
            **({} if precision == "int4" else {"precision": precision}),
            "mla": mla_form(phase, mla) if model.mla else None, "gemms": rows,
            "stages": stages, **totals}
