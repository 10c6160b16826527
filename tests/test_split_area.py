"""Area overhead of the split logic (sim.studies.split_area): the gate counts the
generator writes, counted here from the boundary rules of hdl.split; the per-type delta
and the overhead arithmetic on fake synthesis results; one small real synthesis."""
from types import SimpleNamespace

import pytest

import hdl.flows.synth
from hdl.array import TOPLEVEL
from hdl.mac import MacConfig
from hdl.split import FEATURES, SPLIT_TOPLEVEL, SplitConfig
from sim.studies.split_area import _analytic_counts, _delta_by_type, split_area_overhead

N = 4                                   # operand bits


def _drain_cuts(R, C, TR, TC):
    """Links of the OS anti-diagonal drain chain, PE(i-1, j+1) -> PE(i, j), that join
    two different tiles."""
    return sum(1 for i in range(1, R) for j in range(C - 1)
               if ((i - 1) // TR, (j + 1) // TC) != (i // TR, j // TC))


@pytest.mark.parametrize("R,C,tile,W", [(4, 4, 2, 16), (8, 4, (2, 4), 12), (6, 6, 3, 8),
                                        (8, 8, (4, 2), 24), (4, 4, 4, 16)])
def test_analytic_counts_ws(R, C, tile, W):
    mac = MacConfig(acc_width=W)
    TR, TC = (tile, tile) if isinstance(tile, int) else tile
    GR, GC = R // TR, C // TC
    mux = _analytic_counts(SplitConfig(R, C, tile, mac))
    # per row at each column boundary: a, swap, valid; per column at each row boundary:
    # W+1 cut gates (psum, pv), weight and w_en muxes
    assert mux == {"act_mux": {"mux2": (GC - 1) * R * (N + 2)},
                   "psum_cut": {"and2": (GR - 1) * C * (W + 1)},
                   "w_mux": {"mux2": (GR - 1) * C * (N + 1)}}
    ports = _analytic_counts(SplitConfig(R, C, tile, mac, style="ports"))
    assert ports == {"act_mux": {"mux2": 0}, "psum_cut": mux["psum_cut"],
                     "w_mux": {"mux2": 0}}


def test_analytic_counts_by_hand():
    # 4x4 in 2x2 tiles, W=16: one boundary each way
    assert _analytic_counts(SplitConfig(4, 4, 2)) == {
        "act_mux": {"mux2": 24}, "psum_cut": {"and2": 68}, "w_mux": {"mux2": 20}}
    # OS: the drain chain crosses a boundary on 5 of its 9 links (3 on the row
    # boundary, one more on each side of the column boundary)
    os = SplitConfig(4, 4, 2, dataflow="os")
    assert _analytic_counts(os) == {"act_mux": {"mux2": 20}, "psum_cut": {"and2": 5 * 16},
                                    "w_mux": {"mux2": 16}}
    osdb = SplitConfig(4, 4, 2, dataflow="os", fold_overlap=True)
    assert _analytic_counts(osdb)["psum_cut"] == {"and2": 5 * 17}


@pytest.mark.parametrize("R,C,tile", [(4, 4, 2), (8, 4, (2, 4)), (6, 6, 3), (8, 8, (4, 2)),
                                      (5, 7, 1)])
@pytest.mark.parametrize("overlap", [False, True])
def test_analytic_counts_os(R, C, tile, overlap):
    W = 16
    TR, TC = (tile, tile) if isinstance(tile, int) else tile
    GR, GC = R // TR, C // TC
    got = _analytic_counts(SplitConfig(R, C, tile, dataflow="os", fold_overlap=overlap))
    assert got == {"act_mux": {"mux2": (GC - 1) * R * (N + 1)},       # a and the flag
                   "psum_cut": {"and2": _drain_cuts(R, C, TR, TC) * (W + overlap)},
                   "w_mux": {"mux2": (GR - 1) * C * N}}                 # B


def _fake(cells_by_type, *, flops=0):
    t = sum(n * hdl.flows.synth.CMOS_COST[k] for k, n in cells_by_type.items())
    return SimpleNamespace(cells_by_type=cells_by_type, transistors=t,
                           cells=sum(cells_by_type.values()), flops=flops, cached=True)


def test_delta_by_type():
    base = SimpleNamespace(cells_by_type={"$_AND_": 10, "$_XOR_": 4, "$_OR_": 3})
    split = SimpleNamespace(cells_by_type={"$_AND_": 12, "$_XOR_": 4, "$_MUX_": 5,
                                           "$_OR_": 1, "$_WEIRD_": 2})
    cost = {"$_AND_": 6, "$_XOR_": 12, "$_OR_": 6, "$_MUX_": 12}
    assert _delta_by_type(base, split, cost) == {
        "$_AND_": {"cells": 2, "transistors": 12},
        "$_MUX_": {"cells": 5, "transistors": 60},
        "$_OR_": {"cells": -2, "transistors": -12},
        "$_WEIRD_": {"cells": 2, "transistors": 0}}          # unchanged types left out
    assert list(_delta_by_type(base, split, cost)) == ["$_AND_", "$_MUX_", "$_OR_",
                                                       "$_WEIRD_"]


def test_overhead_arithmetic_on_fake_results(monkeypatch):
    cfg = SplitConfig(4, 4, 2)
    by_text = {cfg.verilog(): _fake({"$_AND_": 110, "$_MUX_": 30, "$_DFF_P_": 40}, flops=40)}
    for i, feat in enumerate(FEATURES):
        by_text[cfg.verilog(features=(feat,))] = _fake({"$_AND_": 100 + i, "$_DFF_P_": 40})
    base = _fake({"$_AND_": 100, "$_MUX_": 10, "$_DFF_P_": 40}, flops=40)  # 6*100+12*10+16*40
    calls = []

    def fake_synthesize(text, *, top, flow, ice40, cache=True):
        calls.append((top, flow, ice40))
        return base if top == TOPLEVEL else by_text[text]

    monkeypatch.setattr(hdl.flows.synth, "synthesize", fake_synthesize)
    out = split_area_overhead(4, 4, 2, flow="synth -booth")
    assert calls == [(TOPLEVEL, "synth -booth", False)] + \
        [(SPLIT_TOPLEVEL, "synth -booth", False)] * (1 + len(FEATURES))
    assert out["base"] == {"transistors": 1360, "cells": 150, "flops": 40, "seconds": 0.0}
    assert out["split"] == {"transistors": 1660, "cells": 180, "flops": 40, "seconds": 0.0}
    assert out["extra_transistors"] == 300 and out["extra_cells"] == 30
    assert out["transistor_overhead_pct"] == round(100 * 300 / 1360, 3) == 22.059
    assert out["cell_overhead_pct"] == 20.0
    assert out["delta_by_type"] == {"$_AND_": {"cells": 10, "transistors": 60},
                                    "$_MUX_": {"cells": 20, "transistors": 240}}
    # each feature alone: 100 + i ANDs and no muxes against the base's 100 ANDs, 10 muxes
    assert out["breakdown"] == {
        feat: {"transistors": 6 * i - 120, "cells": i - 10,
               "transistor_pct": round(100 * (6 * i - 120) / 1360, 3), "seconds": 0.0}
        for i, feat in enumerate(FEATURES)}
    assert out["analytic_gates"] == _analytic_counts(cfg)
    assert (out["array"], out["tile"], out["style"], out["dataflow"], out["flow"]) == \
        ("4x4", "2x2", "mux", "ws", "synth -booth")
    # the ports style has no per-feature breakdown
    calls.clear()
    by_text[SplitConfig(4, 4, 2, style="ports").verilog()] = base
    out = split_area_overhead(4, 4, 2, style="ports")
    assert len(calls) == 2 and "breakdown" not in out and out["extra_transistors"] == 0
    assert out["config_bits"] == {"row_cut": 1} and out["config_register_transistors"] == 16


def test_small_real_synthesis():
    """2x2 array of 1x1 tiles, W=8, through Yosys: the overhead adds up, by type too."""
    W, R, C = 8, 2, 2
    out = split_area_overhead(R, C, 1, MacConfig(acc_width=W), breakdown=False)
    base, split = out["base"], out["split"]
    assert split["transistors"] > base["transistors"] > 0
    assert split["flops"] == base["flops"] > 0              # the split word is ports
    assert out["extra_transistors"] == split["transistors"] - base["transistors"]
    assert out["extra_cells"] == split["cells"] - base["cells"]
    assert out["transistor_overhead_pct"] == pytest.approx(
        100 * out["extra_transistors"] / base["transistors"], abs=1e-3)
    delta = out["delta_by_type"]
    assert sum(d["transistors"] for d in delta.values()) == out["extra_transistors"]
    assert sum(d["cells"] for d in delta.values()) == out["extra_cells"]
    assert delta["$_MUX_"]["cells"] > 0                     # the boundary muxes are there
    # edge ports of the WS array (hdl.array) and the extra ones at the one row and one
    # column boundary (hdl.split)
    assert out["port_bits_base"] == R * N + 2 * R + C * N + C + C * W + C
    assert out["extra_ports"] == {"a_in_x": R * N, "a_swap_x": R, "a_valid_x": R,
                                  "w_in_x": C * N, "w_en_x": C, "c_out_x": C * W,
                                  "c_valid_x": C}
    assert out["extra_port_bits"] == sum(out["extra_ports"].values())
    assert out["config_bits"] == {"row_cut": 1, "col_cut": 1}
    assert out["config_register_transistors"] == 2 * 16     # one 16-transistor flop a bit
    assert out["analytic_gates"] == {"act_mux": {"mux2": R * (N + 2)},
                                     "psum_cut": {"and2": C * (W + 1)},
                                     "w_mux": {"mux2": C * (N + 1)}}
