"""Real GEMM shapes of a language model in RTL: C against numpy, cycles against the model.

:func:`rtl_gemms` picks, from a model's :func:`sim.models.workload.layer_groups`, the
layer's smallest dense weight projection at full size (usually K/V) for one token (a
decode GEMV) and for a prefill of ``tokens`` tokens, for a mixture of experts also the
router and one expert's first MLP GEMM with its share of the tokens, and the attention
GEMMs of one head in both phases (decode at ``context`` keys), all at full size unless
a cycle budget is given (``max_cycles``: a GEMM longer than that on the whole array
keeps its first columns, said in its ``note``; a quick look at a big model).
:func:`run_rtl_shapes` plays them, with random int4 operands, as two programs on the
splittable array in one simulator run:

* **whole**: every GEMM one after another in split mode ``whole`` (the unsplit array,
  results and cycles; ``tests/test_split.py``);
* **split**: the program :func:`sim.studies.workload.schedule_stage` plans for them
  (column/row blocks on the sub-arrays); C of each GEMM is assembled from its blocks.

Each job's C must equal ``A.astype(int64) @ B``, each job's and each program's RTL
cycles the cycle model (:func:`sim.models.program.program_cycles`). The path:
``native`` (:mod:`sim.native`, memory-file player, no Python per cycle; the fast twin
with the behavioural MAC once the equivalence proof holds) when that package is present,
else ``cocotb`` (:func:`sim.drivers.split.run_programs`), where ``model_kind="twin"``
also runs the behavioural MAC in the same array after the same proof
(:func:`sim.native.twin.prove_twin`; same cycles).
"""
import dataclasses
import time
from dataclasses import dataclass

import numpy as np

from hdl.split import SplitConfig
from sim.batch import SimBatch, run_batch, simulate_many
from sim.models.program import SplitJob
from sim.models.workload import ModelShape, Phase, layer_groups
from sim.studies.workload import schedule_stage, whole_cycles

__all__ = ["rtl_gemms", "run_rtl_shapes", "run_rtl_models", "prepare_rtl_shapes",
           "check_rtl_shapes", "RtlShapes", "native_available", "RTL_TOKENS",
           "RTL_CONTEXT", "RTL_MAX_CYCLES", "PATHS"]

RTL_TOKENS = 16
RTL_CONTEXT = 256
#: Default cycle budget of one GEMM on the whole array (see rtl_gemms): None, every GEMM
#: at full size (the native path streams a program's schedule, one job at a time; the
#: full Mixtral-8x7B set is 6.0M cycles whole and 1.5M split, 22 minutes at 64x64).
RTL_MAX_CYCLES = None
PATHS = ("auto", "native", "cocotb")


def native_available():
    """True when the native simulation path (:mod:`sim.native.run`) is installed."""
    try:
        import sim.native.run  # noqa: F401
    except ImportError:
        return False
    return True


def rtl_gemms(model, *, tokens=RTL_TOKENS, context=RTL_CONTEXT, config=None,
              max_cycles=RTL_MAX_CYCLES):
    """Per phase (a decode GEMV at ``context`` keys, a prefill of ``tokens`` tokens), one
    instance each of: the layer's smallest dense weight projection at full size (the
    fewest MACs: usually the K/V projection), for a mixture of experts its router (full
    size) and one expert's first MLP GEMM with its share of the tokens, and per head the
    ``scores`` and ``values`` GEMMs. With ``config`` (a SplitConfig) and ``max_cycles``
    (None: no limit), a GEMM whose whole-array cycles exceed ``max_cycles`` keeps its
    first N columns, N the largest multiple of the array's columns that fits (its
    ``note`` says so; the columns of a weight matrix are independent tiles of the same
    schedule)."""
    if not isinstance(model, ModelShape):
        raise TypeError(f"expected a ModelShape, got {type(model).__name__}")
    out = []
    for phase in (Phase("decode", batch=1, context=context),
                  Phase("prefill", batch=1, tokens=tokens)):
        gemms = []                    # every kind of layer's GEMMs, each shape once
        for group in layer_groups(model, phase):
            gemms += [g for g in group.gemms if (g.name, g.shape) not in
                      {(x.name, x.shape) for x in gemms}]
        dense = [g for g in gemms if g.stage not in ("scores", "values", "router")
                 and not g.name.startswith("expert_") and g.count == 1]
        picked = [min(dense, key=lambda g: (g.macs, gemms.index(g)))]
        picked += [g for g in gemms if g.stage == "router"]
        picked += [g for g in gemms if g.name.startswith("expert_")][:1]
        picked += [g for g in gemms if g.stage in ("scores", "values")]
        for g in picked:
            what = ("one expert" if g.name.startswith("expert_") else
                    "head" if g.count > 1 else "full size")
            g = dataclasses.replace(g, name=f"{phase.kind} {g.name} ({what})", count=1,
                                    note="")
            out.append(_fit(g, config, max_cycles))
    return out


def _fit(g, config, max_cycles):
    """``g``, or its first columns when its whole-array cycles exceed ``max_cycles``."""
    if config is None or max_cycles is None or whole_cycles([g], config) <= max_cycles:
        return g
    n = g.N - g.N % config.cols or g.N
    while n > config.cols and whole_cycles([dataclasses.replace(g, N=n)], config) > max_cycles:
        n -= config.cols
    return dataclasses.replace(g, N=n, note=f"columns 0..{n - 1} of {g.N}")


def _operands(gemms, rng, signed):
    lo, hi = (-8, 8) if signed else (0, 16)
    return [(rng.integers(lo, hi, (g.M, g.K)), rng.integers(lo, hi, (g.K, g.N)))
            for g in gemms]


def _check_program(label, res, model_total):
    if res.cycles != res.model_cycles or res.model_cycles != model_total:
        raise AssertionError(f"{label}: RTL {res.cycles} cycles, model {res.model_cycles}"
                             f" (planned {model_total})")
    for j in res.jobs:
        if j.cycles != j.model_cycles:
            raise AssertionError(f"{label}: job {j.shape} on sub-array {j.subarray.index}:"
                                 f" RTL {j.cycles} cycles, model {j.model_cycles}")


@dataclass
class RtlShapes:
    """One model's RTL run, prepared on the client: the :class:`SimBatch` to play (the
    whole and the split program) and what its results must be."""
    model: ModelShape
    config: SplitConfig
    path: str
    model_kind: str
    gemms: list
    want: list
    plan: object
    batch: SimBatch
    proof: object = None      # the twin's proof when the batch itself does not carry one


def prepare_rtl_shapes(model, config, *, simulator, path="auto", seed=0, tokens=RTL_TOKENS,
                       context=RTL_CONTEXT, model_kind="twin", max_cycles=RTL_MAX_CYCLES):
    """The :class:`RtlShapes` of :func:`rtl_gemms` with random operands (see the module
    docstring)."""
    if not isinstance(config, SplitConfig):
        raise TypeError(f"expected a SplitConfig, got {type(config).__name__}")
    if path not in PATHS:
        raise ValueError(f"unknown path {path!r}; allowed: {', '.join(PATHS)}")
    if path == "auto":
        path = "native" if native_available() else "cocotb"
    run_config, proof = config, None
    if path == "cocotb" and model_kind == "twin":
        from sim.native.twin import prove_twin, twin_mac
        proof = prove_twin(config.mac)              # TwinNotProven: use the gate level
        run_config = dataclasses.replace(config, mac=twin_mac(config.mac))
    gemms = rtl_gemms(model, tokens=tokens, context=context, config=config,
                      max_cycles=max_cycles)
    ops = _operands(gemms, np.random.default_rng(seed), config.mac.signed)
    want = [A.astype(np.int64) @ B.astype(np.int64) for A, B in ops]
    whole = [("whole", [[SplitJob(A, B) for A, B in ops]])]
    plan = schedule_stage(gemms, config)
    split = [(mode, [[SplitJob(ops[g][0][m0:m0 + m], ops[g][1][:, n0:n0 + n])
                      for (g, _, m0, n0), (m, _, n) in zip(ts, shapes)]
                     for ts, shapes in zip(tags, work)])
             for (mode, work), tags in zip(plan.program, plan.tags)]
    batch = SimBatch([whole, split], run_config, simulator, label=model.name, path=path,
                     model=model_kind if path == "native" else "gate")
    return RtlShapes(model, config, path, model_kind, gemms, want, plan, batch, proof)


def check_rtl_shapes(prep, results, seconds=0.0):
    """Check the results of ``prep.batch`` (raises AssertionError on any difference);
    returns the JSON-ready row: per GEMM its shape, RTL and model cycles on the whole
    array, and the totals of both programs."""
    config, gemms, want, plan = prep.config, prep.gemms, prep.want, prep.plan
    res_whole, res_split = results
    _check_program("whole", res_whole, whole_cycles(gemms, config))
    _check_program("split", res_split, plan.cycles)
    rows = []
    for g, w, j in zip(gemms, want, res_whole.jobs):
        if not np.array_equal(j.C, w):
            raise AssertionError(f"whole: {g.name} {g.shape}: C differs from numpy")
        rows.append({"gemm": g.name, "M": g.M, "K": g.K, "N": g.N, "macs": g.macs,
                     "note": g.note,
                     "whole_rtl_cycles": j.cycles, "whole_model_cycles": j.model_cycles})
    got = [np.full(w.shape, np.iinfo(np.int64).min) for w in want]
    flat = [t for ts in plan.tags for sub in ts for t in sub]
    for (g, _, m0, n0), j in zip(flat, res_split.jobs):
        m, _, n = j.shape
        got[g][m0:m0 + m, n0:n0 + n] = j.C
    for g, c, w in zip(gemms, got, want):
        if not np.array_equal(c, w):
            raise AssertionError(f"split: {g.name} {g.shape}: C differs from numpy")
    macs = sum(g.macs for g in gemms)
    pes = config.rows * config.cols
    return {"model": prep.model.name, "path": prep.path,
            "mac": config.mac.slug, "simulator": prep.batch.simulator,
            "model_kind": prep.model_kind,
            "proof": _cite(res_whole.proof or prep.proof),
            "gemms": rows, "macs": macs,
            "whole": {"rtl_cycles": res_whole.cycles, "model_cycles": res_whole.model_cycles,
                      "utilization": round(macs / (pes * res_whole.cycles), 5)},
            "split": {"rtl_cycles": res_split.cycles, "model_cycles": res_split.model_cycles,
                      "jobs": len(res_split.jobs), "plan": plan.how,
                      "utilization": round(macs / (pes * res_split.cycles), 5)},
            "speedup": round(res_whole.cycles / res_split.cycles, 3),
            "seconds": round(seconds, 1), "c_equal": True, "cycles_equal": True}


def run_rtl_models(models, config, *, executor=None, progress=None, **options):
    """:func:`prepare_rtl_shapes` for every model (``options`` as there), their simulator
    runs sent to ``executor`` together (:func:`sim.batch.simulate_many`; default
    a local pool), each checked here: the rows of :func:`check_rtl_shapes`, in order."""
    preps = [prepare_rtl_shapes(m, config, **options) for m in models]
    where = []
    results = simulate_many([p.batch for p in preps], executor=executor, progress=progress,
                            where=where)
    return [check_rtl_shapes(p, r, seconds) for p, r, (_, seconds)
            in zip(preps, results, where)]


def run_rtl_shapes(model, config, **options):
    """One model's :func:`run_rtl_models` row, run here."""
    prep = prepare_rtl_shapes(model, config, **options)
    t = time.monotonic()
    results = run_batch(prep.batch)
    return check_rtl_shapes(prep, results, time.monotonic() - t)


def _cite(proof):
    """The twin's proof as one line (empty without one)."""
    return proof.cite() if proof is not None else ""
