"""Model configurations: one frozen dataclass, family presets, and loaders.

A model reaches the engine as a :class:`ModelConfig`. It can come from the
model catalog (by name), from a TOML file holding one ``[model]`` table, or
from a Hugging Face ``config.json``. Every loader ends in
:func:`ModelConfig.validated`, so shape errors (a head count that does not
divide ``d_model``, a negative size) are reported the same way whatever the
source.

The fields describe the architecture exactly enough to count parameters the
way PyTorch does and to model the tensors autograd saves. A few fields record
what the *reference implementation* does rather than the architecture itself
(``softmax_fp32``, ``loss_fp32``, ``fused_qkv``, ``mlp_activation``); their
defaults follow nanoGPT for the ``gpt2`` family and Hugging Face
``transformers`` for the others, the implementations tsize is measured
against (``implementation``).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from tsize.errors import TsizeError
from tsize.hfconfig import MAX_LAYERS, MODEL_TYPES
from tsize.hfconfig import read as read_hf

#: Saved hidden-size tensors per token for one MLP (dense) or one expert, in
#: units of ``d_ff`` elements at the compute dtype. See ``activations.py``.
MLP_ACTIVATIONS = {
    # torch.nn.GELU / F.gelu (exact or tanh): saves its input, and the down
    # projection saves its output -> 2 tensors of d_ff.
    "gelu": 2,
    # Hugging Face NewGELUActivation ("gelu_new"), written in Python:
    # pow saves x, tanh saves its output, and the final product saves
    # 0.5*x and (1 + tanh); the down projection saves the product -> 5.
    "gelu_new": 5,
    # SwiGLU as in Hugging Face Llama: gate output (SiLU input), SiLU
    # output, up output, and their product (down-projection input) -> 4.
    "swiglu": 4,
    # GeGLU as in Hugging Face Gemma (gelu_pytorch_tanh, one fused ATen
    # kernel that saves its input): gate output, GELU output, up output and
    # their product -> 4.
    "geglu": 4,
    # gpt-oss's clamped SwiGLU (``GptOssExperts._apply_gate``): the fused
    # gate/up output (2, its strided halves are what the clamps save), the
    # clamped gate, sigmoid output, gate * sigmoid, up + 1, and their product
    # (the down projection's input) -> 7.
    "swiglu_oss": 7,
}

#: Activations whose MLP has a gate and an up projection.
GATED_ACTIVATIONS = ("swiglu", "geglu", "swiglu_oss")

#: Block layouts: where the norms sit and how many a block has.
#: pre: x + f(norm(x)), 2 norms (GPT-2, Llama). post: x + norm(f(x)), 2 norms
#: (OLMo 2). sandwich: x + norm(f(norm(x))), 4 norms (Gemma 2/3). parallel:
#: x + attn(norm1(x)) + mlp(norm2(x)), 2 norms (GPT-NeoX, Falcon's new
#: decoder). parallel_shared: x + attn(n) + mlp(n) with n = norm(x), 1 norm
#: (Falcon-7B).
NORM_LAYOUTS = {"pre": 2, "post": 2, "sandwich": 4, "parallel": 2, "parallel_shared": 1}
#: transformers' mixture-of-experts kernels: "grouped_mm" (its default) and "eager" (a loop over experts).
EXPERTS_KERNELS = ("grouped_mm", "eager")
#: Query/key norms: none; "head" RMSNorm over head_dim shared by all heads
#: (Qwen3, Gemma 3); "full" RMSNorm over all query and all key channels (OLMo 2).
QK_NORMS = ("none", "head", "full")

FAMILIES = ("gpt2", "llama", "mistral", "mixtral", "qwen2", "qwen3", "qwen3_moe", "qwen2_moe", "deepseek_v3",
            "deepseek_v2", "gemma", "gemma2", "gemma3", "phi3", "olmo2", "gpt_neox", "falcon", "gpt_oss")

#: Upper bounds of the size fields (inclusive), far above any published model: they keep every count
#: the engine derives inside int64 and every message short. ``MAX_PARAMS`` bounds the total.
MAX_SIZES = {
    "n_layer": MAX_LAYERS, "d_model": 2**20, "n_head": 2**20, "n_kv_head": 2**20, "head_dim": 2**20, "d_ff": 2**24,
    "vocab_size": 2**26, "n_ctx": 2**30, "n_experts": 2**16, "top_k": 2**16,
    # the structures of newer architectures (0: absent)
    "rotary_dim": 2**20, "sliding_window": 2**30, "n_sliding_layers": 2**16, "q_lora_rank": 2**20,
    "kv_lora_rank": 2**20, "qk_rope_head_dim": 2**20, "qk_nope_head_dim": 2**20, "v_head_dim": 2**20,
    "moe_d_ff": 2**24, "n_shared_experts": 2**16, "shared_d_ff": 2**24, "first_dense_layers": 2**16,
    "n_group": 2**16, "topk_group": 2**16,
}
MAX_PARAMS = 2**53
IMPLEMENTATIONS = ("nanogpt", "hf")

_FAMILY_DEFAULTS: dict[str, dict[str, Any]] = {
    "gpt2": dict(
        learned_positions=True, rmsnorm=False, norm_bias=True, mlp_activation="gelu",
        mlp_bias=True, qkv_bias=True, out_bias=True, tied_embeddings=True,
        softmax_fp32=False, loss_fp32=False, fused_qkv=True, residual_dropout=True, implementation="nanogpt",
    ),
    "llama": dict(
        learned_positions=False, rmsnorm=True, norm_bias=False, mlp_activation="swiglu",
        mlp_bias=False, qkv_bias=False, out_bias=False, tied_embeddings=False,
        softmax_fp32=True, loss_fp32=True, fused_qkv=False, residual_dropout=False, implementation="hf",
    ),
}
_FAMILY_DEFAULTS["mistral"] = dict(_FAMILY_DEFAULTS["llama"])
_FAMILY_DEFAULTS["mixtral"] = dict(_FAMILY_DEFAULTS["llama"])
_FAMILY_DEFAULTS["qwen2"] = dict(_FAMILY_DEFAULTS["llama"], qkv_bias=True)
_FAMILY_DEFAULTS["qwen3"] = dict(_FAMILY_DEFAULTS["llama"], qk_norm="head")
_FAMILY_DEFAULTS["qwen3_moe"] = dict(_FAMILY_DEFAULTS["qwen3"])
_FAMILY_DEFAULTS["qwen2_moe"] = dict(_FAMILY_DEFAULTS["qwen2"])
_FAMILY_DEFAULTS["deepseek_v3"] = dict(_FAMILY_DEFAULTS["llama"])
_FAMILY_DEFAULTS["deepseek_v2"] = dict(_FAMILY_DEFAULTS["llama"])
_FAMILY_DEFAULTS["gemma"] = dict(_FAMILY_DEFAULTS["llama"], mlp_activation="geglu", tied_embeddings=True,
                                 norm_fp32=True)
_FAMILY_DEFAULTS["gemma2"] = dict(_FAMILY_DEFAULTS["gemma"], norm_layout="sandwich")
_FAMILY_DEFAULTS["gemma3"] = dict(_FAMILY_DEFAULTS["gemma2"], qk_norm="head")
_FAMILY_DEFAULTS["phi3"] = dict(_FAMILY_DEFAULTS["llama"], fused_qkv=True, fused_gate_up=True)
_FAMILY_DEFAULTS["olmo2"] = dict(_FAMILY_DEFAULTS["llama"], qk_norm="full", norm_layout="post", norm_fp32=True)
_FAMILY_DEFAULTS["gpt_neox"] = dict(
    _FAMILY_DEFAULTS["llama"], rmsnorm=False, norm_bias=True, mlp_activation="gelu", mlp_bias=True, qkv_bias=True,
    out_bias=True, fused_qkv=True, norm_layout="parallel")
_FAMILY_DEFAULTS["falcon"] = dict(
    _FAMILY_DEFAULTS["llama"], rmsnorm=False, norm_bias=True, mlp_activation="gelu", fused_qkv=True,
    tied_embeddings=True, norm_layout="parallel_shared", softmax_fp32=False)
_FAMILY_DEFAULTS["gpt_oss"] = dict(
    _FAMILY_DEFAULTS["llama"], mlp_activation="swiglu_oss", qkv_bias=True, out_bias=True, attention_sinks=True,
    expert_bias=True, router_bias=True, softmax_fp32=False, norm_fp32=True)


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """One transformer decoder configuration.

    Sizes are counts (elements, not bytes). ``n_experts == 1`` is a dense
    model; ``n_experts > 1`` replaces every MLP with ``n_experts`` experts of
    width ``d_ff`` and a bias-free linear router, of which ``top_k`` run per
    token (Mixtral, Jiang et al. 2024).
    """

    name: str
    family: str
    n_layer: int
    d_model: int
    n_head: int
    d_ff: int
    vocab_size: int
    n_ctx: int
    n_kv_head: int = 0  # 0: equal to n_head (multi-head attention)
    head_dim: int = 0  # 0: d_model // n_head
    learned_positions: bool = True
    rmsnorm: bool = False
    norm_bias: bool = True
    mlp_activation: str = "gelu"
    mlp_bias: bool = True
    qkv_bias: bool = True
    out_bias: bool = True
    tied_embeddings: bool = True
    n_experts: int = 1
    top_k: int = 1
    softmax_fp32: bool = False
    loss_fp32: bool = False
    fused_qkv: bool = True
    residual_dropout: bool = True  # dropout on embeddings and block outputs (GPT-2); Llama has attention dropout only
    implementation: str = "nanogpt"  # reference implementation measured against: "nanogpt" or "hf" (transformers)
    # -- block structure (see NORM_LAYOUTS, QK_NORMS) --
    norm_layout: str = "pre"
    qk_norm: str = "none"
    fused_gate_up: bool = False  # one gate_up projection (Phi-3)
    rotary_dim: int = 0  # rotary channels per head; 0: all of head_dim (GPT-NeoX rotary_pct, Phi-3 partial_rotary_factor)
    attention_sinks: bool = False  # one learned sink logit per head (gpt-oss)
    attn_softcap: float = 0.0  # tanh soft-capping of attention logits (Gemma 2); 0: none
    final_softcap: float = 0.0  # tanh soft-capping of the output logits (Gemma 2); 0: none
    sliding_window: int = 0  # tokens a windowed layer's query sees (itself included); 0: no window
    n_sliding_layers: int = 0  # layers with the sliding window (the others attend to the whole context)
    # -- multi-head latent attention (DeepSeek-V2/V3); kv_lora_rank > 0 turns it on --
    q_lora_rank: int = 0  # 0: queries projected directly (DeepSeek-V2-Lite)
    kv_lora_rank: int = 0
    qk_rope_head_dim: int = 0
    qk_nope_head_dim: int = 0
    v_head_dim: int = 0
    # -- mixture of experts --
    moe_d_ff: int = 0  # width of one routed expert; 0: d_ff (Mixtral)
    n_shared_experts: int = 0  # always-active experts (DeepSeek: n_shared_experts; Qwen2-MoE: 1)
    shared_d_ff: int = 0  # width of the shared-expert MLP, all shared experts together
    shared_expert_gate: bool = False  # sigmoid gate d -> 1 on the shared expert (Qwen2-MoE)
    first_dense_layers: int = 0  # blocks with a dense MLP of width d_ff instead of experts
    expert_bias: bool = False  # biases in the routed experts (gpt-oss)
    router_bias: bool = False  # bias in the router (gpt-oss)
    n_group: int = 0  # expert groups for group-limited routing (DeepSeek); 0: none
    topk_group: int = 0  # groups a token may pick from
    # -- what the reference implementation does (transformers 5.x) --
    norm_fp32: bool = False  # the norm keeps its normalised output in fp32 (Gemma's (1 + w) RMSNorm)
    experts_kernel: str = "grouped_mm"  # transformers' experts_implementation: "grouped_mm" (default) or "eager"
    published_params: int | None = None
    source: str = ""

    @property
    def gated_mlp(self) -> bool:
        return self.mlp_activation in GATED_ACTIVATIONS

    @property
    def mla(self) -> bool:
        """Multi-head latent attention (DeepSeek-V2/V3)."""
        return self.kv_lora_rank > 0

    @property
    def expert_d_ff(self) -> int:
        return self.moe_d_ff or self.d_ff

    @property
    def moe_layers(self) -> int:
        """Blocks whose MLP is a mixture of experts."""
        return self.n_layer - self.first_dense_layers if self.n_experts > 1 else 0

    @property
    def kv_heads(self) -> int:
        return self.n_kv_head or self.n_head

    @property
    def head_size(self) -> int:
        return self.head_dim or (self.d_model // self.n_head if self.n_head else 0)

    def params_upper_bound(self) -> int:
        """An upper bound of the parameter count, in exact Python integers (every bias on, untied).

        ``validated`` refuses a model above ``MAX_PARAMS``, so every count the
        engine derives (each part of the total) fits int64 without wrapping.
        """
        d, hd, H, K, E = self.d_model, self.head_size, self.n_head, self.kv_heads, self.n_experts
        qkv = (H + 2 * K) * hd
        layer = 4 * d + d * qkv + qkv + H * hd * d + d + d * E + E * (3 * d * self.d_ff + 2 * self.d_ff + d)
        # newer structures, each counted as if present in every block: norms (four, and q/k norms over every
        # channel), multi-head latent attention, routed experts of width moe_d_ff, shared experts
        q, kv, n, r, v = (self.q_lora_rank, self.kv_lora_rank, self.qk_nope_head_dim, self.qk_rope_head_dim,
                          self.v_head_dim)
        layer += 8 * d + 4 * H * hd + d * (q + kv + r) + (q + kv + d) * H * (n + r + v) + H * v * d + 2 * (q + kv)
        layer += E * (3 * d * self.moe_d_ff + d + 1) + 3 * d * self.shared_d_ff + d
        return 2 * self.vocab_size * d + self.n_ctx * d + self.n_layer * layer + 2 * d

    @property
    def heads_divide(self) -> bool:
        """True when the head layout is realisable (no explicit head_dim needs d_model % n_head == 0)."""
        return (
            self.n_head > 0
            and (self.head_dim > 0 or self.mla or self.d_model % self.n_head == 0)
            and self.n_head % self.kv_heads == 0
        )

    def validated(self, *, strict_heads: bool = True, where: str | None = None) -> "ModelConfig":
        """Return self after checking every field; raise ValueError naming the bad one.

        With ``strict_heads=False`` a head count that does not divide
        ``d_model`` is allowed through, for sweeps that flag such points.
        """
        where = where or f"model {self.name!r}"
        if type(self.name) is not str or not self.name:
            raise TsizeError(f"{where}: name must be a non-empty string, got {self.name!r}")
        if type(self.family) is not str or self.family not in FAMILIES:
            raise TsizeError(f"{where}: unknown family {self.family!r}; valid: {', '.join(FAMILIES)}")
        fields = self.__dict__
        for field in _POSITIVE_FIELDS:
            value = fields[field]
            if type(value) is not int or value <= 0:  # type(...) is int: bool and float refused
                raise TsizeError(f"{where}: {field} must be a positive integer, got {value!r}")
            if value > MAX_SIZES[field]:
                raise TsizeError(f"{where}: {field} {value} is out of range; valid: 1 to {MAX_SIZES[field]:,}")
        for field in _BOOL_FIELDS:
            if type(fields[field]) is not bool:
                raise TsizeError(f"{where}: {field} must be true or false, got {fields[field]!r}")
        for field in ("n_kv_head", "head_dim"):
            value = fields[field]
            if type(value) is not int or value < 0:
                raise TsizeError(f"{where}: {field} must be a positive integer, got {value!r}")
            if value > MAX_SIZES[field]:
                raise TsizeError(f"{where}: {field} {value} is out of range; valid: 0 to {MAX_SIZES[field]:,}")
        self._check_structure(where)
        bound = self.params_upper_bound()
        if bound > MAX_PARAMS:
            raise TsizeError(f"{where}: about {float(bound):.3g} parameters; tsize counts models of at most "
                             f"2^53 = {MAX_PARAMS:.3g} parameters (exact in int64 and float64)")
        if type(self.mlp_activation) is not str or self.mlp_activation not in MLP_ACTIVATIONS:
            raise TsizeError(
                f"{where}: unknown mlp_activation {self.mlp_activation!r}; valid: {', '.join(MLP_ACTIVATIONS)}"
            )
        if type(self.implementation) is not str or self.implementation not in IMPLEMENTATIONS:
            raise TsizeError(f"{where}: unknown implementation {self.implementation!r}; "
                             f"valid: {', '.join(IMPLEMENTATIONS)}")
        if self.implementation == "nanogpt" and (self.family != "gpt2" or self.mlp_activation != "gelu"):
            raise TsizeError(f"{where}: implementation 'nanogpt' needs family 'gpt2' and mlp_activation 'gelu'")
        if self.top_k > self.n_experts:
            raise TsizeError(f"{where}: top_k={self.top_k} exceeds n_experts={self.n_experts}")
        if strict_heads:
            if self.head_dim == 0 and not self.mla and self.d_model % self.n_head:
                raise TsizeError(
                    f"{where}: n_head={self.n_head} does not divide d_model={self.d_model}; "
                    f"valid n_head near {self.n_head}: {_nearby_divisors(self.d_model, self.n_head)}"
                )
            if self.n_head % self.kv_heads:
                raise TsizeError(
                    f"{where}: n_kv_head={self.kv_heads} does not divide n_head={self.n_head}; "
                    f"valid n_kv_head near {self.kv_heads}: {_nearby_divisors(self.n_head, self.kv_heads)}"
                )
        return self

    def _check_structure(self, where: str) -> None:
        """Check the fields of the block structures added for newer architectures."""
        for field, choices in (("norm_layout", tuple(NORM_LAYOUTS)), ("qk_norm", QK_NORMS),
                               ("experts_kernel", EXPERTS_KERNELS)):
            if getattr(self, field) not in choices:
                raise TsizeError(f"{where}: unknown {field} {getattr(self, field)!r}; valid: {', '.join(choices)}")
        counts = ("rotary_dim", "sliding_window", "n_sliding_layers", "q_lora_rank", "kv_lora_rank",
                  "qk_rope_head_dim", "qk_nope_head_dim", "v_head_dim", "moe_d_ff", "n_shared_experts", "shared_d_ff",
                  "first_dense_layers", "n_group", "topk_group")
        for field in counts:
            value = getattr(self, field)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise TsizeError(f"{where}: {field} must be a non-negative integer, got {value!r}")
            if value > MAX_SIZES[field]:
                raise TsizeError(f"{where}: {field} {value} is out of range; valid: 0 to {MAX_SIZES[field]:,}")
        for field in ("attn_softcap", "final_softcap"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < float("inf"):
                raise TsizeError(f"{where}: {field} must be a finite number >= 0 (0: none), got {value!r}")
        if self.n_sliding_layers > self.n_layer:
            raise TsizeError(f"{where}: n_sliding_layers={self.n_sliding_layers} exceeds n_layer={self.n_layer}")
        if (self.n_sliding_layers > 0) != (self.sliding_window > 0):
            raise TsizeError(f"{where}: give sliding_window and n_sliding_layers together (both 0: no window)")
        if self.rotary_dim > self.head_size or self.rotary_dim % 2:
            raise TsizeError(f"{where}: rotary_dim={self.rotary_dim} must be even and at most head_dim="
                             f"{self.head_size}")
        if self.mla:
            for field in ("qk_rope_head_dim", "qk_nope_head_dim", "v_head_dim"):
                if getattr(self, field) <= 0:
                    raise TsizeError(f"{where}: multi-head latent attention needs {field} > 0")
            if self.fused_qkv or self.qk_norm != "none" or self.n_kv_head not in (0, self.n_head):
                raise TsizeError(f"{where}: multi-head latent attention has its own projections: "
                                 f"fused_qkv, qk_norm and n_kv_head do not apply")
        elif self.q_lora_rank or self.qk_rope_head_dim or self.qk_nope_head_dim or self.v_head_dim:
            raise TsizeError(f"{where}: q_lora_rank, qk_rope_head_dim, qk_nope_head_dim and v_head_dim need "
                             f"kv_lora_rank > 0 (multi-head latent attention)")
        moe_only = ("moe_d_ff", "n_shared_experts", "shared_d_ff", "first_dense_layers", "n_group", "topk_group")
        if self.n_experts == 1:
            used = [f for f in moe_only if getattr(self, f)] + [
                f for f in ("shared_expert_gate", "expert_bias", "router_bias") if getattr(self, f)]
            if used:
                raise TsizeError(f"{where}: {used[0]} needs a mixture of experts (n_experts > 1)")
        if self.first_dense_layers > self.n_layer:
            raise TsizeError(f"{where}: first_dense_layers={self.first_dense_layers} exceeds n_layer={self.n_layer}")
        if (self.n_shared_experts > 0) != (self.shared_d_ff > 0):
            raise TsizeError(f"{where}: give n_shared_experts and shared_d_ff together (both 0: no shared expert)")
        if self.shared_expert_gate and not self.shared_d_ff:
            raise TsizeError(f"{where}: shared_expert_gate needs a shared expert (shared_d_ff > 0)")
        if self.n_group:
            if self.n_experts % self.n_group or not 0 < self.topk_group <= self.n_group:
                raise TsizeError(f"{where}: n_group={self.n_group} must divide n_experts={self.n_experts} and "
                                 f"topk_group={self.topk_group} must be in 1..n_group")
        elif self.topk_group:
            raise TsizeError(f"{where}: topk_group needs n_group > 0")
        if self.fused_gate_up and not self.gated_mlp:
            raise TsizeError(f"{where}: fused_gate_up needs a gated mlp_activation ({', '.join(GATED_ACTIVATIONS)})")

    @property
    def block_norms(self) -> int:
        return NORM_LAYOUTS[self.norm_layout]

    def not_modelled(self) -> list[str]:
        """What tsize does not model for this architecture, in words (shown by ``tsize size``)."""
        notes = []
        if self.n_experts > 1:
            notes.append("expert parallelism: every data-parallel rank holds all experts "
                         "(tensor parallelism splits each expert), and all-to-all traffic is not counted")
        if self.mla:
            notes.append("MLA: training memory is sized as transformers trains it (keys and values up-projected per "
                         "head); serving caches the latent and times decode absorbed, as vLLM (its 16-bit copies of "
                         "the absorbed W_UK/W_UV weights are not counted)")
        if self.n_sliding_layers:
            notes.append("sliding window: flops_iteration_causal counts a windowed kernel; flops_forward/backward "
                         "count the full T x T matrix, as naive attention computes it")
        if self.attn_softcap:
            notes.append("attention soft-capping with attention=flash assumes a fused kernel that caps in place "
                         "(FlashAttention-2); transformers runs Gemma 2 with eager attention only")
        if self.family == "falcon" and self.kv_heads == 1 < self.n_head:
            notes.append("attention=flash: transformers' Falcon calls SDPA with one K/V head and no enable_gqa, "
                         "so PyTorch runs its math fallback; sized as that, not as a fused kernel")
        if self.family == "deepseek_v3":
            notes.append("the multi-token-prediction module (num_nextn_predict_layers) is not part of the model")
        return notes


def _nearby_divisors(n: int, near: int, count: int = 3, steps: int = 10_000) -> str:
    """Up to ``count`` divisors of ``n`` on each side of ``near``, comma-separated.

    Looks at most ``steps`` candidates on each side (never enumerates up to
    ``n``, which may be large); 1 and ``n`` always divide.
    """
    found = {1, n}
    below = above = 0
    for k in range(min(near, n), max(1, near - steps), -1):
        if n % k == 0:
            found.add(k)
            below += 1
            if below == count:
                break
    for k in range(near + 1, min(n, near + steps)):
        if n % k == 0:
            found.add(k)
            above += 1
            if above == count:
                break
    return ", ".join(str(k) for k in sorted(found))


_FIELDS = {f.name for f in dataclasses.fields(ModelConfig)}
_DEFAULTS = {f.name: f.default for f in dataclasses.fields(ModelConfig) if f.default is not dataclasses.MISSING}
_POSITIVE_FIELDS = ("n_layer", "d_model", "n_head", "d_ff", "vocab_size", "n_ctx", "n_experts", "top_k")
_BOOL_FIELDS = tuple(f.name for f in dataclasses.fields(ModelConfig) if f.type in ("bool", bool))
_CATALOG_ONLY = {"published_params_source", "published_params_approx", "published_active_params", "hf_config",
                 "retrieved", "notes"}


def from_mapping(entry: dict[str, Any], *, where: str = "model", strict_heads: bool = True) -> ModelConfig:
    """Build a ModelConfig from a catalog/TOML mapping, applying family defaults."""
    unknown = set(entry) - _FIELDS - _CATALOG_ONLY
    if unknown:
        raise TsizeError(
            f"{where}: unknown field {sorted(unknown)[0]!r}; valid: {', '.join(sorted(_FIELDS - {'source'}))}"
        )
    for required in ("name", "family"):
        if required not in entry:
            raise TsizeError(f"{where}: missing required field {required!r}")
    family = entry["family"]
    if family not in FAMILIES:
        raise TsizeError(f"{where}: unknown family {family!r}; valid: {', '.join(FAMILIES)}")
    values = dict(_DEFAULTS)
    values.update(_FAMILY_DEFAULTS[family])
    values.update(entry)
    for key in _CATALOG_ONLY.intersection(entry):
        del values[key]
    missing = [f for f in ("n_layer", "d_model", "n_head", "d_ff", "vocab_size", "n_ctx") if f not in values]
    if missing:
        raise TsizeError(f"{where}: missing required field {missing[0]!r}")
    return from_fields(values, where=where, strict_heads=strict_heads)


def from_fields(values: dict[str, Any], *, where: str = "model", strict_heads: bool = True) -> ModelConfig:
    """A ModelConfig from a mapping of known field names that holds every field without a default
    (a catalog model's fields with some replaced, as a spec's ``[[family]]`` generates); checked like any other.

    Fills the frozen instance directly, several times faster than the generated ``__init__`` and
    :func:`from_mapping`'s merging, for the ~10^5 models one family may generate.
    """
    config = object.__new__(ModelConfig)
    config.__dict__.update(_DEFAULTS)
    config.__dict__.update(values)
    return config.validated(strict_heads=strict_heads, where=where)


def from_toml(path: str | Path) -> ModelConfig:
    """Load one model from a TOML file holding a ``[model]`` table (same fields as the catalog)."""
    from tsize.paths import read_toml

    path = Path(path)
    data, _ = read_toml(path, "model file")
    entry = data.get("model")
    if not isinstance(entry, dict):
        raise TsizeError(f"{path}: expected one [model] table with the catalog's fields")
    entry = dict(entry)
    entry.setdefault("name", path.stem)
    return from_mapping(entry, where=str(path))


# ---------------------------------------------------------------------------
# Hugging Face config.json

HF_MODEL_TYPES = MODEL_TYPES  # the model types read from a config.json


def from_hf_config(config: dict[str, Any], *, name: str = "hf-model", where: str = "config.json") -> ModelConfig:
    """Translate a Hugging Face ``config.json`` mapping into a ModelConfig, strictly.

    Field names and defaults follow the ``transformers`` configuration
    classes; types and values are checked (``tsize.hfconfig``).
    """
    entry = read_hf(config, where=where)
    entry["name"] = name
    entry["source"] = where
    return from_mapping(entry, where=where)


def from_hf_file(path: str | Path) -> ModelConfig:
    """Load a Hugging Face ``config.json`` (a JSON object) from a regular file."""
    from tsize.paths import read_text

    path = Path(path)
    text = read_text(path, "model file")
    try:
        config = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TsizeError(f"{path}: malformed JSON: {exc}") from None
    except RecursionError:
        raise TsizeError(f"{path}: malformed config: JSON nested too deeply (a config.json is one flat object)") \
            from None
    if not isinstance(config, dict):
        raise TsizeError(f"{path}: expected a JSON object")
    name = config.get("_name_or_path") or (path.parent.name if path.name == "config.json" else path.stem)
    try:
        return from_hf_config(config, name=str(name), where=str(path))
    except (ArithmeticError, RecursionError) as exc:  # int(Infinity), a huge exponent...
        raise TsizeError(f"{path}: malformed config: {exc}") from None
