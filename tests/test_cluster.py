"""The execution layer on a real Dask cluster: a ``dask scheduler`` and ``dask worker``
processes on 127.0.0.1 (random free ports), started and stopped here."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sim.execute import DaskExecutor, ExecutorError, LocalExecutor, run_jobs
from sim.studies.cluster_bench import dask_cluster, free_port

BIN = Path(sys.executable).parent
# Four MAC syntheses (a few seconds each, no Liberty): long enough to kill a worker
# in the middle of one.
CONFIG = {"sweep": {"liberty": False},
          "mac": {"multiplier": ["dadda"], "adder": ["ripple", "kogge-stone"],
                  "pipeline": [0, 1]}}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A scheduler and two workers shared by the tests that kill nothing."""
    with dask_cluster(tmp_path_factory.mktemp("cluster")) as (address, _):
        yield address


@pytest.fixture(autouse=True)
def no_scheduler_env(monkeypatch):
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    """The reference: CONFIG through the local pool, a cold cache."""
    tmp = tmp_path_factory.mktemp("local")
    (tmp / "c.json").write_text(json.dumps(CONFIG))
    rc = subprocess.run([BIN / "systolic", "sweep", "--config", tmp / "c.json", "-o",
                         tmp / "out", "--cache", tmp / "cache", "--jobs", "2"],
                        env={k: v for k, v in os.environ.items()
                             if k != "DASK_SCHEDULER_ADDRESS"}).returncode
    assert rc == 0
    return tmp


_WITH_SIGINT = ("import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
                "os.execv(sys.argv[1], sys.argv[1:])")


def _sweep_cli(local, tmp, address, name):
    """The same command as the reference (the config path is part of the outputs)."""
    return [BIN / "systolic", "sweep", "--config", local / "c.json", "-o", tmp / name,
            "--cache", tmp / f"cache_{name}", "--scheduler", address]


def _check_same(out, ref):
    for name in ("sweep.json", "sweep_mac.csv", "sweep.md", "sweep_pipeline.png"):
        assert (out / name).read_bytes() == (ref / "out" / name).read_bytes(), name


def test_cluster_sweep_matches_local_and_says_where(tmp_path, local_run, cluster):
    cmd = _sweep_cli(local_run, tmp_path, cluster, "out")
    assert subprocess.run(cmd).returncode == 0
    _check_same(tmp_path / "out", local_run)
    run = json.loads((tmp_path / "out" / "sweep_run.json").read_text())
    assert run["executor"] == f"dask {cluster}" and run["ran"] == 4
    assert all(w["where"].startswith("tcp://127.0.0.1:") for w in run["where"])
    # a rerun sends nothing: every job comes from the client's cache
    assert subprocess.run(cmd).returncode == 0
    run = json.loads((tmp_path / "out" / "sweep_run.json").read_text())
    assert run["cached"] == 4 and {w["where"] for w in run["where"]} == {"cache"}
    _check_same(tmp_path / "out", local_run)


def test_killed_worker_every_result_once(tmp_path, local_run):
    # no nanny: a killed worker stays dead instead of being restarted
    with dask_cluster(tmp_path, nanny=False) as (address, workers):
        cmd = _sweep_cli(local_run, tmp_path, address, "out")
        sweep = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
        try:
            store = tmp_path / "cache_out" / "sweep"
            deadline = time.monotonic() + 120
            while not list(store.glob("[0-9a-f]*.json")):     # the first result is back:
                assert sweep.poll() is None and time.monotonic() < deadline
                time.sleep(0.05)
            workers[0].send_signal(signal.SIGKILL)              # both workers were busy
            _, err = sweep.communicate(timeout=180)
        finally:
            if sweep.poll() is None:
                sweep.kill()
                sweep.wait()
        assert sweep.returncode == 0, err
        assert "Remove worker" in (tmp_path / "scheduler.log").read_text()
    run = json.loads((tmp_path / "out" / "sweep_run.json").read_text())
    designs = [w["design"] for w in run["where"]]
    assert len(designs) == 4 and len(set(designs)) == 4
    assert len(list(store.glob("[0-9a-f]*.json"))) == 4
    _check_same(tmp_path / "out", local_run)


def test_unreachable_scheduler_one_line_exit_2(tmp_path, capsys):
    """Timed in-process (interpreter start-up on a loaded machine is not the command's)."""
    from sim.cli import main
    port = free_port()                                      # nothing listens there
    (tmp_path / "c.json").write_text(json.dumps(CONFIG))
    start = time.monotonic()
    rc = main(["sweep", "--config", str(tmp_path / "c.json"), "-o", str(tmp_path / "out"),
               "--scheduler", f"127.0.0.1:{port}"])
    assert time.monotonic() - start < 10
    out, err = capsys.readouterr()
    assert rc == 2 and out == "" and err.count("\n") == 1
    assert err.startswith(f"systolic: error: --scheduler: no Dask scheduler answers at "
                          f"tcp://127.0.0.1:{port}")
    assert not (tmp_path / "out").exists()
    with pytest.raises(ExecutorError, match="not a scheduler address"):
        DaskExecutor("tcp://127.0.0.1:notaport")


class DictCache:
    def __init__(self):
        self.data, self.stored = {}, []

    def lookup(self, payload):
        return self.data.get(payload)

    def store(self, payload, value):
        self.stored.append(payload)
        self.data[payload] = value


@pytest.mark.parametrize("where", ["local", "dask"])
def test_failing_job_reported_others_finish(request, where):
    """A job raising on its own: reported (one line), stored nowhere, the rest done;
    cached payloads are never sent."""
    cache = DictCache()
    cache.data[5] = 25
    seen = []

    def square_or_fail(x):                # a closure: Dask ships it by value
        if x == 3:
            raise ValueError("three is\nnot allowed")
        return x * x

    if where == "local":
        report = run_jobs(range(6), square_or_fail,
                          executor=LocalExecutor(workers=2, threads=True),
                          cache=cache, progress=lambda s: seen.append(s.line()))
    else:
        with DaskExecutor(request.getfixturevalue("cluster")) as ex:
            report = run_jobs(range(6), square_or_fail, executor=ex, cache=cache,
                              progress=lambda s: seen.append(s.line()))
    assert [o.value for o in report.outcomes] == [0, 1, 4, None, 16, 25]
    assert [o.error for o in report.failures] == ["ValueError: three is not allowed"]
    assert sorted(cache.stored) == [0, 1, 2, 4] and report.outcomes[5].where == "cache"
    assert seen[0].startswith("1/6 done (1 cached)")
    assert seen[-1] == "5/6 done (1 cached), 0 running, 0 queued, 1 failed"


class CountingExecutor:
    """Passes jobs on to ``inner``, counting what it is sent."""

    def __init__(self, inner):
        self.inner, self.name, self.sent = inner, inner.name, 0

    def slots(self):
        return self.inner.slots()

    def run(self, fn, payloads):
        payloads = list(payloads)
        self.sent += len(payloads)
        return self.inner.run(fn, payloads)


def test_synthesize_many_on_cluster(tmp_path, cluster):
    """Cached syntheses are read on the client and never sent; the others come back,
    equal to a local run, and are cached on the client."""
    from hdl.flows.synth import synthesize
    from sim.flow_calls import synthesize_jobs
    from hdl.mac import MacConfig
    a, b = (MacConfig(acc_width=8, signed=False).verilog(),
            MacConfig(acc_width=8, signed=False, adder="kogge-stone").verilog())
    local = synthesize(a, top="mac", ice40=False, cache=tmp_path)
    with DaskExecutor(cluster) as dask:
        ex = CountingExecutor(dask)
        got = synthesize_jobs([(a, "mac"), (b, "mac")], ice40=False, cache=tmp_path,
                              executor=ex)
    assert ex.sent == 1 and got[0].cached and not got[1].cached
    assert got[0].transistors == local.transistors
    again = synthesize(b, top="mac", ice40=False, cache=tmp_path)     # stored by the client
    assert again.cached and again.to_json() == got[1].to_json()


GEMM = {"gemm": {"size": 8, "tile": 4, "batch": 2, "shapes": [[4, 4, 4], [16, 4, 4]]}}


@pytest.fixture
def one_gemm_fails(monkeypatch):
    """The 16x4x4 cycle-model job raises (local pools fork, so their processes see it)."""
    from sim.studies import sweep_jobs
    real = sweep_jobs._RUNNERS["gemm"]

    def flaky(job, liberty, cache):
        if job["shape"] == [16, 4, 4]:
            raise RuntimeError("the tool\ncrashed")
        return real(job, liberty, cache)
    monkeypatch.setitem(sweep_jobs._RUNNERS, "gemm", flaky)


def test_sweep_job_failure_reported_rest_cached(tmp_path, one_gemm_fails):
    from sim.studies.sweep import SweepJobError, run_sweep
    from sim.studies.sweep_config import parse_config
    with pytest.raises(SweepJobError) as e:
        run_sweep(parse_config(GEMM), cache=tmp_path, progress=False,
                  executor=LocalExecutor(workers=2, threads=True))
    assert [(j["shape"], err) for j, _, err in e.value.failures] == [
        ([16, 4, 4], "RuntimeError: the tool crashed")]
    assert len(list((tmp_path / "sweep").glob("*.json"))) == 1      # the good job only


def test_sweep_job_failure_cli_writes_nothing(tmp_path, one_gemm_fails, capsys):
    from sim.cli import main
    (tmp_path / "c.json").write_text(json.dumps(GEMM))
    out = tmp_path / "out"
    assert main(["sweep", "--config", str(tmp_path / "c.json"), "-o", str(out),
                 "--cache", str(tmp_path / "cache"), "--jobs", "2"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith('systolic: error: sweep job {"study": "gemm"')
    assert err[0].endswith("(local): RuntimeError: the tool crashed")
    assert err[1].startswith("systolic: error: 1 sweep job(s) failed; the others are cached")
    assert not out.exists()


def test_ctrl_c_cancels_cluster_jobs_keeps_results(tmp_path, local_run, cluster):
    from distributed import Client
    cmd = _sweep_cli(local_run, tmp_path, cluster, "out")
    # Ctrl-C as in a terminal: SIGINT back to its default action before the command
    # starts (a suite run as a background job inherits SIGINT ignored, and so would the
    # command, which then rightly ignores the signal)
    sweep = subprocess.Popen([sys.executable, "-c", _WITH_SIGINT, *map(str, cmd)],
                             stderr=subprocess.PIPE, text=True)
    try:
        store = tmp_path / "cache_out" / "sweep"
        deadline = time.monotonic() + 120
        while not list(store.glob("[0-9a-f]*.json")):
            assert sweep.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        sweep.send_signal(signal.SIGINT)
        _, err = sweep.communicate(timeout=60)
    finally:
        if sweep.poll() is None:
            sweep.kill()
            sweep.wait()
    assert sweep.returncode == 130 and err.strip().endswith("systolic: interrupted")
    kept = list(store.glob("[0-9a-f]*.json"))
    assert 1 <= len(kept) < 4 and all(json.loads(p.read_text())["result"] for p in kept)
    assert not (tmp_path / "out").exists()
    with Client(cluster, timeout="5s", set_as_default=False) as c:
        assert not any(c.processing().values())        # nothing left running there


def test_flow_calls_on_cluster_cache_on_client(tmp_path, cluster):
    """:func:`run_calls` (the report's tables): a cached call is answered on the client
    and never sent; the others run on the workers, and the cache entries they make --
    a failure's too -- come back and are written by the client alone."""
    from hdl.cache import Cache, resolve_cache
    from hdl.flows.synth import synthesize
    from hdl.mac import MacConfig
    from sim.flow_calls import Call, run_calls

    def does_not_fit(verilog, *, cache):      # a closure: Dask ships it by value
        store = resolve_cache(cache)
        if store.load_json("fit", "k") is None:
            store.store_json("fit", "k", {"fit_error": f"{len(verilog)} bits do not fit"})
        raise ValueError("does not fit")

    a, b = (MacConfig(acc_width=8, signed=False).verilog(),
            MacConfig(acc_width=8, signed=False, adder="kogge-stone").verilog())
    local = synthesize(a, top="mac", ice40=False, cache=tmp_path)
    calls = [Call(synthesize, (a,), {"top": "mac", "ice40": False}),
             Call(synthesize, (b,), {"top": "mac", "ice40": False}), Call(does_not_fit, (a,))]
    seen = []
    with DaskExecutor(cluster) as dask:
        ex = CountingExecutor(dask)
        rep = run_calls(calls, executor=ex, cache=Cache(tmp_path),
                        progress=lambda st: seen.append(st.line()))
    assert ex.sent == 2 and [o.where == "cache" for o in rep.outcomes] == [True, False, False]
    assert all(o.where.startswith("tcp://127.0.0.1:") for o in rep.outcomes[1:])
    assert rep.outcomes[0].value.to_json() == local.to_json()
    assert rep.outcomes[2].error == "ValueError: does not fit" and len(rep.failures) == 1
    assert seen[0] == "1/3 done (1 cached), 2 running, 0 queued, 0 failed"
    assert seen[-1] == "2/3 done (1 cached), 0 running, 0 queued, 1 failed"
    again = synthesize(b, top="mac", ice40=False, cache=tmp_path)     # stored by the client
    assert again.cached and again.to_json() == rep.outcomes[1].value.to_json()
    assert Cache(tmp_path).load_json("fit", "k") == {"fit_error": f"{len(a)} bits do not fit"}
    # a second run sends nothing; the stored failure is answered from the cache
    ex = CountingExecutor(LocalExecutor(workers=1))
    rep = run_calls(calls, executor=ex, cache=Cache(tmp_path))
    assert ex.sent == 0 and rep.outcomes[2].error == "ValueError: does not fit"


def test_rtl_simulations_on_cluster(tmp_path, cluster):
    """The benches' RTL runs (:func:`simulate_many`): GEMMs on an array (cocotb and
    native paths) and a split program, built and played on the workers, give what the
    same runs give here; a run that fails is named after the others finished."""
    import numpy as np
    from hdl.array import ArrayConfig
    from hdl.mac import MacConfig
    from hdl.split import SplitConfig
    from sim.batch import SimBatch, simulate_many
    from sim.drivers.gemm import random_operands, run_gemms
    from sim.models.program import SplitJob
    from sim.runner import SimulationError, available_simulators
    if "icarus" not in available_simulators():
        pytest.skip("needs Icarus")
    mac, rng = MacConfig(), np.random.default_rng(13)
    gemms = [random_operands(rng, *shape, mac) for shape in ((3, 5, 2), (4, 2, 6))]
    jobs = [SplitJob(*random_operands(rng, 2, 3, 2, mac)) for _ in range(4)]
    array = ArrayConfig(2, 2, "os", mac)
    split = SplitConfig(4, 4, 2, mac)
    batches = [SimBatch(gemms, array, "icarus", tmp_path / "a", label="gemms"),
               SimBatch([[("quad", jobs)]], split, "icarus", tmp_path / "s", label="split"),
               SimBatch(gemms, array, "icarus", tmp_path / "n", label="native", path="native")]
    with DaskExecutor(cluster) as dask:
        got_gemms, (program,), native = simulate_many(batches, executor=dask)
        with pytest.raises(SimulationError, match=r"nosuchsim run bad of .* \(tcp://"):
            simulate_many([batches[0], SimBatch(gemms, array, "nosuchsim", label="bad")],
                          executor=dask)
    here = run_gemms(gemms, array, simulator="icarus", build_root=tmp_path / "here")
    for (A, B), r, n, h in zip(gemms, got_gemms, native, here):
        assert np.array_equal(r.C, A @ B) and np.array_equal(n.C, r.C)
        assert r.cycles == n.cycles == h.cycles == r.model_cycles
    for job, r in zip(jobs, program.jobs):
        assert np.array_equal(r.C, job.A @ job.B) and r.cycles == r.model_cycles
    assert program.cycles == program.model_cycles
    assert not any((tmp_path / d).exists() for d in "asn")   # built in the workers' space


def _listener(mode):
    """A TCP listener on 127.0.0.1 that accepts and then stays ``silent`` or sends
    ``garbage`` (an HTTP answer); stopped by the test that starts it."""
    import socket
    import threading
    server = socket.create_server(("127.0.0.1", 0))
    accepted = []

    def serve():
        while True:
            try:
                conn, _ = server.accept()
            except OSError:                        # closed by the test
                return
            accepted.append(conn)
            if mode == "garbage":
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n" * 20)

    threading.Thread(target=serve, daemon=True).start()
    return server, accepted


@pytest.mark.parametrize("mode", ["silent", "garbage"])
@pytest.mark.parametrize("command", ["sweep", "report", "bench", "env"])
def test_listener_that_is_no_scheduler_one_line_exit_2(tmp_path, capsys, monkeypatch, mode,
                                                      command):
    """Something accepts the connection but never speaks Dask (the handshake has a
    deadline, not only the TCP connect): every command that takes --scheduler (or
    $DASK_SCHEDULER_ADDRESS) exits 2 with one line within 10 s and writes nothing."""
    from sim.cli import main
    server, accepted = _listener(mode)
    address = f"127.0.0.1:{server.getsockname()[1]}"
    (tmp_path / "c.json").write_text(json.dumps(CONFIG))
    out = tmp_path / "out"
    argv = {"sweep": ["sweep", "--config", str(tmp_path / "c.json"), "-o", str(out)],
            "report": ["report", "-o", str(out), "--only", "tables"],
            "bench": ["bench", "--only", "mac"],
            "env": ["sweep", "--config", str(tmp_path / "c.json"), "-o", str(out)]}[command]
    if command == "env":
        monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", address)
    else:
        argv += ["--scheduler", address]
    bench = Path(__file__).resolve().parent.parent / "build" / "bench"
    before = sorted(bench.glob("mac.*")) and [p.stat().st_mtime for p in bench.glob("mac.*")]
    start = time.monotonic()
    try:
        rc = main(argv)
    finally:
        server.close()
        for conn in accepted:
            conn.close()
    assert time.monotonic() - start < 10
    out_text, err = capsys.readouterr()
    assert rc == 2 and out_text == "" and err.count("\n") == 1, err
    assert err.startswith(f"systolic: error: --scheduler: tcp://{address} ")
    assert ("sends no Dask handshake" if mode == "silent" else "not as a Dask scheduler") \
        in err
    assert accepted, "the command never reached the listener"
    assert not out.exists()
    assert (sorted(bench.glob("mac.*")) and [p.stat().st_mtime
                                             for p in bench.glob("mac.*")]) == before


def _double(x):
    return {"value": 2 * x, "error": "odd input" if x % 2 else None}


def test_run_jobs_cache_protocol_failures():
    """A stored failure is answered from the cache (never sent); a job whose value
    reports its own failure becomes a failed outcome after its store."""
    from sim.execute import CachedFailure

    class Cache:
        stored = []

        def lookup(self, x):
            if x == 0:
                raise CachedFailure("stored: did not fit")
            return {10: 20}.get(x)

        def store(self, x, got):
            self.stored.append(x)
            return got["value"], got["error"]

    sent = []
    ex = LocalExecutor(workers=1, threads=True)
    real = ex.run

    def counting(fn, payloads):
        sent.extend(payloads)
        return real(fn, payloads)
    ex.run = counting
    report = run_jobs([0, 10, 2, 3], _double, executor=ex, cache=Cache())
    assert sent == [2, 3] and Cache.stored == [2, 3]
    got = [(o.value, o.error, o.where) for o in report.outcomes]
    assert got[0] == (None, "stored: did not fit", "cache") and got[1] == (20, None, "cache")
    assert got[2][:2] == (4, None) and got[3][:2] == (6, "odd input")
    assert [o.index for o in report.failures] == [0, 3] and report.cached == 2
