"""Gate-level activity and Liberty energy (hdl.flows.activity, hdl.flows.energy,
hdl.flows.sta_power): tiny netlists computed by hand from numbers read straight out of the
Liberty text, the simulator against Python references and against Icarus running the same
mapped netlist on Yosys' Nangate45 cell models, and the switching energy against OpenSTA."""
import re
import shutil
import subprocess

import numpy as np
import pytest

from hdl.flows.activity import GateSim
from hdl.flows.capture import capture_activity
from hdl.flows.gatemap import mapped_netlist
from hdl.flows.energy import ENERGY_CATEGORIES, EnergyModel, design_energy
from hdl.flows.liberty import LibertyError
from hdl.flows.libpower import bool_function, library_power
from hdl.mac import MacConfig

V = 1.1


@pytest.fixture(scope="module")
def text(nangate45):
    return nangate45.read_text()


def _cell_text(text, cell):
    start = text.index(f"\n  cell ({cell})")
    return text[start:text.index("\n  cell (", start + 10)]


def _pin_cap(text, cell, pin):
    body = _cell_text(text, cell)
    pin_body = body[body.index(f"pin ({pin})"):]
    return float(re.search(r"\bcapacitance\s*:\s*([\d.]+)", pin_body).group(1))


def _wire1(text):
    """Wire cap (fF) at fanout 1 of the default model, from the text."""
    name = re.search(r'default_wire_load\s*:\s*"([^"]+)"', text).group(1)
    body = text[text.index(f'wire_load("{name}")'):]
    cap = float(re.search(r"capacitance\s*:\s*([\d.e+-]+)", body).group(1))
    length = float(re.search(r"fanout_length\(\s*1\s*,\s*([\d.]+)", body).group(1))
    return cap * length


def _netlist(cells, inputs, outputs):
    """A one-module Yosys JSON netlist: ``cells`` {name: (type, {pin: net})}, nets named
    by strings (numbered here), ``inputs``/``outputs`` port names (1 bit each)."""
    ids = {}

    def bit(n):
        return ids.setdefault(n, len(ids) + 2)
    ports = {p: {"direction": "input", "bits": [bit(p)]} for p in inputs}
    ports.update({p: {"direction": "output", "bits": [bit(p)]} for p in outputs})
    jc = {}
    for name, (typ, conn) in cells.items():
        jc[name] = {"type": typ, "connections": {pin: [bit(n)] for pin, n in conn.items()}}
    netnames = {n: {"hide_name": 0, "bits": [b]} for n, b in ids.items()}
    return {"modules": {"top": {"ports": ports, "cells": jc, "netnames": netnames}}}


def _run(nangate45, netlist, ports, cycles, *, glitch=False, warmup=0):
    lib = library_power(nangate45)
    sim = GateSim(netlist, "top", lib)
    model = EnergyModel(sim, nangate45)
    act = sim.run(ports, cycles, glitch=glitch, warmup=warmup, weights=model.weights())
    return sim, model, act


@pytest.mark.parametrize("expr, ref", [
    ("!(A1 & A2)", lambda A1, A2, B: 1 - (A1 & A2)),
    ("((A & B) | (CI & (A | B)))", None),
    ("(A1 ^ A2) | !B", lambda A1, A2, B: (A1 ^ A2) | (1 - B)),
    ("A1' + A2 * B", lambda A1, A2, B: (1 - A1) | (A2 & B)),
    ("!(!(A1 | A2) & B)", lambda A1, A2, B: 1 - ((1 - (A1 | A2)) & B)),
])
def test_bool_function_exhaustive(expr, ref):
    if ref is None:
        f = bool_function(expr, ["A", "B", "CI"])
        for a in (0, 1):
            for b in (0, 1):
                for c in (0, 1):
                    assert f(A=a, B=b, CI=c) == int(a + b + c >= 2)
        return
    f = bool_function(expr, ["A1", "A2", "B"])
    for x in range(8):
        args = {"A1": x & 1, "A2": x >> 1 & 1, "B": x >> 2}
        assert f(**args) == ref(**args)


def test_inverter_chain_by_hand(nangate45, text):
    """a -> INV -> INV -> INV -> y, a toggling every cycle: every net toggles once per
    cycle in both modes; switching energy 1/2 C V^2 per toggle, C by hand."""
    net = _netlist({"u1": ("INV_X1", {"A": "a", "ZN": "n1"}),
                    "u2": ("INV_X1", {"A": "n1", "ZN": "n2"}),
                    "u3": ("INV_X1", {"A": "n2", "ZN": "y"})}, ["a"], ["y"])
    T = 50
    a = np.arange(T) % 2
    c_in = _pin_cap(text, "INV_X1", "A") + _wire1(text)
    c_out = _wire1(text)                             # y drives only the output port
    per_cycle = 0.5 * V * V * (3 * c_in + c_out)     # fJ
    for glitch in (False, True):
        sim, model, act = _run(nangate45, net, {"a": a}, T, glitch=glitch, warmup=1)
        for name in ("a", "n1", "n2", "y"):
            i = sim.nets.index(name)
            assert act.toggles[i] == T - 1
            assert act.rise[i] + act.fall[i] == T - 1 and abs(act.rise[i] - act.fall[i]) <= 1
        switching = float(act.toggles @ model.switch)
        assert switching == pytest.approx(per_cycle * (T - 1), rel=1e-9)


def test_one_flop_clock_energy_by_hand(nangate45, text):
    """A DFF_X1 whose D is held at 0: nothing toggles but the clock. Energy per cycle =
    CK internal rise + fall at state (!D, !Q, QN) (slew at the first table index, so the
    first entry exactly) + (CK cap + wire) V^2 + leakage x 1 ns, all read from the text."""
    net = _netlist({"ff": ("DFF_X1", {"D": "d", "CK": "clk", "Q": "q"})}, ["clk", "d"],
                   ["q"])
    T = 40
    sim, model, act = _run(nangate45, net, {"d": np.zeros(T, int)}, T)
    body = _cell_text(text, "DFF_X1")
    ck = body[body.index("pin (CK)"):]
    grp = ck[ck.index('when          \t: "!D & !Q & QN"'):]
    first = [float(re.search(r'values \("([-\d.]+)', grp[grp.index(k):]).group(1))
             for k in ("fall_power", "rise_power")]
    leak = float(re.search(r"cell_leakage_power\s*:\s*([\d.]+)", body).group(1))
    ck_cap = _pin_cap(text, "DFF_X1", "CK")
    expected = sum(first) + (ck_cap + _wire1(text)) * V * V + leak * 1e-3
    assert act.toggles.sum() == 0
    assert act.clock_states[0].tolist() == [T, 0, 0, 0]
    from hdl.flows.energy import report_from_activity
    rep = report_from_activity(sim, act, model, top="top")
    assert rep.total_pj * 1000 / T == pytest.approx(expected, rel=1e-9)
    assert rep.categories_pj["clock"] * 1000 / T == pytest.approx(expected - leak * 1e-3,
                                                                  rel=1e-9)
    assert rep.per_cycle_pj.sum() == pytest.approx(rep.total_pj, rel=1e-12)
    # D toggling every cycle from cycle 1 on (T - 1 toggles): Q follows one cycle
    # later (T - 2 toggles within the run); the flop alternates between (D=1, Q=0) and
    # (D=0, Q=1) at its edges after the first.
    d = np.arange(T) % 2
    sim, model, act = _run(nangate45, net, {"d": d}, T)
    assert act.toggles[sim.nets.index("d")] == T - 1
    assert act.toggles[sim.nets.index("q")] == T - 2
    assert act.clock_states[0].tolist() == [1, T // 2, T // 2 - 1, 0]


def test_full_adder_exhaustive(nangate45, text):
    """FA_X1 on a sequence through every pair of input patterns: toggles of S and CO as
    Python computes them, and the switching energy by hand."""
    net = _netlist({"fa": ("FA_X1", {"A": "a", "B": "b", "CI": "ci", "S": "s", "CO": "co"})},
                   ["a", "b", "ci"], ["s", "co"])
    seq = [x for i in range(8) for j in range(8) for x in (i, j)]
    x = np.array(seq)
    ports = {"a": x & 1, "b": x >> 1 & 1, "ci": x >> 2 & 1}
    s = (ports["a"] ^ ports["b"] ^ ports["ci"])
    co = ((ports["a"] + ports["b"] + ports["ci"]) >= 2).astype(int)
    sim, model, act = _run(nangate45, net, ports, len(seq))
    n = {k: sim.nets.index(k) for k in ("a", "b", "ci", "s", "co")}
    assert act.toggles[n["s"]] == np.count_nonzero(np.diff(s))
    assert act.toggles[n["co"]] == np.count_nonzero(np.diff(co))
    expect = 0.0
    for k, sig in (("a", ports["a"]), ("b", ports["b"]), ("ci", ports["ci"])):
        c = _pin_cap(text, "FA_X1", {"a": "A", "b": "B", "ci": "CI"}[k]) + _wire1(text)
        expect += 0.5 * V * V * c * np.count_nonzero(np.diff(sig))
    expect += 0.5 * V * V * _wire1(text) * (act.toggles[n["s"]] + act.toggles[n["co"]])
    assert float(act.toggles @ model.switch) == pytest.approx(expect, rel=1e-9)


def test_unit_delay_glitch_by_hand(nangate45):
    """y = a XOR INV(INV(a)) is always 0 (zero delay: no toggles); with unit delays every
    toggle of a makes y pulse: 2 toggles of y per toggle of a."""
    net = _netlist({"u1": ("INV_X1", {"A": "a", "ZN": "n1"}),
                    "u2": ("INV_X1", {"A": "n1", "ZN": "n2"}),
                    "x": ("XOR2_X1", {"A": "a", "B": "n2", "Z": "y"})}, ["a"], ["y"])
    T = 30
    a = np.arange(T) // 3 % 2                        # a toggles every 3 cycles
    flips = np.count_nonzero(np.diff(a))
    _, _, zero = _run(nangate45, net, {"a": a}, T)
    sim, _, unit = _run(nangate45, net, {"a": a}, T, glitch=True)
    y = sim.nets.index("y")
    assert zero.toggles[y] == 0
    assert unit.toggles[y] == 2 * flips
    assert unit.rise[y] == unit.fall[y] == flips


def _mac_stream(mac, T, seed):
    rng = np.random.default_rng(seed)
    lo, hi = mac.operand_range
    a, b = rng.integers(lo, hi + 1, T), rng.integers(lo, hi + 1, T)
    rst = np.zeros(T, int)
    rst[:2] = 1
    return a, b, rst


def _mac_reference(mac, a, b, rst):
    """acc visible in each cycle: Python ints (int4/uint4 only)."""
    W, P = mac.acc_width, mac.pipeline
    acc, pend, out = 0, [0] * P, []
    for i in range(len(a)):
        out.append(acc % (1 << W))
        pend.append(0 if rst[i] else int(a[i]) * int(b[i]))
        if rst[i]:
            acc, pend = 0, [0] * (P + 1)
        acc += pend.pop(0)
    return out


@pytest.mark.parametrize("mac", [MacConfig(), MacConfig(pipeline=2, numerics="uint4", signed=False),
                                 MacConfig(multiplier="behavioral", pipeline=1)],
                         ids=lambda m: m.slug)
def test_mac_netlist_matches_python(nangate45, mac):
    """The mapped MAC simulated here gives the accumulator Python computes, in both
    modes (the unit-delay run settles to the zero-delay values), and unit delay counts at
    least the functional toggles of every net."""
    T = 300
    a, b, rst = _mac_stream(mac, T, 7)
    m = mapped_netlist(mac.verilog(), "mac", nangate45)
    sim = GateSim(m["netlist"], "mac", library_power(nangate45))
    ref = _mac_reference(mac, a, b, rst)
    acts = {}
    for glitch in (False, True):
        trace = []
        acts[glitch] = sim.run({"a": a & 15, "b": b & 15, "rst": rst}, T, glitch=glitch,
                               warmup=2, trace=trace)
        assert [t["acc"] for t in trace] == ref
    assert (acts[True].toggles >= acts[False].toggles).all()
    assert acts[True].toggles.sum() > 1.3 * acts[False].toggles.sum()
    # zero-delay toggles of acc bits are exactly the changes of the reference
    acc_bits = [sim.nets.index(f"acc[{i}]") for i in range(mac.acc_width)]
    refb = (np.array(ref)[:, None] >> np.arange(mac.acc_width)) & 1
    # counted cycles 2..T-1 compare with the cycle before each
    assert [acts[False].toggles[i] for i in acc_bits] == \
        np.count_nonzero(np.diff(refb[1:], axis=0), axis=0).tolist()


def _icarus_models(tmp_path, nangate45):
    from hdl.flows.synth import run_yosys
    shutil.copyfile(nangate45, tmp_path / "cells.lib")
    run_yosys("read_liberty -ignore_miss_func cells.lib\nwrite_verilog -noattr models.v\n",
              {}, tmp_path)
    return tmp_path / "models.v"


@pytest.mark.skipif(shutil.which("iverilog") is None, reason="Icarus (iverilog) not installed")
def test_mac_netlist_matches_icarus(nangate45, tmp_path):
    """The same mapped netlist (its Verilog) on Yosys' Nangate45 cell models in Icarus:
    the accumulator in every cycle equals this simulator's zero-delay trace."""
    mac = MacConfig(pipeline=1)
    T = 200
    a, b, rst = _mac_stream(mac, T, 3)
    m = mapped_netlist(mac.verilog(), "mac", nangate45)
    models = _icarus_models(tmp_path, nangate45)
    (tmp_path / "netlist.v").write_text(m["verilog"])
    (tmp_path / "stim.hex").write_text(
        "".join(f"{(int(a[i]) & 15) | (int(b[i]) & 15) << 4 | int(rst[i]) << 8:03x}\n"
                for i in range(T)))
    (tmp_path / "tb.v").write_text(f"""
module tb;
  reg clk = 0; reg rst; reg [3:0] a, b; wire [15:0] acc;
  reg [8:0] stim [0:{T - 1}];
  integer t;
  mac dut(.clk(clk), .rst(rst), .a(a), .b(b), .acc(acc));
  initial begin
    $readmemh("stim.hex", stim);
    for (t = 0; t < {T}; t = t + 1) begin
      {{rst, b, a}} = stim[t];
      #4 $display("%0d %0d", t, acc);
      #1 clk = 1; #5 clk = 0;
    end
    $finish;
  end
endmodule
""")
    subprocess.run(["iverilog", "-o", "sim.vvp", "tb.v", "netlist.v", str(models)],
                   cwd=tmp_path, check=True, capture_output=True)
    out = subprocess.run(["vvp", "-n", "sim.vvp"], cwd=tmp_path, check=True,
                         capture_output=True, text=True).stdout
    icarus = {int(t): v for t, v in (ln.split() for ln in out.splitlines() if ln[:1].isdigit())}
    sim = GateSim(m["netlist"], "mac", library_power(nangate45))
    trace = []
    sim.run({"a": a & 15, "b": b & 15, "rst": rst}, T, trace=trace)
    assert len(icarus) == T
    for t in range(2, T):                        # before reset Icarus' flops are X
        assert int(icarus[t]) == trace[t]["acc"], t


def test_design_energy_api_and_cache(nangate45, tmp_path):
    """The API: categories and per-cycle totals add up; a second call is read from the
    cache (one .npz, no temporary left) and gives the same numbers; bad stimuli are
    one-line errors."""
    mac = MacConfig()
    T = 200
    a, b, rst = _mac_stream(mac, T, 11)
    stim = {"a": a & 15, "b": b & 15, "rst": rst}
    r1 = design_energy(mac.verilog(), "mac", stim, warmup=2, cache=tmp_path)
    r2 = design_energy(mac.verilog(), "mac", stim, warmup=2, cache=tmp_path)
    assert not r1.cached and r2.cached
    assert r1.total_pj == pytest.approx(r2.total_pj, rel=1e-12)
    assert sum(r1.categories_pj.values()) == pytest.approx(r1.total_pj, rel=1e-9)
    assert sum(r1.components_pj.values()) == pytest.approx(r1.total_pj, rel=1e-9)
    assert r1.per_cycle_pj.shape == (T - 2,)
    assert r1.per_cycle_pj.sum() == pytest.approx(r1.total_pj, rel=1e-9)
    assert set(r1.categories_pj) == set(ENERGY_CATEGORIES)
    assert r1.categories_pj["arithmetic"] > r1.categories_pj["accumulator"] > 0
    assert r1.categories_pj["clock"] > 0 and r1.categories_pj["leakage"] > 0
    files = list((tmp_path / "energy" / "activity").iterdir())
    assert len(files) == 1 and files[0].suffix == ".npz"
    whole = files[0].read_bytes()
    for damaged in (whole[:len(whole) // 2], b""):    # a truncated or empty capture
        files[0].write_bytes(damaged)
        r3 = design_energy(mac.verilog(), "mac", stim, warmup=2, cache=tmp_path)
        assert not r3.cached and r3.total_pj == pytest.approx(r1.total_pj, rel=1e-12)
        assert design_energy(mac.verilog(), "mac", stim, warmup=2, cache=tmp_path).cached
    # idle operands: only clock, leakage and nothing else
    idle = design_energy(mac.verilog(), "mac", {"rst": rst}, warmup=3, cache=False)
    assert idle.components_pj["switching"] == 0
    assert idle.total_pj < 0.4 * r1.total_pj
    # an ideal clock gate that never enables: no clock energy at all
    sim = GateSim(mapped_netlist(mac.verilog(), "mac", nangate45)["netlist"], "mac",
                  library_power(nangate45))
    gated = design_energy(mac.verilog(), "mac", {"rst": rst}, warmup=2, cache=False,
                          clock_enable=(np.zeros(len(sim.flops), int), np.zeros((T, 1), bool)))
    assert gated.categories_pj["clock"] == 0
    with pytest.raises(ValueError, match="no input port 'x'"):
        design_energy(mac.verilog(), "mac", {"x": a}, cache=False)
    with pytest.raises(ValueError, match="expected 200 cycles"):
        design_energy(mac.verilog(), "mac", {"a": a, "b": b[:10]}, cycles=200, cache=False)


def test_liberty_unit_mismatch_is_one_line(tmp_path, nangate45):
    bad = tmp_path / "bad.lib"
    bad.write_text(nangate45.read_text().replace("capacitive_load_unit    \t\t  (1,ff);",
                                                "capacitive_load_unit (1,nf);", 1))
    with pytest.raises(LibertyError, match="unsupported capacitive_load_unit") as info:
        library_power(bad)
    assert "\n" not in str(info.value)


@pytest.mark.skipif(shutil.which("sta") is None, reason="OpenSTA (sta) not installed")
def test_switching_energy_agrees_with_opensta(nangate45):
    """OpenSTA at activity 1 per instance, times the same toggles: within 2% of the
    project's switching energy on the MAC, in both modes."""
    from hdl.flows.sta_power import opensta_power, switching_cross_check
    mac = MacConfig()
    T = 300
    a, b, rst = _mac_stream(mac, T, 5)
    m = mapped_netlist(mac.verilog(), "mac", nangate45)
    lib = library_power(nangate45)
    sim = GateSim(m["netlist"], "mac", lib)
    model = EnergyModel(sim, nangate45)
    power = opensta_power(m["verilog"], "mac", nangate45, wire_load=model.wire_load,
                          cache=False)
    for glitch in (False, True):
        _, act, _ = capture_activity(m["netlist"], "mac", lib,
                                     {"a": a & 15, "b": b & 15, "rst": rst}, T,
                                     glitch=glitch, warmup=2, cache=False, sim=sim)
        check = switching_cross_check(sim, act, model, power, period_ns=1.0)
        assert check["missing"] == 0
        assert check["ratio"] == pytest.approx(1.0, abs=0.02)


def _cli(argv, capsys):
    from sim.cli import main
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_energy_mac_and_bad_input(nangate45, tmp_path, capsys):
    """``systolic energy mac``: a table and a JSON whose categories add up to pJ/MAC;
    bad input: one line, exit 2, no file written."""
    import json
    out_json = tmp_path / "e.json"
    code, out, err = _cli(["energy", "mac", "--cycles", "200", "--zero-delay", "--json",
                           out_json], capsys)
    assert code == 0, err
    assert "pJ/MAC" in out and "zero delay" in out
    data = json.loads(out_json.read_text())
    (res,) = data["results"]
    assert res["macs"] == 200 and res["glitch"] is False
    assert sum(res["categories_pj_per_mac"].values()) == pytest.approx(res["pj_per_mac"])
    for argv, what in ([["energy", "array", "--mode", "h2"], "--mode"],
                       [["energy", "array", "--compare"], "--compare"],
                       [["energy", "mac", "--cycles", "5"], "--cycles"],
                       [["energy", "mac", "--data", "nope"], "--data"]):
        bad = tmp_path / "bad.json"
        code, out, err = _cli(argv + ["--json", bad], capsys)
        assert code == 2 and err.count("\n") == 1 and what in err
        assert not bad.exists()


@pytest.mark.parametrize("dataflow", ["ws", "os"])
def test_array_stimulus_computes_the_gemm(nangate45, dataflow):
    """The mapped 2x3 array, played the GEMM schedule as the energy study does (reset,
    then the cocotb bench's cycles), puts A @ B on its outputs in the cycles the schedule
    names; its energy has data movement and drain/partial sums beside the arithmetic."""
    from hdl.array import ArrayConfig
    from sim.drivers.gemm import acc_values, build_schedule
    from sim.studies.energy_study import RESET_CYCLES, array_energy, array_stimulus
    cfg = ArrayConfig(rows=2, cols=3, dataflow=dataflow)
    rng = np.random.default_rng(4)
    A, B = rng.integers(-8, 8, (3, 4)), rng.integers(-8, 8, (4, 5))
    ports, T, warmup = array_stimulus(cfg, A, B)
    sched = build_schedule(A, B, cfg)
    m = mapped_netlist(cfg.verilog(), "systolic_array", nangate45)
    sim = GateSim(m["netlist"], "systolic_array", library_power(nangate45))
    trace = []
    sim.run(ports, T, trace=trace)
    W, L = cfg.mac.acc_width, cfg.out_lanes
    C = np.zeros((3, 5), np.int64)
    for t, lane, row, col in zip(sched.t, sched.lane, sched.row, sched.col):
        seen = trace[t + 1 + RESET_CYCLES]
        assert seen["c_valid"] >> int(lane) & 1
        raw = seen["c_out"] >> (int(lane) * W) & ((1 << W) - 1)
        if row >= 0 and col >= 0:
            C[row, col] += int(acc_values(np.array([raw]), cfg.mac)[0])
    assert (C == A @ B).all()
    assert len(trace) == T and L > 0
    rep, per = array_energy(cfg, A, B, cache=False)
    assert rep.categories_pj["data_movement"] > 0 and rep.categories_pj["arithmetic"] > 0
    assert rep.categories_pj["drain" if dataflow == "ws" else "accumulator"] > 0
    assert per == pytest.approx(rep.total_pj / (3 * 4 * 5))


def test_flop_blocks_by_pe(nangate45):
    """Flops grouped by the PE they sit in (the clock-gating API's blocks)."""
    from hdl.array import ArrayConfig
    from hdl.flows.energy import flop_blocks, pe_position
    assert pe_position("row[3].col[12].u_pe._5_") == (3, 12)
    assert pe_position("_5_") is None
    cfg = ArrayConfig(rows=2, cols=2, dataflow="ws")
    m = mapped_netlist(cfg.verilog(), "systolic_array", nangate45)
    sim = GateSim(m["netlist"], "systolic_array", library_power(nangate45))
    block, keys = flop_blocks(sim, pe_position)
    assert sorted(keys) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    counts = np.bincount(block)
    assert len(set(counts.tolist())) <= 2 and counts.sum() == len(sim.flops)


def test_cli_synth_energy_column(nangate45, tmp_path, capsys):
    import json
    out_json = tmp_path / "s.json"
    code, out, err = _cli(["synth", "mac", "--energy", "--json", out_json], capsys)
    assert code == 0, err
    assert "### Energy" in out
    (row,) = json.loads(out_json.read_text())["energy"]
    assert row["glitch"] is True and row["macs"] == 2000 and row["pj_per_mac"] > 0
    code, out, err = _cli(["synth", "mx-scale", "--energy"], capsys)
    assert code == 2 and "--energy" in err and err.count("\n") == 1


def test_liberty_delay_timing(nangate45):
    """Timed (Liberty-delay) simulation: the MAC still computes what Python says, every
    net toggles at least its functional toggles; a hand case: y = a XOR (a through two
    inverters) pulses once per toggle of a whatever the delays, as long as the inverter
    path is slower."""
    mac = MacConfig(pipeline=1)
    T = 200
    a, b, rst = _mac_stream(mac, T, 9)
    m = mapped_netlist(mac.verilog(), "mac", nangate45)
    sim = GateSim(m["netlist"], "mac", library_power(nangate45))
    model = EnergyModel(sim, nangate45)
    steps = model.delay_steps()
    assert (steps >= 1).all() and steps.max() > 1 and (model.delay_ps > 0).all()
    trace, acts = [], {}
    acts["liberty"] = sim.run({"a": a & 15, "b": b & 15, "rst": rst}, T, warmup=2,
                              delays=steps, trace=trace)
    assert [t["acc"] for t in trace] == _mac_reference(mac, a, b, rst)
    acts["zero"] = sim.run({"a": a & 15, "b": b & 15, "rst": rst}, T, warmup=2)
    assert (acts["liberty"].toggles >= acts["zero"].toggles).all()
    assert acts["liberty"].timing == "liberty" and acts["zero"].timing == "zero"
    net = _netlist({"u1": ("INV_X1", {"A": "a", "ZN": "n1"}),
                    "u2": ("INV_X1", {"A": "n1", "ZN": "n2"}),
                    "x": ("XOR2_X1", {"A": "a", "B": "n2", "Z": "y"})}, ["a"], ["y"])
    lib = library_power(nangate45)
    small = GateSim(net, "top", lib)
    a = np.arange(30) // 3 % 2
    for delays in ([1, 1, 1], [3, 2, 4], [1, 1, 9]):
        order = {small.e_cell[i]: i for i in range(3)}
        d = np.zeros(3, np.int64)
        for cell, v in zip(("u1", "u2", "x"), delays):
            d[order[cell]] = v
        act = small.run({"a": a}, 30, delays=d)
        assert act.toggles[small.nets.index("y")] == 2 * np.count_nonzero(np.diff(a))
    with pytest.raises(ValueError, match="delays"):
        small.run({"a": a}, 30, delays=[0, 1, 1])
    rep = design_energy(mac.verilog(), "mac", {"a": a[:20] & 15, "rst": rst[:20]},
                        timing="liberty", warmup=2, cache=False)
    assert rep.timing == "liberty"
    with pytest.raises(ValueError, match="unknown timing"):
        design_energy(mac.verilog(), "mac", {"rst": rst}, timing="spice", cache=False)


def test_split_array_energy_has_port_logic(nangate45):
    """A 4x4 split array (2x2 tiles) in mode quad: the top's split muxes and port logic
    are their own category; four GEMMs count as their MACs together."""
    from hdl.split import SplitConfig
    from sim.studies.energy_study import split_energy
    cfg = SplitConfig(4, 4, (2, 2), MacConfig(), dataflow="ws")
    rng = np.random.default_rng(2)
    jobs = [(rng.integers(-8, 8, (3, 4)), rng.integers(-8, 8, (4, 2))) for _ in range(4)]
    rep, per = split_energy(cfg, "quad", jobs, cache=False)
    assert per == pytest.approx(rep.total_pj / (4 * 3 * 4 * 2))
    assert rep.categories_pj["ports"] > 0 and rep.categories_pj["data_movement"] > 0
    assert rep.categories_pj["arithmetic"] > rep.categories_pj["ports"]


@pytest.mark.parametrize("precision", ["int8"])
def test_fused_array_stimulus_computes_the_gemm(nangate45, precision):
    """The mapped fusable 4x2 WS array (digits up to int8), played a W4A8 or int8 GEMM's
    digit-step schedule as the precision bench's energy part does, puts the int8 A @ B
    on its outputs (int64 reference); more energy per useful MAC than in int4."""
    from hdl.array import ArrayConfig
    from hdl.mac import MacConfig
    from sim.drivers.gemm import acc_values, build_schedule
    from sim.drivers.operands import check_operands, precision_operands
    from sim.studies.energy_study import RESET_CYCLES, array_energy, array_stimulus
    cfg = ArrayConfig(rows=4, cols=2, dataflow="ws", fusion="int8",
                      mac=MacConfig(acc_width=24))
    A, B = precision_operands(5, 3, 5, 3, precision)
    A[0, 0], B[0, 0] = -128, (-128 if precision == "int8" else -8)
    ports, T, _ = array_stimulus(cfg, A, B, precision)
    sched = build_schedule(*check_operands(A, B, cfg.mac, precision), cfg, precision)
    m = mapped_netlist(cfg.verilog(), "systolic_array", nangate45)
    sim = GateSim(m["netlist"], "systolic_array", library_power(nangate45))
    trace = []
    sim.run(ports, T, trace=trace)
    W = cfg.mac.acc_width
    C = np.zeros((3, 3), np.int64)
    for t, lane, row, col in zip(sched.t, sched.lane, sched.row, sched.col):
        seen = trace[t + 1 + RESET_CYCLES]
        raw = seen["c_out"] >> (int(lane) * W) & ((1 << W) - 1)
        if row >= 0 and col >= 0:
            C[row, col] += int(acc_values(np.array([raw]), cfg.mac)[0])
    assert (C == A.astype(np.int64) @ B.astype(np.int64)).all()
    _, fused = array_energy(cfg, A, B, precision=precision, cache=False)
    _, int4 = array_energy(cfg, np.clip(A, -8, 7), np.clip(B, -8, 7), cache=False)
    assert fused > int4


def test_clock_gate_cell_by_hand(nangate45, text):
    """A CLKGATE_X1 clocking a DFF_X1 whose D toggles every cycle: the flop takes D only in
    the cycles whose enable is 1 (the gate's latch holds the enable of the low phase before
    the edge), is clocked only then, and the gate's own clock pin costs, when closed, its
    capacitance (plus the clock wire at fanout 1) x V^2 and its `!E & !GCK` arc (first
    entries at the smallest slew), read from the text."""
    net = _netlist({"icg": ("CLKGATE_X1", {"CK": "clk", "E": "en", "GCK": "gck"}),
                    "ff": ("DFF_X1", {"D": "d", "CK": "gck", "Q": "q"})},
                   ["clk", "en", "d"], ["q"])
    T = 24
    en = np.array([1, 0, 0, 1, 1, 0, 1, 0] * 3)
    d = np.arange(T) % 2
    lib = library_power(nangate45)
    sim = GateSim(net, "top", lib)
    model = EnergyModel(sim, nangate45)
    trace = []
    act = sim.run({"en": en, "d": d}, T, weights=model.weights(), trace=trace)
    q, want = 0, []
    for t in range(T):                       # q after edge t: d[t] if en[t], else held
        want.append(q)
        q = d[t] if en[t] else q
    assert [c["q"] for c in trace] == want
    assert act.clock_states.sum() == en.sum() and act.gates_open.tolist() == [en.sum()]
    body = _cell_text(text, "CLKGATE_X1")
    ck = body[body.index("pin (CK)"):body.index("pin (E)")]
    grp = ck[ck.index('"!E & !GCK"'):]
    first = [float(re.search(r'values \("([-\d.]+)', grp[grp.index(k):]).group(1))
             for k in ("fall_power", "rise_power")]
    closed = sum(first) + (_pin_cap(text, "CLKGATE_X1", "CK") + _wire1(text)) * V * V
    assert model.gate[0, 0] == pytest.approx(closed, rel=1e-9)
    assert model.gate[0, 1] > model.gate[0, 0]
    # never open: the flop is never clocked; the clock energy is the gate's alone
    from hdl.flows.energy import report_from_activity
    act0 = sim.run({"en": np.zeros(T, int), "d": d}, T, weights=model.weights())
    rep = report_from_activity(sim, act0, model, top="top")
    assert act0.clock_states.sum() == 0
    assert rep.categories_pj["clock"] * 1000 == pytest.approx(T * closed, rel=1e-9)
    assert rep.per_cycle_pj.sum() == pytest.approx(rep.total_pj, rel=1e-12)
