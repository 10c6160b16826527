"""Energy per token of a decode layer (sim.studies.token_energy): the tile capture's three
segments against independent runs, and the combination against hand counts, on a 4x4
split array of 2x2 tiles."""
import json

import numpy as np
import pytest

from hdl.array import ArrayConfig
from hdl.split import SplitConfig
from sim.models.workload import model_shape
from sim.studies import token_energy as te
from sim.studies.token_energy import (TileEnergy, decode_token_energy, program_energy,
                                      tile_energy)

CONFIG = SplitConfig(4, 4, 2)
TINY = {"model_type": "llama", "hidden_act": "silu", "hidden_size": 8,
        "intermediate_size": 12, "num_attention_heads": 4, "num_key_value_heads": 2,
        "num_hidden_layers": 3, "vocab_size": 20}
# made-up per tile-cycle energies, exact in binary floating point
HAND = TileEnergy(2, 2, busy_pj=3.0, idle_pj=1.0, gated_pj=0.125, icg_pj=0.0625)
HAND_PE = TileEnergy(2, 2, busy_pj=1.5, idle_pj=0.25, gated_pj=0.5, icg_pj=0.0625)


def test_tile_capture_segments(tmp_path):
    from sim.studies.energy_study import array_energy, operands
    t = tile_energy(CONFIG, gemv=(4, 4), idle=12, settle=4, gated=8, cache=tmp_path)
    assert (t.rows, t.cols, t.idle_cycles, t.gated_cycles) == (2, 2, 8, 8)
    # busy: the same GEMV alone (no idle tail, no clock enable) gives the same mean
    A, B = operands("uniform", 1, 4, 4, ArrayConfig(2, 2).mac, seed=0)
    rep, _ = array_energy(ArrayConfig(2, 2, "ws"), A, B, cache=False)
    assert t.busy_cycles == rep.cycles
    assert t.busy_pj == pytest.approx(rep.total_pj / rep.cycles, rel=1e-9)
    # gated: nothing switches, nothing is clocked: leakage alone
    assert t.gated_pj == pytest.approx(t.leakage_pj, rel=1e-9)
    assert t.gated_pj < t.idle_pj < t.busy_pj
    again = tile_energy(CONFIG, gemv=(4, 4), idle=12, settle=4, gated=8, cache=tmp_path)
    assert again.cached and again.busy_pj == t.busy_pj
    with pytest.raises(ValueError, match="settle < idle"):
        tile_energy(CONFIG, idle=4, settle=4)


def test_pe_gated_tile_capture(tmp_path):
    """The same three segments on the tile with clock gates in every PE: the busy GEMV
    and the idle tile cost less than on the plain tile (fewer flops clocked), the gated
    segment costs the plain tile's leakage plus the PE gates' own leakage and clock pins."""
    from dataclasses import replace
    kw = dict(gemv=(8, 4), idle=12, settle=4, gated=8, cache=tmp_path)
    plain = tile_energy(CONFIG, **kw)
    gated = tile_energy(replace(CONFIG, pe_gate=True), **kw)
    assert gated.busy_cycles == plain.busy_cycles
    assert gated.busy_pj < plain.busy_pj
    assert gated.idle_pj < 0.5 * plain.idle_pj
    assert gated.gated_pj > plain.gated_pj


def test_program_energy_hand_count():
    # whole: the four tiles busy over the job's 22 cycles, never gated
    whole = program_energy([("whole", [[(1, 8, 4)]])], CONFIG, HAND)
    L = whole["cycles"]
    assert whole["busy"] == 4 * L and whole["gated"] == 0
    assert whole["ungated_pj"] == 4 * L * 3.0
    assert whole["gated_pj"] == 4 * L * (3.0 + 0.0625)           # + the gates' own energy
    # tile 0 runs 1x8x4, tile 1 runs 1x32x4 (the program's length), tiles 2, 3 empty
    progs = [[("tiles", [[(1, 8, 4)], None, None, None])],
             [("tiles", [[(1, 8, 4)], [(1, 32, 4)], None, None])]]
    one = program_energy(progs[0], CONFIG, HAND)
    L0 = one["cycles"]
    assert one["ungated_pj"] == L0 * 3.0 + 3 * L0 * 1.0
    assert one["gated_pj"] == L0 * 3.0 + 3 * L0 * 0.125 + 4 * L0 * 0.0625
    two = program_energy(progs[1], CONFIG, HAND)
    L1 = two["cycles"]
    assert L1 > L0 + 4
    hold = 4                          # CLOCK_HOLD, P = 0, WS: no drain tail
    # tile 0: busy L0, clocked idle `hold`, gated the rest; tile 1 busy all L1
    assert two["ungated_pj"] == (L0 + L1) * 3.0 + ((L1 - L0) + 2 * L1) * 1.0
    assert two["gated_pj"] == ((L0 + L1) * 3.0 + hold * 1.0
                               + (L1 - L0 - hold + 2 * L1) * 0.125 + 4 * L1 * 0.0625)


def test_icg_energy_from_the_liberty_tables():
    """CLKGATE_X1 of Nangate45, by hand from its tables (largest entries, fJ): CK pin
    1.837892 fF x 1.1^2; CK arcs: max(5.78288 + 3.467117, 8.704774 + 0); GCK arcs:
    max(12.3525 + 0, 9.446854 + 7.324642); leakage 48.64726 nW x 1 ns."""
    hand = (1.837892 * 1.1 ** 2 + max(5.78288 + 3.467117, 8.704774)
            + max(12.3525, 9.446854 + 7.324642) + 48.64726e-3)
    assert te.icg_cycle_pj() == pytest.approx(hand * 1e-3, rel=1e-9)


def test_decode_token_energy_tiny_model():
    model = model_shape(TINY, name="tiny")
    r = decode_token_energy(model, CONFIG, context=8, batch=2, tile=HAND, pe_tile=HAND_PE)
    pl, pm = r["per_layer_pj"], r["per_model_pj"]
    assert list(pl) == list(te.VARIANTS + te.PE_VARIANTS)
    for name in ("whole", "split"):
        p = r["programs"][name]
        total = p["cycles"] * p["tiles"]
        assert p["busy"] + p["idle_clocked"] + p["gated"] == total
        assert pl[f"{name}_ungated"] == pytest.approx(
            (p["busy"] * 3.0 + (total - p["busy"]) * 1.0) / 2)
        assert pl[f"{name}_gated"] == pytest.approx(
            (p["busy"] * 3.0 + p["idle_clocked"] * 1.0 + p["gated"] * 0.125
             + total * 0.0625) / 2)
        assert pl[f"{name}_pe_gated"] == pytest.approx(
            (p["busy"] * 1.5 + p["idle_clocked"] * 0.25 + p["gated"] * 0.5
             + total * 0.0625) / 2)
    assert all(pm[v] == pytest.approx(3 * pl[v]) for v in pl)
    assert r["ratios"]["split_gated"] == pytest.approx(pl["split_gated"] / pl["whole_ungated"])
    assert r["ratios"]["split_pe_gated_over_split_ungated"] == pytest.approx(
        pl["split_pe_gated"] / pl["split_ungated"])
    with pytest.raises(ValueError, match="2x2 tiles"):
        decode_token_energy(model, CONFIG, tile=TileEnergy(4, 4, 1.0, 1.0, 1.0),
                            pe_tile=HAND_PE)
    # OS has no PE gates: the four variants only
    os_r = decode_token_energy(model, SplitConfig(4, 4, 2, dataflow="os"), context=8,
                               tile=HAND)
    assert list(os_r["per_layer_pj"]) == list(te.VARIANTS) and os_r["pe_tile"] is None


def test_cli_workload_energy(tmp_path, capsys, monkeypatch):
    from sim.cli import main
    real = te.tile_energy
    monkeypatch.setattr(te, "tile_energy",
                        lambda config, **kw: real(config, gemv=(4, 4), idle=12, settle=4,
                                                  gated=8, cache=tmp_path))
    cfg = tmp_path / "tiny.json"
    cfg.write_text(json.dumps(TINY))
    out = tmp_path / "w.json"
    code = main(["workload", str(cfg), "--context", "8", "--energy", "--rows", "4",
                 "--cols", "4", "--tile", "2", "--json", str(out)])
    text = capsys.readouterr().out
    assert code in (0, None)
    assert "Energy per token" in text and "split gated / whole ungated" in text
    e = json.loads(out.read_text())["energy"]
    assert e["model"] == "tiny" and e["tile"]["rows"] == 2
    assert np.isfinite(list(e["per_layer_pj"].values())).all()
    assert main(["workload", str(cfg), "--phase", "prefill", "--energy"]) == 2
    assert "--energy: only for --phase decode" in capsys.readouterr().err


def test_decode_token_energy_two_kinds_of_layer():
    """Sliding-window and full-attention layers: each kind priced apart, the model the
    sum over kinds of (energy per layer x its layers)."""
    from sim.models.workload import Phase
    from sim.studies.workload_gating import layer_programs
    model = model_shape(dict(TINY, sliding_window=4, layer_types=[
        "sliding_attention", "full_attention", "full_attention"]), name="tiny-window")
    kinds = model.kinds()
    assert [n for _, n in kinds] == [1, 2]
    r = decode_token_energy(model, CONFIG, context=8, tile=HAND, pe_tile=HAND_PE)
    assert [k["layers"] for k in r["kinds"]] == [1, 2]
    phase = Phase("decode", context=8)
    for variant in te.VARIANTS + te.PE_VARIANTS:
        name, gate = variant.split("_", 1)
        hand = 0.0
        for kind, n in kinds:
            p = program_energy(layer_programs(model, phase, CONFIG, kind=kind)[name],
                               CONFIG, HAND, HAND_PE)
            hand += n * p[f"{gate}_pj"]
        assert r["per_model_pj"][variant] == pytest.approx(hand, rel=1e-12)
        assert r["per_layer_pj"][variant] == pytest.approx(hand / 3, rel=1e-12)


def test_cli_gating_two_kinds_of_layer(tmp_path, capsys):
    """``workload --gating`` on a model of two kinds of layer: one table per kind."""
    from sim.cli import main
    cfg = tmp_path / "window.json"
    cfg.write_text(json.dumps(dict(TINY, sliding_window=4, layer_types=[
        "sliding_attention", "full_attention", "full_attention"])))
    out = tmp_path / "g.json"
    assert main(["workload", str(cfg), "--context", "8", "--gating", "--rows", "4",
                 "--cols", "4", "--tile", "2", "--json", str(out)]) in (0, None)
    text = capsys.readouterr().out
    assert text.count("### Clock gating per tile") == 2
    g = json.loads(out.read_text())["gating"]
    assert len(g) == 2 and all(set(v) == {"whole", "split"} for v in g.values())
