"""Measure real PyTorch models: the ground truth tsize's estimates are checked against.

One module serves both ``tsize validate`` and the test suite:

* parameters: ``sum(p.numel() for p in model.parameters())`` (tied weights
  once), on the meta device;
* FLOPs of one forward and one backward: ``torch.utils.flop_counter``
  ``FlopCounterMode`` (naive attention, whose matmuls the counter sees; the
  count is the same for every attention kernel);
* bytes saved for backward: ``torch.autograd.graph.saved_tensors_hooks``,
  deduplicated by storage, parameter storages excluded;

FLOPs and saved bytes run under ``FakeTensorMode`` on the CPU (no memory,
any size, the CPU kernels' choices, flash attention included), except for
mixtures of experts, whose data-dependent routing needs real (small) CPU
tensors;
* checkpoint bytes: a real ``torch.save`` of model and AdamW state after one
  optimizer step (small models only).

Models are built from a :class:`~tsize.model.ModelConfig`: a nanoGPT-style
GPT (written here, after Karpathy's ``model.py``) for the gpt2 family with
PyTorch's GELU, Hugging Face ``transformers`` classes otherwise.

Requires the ``validate`` extra: ``pip install -e '.[validate]'``.
"""

from __future__ import annotations

import contextlib
import gc
import io
import math
import weakref
from typing import Any

from tsize import catalog
from tsize.errors import TsizeError
from tsize.model import ModelConfig

try:
    import torch
    from torch import nn
    from torch.nn import functional as F
except ImportError:  # pragma: no cover - exercised only without the extra
    torch = None

INSTALL_HINT = "PyTorch and transformers are needed to measure models: pip install -e '.[validate]'"

#: The compute dtypes a model can be built in: the catalog's (each is also the name of a torch dtype).
DTYPES = catalog.DTYPES


def require() -> None:
    if torch is None:
        raise RuntimeError(INSTALL_HINT)
    try:
        import transformers  # noqa: F401
    except ImportError:
        raise RuntimeError(INSTALL_HINT) from None


# ---------------------------------------------------------------------------
# nanoGPT-style GPT (the gpt2 family's reference implementation)

if torch is not None:

    class _LayerNorm(nn.Module):
        """LayerNorm with an optional bias (nanoGPT: PyTorch's lacks bias=False before 2.1)."""

        def __init__(self, d: int, bias: bool):
            super().__init__()
            self.weight = nn.Parameter(torch.ones(d))
            self.bias = nn.Parameter(torch.zeros(d)) if bias else None

        def forward(self, x):
            return F.layer_norm(x, self.weight.shape, self.weight, self.bias, 1e-5)

    class _Attention(nn.Module):
        def __init__(self, m: ModelConfig, flash: bool, dropout: float):
            super().__init__()
            d, self.n_head, self.flash, self.p = m.d_model, m.n_head, flash, dropout
            self.c_attn = nn.Linear(d, 3 * d, bias=m.qkv_bias)
            self.c_proj = nn.Linear(d, d, bias=m.out_bias)
            self.attn_dropout = nn.Dropout(dropout)
            self.resid_dropout = nn.Dropout(dropout)
            if not flash:
                self.register_buffer("bias", torch.tril(torch.ones(m.n_ctx, m.n_ctx)).view(1, 1, m.n_ctx, m.n_ctx))

        def forward(self, x):
            B, T, C = x.size()
            q, k, v = self.c_attn(x).split(C, dim=2)
            q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
            if self.flash:
                y = F.scaled_dot_product_attention(q, k, v, attn_mask=None,
                                                   dropout_p=self.p if self.training else 0.0, is_causal=True)
            else:
                att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
                att = att.masked_fill(self.bias[:, :, :T, :T] == 0, float("-inf"))
                att = self.attn_dropout(F.softmax(att, dim=-1))
                y = att @ v
            y = y.transpose(1, 2).contiguous().view(B, T, C)
            return self.resid_dropout(self.c_proj(y))

    class _MLP(nn.Module):
        def __init__(self, m: ModelConfig, dropout: float):
            super().__init__()
            self.c_fc = nn.Linear(m.d_model, m.d_ff, bias=m.mlp_bias)
            self.gelu = nn.GELU()
            self.c_proj = nn.Linear(m.d_ff, m.d_model, bias=m.mlp_bias)
            self.dropout = nn.Dropout(dropout)

        def forward(self, x):
            return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))

    class _Block(nn.Module):
        def __init__(self, m: ModelConfig, flash: bool, dropout: float):
            super().__init__()
            self.ln_1 = _LayerNorm(m.d_model, m.norm_bias)
            self.attn = _Attention(m, flash, dropout)
            self.ln_2 = _LayerNorm(m.d_model, m.norm_bias)
            self.mlp = _MLP(m, dropout)

        def forward(self, x):
            x = x + self.attn(self.ln_1(x))
            return x + self.mlp(self.ln_2(x))

    class NanoGPT(nn.Module):
        """A GPT with nanoGPT's modules and operations (tied LM head, fused QKV)."""

        def __init__(self, m: ModelConfig, flash: bool = True, dropout: float = 0.0):
            super().__init__()
            self.transformer = nn.ModuleDict(dict(
                wte=nn.Embedding(m.vocab_size, m.d_model),
                wpe=nn.Embedding(m.n_ctx, m.d_model),
                drop=nn.Dropout(dropout),
                h=nn.ModuleList([_Block(m, flash, dropout) for _ in range(m.n_layer)]),
                ln_f=_LayerNorm(m.d_model, m.norm_bias),
            ))
            self.lm_head = nn.Linear(m.d_model, m.vocab_size, bias=False)
            if m.tied_embeddings:
                self.transformer.wte.weight = self.lm_head.weight

        def forward(self, idx, targets):
            t = idx.size(1)
            pos = torch.arange(0, t, dtype=torch.long, device=idx.device)
            x = self.transformer.drop(self.transformer.wte(idx) + self.transformer.wpe(pos))
            for block in self.transformer.h:
                x = block(x)
            logits = self.lm_head(self.transformer.ln_f(x))
            return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1), ignore_index=-1)


def uses_nanogpt(m: ModelConfig) -> bool:
    """Whether ``m`` is built as nanoGPT's GPT (else as a Hugging Face class)."""
    return m.implementation == "nanogpt"


def _hf_config(m: ModelConfig, attention: str, dropout: float, experts: str | None = None):
    import transformers

    impl = "sdpa" if attention == "flash" else "eager"
    if attention == "flash" and m.family in EAGER_ONLY:
        raise TsizeError(f"model {m.name!r}: transformers has no SDPA attention for {m.family}; measure 'naive'")
    if m.family == "gpt2":
        return transformers.GPT2Config(
            n_layer=m.n_layer, n_embd=m.d_model, n_head=m.n_head, n_inner=m.d_ff, vocab_size=m.vocab_size,
            n_positions=m.n_ctx, activation_function="gelu_new" if m.mlp_activation == "gelu_new" else "gelu",
            resid_pdrop=dropout, embd_pdrop=dropout, attn_pdrop=dropout, tie_word_embeddings=m.tied_embeddings,
            attn_implementation=impl, bos_token_id=None, eos_token_id=None, loss_type="ForCausalLM",
        )
    common = dict(
        hidden_size=m.d_model, intermediate_size=m.d_ff, num_hidden_layers=m.n_layer, num_attention_heads=m.n_head,
        num_key_value_heads=m.kv_heads, head_dim=m.head_size, vocab_size=m.vocab_size,
        max_position_embeddings=m.n_ctx, tie_word_embeddings=m.tied_embeddings, attention_dropout=dropout,
        attn_implementation=impl, bos_token_id=None, eos_token_id=None, pad_token_id=None, loss_type="ForCausalLM",
    )
    if m.family == "llama":
        if m.qkv_bias != m.out_bias:
            raise TsizeError(f"model {m.name!r}: Llama has one attention_bias for q/k/v and o; cannot build "
                             f"qkv_bias={m.qkv_bias}, out_bias={m.out_bias}")
        return transformers.LlamaConfig(attention_bias=m.qkv_bias, mlp_bias=m.mlp_bias, **common)
    if m.family == "mistral":
        return transformers.MistralConfig(sliding_window=m.sliding_window or None, **common)
    if m.family == "qwen2":
        return transformers.Qwen2Config(use_sliding_window=bool(m.sliding_window),
                                        sliding_window=m.sliding_window or None, layer_types=_layer_types(m),
                                        **common)
    if m.family == "mixtral":
        extra = {"experts_implementation": experts} if experts else {}
        return transformers.MixtralConfig(num_local_experts=m.n_experts, num_experts_per_tok=m.top_k,
                                          sliding_window=m.sliding_window or None, router_aux_loss_coef=0.0, **extra,
                                          **common)
    if m.family in _NEW_FAMILIES:
        return _hf_config_new(m, common, experts)
    raise TsizeError(f"model {m.name!r}: no reference implementation for family {m.family!r}")


_HF_CLASSES = {"gpt2": "GPT2LMHeadModel", "llama": "LlamaForCausalLM", "mistral": "MistralForCausalLM",
               "qwen2": "Qwen2ForCausalLM", "mixtral": "MixtralForCausalLM", "qwen3": "Qwen3ForCausalLM",
               "qwen3_moe": "Qwen3MoeForCausalLM", "qwen2_moe": "Qwen2MoeForCausalLM",
               "deepseek_v3": "DeepseekV3ForCausalLM", "deepseek_v2": "DeepseekV2ForCausalLM",
               "gemma": "GemmaForCausalLM", "gemma2": "Gemma2ForCausalLM", "gemma3": "Gemma3ForCausalLM",
               "phi3": "Phi3ForCausalLM", "olmo2": "Olmo2ForCausalLM", "gpt_neox": "GPTNeoXForCausalLM",
               "falcon": "FalconForCausalLM", "gpt_oss": "GptOssForCausalLM"}
_NEW_FAMILIES = ("qwen3", "qwen3_moe", "qwen2_moe", "deepseek_v3", "deepseek_v2", "gemma", "gemma2", "gemma3",
                 "phi3", "olmo2", "gpt_neox", "falcon", "gpt_oss")


#: Families whose transformers classes have no SDPA attention (eager only): "flash" is not measurable on them.
EAGER_ONLY = ("gemma2", "gpt_oss")


def fused_kernel_unmeasurable(m: ModelConfig) -> str | None:
    """Why SDPA's fused kernel cannot be measured for ``m`` on the CPU (None when it can)."""
    if m.family in EAGER_ONLY:
        return f"transformers has no SDPA attention for {m.family}"
    if m.mla:
        return ("SDPA on the CPU runs its math fallback when query/key and value head sizes differ "
                "(multi-head latent attention); CUDA's fused kernels do not")
    return None


def _layer_types(m: ModelConfig) -> list[str]:
    """``n_sliding_layers`` windowed layers, then the full-attention ones (totals do not depend on the order)."""
    return ["sliding_attention"] * m.n_sliding_layers + ["full_attention"] * (m.n_layer - m.n_sliding_layers)


def _hf_config_new(m: ModelConfig, common: dict[str, Any], experts: str | None):
    """The transformers configuration of one of the newer families, field by field from ``m``."""
    import transformers

    c = dict(common)
    extra = {"experts_implementation": experts} if experts else {}
    window = m.sliding_window or None
    bias = m.qkv_bias
    if m.qkv_bias != m.out_bias and m.family not in ("qwen2_moe",):
        raise TsizeError(f"model {m.name!r}: {m.family} has one attention bias; cannot build qkv_bias != out_bias")
    if m.family == "qwen3":
        return transformers.Qwen3Config(attention_bias=bias, use_sliding_window=bool(window),
                                        sliding_window=window, layer_types=_layer_types(m), **c)
    if m.family in ("qwen3_moe", "qwen2_moe"):
        moe = dict(num_experts=m.n_experts, num_experts_per_tok=m.top_k, moe_intermediate_size=m.expert_d_ff,
                   mlp_only_layers=list(range(m.first_dense_layers)), router_aux_loss_coef=0.0,
                   use_sliding_window=bool(window), sliding_window=window, **extra)
        if m.family == "qwen3_moe":
            return transformers.Qwen3MoeConfig(attention_bias=bias, **moe, **c)
        c.pop("head_dim")
        return transformers.Qwen2MoeConfig(qkv_bias=bias, shared_expert_intermediate_size=m.shared_d_ff,
                                           layer_types=_layer_types(m), **moe, **c)
    if m.family in ("deepseek_v3", "deepseek_v2"):
        c.pop("head_dim")
        c["num_key_value_heads"] = m.n_head
        mla = dict(q_lora_rank=m.q_lora_rank or None, kv_lora_rank=m.kv_lora_rank,
                   qk_rope_head_dim=m.qk_rope_head_dim, qk_nope_head_dim=m.qk_nope_head_dim,
                   v_head_dim=m.v_head_dim, n_routed_experts=m.n_experts, num_experts_per_tok=m.top_k,
                   n_shared_experts=m.shared_d_ff // m.expert_d_ff, moe_intermediate_size=m.expert_d_ff,
                   first_k_dense_replace=m.first_dense_layers, attention_bias=bias, **extra)
        if m.shared_d_ff != m.n_shared_experts * m.expert_d_ff:
            raise TsizeError(f"model {m.name!r}: DeepSeek's shared experts are n_shared_experts x moe_d_ff wide")
        if m.family == "deepseek_v3":
            return transformers.DeepseekV3Config(n_group=m.n_group, topk_group=m.topk_group, **mla, **c)
        routing = (dict(topk_method="group_limited_greedy", n_group=m.n_group, topk_group=m.topk_group)
                   if m.n_group else dict(topk_method="greedy"))
        return transformers.DeepseekV2Config(mlp_bias=m.mlp_bias, **routing, **mla, **c)
    if m.family == "gemma":
        return transformers.GemmaConfig(attention_bias=bias, **c)
    if m.family in ("gemma2", "gemma3"):
        cls = transformers.Gemma2Config if m.family == "gemma2" else transformers.Gemma3TextConfig
        return cls(attention_bias=bias, sliding_window=window or 4096, layer_types=_layer_types(m),
                   attn_logit_softcapping=m.attn_softcap or None, final_logit_softcapping=m.final_softcap or None,
                   query_pre_attn_scalar=m.head_size, **c)
    if m.family == "phi3":
        c.pop("head_dim")
        rope = {"rope_type": "default", "rope_theta": 10000.0,
                "partial_rotary_factor": (m.rotary_dim or m.head_size) / m.head_size}
        return transformers.Phi3Config(sliding_window=window, rope_parameters=rope, **c)
    if m.family == "olmo2":
        c.pop("head_dim")
        return transformers.Olmo2Config(attention_bias=bias, **c)
    if m.family == "gpt_neox":
        for key in ("head_dim", "num_key_value_heads", "pad_token_id"):
            c.pop(key)
        rope = {"rope_type": "default", "rope_theta": 10000.0,
                "partial_rotary_factor": (m.rotary_dim or m.head_size) / m.head_size}
        return transformers.GPTNeoXConfig(attention_bias=bias, use_parallel_residual=m.norm_layout == "parallel",
                                          rope_parameters=rope, hidden_dropout=c["attention_dropout"], **c)
    if m.family == "falcon":
        for key in ("head_dim", "num_key_value_heads", "intermediate_size"):
            c.pop(key)
        new = m.norm_layout == "parallel" or m.kv_heads not in (1, m.n_head)
        layout = dict(new_decoder_architecture=True, num_kv_heads=m.kv_heads,
                      num_ln_in_parallel_attn=1 if m.norm_layout == "parallel_shared" else 2) if new else dict(
            new_decoder_architecture=False, multi_query=m.kv_heads == 1, parallel_attn=m.norm_layout != "pre")
        if new and m.norm_layout == "pre":
            raise TsizeError(f"model {m.name!r}: Falcon's new decoder architecture is always parallel")
        return transformers.FalconConfig(ffn_hidden_size=m.d_ff, bias=bias, hidden_dropout=c["attention_dropout"],
                                         **layout, **c)
    if m.family == "gpt_oss":
        return transformers.GptOssConfig(num_local_experts=m.n_experts, num_experts_per_tok=m.top_k,
                                         attention_bias=bias, sliding_window=window or 128,
                                         layer_types=_layer_types(m), router_aux_loss_coef=0.0, **extra, **c)
    raise TsizeError(f"model {m.name!r}: no reference implementation for family {m.family!r}")


class _Wrapped(nn.Module if torch is not None else object):
    """A Hugging Face causal LM called like nanoGPT: ``model(idx, targets) -> loss``."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, idx, targets):
        return self.inner(input_ids=idx, labels=targets, use_cache=False).loss


def build(m: ModelConfig, *, attention: str = "flash", dropout: float = 0.0, dtype: str = "float32",
          experts: str | None = None, init: bool = True):
    """The reference PyTorch model for ``m`` on the current default device, in training mode.

    ``experts`` picks transformers' mixture-of-experts kernel (default: its
    own default, ``grouped_mm``; ``"eager"`` is the per-expert loop).
    ``init=False`` skips transformers' weight initialisation (the weights
    stay untouched ``torch.empty`` memory, to be replaced).
    """
    require()
    previous = torch.get_default_dtype()
    if dtype not in DTYPES:
        raise TsizeError(f"unknown dtype {dtype!r}; valid: {', '.join(DTYPES)}")
    torch.set_default_dtype(getattr(torch, dtype))
    try:
        if uses_nanogpt(m):
            model = NanoGPT(m, flash=attention == "flash", dropout=dropout)
        else:
            import transformers

            if m.family not in _HF_CLASSES:
                raise TsizeError(f"model {m.name!r}: no reference implementation for family {m.family!r}")
            from transformers.initialization import no_init_weights

            with _quiet_transformers(), (contextlib.nullcontext() if init else no_init_weights()):
                inner = getattr(transformers, _HF_CLASSES[m.family])(_hf_config(m, attention, dropout, experts))
            model = _Wrapped(inner)
    finally:
        torch.set_default_dtype(previous)
    return model.train()


@contextlib.contextmanager
def _quiet_transformers():
    import transformers

    level = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()
    try:
        yield
    finally:
        transformers.logging.set_verbosity(level)


def _batch(m: ModelConfig, batch_size: int, seq_len: int, device) -> tuple[Any, Any]:
    idx = (torch.arange(batch_size * seq_len, device=device) % m.vocab_size).view(batch_size, seq_len)
    return idx, idx.clone()


# ---------------------------------------------------------------------------
# measurements


def param_count(m: ModelConfig) -> int:
    """``sum(p.numel() for p in model.parameters())`` of the reference model, built on the meta device."""
    require()
    with torch.device("meta"):
        model = build(m, attention="naive" if m.family in EAGER_ONLY else "flash")
    return sum(p.numel() for p in model.parameters())


@contextlib.contextmanager
def _session(m: ModelConfig):
    """Where measurements run: fake CPU tensors, or real ones for data-dependent MoE routing."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    if m.n_experts > 1 or m.mla:
        yield False
        return
    with FakeTensorMode(), _fake_is_data():
        yield True


def flops(m: ModelConfig, *, batch_size: int, seq_len: int) -> dict[str, int]:
    """Forward and backward FLOPs of one micro-batch counted by ``FlopCounterMode``.

    Naive attention and transformers' per-expert loop, whose matmuls the
    counter sees (its formula table lacks the CPU flash kernel and
    ``torch._grouped_mm``); the count is the same for every kernel.
    """
    require()
    from torch.utils.flop_counter import FlopCounterMode

    with _session(m) as fake:
        with torch.device("cpu"):  # real tensors (MoE) in bf16: half the memory, the same FLOPs
            model = build(m, attention="naive", experts="eager", dtype="float32" if fake else "bfloat16", init=fake)
            idx, targets = _batch(m, batch_size, seq_len, "cpu")
        if not fake:
            _zero_weights(model)
            _split_experts(model)
            _drop_grads(model)
        forward = FlopCounterMode(display=False)
        with forward:
            loss = model(idx, targets)
        backward = FlopCounterMode(display=False)
        with backward:
            loss.backward()
    counts = {"forward": forward.get_total_flops(), "backward": backward.get_total_flops()}
    del model, loss
    gc.collect()  # transformers models hold reference cycles: free real (MoE) weights before the next build
    return counts


def _init_small(model) -> None:
    """Give real (uninitialised) weights defined values; sizes of what is saved do not depend on them."""
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()


def _zero_weights(model) -> None:
    """Replace every weight by zeros that take one slice of memory: the leading dimension (an expert of a 3-D
    expert tensor, a row of a matrix) is a stride-0 view of one slice.

    The values (zeros, as :func:`_init_small` sets them), shapes, dtypes and parameter identity (tied weights
    stay tied) are unchanged, so are what autograd saves and the FLOPs run (``tests/validation/test_measure.py``
    compares both with real weights); a mixture of experts' slice then needs no memory for its experts,
    embedding and LM head (the fp32 Mixtral block alone held 6.7 GB of weights). Kernels that need contiguous
    weights copy one at a time, transiently.
    """
    done: dict[int, nn.Parameter] = {}
    for module in model.modules():
        for name, p in list(module._parameters.items()):
            if p is None:
                continue
            if id(p) not in done:
                zeros = (torch.zeros((1,) + tuple(p.shape[1:]), dtype=p.dtype).expand(p.shape) if p.dim() > 1
                         else torch.zeros_like(p))
                done[id(p)] = nn.Parameter(zeros, requires_grad=p.requires_grad)
            module._parameters[name] = done[id(p)]


def _split_experts(model) -> None:
    """Give each expert its own parameters (an ``nn.ParameterList`` indexed as the 3-D tensor was).

    transformers' per-expert loop reads ``gate_up_proj[expert_idx]``; the
    backward of that selection writes a zero gradient the size of all experts
    for every expert (1.9 GB each on a bf16 Mixtral block). With one
    parameter per expert each gradient is one expert's. The FLOPs run are the
    same (a selection is not a FLOP; ``tests/validation/test_measure.py``).
    """
    for module in model.modules():
        experts = getattr(module, "num_experts", None) if type(module).__name__.endswith("Experts") else None
        for name, p in list(module._parameters.items()):
            if p is not None and p.dim() >= 2 and p.shape[0] == experts:
                del module._parameters[name]
                setattr(module, name, nn.ParameterList(
                    nn.Parameter(p[e], requires_grad=p.requires_grad) for e in range(experts)))


def _drop_grads(model) -> None:
    """Free each weight's gradient as soon as backward has accumulated it (its FLOPs are already counted):
    backward then holds one gradient at a time, not a copy of every weight."""
    for p in model.parameters():
        p.register_post_accumulate_grad_hook(lambda q: setattr(q, "grad", None))


def saved_bytes(m: ModelConfig, *, batch_size: int, seq_len: int, dtype: str = "float32", attention: str = "flash",
                dropout: float = 0.0, detail: bool = False, experts: str | None = None):
    """Bytes autograd saves for backward in one forward pass, deduplicated by storage, parameters excluded.

    Runs under ``FakeTensorMode`` on the CPU (real kernel selection, no
    memory), except mixtures of experts, which run on real CPU tensors
    (keep those small). With ``detail`` also returns the saved tensors as
    ``(shape, dtype, bytes)``.
    """
    require()
    saved: dict[int, tuple] = {}
    with _session(m) as fake:
        with torch.device("cpu"):
            model = build(m, attention=attention, dropout=dropout, dtype=dtype, experts=experts, init=fake)
            idx, targets = _batch(m, batch_size, seq_len, "cpu")
        if not fake:
            _zero_weights(model)
        params = {p.untyped_storage()._cdata for p in model.parameters()}
        params |= {b.untyped_storage()._cdata for b in model.buffers()}

        def pack(t):
            # A storage is identified by its address while it lives. Tensors saved by graph branches that
            # do not reach the loss (routing scores used only for their indices) are freed during the
            # forward pass and their addresses reused, so an entry counts only while its tensor is alive.
            storage = t.untyped_storage()
            key = storage._cdata
            if key not in params and (key not in saved or saved[key][3]() is None):
                saved[key] = (tuple(t.shape), str(t.dtype).replace("torch.", ""), storage.nbytes(), weakref.ref(t))
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            loss = model(idx, targets)
        alive = [v[:3] for v in saved.values() if v[3]() is not None]  # what backward will read
        del loss
    total = sum(v[2] for v in alive)
    del model
    gc.collect()  # transformers models hold reference cycles: free real (MoE) weights before the next build
    return (total, alive) if detail else total


@contextlib.contextmanager
def _fake_is_data():
    """Let Hugging Face treat our fake tensors as the plain inputs they stand for.

    ``transformers.masking_utils`` cannot read fake tensors, so it keeps a
    materialised causal mask (which keeps SDPA off its flash kernel and makes
    grouped-query attention repeat K and V) and tries to detect packed
    sequences. Our inputs have no padding and no packing, so here the mask
    is skipped exactly when it would be for real tensors (causal, no
    padding, no local window) and packing detection answers "none".
    ``tests/validation/test_measure.py`` checks that fake and real measurements agree.
    """
    import transformers.masking_utils as masking

    skip, packed = masking._ignore_causal_mask_sdpa, masking.find_packed_sequence_indices

    def ignore_mask(padding_mask, q_length, kv_length, q_offset, kv_offset, local_attention_size=None):
        if padding_mask is None and local_attention_size is None and (q_length == 1 or kv_length == q_length):
            return True
        return skip(padding_mask, q_length, kv_length, q_offset, kv_offset, local_attention_size)

    masking._ignore_causal_mask_sdpa = ignore_mask
    masking.find_packed_sequence_indices = lambda position_ids: None
    try:
        yield
    finally:
        masking._ignore_causal_mask_sdpa, masking.find_packed_sequence_indices = skip, packed


def checkpoint_bytes(m: ModelConfig, *, batch_size: int = 2, seq_len: int = 16) -> int:
    """Size of a real nanoGPT-style ``torch.save`` after one AdamW step (fp32, CPU; small models only)."""
    require()
    with torch.device("cpu"):
        model = build(m, attention="flash")
        idx, targets = _batch(m, batch_size, min(seq_len, m.n_ctx), "cpu")
    _init_small(model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, foreach=False)
    model(idx, targets).backward()
    optimizer.step()
    checkpoint = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "model_args": dict(n_layer=m.n_layer, n_head=m.n_head, n_embd=m.d_model, block_size=m.n_ctx,
                           bias=m.qkv_bias, vocab_size=m.vocab_size, dropout=0.0),
        "iter_num": 1,
        "best_val_loss": torch.tensor(3.0),
        "config": NANOGPT_TRAIN_CONFIG,
    }
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    return buffer.getbuffer().nbytes


#: The ``config`` dict nanoGPT's train.py stores in every checkpoint (its
#: command-line-overridable globals, here at the train.py defaults).
NANOGPT_TRAIN_CONFIG = dict(
    out_dir="out", eval_interval=2000, log_interval=1, eval_iters=200, eval_only=False, always_save_checkpoint=True,
    init_from="scratch", wandb_log=False, wandb_project="owt", wandb_run_name="gpt2", dataset="openwebtext",
    gradient_accumulation_steps=40, batch_size=12, block_size=1024, n_layer=12, n_head=12, n_embd=768, dropout=0.0,
    bias=False, learning_rate=6e-4, max_iters=600000, weight_decay=1e-1, beta1=0.9, beta2=0.95, grad_clip=1.0,
    decay_lr=True, warmup_iters=2000, lr_decay_iters=600000, min_lr=6e-5, backend="nccl", device="cuda",
    dtype="bfloat16", compile=True,
)
