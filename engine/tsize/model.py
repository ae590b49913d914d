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
}

FAMILIES = ("gpt2", "llama", "mistral", "mixtral", "qwen2")

#: Upper bounds of the size fields (inclusive), far above any published model: they keep every count
#: the engine derives inside int64 and every message short. ``MAX_PARAMS`` bounds the total.
MAX_SIZES = {
    "n_layer": 2**16, "d_model": 2**20, "n_head": 2**20, "n_kv_head": 2**20, "head_dim": 2**20, "d_ff": 2**24,
    "vocab_size": 2**26, "n_ctx": 2**30, "n_experts": 2**16, "top_k": 2**16,
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
    published_params: int | None = None
    source: str = ""

    @property
    def gated_mlp(self) -> bool:
        return self.mlp_activation == "swiglu"

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
        return 2 * self.vocab_size * d + self.n_ctx * d + self.n_layer * layer + 2 * d

    @property
    def heads_divide(self) -> bool:
        """True when the head layout is realisable (no explicit head_dim needs d_model % n_head == 0)."""
        return (
            self.n_head > 0
            and (self.head_dim > 0 or self.d_model % self.n_head == 0)
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
            if self.head_dim == 0 and self.d_model % self.n_head:
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
_CATALOG_ONLY = {"published_params_source", "published_params_approx", "hf_config", "retrieved", "notes"}


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

HF_MODEL_TYPES = ("gpt2", "llama", "mistral", "mixtral", "qwen2")


def from_hf_config(config: dict[str, Any], *, name: str = "hf-model", where: str = "config.json") -> ModelConfig:
    """Translate a Hugging Face ``config.json`` mapping into a ModelConfig.

    Field names and defaults follow the ``transformers`` configuration
    classes (GPT2Config, LlamaConfig, MistralConfig, MixtralConfig,
    Qwen2Config): a key absent from the file takes the class default.
    """
    model_type = config.get("model_type")
    if model_type not in HF_MODEL_TYPES:
        raise TsizeError(
            f"{where}: unsupported model_type {model_type!r}; valid: {', '.join(HF_MODEL_TYPES)}"
        )

    def get(key: str, default: Any = None) -> Any:
        value = config.get(key, default)
        return default if value is None else value

    try:
        if model_type == "gpt2":
            d = int(get("n_embd", 768))
            activation = get("activation_function", "gelu_new")
            entry = dict(
                family="gpt2",
                n_layer=get("n_layer", 12),
                d_model=d,
                n_head=get("n_head", 12),
                d_ff=get("n_inner", 4 * d),
                vocab_size=get("vocab_size", 50257),
                n_ctx=get("n_positions", 1024),
                tied_embeddings=bool(get("tie_word_embeddings", True)),
                mlp_activation="gelu_new" if activation == "gelu_new" else "gelu",
                # Hugging Face's GPT-2 upcasts logits to fp32 for the loss, like its Llama
                implementation="hf", loss_fp32=True,
            )
        else:
            heads = get("num_attention_heads", 32)
            entry = dict(
                family=model_type,
                n_layer=get("num_hidden_layers", 32),
                d_model=get("hidden_size", 4096),
                n_head=heads,
                n_kv_head=get("num_key_value_heads", heads),
                d_ff=get("intermediate_size", 14336 if model_type == "mixtral" else 11008),
                vocab_size=get("vocab_size", 32000),
                n_ctx=get("max_position_embeddings", 2048),
                tied_embeddings=bool(get("tie_word_embeddings", False)),
            )
            head_dim = config.get("head_dim")
            if head_dim and head_dim * heads != entry["d_model"]:
                entry["head_dim"] = head_dim
            if entry["n_kv_head"] == heads:
                entry["n_kv_head"] = 0
            if model_type == "llama":
                bias = bool(get("attention_bias", False))
                entry.update(qkv_bias=bias, out_bias=bias, mlp_bias=bool(get("mlp_bias", False)))
            if model_type == "mixtral":
                entry.update(n_experts=get("num_local_experts", 8), top_k=get("num_experts_per_tok", 2))
            if get("hidden_act", "silu") != "silu":
                raise TsizeError(f"{where}: unsupported hidden_act {get('hidden_act')!r}; valid: silu")
    except (TypeError, ValueError) as exc:
        if str(exc).startswith(where):
            raise
        raise TsizeError(f"{where}: malformed config: {exc}") from None
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
