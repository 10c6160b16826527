"""A language model's Hugging Face ``config.json`` read into a :class:`ModelShape`.

:func:`load_config` reads a config (a file, or the name of one shipped in
``sim/models/llm_configs``); :func:`model_shape` checks it and returns the shape that
:mod:`sim.models.workload` turns into GEMMs.

What it reads (and nothing it does not understand passes silently):

* **the common fields**: ``hidden_size``, ``num_attention_heads``,
  ``num_key_value_heads`` (default: the heads), ``head_dim`` (default ``hidden /
  heads``), ``num_hidden_layers``, ``intermediate_size``, ``vocab_size``; GPT-2's
  ``n_embd``, ``n_head``, ``n_layer``, ``n_inner`` (default ``4 * n_embd``). The MLP is
  gated when ``hidden_act`` is a GLU activation or the ``model_type`` is one of
  :data:`GATED_TYPES`; a ``gated_mlp`` boolean overrides both.
* **mixture of experts**: ``num_local_experts`` (Mixtral), ``num_experts`` (Qwen-MoE,
  OLMoE) or ``n_routed_experts`` (DeepSeek); ``num_experts_per_tok``;
  ``moe_intermediate_size``; a shared expert of ``shared_expert_intermediate_size``
  (Qwen2-MoE, with its sigmoid ``shared_expert_gate``, an ``M x H x 1`` GEMM) or
  ``n_shared_experts`` DeepSeek experts (one MLP of ``n_shared_experts *
  moe_intermediate_size``, as DeepSeek implements them).
* **which layers are MoE**: DeepSeek's ``first_k_dense_replace`` and ``moe_layer_freq``
  (layer ``i`` is MoE when ``i >= first_k_dense_replace`` and ``i % moe_layer_freq ==
  0``); Qwen-MoE's ``decoder_sparse_step`` and ``mlp_only_layers`` (MoE when ``(i + 1) %
  decoder_sparse_step == 0`` and ``i`` is not listed). The other layers run the dense MLP
  of ``intermediate_size``.
* **multi-head latent attention** (``deepseek_v2``, ``deepseek_v3``): ``q_lora_rank``
  (null: a plain Q projection), ``kv_lora_rank``, ``qk_nope_head_dim``,
  ``qk_rope_head_dim``, ``v_head_dim``.
* **sliding windows**: ``layer_types`` (``sliding_attention`` / ``full_attention`` per
  layer) when given; else Qwen2's ``use_sliding_window`` with ``max_window_layers`` (the
  layers from that index on slide), Gemma-2's alternation (even layers slide), and for
  every other type a non-null ``sliding_window`` on every layer (Mistral, Phi-3).
* ``num_nextn_predict_layers`` (DeepSeek-V3's multi-token-prediction module) is read and
  *not counted*: it serves speculative decoding and training, not the model's forward
  pass; the summary says so.

Refused with one line (:class:`WorkloadError`): a ``model_type`` outside
:data:`MODEL_TYPES` (a config without one is read as a generic decoder), a decoder
nested in ``text_config`` (a multimodal wrapper), and any field that looks as if it
changes the GEMMs (its name speaks of experts, attention, heads, ranks, windows, layers,
MLP widths, ...: :data:`_GEMM_WORDS`) but that the parser did not read and does not know
to be harmless (:data:`HARMLESS`): a dense guess would miscount it.
"""
import json
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

__all__ = ["WorkloadError", "ModelShape", "LayerKind", "load_config", "model_shape",
           "builtin_models", "MODEL_TYPES", "GATED_TYPES", "GATED_ACTS", "HARMLESS",
           "MLA_TYPES"]

GATED_TYPES = ("llama", "mistral", "mixtral", "qwen2", "qwen2_moe", "qwen3", "qwen3_moe",
               "olmo", "olmo2", "olmoe", "gemma", "gemma2", "phi3", "deepseek_v2",
               "deepseek_v3")
GATED_ACTS = ("silu", "swiglu", "swish", "geglu", "gelu_pytorch_tanh_glu")
#: Model types whose attention is multi-head latent attention.
MLA_TYPES = ("deepseek_v2", "deepseek_v3")
#: The model types whose GEMMs this parser knows.
MODEL_TYPES = ("gpt2",) + GATED_TYPES
CONFIG_DIR = "llm_configs"

# Hugging Face name -> alternatives (GPT-2 style) in the order they are tried.
_ALIASES = {
    "hidden_size": ("hidden_size", "n_embd", "d_model"),
    "num_attention_heads": ("num_attention_heads", "n_head", "num_heads"),
    "num_hidden_layers": ("num_hidden_layers", "n_layer", "num_layers"),
    "intermediate_size": ("intermediate_size", "n_inner", "ffn_dim"),
}

#: Fields that change no GEMM shape or count (dropout, norms, position encodings, token
#: ids, routing scores and load-balancing losses, quantization metadata, ...).
HARMLESS = frozenset("""
    _source _name_or_path architectures auto_map transformers_version torch_dtype dtype
    use_cache bos_token_id eos_token_id pad_token_id sep_token_id decoder_start_token_id
    tie_word_embeddings max_position_embeddings n_positions n_ctx initializer_range
    rms_norm_eps layer_norm_eps layer_norm_epsilon norm_eps rope_theta rope_scaling
    rope_parameters partial_rotary_factor original_max_position_embeddings
    attention_dropout attention_bias mlp_bias attn_pdrop embd_pdrop resid_pdrop
    hidden_dropout dropout summary_type summary_use_proj summary_activation
    summary_proj_to_labels summary_first_dropout task_specific_params scale_attn_weights
    scale_attn_by_inverse_layer_idx reorder_and_upcast_attn pretraining_tp
    output_router_logits router_aux_loss_coef router_jitter_noise norm_topk_prob
    routed_scaling_factor scoring_func topk_method n_group topk_group aux_loss_alpha
    seq_aux ep_size attn_logit_softcapping final_logit_softcapping query_pre_attn_scalar
    hidden_activation hidden_act activation_function quantization_config clip_qkv
    tokenizer_class is_decoder model_type cache_implementation qk_layernorm
    use_qk_norm bias tie_encoder_decoder torchscript return_dict use_return_dict
    output_attentions output_hidden_states embedding_dropout residual_dropout
""".split())
#: Words in a field name that suggest it shapes the GEMMs.
_GEMM_WORDS = re.compile(
    r"expert|moe|route|attn|attention|head|lora|rank|window|kv|layer|intermediate|mlp|"
    r"ffn|hidden|embd|embed|vocab|dim|shared|sparse|dense|proj|query|key|value|block|"
    r"group|topk|inner|nextn|mtp|ssm|mamba|conv|linear|latent|width|size")


class WorkloadError(ValueError):
    """A model config or phase that cannot describe a workload (one line)."""


@dataclass(frozen=True)
class LayerKind:
    """What a decoder layer runs: a mixture of experts or the dense MLP, and attention
    over all keys (``window`` None) or over at most ``window`` of them."""
    moe: bool = False
    window: int | None = None

    def describe(self):
        mlp = "MoE" if self.moe else "dense MLP"
        attn = "full attention" if self.window is None else f"sliding window {self.window}"
        return f"{mlp}, {attn}"


@dataclass(frozen=True)
class ModelShape:
    name: str
    model_type: str
    hidden: int
    intermediate: int
    heads: int
    kv_heads: int
    head_dim: int
    layers: int
    vocab: int
    gated: bool
    experts: int = 0                 # 0: dense MLP
    experts_per_token: int = 0
    expert_intermediate: int = 0
    shared_expert_intermediate: int = 0
    shared_experts: int = 0          # DeepSeek: n_shared_experts (0: not given that way)
    shared_expert_gate: bool = False  # Qwen2-MoE: sigmoid gate on the shared expert
    kv_lora_rank: int = 0            # > 0: multi-head latent attention
    q_lora_rank: int = 0             # 0: a plain Q projection
    qk_nope_head_dim: int = 0
    qk_rope_head_dim: int = 0
    v_head_dim: int = 0
    layer_kinds: tuple = ()          # one LayerKind per layer; () = all default_kind
    mtp_layers: int = 0              # DeepSeek-V3 multi-token prediction: not counted

    @property
    def moe(self):
        return self.experts > 0

    @property
    def mla(self):
        return self.kv_lora_rank > 0

    @property
    def default_kind(self):
        return LayerKind(moe=self.moe)

    def kinds(self):
        """``[(LayerKind, layers)]`` in order of first appearance."""
        per_layer = self.layer_kinds or (self.default_kind,) * self.layers
        counts = {}
        for k in per_layer:
            counts[k] = counts.get(k, 0) + 1
        return list(counts.items())

    def sequence(self):
        """The layer kinds in layer order, as runs ``[(LayerKind, consecutive layers)]``."""
        per_layer = self.layer_kinds or (self.default_kind,) * self.layers
        runs = []
        for k in per_layer:
            if runs and runs[-1][0] == k:
                runs[-1][1] += 1
            else:
                runs.append([k, 1])
        return [tuple(r) for r in runs]


# ---------------------------------------------------------------------------------------
# Files

def builtin_models():
    """Names of the shipped configs (file stems), sorted."""
    root = resources.files("sim.models").joinpath(CONFIG_DIR)
    return sorted(p.name[:-5] for p in root.iterdir() if p.name.endswith(".json"))


def load_config(source):
    """``(config dict, name)`` from a shipped model name or a path to a config.json.
    WorkloadError if neither exists or the file is not a JSON object."""
    text = str(source)
    path = Path(text)
    if text in builtin_models():
        raw = resources.files("sim.models").joinpath(CONFIG_DIR, f"{text}.json").read_text()
        name = text
    elif path.is_file():
        try:
            raw = path.read_text()
        except OSError as e:
            raise WorkloadError(f"cannot read the file: {e.strerror}") from None
        name = path.stem if path.stem != "config" else path.parent.name or path.stem
    else:
        raise WorkloadError(f"no config file of that name and no shipped model; "
                            f"shipped: {', '.join(builtin_models())}")
    try:
        cfg = json.loads(raw)
    except json.JSONDecodeError as e:
        raise WorkloadError(f"not valid JSON ({e.msg} at line {e.lineno})") from None
    if not isinstance(cfg, dict):
        raise WorkloadError(f"a config must be a JSON object, got {type(cfg).__name__}")
    return cfg, name


# ---------------------------------------------------------------------------------------
# Fields

class _Reader:
    """The config and the fields read from it (the rest is checked for meaning)."""

    def __init__(self, cfg):
        self.cfg, self.read = cfg, set()

    def has(self, key):
        self.read.add(key)
        return self.cfg.get(key) is not None

    def raw(self, key, default=None):
        self.read.add(key)
        v = self.cfg.get(key)
        return default if v is None else v

    def int(self, key, *, required=True, default=None, zero=False):
        names = _ALIASES.get(key, (key,))
        self.read.update(names)
        for k in names:
            if self.cfg.get(k) is not None:
                return _integer(self.cfg[k], k, zero=zero)
        if required:
            raise WorkloadError(f"config has no {' or '.join(names)}")
        return default

    def flag(self, key, default=False):
        v = self.raw(key, default)
        if not isinstance(v, bool):
            raise WorkloadError(f"config field {key} must be true or false, got {v!r}")
        return v

    def unread(self):
        return [k for k in self.cfg if k not in self.read and k not in HARMLESS]


def _integer(v, key, *, zero=False):
    if isinstance(v, bool) or not isinstance(v, int) or v < (0 if zero else 1):
        what = "a non-negative" if zero else "a positive"
        raise WorkloadError(f"config field {key} must be {what} integer, got {v!r}")
    return v


def _gated(r, model_type):
    if "gated_mlp" in r.cfg:
        return r.flag("gated_mlp")
    act = r.raw("hidden_act") or r.raw("activation_function") or ""
    return model_type in GATED_TYPES or str(act).lower() in GATED_ACTS


def _experts(r, model_type):
    """(experts, k, expert intermediate, shared intermediate, shared experts, gate)."""
    if model_type in MLA_TYPES:
        experts = r.int("n_routed_experts", required=False) or 0
    else:
        experts = (r.int("num_local_experts", required=False)
                   or r.int("num_experts", required=False) or 0)
    if not experts:
        return 0, 0, 0, 0, 0, False
    k = r.int("num_experts_per_tok")
    if k > experts:
        raise WorkloadError(f"num_experts_per_tok {k} exceeds the {experts} experts")
    e_inter = r.int("moe_intermediate_size", required=False)
    if model_type in MLA_TYPES:
        if e_inter is None:
            raise WorkloadError("config has no moe_intermediate_size (DeepSeek experts)")
        n_shared = r.int("n_shared_experts", required=False, zero=True) or 0
        return experts, k, e_inter, n_shared * e_inter, n_shared, False
    shared = r.int("shared_expert_intermediate_size", required=False) or 0
    return experts, k, e_inter, shared, 0, bool(shared) and model_type == "qwen2_moe"


def _mla(r):
    """(kv_lora_rank, q_lora_rank, nope, rope, v) of multi-head latent attention."""
    kv = r.int("kv_lora_rank")
    q = r.int("q_lora_rank", required=False) or 0
    return (kv, q, r.int("qk_nope_head_dim"), r.int("qk_rope_head_dim", zero=True),
            r.int("v_head_dim"))


def _layer_list(r, key, layers):
    v = r.raw(key, [])
    if not isinstance(v, list) or any(isinstance(i, bool) or not isinstance(i, int)
                                      or not 0 <= i < layers for i in v):
        raise WorkloadError(f"config field {key} must list layer indices 0..{layers - 1}, "
                            f"got {v!r}")
    return set(v)


def _moe_layers(r, model_type, layers, experts):
    """Per layer: does it run the mixture of experts?"""
    if not experts:
        return [False] * layers
    if model_type in MLA_TYPES:
        first = r.int("first_k_dense_replace", required=False, zero=True) or 0
        freq = r.int("moe_layer_freq", required=False) or 1
        return [i >= first and i % freq == 0 for i in range(layers)]
    step = r.int("decoder_sparse_step", required=False) or 1
    dense = _layer_list(r, "mlp_only_layers", layers)
    return [(i + 1) % step == 0 and i not in dense for i in range(layers)]


def _windows(r, model_type, layers):
    """Per layer: the sliding window (keys attended at most) or None."""
    window = r.int("sliding_window", required=False)
    if r.has("layer_types"):
        types = r.raw("layer_types")
        if not isinstance(types, list) or len(types) != layers:
            raise WorkloadError(f"config field layer_types must list {layers} layer types "
                                f"(num_hidden_layers), got {types!r:.60}")
        out = []
        for i, t in enumerate(types):
            if t == "full_attention":
                out.append(None)
            elif t == "sliding_attention":
                if window is None:
                    raise WorkloadError(f"layer_types[{i}] is sliding_attention but "
                                        f"sliding_window is not given")
                out.append(window)
            else:
                raise WorkloadError(f"layer_types[{i}] is {t!r}: not understood (known: "
                                    f"full_attention, sliding_attention); its GEMMs "
                                    f"cannot be counted")
        return out
    if model_type.startswith("qwen"):
        use = r.flag("use_sliding_window")
        start = r.int("max_window_layers", required=False, zero=True) or 0
        return [window if use and window and i >= start else None for i in range(layers)]
    if model_type == "gemma2":
        return [window if window and i % 2 == 0 else None for i in range(layers)]
    return [window] * layers


def model_shape(cfg, *, name="model"):
    """A checked :class:`ModelShape` from a config dict (see the module docstring)."""
    if not isinstance(cfg, dict):
        raise WorkloadError(f"a config must be a dict, got {type(cfg).__name__}")
    if isinstance(cfg.get("text_config"), dict):
        raise WorkloadError("the decoder is nested in text_config (a multimodal model); "
                            "save its text_config as the config to count")
    r = _Reader(cfg)
    model_type = str(r.raw("model_type", ""))
    if model_type and model_type not in MODEL_TYPES:
        raise WorkloadError(f"model_type {model_type!r} is not understood (its layers may "
                            f"not be a plain decoder); known: {', '.join(MODEL_TYPES)}")
    hidden = r.int("hidden_size")
    heads = r.int("num_attention_heads")
    layers = r.int("num_hidden_layers")
    vocab = r.int("vocab_size")
    kv = r.int("num_key_value_heads", required=False, default=heads)
    if heads % kv:
        raise WorkloadError(f"num_attention_heads {heads} is not a multiple of "
                            f"num_key_value_heads {kv}")
    mla = _mla(r) if model_type in MLA_TYPES else (0, 0, 0, 0, 0)
    head_dim = r.int("head_dim", required=False)
    if mla[0]:
        head_dim = mla[2] + mla[3]            # the query/key head: nope + rope
    if head_dim is None:
        if hidden % heads:
            raise WorkloadError(f"hidden_size {hidden} is not a multiple of "
                                f"num_attention_heads {heads}; give head_dim")
        head_dim = hidden // heads
    gpt2_inner = "n_embd" in cfg and cfg.get("n_inner") is None
    r.read.add("n_inner")
    experts, k, e_inter, shared, n_shared, gate = _experts(r, model_type)
    inter = 4 * hidden if gpt2_inner else r.int(
        "intermediate_size", required=not (experts and e_inter))
    e_inter = e_inter or inter
    if inter is None:
        inter = e_inter
    moe = _moe_layers(r, model_type, layers, experts)
    windows = _windows(r, model_type, layers)
    kinds = tuple(LayerKind(m, w) for m, w in zip(moe, windows))
    mtp = r.int("num_nextn_predict_layers", required=False, zero=True) or 0
    gated = _gated(r, model_type)
    unknown = [f for f in r.unread() if _GEMM_WORDS.search(f.lower())]
    if unknown:
        raise WorkloadError(
            f"config field {unknown[0]} is not understood for model_type "
            f"{model_type or '(none)'} and may change the GEMMs; remove it if it does "
            f"not, or use a model_type that has it ({', '.join(MODEL_TYPES)})")
    uniform = all(kind == LayerKind(experts > 0) for kind in kinds)
    return ModelShape(name=name, model_type=model_type, hidden=hidden, intermediate=inter,
                      heads=heads, kv_heads=heads if mla[0] else kv, head_dim=head_dim,
                      layers=layers, vocab=vocab, gated=gated, experts=experts,
                      experts_per_token=k, expert_intermediate=e_inter,
                      shared_expert_intermediate=shared, shared_experts=n_shared,
                      shared_expert_gate=gate, kv_lora_rank=mla[0], q_lora_rank=mla[1],
                      qk_nope_head_dim=mla[2], qk_rope_head_dim=mla[3], v_head_dim=mla[4],
                      layer_kinds=() if uniform else kinds, mtp_layers=mtp)
