"""Configs the workload must count right, or refuse: DeepSeek-V2-Lite (multi-head latent
attention, routed and shared experts, a dense first layer), sliding windows (Mistral,
Gemma-2, Qwen2), Qwen2-MoE's shared-expert gate and dense layers, and unknown models or
fields. Every expected count is written here from the published configs, by hand, not
from the parser's own tables."""
import json
import time

import pytest

from hdl.split import SplitConfig
from sim.models.program import program_cycles
from sim.models.workload import (LayerKind, Phase, WorkloadError, builtin_models,
                                 layer_gemms, layer_groups, lm_head_gemms, load_config,
                                 model_macs, model_shape)
from sim.studies.workload import compare_workload, schedule_stage

# DeepSeek-V2-Lite, as published: hidden 2048, 16 heads, latent rank 512, no query
# low rank, q/k 128 + 64 rotary, v 128; 64 routed experts of 1408, top 6, 2 shared; the
# first layer dense (10944), 26 MoE layers; vocabulary 102400.
H, NH, R, DN, DR, DV = 2048, 16, 512, 128, 64, 128
I_DENSE, I_E, E, TOPK, SHARED, LAYERS, VOCAB = 10944, 1408, 64, 6, 2, 27, 102400


def _shapes(gemms):
    return {g.name: (g.shape, g.count) for g in gemms}


def ds_attention_macs(B, tokens, keys, form):
    """One layer's attention MACs, per the DeepSeek-V2 paper's equations."""
    M = B * tokens
    q = M * H * NH * (DN + DR)
    kv_a = M * H * (R + DR)
    out = M * NH * DV * H
    if form == "naive":
        kv_b = M * R * NH * (DN + DV)
        return q + kv_a + kv_b + B * NH * tokens * keys * (DN + DR + DV) + out
    absorb = M * NH * DN * R + M * NH * R * DV
    return q + kv_a + absorb + B * NH * tokens * keys * (R + DR + R) + out


def ds_macs(B, tokens, keys, form):
    M = B * tokens
    dense_mlp = 3 * M * H * I_DENSE
    moe = M * H * E + 3 * M * TOPK * H * I_E + 3 * M * H * SHARED * I_E
    attn = ds_attention_macs(B, tokens, keys, form)
    return (attn + dense_mlp) + (LAYERS - 1) * (attn + moe) + B * H * VOCAB


@pytest.fixture(scope="module")
def ds():
    return model_shape(load_config("deepseek-v2-lite")[0], name="deepseek-v2-lite")


def test_deepseek_v2_lite_shape(ds):
    assert ds.mla and ds.q_lora_rank == 0 and ds.kv_lora_rank == R
    assert ds.kinds() == [(LayerKind(moe=False), 1), (LayerKind(moe=True), 26)]


@pytest.mark.parametrize("B, context", [(1, 1), (4, 1024), (3, 4097)])
def test_deepseek_decode_absorbed_by_hand(ds, B, context):
    ph = Phase("decode", batch=B, context=context)
    dense, moe = layer_groups(ds, ph)
    assert (dense.part, dense.layers, moe.part, moe.layers) == ("dense layer", 1,
                                                                "MoE layer", 26)
    s = _shapes(moe.gemms)
    assert s["q_proj"] == ((B, H, NH * (DN + DR)), 1)
    assert s["kv_a_proj"] == ((B, H, R + DR), 1)
    assert s["q_absorb"] == ((B, DN, R), NH)
    assert s["scores"] == ((1, R + DR, context), B * NH)
    assert s["values"] == ((1, context, R), B * NH)
    assert s["v_up"] == ((B, R, DV), NH)
    assert s["o_proj"] == ((B, NH * DV, H), 1)
    assert s["router"] == ((B, H, E), 1)
    assert s["shared_expert_up"] == ((B, H, SHARED * I_E), 1)
    assert "kv_b_proj" not in s and "up" not in s
    routed = [g for g in moe.gemms if g.name == "expert_up"]
    assert sum(g.M * g.count for g in routed) == B * TOPK      # every token slot once
    assert _shapes(dense.gemms)["down"] == ((B, I_DENSE, H), 1)
    assert not any(g.name.startswith(("expert_", "router")) for g in dense.gemms)
    assert model_macs(ds, ph) == ds_macs(B, 1, context, "absorbed")
    assert model_macs(ds, ph, mla="naive") == ds_macs(B, 1, context, "naive")


def test_deepseek_prefill_naive_by_hand(ds):
    B, L = 2, 64
    ph = Phase("prefill", batch=B, tokens=L)
    s = _shapes(layer_gemms(ds, ph, kind=LayerKind(moe=True)))
    assert s["kv_b_proj"] == ((B * L, R, NH * (DN + DV)), 1)
    assert s["scores"] == ((L, DN + DR, L), B * NH)
    assert s["values"] == ((L, L, DV), B * NH)
    assert model_macs(ds, ph) == ds_macs(B, L, L, "naive")
    assert model_macs(ds, ph, mla="absorbed") == ds_macs(B, L, L, "absorbed")
    with pytest.raises(WorkloadError, match="kinds of layer"):
        layer_gemms(ds, ph)                      # two kinds: say which


def test_deepseek_v3_style_q_lora_and_layer_frequency():
    """q_lora_rank > 0 (V3): q_a_proj then q_b_proj; moe_layer_freq 2 after 3 dense."""
    cfg = dict(load_config("deepseek-v2-lite")[0], model_type="deepseek_v3",
               q_lora_rank=96, first_k_dense_replace=3, moe_layer_freq=2,
               num_hidden_layers=10, num_nextn_predict_layers=1)
    m = model_shape(cfg)
    moe_layers = [i for i, k in enumerate(m.layer_kinds) if k.moe]
    assert moe_layers == [4, 6, 8]
    s = _shapes(layer_gemms(m, Phase("decode", batch=2, context=8), kind=LayerKind(True)))
    assert s["q_a_proj"] == ((2, H, 96), 1) and s["q_b_proj"] == ((2, 96, NH * 192), 1)
    assert "q_proj" not in s and m.mtp_layers == 1


def test_mistral_sliding_window():
    """Mistral-7B: a 4096-token window on every layer."""
    cfg = {"model_type": "mistral", "hidden_act": "silu", "hidden_size": 4096,
           "intermediate_size": 14336, "num_attention_heads": 32, "num_key_value_heads": 8,
           "num_hidden_layers": 32, "vocab_size": 32000, "sliding_window": 4096,
           "rope_theta": 10000.0, "max_position_embeddings": 32768}
    m = model_shape(cfg)
    s = _shapes(layer_gemms(m, Phase("decode", batch=2, context=8192)))
    assert s["scores"] == ((1, 128, 4096), 64) and s["values"] == ((1, 4096, 128), 64)
    s = _shapes(layer_gemms(m, Phase("decode", batch=2, context=1000)))
    assert s["scores"] == ((1, 128, 1000), 64)              # shorter than the window
    g = [g for g in layer_gemms(m, Phase("prefill", tokens=6000)) if g.name == "scores"][0]
    assert g.shape == (6000, 128, 4096) and "sliding window" in g.note
    full = model_shape(dict(cfg, sliding_window=None))
    assert _shapes(layer_gemms(full, Phase("decode", context=8192)))["scores"][0] == \
        (1, 128, 8192)


def test_gemma2_alternating_windows_and_layer_types():
    cfg = {"model_type": "gemma2", "hidden_size": 2304, "intermediate_size": 9216,
           "num_attention_heads": 8, "num_key_value_heads": 4, "head_dim": 256,
           "num_hidden_layers": 26, "vocab_size": 256000, "sliding_window": 4096,
           "hidden_activation": "gelu_pytorch_tanh", "query_pre_attn_scalar": 256,
           "attn_logit_softcapping": 50.0, "final_logit_softcapping": 30.0}
    m = model_shape(cfg)
    assert m.kinds() == [(LayerKind(window=4096), 13), (LayerKind(), 13)]
    ph = Phase("decode", context=10000)
    groups = layer_groups(m, ph)
    assert [(g.part, g.layers) for g in groups] == [("window-4096 layer", 13),
                                                    ("full-attention layer", 13)]
    assert [_shapes(g.gemms)["scores"][0] for g in groups] == [(1, 256, 4096),
                                                              (1, 256, 10000)]
    macs = lambda keys: (2304 * 2048 + 2 * 2304 * 1024 + 2 * 8 * keys * 256   # noqa: E731
                         + 2048 * 2304 + 3 * 2304 * 9216)
    assert model_macs(m, ph) == 13 * macs(4096) + 13 * macs(10000) + 2304 * 256000
    types = ["full_attention", "sliding_attention"] * 13
    m2 = model_shape(dict(cfg, layer_types=types))
    assert [k.window for k in m2.layer_kinds[:3]] == [None, 4096, None]


def test_qwen2_sliding_only_when_used():
    base = dict(load_config("qwen2.5-0.5b")[0], sliding_window=32768, max_window_layers=21)
    assert model_shape(base).kinds() == [(LayerKind(), 24)]          # use_sliding_window off
    on = model_shape(dict(base, use_sliding_window=True, sliding_window=512))
    assert on.kinds() == [(LayerKind(), 21), (LayerKind(window=512), 3)]


def test_qwen2_moe_shared_gate_and_dense_layers():
    """Qwen1.5-MoE-A2.7B, with two layers made dense (mlp_only_layers) for the test."""
    cfg = {"model_type": "qwen2_moe", "hidden_act": "silu", "hidden_size": 2048,
           "intermediate_size": 5632, "moe_intermediate_size": 1408,
           "shared_expert_intermediate_size": 5632, "num_experts": 60,
           "num_experts_per_tok": 4, "num_attention_heads": 16, "num_key_value_heads": 16,
           "num_hidden_layers": 24, "vocab_size": 151936, "decoder_sparse_step": 1,
           "norm_topk_prob": False, "use_sliding_window": False, "sliding_window": 32768,
           "max_window_layers": 21, "mlp_only_layers": [0, 5]}
    m = model_shape(cfg)
    ph = Phase("decode", batch=8, context=100)
    dense, moe = layer_groups(m, ph)                # in order of first appearance
    assert (moe.part, moe.layers, dense.part, dense.layers) == ("MoE layer", 22,
                                                                "dense layer", 2)
    s = _shapes(moe.gemms)
    assert s["shared_gate"] == ((8, 2048, 1), 1)
    assert s["router"] == ((8, 2048, 60), 1)
    assert s["shared_expert_down"] == ((8, 5632, 2048), 1)
    assert _shapes(dense.gemms)["up"] == ((8, 2048, 5632), 1)
    step2 = model_shape(dict(cfg, decoder_sparse_step=2, mlp_only_layers=[]))
    assert [k.moe for k in step2.layer_kinds[:4]] == [False, True, False, True]


@pytest.mark.parametrize("dataflow", ["ws", "os"])
def test_compare_sums_layer_kinds(ds, dataflow):
    """A tiny DeepSeek-style model (dense first layer, then MoE, MLA): the model's total
    is each kind's layers, and its split cycles the program of every layer in order."""
    cfg = dict(load_config("deepseek-v2-lite")[0], hidden_size=32, intermediate_size=48,
               moe_intermediate_size=16, n_routed_experts=4, num_experts_per_tok=2,
               num_attention_heads=2, num_key_value_heads=2, kv_lora_rank=16,
               qk_nope_head_dim=8, qk_rope_head_dim=4, v_head_dim=8, num_hidden_layers=4,
               first_k_dense_replace=1, moe_layer_freq=2, vocab_size=40)
    m = model_shape(cfg, name="tiny-ds")
    assert [k.moe for k in m.layer_kinds] == [False, False, True, False]
    split = SplitConfig(16, 16, 4, dataflow=dataflow)
    ph = Phase("decode", batch=2, context=12)
    d = compare_workload(m, ph, split)
    assert d["parts"] == ["dense layer", "MoE layer", "lm_head"]
    assert d["model"]["macs"] == model_macs(m, ph)
    assert d["model"]["whole_cycles"] == 3 * d["dense layer"]["whole_cycles"] + \
        d["MoE layer"]["whole_cycles"] + d["lm_head"]["whole_cycles"]

    def program(gemms):
        stages = dict.fromkeys(g.stage for g in gemms)
        return [p for st in stages for p in schedule_stage(
            [g for g in gemms if g.stage == st], split).program]
    dense = program(layer_gemms(m, ph, kind=LayerKind(False)))
    moe = program(layer_gemms(m, ph, kind=LayerKind(True)))
    head = program(lm_head_gemms(m, ph))
    assert d["model"]["split_cycles"] == program_cycles(dense * 2 + moe + dense + head,
                                                        split)


def test_shipped_configs_all_counted():
    names = builtin_models()
    assert "deepseek-v2-lite" in names
    for name in names:
        cfg, _ = load_config(name)
        m = model_shape(cfg, name=name)
        assert model_macs(m, Phase("decode", context=16)) > 0


@pytest.mark.parametrize("change, words", [
    ({"model_type": "mamba"}, "model_type 'mamba' is not understood"),
    ({"model_type": "llama", "n_routed_experts": 8}, "field n_routed_experts"),
    ({"model_type": "llama", "kv_lora_rank": 64}, "field kv_lora_rank"),
    ({"attention_chunk_size": 8192}, "field attention_chunk_size"),
    ({"num_experts_per_tok": 2}, "field num_experts_per_tok"),
    ({"layer_types": ["linear_attention"] * 3}, "layer_types\\[0\\] is 'linear_attention'"),
    ({"layer_types": ["full_attention"]}, "must list 3 layer types"),
    ({"layer_types": ["sliding_attention"] * 3}, "sliding_window is not given"),
    ({"text_config": {"hidden_size": 8}}, "nested in text_config"),
    ({"model_type": "qwen2_moe", "num_experts": 4, "num_experts_per_tok": 2,
      "mlp_only_layers": [7]}, "mlp_only_layers must list layer indices 0..2"),
])
def test_unknown_configs_refused(change, words):
    tiny = {"model_type": "llama", "hidden_act": "silu", "hidden_size": 8,
            "intermediate_size": 12, "num_attention_heads": 4, "num_key_value_heads": 2,
            "num_hidden_layers": 3, "vocab_size": 20}
    with pytest.raises(WorkloadError, match=words):
        model_shape(dict(tiny, **change))


def test_harmless_fields_pass():
    cfg = dict(load_config("llama-3.2-1b")[0], rope_scaling={"factor": 32.0},
               attention_bias=False, mlp_bias=False, rms_norm_eps=1e-5, torch_dtype="bf16")
    model_shape(cfg)


@pytest.mark.parametrize("change, words", [
    ({"model_type": "jamba"}, "model_type 'jamba' is not understood"),
    ({"n_shared_experts": 2}, "field n_shared_experts"),
])
def test_cli_refuses_one_line_exit_2(tmp_path, capsys, change, words):
    from sim.cli import main
    cfg = dict(load_config("llama-3.2-1b")[0], **change)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    start = time.monotonic()
    code = main(["workload", str(path), "--compare", "--json", str(tmp_path / "w.json"),
                 "--md", str(tmp_path / "w.md")])
    assert time.monotonic() - start < 10
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and err.count("\n") == 1 and words in err, err
    assert err.startswith(f"systolic: error: {path}: ")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json"]


def test_cli_deepseek_tables(tmp_path, capsys):
    from sim.cli import main
    code = main(["workload", "deepseek-v2-lite", "--batch", "2", "--context", "64",
                 "--json", str(tmp_path / "w.json")])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "one dense layer (dense MLP, full attention) (1 in the model)" in out
    assert "one MoE layer (MoE, full attention) (26 in the model)" in out
    assert "absorbed form" in out
    data = json.loads((tmp_path / "w.json").read_text())
    assert data["macs"]["model"] == ds_macs(2, 1, 64, "absorbed")
    code = main(["workload", "llama-3.2-1b", "--mla", "naive"])
    assert code == 2 and "--mla" in capsys.readouterr().err
