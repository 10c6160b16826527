"""The split tile (hdl.tile.split): every mode of the splittable WS array from memory,
jobs of different shapes on its sub-arrays at once, on Icarus.

References: numpy's int64 matmul for C; for cycles, the bare array's model
(sim.models.cycles, checked against RTL in test_array and test_split) and the lone
tile's (sim.models.tile, checked in test_tile); tile_done and the access counters are
read from the RTL and compared with sim.models.split_tile.
"""

import numpy as np
import pytest

from hdl.array import ArrayConfig
from hdl.mac import MacConfig, ConfigError
from hdl.tile import TileConfig, TileError, Mem
from hdl.tile.split import (SplitTileConfig, SPLIT_MODE, sub_tiles, tile_roles, mode_words,
                            bands)
from sim.drivers.split_tile import (SplitTileJob, run_split_tile, run_split_tile_gemms,
                                    tile_writes)
from sim.drivers.tile import run_program, split_gemm_step, write_step, count_step
from sim.models.cycles import model_cycles
from sim.models.split_tile import sub_job_cycles, split_gemm_error, start_model
from sim.models.tile import GemmCommand, tile_cycles
from sim.runner import available_simulators

ICARUS = "icarus" in available_simulators()


def _need_icarus():
    if not ICARUS:
        pytest.skip("icarus is not available here")


def _cfg(T=4, grid=2, **kw):
    kw.setdefault("width", 4 * T)
    return SplitTileConfig(TileConfig(array=ArrayConfig(T, T, "ws", MacConfig()), **kw),
                           grid)


def _check(runs):
    for r in runs:
        for C, E in zip(r.C, r.expected):
            assert np.array_equal(C, E)
        assert r.cycles == r.model_cycles
        want_done = {t: d for s in r.subs for t, d in s.tile_done.items()}
        want_cnt = {t: d for s in r.subs for t, d in s.counters.items()}
        assert r.tile_done == want_done
        assert r.counters == want_cnt


# --------------------------------------------------------------------- geometry, model

def test_bands_and_roles_by_hand():
    assert bands(0, 2) == [(0, 0, 2), (0, 1, 2)]
    assert bands(1, 2) == [(0, 0, 1), (1, 0, 1)]
    assert bands(0b001, 4) == [(0, 0, 1), (1, 0, 3), (1, 1, 3), (1, 2, 3)]
    assert bands(0b110, 4) == [(0, 0, 2), (0, 1, 2), (1, 0, 1), (2, 0, 1)]
    subs = sub_tiles(4, 0b001, 0b110)
    assert [(s.g0, s.j0, s.nr, s.nc) for s in subs] == [
        (0, 0, 1, 2), (0, 2, 1, 1), (0, 3, 1, 1), (1, 0, 3, 2), (1, 2, 3, 1), (1, 3, 3, 1)]
    roles = tile_roles(4, 0b001, 0b110)
    r = roles[3 * 4 + 1]                           # tile (3, 1): sub-array 3, bottom right
    assert (r.sub, r.oy, r.ox, r.nr, r.nc, r.bottom) == (3, 2, 1, 3, 2, True)
    cfg = _cfg(4, 4)
    assert mode_words(cfg, "whole") == (0, 0)
    assert mode_words(cfg, "quad") == (0b010, 0b010)
    assert mode_words(cfg, "tiles") == (0b111, 0b111)
    assert mode_words(cfg, ((1,), (2, 3))) == (0b001, 0b110)
    with pytest.raises(ValueError):
        mode_words(cfg, "diag")


@pytest.mark.parametrize("T,grid", [(4, 2), (16, 2), (2, 4), (4, 3)])
def test_model_against_lone_tile_and_bare_array(T, grid):
    """A 1x1 sub-array is the lone WS tile (its model); any sub-array at one line per
    vector is the bare Rs x Cs WS array's model + 4 (as the lone tile)."""
    cfg = _cfg(T, grid, c_depth=4096, depth=4096)
    rng = np.random.default_rng(T * 10 + grid)
    shapes = [(1, 1, 1), (T, T, T), (3 * T + 1, 2 * T + 1, 5)] + \
        [tuple(int(x) for x in rng.integers(1, 4 * T * grid, 3)) for _ in range(10)]
    for M, K, N in shapes:
        cmd = GemmCommand(M, K, N, mode=SPLIT_MODE)
        assert sub_job_cycles(cmd, cfg, 1, 1)[0] == tile_cycles(GemmCommand(M, K, N),
                                                                cfg.sub).cycles
        for nr in range(1, grid + 1):
            for nc in range(1, grid + 1):
                bare = model_cycles(M, K, N, nr * T, nc * T, "ws",
                                    pipeline=cfg.sub.array.mac.pipeline, k_chunk=1 << 20)
                assert sub_job_cycles(cmd, cfg, nr, nc)[0] == bare + 4


def test_model_reads_per_element():
    """Whole mode: every element of B read once; A once per tile column (a copy each)."""
    cfg = _cfg(4, 2, width=16)
    cmd = GemmCommand(8, 8, 8, mode=SPLIT_MODE)
    _, (run,) = start_model({0: cmd}, cfg, (0, 0))
    assert sum(c["b_reads"] for c in run.counters.values()) * 4 == 8 * 8
    assert sum(c["a_reads"] for c in run.counters.values()) * 4 == 2 * 8 * 8
    assert sum(c["c_writes"] for c in run.counters.values()) == 8 * 8


def test_config_refuses():
    with pytest.raises(ConfigError):
        SplitTileConfig(TileConfig(array=ArrayConfig(4, 4, "ws", MacConfig(),
                                                     fold_overlap=True)))
    with pytest.raises(ConfigError):
        SplitTileConfig(TileConfig(array=ArrayConfig(4, 4, "os", MacConfig())))
    with pytest.raises(ConfigError):
        _cfg(4, 5)


# --------------------------------------------------------------------- RTL

def _jobs(rng, cfg, words, big, acc_sub=None):
    """A random job per sub-array of ``words`` (shapes up to ``big``), the last one at
    the extremes (-8 everywhere), one accumulating onto C0 with bases off 0."""
    T = cfg.sub.rows
    out = []
    subs = sub_tiles(cfg.grid, *words)
    for s in subs:
        M, K, N = (int(x) for x in rng.integers(1, big + 1, 3))
        A, B = rng.integers(-8, 8, (M, K)), rng.integers(-8, 8, (K, N))
        if s.index == len(subs) - 1:
            K = s.nr * T + 1                      # one K block past the sub-array
            A, B = np.full((M, K), -8), np.full((K, N), -8)
        cmd, C0 = None, None
        if s.index == acc_sub:
            cmd = GemmCommand(M, K, N, a_base=3, b_base=5, c_base=2, accumulate=True,
                              mode=SPLIT_MODE)
            C0 = rng.integers(-1000, 1000, (M, N))
        out.append(SplitTileJob(A, B, s.index, cmd, C0))
    return out


def test_every_mode_small(tmp_path):
    """8x8 of 4x4 tiles at two lines per vector (stalls): whole, h2, v2, quad, one job
    per sub-array of random shapes, C == numpy, cycles, tile_done and counters == model."""
    _need_icarus()
    cfg = _cfg(4, 2, width=8)
    rng = np.random.default_rng(20)
    starts = []
    for mode in ("whole", "h2", "v2", "quad", "whole"):
        words = mode_words(cfg, mode)
        starts.append((mode, _jobs(rng, cfg, words, 13, acc_sub=0)))
    starts.append(("whole", [SplitTileJob(np.array([[3]]), np.array([[-5]]), 0)]))
    _check(run_split_tile(starts, cfg, build_root=tmp_path))


def test_guillotine_cuts_grid4(tmp_path):
    """8x8 of 2x2 tiles (a 4x4 grid): non-uniform guillotine cuts (sub-arrays of 3 tile
    rows) and single jobs on some sub-arrays only."""
    _need_icarus()
    cfg = _cfg(2, 4, width=8)
    rng = np.random.default_rng(4)
    w = ("words", 0b001, 0b110)
    starts = [(w, _jobs(rng, cfg, mode_words(cfg, w), 9, acc_sub=3)),
              (("words", 0b100, 0b011), _jobs(rng, cfg, (0b100, 0b011), 7)),
              ("tiles", _jobs(rng, cfg, mode_words(cfg, "tiles"), 3)[5:9])]
    _check(run_split_tile(starts, cfg, build_root=tmp_path))


def test_grid3(tmp_path):
    """6x6 of 2x2 tiles (a 3x3 grid): whole (K and N in blocks of 6), a 2+1 row cut with
    a 1+2 column cut, and tiles with five jobs."""
    _need_icarus()
    cfg = _cfg(2, 3, width=4)
    rng = np.random.default_rng(9)
    starts = [("whole", _jobs(rng, cfg, (0, 0), 14, acc_sub=0)),
              (("words", 0b10, 0b01), _jobs(rng, cfg, (0b10, 0b01), 8, acc_sub=2)),
              ("tiles", _jobs(rng, cfg, (0b11, 0b11), 5)[2:7])]
    _check(run_split_tile(starts, cfg, build_root=tmp_path))


def test_every_mode_32x32(tmp_path):
    """The 32x32 split tile of 16x16 tiles (64-bit banks: one line per vector): whole,
    h2, v2, quad with jobs of different shapes, and the four 16x16x16 GEMMs of the
    bench in 66 cycles."""
    _need_icarus()
    cfg = _cfg(16, 2, width=64, depth=512, c_depth=512)
    rng = np.random.default_rng(32)
    starts = []
    for mode in ("whole", "h2", "v2"):
        starts.append((mode, _jobs(rng, cfg, mode_words(cfg, mode), 40, acc_sub=1)))
    four = [(rng.integers(-8, 8, (16, 16)), rng.integers(-8, 8, (16, 16))) for _ in range(4)]
    starts.append(("quad", [SplitTileJob(A, B, k) for k, (A, B) in enumerate(four)]))
    runs = run_split_tile(starts, cfg, build_root=tmp_path)
    _check(runs)
    assert runs[-1].cycles == 66


def test_four_gemms_one_shape(tmp_path):
    """The one-shape helper (the bench's): four GEMMs in mode tiles at two lines per
    vector, cycles == model with stalls."""
    _need_icarus()
    cfg = _cfg(4, 2, width=8)
    rng = np.random.default_rng(21)
    jobs = [(rng.integers(-8, 8, (6, 9)), rng.integers(-8, 8, (9, 5))) for _ in range(3)]
    jobs.append((np.full((6, 9), -8), np.full((9, 5), -8)))
    Cs, cycles, model = run_split_tile_gemms(jobs, cfg, build_root=tmp_path)
    for C_, (A, B) in zip(Cs, jobs):
        assert np.array_equal(C_, A @ B)
    assert cycles == model
    lone = tile_cycles(GemmCommand(6, 9, 5), cfg.sub)
    assert cycles == lone.cycles and lone.stalls > 0


def test_errors_in_rtl(tmp_path):
    """Every error code of the split tile, raised by the RTL with the model's code, after
    the check cycle; a refused command keeps earlier stagings, which then run."""
    _need_icarus()
    cfg = _cfg(4, 2, depth=64, c_depth=64)
    sub = cfg.sub
    whole, h2 = mode_words(cfg, "whole"), mode_words(cfg, "h2")
    ok = GemmCommand(4, 4, 4, mode=SPLIT_MODE)
    bad = [  # (cmd, sub-array, words, staged words, code)
        (GemmCommand(4, 4, 4, mode=0), 0, whole, None, TileError.MODE),
        (ok, 1, whole, None, TileError.MODE),                   # whole has one
        (ok, 4, mode_words(cfg, "tiles"), None, TileError.MODE),
        (GemmCommand(0, 4, 4, mode=SPLIT_MODE), 0, h2, None, TileError.SHAPE),
        (GemmCommand(4, 4, 0, mode=SPLIT_MODE), 1, h2, None, TileError.SHAPE),
        (GemmCommand(4, 4, 4, a_base=61, mode=SPLIT_MODE), 0, h2, None, TileError.NO_FIT),
        (GemmCommand(4, 4, 4, c_base=61, mode=SPLIT_MODE), 1, h2, None, TileError.NO_FIT),
        # whole: 8 rows per K block; K = 200 needs 25 blocks of 4 A lines: 100 > 64
        (GemmCommand(4, 200, 4, mode=SPLIT_MODE), 0, whole, None, TileError.NO_FIT),
        (GemmCommand(4, 9, 4, a_stride=2, mode=SPLIT_MODE), 0, whole, None,
         TileError.OVERLAP),
    ]
    steps = []
    for cmd, k, words, staged, code in bad:
        assert split_gemm_error(cmd, cfg, k, words, staged)[0] == code
        steps.append(split_gemm_step(cmd, sub, sub=k, words=words, go=True))
    # stage sub-array 0 of h2, then a command of another mode (MODE), then go on 1
    rng = np.random.default_rng(3)
    A0, B0 = rng.integers(-8, 8, (4, 4)), rng.integers(-8, 8, (4, 4))
    A1, B1 = rng.integers(-8, 8, (4, 4)), rng.integers(-8, 8, (4, 4))
    steps += tile_writes(A0, B0, cfg, ok, h2, 0) + tile_writes(A1, B1, cfg, ok, h2, 1)
    steps.append(split_gemm_step(ok, sub, sub=0, words=h2, go=False))
    assert split_gemm_error(ok, cfg, 0, whole, h2)[0] == TileError.MODE
    steps.append(split_gemm_step(ok, sub, sub=0, words=whole, go=True))
    steps.append(dict(split_gemm_step(ok, sub, sub=1, words=h2, go=True, watch=True),
                      poke=1))                                   # a WRITE while busy
    steps.append(dict(write_step([Mem.A], [0], [0], [1]), sub=4))     # no tile 4
    steps.append(dict(write_step([Mem.C], [0], [64], [1]), sub=0))    # past the depth
    steps.append(count_step([0, 1, 2, 3]))
    recs = run_program(steps, cfg, build_root=tmp_path)
    n = len(bad)
    for (_, _, _, _, code), rec in zip(bad, recs):
        assert (rec["error"], rec["err_code"], rec["cycles"]) == (1, code, 1)
    at = n + 8                   # after the WRITE steps: two per tile, two tiles per job
    assert (recs[at]["error"], recs[at]["cycles"]) == (0, 1)          # staged
    assert (recs[at + 1]["error"], recs[at + 1]["err_code"]) == (1, TileError.MODE)
    go = recs[at + 2]
    cycles, model = start_model({0: ok, 1: ok}, cfg, h2)
    assert (go["error"], go["err_code"]) == (1, TileError.BUSY)      # the poke
    assert go["cycles"] == cycles                  # both sub-arrays ran
    assert go["tile_done"] == {str(t): d for s in model for t, d in s.tile_done.items()}
    for rec in recs[at + 3:at + 5]:
        assert (rec["error"], rec["err_code"]) == (1, TileError.ADDR_RANGE)
    got = recs[at + 5]["counters"]
    assert got == {str(t): c for s in model for t, c in s.counters.items()}


def test_plan_jobs_program_from_memory(tmp_path):
    """The split planner's program (plan_jobs on the tile's splittable array) played on
    the split tile from memory: every C == numpy, cycles == model."""
    _need_icarus()
    from sim.drivers.schedule import plan_jobs, plan_to_program
    from sim.drivers.split_tile import run_program_from_memory
    from sim.models.program import SplitJob
    cfg = _cfg(4, 2, width=8, depth=128, c_depth=64)
    rng = np.random.default_rng(5)
    shapes = [(8, 8, 8), (3, 20, 5), (12, 4, 9), (1, 8, 16), (5, 5, 5), (2, 3, 4)]
    jobs = [SplitJob(rng.integers(-8, 8, (M, K)), rng.integers(-8, 8, (K, N)))
            for M, K, N in shapes]
    plan = plan_jobs(shapes, cfg.split)
    res = run_program_from_memory(plan_to_program(plan, jobs), cfg, build_root=tmp_path)
    order = [i for _, work in plan.phases for js in work for i in js]
    assert len(res.C) == len(jobs)
    for i, C in zip(order, res.C):
        assert np.array_equal(C, jobs[i].A @ jobs[i].B)
    assert res.cycles == res.model_cycles
    assert all(r.cycles == r.model_cycles for r in res.starts)


@pytest.mark.parametrize("argv,why", [
    (["--from-memory"], "needs --rtl"),
    (["--rtl", "--from-memory", "--dataflow", "os"], "square WS array"),
    (["--rtl", "--from-memory", "--rows", "40", "--cols", "40", "--tile", "8"], "grid"),
    (["--rtl", "--from-memory", "--path", "native"], "cocotb path only")])
def test_workload_from_memory_bad_input(tmp_path, capsys, argv, why):
    """Bad input: one line naming it, exit 2, nothing written."""
    from sim.cli import main
    out = tmp_path / "w.json"
    assert main(["workload", "gpt2", "--phase", "decode", "--rows", "8", "--cols", "8",
                 "--tile", "4", *argv, "--json", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and why in err[0] and not out.exists()


def test_workload_from_memory_on_a_config(tmp_path, capsys):
    """`systolic workload CONFIG --rtl --from-memory`: a tiny model's whole and split
    programs on the 8x8 split tile from memory: C == numpy, cycles == model."""
    import json
    from sim.cli import main
    from tests.test_workload_rtl import TINY
    _need_icarus()
    cfg = tmp_path / "tiny.json"
    cfg.write_text(json.dumps(TINY))
    out = tmp_path / "w.json"
    code = main(["workload", str(cfg), "--rtl", "--from-memory", "--rows", "8", "--cols",
                 "8", "--tile", "4", "--rtl-tokens", "5", "--rtl-context", "12",
                 "--json", str(out)])
    text = capsys.readouterr().out
    assert code == 0
    row = json.loads(out.read_text())["rtl"]
    assert row["c_equal"] and row["cycles_equal"]
    for k in ("whole", "split"):
        assert row[k]["rtl_cycles"] == row[k]["model_cycles"] > 0
    assert "every C equals numpy" in text
