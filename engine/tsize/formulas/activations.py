"""Activation memory: the bytes autograd saves for backward.

What is counted is exactly what ``torch.autograd.graph.saved_tensors_hooks``
sees during one forward pass of the reference implementations (nanoGPT's GPT
for the gpt2 family, Hugging Face ``transformers`` for the others),
deduplicated by storage and excluding parameter storages. Autocast's
16-bit weight copies are accounted separately (``memory.weight_copies``).

Byte widths come from the precision recipe and model:

* ``act_bytes``: matmul inputs/outputs (the compute dtype);
* ``residual_bytes``: the residual stream and norm inputs (fp32 under
  autocast, whose master weights are fp32, else the compute dtype);
* ``softmax_bytes``: the naive-attention softmax output (fp32 under CUDA
  autocast or when the implementation asks for an fp32 softmax);
* ``loss_bytes``: the log-softmax output saved by the cross-entropy loss;
* ``dropout_mask_bytes``: 1 for CUDA's fused dropout (a bool mask); on CPU
  PyTorch saves the scaled noise in the activation dtype instead.

The notation follows Korthikanti et al. 2022, "Reducing Activation
Recomputation in Large Transformer Models", section 4.1 (``s`` = sequence,
``b`` = batch, ``h`` = hidden, ``a`` = heads), generalised to grouped-query
attention, gated MLPs, mixture-of-experts and fp32 pieces. Per-token
functions return [bytes/token]; ``total`` returns [bytes].
"""

from __future__ import annotations

import numpy as np


def _f(x):
    return np.asarray(x, dtype=np.float64)


def norm(*, d_model, rmsnorm, residual_bytes):
    """Saved by one norm [bytes/token], its output excluded (the next matmul saves that).

    LayerNorm (fused ATen kernel) saves its input and fp32 mean and
    reciprocal std: ``r*d + 8``. Hugging Face's Python RMSNorm saves an fp32
    copy of its input, the fp32 reciprocal RMS, and the normalised tensor
    before the gain multiply: ``4*d + 4 + r*d``.
    """
    d = _f(d_model)
    r = _f(residual_bytes)
    return np.where(rmsnorm, 4 * d + 4 + r * d, r * d + 8)


def qkv(*, n_head, n_kv_head, head_dim, flash, act_bytes):
    """Saved query, key and value tensors [bytes/token].

    Fused attention (SDPA flash/efficient kernels) saves Q, K and V as they
    are: ``a*(H + 2K)*hd``. Naive attention multiplies K and V expanded to
    all ``H`` heads (Hugging Face ``repeat_kv``), so saves ``a*3H*hd``.
    """
    kv = np.where(flash, _f(n_kv_head), _f(n_head))
    return _f(act_bytes) * (_f(n_head) + 2 * kv) * head_dim


def attention_matrix(*, seq_len, n_head, flash, act_bytes, softmax_bytes, dropout, dropout_mask_bytes):
    """The ``T x T`` tensors naive attention saves [bytes/token]; 0 for flash attention.

    The softmax output ``s*H*T``; a 16-bit copy of it for ``P @ V`` when the
    softmax ran in fp32 or when dropout replaced it (``a*H*T``); and the
    dropout mask ``m*H*T`` when ``dropout > 0``. Selective recomputation
    drops exactly these (Korthikanti et al. 2022, the ``5as/h`` term).
    """
    has_dropout = _f(dropout) > 0
    a, s = _f(act_bytes), _f(softmax_bytes)
    per = _f(seq_len) * n_head * (s + a * ((s != a) | has_dropout) + _f(dropout_mask_bytes) * has_dropout)
    return np.where(flash, 0.0, per)


def attention_core(*, n_head, head_dim, flash, act_bytes, attention_matrix):
    """Saved inside the attention core, its output included [bytes/token].

    The output ``a*H*hd`` (which the output projection saves too), the
    ``attention_matrix`` of naive attention, or for flash attention an fp32
    log-sum-exp per head, ``4*H`` (Dao et al. 2022).
    """
    return _f(act_bytes) * _f(n_head) * head_dim + 4 * _f(n_head) * _f(flash) + attention_matrix


def mlp(*, d_model, d_ff, mlp_saved, n_experts, top_k, act_bytes, expert_loop=0):
    """Saved inside one MLP block, its input excluded [bytes/token].

    Dense: ``n*a*f`` with ``n`` the saved hidden-size tensors of the
    activation (``model.MLP_ACTIVATIONS``). Mixture of experts (Hugging Face
    transformers' default ``grouped_mm`` experts): each of the ``k`` routed
    copies of a token saves its gathered input and its expert output
    (``2*a*d``), the expert's hidden tensors (``n*a*f``), an fp32 routing
    weight and three int64 sort/scatter indices (28 B); the router saves its
    fp32 softmax ``4*E``, the top-k int64 indices and fp32 weights and their
    fp32 sum (``12*k + 4``). With ``expert_loop`` (transformers'
    ``experts_implementation="eager"``, a Python loop over experts) each
    routed copy keeps one more ``a*d`` tensor (the weighted expert output
    before ``index_add_``) and one int64 token index instead of the
    grouped kernel's 28 B: ``3*a*d + 8``.
    """
    a = _f(act_bytes)
    hidden = _f(mlp_saved) * a * d_ff
    per_copy = np.where(_f(expert_loop) > 0, 3 * a * d_model + 8, 2 * a * d_model + 28)
    moe = _f(top_k) * (hidden + per_copy) + 4 * _f(n_experts) + 12 * _f(top_k) + 4
    return np.where(_f(n_experts) > 1, moe, hidden)


def residual_masks(*, dropout, residual_dropout):
    """Whether residual and embedding dropout masks are saved [0 or 1]: 1 GPT-2 style with ``dropout > 0``."""
    return (_f(dropout) > 0) * _f(residual_dropout)


def layer_replicated(*, norm, d_model, act_bytes, residual_masks, dropout_mask_bytes):
    """Per-block pieces tensor parallelism does not split [bytes/token].

    Two norms, the attention and MLP inputs (``2*a*d``) and two residual
    dropout masks (``2*m*d``); sequence parallelism splits these too
    (Korthikanti et al. 2022, eq. 2 vs 3).
    """
    d = _f(d_model)
    return 2 * norm + 2 * _f(act_bytes) * d + 2 * _f(dropout_mask_bytes) * d * residual_masks


def layer_sharded(*, qkv, attention_core, mlp):
    """Per-block pieces tensor parallelism splits ``t`` ways [bytes/token]."""
    return qkv + attention_core + mlp


def head(*, norm, d_model, vocab_size, act_bytes, loss_bytes, residual_masks, dropout_mask_bytes):
    """Outside the blocks [bytes/token]: embedding and loss.

    int64 token ids (saved by the embedding lookup) and targets (saved by
    the loss): 16 B; the embedding dropout mask; the final norm; the LM-head
    input ``a*d``; and the log-softmax output ``l*V`` that cross-entropy saves.
    """
    d = _f(d_model)
    return (
        16
        + _f(dropout_mask_bytes) * d * residual_masks
        + norm
        + _f(act_bytes) * d
        + _f(loss_bytes) * vocab_size
    )


def per_sequence(*, seq_len, head_dim, learned_positions, act_bytes, n_layer, mask_compare):
    """Saved once per forward pass, whatever the batch [bytes].

    Learned positions: the int64 position ids (``8*T``). Rotary positions:
    the cosine and sine tables, ``2*a*T*hd``, shared by every layer. Where
    ``mask_compare`` (nanoGPT's naive attention), each block's
    ``masked_fill`` keeps the boolean ``bias[:, :, :T, :T] == 0``: ``L*T^2``.
    """
    t = _f(seq_len)
    positions = np.where(learned_positions, 8 * t, 2 * _f(act_bytes) * t * head_dim)
    return positions + _f(mask_compare) * _f(n_layer) * t**2


def layer_on_gpu(*, layer_replicated, layer_sharded, tp=1, sequence_parallel=False):
    """One block's bytes per token on one GPU [bytes/token]: ``rep/(tp if SP) + sharded/tp``.

    With ``tp = 1`` (one device) simply ``rep + sharded``.
    """
    t = _f(tp)
    return _f(layer_replicated) / np.where(sequence_parallel, t, 1.0) + _f(layer_sharded) / t


def total(*, batch_size, seq_len, n_layer, layer, attention_matrix, residual_bytes, d_model, head, per_sequence,
          recompute, tp=1, pp=1, sequence_parallel=False, grad_accum=1, interleave=1):
    """Activations of one micro-batch on the busiest GPU (the first pipeline stage) [bytes].

    ``layer`` is one block's bytes per token on this GPU (``layer_on_gpu``);
    ``attention_matrix`` and ``head`` are unsplit and divided here by ``tp``
    (Megatron's vocabulary-parallel loss splits the logits). ``recompute`` 0:
    every block's bytes. 1 (selective): minus the attention matrix,
    recomputed in backward. 2 (full): each block keeps only its input
    (``r*d``, split by ``tp`` only with sequence parallelism), and one
    block's activations are live again while it is recomputed (Chen et al.
    2016; Korthikanti et al. 2022 section 4.3). Under 1F1B a pipeline stage
    holds ``ceil(L/pp)`` blocks for ``min(pp, grad_accum)`` micro-batches in
    flight (Narayanan et al. 2021, section 2.2); the interleaved schedule with
    ``interleave = v > 1`` chunks holds ``1 + (pp-1)/(pp*v)`` times that
    (Korthikanti et al. 2022, section 4.2.3). One device: ``tp = pp = 1``.
    """
    r = np.asarray(recompute)
    t = _f(tp)
    stage_layers = np.ceil(_f(n_layer) / pp)
    v = _f(interleave)
    in_flight = np.minimum(_f(pp), grad_accum) * np.where(v > 1, 1 + (_f(pp) - 1) / (_f(pp) * v), 1.0)
    block_input = _f(residual_bytes) * d_model / np.where(sequence_parallel, t, 1.0)
    blocks = np.where(
        r == 2,
        in_flight * stage_layers * block_input + layer,
        in_flight * stage_layers * (layer - (r == 1) * _f(attention_matrix) / t),
    )
    return _f(batch_size) * seq_len * (blocks + _f(head) / t) + per_sequence


# ---------------------------------------------------------------------------
# Structures of newer architectures (measured against transformers 5.x)


def qk_norm(*, n_head, n_kv_head, head_dim, qk_norm, act_bytes, norm_fp32):
    """Saved by the query and key RMSNorms of one block [bytes/token].

    Each saves an fp32 copy of its input (``4`` per element), the
    normalised tensor before the gain (in the input dtype ``a``, or fp32
    for Gemma's norm), and one fp32 reciprocal RMS per row: per head for
    ``qk_norm = 1`` (Qwen3, Gemma 3: ``4*(H + K)``), per token for
    ``qk_norm = 2`` (OLMo 2: ``8``). So ``(H + K)*hd*(4 + a)`` plus the
    reciprocals; 0 without query/key norms.
    """
    q = np.asarray(qk_norm)
    width = (_f(n_head) + n_kv_head) * head_dim
    y = np.where(norm_fp32, 4.0, _f(act_bytes))
    rows = np.where(q == 1, 4 * (_f(n_head) + n_kv_head), 8.0)
    return np.where(q > 0, width * (4 + y) + rows, 0.0)


def block_structure(*, norm, block_norms, parallel_residual, rmsnorm, d_model, act_bytes, residual_bytes):
    """Per-block saved bytes of the norm layout beyond two pre-norms [bytes/token].

    Sandwich norms (Gemma 2/3) add two norms (``block_norms = 4``); a
    parallel block with one shared norm (Falcon-7B) has one norm fewer and
    its attention and MLP read the same saved input (``-a*d``). Two
    LayerNorms of one parallel block (GPT-NeoX, Falcon's new decoder) save
    the same input tensor once (``-r*d``). Post-norms (OLMo 2) save as much
    as pre-norms.
    """
    parallel = _f(parallel_residual) > 0
    shared = (_f(block_norms) == 1) & parallel
    twin = (_f(block_norms) == 2) & parallel & (_f(rmsnorm) == 0)
    d = _f(d_model)
    return (_f(block_norms) - 2) * norm - shared * _f(act_bytes) * d - twin * _f(residual_bytes) * d


def attention_layout(*, n_head, n_kv_head, head_dim, flash, act_bytes, v_view, out_copy, batch_size=2):
    """Saved attention tensors that depend on how an implementation lays them out [bytes/token].

    ``v_view``: one fused Q/K/V projection whose V reaches the kernel as a
    view (Q and K are replaced by their rotary outputs), so the kernel keeps
    the whole fused output alive: ``a*(H + K)*hd`` more than separate Q, K,
    V (Phi-3, GPT-NeoX). Naive attention's matmul copies a strided V into
    one batch of heads, except for a single sequence (``B = 1``), where the
    view survives too. ``out_copy``: queries laid out head-major (rotary
    by concatenation), so the fused kernel's output is copied before the
    output projection: ``a*H*hd`` (naive attention always copies and that
    is counted in ``attention_core``). Naive multi-query attention
    (``K = 1``) of a single sequence: the repeated keys and values stay
    broadcast views of one head, ``2*a*(H - 1)*hd`` less than ``qkv`` counts.
    """
    a = _f(act_bytes)
    H, K = _f(n_head), _f(n_kv_head)
    single = (1 - _f(flash)) * (_f(batch_size) == 1)
    v_view_kept = np.maximum(_f(flash), single * (K == H))
    mqa_views = single * (K == 1) * 2 * (H - 1) * head_dim
    return a * (H * head_dim * (_f(v_view) * v_view_kept * (1 + K / H) + _f(out_copy) * _f(flash)) - mqa_views)


def softcap(*, seq_len, n_head, vocab_size, flash, act_bytes, attn_softcap, final_softcap):
    """Saved by tanh logit soft-capping (Gemma 2) [bytes/token].

    Attention logits: ``tanh`` keeps its output, ``a*H*T`` (naive
    attention; a fused kernel caps in place and keeps nothing more). Output
    logits: ``a*V``. Returns ``(attention, final)``.
    """
    a = _f(act_bytes)
    attention = _f(attn_softcap) * (1 - _f(flash)) * a * _f(n_head) * seq_len
    return attention, _f(final_softcap) * a * _f(vocab_size)


def shared_expert(*, d_model, shared_d_ff, mlp_saved, shared_expert_gate, act_bytes):
    """Saved by the shared expert of one MoE block [bytes/token] (0 without one).

    Its hidden tensors ``n*a*f_s`` (it reads the block's saved input); with
    Qwen2-MoE's sigmoid gate also the gate's sigmoid output and the shared
    expert's output that it scales (``a*d + a``).
    """
    a = _f(act_bytes)
    gate = _f(shared_expert_gate) * (a * d_model + a)
    return (_f(shared_d_ff) > 0) * (_f(mlp_saved) * a * _f(shared_d_ff)) + gate


def mlp_mean(*, dense, moe, n_layer, moe_layers):
    """Saved MLP bytes averaged over the blocks [bytes/token]: ``L - L_moe`` dense and ``L_moe`` MoE blocks."""
    return ((_f(n_layer) - moe_layers) * dense + _f(moe_layers) * moe) / _f(n_layer)


def mla_qkv(*, n_head, q_lora_rank, kv_lora_rank, qk_rope_head_dim, qk_nope_head_dim, v_head_dim, act_bytes):
    """Saved by multi-head latent attention before its kernel [bytes/token] (DeepSeek-V2/V3).

    The query latent's RMSNorm (an fp32 copy ``4*r_q``, the normalised
    latent ``a*r_q``, one fp32 reciprocal) and the up-projection's input
    ``a*r_q`` (when ``r_q > 0``); the same for the key/value latent
    ``r_kv``; then the kernel's per-head queries and keys ``a*H*(n + p)``
    each (rotary part concatenated) and values ``a*H*v``.
    """
    a = _f(act_bytes)
    qr, kvr = _f(q_lora_rank), _f(kv_lora_rank)
    latent_q = np.where(qr > 0, (4 + 2 * a) * qr + 4, 0.0)
    latent_kv = (4 + 2 * a) * kvr + 4
    qk = _f(qk_nope_head_dim) + qk_rope_head_dim
    return latent_q + latent_kv + a * _f(n_head) * (2 * qk + _f(v_head_dim))


def sinks(*, n_head, flash, softmax_bytes, attention_sinks):
    """Saved by attention sinks in naive attention (gpt-oss) [bytes/token].

    The sink logit is one more softmax column per head (``s*H``) and the
    row maximum subtracted before the softmax keeps its int64 index
    (``8*H``); 0 without sinks or with a fused kernel.
    """
    return _f(attention_sinks) * (1 - _f(flash)) * _f(n_head) * (_f(softmax_bytes) + 8)


def window_mask(*, seq_len, sliding_window, n_sliding_layers, n_layer, n_head, n_kv_head, head_dim, flash, act_bytes,
                masked_blocks=0, batch_size=2):
    """Extra saved by SDPA in blocks that get an explicit mask, averaged over the blocks [bytes/token].

    transformers materialises a sliding window as a mask once ``T >= W``
    (it can no longer rely on ``is_causal``); Falcon's new decoder passes
    its own mask to every block (``masked_blocks = 1``). With a mask, each
    such block's SDPA call keeps the mask in the compute dtype (``a*T`` per
    token) and gets K and V repeated to all ``H`` heads rather than grouped
    (``2*a*(H - K)*hd``; for one sequence with one K/V head the repeats
    are broadcast views, nothing more). Naive attention masks by addition
    and already repeats K and V, so keeps nothing more. Returns
    ``(replicated, sharded)``: the mask is not split by tensor parallelism.
    """
    t, w = _f(seq_len), _f(sliding_window)
    windowed = (w > 0) * (t >= w) * _f(n_sliding_layers) / _f(n_layer)
    share = _f(flash) * np.maximum(windowed, _f(masked_blocks))
    a = _f(act_bytes)
    copies = 1 - (_f(batch_size) == 1) * (_f(n_kv_head) == 1)
    return share * a * t, share * copies * 2 * a * (_f(n_head) - n_kv_head) * head_dim


def sdpa_math_upcast(*, seq_len, n_head, n_kv_head, head_dim, act_bytes, softmax_bytes, sdpa_math, batch_size=2):
    """Extra kept by PyTorch's SDPA math fallback over naive attention [bytes/token].

    The fallback computes in fp32 when the inputs are narrower: queries and
    the repeated keys and values ``(4 - a)*(H + 2H')*hd`` (``H' = K`` when
    one sequence's single K/V head stays a broadcast view, else ``H``) and
    the softmax ``(4 - s)*H*T`` more than naive attention in the compute
    dtype.
    """
    a, s, H = _f(act_bytes), _f(softmax_bytes), _f(n_head)
    kv = np.where((_f(batch_size) == 1) & (_f(n_kv_head) == 1), _f(n_kv_head), H)
    return _f(sdpa_math) * ((4 - a) * (H + 2 * kv) * head_dim + (4 - s) * H * seq_len)


def router_fp32_input(*, d_model, act_bytes, router_fp32):
    """fp32 copy of the router's input in one MoE block [bytes/token] (DeepSeek's router runs in fp32).

    ``4*d`` when the compute dtype is narrower than fp32 (in fp32 the cast
    is the input itself, already saved), else 0.
    """
    return _f(router_fp32) * (_f(act_bytes) < 4) * 4 * _f(d_model)
