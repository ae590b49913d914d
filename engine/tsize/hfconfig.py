"""Strict reading of a Hugging Face ``config.json`` into a :class:`~tsize.model.ModelConfig`.

One reader per ``model_type``. Each reads every field the model's
``transformers`` modelling code uses to build its layers, with the default
of the ``transformers`` configuration class when the key is absent (or
``null`` where the class allows ``None``), and checks its JSON type: a
boolean must be a JSON boolean, a count a JSON integer, a rate a JSON
number. A field whose value the modelling code would use in a way tsize
does not model (an activation other than the model's own, ALiBi, dense
layers interleaved by a sparse step) is an error naming the field and the
values tsize supports, never a silent approximation.

The defaults are those of transformers 5.x (``tests/test_hfconfig.py``
checks them against the installed configuration classes).
"""

from __future__ import annotations

import math
from typing import Any

from tsize.errors import TsizeError

#: Most blocks a model may have (``tsize.model.MAX_SIZES["n_layer"]`` is this value). Checked as the field is
#: read, before the per-layer patterns (sliding/full attention, dense/MoE) are built from it.
MAX_LAYERS = 2**16
MAXIMA = {"num_hidden_layers": MAX_LAYERS, "n_layer": MAX_LAYERS}

_MISSING = object()

#: ``hidden_act`` values read as SiLU (``transformers.activations.ACT2FN``).
SILU = ("silu", "swish")
#: ``hidden_act`` values read as the tanh-approximated GELU of Gemma.
GELU_TANH = ("gelu_pytorch_tanh",)
#: ``hidden_act`` values read as exact GELU (GPT-NeoX, Falcon).
GELU = ("gelu",)


class _Reader:
    """Typed access to one config mapping; every error names the field."""

    def __init__(self, config: dict[str, Any], where: str):
        self.config, self.where = config, where

    def error(self, message: str) -> TsizeError:
        return TsizeError(f"{self.where}: {message}")

    def _raw(self, key: str, default: Any, nullable: bool) -> Any:
        if key not in self.config:
            if default is _MISSING:
                raise self.error(f"missing field {key!r}")
            return default
        value = self.config[key]
        if value is None:
            if nullable:  # an explicit null means None, as in the configuration class
                return None
            raise self.error(f"{key} must not be null")
        return value

    def int(self, key: str, default: Any = _MISSING, *, minimum: int = 1, nullable: bool = False) -> Any:
        value = self._raw(key, default, nullable)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(f"{key} must be an integer, got {value!r}")
        if value < minimum:
            raise self.error(f"{key} must be >= {minimum}, got {value!r}")
        if key in MAXIMA and value > MAXIMA[key]:  # before any per-layer list is built from it
            raise self.error(f"{key} {value} is out of range; valid: {minimum} to {MAXIMA[key]:,}")
        return value

    def bool(self, key: str, default: Any = _MISSING, *, nullable: bool = False) -> Any:
        value = self._raw(key, default, nullable)
        if value is None:
            return None
        if not isinstance(value, bool):
            raise self.error(f"{key} must be a JSON boolean (true or false), got {value!r}")
        return value

    def float(self, key: str, default: Any = _MISSING, *, minimum: float = 0.0, nullable: bool = False) -> Any:
        value = self._raw(key, default, nullable)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise self.error(f"{key} must be a finite number, got {value!r}")
        if value < minimum:
            raise self.error(f"{key} must be >= {minimum}, got {value!r}")
        return float(value)

    def choice(self, key: str, default: Any, choices: tuple[str, ...], *, what: str | None = None) -> str:
        value = self._raw(key, default, False)
        if value not in choices:
            raise self.error(f"unsupported {what or key} {value!r}; valid: {', '.join(choices)}")
        return value

    def list(self, key: str, default: Any = None) -> Any:
        value = self._raw(key, default, True)
        if value is None:
            return None
        if not isinstance(value, list):
            raise self.error(f"{key} must be a list, got {value!r}")
        return value

    def dict(self, key: str) -> dict[str, Any]:
        value = self._raw(key, None, True)
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.error(f"{key} must be an object, got {value!r}")
        return value


def _layer_types(r: _Reader, n_layer: int, default: list[str]) -> int:
    """Number of ``sliding_attention`` layers in ``layer_types`` (or in the class's default pattern)."""
    types = r.list("layer_types")
    if types is None:
        types = default
    if len(types) != n_layer or any(t not in ("full_attention", "sliding_attention") for t in types):
        raise r.error(f"layer_types must list num_hidden_layers={n_layer} entries, each 'full_attention' or "
                      f"'sliding_attention'")
    return sum(t == "sliding_attention" for t in types)


def _rotary(r: _Reader, head_dim: int, default_factor: float = 1.0, legacy: str | None = None) -> int:
    """Rotary channels per head (0: all of them), from ``partial_rotary_factor`` as transformers reads it."""
    rope = r.dict("rope_parameters") or r.dict("rope_scaling")
    factor = default_factor
    if legacy and legacy in r.config:
        factor = r.float(legacy, minimum=0.0)
    if "partial_rotary_factor" in r.config:
        factor = r.float("partial_rotary_factor", minimum=0.0)
    if "partial_rotary_factor" in rope:
        factor = _Reader(rope, f"{r.where}: rope_parameters").float("partial_rotary_factor", minimum=0.0)
    if not 0 < factor <= 1:
        raise r.error(f"partial_rotary_factor must be in (0, 1], got {factor!r}")
    dim = int(head_dim * factor)
    dim += dim % 2  # inverse frequencies come in pairs: arange(0, dim, 2)
    return 0 if dim >= head_dim else dim


def _window(r: _Reader, n_layer: int, *, enabled: bool = True, default: Any = None,
            layer_default: list[str] | None = None) -> dict[str, int]:
    """``sliding_window`` and the number of layers using it."""
    window = r.int("sliding_window", default, nullable=True) if enabled else None
    if not window:
        return {}
    n = n_layer if layer_default is None else _layer_types(r, n_layer, layer_default)
    return dict(sliding_window=window, n_sliding_layers=n) if n else {}


def _heads(r: _Reader, entry: dict[str, Any], *, heads_default: int, kv_default: Any, head_dim: Any) -> None:
    heads = r.int("num_attention_heads", heads_default)
    kv = r.int("num_key_value_heads", kv_default, nullable=True)
    kv = heads if kv is None else kv
    entry.update(n_head=heads, n_kv_head=0 if kv == heads else kv)
    if head_dim is not None and head_dim * heads != entry["d_model"]:
        entry["head_dim"] = head_dim


def _llama_like(r: _Reader, model_type: str, defaults: dict[str, Any]) -> dict[str, Any]:
    """Fields shared by the Llama descendants: sizes, heads, tying, activation."""
    d = r.int("hidden_size", defaults["hidden_size"])
    entry = dict(
        family=model_type,
        n_layer=r.int("num_hidden_layers", defaults["num_hidden_layers"]),
        d_model=d,
        d_ff=r.int("intermediate_size", defaults["intermediate_size"]),
        vocab_size=r.int("vocab_size", defaults["vocab_size"]),
        n_ctx=r.int("max_position_embeddings", defaults["max_position_embeddings"]),
        tied_embeddings=r.bool("tie_word_embeddings", defaults.get("tie_word_embeddings", False)),
    )
    heads = r.int("num_attention_heads", defaults["num_attention_heads"])
    head_dim = r.int("head_dim", defaults.get("head_dim"), nullable=True)
    _heads(r, entry, heads_default=heads, kv_default=defaults.get("num_key_value_heads"),
           head_dim=head_dim if head_dim is not None else None)
    return entry


def _activation(r: _Reader, key: str, default: str, valid: tuple[str, ...]) -> str:
    return r.choice(key, default, valid, what=key)


def _mixtral_family(r: _Reader, model_type: str) -> dict[str, Any]:
    defaults = {
        "llama": dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
                      vocab_size=32000, max_position_embeddings=2048, head_dim=None),
        "mistral": dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
                        num_key_value_heads=8, vocab_size=32000, max_position_embeddings=131072, head_dim=None),
        "mixtral": dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
                        num_key_value_heads=8, vocab_size=32000, max_position_embeddings=131072, head_dim=None),
        "qwen2": dict(hidden_size=4096, intermediate_size=22016, num_hidden_layers=32, num_attention_heads=32,
                      num_key_value_heads=32, vocab_size=151936, max_position_embeddings=32768, head_dim=None),
    }[model_type]
    entry = _llama_like(r, model_type, defaults)
    _activation(r, "hidden_act", "silu", SILU)
    if model_type == "llama":
        bias = r.bool("attention_bias", False)
        entry.update(qkv_bias=bias, out_bias=bias, mlp_bias=r.bool("mlp_bias", False))
    if model_type == "mixtral":
        entry.update(n_experts=r.int("num_local_experts", 8), top_k=r.int("num_experts_per_tok", 2))
    if model_type in ("mistral", "mixtral"):  # MistralConfig's default window is 4096, MixtralConfig's None
        entry.update(_window(r, entry["n_layer"], default=4096 if model_type == "mistral" else None))
    if model_type == "qwen2":
        use = r.bool("use_sliding_window", False)
        window = r.int("sliding_window", 4096, nullable=True) if use else None
        if window:
            max_window = r.int("max_window_layers", 28, minimum=0)
            default = ["sliding_attention" if i >= max_window else "full_attention" for i in range(entry["n_layer"])]
            n = _layer_types(r, entry["n_layer"], default)
            if n:
                entry.update(sliding_window=window, n_sliding_layers=n)
    return entry


def _gpt2(r: _Reader) -> dict[str, Any]:
    d = r.int("n_embd", 768)
    activation = r.choice("activation_function", "gelu_new", ("gelu_new", "gelu"), what="activation_function")
    return dict(
        family="gpt2", n_layer=r.int("n_layer", 12), d_model=d, n_head=r.int("n_head", 12),
        d_ff=r.int("n_inner", 4 * d, nullable=True), vocab_size=r.int("vocab_size", 50257),
        n_ctx=r.int("n_positions", 1024), tied_embeddings=r.bool("tie_word_embeddings", True),
        mlp_activation=activation,
        # Hugging Face's GPT-2 upcasts logits to fp32 for the loss, like its Llama
        implementation="hf", loss_fp32=True,
    )


def _moe_dense_layers(r: _Reader, n_layer: int) -> int:
    """Dense-MLP blocks of Qwen-MoE: ``mlp_only_layers`` and the ``decoder_sparse_step`` pattern."""
    step = r.int("decoder_sparse_step", 1)
    only = r.list("mlp_only_layers") or []
    if any(isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < n_layer for i in only):
        raise r.error(f"mlp_only_layers must list layer indices in 0..{n_layer - 1}")
    return sum(1 for i in range(n_layer) if i in only or (i + 1) % step != 0)


def _qwen3(r: _Reader, model_type: str) -> dict[str, Any]:
    if model_type == "qwen3":
        defaults = dict(hidden_size=4096, intermediate_size=22016, num_hidden_layers=32, num_attention_heads=32,
                        num_key_value_heads=32, vocab_size=151936, max_position_embeddings=32768, head_dim=128)
    else:
        defaults = dict(hidden_size=2048, intermediate_size=6144, num_hidden_layers=24, num_attention_heads=32,
                        num_key_value_heads=4, vocab_size=151936, max_position_embeddings=32768, head_dim=None)
    entry = _llama_like(r, model_type, defaults)
    _activation(r, "hidden_act", "silu", SILU)
    bias = r.bool("attention_bias", False)
    entry.update(qkv_bias=bias, out_bias=bias)
    if model_type == "qwen3_moe":
        # Qwen3MoeAttention reads config.head_dim through getattr with hidden_size // heads as fallback
        entry.update(n_experts=r.int("num_experts", 128), top_k=r.int("num_experts_per_tok", 8),
                     moe_d_ff=r.int("moe_intermediate_size", 768))
        entry["first_dense_layers"] = _moe_dense_layers(r, entry["n_layer"])
        if r.bool("use_sliding_window", False):
            entry.update(_window(r, entry["n_layer"], default=4096))
    else:
        if r.bool("use_sliding_window", False):
            window = r.int("sliding_window", 4096, nullable=True)
            if window:
                max_window = r.int("max_window_layers", 28, minimum=0)
                default = ["sliding_attention" if i >= max_window else "full_attention"
                           for i in range(entry["n_layer"])]
                n = _layer_types(r, entry["n_layer"], default)
                if n:
                    entry.update(sliding_window=window, n_sliding_layers=n)
    return entry


def _qwen2_moe(r: _Reader) -> dict[str, Any]:
    defaults = dict(hidden_size=2048, intermediate_size=5632, num_hidden_layers=24, num_attention_heads=16,
                    num_key_value_heads=16, vocab_size=151936, max_position_embeddings=32768, head_dim=None)
    entry = _llama_like(r, "qwen2_moe", defaults)
    entry.pop("head_dim", None)
    _activation(r, "hidden_act", "silu", SILU)
    entry.update(qkv_bias=r.bool("qkv_bias", True), n_experts=r.int("num_experts", 60),
                 top_k=r.int("num_experts_per_tok", 4), moe_d_ff=r.int("moe_intermediate_size", 1408))
    shared = r.int("shared_expert_intermediate_size", 5632)
    entry.update(n_shared_experts=1, shared_d_ff=shared, shared_expert_gate=True)
    entry["first_dense_layers"] = _moe_dense_layers(r, entry["n_layer"])
    if r.bool("use_sliding_window", False):
        window = r.int("sliding_window", 4096, nullable=True)
        if window:
            max_window = r.int("max_window_layers", 28, minimum=0)
            default = ["sliding_attention" if (i + 1) % 2 and i < max_window else "full_attention"
                       for i in range(entry["n_layer"])]
            n = _layer_types(r, entry["n_layer"], default)
            if n:
                entry.update(sliding_window=window, n_sliding_layers=n)
    return entry


def _deepseek(r: _Reader, model_type: str) -> dict[str, Any]:
    v3 = model_type == "deepseek_v3"
    d = r.int("hidden_size", 7168 if v3 else 4096)
    heads = r.int("num_attention_heads", 128 if v3 else 32)
    _activation(r, "hidden_act", "silu", SILU)
    n_layer = r.int("num_hidden_layers", 61 if v3 else 32)
    experts = r.int("n_routed_experts", 256 if v3 else 64)
    q_lora = r.int("q_lora_rank", 1536, nullable=True)
    entry = dict(
        family=model_type, n_layer=n_layer, d_model=d, n_head=heads,
        d_ff=r.int("intermediate_size", 18432 if v3 else 11008),
        vocab_size=r.int("vocab_size", 129280 if v3 else 102400),
        n_ctx=r.int("max_position_embeddings", 4096 if v3 else 2048),
        tied_embeddings=r.bool("tie_word_embeddings", False),
        q_lora_rank=q_lora or 0,
        kv_lora_rank=r.int("kv_lora_rank", 512),
        qk_rope_head_dim=r.int("qk_rope_head_dim", 64),
        qk_nope_head_dim=r.int("qk_nope_head_dim", 128),
        v_head_dim=r.int("v_head_dim", 128, nullable=not v3) if not v3 else r.int("v_head_dim", 128, nullable=True),
        moe_d_ff=r.int("moe_intermediate_size", 2048 if v3 else 1407),
        first_dense_layers=r.int("first_k_dense_replace", 3 if v3 else 0, minimum=0, nullable=v3),
    )
    if entry["first_dense_layers"] is None:
        entry["first_dense_layers"] = 0
    if entry["v_head_dim"] is None:
        raise r.error("v_head_dim must not be null")
    bias = r.bool("attention_bias", False)
    entry.update(qkv_bias=bias, out_bias=bias)
    if not v3:
        entry["mlp_bias"] = r.bool("mlp_bias", False)
    shared = r.int("n_shared_experts", 1 if v3 else 2, minimum=0, nullable=not v3) or 0
    top_k = r.int("num_experts_per_tok", 8 if v3 else None, nullable=True)
    if top_k is None:
        raise r.error("num_experts_per_tok is null: DeepSeek-V2 needs it to route tokens")
    entry.update(n_experts=experts, top_k=top_k, n_shared_experts=shared, shared_d_ff=shared * entry["moe_d_ff"])
    n_group = r.int("n_group", 8 if v3 else None, nullable=True)
    topk_group = r.int("topk_group", 4 if v3 else None, nullable=True)
    method = "noaux_tc" if v3 else r.choice("topk_method", "greedy", ("greedy", "group_limited_greedy"),
                                             what="topk_method")
    if v3 or method == "group_limited_greedy":
        if n_group is None or topk_group is None:
            raise r.error("n_group and topk_group are needed for group-limited routing")
        entry.update(n_group=n_group, topk_group=topk_group)
    if entry["n_experts"] == 1:
        raise r.error("n_routed_experts must be > 1 for DeepSeek's mixture of experts")
    return entry


def _gemma(r: _Reader, model_type: str) -> dict[str, Any]:
    if model_type == "gemma":
        defaults = dict(hidden_size=3072, intermediate_size=24576, num_hidden_layers=28, num_attention_heads=16,
                        num_key_value_heads=16, vocab_size=256000, max_position_embeddings=8192, head_dim=256,
                        tie_word_embeddings=True)
    elif model_type == "gemma2":
        defaults = dict(hidden_size=2304, intermediate_size=9216, num_hidden_layers=26, num_attention_heads=8,
                        num_key_value_heads=4, vocab_size=256000, max_position_embeddings=8192, head_dim=256,
                        tie_word_embeddings=True)
    else:
        defaults = dict(hidden_size=2304, intermediate_size=9216, num_hidden_layers=26, num_attention_heads=8,
                        num_key_value_heads=4, vocab_size=262208, max_position_embeddings=131072, head_dim=256,
                        tie_word_embeddings=True)
    entry = _llama_like(r, model_type, defaults)
    entry["family"] = "gemma3" if model_type == "gemma3_text" else model_type
    if model_type == "gemma":
        act = r.config.get("hidden_act", "gelu_pytorch_tanh")
        if act == "gelu":  # GemmaConfig.__post_init__ maps the legacy "gelu" to the tanh approximation
            act = "gelu_pytorch_tanh"
        if act not in GELU_TANH:
            raise r.error(f"unsupported hidden_act {act!r}; valid: {', '.join(GELU_TANH + GELU)}")
    else:
        _activation(r, "hidden_activation", "gelu_pytorch_tanh", GELU_TANH)
    bias = r.bool("attention_bias", False)
    entry.update(qkv_bias=bias, out_bias=bias)
    if r.bool("use_bidirectional_attention", False, nullable=True):
        raise r.error("use_bidirectional_attention = true is not a causal language model; tsize sizes causal ones")
    if model_type in ("gemma2", "gemma3_text"):
        n = entry["n_layer"]
        pattern = 2 if model_type == "gemma2" else r.int("sliding_window_pattern", 6)
        default = ["sliding_attention" if (i + 1) % pattern else "full_attention" for i in range(n)]
        entry.update(_window(r, n, default=4096, layer_default=default))
        entry["attn_softcap"] = r.float("attn_logit_softcapping", 50.0 if model_type == "gemma2" else None,
                                        nullable=True) or 0.0
        entry["final_softcap"] = r.float("final_logit_softcapping", 30.0 if model_type == "gemma2" else None,
                                         nullable=True) or 0.0
    return entry


def _phi3(r: _Reader) -> dict[str, Any]:
    defaults = dict(hidden_size=3072, intermediate_size=8192, num_hidden_layers=32, num_attention_heads=32,
                    vocab_size=32064, max_position_embeddings=4096, head_dim=None)
    entry = _llama_like(r, "phi3", defaults)
    entry.pop("head_dim", None)  # Phi3Attention: hidden_size // num_attention_heads
    _activation(r, "hidden_act", "silu", SILU)
    hd = entry["d_model"] // entry["n_head"]
    entry["rotary_dim"] = _rotary(r, hd)
    entry.update(_window(r, entry["n_layer"], default=None))
    return entry


def _olmo2(r: _Reader) -> dict[str, Any]:
    defaults = dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
                    vocab_size=50304, max_position_embeddings=2048, head_dim=None)
    entry = _llama_like(r, "olmo2", defaults)
    entry.pop("head_dim", None)
    _activation(r, "hidden_act", "silu", SILU)
    bias = r.bool("attention_bias", False)
    entry.update(qkv_bias=bias, out_bias=bias)
    return entry


def _gpt_neox(r: _Reader) -> dict[str, Any]:
    d = r.int("hidden_size", 6144)
    heads = r.int("num_attention_heads", 64)
    bias = r.bool("attention_bias", True)
    entry = dict(
        family="gpt_neox", n_layer=r.int("num_hidden_layers", 44), d_model=d, n_head=heads,
        d_ff=r.int("intermediate_size", 24576), vocab_size=r.int("vocab_size", 50432),
        n_ctx=r.int("max_position_embeddings", 2048), tied_embeddings=r.bool("tie_word_embeddings", False),
        qkv_bias=bias, out_bias=bias,
        norm_layout="parallel" if r.bool("use_parallel_residual", True) else "pre",
    )
    _activation(r, "hidden_act", "gelu", GELU)
    entry["rotary_dim"] = _rotary(r, d // heads if heads else 0, default_factor=0.25, legacy="rotary_pct")
    return entry


def _falcon(r: _Reader) -> dict[str, Any]:
    d = r.int("hidden_size", 4544) if "n_embed" not in r.config else r.int("n_embed")
    heads = r.int("num_attention_heads", 71)
    if r.bool("alibi", False, nullable=True):
        raise r.error("alibi = true (ALiBi positions) is not supported; valid: false (rotary positions)")
    new = r.bool("new_decoder_architecture", False, nullable=True)
    multi_query = r.bool("multi_query", True, nullable=True)
    parallel = r.bool("parallel_attn", True, nullable=True)
    kv = r.int("num_kv_heads", None, nullable=True)
    kv = heads if kv is None else kv
    if not new:
        kv = 1 if multi_query else heads
    bias = r.bool("bias", False, nullable=True)
    if new:
        n_ln = r.int("num_ln_in_parallel_attn", None, nullable=True)
        layout = "parallel_shared" if n_ln == 1 else "parallel"
    else:
        layout = "parallel_shared" if parallel else "pre"
    entry = dict(
        family="falcon", n_layer=r.int("num_hidden_layers", 32), d_model=d, n_head=heads,
        n_kv_head=0 if kv == heads else kv, d_ff=r.int("ffn_hidden_size", 4 * d, nullable=True),
        vocab_size=r.int("vocab_size", 65024), n_ctx=r.int("max_position_embeddings", 2048),
        tied_embeddings=r.bool("tie_word_embeddings", True), qkv_bias=bias, out_bias=bias, mlp_bias=bias,
        norm_bias=True, norm_layout=layout,
    )
    _activation(r, "activation", "gelu", GELU)
    return entry


def _gpt_oss(r: _Reader) -> dict[str, Any]:
    defaults = dict(hidden_size=2880, intermediate_size=2880, num_hidden_layers=36, num_attention_heads=64,
                    num_key_value_heads=8, vocab_size=201088, max_position_embeddings=131072, head_dim=64)
    entry = _llama_like(r, "gpt_oss", defaults)
    _activation(r, "hidden_act", "silu", SILU)
    bias = r.bool("attention_bias", True)
    entry.update(qkv_bias=bias, out_bias=bias, n_experts=r.int("num_local_experts", 128),
                 top_k=r.int("num_experts_per_tok", 4))
    for key, default in (("swiglu_alpha", 1.702), ("swiglu_limit", 7.0)):
        r.float(key, default)
    n = entry["n_layer"]
    default = ["sliding_attention" if (i + 1) % 2 else "full_attention" for i in range(n)]
    entry.update(_window(r, n, default=128, layer_default=default))
    return entry


READERS = {
    "gpt2": lambda r: _gpt2(r),
    "llama": lambda r: _mixtral_family(r, "llama"),
    "mistral": lambda r: _mixtral_family(r, "mistral"),
    "mixtral": lambda r: _mixtral_family(r, "mixtral"),
    "qwen2": lambda r: _mixtral_family(r, "qwen2"),
    "qwen3": lambda r: _qwen3(r, "qwen3"),
    "qwen3_moe": lambda r: _qwen3(r, "qwen3_moe"),
    "qwen2_moe": _qwen2_moe,
    "deepseek_v3": lambda r: _deepseek(r, "deepseek_v3"),
    "deepseek_v2": lambda r: _deepseek(r, "deepseek_v2"),
    "gemma": lambda r: _gemma(r, "gemma"),
    "gemma2": lambda r: _gemma(r, "gemma2"),
    "gemma3_text": lambda r: _gemma(r, "gemma3_text"),
    "phi3": _phi3,
    "olmo2": _olmo2,
    "gpt_neox": _gpt_neox,
    "falcon": _falcon,
    "gpt_oss": _gpt_oss,
}
#: Keys the configuration classes accept for another (``attribute_map``): alias -> the key read here.
ALIASES = {
    "gpt2": {"hidden_size": "n_embd", "max_position_embeddings": "n_positions", "num_attention_heads": "n_head",
             "num_hidden_layers": "n_layer"},
    "mixtral": {"num_experts": "num_local_experts"},
    "qwen3_moe": {"num_local_experts": "num_experts"},
    "deepseek_v3": {"num_local_experts": "n_routed_experts"},
    "deepseek_v2": {"num_experts": "n_routed_experts"},
    "gpt_oss": {"num_experts": "num_local_experts"},
}
#: Configuration classes whose ``validate_architecture`` needs heads dividing hidden_size (head_dim or not).
HEADS_DIVIDE = ("llama", "deepseek_v2", "gemma2", "gemma3_text", "gpt_neox")
#: model_type values read from a config.json (``gemma3`` is read through its ``text_config``).
MODEL_TYPES = tuple(READERS) + ("gemma3",)


def read(config: dict[str, Any], *, where: str) -> dict[str, Any]:
    """The catalog-style entry (family and fields) for one config mapping."""
    model_type = config.get("model_type")
    if model_type == "gemma3":
        text = config.get("text_config")
        if not isinstance(text, dict):
            raise TsizeError(f"{where}: gemma3 config without a text_config object; tsize sizes the text model")
        text = dict(text)
        text.setdefault("model_type", "gemma3_text")
        if "tie_word_embeddings" in config and "tie_word_embeddings" not in text:
            text["tie_word_embeddings"] = config["tie_word_embeddings"]
        return read(text, where=f"{where}: text_config")
    if not isinstance(model_type, str) or model_type not in READERS:
        raise TsizeError(f"{where}: unsupported model_type {model_type!r}; valid: {', '.join(MODEL_TYPES)}")
    config = dict(config)
    for alias, key in ALIASES.get(model_type, {}).items():
        if alias in config:
            if key in config and config[key] != config[alias]:
                raise TsizeError(f"{where}: {alias}={config[alias]!r} and {key}={config[key]!r} name the same "
                                 f"field with different values")
            config[key] = config.pop(alias)
    entry = READERS[model_type](_Reader(config, where))
    if model_type in HEADS_DIVIDE and entry["d_model"] % entry["n_head"]:
        raise TsizeError(f"{where}: num_attention_heads={entry['n_head']} must divide hidden_size={entry['d_model']} "
                         f"(transformers' {model_type} configuration refuses it)")
    return entry
