"""Clock gates inside every WS PE (hdl.pe_gate): the Verilog, unchanged results and cycles
on both simulators and both paths (plain and split arrays, both WS PEs, P = 0..2), the
gate-level netlist (CLKGATE_X1 simulated by the energy flow's own simulator, its outputs
equal to the ungated netlist's), and that the enable is not slack."""
import numpy as np
import pytest

from hdl import pe as pe_module
from hdl.array import TOPLEVEL, ArrayConfig
from hdl.mac import ConfigError, MacConfig
from hdl.split import SplitConfig
from sim.drivers.gemm import run_gemms
from sim.drivers.split import run_programs
from sim.models.program import SplitJob, program_cycles
from sim.native.run import run_gemms_native, run_programs_native
from sim.runner import available_simulators

SIMS = available_simulators()


def _need(simulator):
    if simulator not in SIMS:
        pytest.skip(f"{simulator} is not available here")


def _gemms(seed):
    """Shapes that leave rows and columns unused, several folds of K and N, a GEMV, and
    the int4 extremes."""
    rng = np.random.default_rng(seed)
    jobs = [(rng.integers(-8, 8, (M, K)), rng.integers(-8, 8, (K, N)))
            for M, K, N in ((5, 7, 6), (1, 9, 3), (3, 2, 9))]
    jobs.append((np.full((4, 6), -8), np.full((6, 5), -8)))
    jobs.append((np.full((2, 5), 7), np.full((5, 4), -8)))
    return jobs


def _check_gemms(jobs, results):
    for (A, B), r in zip(jobs, results):
        assert np.array_equal(r.C, A.astype(np.int64) @ B.astype(np.int64))
        assert r.cycles == r.model_cycles


# -- Verilog ----------------------------------------------------------------------------------

def test_verilog_structure_and_refusals():
    off = ArrayConfig(3, 4, "ws").verilog()
    on = ArrayConfig(3, 4, "ws", pe_gate=True).verilog()
    assert "clock_gate" not in off and "pe_core" not in off
    assert on == ArrayConfig(3, 4, "ws", pe_gate=True).verilog()          # deterministic
    assert on.count("module clock_gate (") == 1 and on.count("module pe_core") == 1
    wrapper = on[on.index("module pe ("):]
    wrapper = wrapper[:wrapper.index("endmodule")]
    assert "clock_gate u_gd (.clk(clk), .en(en_d | rst)" in wrapper
    assert "clock_gate u_gw (.clk(clk), .en(w_en | rst)" in wrapper
    # the top is the plain array's: the same ports, the same PE instances
    assert off[off.index("module systolic_array"):] == \
        on[on.index("module systolic_array"):on.index("// clock_gate:")].rstrip() + "\n"
    assert "_pg_" in ArrayConfig(2, 2, pe_gate=True).slug
    # with the row gates as well: one clock_gate module
    both = ArrayConfig(3, 4, "ws", clock_gate=True, pe_gate=True).verilog()
    assert both.count("module clock_gate (") == 1 and "clk_en" in both
    split = SplitConfig(4, 4, 2, pe_gate=True).verilog()
    assert "module pe_core" in split and "_pg_" in SplitConfig(4, 4, 2, pe_gate=True).slug
    for make in (lambda: ArrayConfig(2, 2, "os", pe_gate=True),
                 lambda: SplitConfig(4, 4, 2, dataflow="os", pe_gate=True),
                 lambda: ArrayConfig(2, 2, "ws", pe_gate=1)):
        with pytest.raises(ConfigError, match="pe_gate"):
            make()


# -- simulation: results and cycles unchanged ---------------------------------------------------

@pytest.mark.parametrize("simulator,pipeline,double_buffer", [
    ("icarus", 0, True), ("icarus", 0, False), ("icarus", 2, True), ("icarus", 1, False),
    pytest.param("verilator", 2, True, marks=pytest.mark.slow),
    pytest.param("verilator", 0, False, marks=pytest.mark.slow)])
def test_plain_array_unchanged(simulator, pipeline, double_buffer):
    _need(simulator)
    config = ArrayConfig(4, 4, "ws", MacConfig(pipeline=pipeline), pe_gate=True,
                         double_buffer=double_buffer)
    jobs = _gemms(pipeline * 2 + double_buffer)
    _check_gemms(jobs, run_gemms(jobs, config, simulator=simulator))
    _check_gemms(jobs, run_gemms_native(jobs, config, simulator=simulator))


def _program(seed):
    rng = np.random.default_rng(seed)

    def J(M, K, N, delay=0):
        return SplitJob(rng.integers(-8, 8, (M, K)), rng.integers(-8, 8, (K, N)), delay)
    return [("tiles", [J(2, 3, 2), None, J(6, 5, 1), J(1, 1, 1, delay=3)]),
            ("whole", [J(3, 4, 4)]),
            ("quad", [J(3, 1, 2), J(3, 9, 2), None, J(2, 2, 2)])]


@pytest.mark.parametrize("path,simulator,pipeline,clock_gate", [
    ("cocotb", "icarus", 0, False), ("native", "icarus", 1, True),
    pytest.param("native", "verilator", 0, False, marks=pytest.mark.slow)])
def test_split_array_unchanged(path, simulator, pipeline, clock_gate):
    _need(simulator)
    config = SplitConfig(4, 4, 2, MacConfig(pipeline=pipeline), pe_gate=True,
                         clock_gate=clock_gate)
    prog = _program(pipeline + 3)
    run = run_programs if path == "cocotb" else run_programs_native
    res = run([prog], config, simulator=simulator)[0]
    jobs = [j for _, work in prog for j in work if j is not None]
    assert len(res.jobs) == len(jobs)
    for job, r in zip(jobs, res.jobs):
        assert np.array_equal(r.C, np.asarray(job.A) @ np.asarray(job.B))
        assert r.cycles == r.model_cycles
    assert res.cycles == res.model_cycles == program_cycles(prog, config)


def test_enable_is_not_slack(monkeypatch, tmp_path):
    """Without the partial-sum valid bits in the enable, a partial sum that passes a row
    with no activation of its own (K < rows) is not taken: results break, so the tests
    above can fail."""
    import hdl.cache
    from sim.drivers import gemm as gemm_driver
    _need("icarus")

    def short(pe, v_chain):
        return v_chain[0] | pe.v_out
    monkeypatch.setattr(pe_module, "data_enable", short)
    monkeypatch.setattr(hdl.cache, "_memo", {})
    monkeypatch.setattr(gemm_driver, "_write_design", lambda config, build_dir: (
        build_dir.mkdir(parents=True, exist_ok=True),
        (build_dir / f"{TOPLEVEL}.v").write_text(config.verilog(cache=False)))[-1])
    config = ArrayConfig(4, 4, "ws", MacConfig(), pe_gate=True)
    jobs = [(np.full((3, 2), 3), np.full((2, 4), -5))]
    with pytest.raises(Exception):
        _check_gemms(jobs, run_gemms(jobs, config, simulator="icarus", build_root=tmp_path))


# -- gate level ---------------------------------------------------------------------------------

def _gate_level(config, A, B, tail=24):
    from hdl.flows.activity import GateSim
    from hdl.flows.energy import capture, report_from_activity
    from hdl.flows.liberty import LibertyError
    from sim.studies.energy_study import array_stimulus
    try:
        ports, T, warmup = array_stimulus(config, A, B)
        ports = {k: np.concatenate([v, np.zeros((tail, v.shape[1]), np.uint8)])
                 for k, v in ports.items()}
        sim, act, model, _ = capture(config.verilog(), TOPLEVEL, ports, cycles=T + tail,
                                     warmup=warmup, glitch=True, cache=False)
    except LibertyError as e:
        pytest.skip(f"Nangate45 unavailable: {e}")
    assert isinstance(sim, GateSim)
    trace = []
    sim.run(ports, T + tail, trace=trace)
    outs = [(t, d["c_valid"], d["c_out"]) for t, d in enumerate(trace) if d["c_valid"]]
    return sim, act, report_from_activity(sim, act, model, top=TOPLEVEL), outs


def test_gate_level_netlist_same_outputs_fewer_clocked_flops():
    rng = np.random.default_rng(11)
    A, B = rng.integers(-8, 8, (2, 7)), rng.integers(-8, 8, (7, 5))
    plain = _gate_level(ArrayConfig(3, 3, "ws"), A, B)
    gated = _gate_level(ArrayConfig(3, 3, "ws", pe_gate=True), A, B)
    sim, act, rep, outs = gated
    assert len(sim.gates) == 2 * 9                      # two CLKGATE_X1 per PE
    assert {sim.cells[c] for c, _, _ in sim.gates} == {"CLKGATE_X1"}
    assert (sim.f_gate >= 0).all()                      # every flop of a PE is gated
    assert outs == plain[3] and len(outs) > 0           # the same results, same cycles
    # clocked flop-cycles: far fewer; the gates were open only part of the time
    assert act.clock_states.sum() < 0.6 * plain[1].clock_states.sum()
    assert 0 < act.gates_open.sum() < len(sim.gates) * act.cycles
    assert rep.total_pj < plain[2].total_pj
    assert rep.categories_pj["clock"] < plain[2].categories_pj["clock"]
    # the per-cycle sums (gates' own energy included) add up to the report
    assert rep.per_cycle_pj.sum() == pytest.approx(rep.total_pj, rel=1e-9)


def test_cli_pe_gate(tmp_path):
    import subprocess
    import sys
    run = [sys.executable, "-m", "sim.cli"]
    out = subprocess.run(run + ["verilog", "array", "--rows", "3", "--cols", "2",
                                "--dataflow", "ws", "--pe-gate"], capture_output=True, text=True)
    assert out.returncode == 0
    assert out.stdout == ArrayConfig(3, 2, "ws", pe_gate=True).verilog()
    bad = subprocess.run(run + ["verilog", "array", "--dataflow", "os", "--pe-gate"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stdout == ""
    assert len(bad.stderr.strip().splitlines()) == 1 and "--pe-gate: " in bad.stderr
    # the energy flow runs the gated netlist (2x2, one small GEMM)
    js = tmp_path / "e.json"
    e = subprocess.run(run + ["energy", "array", "--rows", "2", "--cols", "2", "--dataflow",
                              "ws", "--gemm", "2", "4", "2", "--pe-gate", "--json", str(js)],
                       capture_output=True, text=True)
    assert e.returncode == 0, e.stderr[-2000:]
    assert js.exists() and "_pg_" in js.read_text()
