"""Serving: KV cache, quantized weights, capacity, prefill/decode time, throughput and cost.

Memory follows vLLM's accounting (Kwon et al. 2023, PagedAttention; vLLM
``vllm/v1/kv_cache_interface.py`` and ``vllm/config``), time a roofline with
measured hardware rates (Williams et al. 2009; Pope et al. 2023, "Efficiently
Scaling Transformer Inference", sec. 2-3):

* KV heads per tensor-parallel rank are ``max(1, n_kv_head // tp)``: when
  ``tp`` exceeds the KV heads each rank keeps a replica of one head
  (vLLM ``ModelConfig.get_num_kv_heads``). Multi-head latent attention
  (DeepSeek-V2, MLA) caches one latent of ``kv_lora_rank + qk_rope_head_dim``
  elements per token and layer, the same on every rank. Sliding-window layers
  keep at most ``sliding_window`` tokens.
* The cache is paged in blocks of ``block_size`` tokens; a sequence holds
  ``ceil(tokens / block_size)`` blocks (vLLM ``cdiv``).
* Capacity: ``gpu_memory * gpu_memory_utilization`` minus weights, the
  profiled activation peak and memory outside PyTorch, in whole blocks
  (vLLM ``Worker.determine_available_memory``).
* Prefill and decode time: every GEMM of every block on one rank
  (:func:`layer_gemm_shapes`) through the training model's roofline with its
  one GEMM size curve (``compute.gemm_time_s``): memory-bound at small batch,
  compute-bound at large, per GEMM. Attention is a fused kernel reading the
  KV cache (:func:`attention_bytes_per_layer`). Plus the tensor-parallel
  all-reduces, two per layer (Shoeybi et al. 2019), latency-bound at small
  batch (``comm.transfer_time_s``: NCCL's LL protocol), and each layer's
  element-wise kernels (:func:`elementwise_kernel_bytes`, FasterTransformer's
  four). A kernel's memory traffic moves at the achievable bandwidth for its
  size (:func:`hbm_size_efficiency`, Calculon's table), and no kernel takes
  less than the measured time of one back-to-back kernel
  (:func:`kernel_floor_time_s`). Not modelled: the host side of a step
  (scheduling, sampling, detokenisation) and host launch overhead beyond
  that per-kernel time.

Weights are bytes as checkpoints store them: GPTQ/AWQ int4 keep a 16-bit
scale and a packed 4-bit zero point per group of ``group_size`` input
elements of each output column (AutoAWQ ``WQLinear_GEMM``: ``qweight``,
``qzeros``, ``scales``); FP8 and int8 checkpoints keep one scale per tensor or
channel (< 0.1 % here, ignored). Only the transformer blocks' linear weights
are quantized; embeddings, LM head, norms, biases and routers stay 16-bit.
"""

from __future__ import annotations

import numpy as np


def _f(x):
    return np.asarray(x, dtype=np.float64)


# -- weights ----------------------------------------------------------------------------------------------
def quantized_bits(*, bits, group_size=0, scale_bits=16, zero_bits=0):
    """Stored bits per quantized weight element [bits].

    ``bits + (scale_bits + zero_bits) / group_size``; ``group_size`` 0 means no
    per-group metadata (16-bit weights; per-tensor FP8/int8 scales). AWQ/GPTQ
    int4 at group 128 with a 16-bit scale and a 4-bit zero: 4.15625.
    """
    g = _f(group_size)
    overhead = np.where(g > 0, (_f(scale_bits) + _f(zero_bits)) / np.where(g > 0, g, 1.0), 0.0)
    return _f(bits) + overhead


def kv_heads_per_rank(*, n_kv_head, tp):
    """KV heads each tensor-parallel rank stores [heads]: ``max(1, n_kv_head // tp)``.

    When ``tp > n_kv_head`` every rank keeps a whole head (replicated
    ``tp / n_kv_head`` times). vLLM ``ModelConfig.get_num_kv_heads``.
    """
    return np.maximum(1, np.asarray(n_kv_head) // np.asarray(tp))


def tp_divides_heads(*, n_head, n_kv_head, tp):
    """Whether tensor parallelism can split the heads [bool]: tp divides n_head, and tp divides n_kv_head
    or n_kv_head divides tp (vLLM ``QKVParallelLinear``)."""
    H, K, t = np.asarray(n_head), np.asarray(n_kv_head), np.asarray(tp)
    return (H % t == 0) & ((K % t == 0) | (t % K == 0))


def layer_linear_params_per_rank(*, d_model, n_head, n_kv_head, head_dim, d_ff, gated_mlp, n_experts, tp):
    """Linear weight elements of one block on one tensor-parallel rank [parameters].

    ``d*(H/tp)*hd`` (Q) + ``2*d*kv_rank*hd`` (K, V) + ``(H/tp)*hd*d`` (output)
    + ``E*(2 + gated)*d*d_ff/tp`` (MLP or experts), with ``kv_rank`` from
    :func:`kv_heads_per_rank`. Biases excluded (see ``layer_dense_params_per_rank``).
    """
    d, hd, t = _f(d_model), _f(head_dim), _f(tp)
    kv = _f(kv_heads_per_rank(n_kv_head=n_kv_head, tp=tp))
    attn = 2 * d * (_f(n_head) / t) * hd + 2 * d * kv * hd
    mlp = _f(n_experts) * (2 + _f(gated_mlp)) * d * _f(d_ff) / t
    return attn + mlp


def layer_dense_params_per_rank(*, d_model, n_head, n_kv_head, head_dim, d_ff, gated_mlp, n_experts, qkv_bias,
                                out_bias, mlp_bias, norm_bias, tp):
    """Unquantized elements of one block on one rank [parameters]: norms, biases, router.

    Two norms ``2*d*(1 + norm_bias)`` and the router ``d*E`` (when ``E > 1``)
    are replicated; Q/K/V and MLP up/gate biases split with their columns;
    the row-parallel output and down biases (``d``) are replicated.
    """
    d, t, E = _f(d_model), _f(tp), _f(n_experts)
    kv = _f(kv_heads_per_rank(n_kv_head=n_kv_head, tp=tp))
    norms = 2 * d * (1 + _f(norm_bias))
    router = np.where(E > 1, d * E, 0.0)
    qkv_b = _f(qkv_bias) * (_f(n_head) / t + 2 * kv) * _f(head_dim)
    out_b = _f(out_bias) * d
    mlp_b = _f(mlp_bias) * E * ((1 + _f(gated_mlp)) * _f(d_ff) / t + d)
    return norms + router + qkv_b + out_b + mlp_b


def weights_per_gpu_bytes(*, linear_params, dense_params, n_layer, pp, token_embedding, position_embedding,
                          final_norm, lm_head, tied_embeddings, tp, weight_bits, dense_bits=16):
    """Serving weights on the busiest GPU [bytes].

    ``ceil(L/pp) * (linear*weight_bits + dense*dense_bits)/8`` per stage plus,
    on one stage, the larger of the first stage's embeddings (vocabulary split
    ``tp`` ways, learned positions replicated) and the last stage's final norm
    and LM head (a tied head is a second copy of the embedding when ``pp > 1``);
    with ``pp = 1`` both. ``linear_params``/``dense_params`` are one block's
    per-rank counts.
    """
    t, p = _f(tp), _f(pp)
    blocks = np.ceil(_f(n_layer) / p) * (_f(linear_params) * _f(weight_bits) + _f(dense_params) * dense_bits) / 8
    first = (_f(token_embedding) / t + _f(position_embedding)) * dense_bits / 8
    head = _f(lm_head) + _f(tied_embeddings) * (p > 1) * _f(token_embedding)
    last = (_f(final_norm) + head / t) * dense_bits / 8
    return blocks + np.where(p > 1, np.maximum(first, last), first + last)


# -- KV cache ---------------------------------------------------------------------------------------------
def kv_cache_bytes_per_token_layer(*, n_kv_head, head_dim, kv_bits, tp=1, kv_lora_rank=0, qk_rope_head_dim=0):
    """KV cache of one token in one layer on one rank [bytes].

    ``2 * max(1, n_kv_head // tp) * head_dim * kv_bits / 8`` (a key and a
    value per KV head); with MLA (``kv_lora_rank > 0``)
    ``(kv_lora_rank + qk_rope_head_dim) * kv_bits / 8`` on every rank
    (DeepSeek-V2, arXiv:2405.04434 sec. 2.1.2). vLLM ``AttentionSpec.page_size_bytes``:
    ``coef * block_size * num_kv_heads * head_size * dtype_size``, coef 2, or 1 with MLA.
    """
    kv = _f(kv_heads_per_rank(n_kv_head=n_kv_head, tp=tp))
    gqa = 2 * kv * _f(head_dim)
    mla = _f(kv_lora_rank) + _f(qk_rope_head_dim)
    return np.where(_f(kv_lora_rank) > 0, mla, gqa) * _f(kv_bits) / 8


def kv_cache_bytes_per_token(*, per_token_layer, n_layer, pp=1):
    """KV cache per token of context on the busiest GPU, every layer [bytes].

    ``ceil(L / pp) * per_token_layer`` (a sliding-window layer stops growing
    past its window: see :func:`kv_cache_bytes_per_sequence`). Llama 3.1
    8B / 70B in 16 bits: 0.125 / 0.3125 GiB per 1,024 tokens (Hugging Face,
    "Llama 3.1 - 405B, 70B & 8B", 2024-07-23).
    """
    return np.ceil(_f(n_layer) / _f(pp)) * _f(per_token_layer)


def blocks_for(*, tokens, block_size):
    """Cache blocks holding ``tokens`` tokens [blocks]: ``ceil(tokens / block_size)`` (vLLM ``cdiv``)."""
    return np.ceil(_f(tokens) / _f(block_size))


def kv_cache_bytes_per_sequence(*, tokens, per_token_layer, n_layer, pp=1, block_size=1, sliding_window=0,
                                n_sliding_layers=0):
    """KV cache of one sequence of ``tokens`` tokens on the busiest GPU [bytes].

    Full-attention layers hold every token, sliding-window layers at most
    ``sliding_window``; each in whole blocks of ``block_size`` tokens:
    ``(n_full * ceil(n/b) + n_swa * ceil(min(n, w)/b)) * b * per_token_layer``,
    layers taken ``ceil(./pp)`` per stage. ``block_size = 1`` is the unpaged
    cache of ``transformers``' ``DynamicCache``.
    """
    p = _f(pp)
    n_swa = _f(n_sliding_layers) * (_f(sliding_window) > 0)
    n_full = _f(n_layer) - n_swa
    windowed = np.where(_f(sliding_window) > 0, np.minimum(_f(tokens), _f(sliding_window)), _f(tokens))
    full = np.ceil(n_full / p) * blocks_for(tokens=tokens, block_size=block_size)
    swa = np.ceil(n_swa / p) * blocks_for(tokens=windowed, block_size=block_size)
    return (full + swa) * _f(block_size) * _f(per_token_layer)


def kv_cache_budget_bytes(*, memory_bytes, gpu_memory_utilization, weights, workspace, overhead_bytes):
    """Memory left for the KV cache on one GPU [bytes], never negative.

    ``memory * gpu_memory_utilization - weights - workspace - overhead``
    (vLLM ``determine_available_memory``: requested memory minus the
    profiled non-KV peak).
    """
    left = _f(memory_bytes) * _f(gpu_memory_utilization) - _f(weights) - _f(workspace) - _f(overhead_bytes)
    return np.maximum(left, 0.0)


def kv_cache_tokens(*, budget_bytes, bytes_per_token, block_size):
    """Tokens the cache holds on every layer [tokens]: whole blocks, ``floor(budget / (b * bytes)) * b``.

    vLLM ``get_num_blocks``: ``available // page_size_bytes`` over the layers.
    """
    b = _f(block_size)
    return np.floor(_f(budget_bytes) / (b * _f(bytes_per_token))) * b


def max_concurrency(*, budget_bytes, sequence_bytes):
    """Sequences of a given length that fit in the cache at once [sequences]: ``floor(budget / sequence)``."""
    return np.floor(_f(budget_bytes) / _f(sequence_bytes))


def prefill_workspace_bytes(*, tokens, d_model, n_head, n_kv_head, head_dim, d_ff, gated_mlp, tp, act_bits,
                            vocab_size, logits_rows):
    """Activation peak of a forward pass over ``tokens`` tokens on one rank [bytes].

    ``tokens * (4*d + (H/tp + 2*kv_rank)*hd + (2 + gated)*d_ff/tp) * act_bits/8``
    (residual, norm output, attention output and hidden state; the fused QKV
    output; the MLP up/gate output and its activation) plus
    ``logits_rows * V * 4`` for the fp32 logits of the sampled positions. It
    stands for vLLM's profiling run of ``max_num_batched_tokens`` tokens.
    """
    kv = _f(kv_heads_per_rank(n_kv_head=n_kv_head, tp=tp))
    t = _f(tp)
    per_token = 4 * _f(d_model) + (_f(n_head) / t + 2 * kv) * _f(head_dim) + (2 + _f(gated_mlp)) * _f(d_ff) / t
    return _f(tokens) * per_token * _f(act_bits) / 8 + _f(logits_rows) * _f(vocab_size) * 4


# -- FLOPs and time ---------------------------------------------------------------------------------------
def experts_touched(*, n_experts, top_k, tokens):
    """Expected distinct experts a layer reads for ``tokens`` tokens under uniform routing [experts].

    ``E * (1 - (1 - k/E)^tokens)``; 1 for a dense model.
    """
    E = _f(n_experts)
    return E * (1 - (1 - _f(top_k) / E) ** _f(tokens))


def linear_gemm_bytes(*, rows, cols, inner, weight_bits, act_bits):
    """HBM traffic of one linear layer's GEMM on one rank [bytes].

    ``(rows*inner + rows*cols) * act_bits/8 + inner*cols * weight_bits/8``:
    read the activations [rows x inner] and the weights [inner x cols] once,
    write the output [rows x cols] (``compute.gemm_bytes`` with the weights at
    their stored width, e.g. 4.156 bits for AWQ int4 at group 128).
    """
    r, c, k = _f(rows), _f(cols), _f(inner)
    return (r * k + r * c) * _f(act_bits) / 8 + k * c * _f(weight_bits) / 8


def layer_gemm_shapes(*, tokens, d_model, n_head, n_kv_head, head_dim, d_ff, gated_mlp, n_experts, top_k, tp,
                      q_lora_rank=0, kv_lora_rank=0, qk_rope_head_dim=0, qk_nope_head_dim=0, v_head_dim=0,
                      absorbed=0):
    """The GEMMs of one block's forward on one tensor-parallel rank, as ``(rows, cols, inner, count)`` [1].

    Megatron column/row parallel (Shoeybi et al. 2019): fused QKV
    ``[tokens x d] @ [d x (H/tp + 2*kv_rank)*hd]``, output
    ``[tokens x (H/tp)*hd] @ [.. x d]``, MLP up (and gate)
    ``[rows x d] @ [d x (1 + gated)*d_ff/tp]`` and down ``[rows x d_ff/tp] @ [.. x d]``
    once per expert touched (:func:`experts_touched`; ``rows = tokens*k/touched``
    each), and the router ``[tokens x d] @ [d x E]`` when ``E > 1``. Each
    entry is a tuple of arrays; ``count`` is how many such GEMMs run.

    Multi-head latent attention (``kv_lora_rank = r_kv > 0``; DeepSeek-V2,
    arXiv:2405.04434 sec. 2.1) replaces the QKV and output GEMMs (count 0)
    with vLLM's (``vllm/v1/attention/backends/mla/common.py``,
    ``DeepseekV2MLAAttention``): the fused down projection
    ``[tokens x d] @ [d x (r_q + r_kv + p)]`` on every rank (q_a with kv_a;
    kv_a alone when ``r_q = 0``), the query up projection ``[tokens x r_q] @
    [r_q x (H/tp)(n + p)]`` (``q_proj`` from ``d`` when ``r_q = 0``), then
    with ``absorbed = 0`` (prefill, "compute friendly") the key/value up
    projection ``[tokens x r_kv] @ [r_kv x (H/tp)(n + v)]`` of the new tokens,
    or with ``absorbed = 1`` (decode, "data-movement friendly") its two halves
    as batched GEMMs over the ``H/tp`` heads, ``W_UK`` (``[tokens x n] @ [n x
    r_kv]`` per head) and ``W_UV`` (``[tokens x r_kv] @ [r_kv x v]`` per
    head), each one kernel, written as one block-diagonal GEMM
    ``[tokens x n] @ [n x (H/tp) r_kv]`` and ``[tokens x r_kv] @ [r_kv x
    (H/tp) v]``: its FLOPs, weights and output exact, its input read once
    rather than once per head; and the output ``[tokens x (H/tp) v] @ [.. x
    d]``. ``p``, ``n``, ``v``: ``qk_rope_head_dim``, ``qk_nope_head_dim``,
    ``v_head_dim``. Both forms read the same weights (``kv_b_proj`` is
    ``[W_UK; W_UV]``), at the stored width (vLLM keeps 16-bit copies of
    ``W_UK``, ``W_UV`` for its batched GEMMs: not modelled).
    """
    t = _f(tp)
    d, hd, f = _f(d_model), _f(head_dim), _f(d_ff)
    m = _f(tokens)
    kv = _f(kv_heads_per_rank(n_kv_head=n_kv_head, tp=tp))
    E = _f(n_experts)
    touched = experts_touched(n_experts=E, top_k=top_k, tokens=m)
    rows = np.where(touched > 0, m * _f(top_k) / np.where(touched > 0, touched, 1.0), 0.0)
    one = np.ones_like(m)
    mla = (_f(kv_lora_rank) > 0) * one
    heads = _f(n_head) / t
    qr, r, p, n, v = _f(q_lora_rank), _f(kv_lora_rank), _f(qk_rope_head_dim), _f(qk_nope_head_dim), _f(v_head_dim)
    ab = _f(absorbed)
    return (
        (m, (heads + 2 * kv) * hd, d, one - mla),
        (m, d, heads * hd, one - mla),
        (rows, (1 + _f(gated_mlp)) * f / t, d, touched),
        (rows, d, f / t, touched),
        (m, E, d, (E > 1) * one),
        # multi-head latent attention
        (m, qr + r + p, d, mla),
        (m, heads * (n + p), np.where(qr > 0, qr, d), mla),
        (m, heads * (n + v), r, mla * (1 - ab)),
        (m, heads * r, n, mla * ab),
        (m, heads * v, r, mla * ab),
        (m, d, heads * v, mla),
    )


def attention_flops_per_layer(*, tokens, n_head, head_dim, attended, tp):
    """Q@K^T and P@V FLOPs of one layer on one rank [FLOP]: ``4 * (H/tp) * hd * tokens * attended``.

    ``attended`` keys per query on average: ``(T + 1)/2`` for a causal prefill
    of ``T`` tokens, the context so far for a decode step (as
    :func:`forward_flops`).
    """
    return 4 * _f(n_head) / _f(tp) * _f(head_dim) * _f(tokens) * _f(attended)


def attention_bytes_per_layer(*, tokens, n_head, head_dim, tp, act_bits, kv_read_bytes):
    """HBM traffic of one layer's attention on one rank [bytes] (fused, FlashAttention-style).

    ``2 * tokens * (H/tp) * hd * act_bits/8`` (read Q, write the output) plus
    ``kv_read_bytes``, the cache the queries attend (per layer, per rank);
    scores stay on chip (Dao et al. 2022).
    """
    return 2 * _f(tokens) * _f(n_head) / _f(tp) * _f(head_dim) * _f(act_bits) / 8 + _f(kv_read_bytes)


def elementwise_kernel_bytes(*, tokens, d_model, d_ff, gated_mlp, tp, act_bits):
    """HBM traffic of each element-wise kernel of one block's forward on one rank, as a tuple [bytes].

    FasterTransformer's decoder layer (``ParallelGptDecoder::forward``,
    NVIDIA/FasterTransformer@4c014fb) launches four besides its GEMMs and its
    fused attention: the pre-attention norm (read ``d``, write ``d`` per
    token), the fused residual add and pre-MLP norm (read ``2d``, write
    ``2d``: the new residual and its normed copy), the MLP's bias and
    activation (read ``(1 + gated)*d_ff/tp``, write ``d_ff/tp``) and the
    residual add (read ``2d``, write ``d``); each times ``tokens * act_bits/8``.
    Rotary embedding, QKV bias and the KV-cache write are fused into the
    attention kernel there (and in TensorRT-LLM's attention plugin).
    """
    m, d, b = _f(tokens), _f(d_model), _f(act_bits) / 8
    width = _f(d_ff) / _f(tp)
    return (m * 2 * d * b, m * 4 * d * b, m * (2 + _f(gated_mlp)) * width * b, m * 3 * d * b)


#: Calculon's HBM efficiency by transfer size (calculon-ai/calculon@4f81f02 ``systems/a100_80g.json``,
#: ``mem1.MB_efficiency``): (smallest transfer [bytes], achievable / peak bandwidth), largest first.
HBM_SIZE_EFFICIENCY = ((100e6, 0.90), (10e6, 0.75), (1e6, 0.60), (0.0, 0.30))


def hbm_size_efficiency(*, nbytes, large_efficiency, table=HBM_SIZE_EFFICIENCY):
    """Achievable fraction of peak HBM bandwidth for one kernel that moves ``nbytes`` [1].

    ``large_efficiency * table(nbytes) / table(inf)``: Calculon's step table
    (>= 100 MB 0.90, >= 10 MB 0.75, >= 1 MB 0.60, else 0.30; Isaev et al.,
    SC'23), looked up as Calculon does (the row of the largest threshold not
    above the size) and scaled so that large transfers get the GPU's own
    ``large_efficiency`` (``catalogs/systems.toml`` ``hbm_efficiency``, 0.9
    from the same table by default).
    """
    n = _f(nbytes)
    out = np.full(np.shape(n), table[-1][1], dtype=np.float64)
    for threshold, eff in reversed(table[:-1]):
        out = np.where(n >= threshold, eff, out)
    return _f(large_efficiency) * out / table[0][1]


def kernel_floor_time_s(*, time_s, kernel_s, count=1.0):
    """Time of ``count`` identical kernels that each take ``time_s`` by their roofline [s].

    ``count * max(time_s, kernel_s)``: no kernel finishes faster than
    ``kernel_s``, the time one kernel takes in a stream of back-to-back
    launches (an empty kernel: launch, dispatch, completion). A fractional
    ``count`` (expected MoE experts touched) scales linearly; 0 kernels take 0 s.
    """
    return _f(count) * np.maximum(_f(time_s), _f(kernel_s))


def decode_kernels(*, layers, gemms_per_layer, elementwise_per_layer=4, attention_per_layer=1, per_pass=3):
    """Kernels one GPU runs in one forward pass, besides the collectives [kernels].

    ``layers * (gemms + elementwise + attention) + per_pass``; ``per_pass``:
    the embedding lookup, the final norm and the LM head GEMM. FasterTransformer's
    decoder layer: 4 GEMMs (QKV, output, MLP up and down), 1 fused attention
    and 4 element-wise kernels (:func:`elementwise_kernel_bytes`), 9 in all.
    """
    return _f(layers) * (_f(gemms_per_layer) + _f(elementwise_per_layer) + _f(attention_per_layer)) + _f(per_pass)


def tp_comm_time_s(*, all_reduce_s, n_layer):
    """Tensor-parallel all-reduces of one forward pass [s]: two per layer, ``2 * L * all_reduce_s``.

    ``all_reduce_s`` is one all-reduce of the pass's ``tokens x d`` activations
    over the TP group (``formulas/comm.py``, the same collective model as
    training); Shoeybi et al. 2019, sec. 3: one after attention, one after
    the MLP.
    """
    return 2 * _f(n_layer) * _f(all_reduce_s)


def roofline_time_s(*, flops, nbytes, matmul_flops_per_s, hbm_bytes_per_s, hbm_efficiency):
    """Time of a pass on one GPU [s]: ``max(flops / rate, bytes / (hbm * efficiency))``.

    Compute-bound when the arithmetic intensity exceeds the machine balance,
    memory-bound otherwise (Williams et al. 2009, roofline).
    """
    return np.maximum(_f(flops) / _f(matmul_flops_per_s), _f(nbytes) / (_f(hbm_bytes_per_s) * _f(hbm_efficiency)))


def output_tokens_per_s(*, concurrency, output_len, ttft_s, tpot_s):
    """Output tokens per second of one replica serving ``concurrency`` requests at once [tokens/s].

    ``c * output_len / (ttft + output_len * tpot)``: each batch of ``c``
    requests is prefilled, then decoded ``output_len`` steps.
    """
    n = _f(output_len)
    return _f(concurrency) * n / (_f(ttft_s) + n * _f(tpot_s))


def usd_per_million_tokens(*, usd_per_gpu_hour, n_gpus, seconds, tokens):
    """Cloud cost of ``tokens`` tokens that take ``seconds`` of a replica of ``n_gpus`` GPUs [USD per 1e6 tokens].

    ``usd_per_gpu_hour * n_gpus * seconds / 3600 / tokens * 1e6``.
    """
    return _f(usd_per_gpu_hour) * _f(n_gpus) * _f(seconds) / 3600.0 / _f(tokens) * 1e6
