"""The GEMMs of a transformer language model, from its Hugging Face ``config.json``.

:func:`load_config` reads a config (a file, or the name of one shipped in
``sim/models/llm_configs``) and :func:`model_shape` turns it into a :class:`ModelShape`
(both in :mod:`sim.models.llm_config`, which says what is read and what is refused);
:func:`layer_groups` lists the GEMMs of each kind of decoder layer (one kind for most
models; DeepSeek's dense first layers, Qwen-MoE's dense layers and sliding-window
patterns give more), :func:`layer_gemms` those of one layer and :func:`lm_head_gemms`
those of the LM head, for a :class:`Phase`, each as ``C[M, N] = A[M, K] @ B[K, N]``
with a count of identical instances.

Phases. ``prefill``: ``batch`` sequences of ``tokens`` tokens each, attention over
those tokens (the full L x L score matrix; a causal kernel could skip half).
``decode``: ``batch`` sequences producing one token each, attending to ``context``
cached keys and values. Weights are the B operand of every projection, so the rows of
A are the tokens: ``M = batch * tokens`` (prefill) or ``batch`` (decode). A layer with a
sliding window of ``W`` reads ``Lk = min(keys, W)`` keys per query (in prefill that is
the band of a sliding-window kernel, ``W`` keys per query, counted as one GEMM of
``Lk`` columns); the GEMM's note says so.

Per layer, in dependency order (``stage``; GEMMs of one stage are independent):

* ``qkv``: Q (``M x H x nh*hd``), K and V (``M x H x nkv*hd``);
* ``scores``: per sequence and query head ``Lq x hd x Lk`` (``Lq`` = tokens or 1,
  ``Lk`` = tokens or context), ``batch * nh`` of them; with grouped-query attention
  ``nh / nkv`` query heads read the same keys (``shared_b``);
* ``values``: per sequence and query head ``Lq x Lk x hd`` (``stack_gqa``: per
  sequence and K/V head, the ``nh / nkv`` query heads stacked into ``nh / nkv * Lq`` rows);
* ``out``: ``M x nh*hd x H``;
* multi-head latent attention (DeepSeek) replaces the four above: ``qkv`` (Q or its
  low-rank ``q_a_proj``, and ``kv_a_proj``), ``qkv_up`` (``q_b_proj``; ``kv_b_proj``
  in the naive form), ``q_absorb`` (absorbed form), ``scores``, ``values``, ``v_up``
  (absorbed form), ``out``: see :func:`_mla_attention` and :func:`mla_form` (decode
  counts the absorbed form, prefill the naive one, unless told);
* dense MLP: ``mlp_in``: up (``M x H x I``) and, gated (SwiGLU), gate of the same
  shape; ``mlp_out``: down (``M x I x H``);
* mixture of experts: ``router`` (``M x H x E``; Qwen2-MoE's ``shared_expert_gate``,
  ``M x H x 1``, beside it), then per expert gate/up and down with ``Ie`` =
  ``moe_intermediate_size`` (else ``intermediate_size``). The ``M * k`` token slots are
  spread evenly over the ``E`` experts (the expected share of every expert is ``M * k /
  E`` tokens): ``M * k mod E`` experts get one token more than the others and experts
  with no token run no GEMM. A shared expert (``shared_expert_intermediate_size``, or
  DeepSeek's ``n_shared_experts`` as one MLP) runs on every token.

The LM head is ``M' x H x V`` once per model, ``M'`` = the tokens whose next token is
sampled: ``batch`` (the last position of each sequence) in both phases.
"""
from dataclasses import dataclass

from .llm_config import (GATED_ACTS, GATED_TYPES, LayerKind, ModelShape, WorkloadError,
                         builtin_models, load_config, model_shape)

__all__ = ["WorkloadError", "ModelShape", "LayerKind", "Phase", "Gemm", "LayerGroup",
           "load_config", "model_shape", "layer_gemms", "layer_groups", "lm_head_gemms",
           "builtin_models", "total_macs", "model_macs", "expected_experts_active",
           "mla_form", "STAGES", "PHASES", "MLA_FORMS", "GATED_TYPES", "GATED_ACTS"]

PHASES = ("prefill", "decode")
STAGES = ("qkv", "qkv_up", "q_absorb", "scores", "values", "v_up", "out", "router",
          "mlp_in", "mlp_out", "lm_head")
#: How multi-head latent attention is counted (see :func:`mla_form`).
MLA_FORMS = ("naive", "absorbed")


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


@dataclass(frozen=True)
class LayerGroup:
    """``layers`` decoder layers of one :class:`LayerKind` and their GEMMs (per layer)."""
    kind: LayerKind
    layers: int
    gemms: tuple
    part: str = "layer"       # "layer" for a model of one kind, else a short label

    @property
    def macs(self):
        return total_macs(self.gemms)


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


def mla_form(phase, form=None):
    """The form of multi-head latent attention counted in ``phase``: ``form`` if given,
    else ``absorbed`` in decode (the cache holds the compressed latents, and the key and
    value up-projections are folded into the query and output sides, as DeepSeek's
    inference does) and ``naive`` in prefill (the latents are expanded once per token,
    cheaper when the queries are as many as the keys)."""
    if form is None:
        return "absorbed" if phase.kind == "decode" else "naive"
    if form not in MLA_FORMS:
        raise WorkloadError(f"unknown MLA form {form!r}; allowed: {', '.join(MLA_FORMS)}")
    return form


def _check(model, phase, stack_gqa):
    if not isinstance(stack_gqa, bool):
        raise TypeError(f"stack_gqa must be True or False, got {stack_gqa!r}")
    if not isinstance(model, ModelShape):
        raise TypeError(f"expected a ModelShape, got {type(model).__name__}")
    if not isinstance(phase, Phase):
        raise TypeError(f"expected a Phase, got {type(phase).__name__}")


def _keys(phase, kind):
    """Keys each query reads, and the note that says why when a window cuts them."""
    if kind.window is None or kind.window >= phase.keys:
        return phase.keys, ""
    return kind.window, f"sliding window: {kind.window} of {phase.keys} keys"


def _join(*notes):
    return "; ".join(n for n in notes if n)


def _attention(m, phase, kind, stack_gqa):
    """Grouped-query (or plain multi-head) attention: Q, K, V, scores, values, O."""
    M, H, hd = phase.rows, m.hidden, m.head_dim
    group = m.heads // m.kv_heads
    keys, window = _keys(phase, kind)
    gqa = f"{group} query heads share each K/V head" if group > 1 else ""
    lq, heads, shared = phase.tokens, m.heads, group
    if stack_gqa and group > 1:
        lq, heads, shared = group * phase.tokens, m.kv_heads, 1
        gqa = f"the {group} query heads of each K/V head stacked"
    return [Gemm("q_proj", "qkv", M, H, m.heads * hd),
            Gemm("k_proj", "qkv", M, H, m.kv_heads * hd),
            Gemm("v_proj", "qkv", M, H, m.kv_heads * hd),
            Gemm("scores", "scores", lq, hd, keys, phase.batch * heads,
                 shared_b=shared, note=_join(gqa, window)),
            Gemm("values", "values", lq, keys, hd, phase.batch * heads,
                 shared_b=shared, note=_join(gqa, window)),
            Gemm("o_proj", "out", M, m.heads * hd, H)]


def _mla_attention(m, phase, kind, stack_gqa, form):
    """Multi-head latent attention (DeepSeek-V2/V3), ``nh`` heads, latent rank ``r``,
    per head ``dn`` (no position) + ``dr`` (rotary) query/key dims and ``dv`` value dims.

    Both forms: Q is ``q_proj`` (``H -> nh (dn + dr)``), or ``q_a_proj`` (``H -> q_lora``)
    then ``q_b_proj``; ``kv_a_proj`` makes the latent and the shared rotary key (``H ->
    r + dr``); ``o_proj`` is ``nh dv -> H``.

    * ``naive`` (Hugging Face's reference): ``kv_b_proj`` expands the new tokens' latents
      to per-head keys and values (``r -> nh (dn + dv)``; the cache holds them expanded),
      then per head ``scores`` (``Lq x (dn + dr) x Lk``) and ``values`` (``Lq x Lk x dv``).
    * ``absorbed``: the cache holds the latents (``r + dr`` per token, shared by all
      heads); per head the query is mapped into the latent space (``q_absorb``: ``M x
      dn x r``, one weight slice per head), ``scores`` is ``Lq x (r + dr) x Lk`` and
      ``values`` ``Lq x Lk x r`` against the shared latents (``shared_b`` = ``nh``), and
      ``v_up`` maps each head's latent output back (``M x r x dv``)."""
    M, H, nh = phase.rows, m.hidden, m.heads
    r, dn, dr, dv = m.kv_lora_rank, m.qk_nope_head_dim, m.qk_rope_head_dim, m.v_head_dim
    keys, window = _keys(phase, kind)
    out = ([Gemm("q_a_proj", "qkv", M, H, m.q_lora_rank),
            Gemm("q_b_proj", "qkv_up", M, m.q_lora_rank, nh * (dn + dr))]
           if m.q_lora_rank else [Gemm("q_proj", "qkv", M, H, nh * (dn + dr))])
    out.append(Gemm("kv_a_proj", "qkv", M, H, r + dr, note="latent + rotary key"))
    seqs, lq = phase.batch, phase.tokens
    if form == "naive":
        out += [Gemm("kv_b_proj", "qkv_up", M, r, nh * (dn + dv),
                     note="MLA naive: new tokens' latents expanded"),
                Gemm("scores", "scores", lq, dn + dr, keys, seqs * nh,
                     note=_join("MLA naive", window)),
                Gemm("values", "values", lq, keys, dv, seqs * nh,
                     note=_join("MLA naive", window))]
    else:
        heads, shared, note = nh, nh, f"MLA absorbed: {nh} heads share the latents"
        if stack_gqa:
            lq, heads, shared = nh * lq, 1, 1
            note = f"MLA absorbed: the {nh} heads stacked on the shared latents"
        out += [Gemm("q_absorb", "q_absorb", M, dn, r, nh,
                     note="MLA absorbed: query into the latent space, per head"),
                Gemm("scores", "scores", lq, r + dr, keys, seqs * heads, shared_b=shared,
                     note=_join(note, window)),
                Gemm("values", "values", lq, keys, r, seqs * heads, shared_b=shared,
                     note=_join(note, window)),
                Gemm("v_up", "v_up", M, r, dv, nh,
                     note="MLA absorbed: latent output to values, per head")]
    out.append(Gemm("o_proj", "out", M, nh * dv, H))
    return out


def _moe(m, M):
    """Router, the routed experts (even spread of the ``M * k`` token slots) and the
    shared expert(s) with Qwen2-MoE's gate."""
    H, E, k = m.hidden, m.experts, m.experts_per_token
    out = [Gemm("router", "router", M, H, E)]
    if m.shared_expert_gate:
        out.append(Gemm("shared_gate", "router", M, H, 1,
                        note="shared_expert_gate: the sigmoid gate of the shared expert"))
    slots = M * k
    base, extra = divmod(slots, E)
    share = slots / E
    for rows, count in ((base + 1, extra), (base, E - extra)):
        if rows and count:
            out += _mlp("expert_", "mlp_in", "mlp_out", rows, H, m.expert_intermediate,
                        m.gated, count, share=share,
                        note=f"{count} of {E} experts with {rows} token(s) each")
    if m.shared_expert_intermediate:
        note = (f"{m.shared_experts} shared experts as one MLP" if m.shared_experts > 1
                else "")
        out += _mlp("shared_expert_", "mlp_in", "mlp_out", M, H,
                    m.shared_expert_intermediate, m.gated, note=note)
    return out


def layer_gemms(model, phase, *, stack_gqa=False, kind=None, mla=None):
    """The GEMMs of one decoder layer of ``model`` (:class:`ModelShape`) in ``phase``
    (:class:`Phase`), in stage order (see the module docstring). ``kind``: the
    :class:`LayerKind` of the layer (default: the model's only kind; a model with
    several, such as DeepSeek's dense first layers, needs it: see
    :func:`layer_groups`). ``stack_gqa``: the query heads that share a K/V head (or,
    in absorbed MLA, the latents) are stacked into one GEMM of ``group * Lq`` rows per
    sequence (same B, exact: the rows are independent). ``mla``: the form of
    multi-head latent attention (:func:`mla_form`)."""
    _check(model, phase, stack_gqa)
    m = model
    if kind is None:
        kinds = m.kinds()
        if len(kinds) > 1:
            raise WorkloadError(f"{m.name} has {len(kinds)} kinds of layer "
                                f"({'; '.join(k.describe() for k, _ in kinds)}); "
                                f"list them with layer_groups")
        kind = kinds[0][0]
    if m.mla:
        out = _mla_attention(m, phase, kind, stack_gqa, mla_form(phase, mla))
    else:
        out = _attention(m, phase, kind, stack_gqa)
    if kind.moe:
        return out + _moe(m, phase.rows)
    return out + _mlp("", "mlp_in", "mlp_out", phase.rows, m.hidden, m.intermediate,
                      m.gated)


def _part(kind, kinds):
    """A short label of ``kind`` among the model's ``kinds`` (what differs only)."""
    words = []
    if len({k.moe for k in kinds}) > 1:
        words.append("MoE" if kind.moe else "dense")
    if len({k.window for k in kinds}) > 1:
        words.append("full-attention" if kind.window is None else f"window-{kind.window}")
    return " ".join(words + ["layer"])


def layer_groups(model, phase, *, stack_gqa=False, mla=None):
    """One :class:`LayerGroup` per kind of layer of ``model``, in order of first
    appearance: a model of one kind gives one group (``part`` ``"layer"``); DeepSeek's
    dense first layers, Qwen-MoE's ``mlp_only_layers`` or sliding-window patterns give
    more (``part`` e.g. ``"dense layer"``, ``"MoE layer"``, ``"window-4096 layer"``)."""
    _check(model, phase, stack_gqa)
    kinds = model.kinds()
    labels = [k for k, _ in kinds]
    return [LayerGroup(kind, n, tuple(layer_gemms(model, phase, stack_gqa=stack_gqa,
                                                  kind=kind, mla=mla)),
                       "layer" if len(kinds) == 1 else _part(kind, labels))
            for kind, n in kinds]


def lm_head_gemms(model, phase):
    """The LM head: the last position of every sequence, ``batch x H x V``."""
    return [Gemm("lm_head", "lm_head", phase.batch, model.hidden, model.vocab)]


def total_macs(gemms):
    return sum(g.macs for g in gemms)


def model_macs(model, phase, *, mla=None):
    """MACs of the whole model (every layer of every kind, and the LM head) in
    ``phase``."""
    return (sum(g.layers * g.macs for g in layer_groups(model, phase, mla=mla))
            + total_macs(lm_head_gemms(model, phase)))


def expected_experts_active(model, phase):
    """Experts that run a GEMM in the even spread: ``min(E, M * k)``."""
    return min(model.experts, phase.rows * model.experts_per_token) if model.moe else 0

