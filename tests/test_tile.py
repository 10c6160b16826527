"""The accelerator tile (hdl.tile): GEMMs from its own scratchpads on Icarus, against
numpy (int64), and its cycles and SRAM accesses against sim.models.tile.

References: numpy's int64 matmul for C; for cycles, the bare array's model
(sim.models.cycles, itself checked against RTL in test_array) and an independent
step-by-step replay of the feeders' rule written here; the access counters count
enables in the RTL.
"""
from math import ceil

import numpy as np
import pytest

from hdl.array import ArrayConfig
from hdl.mac import MacConfig, ConfigError
from hdl.tile import TileConfig, TileError, HostOp, tile_verilog
from sim.drivers.tile import (run_tile_gemms, run_program, gemm_step)
from sim.models.cycles import model_cycles
from sim.models.tile import GemmCommand, tile_cycles, gemm_error, error_cycles
from sim.runner import available_simulators
from tests.tile_programs import check_error_records, error_program

ICARUS = "icarus" in available_simulators()


def _need_icarus():
    if not ICARUS:
        pytest.skip("icarus is not available here")


def _cfg(R=4, C=4, mac=None, dataflow="os", overlap=False, **kw):
    return TileConfig(array=ArrayConfig(R, C, dataflow, mac or MacConfig(),
                                        fold_overlap=overlap), **kw)


def _replay(cmd, cfg):
    """Cycles of a command by replaying the reader's rule vector by vector (fold
    overlap: a tile's last k at least m cycles after the previous tile's)."""
    b, m = cfg.beats, cfg.drain
    MB, NB = ceil(cmd.M / cfg.rows), ceil(cmd.N / cfg.cols)
    T = MB * NB
    # reads start after the check cycle and the bounds walk (one cycle per block past
    # the first, the longer of A's and B's)
    t, e, last = 2 + max(MB, NB) - 1, None, None
    for tile in range(T):
        for k in range(cmd.K):
            if e is not None and k == 0:
                gap = max(m - cmd.K * b, 0) if cfg.overlap else max(m + 1 - b, 0)
                if not cfg.overlap and cfg.rows == cfg.cols >= 2:
                    # lanes d and d + m share a C bank: last k's at least 2m apart
                    gap = max(gap, 2 * m - cmd.K * b)
                t = e + gap
            elif e is not None:
                t = e
            e = t + b                    # the vector's last line arrives
        if cfg.overlap and last is not None:
            assert e - last >= m         # the diagonal drained
        elif last is not None and cfg.rows == cfg.cols >= 2:
            assert e - last >= 2 * m     # lane d + m done before lane d's next window
        last = e
    # square array, one line per vector: A and B are stored skewed and go to the array
    # without the pre-skew register: one cycle less
    skewed = not cfg.overlap and cfg.rows == cfg.cols and b == 1
    return e + cfg.rows + cfg.cols + cfg.array.latency + cfg.overlap - skewed


@pytest.mark.parametrize("R,C", [(4, 4), (8, 8), (2, 8), (16, 16)])
def test_model_no_stall_is_bare_plus_four(R, C):
    cfg = _cfg(R, C, width=R * 4 if R >= C else C * 4, c_depth=1 << 16)
    assert cfg.beats == 1
    rng = np.random.default_rng(7)
    for M, K, N in [(1, 1, 1), (R, C, R), (64, 64, 64)] + \
            [tuple(int(x) for x in rng.integers(1, 70, 3)) for _ in range(20)]:
        got = tile_cycles(GemmCommand(M, K, N), cfg)
        assert got.stalls == 0
        bare = model_cycles(M, K, N, R, C, "os", double_buffer=False, k_chunk=cfg.max_k)
        single = ceil(M / R) * ceil(N / C) == 1
        walk = max(ceil(M / R), ceil(N / C)) - 1
        if R != C or K >= cfg.drain or single:   # the paired C banks cost nothing
            assert got.cycles == bare + 4 - (R == C) + walk     # R == C: skewed
        else:                                     # tiles 2m apart: more than that
            assert got.cycles > bare + 4 - (R == C) + walk
        assert got.cycles == _replay(GemmCommand(M, K, N), cfg)


def test_overlap_model_bare_plus_five_and_replay():
    rng = np.random.default_rng(13)
    for R, C in ((4, 4), (8, 8), (2, 8), (16, 16)):
        for width, banks in ((64, 1), (4, 1), (8, 2), (3, 3)):
            cfg = _cfg(R, C, overlap=True, width=width, a_banks=banks, c_depth=1 << 16)
            for _ in range(8):
                M, K, N = (int(x) for x in rng.integers(1, 70, 3))
                cmd = GemmCommand(M, K, N)
                got = tile_cycles(cmd, cfg)
                assert got.cycles == _replay(cmd, cfg)
                if cfg.beats == 1:
                    walk = max(ceil(M / R), ceil(N / C)) - 1
                    assert got.cycles == model_cycles(M, K, N, R, C, "os", fold_overlap=True,
                                                      double_buffer=True) + 5 + walk


def test_model_stalls_match_replay():
    rng = np.random.default_rng(11)
    for width in (1, 2, 3, 4, 5, 8, 16):
        for banks in (1, 2, 3):
            cfg = _cfg(4, 4, width=width, a_banks=banks, c_depth=4096)
            for _ in range(10):
                M, K, N = (int(x) for x in rng.integers(1, 40, 3))
                cmd = GemmCommand(M, K, N)
                got = tile_cycles(cmd, cfg)
                assert got.cycles == _replay(cmd, cfg)
                T = ceil(M / 4) * ceil(N / 4)
                # one line per vector on the square array: skewed blocks, 3 lines more
                tail = 3 if ceil(16 / (banks * width)) == ceil(16 / width) == 1 else 0
                assert got.a_reads == T * (K * ceil(16 / (banks * width)) + tail) * banks
                assert got.b_reads == T * (K * ceil(16 / width) + tail)
                assert got.c_writes == T * 16


def _replay_ws(cmd, cfg):
    """WS cycles by replaying the reader's rule vector by vector."""
    R, C, P = cfg.rows, cfg.cols, cfg.array.latency
    F = ceil(cmd.K / R) * ceil(cmd.N / C)
    e = None
    for _ in range(F):
        for v in range(R + cmd.M):
            b = cfg.beats_b if v < R else cfg.beats_a
            gap = R + C + P - 1 if v == 0 else 1
            s = 2 if e is None else e + max(gap - b, 0)
            e = s + b
    return e + R + C + P


def test_ws_overlap_model_is_bare_plus_four():
    rng = np.random.default_rng(14)
    for R in (4, 8, 16):
        cfg = _cfg(R, R, dataflow="ws", overlap=True, width=4 * R, c_depth=1 << 16,
                   depth=1 << 16)
        for _ in range(20):
            M, K, N = (int(x) for x in rng.integers(1, 70, 3))
            got = tile_cycles(GemmCommand(M, K, N), cfg)
            assert got.cycles == model_cycles(M, K, N, R, R, "ws", fold_overlap=True) + 4


def test_ws_model_bare_plus_four_and_replay():
    rng = np.random.default_rng(12)
    for R, C in ((4, 4), (8, 8), (2, 8), (16, 16)):
        for width, banks in ((64, 1), (4, 1), (8, 2), (3, 3)):
            cfg = _cfg(R, C, dataflow="ws", width=width, a_banks=banks, c_depth=1 << 16)
            for _ in range(8):
                M, K, N = (int(x) for x in rng.integers(1, 70, 3))
                got = tile_cycles(GemmCommand(M, K, N), cfg)
                assert got.cycles == _replay_ws(GemmCommand(M, K, N), cfg)
                if cfg.beats_a == cfg.beats_b == 1:
                    assert got.stalls == 0
                    assert got.cycles == model_cycles(M, K, N, R, C, "ws") + 4


def test_64_cube_on_16x16_within_two_percent():
    cfg = _cfg(16, 16, width=64, c_depth=4096)
    got = tile_cycles(GemmCommand(64, 64, 64), cfg)
    assert got.cycles <= 1.02 * got.bare_cycles


def test_config_errors():
    with pytest.raises(ConfigError):
        TileConfig(array=ArrayConfig(2, 4, "ws", MacConfig(pipeline=1), fold_overlap=True))
    with pytest.raises(ConfigError):
        TileConfig(array=ArrayConfig(1, 4, "ws"))
    with pytest.raises(ConfigError):
        TileConfig(array=ArrayConfig(4, 4, "os", double_buffer=True, fold_overlap=False))
    with pytest.raises(ConfigError):
        _cfg(3, 4)
    with pytest.raises(ConfigError):
        _cfg(width=0)
    with pytest.raises(ConfigError):
        _cfg(c_width=8)


def test_model_error_codes():
    cfg = _cfg(depth=64, c_depth=32)
    assert gemm_error(GemmCommand(4, 4, 4), cfg)[0] == TileError.NONE
    assert gemm_error(GemmCommand(4, 4, 4, mode=1), cfg)[0] == TileError.MODE
    assert gemm_error(GemmCommand(0, 4, 4), cfg)[0] == TileError.SHAPE
    assert gemm_error(GemmCommand(4, cfg.max_k + 1, 4), cfg)[0] == TileError.SHAPE
    assert gemm_error(GemmCommand(4, 65, 4), cfg)[0] == TileError.NO_FIT
    assert gemm_error(GemmCommand(4, 4, 4, a_base=61), cfg)[0] == TileError.NO_FIT
    assert gemm_error(GemmCommand(33, 4, 4), cfg)[0] == TileError.NO_FIT       # C: 9 tiles
    assert gemm_error(GemmCommand(8, 4, 4, a_stride=3), cfg)[0] == TileError.OVERLAP


def test_verilog_deterministic():
    cfg = _cfg(2, 2, width=4)
    assert tile_verilog(cfg) == tile_verilog(cfg)
    assert "/work" not in tile_verilog(cfg)


def _jobs(seed, shapes, mac, acc_every=2, c_width=16):
    rng = np.random.default_rng(seed)
    lo, hi = mac.operand_range
    jobs = []
    for n, (M, K, N) in enumerate(shapes):
        if n == 0:                       # extremes: every product (-8)(-8) = 64
            A, B = np.full((M, K), lo), np.full((K, N), lo)
        elif n == 1:
            A, B = np.full((M, K), hi), np.full((K, N), lo)
        else:
            A, B = rng.integers(lo, hi + 1, (M, K)), rng.integers(lo, hi + 1, (K, N))
        acc = n % acc_every == 1
        room = (1 << (c_width - 1)) - 1 - K * 64          # C0 + A @ B fits C's words
        C0 = rng.integers(-room, room + 1, (M, N)) if acc else None
        cmd = GemmCommand(M, K, N, a_base=n % 3, b_base=n % 2, c_base=n % 4, accumulate=acc)
        jobs.append((A, B, cmd, C0))
    return jobs


# (tile keywords, shapes): no stall, stalls (beats 2..4), uneven banks, P = 1, 12-bit acc.
RTL_CASES = {
    "w16": (dict(width=16), [(5, 9, 6), (4, 4, 4), (1, 1, 1), (8, 1, 8), (9, 13, 7)]),
    "ov_w16": (dict(width=16, overlap=True), [(5, 9, 6), (4, 4, 4), (1, 1, 1), (8, 1, 8),
                                              (9, 13, 7), (7, 2, 9)]),
    "ov_w4_p1": (dict(width=4, overlap=True, mac=MacConfig(pipeline=1)),
                 [(6, 6, 6), (9, 1, 5), (9, 2, 3)]),
    "ws_w16": (dict(width=16, dataflow="ws"), [(5, 9, 6), (4, 4, 4), (1, 1, 1), (5, 8, 1),
                                               (9, 13, 7)]),
    "ws_w4": (dict(width=4, dataflow="ws"), [(6, 6, 6), (2, 9, 5), (9, 2, 3)]),
    "wsov_w16": (dict(width=16, dataflow="ws", overlap=True),
                 [(5, 9, 6), (1, 9, 5), (9, 13, 7), (3, 8, 1), (4, 4, 4)]),
    "wsov_w4": (dict(width=4, dataflow="ws", overlap=True), [(6, 6, 6), (2, 9, 5)]),
    "wsov_w8_p1": (dict(width=8, a_banks=2, dataflow="ws", overlap=True,
                        mac=MacConfig(pipeline=1)), [(5, 7, 4), (1, 9, 9), (3, 5, 2)]),
    "wsov_w8b2": (dict(width=8, b_banks=2, dataflow="ws", overlap=True),
                  [(9, 13, 7), (3, 8, 1)]),
    "ws_w8a2_p1": (dict(width=8, a_banks=2, dataflow="ws", mac=MacConfig(pipeline=1)),
                   [(5, 7, 4), (8, 4, 9), (3, 5, 2)]),
    "w4": (dict(width=4), [(3, 5, 8), (7, 3, 2), (4, 1, 5)]),
    "w4a2": (dict(width=4, a_banks=2), [(6, 6, 6), (2, 9, 5), (9, 2, 3)]),
    "w8b2_p1": (dict(width=8, b_banks=2, mac=MacConfig(pipeline=1)), [(5, 7, 4), (8, 4, 9)]),
    "w5_acc12": (dict(width=5, c_width=24, mac=MacConfig(acc_width=12)),
                 [(4, 31, 4), (6, 31, 3)]),
}


@pytest.mark.parametrize("case", sorted(RTL_CASES))
def test_tile_rtl_matches_numpy_and_model(case, tmp_path):
    _need_icarus()
    kw, shapes = RTL_CASES[case]
    kw = dict(kw)
    cfg = _cfg(4, 4, mac=kw.pop("mac", None), **kw)
    jobs = _jobs(sum(map(ord, case)), shapes, cfg.array.mac, c_width=cfg.c_width)
    runs = run_tile_gemms(jobs, cfg, build_root=tmp_path)
    for (A, B, cmd, C0), r in zip(jobs, runs):
        want = A.astype(np.int64) @ B.astype(np.int64) + (0 if C0 is None else C0)
        assert np.array_equal(r.C, want), f"{case} {cmd}"
        assert r.cycles == r.model.cycles, f"{case} {cmd}: RTL {r.cycles} != model"
        assert r.counters == {"a_reads": r.model.a_reads, "b_reads": r.model.b_reads,
                              "c_reads": r.model.c_reads, "c_writes": r.model.c_writes}


@pytest.mark.parametrize("dataflow", ["os", "ws"])
def test_tile_rtl_8x8_stalling(dataflow, tmp_path):
    _need_icarus()
    cfg = _cfg(8, 8, width=8, a_banks=2, dataflow=dataflow)   # A 2 lines, B 4 per vector
    jobs = _jobs(3, [(9, 5, 12), (8, 8, 8), (3, 10, 17)], cfg.array.mac)
    for (A, B, cmd, C0), r in zip(jobs, run_tile_gemms(jobs, cfg, build_root=tmp_path)):
        want = A @ B + (0 if C0 is None else C0)
        assert np.array_equal(r.C, want)
        assert r.cycles == r.model.cycles and r.model.stalls > 0


def test_tile_rtl_errors(tmp_path):
    """Every error code, raised by the RTL; the tile still runs a good GEMM after them."""
    _need_icarus()
    cfg = _cfg(4, 4, width=16, depth=16, c_depth=8)
    steps, bad, cmd = error_program(cfg, no_fit_k=17)
    recs = run_program(steps, cfg, build_root=tmp_path)
    check_error_records(recs, bad, cmd, cfg)
    assert [error_cycles(c, cfg) for c in bad.values()] == [1, 1, 1, 2]  # OVERLAP: 2 A
    #                                                     blocks, one walk step
    assert (recs[10]["error"], recs[10]["cycles"]) == (0, tile_cycles(cmd, cfg).cycles)
    assert HostOp.GEMM == 3


def test_tile_rtl_many_blocks_bounds(tmp_path):
    """More A blocks than A has lines (the bound's multiplier takes blocks - 1 clamped to
    the depth): a stride of 1 does not fit, a stride of 0 overlaps; the RTL agrees with
    the model's unclamped arithmetic."""
    _need_icarus()
    cfg = _cfg(4, 4, width=16, depth=4, c_depth=256)      # skewed: 4 lines per block
    cases = {TileError.NO_FIT: GemmCommand(24, 1, 4, a_stride=1),     # 6 blocks
             TileError.OVERLAP: GemmCommand(24, 1, 4, a_stride=0)}
    steps = []
    for code, cmd in cases.items():
        assert gemm_error(cmd, cfg)[0] == code
        steps.append(gemm_step(cmd, cfg))
    recs = run_program(steps, cfg, build_root=tmp_path)
    for code, rec in zip(cases, recs):       # after the walk over 6 blocks
        assert (rec["error"], rec["err_code"], rec["cycles"]) == (1, code, 6)


# ---------------------------------------------------------------------------- CLI

def test_cli_tile_bad_input_writes_nothing(tmp_path, capsys):
    from sim.cli import main
    out = tmp_path / "r.json"
    for argv in (["--random", "9", "7", "10", "--depth", "8"],        # A does not fit
                 ["--random", "4", "4", "4", "--rows", "3"],          # not a power of two
                 ["--random", "4", "600", "4"],                       # K above one pass
                 ["--random", "4", "4", "4", "--width", "0"]):
        assert main(["tile", *argv, "--json", str(out)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("systolic: error: ")
        assert not out.exists()


def test_cli_tile_model_only(tmp_path, capsys):
    import json
    from sim.cli import main
    out = tmp_path / "r.json"
    assert main(["tile", "--random", "64", "64", "64", "--rows", "16", "--cols", "16",
                 "--width", "64", "--c-depth", "4096", "--model-only",
                 "--json", str(out)]) == 0
    rep = json.loads(out.read_text())
    # skewed blocks (no pre-skew register): bare + 3; 4 blocks: 3 walk steps
    assert rep["model"]["cycles"] == rep["model"]["bare_cycles"] + 3 + 3
    assert main(["tile", "--random", "64", "64", "64", "--rows", "16", "--cols", "16",
                 "--width", "64", "--fold-overlap", "--model-only",
                 "--json", str(out)]) == 0
    rep = json.loads(out.read_text())
    assert rep["fold_overlap"] and rep["model"]["cycles"] == rep["model"]["bare_cycles"] + 5 + 3
    assert main(["tile", "--random", "4", "4", "4", "--rows", "2", "--dataflow", "ws",
                 "--fold-overlap", "--pipeline", "1", "--model-only"]) == 2


def test_cli_tile_rtl(tmp_path, capsys):
    import json
    from sim.cli import main
    _need_icarus()
    out, md = tmp_path / "r.json", tmp_path / "r.md"
    assert main(["tile", "--random", "6", "5", "7", "--seed", "3", "--width", "8",
                 "--dataflow", "ws", "--json", str(out), "--md", str(md)]) == 0
    rep = json.loads(out.read_text())
    assert rep["matches_numpy"] and rep["cycles_match_model"]
    assert rep["model"]["stalls"] > 0
    assert "SRAM a reads" in md.read_text()


def test_sram_energy_prices_each_access_by_its_bits():
    """One 64-bit A read costs the cited 6.1 pJ; a 16-bit B read a quarter of it; a C
    access its c_width bits; the total is the sum."""
    import dataclasses
    from sim.models.tile import SRAM_PJ_PER_64BIT, sram_energy_pj
    cfg64 = TileConfig(array=ArrayConfig(4, 4, "os", MacConfig()), width=64)
    m = dataclasses.replace(tile_cycles(GemmCommand(4, 4, 4), cfg64), a_reads=1, b_reads=0,
                            c_reads=0, c_writes=0)
    assert sram_energy_pj(m, cfg64)["a_reads"] == pytest.approx(SRAM_PJ_PER_64BIT) == \
        pytest.approx(6.1)
    cfg16 = TileConfig(array=ArrayConfig(4, 4, "os", MacConfig()), width=16, c_width=32)
    m = dataclasses.replace(m, a_reads=0, b_reads=4, c_reads=2, c_writes=1)
    e = sram_energy_pj(m, cfg16)
    assert e["b_reads"] == pytest.approx(4 * 6.1 / 4)
    assert e["c_reads"] == pytest.approx(2 * 6.1 / 2) and e["c_writes"] == pytest.approx(6.1 / 2)
    assert e["total"] == pytest.approx(6.1 + 6.1 + 6.1 / 2)
