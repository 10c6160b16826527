"""LLM workloads: the GEMM lister (hand-computed shapes), MoE shares, GQA, the shipped
configs, whole vs split against the cycle model, and `systolic workload` bad input."""
import json

import pytest

from hdl.split import SplitConfig
from sim.models.program import program_cycles
from sim.models.cycles import model_cycles, scalesim_cycles
from sim.models.workload import (Phase, WorkloadError, builtin_models, layer_gemms,
                                 lm_head_gemms, load_config, model_shape, model_macs)
from sim.studies.workload import (block_shapes, compare_workload, schedule_stage,
                                  scalesim_total, whole_cycles)

TINY = {"model_type": "llama", "hidden_act": "silu", "hidden_size": 8,
        "intermediate_size": 12, "num_attention_heads": 4, "num_key_value_heads": 2,
        "num_hidden_layers": 3, "vocab_size": 20}


def _listed(gemms):
    return [(g.name, g.stage, (g.M, g.K, g.N), g.count) for g in gemms]


def test_tiny_gqa_decode_by_hand():
    """hidden 8, 4 heads of 2, 2 K/V heads, gated MLP 12; decode B = 3 at T = 5."""
    m = model_shape(TINY, name="tiny")
    assert (m.head_dim, m.gated, m.moe) == (2, True, False)
    ph = Phase("decode", batch=3, context=5)
    assert _listed(layer_gemms(m, ph)) == [
        ("q_proj", "qkv", (3, 8, 8), 1), ("k_proj", "qkv", (3, 8, 4), 1),
        ("v_proj", "qkv", (3, 8, 4), 1), ("scores", "scores", (1, 2, 5), 12),
        ("values", "values", (1, 5, 2), 12), ("o_proj", "out", (3, 8, 8), 1),
        ("gate", "mlp_in", (3, 8, 12), 1), ("up", "mlp_in", (3, 8, 12), 1),
        ("down", "mlp_out", (3, 12, 8), 1)]
    assert [g.shared_b for g in layer_gemms(m, ph) if g.stage in ("scores", "values")] \
        == [2, 2]
    assert _listed(lm_head_gemms(m, ph)) == [("lm_head", "lm_head", (3, 8, 20), 1)]
    # 3 layers of 3*(64+32+32+64+96*3) + 12*(10+10) and the head 3*8*20
    assert model_macs(m, ph) == 3 * (3 * 480 + 240) + 480


def test_tiny_gqa_stacked_by_hand():
    """Stacked: per sequence and K/V head one GEMM of 2 query heads x 4 tokens."""
    m = model_shape(TINY, name="tiny")
    got = {g.name: (g.shape, g.count, g.shared_b) for g in
           layer_gemms(m, Phase("prefill", batch=3, tokens=4), stack_gqa=True)}
    assert got["scores"] == ((8, 2, 4), 6, 1) and got["values"] == ((8, 4, 2), 6, 1)
    plain = model_shape(dict(TINY, num_key_value_heads=4))
    assert layer_gemms(plain, Phase("decode", context=5), stack_gqa=True)[3].shape == \
        (1, 2, 5)


def test_tiny_prefill_by_hand():
    m = model_shape(TINY, name="tiny")
    ph = Phase("prefill", batch=2, tokens=4)
    got = {g.name: (g.shape, g.count) for g in layer_gemms(m, ph)}
    assert got["q_proj"] == ((8, 8, 8), 1) and got["k_proj"] == ((8, 8, 4), 1)
    assert got["scores"] == ((4, 2, 4), 8) and got["values"] == ((4, 4, 2), 8)
    assert got["down"] == ((8, 12, 8), 1)
    assert lm_head_gemms(m, ph)[0].shape == (2, 8, 20)     # last position per sequence


def test_gpt2_names_and_plain_mlp():
    cfg = {"model_type": "gpt2", "activation_function": "gelu_new", "n_embd": 16,
           "n_head": 2, "n_layer": 2, "n_inner": None, "vocab_size": 10}
    m = model_shape(cfg)
    assert (m.hidden, m.heads, m.kv_heads, m.head_dim, m.layers, m.intermediate) == \
        (16, 2, 2, 8, 2, 64)
    names = [(g.name, g.shape) for g in layer_gemms(m, Phase("decode", context=7))]
    assert ("up", (1, 16, 64)) in names and ("down", (1, 64, 16)) in names
    assert "gate" not in [n for n, _ in names]
    cfg["n_inner"] = 40
    assert model_shape(cfg).intermediate == 40


def test_moe_expected_shares_and_router():
    """6 token slots (B = 3, k = 2) over 4 experts: two get 2 tokens, two get 1."""
    cfg = dict(TINY, model_type="qwen2_moe", num_experts=4, num_experts_per_tok=2,
               moe_intermediate_size=6, shared_expert_intermediate_size=10)
    m = model_shape(cfg)
    gemms = layer_gemms(m, Phase("decode", batch=3, context=5))
    assert ("router", "router", (3, 8, 4), 1) in _listed(gemms)
    assert ("shared_gate", "router", (3, 8, 1), 1) in _listed(gemms)    # Qwen2-MoE's sigmoid
    experts = [g for g in gemms if g.name.startswith("expert_")]
    assert sorted(_listed(experts)) == sorted([
        ("expert_gate", "mlp_in", (2, 8, 6), 2), ("expert_up", "mlp_in", (2, 8, 6), 2),
        ("expert_down", "mlp_out", (2, 6, 8), 2), ("expert_gate", "mlp_in", (1, 8, 6), 2),
        ("expert_up", "mlp_in", (1, 8, 6), 2), ("expert_down", "mlp_out", (1, 6, 8), 2)])
    assert all(g.share == 1.5 for g in experts)
    shared = [g.shape for g in gemms if g.name.startswith("shared_expert_")]
    assert shared == [(3, 8, 10), (3, 8, 10), (3, 10, 8)]


def test_moe_decode_batch_one_runs_k_experts():
    """Mixtral-style names; B = 1, k = 2 of 8: two experts of one token, six idle."""
    cfg = dict(TINY, model_type="mixtral", num_local_experts=8, num_experts_per_tok=2)
    gemms = layer_gemms(model_shape(cfg), Phase("decode", batch=1, context=5))
    ups = [g for g in gemms if g.name == "expert_up"]
    assert [(g.shape, g.count, g.share) for g in ups] == [((1, 8, 12), 2, 0.25)]


def test_shipped_models():
    names = builtin_models()
    assert {"gpt2", "llama-3.2-1b", "qwen2.5-0.5b", "olmoe-1b-7b", "mixtral-8x7b"} <= \
        set(names)
    shapes = {n: model_shape(load_config(n)[0], name=n) for n in names}
    ll = shapes["llama-3.2-1b"]
    assert (ll.hidden, ll.intermediate, ll.heads, ll.kv_heads, ll.head_dim, ll.layers,
            ll.vocab, ll.gated) == (2048, 8192, 32, 8, 64, 16, 128256, True)
    q = shapes["qwen2.5-0.5b"]
    assert (q.hidden, q.heads, q.kv_heads, q.head_dim) == (896, 14, 2, 64)
    assert shapes["gpt2"].gated is False and shapes["gpt2"].intermediate == 3072
    o = shapes["olmoe-1b-7b"]
    assert (o.experts, o.experts_per_token, o.expert_intermediate) == (64, 8, 1024)
    assert shapes["mixtral-8x7b"].experts == 8


def test_load_config_path(tmp_path):
    p = tmp_path / "config.json"
    p.write_text(json.dumps(TINY))
    cfg, name = load_config(p)
    assert cfg == TINY and name == tmp_path.name


@pytest.mark.parametrize("cfg, words", [
    ({k: v for k, v in TINY.items() if k != "hidden_size"}, "hidden_size or n_embd"),
    (dict(TINY, num_attention_heads=0), "num_attention_heads must be a positive"),
    (dict(TINY, vocab_size=-3), "vocab_size must be a positive"),
    (dict(TINY, num_key_value_heads=3), "not a multiple"),
    (dict(TINY, num_experts=4), "num_experts_per_tok"),
    (dict(TINY, num_experts=4, num_experts_per_tok=5), "exceeds"),
])
def test_bad_configs(cfg, words):
    with pytest.raises(WorkloadError, match=words):
        model_shape(cfg)


def test_bad_phases():
    with pytest.raises(WorkloadError, match="unknown phase"):
        Phase("training")
    with pytest.raises(WorkloadError, match="context must be a positive"):
        Phase("decode", context=0)


# ---------------------------------------------------------------------------------------
# Whole vs split against sim.models.cycles

def test_block_shapes_cover_c():
    assert block_shapes((1, 64, 100), 4, 1, (16, 16)) == [(1, 64, 32)] * 3 + [(1, 64, 4)]
    assert block_shapes((40, 8, 16), 1, 2, (16, 16)) == [(32, 8, 16), (8, 8, 16)]
    assert block_shapes((3, 8, 5), 2, 2, (16, 16)) == [(2, 8, 3), (2, 8, 2), (1, 8, 3),
                                                       (1, 8, 2)]


def test_gemv_whole_vs_split_by_hand():
    """1x16x64 on a 32x32 WS array, 16x16 tiles. Whole: 2 folds of 2R+C+M-2 = 95.
    Split: four 16-column blocks, one per 16x16 sub-array: one fold of 32+16+1-2."""
    cfg = SplitConfig(32, 32, 16)
    from sim.models.workload import Gemm
    g = Gemm("gemv", "qkv", 1, 16, 64)
    assert whole_cycles([g], cfg) == 190 == model_cycles(1, 16, 64, 32, 32, "ws")
    assert schedule_stage([g], cfg).cycles == 47
    assert scalesim_total([g], cfg) == 189 == scalesim_cycles(1, 16, 64, 32, 32, "ws")


@pytest.mark.parametrize("dataflow", ["ws", "os"])
def test_compare_against_cycle_model(dataflow):
    cfg = SplitConfig(16, 16, 4, dataflow=dataflow)
    m = model_shape(dict(TINY, hidden_size=32, intermediate_size=48), name="tiny")
    ph = Phase("decode", batch=2, context=24)
    d = compare_workload(m, ph, cfg)
    for r in d["gemms"]:
        one = model_cycles(r["M"], r["K"], r["N"], 16, 16, dataflow, k_chunk=cfg.mac.max_safe_k)
        if dataflow == "ws":
            assert r["whole_cycles"] == r["count"] * one
        assert r["scalesim_cycles"] == r["count"] * scalesim_cycles(r["M"], r["K"], r["N"],
                                                                   16, 16, dataflow)
        assert r["split_cycles"] <= r["whole_cycles"]
        assert r["split_cycles"] * 256 >= r["macs"]      # no more than every PE busy
    # the model total is the program of all layers and the head, stage after stage
    stages = [g.stage for g in layer_gemms(m, ph)]
    layer = [ph_ for st in dict.fromkeys(stages) for ph_ in schedule_stage(
        [g for g in layer_gemms(m, ph) if g.stage == st], cfg).program]
    head = schedule_stage(lm_head_gemms(m, ph), cfg).program
    assert d["layer"]["split_cycles"] == program_cycles(layer, cfg)
    assert d["model"]["split_cycles"] == program_cycles(layer * 3 + head, cfg)
    assert d["model"]["whole_cycles"] == 3 * d["layer"]["whole_cycles"] + \
        d["lm_head"]["whole_cycles"]


def test_decode_target_on_shipped_models():
    """Decode, batch 1 and 16, 64x64 WS array with 16x16 tiles: >= 3x fewer cycles."""
    cfg = SplitConfig(64, 64, 16)
    for name in ("gpt2", "qwen2.5-0.5b"):
        m = model_shape(load_config(name)[0], name=name)
        for b in (1, 16):
            d = compare_workload(m, Phase("decode", batch=b, context=256), cfg)
            assert d["model"]["speedup"] >= 3.0, (name, b, d["model"])


# ---------------------------------------------------------------------------------------
# Command line

def _run(argv, capsys):
    from sim.cli import main
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_lists_and_compares(tmp_path, capsys):
    out_json, md, png = tmp_path / "w.json", tmp_path / "w.md", tmp_path / "w.png"
    code, out, err = _run(["workload", "gpt2", "--phase", "decode", "--batch", "2",
                           "--context", "64", "--compare", "--json", out_json, "--md", md,
                           "--plot", png], capsys)
    assert code == 0, err
    assert "q_proj" in out and "whole/split" in out
    data = json.loads(out_json.read_text())
    assert data["shape"]["hidden"] == 768 and data["compare"]["model"]["speedup"] >= 3
    assert md.read_text().startswith("# gpt2") and png.stat().st_size > 1000


@pytest.mark.parametrize("cfg, args, words", [
    ({k: v for k, v in TINY.items() if k != "vocab_size"}, [], "vocab_size"),
    (dict(TINY, hidden_size=0), [], "hidden_size must be a positive"),
    (TINY, ["--phase", "training"], "--phase"),
    (TINY, ["--batch", "0"], "--batch"),
    (TINY, ["--phase", "prefill", "--context", "5"], "--context"),
    (TINY, ["--compare", "--tile", "5"], "--tile"),
    (TINY, ["--rtl", "--tile", "3"], "--tile"),
    (TINY, ["--rtl", "--numerics", "fp4"], "--rtl"),
    (TINY, ["--rtl", "--rtl-tokens", "0"], "--rtl-tokens"),
    (TINY, ["--rtl", "--rtl-max-cycles", "-1"], "--rtl-max-cycles"),
    ("no such model", [], "no config file"),
])
def test_cli_bad_input(tmp_path, capsys, cfg, args, words):
    """One line, exit 2, no output file."""
    if isinstance(cfg, dict):
        path = tmp_path / "config.json"
        path.write_text(json.dumps(cfg))
    else:
        path = cfg
    out = tmp_path / "out"
    out.mkdir()
    code, _, err = _run(["workload", path, *args, "--json", out / "w.json", "--md",
                         out / "w.md"], capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("systolic: error:") and words in lines[0]
    assert not list(out.iterdir())


def test_bench_writes_tables_and_plots(tmp_path, monkeypatch):
    """The workload bench on one small model (cycle-model parts only)."""
    import sim.studies.workload_bench as wb
    small = model_shape(dict(TINY, hidden_size=64, intermediate_size=96), name="small")
    monkeypatch.setattr(wb, "_models", lambda: [small])
    monkeypatch.setattr(wb, "SWEEP", (1, 4))
    monkeypatch.setattr(wb, "CONTEXT", 64)
    monkeypatch.setattr(wb, "PREFILL_TOKENS", 32)
    data = wb.run_workload_bench(tmp_path, progress=False, rtl=False, command="test")
    assert json.loads((tmp_path / "workload.json").read_text())["target"] == 3.0
    md = (tmp_path / "workload.md").read_text()
    assert "| small" in md and "## Utilization against the decode batch size" in md
    decode = [d for d in data["compare"] if d["phase"] == "decode"]
    assert len(decode) == 6             # B = 1, 16: WS, WS with GQA stacked, OS
    assert all(d["target_met"] == (d["model"]["speedup"] >= 3.0) for d in decode)
    pngs = sorted(p.name for p in tmp_path.glob("*.png"))
    assert pngs == ["workload_batch.png", "workload_small_decode_b16_ws.png",
                    "workload_small_decode_b1_ws.png", "workload_small_prefill_l32_ws.png"]
