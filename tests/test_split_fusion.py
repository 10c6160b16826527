"""Precision fusion on the splittable array (hdl.split with ``SplitConfig.fusion``): the
sub-arrays run int4, W4A8 and int8 GEMMs at the same time (the digit tags travel with
each sub-array's A stream), in RTL on Icarus, both dataflows and both boundary styles.

Every C is compared with numpy's int64 ``A @ B``; every job's RTL cycles with the
program model (:mod:`sim.models.program`, whose job cycles are
:func:`sim.models.cycles.model_cycles` with ``digits=``), and every program's RTL cycles
with the model. Bad input is refused with one line (exit 2 on the CLI)."""
import json
import shutil

import numpy as np
import pytest

from hdl.mac import MacConfig
from hdl.split import SplitConfig
from sim.drivers.operands import precision_operands
from sim.drivers.split import run_programs
from sim.models.cycles import model_cycles
from sim.models.program import SplitJob, program_cycles, job_cycles

needs_icarus = pytest.mark.skipif(not shutil.which("iverilog"), reason="needs Icarus")

D = {"int4": 1, "w4a8": 2, "int8": 4}


def _extremes(M, K, N, precision, seed):
    """Operands drawn from the extreme values only (-128, 127, -8, 7, 0, -1)."""
    rng = np.random.default_rng(seed)
    wide = [-128, 127, -8, 7, 0, -1]
    narrow = [-8, 7, 0, -1]
    return (rng.choice(narrow if precision == "int4" else wide, (M, K)),
            rng.choice(wide if precision == "int8" else narrow, (K, N)))


def _job(precision, M, K, N, seed, extreme=False, delay=0):
    A, B = (_extremes if extreme else
            lambda *a: precision_operands(a[4], *a[:4]))(M, K, N, precision, seed)
    return SplitJob(A, B, delay, precision)


def _flat(program):
    out = []
    for _, work in program:
        for w in work:
            if w is not None:
                out += w if isinstance(w, list) else [w]
    return out


def _check(program, result, config):
    jobs = _flat(program)
    assert len(result.jobs) == len(jobs)
    for job, r in zip(jobs, result.jobs):
        want = np.asarray(job.A, np.int64) @ np.asarray(job.B, np.int64)
        assert np.array_equal(r.C, want), (r.mode, r.subarray.index, job.precision)
        assert r.precision == job.precision
        assert r.cycles == r.model_cycles, (r.mode, job.precision, r.cycles,
                                            r.model_cycles)
    assert result.cycles == result.model_cycles == program_cycles(program, config)


def _programs():
    """Two sub-arrays at different precisions at once (v2: int8 | w4a8, random), then a
    whole-array int8 job (its tags cross every tile boundary), then quad with all three
    precisions and extreme operands, one sub-array running two jobs of different
    precisions back to back."""
    return [[
        ("v2", [_job("int8", 6, 9, 5, 1), _job("w4a8", 7, 13, 6, 2)]),
        ("whole", [_job("int8", 9, 11, 10, 3)]),
        ("quad", [[_job("w4a8", 5, 6, 3, 4, extreme=True),
                   _job("int8", 3, 5, 4, 5, extreme=True)],
                  _job("int4", 6, 7, 5, 6, extreme=True),
                  _job("int8", 4, 3, 6, 7, extreme=True, delay=2),
                  # all -128: the largest int8 products; K = 40 needs two passes at W = 20
                  SplitJob(np.full((2, 40), -128), np.full((40, 3), -128), 0, "int8")]),
    ]]


@needs_icarus
@pytest.mark.parametrize("dataflow,style,fold_overlap,clock_gate,pe_gate", [
    ("ws", "mux", False, False, False), ("ws", "ports", False, True, False),
    ("os", "mux", False, False, False), ("os", "ports", True, False, False),
    ("os", "mux", False, True, False), ("ws", "mux", True, False, True)])
def test_subarrays_run_different_precisions_at_once(dataflow, style, fold_overlap,
                                                    clock_gate, pe_gate):
    """(With ``clock_gate`` every tile is gated outside its jobs' windows; with
    ``pe_gate`` every PE gates its own registers, the digit tags in its enable.)"""
    # W = 20: int8 passes of at most 31 MACs (31 * 16384 < 2**19 <= 32 * 16384)
    cfg = SplitConfig(8, 8, 4, MacConfig(acc_width=20), style=style, dataflow=dataflow,
                      fold_overlap=fold_overlap, fusion="int8", clock_gate=clock_gate,
                      pe_gate=pe_gate)
    progs = _programs()
    for prog, res in zip(progs, run_programs(progs, cfg, simulator="icarus")):
        _check(prog, res, cfg)


@needs_icarus
@pytest.mark.parametrize("dataflow", ["ws", "os"])
def test_w4a8_build_and_int4_mode_match_the_plain_split_array(dataflow):
    """A W4A8-only build (tags ua, x16) runs int4 and W4A8 side by side; its int4 jobs
    have the plain split array's results and cycles (every tag 0)."""
    rng = np.random.default_rng(11)
    int4 = [SplitJob(rng.integers(-8, 8, (5, 9)), rng.integers(-8, 8, (9, 4))),
            SplitJob(rng.integers(-8, 8, (3, 4)), rng.integers(-8, 8, (4, 7)))]
    plain = SplitConfig(8, 8, 4, dataflow=dataflow)
    fused = SplitConfig(8, 8, 4, dataflow=dataflow, fusion="w4a8")
    prog = [("h2", int4)]
    (p,) = run_programs([prog], plain, simulator="icarus")
    mixed = [("h2", [int4[0], _job("w4a8", 4, 6, 5, 12, extreme=True)]),
             ("v2", [int4[1], int4[0]])]
    f, m = run_programs([prog, mixed], fused, simulator="icarus")
    _check(prog, p, plain)
    _check(prog, f, fused)
    assert [r.cycles for r in p.jobs] == [r.cycles for r in f.jobs]
    _check(mixed, m, fused)


@needs_icarus
def test_native_path():
    """The native path (a compiled stream player, here on Icarus) plays the same
    programs, tag lanes included, with the gate-level PE."""
    from sim.native.run import run_programs_native
    cfg = SplitConfig(8, 8, 4, MacConfig(acc_width=20), dataflow="ws", fusion="int8")
    progs = _programs()
    for prog, res in zip(progs, run_programs_native(progs, cfg, simulator="icarus")):
        assert res.path == "native" and res.model == "gate"
        _check(prog, res, cfg)


def test_model_counts_digit_steps():
    """A job of precision p on a sub-array: model_cycles with D*K digit steps and the
    precision's pass length; a bare shape (M, K, N, p) gives the same program cycles."""
    for dataflow in ("ws", "os"):
        cfg = SplitConfig(8, 8, 4, MacConfig(acc_width=20), dataflow=dataflow,
                          fusion="int8")
        sub = cfg.subarrays("quad")[1]
        # W = 20: worst products 1024 (W4A8) and 16384 (int8) -> 511 and 31 per pass
        for p, k_chunk in (("int4", cfg.mac.max_safe_k), ("w4a8", 511), ("int8", 31)):
            want = model_cycles(7, 40, 9, 4, 4, dataflow, k_chunk=k_chunk, digits=D[p])
            assert job_cycles(7, 40, 9, sub, cfg, p) == want
        prog = [("quad", [(7, 40, 9, "int8"), (3, 3, 3, "w4a8"), None, (2, 2, 2)])]
        assert program_cycles(prog, cfg) == max(job_cycles(7, 40, 9, sub, cfg, "int8"),
                                                job_cycles(3, 3, 3, sub, cfg, "w4a8"),
                                                job_cycles(2, 2, 2, sub, cfg))


def test_verilog_deterministic_and_tag_lanes():
    for dataflow in ("ws", "os"):
        for style in ("mux", "ports"):
            cfg = SplitConfig(8, 8, 4, dataflow=dataflow, style=style, fusion="int8")
            text = cfg.verilog()
            assert text == cfg.verilog() and "/work" not in text
            ports = cfg.ports()
            for t in ("ua", "ub", "x16"):
                assert ports[f"a_{t}"] == ("in", 8) and ports[f"a_{t}_x"] == ("in", 8)
                assert f".{t}_in({t}_i)" in text and f".{t}_out({t}_q[r*C+c])" in text
            w4a8 = SplitConfig(8, 8, 4, dataflow=dataflow, style=style, fusion="w4a8")
            assert "a_ub" not in w4a8.ports() and "a_x16_x" in w4a8.ports()
            assert cfg.slug != SplitConfig(8, 8, 4, dataflow=dataflow, style=style).slug


def test_bad_input_refused():
    cfg = SplitConfig(8, 8, 4, fusion="w4a8")
    a8 = np.array([[1, -128]])
    with pytest.raises(ValueError, match="built with fusion w4a8"):
        run_programs([[("h2", [SplitJob(a8, np.ones((2, 2), int), 0, "int8")])]], cfg,
                     simulator="icarus")
    with pytest.raises(ValueError, match=r"A\[0,1\] = 128 is out of range"):
        run_programs([[("h2", [SplitJob(np.array([[1, 128]]), np.ones((2, 2), int), 0,
                                        "w4a8")])]], cfg, simulator="icarus")
    small = SplitConfig(4, 4, 2, fusion="int8")        # 2-row WS sub-arrays
    with pytest.raises(ValueError, match="4 rows for"):
        run_programs([[("quad", [SplitJob(a8, np.ones((2, 2), int), 0, "int8")])]],
                     small, simulator="icarus")


def test_cli_bad_input(tmp_path, capsys):
    from sim.cli import main
    np.save(tmp_path / "a.npy", np.array([[200, 1], [3, 4]]))
    np.save(tmp_path / "b.npy", np.array([[1, 2], [3, 4]]))
    jobs = tmp_path / "jobs.json"
    jobs.write_text(json.dumps([{"random": [2, 3, 2], "precision": "int8"}]))
    base = ["gemm", "--split", "quad", "--rows", "8", "--cols", "8", "--tile", "4",
            "--sim", "icarus"]
    cases = [
        (["--jobs", str(jobs), "--fusion", "w4a8"], "build it with fusion int8"),
        (["--a", str(tmp_path / "a.npy"), "--b", str(tmp_path / "b.npy"),
          "--precision", "w4a8"], "A[0,0] = 200 is out of range"),
        (["--jobs", str(jobs), "--model", "twin"], "--model twin"),
    ]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"random": [2, 2, 2], "precision": "int16"}]))
    cases.append((["--jobs", str(bad)], "precision 'int16'"))
    for extra, words in cases:
        assert main(base + extra) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and words in err[0], err
        assert not (tmp_path / "c.npy").exists()


@needs_icarus
def test_cli_mixed_precisions(tmp_path, capsys):
    from sim.cli import main
    jobs = tmp_path / "jobs.json"
    jobs.write_text(json.dumps([
        {"random": [6, 9, 5], "seed": 1, "precision": "int8", "out": "c0.npy"},
        {"random": [5, 7, 6], "seed": 2, "precision": "w4a8"}, None,
        {"random": [4, 4, 4], "seed": 3}]))
    report = tmp_path / "r.json"
    assert main(["gemm", "--split", "quad", "--rows", "8", "--cols", "8", "--tile", "4",
                 "--acc-width", "24", "--sim", "icarus", "--jobs", str(jobs),
                 "--report", str(report)]) == 0
    r = json.loads(report.read_text())
    assert r["fusion"] == "int8" and r["matches_numpy"]
    assert [j["precision"] for j in r["jobs"]] == ["int8", "w4a8", "int4"]
    assert all(j["cycles"] == j["model_cycles"] for j in r["jobs"])
    A, B = precision_operands(1, 6, 9, 5, "int8")
    assert np.array_equal(np.load(tmp_path / "c0.npy"), A @ B)


@needs_icarus
def test_planner_weighs_precisions():
    """plan_jobs with precisions: the plan's program runs in RTL with the model's
    cycles; a mode whose WS sub-arrays have fewer rows than int8's 4 digit steps is never
    given an int8 job (2x2 tiles: "tiles" cannot run it, "h2" can)."""
    from sim.drivers.schedule import compare_plans, plan_jobs, plan_to_program
    cfg = SplitConfig(8, 8, 2, MacConfig(acc_width=20), fusion="int8")
    jobs = [_job("int8", 5, 6, 4, 20), _job("w4a8", 3, 9, 7, 21), _job("int4", 6, 5, 6, 22),
            _job("w4a8", 2, 3, 3, 23, extreme=True), _job("int8", 1, 7, 8, 24)]
    shapes = [(j.A.shape[0], j.A.shape[1], j.B.shape[1], j.precision) for j in jobs]
    plans = compare_plans(shapes, cfg)
    assert plans["finest"].cycles == float("inf")
    plan = plan_jobs(shapes, cfg)
    assert plan.cycles == plans["planned"].cycles <= plans["whole"].cycles
    for mode, work in plan.phases:
        for sub, js in zip(cfg.subarrays(mode), work):
            for i in js:
                assert shapes[i][3] != "int8" or sub.rows >= 4, (mode, sub, i)
    prog = plan_to_program(plan, jobs)
    (res,) = run_programs([prog], cfg, simulator="icarus")
    _check(prog, res, cfg)
    assert res.cycles == plan.cycles


def test_cli_plan_with_precisions(capsys):
    from sim.cli import main
    assert main(["plan", "16,4,16,int8", "16,8,16,w4a8", "16,16,16", "--rows", "16",
                 "--cols", "16", "--tile", "8", "--acc-width", "32"]) == 0
    out = capsys.readouterr().out
    assert "fint8" in out and "| planned |" in out
    for argv, words in ((["16,16,16,int8", "--rows", "2", "--cols", "8", "--tile", "2"],
                         "at least 4 rows"),
                        (["16,16,16,int9"], "not M,K,N or M,K,N,PRECISION")):
        assert main(["plan", *argv]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and words in err[0], err
    for argv, words in ((["--fusion", "int8", "--numerics", "fp4"], "use numerics int4"),
                        (["--fusion", "int16"], "invalid choice")):
        assert main(["overhead", "--no-breakdown", *argv]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and words in err[0], err


def test_cli_verilog_fusion(capsys):
    from sim.cli import main
    assert main(["verilog", "split", "--rows", "8", "--cols", "8", "--tile", "4",
                 "--dataflow", "ws", "--style", "ports", "--fusion", "int8"]) == 0
    out = capsys.readouterr().out
    assert out == SplitConfig(8, 8, 4, style="ports", fusion="int8").verilog()
    assert main(["verilog", "mac", "--fusion", "int8"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--fusion" in err[0]


TINY = {"model_type": "llama", "hidden_act": "silu", "hidden_size": 32,
        "intermediate_size": 48, "num_attention_heads": 4, "num_key_value_heads": 2,
        "num_hidden_layers": 3, "vocab_size": 20}


@pytest.mark.parametrize("dataflow", ["ws", "os"])
def test_workload_in_a_precision(dataflow):
    """compare_workload(precision=): every GEMM's whole-array cycles are the fused plain
    array's gemm_model_cycles in that precision; split never slower than whole; a WS
    mode whose sub-arrays have fewer than 4 rows is never given int8."""
    from hdl.array import ArrayConfig
    from sim.drivers.gemm import gemm_model_cycles
    from sim.models.workload import Phase, model_shape
    from sim.studies.workload import compare_workload
    m = model_shape(TINY, name="tiny")
    ph = Phase("decode", batch=3, context=20)
    for precision, tile in (("w4a8", 4), ("int8", 2)):
        cfg = SplitConfig(16, 16, tile, MacConfig(acc_width=24), dataflow=dataflow,
                          fusion=precision)
        array = ArrayConfig(16, 16, dataflow, cfg.mac, fusion=precision)
        d = compare_workload(m, ph, cfg, precision=precision)
        int4 = compare_workload(m, ph, SplitConfig(16, 16, tile, MacConfig(acc_width=24),
                                                   dataflow=dataflow))
        assert d["precision"] == precision and "precision" not in int4
        for r, r4 in zip(d["gemms"], int4["gemms"]):
            one = gemm_model_cycles(r["M"], r["K"], r["N"], array, precision)
            if dataflow == "ws":
                assert r["whole_cycles"] == r["count"] * one
            assert r["whole_cycles"] >= r4["whole_cycles"]
            assert r["split_cycles"] <= r["whole_cycles"]
            if precision == "int8" and dataflow == "ws":     # "tiles": 2-row sub-arrays
                assert "tiles" not in r["split_plan"], r["split_plan"]
        assert d["model"]["whole_cycles"] > int4["model"]["whole_cycles"]
        assert d["model"]["split_cycles"] <= d["model"]["whole_cycles"]


def test_workload_cli_precision(capsys):
    from sim.cli import main
    base = ["workload", "llama-3.2-1b", "--rows", "16", "--cols", "16", "--tile", "8"]
    assert main(base + ["--compare", "--precision", "w4a8", "--acc-width", "32"]) == 0
    assert "whole model in w4a8" in capsys.readouterr().out
    for extra, words in ((["--precision", "w4a8"], "only with --compare"),
                         (["--compare", "--precision", "int8", "--rows", "2", "--tile",
                           "2"], "4 rows")):
        assert main(base + extra) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and words in err[0], err
