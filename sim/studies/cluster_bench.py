"""``systolic cluster-bench`` (``make cluster-bench``): the sweep on a Dask
cluster of real processes on this machine against the local process pool.

Starts a ``dask scheduler`` and N single-thread ``dask worker`` processes on 127.0.0.1
(free ports; all stopped afterwards), and runs the same sweep of :data:`CONFIG` (eight
MAC syntheses, no Liberty) each time with an empty cache (a fresh ``--cache``
directory: nothing cached on the client, nor in the workers' tool caches):

* the local pool of two processes and a 2-worker cluster, alternately ``--repeat``
  times (best of each): same ``sweep.json``, and the cluster's overhead in % of the
  local wall time (target <= 10 %);
* 1, 2 and 4 workers: wall time and speed-up over one worker.

Cluster start-up is timed apart (a cluster is started once and serves many sweeps),
including a few millisecond jobs (:data:`WARMUP`) that take each fresh worker through its
first job.
Writes ``build/bench/cluster.json`` and ``cluster.md``.
"""
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from hdl.emit import write_atomic
from sim.execute import SCHEDULER_ENV, DaskExecutor, LocalExecutor
from sim.studies.tables import markdown_table, write_json

__all__ = ["CONFIG", "dask_cluster", "free_port", "run_cluster_bench"]

ROOT = Path(__file__).resolve().parents[2]
#: Eight MAC syntheses (four adders x two pipeline depths), no standard cells.
CONFIG = {"sweep": {"liberty": False},
          "mac": {"multiplier": ["dadda"],
                  "adder": ["ripple", "kogge-stone", "brent-kung", "sklansky"],
                  "pipeline": [0, 1]}}
#: Cycle-model jobs (milliseconds each) run once on a new cluster before timing: the
#: first job a fresh worker runs costs about a second more (counted as start-up).
WARMUP = {"gemm": {"size": 8, "tile": 4, "batch": 2, "shapes": [[4, 4, 4], [8, 4, 4]]}}
COMMAND = "make cluster-bench  (systolic cluster-bench)"


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on (at the time of asking)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(proc):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def dask_cluster(workdir, workers=2, *, nanny=False, timeout=90):
    """A ``dask scheduler`` and ``workers`` single-thread ``dask worker`` processes, all
    bound to 127.0.0.1 on free ports, logs and scratch space in ``workdir``, the sweep
    and the generators imported at worker start (``--preload sim.worker``), lean: no
    nanny process (``nanny``: a nanny restarts a dead worker) and no statistical
    profiler (together a few % of a core per worker, even idle); yields
    ``(address, [worker processes])`` once every worker has registered, and stops every
    process it started on the way out (also on failure)."""
    from distributed import Client
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    dask = Path(sys.executable).parent / "dask"
    env = {k: v for k, v in os.environ.items() if k != SCHEDULER_ENV}
    env["DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED"] = "False"
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    procs = []

    def start(args, log):
        with open(workdir / log, "w") as f:
            procs.append(subprocess.Popen([dask, *args], cwd=workdir, env=env,
                                          stdout=subprocess.DEVNULL, stderr=f))
    try:
        start(["scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
              "scheduler.log")
        for i in range(workers):
            start(["worker", address, "--host", "127.0.0.1", "--nthreads", "1",
                   "--no-dashboard", "--local-directory", str(workdir / f"worker{i}"),
                   "--preload", "sim.worker",
                   *([] if nanny else ["--no-nanny"])], f"worker{i}.log")
        deadline = time.monotonic() + timeout
        while True:
            try:
                with Client(address, timeout="5s", set_as_default=False) as c:
                    c.wait_for_workers(workers, timeout=max(1, deadline - time.monotonic()))
                break
            except OSError:
                if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                    raise
                time.sleep(0.5)
        yield address, procs[1:]
    finally:
        for p in reversed(procs):
            _stop(p)


def _cpu(procs):
    """CPU seconds (user + system, waited-for children included) of this process and of
    ``procs`` with all their descendants."""
    import psutil
    total = sum(os.times()[:4])
    for p in procs:
        try:
            tree = [psutil.Process(p.pid)]
            tree += tree[0].children(recursive=True)
        except psutil.NoSuchProcess:
            continue
        for q in tree:
            try:
                total += sum(q.cpu_times()[:4])
            except psutil.NoSuchProcess:
                pass
    return total


def _sweep(executor, workdir, name, procs=(), config=None):
    """One cold sweep of ``config`` (default :data:`CONFIG`) on ``executor``: a dict of
    its wall and CPU seconds (this process and ``procs``), the load average,
    ``sweep.json`` and where each job ran."""
    from sim.studies.sweep import run_sweep, write_sweep
    from sim.studies.sweep_config import parse_config
    cpu, t = _cpu(procs), time.monotonic()
    res = run_sweep(parse_config(config or CONFIG), cache=workdir / f"cache_{name}",
                    executor=executor, progress=False)
    run = {"seconds": round(time.monotonic() - t, 2), "cpu_seconds":
           round(_cpu(procs) - cpu, 1), "load": round(os.getloadavg()[0], 1)}
    write_sweep(res, workdir / name, command="cluster bench")
    return run, (workdir / name / "sweep.json").read_text(), res.where


def run_cluster_bench(outdir, *, repeat=2, workers=(1, 2, 4), log=print):
    from hdl.flows.synth import yosys_version
    yosys_version()                         # the WebAssembly compiled once, beforehand
    outdir = Path(outdir)
    runs, same = {"local": [], "dask2": []}, True
    with tempfile.TemporaryDirectory(prefix="cluster_bench_") as tmp:
        tmp = Path(tmp)
        t = time.monotonic()
        with dask_cluster(tmp / "cluster2", 2) as (address, procs):
            with DaskExecutor(address) as dask:
                _sweep(dask, tmp, "warmup2", config=WARMUP)
                start2 = round(time.monotonic() - t, 1)
                for k in range(repeat):
                    r, local_json, _ = _sweep(LocalExecutor(workers=2), tmp, f"local{k}")
                    runs["local"].append(r)
                    log(f"local pool, 2 processes: {r}")
                    r, dask_json, where = _sweep(dask, tmp, f"dask2_{k}", procs)
                    runs["dask2"].append(r)
                    same &= dask_json == local_json
                    log(f"dask, 2 workers: {r} ({len({w['where'] for w in where})} "
                        f"workers used); same sweep.json as local: {dask_json == local_json}")
        scaling = {}
        for n in workers:
            t = time.monotonic()
            with dask_cluster(tmp / f"cluster{n}", n) as (address, procs):
                with DaskExecutor(address) as dask:
                    _sweep(dask, tmp, f"warmup{n}", config=WARMUP)
                    started = round(time.monotonic() - t, 1)
                    r, _, _ = _sweep(dask, tmp, f"scale{n}", procs)
            scaling[n] = {**r, "cluster_start_seconds": started}
            log(f"dask, {n} worker(s): {r} (cluster start {started:.1f} s)")

    def med(key, side):
        return statistics.median(r[key] for r in runs[side])
    local, dask2 = med("seconds", "local"), med("seconds", "dask2")
    base = scaling[min(scaling)]["seconds"]
    for n, r in scaling.items():
        r["speedup"] = round(base / r["seconds"], 2)
    data = {
        "command": COMMAND, "cores": os.cpu_count(),
        "host": {"python": sys.version.split()[0], "machine": platform.machine()},
        "config": CONFIG, "jobs": 8, "repeat": repeat,
        "local_pool": runs["local"], "dask_2_workers": runs["dask2"],
        "cluster_2_start_seconds": start2,
        "local_seconds_median": local, "dask_seconds_median": dask2,
        "overhead_pct": round(100.0 * (dask2 - local) / local, 1),
        "cpu_overhead_pct": round(100.0 * (med("cpu_seconds", "dask2")
                                           - med("cpu_seconds", "local"))
                                  / med("cpu_seconds", "local"), 1),
        "target_overhead_pct": 10.0, "same_results": same,
        "scaling": {str(n): r for n, r in scaling.items()},
    }
    data["target_met"] = same and data["overhead_pct"] <= 10.0
    outdir.mkdir(parents=True, exist_ok=True)
    write_json(outdir / "cluster.json", data)
    write_atomic(outdir / "cluster.md", _markdown(data))
    return data


def _markdown(d):
    rows = [[f"{n} worker{'s' if n != '1' else ''}", r["seconds"], r["speedup"],
             r["cpu_seconds"], r["load"], r["cluster_start_seconds"]]
            for n, r in d["scaling"].items()]
    pairs = [[k + 1, a["seconds"], b["seconds"], a["cpu_seconds"], b["cpu_seconds"],
              a["load"], b["load"]]
             for k, (a, b) in enumerate(zip(d["local_pool"], d["dask_2_workers"]))]
    return "\n".join([
        "# The sweep on a local Dask cluster", "",
        f"Produced by `{d['command']}` on a {d['cores']}-core machine (Python "
        f"{d['host']['python']}): {d['jobs']} MAC syntheses (`{json.dumps(d['config'])}`), "
        f"each run with an empty cache; scheduler and single-thread workers are real "
        f"`dask scheduler` / `dask worker` processes on 127.0.0.1.", "",
        "## Local pool against a 2-worker cluster", "",
        markdown_table(["run", "local wall s", "dask wall s", "local CPU s", "dask CPU s",
                        "load (local)", "load (dask)"], pairs), "",
        f"Medians of {d['repeat']} alternating runs: local pool of 2 processes "
        f"{d['local_seconds_median']} s, 2-worker cluster {d['dask_seconds_median']} s: "
        f"wall-time overhead **{d['overhead_pct']:+.1f}%** of the local wall time (target "
        f"<= {d['target_overhead_pct']:.0f}%); CPU overhead {d['cpu_overhead_pct']:+.1f}% "
        f"(client, scheduler, workers and Yosys, against client, pool and Yosys); same "
        f"sweep.json: **{d['same_results']}**. Starting that cluster (and a first job "
        f"per worker) took {d['cluster_2_start_seconds']} s, once, not per sweep. Load "
        f"is the 1-minute load average at the end of each run (other work shares the "
        f"machine).", "",
        "## Workers", "",
        markdown_table(["cluster", "sweep wall s", "speed-up over 1 worker", "CPU s",
                        "load", "cluster start s"], rows), "",
        f"This machine has {d['cores']} cores: past {d['cores']} workers the syntheses "
        f"only share them. Workers on other machines add their cores.", ""])
