"""The GEMMs of a transformer language model, from its Hugging Face ``config.json``.

:func:`load_config` reads a config (a file, or the name of one shipped in
``sim/models/llm_configs``), :func:`model_shape` turns it into a :class:`ModelShape`,
and :func:`layer_gemms` / :func:`lm_head_gemms` list the GEMMs of one decoder layer and
of the LM head for a :class:`Phase`, each as ``C[M, N] = A[M, K] @ B[K, N]`` with a
count of identical instances.

Phases. ``prefill``: ``batch`` sequences of ``tokens`` tokens each, attention over
those tokens (the full L x L score matrix; a causal kernel could skip half).
``decode``: ``batch`` sequences producing one token each, attending to ``context``
cached keys and values. Weights are the B operand of every projection, so the rows of
A are the tokens: ``M = batch * tokens`` (prefill) or ``batch`` (decode).

Per layer, in dependency order (``stage``; GEMMs of one stage are independent):

* ``qkv``: Q (``M x H x nh*hd``), K and V (``M x H x nkv*hd``);
* ``scores``: per sequence and query head ``Lq x hd x Lk`` (``Lq`` = tokens or 1,
  ``Lk`` = tokens or context), ``batch * nh`` of them; with grouped-query attention
  ``nh / nkv`` query heads read the same keys (``shared_b``);
* ``values``: per sequence and query head ``Lq x Lk x hd`` (``stack_gqa``: per
  sequence and K/V head, the ``nh / nkv`` query heads stacked into ``nh / nkv * Lq`` rows);
* ``out``: ``M x nh*hd x H``;
* dense MLP: ``mlp_in``: up (``M x H x I``) and, gated (SwiGLU), gate of the same
  shape; ``mlp_out``: down (``M x I x H``);
* mixture of experts: ``router`` (``M x H x E``), then per expert gate/up and down with
  ``Ie`` = ``moe_intermediate_size`` (else ``intermediate_size``). The ``M * k`` token
  slots are spread evenly over the ``E`` experts (the expected share of every expert is
  ``M * k / E`` tokens): ``M * k mod E`` experts get one token more than the others and
  experts with no token run no GEMM. A shared expert
  (``shared_expert_intermediate_size``) runs on every token.

The LM head is ``M' x H x V`` once per model, ``M'`` = the tokens whose next token is
sampled: ``batch`` (the last position of each sequence) in both phases.

Name mapping: GPT-2's ``n_embd``, ``n_head``, ``n_layer``, ``n_inner`` (default
``4 * n_embd``) and ``activation_function``; ``num_key_value_heads`` defaults to
``num_attention_heads`` and ``head_dim`` to ``hidden_size / num_attention_heads``. The
MLP is gated when ``hidden_act`` is a GLU activation (``silu``, ``swiglu``, ...) or the
``model_type`` is one of :data:`GATED_TYPES`; a ``gated_mlp`` boolean overrides both.
"""
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

__all__ = ["WorkloadError", "ModelShape", "Phase", "Gemm", "load_config", "model_shape",
           "layer_gemms", "lm_head_gemms", "builtin_models", "total_macs", "model_macs",
           "expected_experts_active", "STAGES", "PHASES", "GATED_TYPES", "GATED_ACTS"]

PHASES = ("prefill", "decode")
STAGES = ("qkv", "scores", "values", "out", "router", "mlp_in", "mlp_out", "lm_head")
GATED_TYPES = ("llama", "mistral", "mixtral", "qwen2", "qwen2_moe", "qwen3", "qwen3_moe",
               "olmo", "olmo2", "olmoe", "gemma", "gemma2", "phi3", "deepseek_v2")
GATED_ACTS = ("silu", "swiglu", "swish", "geglu", "gelu_pytorch_tanh_glu")
CONFIG_DIR = "llm_configs"

# Hugging Face name -> alternatives (GPT-2 style) in the order they are tried.
_ALIASES = {
    "hidden_size": ("hidden_size", "n_embd", "d_model"),
    "num_attention_heads": ("num_attention_heads", "n_head", "num_heads"),
    "num_hidden_layers": ("num_hidden_layers", "n_layer", "num_layers"),
    "intermediate_size": ("intermediate_size", "n_inner", "ffn_dim"),
}


class WorkloadError(ValueError):
    """A model config or phase that cannot describe a workload (one line)."""


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

    @property
    def moe(self):
        return self.experts > 0


@dataclass(frozen=True)
class Phase:
    """``prefill`` of ``tokens`` tokens per sequence or ``decode`` of one token per
    sequence at ``context`` cached tokens; ``batch`` sequences in both."""
    kind: str
    batch: int = 1
    tokens: int = 1
    context: int = 0

    def __post_init__(self):
        if self.kind not in PHASES:
            raise WorkloadError(f"unknown phase {self.kind!r}; allowed: {', '.join(PHASES)}")
        for name in ("batch", "tokens") + (("context",) if self.kind == "decode" else ()):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise WorkloadError(f"phase {self.kind}: {name} must be a positive integer, "
                                    f"got {v!r}")
        if self.kind == "decode" and self.tokens != 1:
            raise WorkloadError("phase decode: one token per sequence (tokens = 1)")

    @property
    def rows(self):
        """Tokens through every projection (rows of A)."""
        return self.batch * self.tokens

    @property
    def keys(self):
        """Keys each query attends to."""
        return self.tokens if self.kind == "prefill" else self.context

    def describe(self):
        if self.kind == "prefill":
            return f"prefill, batch {self.batch} x {self.tokens} tokens"
        return f"decode, batch {self.batch}, context {self.context}"


@dataclass(frozen=True)
class Gemm:
    """``count`` independent GEMMs ``A[M, K] @ B[K, N]`` of one kind."""
    name: str
    stage: str
    M: int
    K: int
    N: int
    count: int = 1
    shared_b: int = 1         # instances reading the same B (GQA: query heads per KV head)
    share: float = None       # MoE experts: expected tokens per expert (M * k / E)
    note: str = ""

    @property
    def shape(self):
        return (self.M, self.K, self.N)

    @property
    def macs(self):
        return self.M * self.K * self.N * self.count


# ---------------------------------------------------------------------------------------
# Configs

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
            raise WorkloadError(f"cannot read {path}: {e.strerror}") from None
        name = path.stem if path.stem != "config" else path.parent.name or path.stem
    else:
        raise WorkloadError(f"no config file {text!r} and no shipped model of that name; "
                            f"shipped: {', '.join(builtin_models())}")
    try:
        cfg = json.loads(raw)
    except json.JSONDecodeError as e:
        raise WorkloadError(f"{text}: not valid JSON ({e.msg} at line {e.lineno})") from None
    if not isinstance(cfg, dict):
        raise WorkloadError(f"{text}: a config must be a JSON object, got "
                            f"{type(cfg).__name__}")
    return cfg, name


def _get(cfg, key, *, required=True, default=None):
    for k in _ALIASES.get(key, (key,)):
        if cfg.get(k) is not None:
            return _positive(cfg[k], k)
    if required:
        names = " or ".join(_ALIASES.get(key, (key,)))
        raise WorkloadError(f"config has no {names}")
    return default


def _positive(v, key):
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise WorkloadError(f"config field {key} must be a positive integer, got {v!r}")
    return v


def _gated(cfg, model_type):
    if "gated_mlp" in cfg:
        if not isinstance(cfg["gated_mlp"], bool):
            raise WorkloadError(f"config field gated_mlp must be true or false, got "
                                f"{cfg['gated_mlp']!r}")
        return cfg["gated_mlp"]
    act = cfg.get("hidden_act") or cfg.get("activation_function") or ""
    return model_type in GATED_TYPES or str(act).lower() in GATED_ACTS


def model_shape(cfg, *, name="model"):
    """A checked :class:`ModelShape` from a config dict (see the module docstring)."""
    if not isinstance(cfg, dict):
        raise WorkloadError(f"a config must be a dict, got {type(cfg).__name__}")
    model_type = str(cfg.get("model_type", ""))
    hidden = _get(cfg, "hidden_size")
    heads = _get(cfg, "num_attention_heads")
    layers = _get(cfg, "num_hidden_layers")
    vocab = _get(cfg, "vocab_size")
    kv = _get(cfg, "num_key_value_heads", required=False, default=heads)
    if heads % kv:
        raise WorkloadError(f"num_attention_heads {heads} is not a multiple of "
                            f"num_key_value_heads {kv}")
    head_dim = _get(cfg, "head_dim", required=False)
    if head_dim is None:
        if hidden % heads:
            raise WorkloadError(f"hidden_size {hidden} is not a multiple of "
                                f"num_attention_heads {heads}; give head_dim")
        head_dim = hidden // heads
    gpt2_inner = "n_embd" in cfg and cfg.get("n_inner") is None
    inter = 4 * hidden if gpt2_inner else _get(
        cfg, "intermediate_size", required=cfg.get("moe_intermediate_size") is None)
    experts = _get(cfg, "num_local_experts", required=False) or _get(
        cfg, "num_experts", required=False) or 0
    k = e_inter = shared = 0
    if experts:
        k = _get(cfg, "num_experts_per_tok")
        if k > experts:
            raise WorkloadError(f"num_experts_per_tok {k} exceeds the {experts} experts")
        e_inter = _get(cfg, "moe_intermediate_size", required=False) or inter
        shared = _get(cfg, "shared_expert_intermediate_size", required=False) or 0
    if inter is None:
        inter = e_inter
    return ModelShape(name=name, model_type=model_type, hidden=hidden, intermediate=inter,
                      heads=heads, kv_heads=kv, head_dim=head_dim, layers=layers,
                      vocab=vocab, gated=_gated(cfg, model_type), experts=experts,
                      experts_per_token=k, expert_intermediate=e_inter,
                      shared_expert_intermediate=shared)


# ---------------------------------------------------------------------------------------
# GEMMs

def _mlp(prefix, stage_in, stage_out, M, H, inter, gated, count=1, share=None, note=""):
    out = []
    if gated:
        out.append(Gemm(f"{prefix}gate", stage_in, M, H, inter, count, share=share,
                        note=note))
    out.append(Gemm(f"{prefix}up", stage_in, M, H, inter, count, share=share, note=note))
    out.append(Gemm(f"{prefix}down", stage_out, M, inter, H, count, share=share,
                    note=note))
    return out


def layer_gemms(model, phase, *, stack_gqa=False):
    """The GEMMs of one decoder layer of ``model`` (:class:`ModelShape`) in ``phase``
    (:class:`Phase`), in stage order (see the module docstring). ``stack_gqa``: the
    query heads that share a K/V head are stacked into one GEMM of ``group * Lq`` rows
    per sequence and K/V head (same B, exact: the rows are independent)."""
    if not isinstance(stack_gqa, bool):
        raise TypeError(f"stack_gqa must be True or False, got {stack_gqa!r}")
    if not isinstance(model, ModelShape):
        raise TypeError(f"expected a ModelShape, got {type(model).__name__}")
    if not isinstance(phase, Phase):
        raise TypeError(f"expected a Phase, got {type(phase).__name__}")
    m = model
    M, H, hd = phase.rows, m.hidden, m.head_dim
    group = m.heads // m.kv_heads
    seqs = phase.batch
    gqa = f"{group} query heads share each K/V head" if group > 1 else ""
    lq, heads, shared = phase.tokens, m.heads, group
    if stack_gqa and group > 1:
        lq, heads, shared = group * phase.tokens, m.kv_heads, 1
        gqa = f"the {group} query heads of each K/V head stacked"
    out = [Gemm("q_proj", "qkv", M, H, m.heads * hd),
           Gemm("k_proj", "qkv", M, H, m.kv_heads * hd),
           Gemm("v_proj", "qkv", M, H, m.kv_heads * hd),
           Gemm("scores", "scores", lq, hd, phase.keys, seqs * heads,
                shared_b=shared, note=gqa),
           Gemm("values", "values", lq, phase.keys, hd, seqs * heads,
                shared_b=shared, note=gqa),
           Gemm("o_proj", "out", M, m.heads * hd, H)]
    if not m.moe:
        return out + _mlp("", "mlp_in", "mlp_out", M, H, m.intermediate, m.gated)
    E, k = m.experts, m.experts_per_token
    out.append(Gemm("router", "router", M, H, E))
    slots = M * k
    base, extra = divmod(slots, E)
    share = slots / E
    for rows, count in ((base + 1, extra), (base, E - extra)):
        if rows and count:
            out += _mlp("expert_", "mlp_in", "mlp_out", rows, H, m.expert_intermediate,
                        m.gated, count, share=share,
                        note=f"{count} of {E} experts with {rows} token(s) each")
    if m.shared_expert_intermediate:
        out += _mlp("shared_expert_", "mlp_in", "mlp_out", M, H,
                    m.shared_expert_intermediate, m.gated)
    return out


def lm_head_gemms(model, phase):
    """The LM head: the last position of every sequence, ``batch x H x V``."""
    return [Gemm("lm_head", "lm_head", phase.batch, model.hidden, model.vocab)]


def total_macs(gemms):
    return sum(g.macs for g in gemms)


def model_macs(model, phase):
    """MACs of the whole model (all layers and the LM head) in ``phase``."""
    return (model.layers * total_macs(layer_gemms(model, phase))
            + total_macs(lm_head_gemms(model, phase)))


def expected_experts_active(model, phase):
    """Experts that run a GEMM in the even spread: ``min(E, M * k)``."""
    return min(model.experts, phase.rows * model.experts_per_token) if model.moe else 0

