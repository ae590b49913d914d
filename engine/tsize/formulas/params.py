"""Parameter counts by component.

Every function takes scalars or numpy arrays that broadcast, and returns
integer counts [parameters] of the same broadcast shape. Booleans (bias on or
off, tied or not) enter as 0/1 multipliers, so a grid of configurations is
counted in one call.

The counts equal ``sum(p.numel() for p in model.parameters())`` of the
reference PyTorch implementations (nanoGPT's ``GPT`` for the gpt2 family,
Hugging Face ``transformers`` classes for the others), with tied weights
counted once; ``tests/formulas/test_params.py`` checks this against real PyTorch.
"""

from __future__ import annotations

import numpy as np


def _i(x):
    return np.asarray(x, dtype=np.int64)


def token_embedding(*, vocab_size, d_model):
    """Token embedding table ``wte`` [parameters]: ``V * d``.

    GPT-2's table, 50,257 tokens by 768 (Radford et al. 2019):

    >>> int(token_embedding(vocab_size=50257, d_model=768))
    38597376
    """
    return _i(vocab_size) * d_model


def position_embedding(*, n_ctx, d_model, learned_positions):
    """Learned position table ``wpe`` [parameters]: ``n_ctx * d`` (0 with rotary positions)."""
    return _i(n_ctx) * d_model * _i(learned_positions)


def norm(*, d_model, norm_bias):
    """One LayerNorm/RMSNorm [parameters]: gain ``d`` plus bias ``d`` when present."""
    return _i(d_model) * (1 + _i(norm_bias))


def attention(*, d_model, n_head, n_kv_head, head_dim, qkv_bias, out_bias):
    """One attention block without its norm [parameters].

    ``d*(H + 2K)*hd`` for the query, key and value projections (grouped-query
    attention when ``K < H``), ``H*hd*d`` for the output projection, plus
    ``(H + 2K)*hd`` and ``d`` biases when present.
    """
    qkv_width = (_i(n_head) + 2 * _i(n_kv_head)) * head_dim
    return (
        d_model * qkv_width
        + _i(n_head) * head_dim * d_model
        + _i(qkv_bias) * qkv_width
        + _i(out_bias) * d_model
    )


def mlp(*, d_model, d_ff, gated_mlp, mlp_bias):
    """One dense MLP or one expert, without its norm [parameters].

    Up projection ``d*f`` (two of them, gate and up, when gated as in SwiGLU,
    Shazeer 2020), down projection ``f*d``, and their biases when present.
    """
    n_up = 1 + _i(gated_mlp)
    return n_up * d_model * _i(d_ff) + _i(d_ff) * d_model + _i(mlp_bias) * (n_up * d_ff + d_model)


def router(*, d_model, n_experts):
    """MoE router, a bias-free ``d x E`` linear layer [parameters]; 0 for dense models."""
    return _i(d_model) * n_experts * (_i(n_experts) > 1)


def lm_head(*, vocab_size, d_model, tied_embeddings):
    """Output projection to the vocabulary [parameters]: ``V*d``, or 0 when tied to ``wte``."""
    return _i(vocab_size) * d_model * (1 - _i(tied_embeddings))


def lookup(*, token_embedding, position_embedding, tied_embeddings):
    """Parameters read by table lookup rather than used in a matmul [parameters].

    Position embeddings, and the token embedding unless it is tied to the LM
    head (then it is also the LM head's weight).
    """
    return position_embedding + token_embedding * (1 - _i(tied_embeddings))


def non_embedding(*, total, lookup):
    """Parameters other than lookup tables [parameters]: ``total - lookup``.

    nanoGPT's ``get_num_params(non_embedding=True)`` and Kaplan et al. 2020's
    ``N``: a tied token embedding stays in, as the LM head's weight.
    """
    return total - lookup


def norms(*, norm, n_layer):
    """All norms of the model [parameters]: two per block and the final one, ``(2L + 1) * norm``."""
    return (2 * _i(n_layer) + 1) * norm


def matmul(*, total, lookup, norm, n_layer):
    """Weights and biases of linear layers [parameters]: total minus lookups and norms.

    These are the tensors that autocast copies to 16 bits in the forward
    pass (PyTorch's autocast op list casts ``linear``/``addmm`` inputs, not
    ``embedding`` or ``layer_norm``).
    """
    return total - lookup - (2 * _i(n_layer) + 1) * norm


def tensors(*, n_layer, norm_bias, fused_qkv, qkv_bias, out_bias, gated_mlp, mlp_bias, n_experts,
            learned_positions, tied_embeddings, block_norms=2, qk_norm=0, attention_sinks=0, mla=0, q_lora_rank=0,
            fused_gate_up=0, moe_layers=None, router_bias=0, expert_bias=0, shared_d_ff=0, shared_expert_gate=0):
    """Number of distinct parameter tensors [tensors] (for checkpoint overhead).

    Per block: ``block_norms`` norms (gain, bias), the query/key/value
    projection(s) (one fused ``c_attn`` in nanoGPT, three in Hugging Face),
    the output projection, query/key norms (2), attention sinks (1), and the
    MLP (gate and up fused with ``fused_gate_up``) or, in the ``moe_layers``
    MoE blocks (all blocks when None and ``n_experts > 1``), the router (and
    its bias), the experts as two 3-D tensors (Hugging Face Mixtral; two more
    for expert biases), the shared expert's MLP and its gate. Multi-head
    latent attention: q_a, its norm and q_b (q_proj alone when
    ``q_lora_rank = 0``), kv_a, its norm and kv_b, the output; biases on
    q_a/q_proj and kv_a with ``qkv_bias``.
    """
    L = _i(n_layer)
    moe = _i(n_experts) > 1
    L_moe = np.where(moe, L, 0) if moe_layers is None else _i(moe_layers)
    n_qkv = np.where(_i(fused_qkv) == 1, 1, 3)
    per_norm = 1 + _i(norm_bias)
    mla_ = _i(mla) > 0
    std_attn = n_qkv * (1 + _i(qkv_bias)) + 2 * (_i(qk_norm) > 0)
    mla_attn = np.where(_i(q_lora_rank) > 0, 3, 1) + 3 + 2 * _i(qkv_bias)
    attn = np.where(mla_, mla_attn, std_attn) + 1 + _i(out_bias) + _i(attention_sinks)
    dense_mlp = np.where(_i(fused_gate_up) == 1, 2, 2 + _i(gated_mlp)) * (1 + _i(mlp_bias))
    shared = (_i(shared_d_ff) > 0) * (2 + _i(gated_mlp)) * (1 + _i(mlp_bias)) + _i(shared_expert_gate)
    moe_mlp = 1 + _i(router_bias) + 2 * (1 + _i(expert_bias)) + shared
    per_layer = _i(block_norms) * per_norm + attn
    return (
        L * per_layer + (L - L_moe) * dense_mlp + L_moe * moe_mlp
        + 1 + _i(learned_positions) + per_norm + (1 - _i(tied_embeddings))
    )


# ---------------------------------------------------------------------------
# Structures of newer architectures (Qwen3, DeepSeek, Gemma 2/3, OLMo 2, gpt-oss, ...)


def qk_norm(*, n_head, n_kv_head, head_dim, qk_norm):
    """Query and key norms of one block [parameters].

    ``qk_norm`` 0: none; 1: one RMSNorm gain over ``hd`` each for queries and
    keys, shared by the heads (Qwen3, Gemma 3): ``2*hd``; 2: gains over all
    query and key channels (OLMo 2): ``(H + K)*hd``.
    """
    q = _i(qk_norm)
    return np.where(q == 1, 2 * _i(head_dim), np.where(q == 2, (_i(n_head) + n_kv_head) * _i(head_dim), 0))


def attention_sinks(*, n_head, attention_sinks):
    """Learned attention-sink logits of one block [parameters]: ``H`` (gpt-oss), else 0."""
    return _i(n_head) * _i(attention_sinks)


def mla_attention(*, d_model, n_head, q_lora_rank, kv_lora_rank, qk_rope_head_dim, qk_nope_head_dim, v_head_dim,
                  qkv_bias, out_bias):
    """Multi-head latent attention of one block, its norms included [parameters].

    DeepSeek-V2 (DeepSeek-AI 2024, section 2.1), as in transformers'
    ``DeepseekV3Attention``. Queries: ``d*r_q + r_q + r_q*H*(n + p)`` with
    a low-rank ``r_q`` (and its RMSNorm), or ``d*H*(n + p)`` when
    ``r_q = 0``. Keys and values: ``d*(r_kv + p)`` (latent plus the shared
    rotary key), the latent's RMSNorm ``r_kv``, and ``r_kv*H*(n + v)``.
    Output: ``H*v*d``. ``attention_bias`` adds biases to the two down
    projections and the output (``r_q + r_kv + p + d``).
    """
    H, qr, kvr = _i(n_head), _i(q_lora_rank), _i(kv_lora_rank)
    qk = _i(qk_nope_head_dim) + qk_rope_head_dim
    q = np.where(qr > 0, d_model * qr + qr + qr * H * qk, _i(d_model) * H * qk)
    kv = _i(d_model) * (kvr + qk_rope_head_dim) + kvr + kvr * H * (_i(qk_nope_head_dim) + v_head_dim)
    out = H * v_head_dim * _i(d_model)
    bias = _i(qkv_bias) * (qr + kvr + qk_rope_head_dim) + _i(out_bias) * d_model
    return q + kv + out + bias


def mla_norms(*, q_lora_rank, kv_lora_rank):
    """Norm gains inside multi-head latent attention [parameters]: ``r_q + r_kv`` (0 without MLA)."""
    return _i(q_lora_rank) + kv_lora_rank


def shared_expert(*, d_model, shared_d_ff, gated_mlp, mlp_bias, shared_expert_gate):
    """Always-active shared expert(s) of one MoE block [parameters].

    An MLP of width ``f_s`` (DeepSeek: ``n_shared * moe_d_ff``) plus, in
    Qwen2-MoE, a bias-free sigmoid gate ``d -> 1``; 0 without one.
    """
    f = _i(shared_d_ff)
    return mlp(d_model=d_model, d_ff=f, gated_mlp=gated_mlp, mlp_bias=mlp_bias) * (f > 0) + _i(
        shared_expert_gate) * d_model


def router_bias(*, n_experts, router_bias):
    """Router bias of one MoE block [parameters]: ``E`` (gpt-oss), else 0."""
    return _i(n_experts) * _i(router_bias) * (_i(n_experts) > 1)


def block(*, norm, block_norms, attention, mlp):
    """One block [parameters]: its ``n`` norms (2; 4 with sandwich norms; 1 shared by a parallel block),
    attention (query/key and latent norms and sinks included) and MLP."""
    return _i(block_norms) * norm + attention + mlp


def moe_mlp(*, expert, n_experts, router, shared_expert):
    """The MLP of one MoE block [parameters]: router, ``E`` experts and the shared expert."""
    return _i(n_experts) * expert + router + shared_expert


def blocks(*, dense_block, moe_block, n_layer, moe_layers):
    """All blocks [parameters]: ``L - L_moe`` dense ones and ``L_moe`` MoE ones."""
    return (_i(n_layer) - moe_layers) * dense_block + _i(moe_layers) * moe_block


def total_blocks(*, token_embedding, position_embedding, blocks, norm, lm_head):
    """Whole model [parameters]: embeddings + all blocks + final norm + LM head."""
    return token_embedding + position_embedding + blocks + norm + lm_head


def active_experts(*, total, expert, moe_layers, n_experts, top_k):
    """Parameters used per token [parameters]: total minus the ``E - k`` idle experts of each MoE block."""
    return total - _i(moe_layers) * (_i(n_experts) - top_k) * expert
