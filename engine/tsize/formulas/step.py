"""Predicted training step time: the parts of one micro-batch on the busiest pipeline stage, and the step.

Each function is one quantity of the step-time model (README, "Step time"):
the GEMMs of one transformer block (Megatron column/row tensor parallelism,
experts ``k`` of ``E`` per token), the attention core, the LM head, a block's
forward / backward / recomputation, the stage's compute, its tensor- and
pipeline-parallel communication, the exposed data-parallel / ZeRO traffic,
and the step. The roofline of one operation is :mod:`compute`; collectives
are :mod:`comm`; the bubble is :mod:`pipeline`.

References
----------
Narayanan et al. 2021, "Efficient Large-Scale Language Model Training on GPU
Clusters Using Megatron-LM" (SC'21), sec. 2.2 (pipeline), 3.2 (tensor
parallel: 2 all-reduces forward, 2 backward per block).
Korthikanti et al. 2022, "Reducing Activation Recomputation in Large
Transformer Models", sec. 4 (sequence parallelism, selective recomputation).
Dao et al. 2022, FlashAttention (backward ~2.5x the forward, causal half skipped).
Rajbhandari et al. 2020, ZeRO, sec. 5 (stage 3 gathers weights forward and
backward, reduce-scatters gradients).
Chowdhery et al. 2022, PaLM, App. B (MFU).
"""

from __future__ import annotations

import numpy as np

from . import comm, compute


def _f(x):
    return np.asarray(x, dtype=np.float64)


def shaped_gemm_time_s(*, rows, cols, inner, bytes_per_element, matmul_flops_per_s, hbm_bytes_per_s,
                       hbm_efficiency=1.0, count=1.0):
    """Time of ``count`` GEMMs [rows x inner] @ [inner x cols] on one GPU [s].

    ``F = 2 * rows * cols * inner`` [FLOP], bytes from :func:`compute.gemm_bytes`,
    time from the roofline :func:`compute.gemm_time_s` (Williams et al. 2009;
    the size curve of Isaev et al. 2023).
    """
    return compute.gemm_time_s(flops=2 * rows * cols * inner, matmul_flops_per_s=matmul_flops_per_s,
                               hbm_bytes_per_s=hbm_bytes_per_s, hbm_efficiency=hbm_efficiency, count=count,
                               bytes=compute.gemm_bytes(m=rows, n=cols, k=inner, bytes_per_element=bytes_per_element))


def block_linear_time_s(*, tokens, d_model, n_head, n_kv_head, head_dim, d_ff, gated_mlp, n_experts, top_k, tp,
                        act_bytes, matmul_flops_per_s, hbm_bytes_per_s, hbm_efficiency=1.0):
    """Forward time of one block's linear layers, one micro-batch of ``tokens``, one GPU [s].

    Parameters
    ----------
    tokens : B*T [tokens]; d_model, n_head, n_kv_head, head_dim, d_ff : shapes [1]
    gated_mlp : 1 for two up projections [1]; n_experts, top_k : MoE routing [1]
    tp : tensor-parallel degree [1]; act_bytes : bytes per activation element [bytes]
    matmul_flops_per_s [FLOP/s], hbm_bytes_per_s [B/s], hbm_efficiency [1] : the GPU

    Notes
    -----
    ``t = G(N, (H+2K)*hd/tp, d) + G(N, d, H*hd/tp) + E * G(N*k/E, d_ff*(1+g)/tp, d)
    + E * G(N*k/E, d, d_ff/tp) + [E > 1] G(N, E, d)`` with ``G`` =
    :func:`shaped_gemm_time_s`: QKV and output projection split column / row
    parallel (Narayanan et al. 2021, sec. 3.2), each expert's MLP on its share
    ``k/E`` of the tokens, and the router.
    """
    t = np.asarray(tp, dtype=np.float64)
    rate = dict(bytes_per_element=act_bytes, matmul_flops_per_s=matmul_flops_per_s, hbm_bytes_per_s=hbm_bytes_per_s,
                hbm_efficiency=hbm_efficiency)
    E = n_experts
    expert_tokens = tokens * top_k / E
    return (shaped_gemm_time_s(rows=tokens, cols=(n_head + 2 * np.asarray(n_kv_head)) * head_dim / t, inner=d_model,
                               **rate)
            + shaped_gemm_time_s(rows=tokens, cols=d_model, inner=n_head * np.asarray(head_dim) / t, **rate)
            + shaped_gemm_time_s(rows=expert_tokens, cols=d_ff * (1 + np.asarray(gated_mlp)) / t, inner=d_model,
                                 count=E, **rate)
            + shaped_gemm_time_s(rows=expert_tokens, cols=d_model, inner=d_ff / t, count=E, **rate)
            + (np.asarray(E) > 1) * shaped_gemm_time_s(rows=tokens, cols=E, inner=d_model, **rate))


def mla_linear_time_s(*, tokens, d_model, n_head, q_lora_rank, kv_lora_rank, qk_rope_head_dim, qk_nope_head_dim,
                      v_head_dim, tp, act_bytes, matmul_flops_per_s, hbm_bytes_per_s, hbm_efficiency=1.0):
    """Forward time of one block's multi-head latent attention projections, one micro-batch, one GPU [s].

    Parameters
    ----------
    tokens : B*T [tokens]; d_model, n_head [1]
    q_lora_rank (0: queries projected directly), kv_lora_rank, qk_rope_head_dim, qk_nope_head_dim,
    v_head_dim : MLA's widths [1]
    tp : tensor-parallel degree [1]; act_bytes : bytes per activation element [bytes]
    matmul_flops_per_s [FLOP/s], hbm_bytes_per_s [B/s], hbm_efficiency [1] : the GPU

    Notes
    -----
    The GEMMs as transformers' ``DeepseekV3Attention`` and Megatron-Core's
    MLA run them in training, up-projections not absorbed (DeepSeek-V2,
    arXiv:2405.04434 sec. 2.1.2), with ``G`` = :func:`shaped_gemm_time_s`,
    ``q = n + p`` and ``r_q' = r_q`` or ``d`` when ``r_q = 0``:
    ``t = G(N, r_q, d) + G(N, H q/tp, r_q') + G(N, r_kv + p, d) + G(N, H (n + v)/tp, r_kv) + G(N, d, H v/tp)``:
    the down projections q_a and kv_a (to the latent and the shared rope
    key) on every rank, the up projections q_b (q_proj when ``r_q = 0``)
    and kv_b split by heads, the output projection row-parallel. At
    ``tp = 1`` their FLOPs are :func:`flops.mla_projections` plus
    :func:`flops.attention_out` at ``v``.
    """
    t = _f(tp)
    rate = dict(bytes_per_element=act_bytes, matmul_flops_per_s=matmul_flops_per_s, hbm_bytes_per_s=hbm_bytes_per_s,
                hbm_efficiency=hbm_efficiency)
    H, qr, kv = _f(n_head), _f(q_lora_rank), _f(kv_lora_rank)
    qk = _f(qk_nope_head_dim) + qk_rope_head_dim
    return (shaped_gemm_time_s(rows=tokens, cols=qr, inner=d_model, **rate)
            + shaped_gemm_time_s(rows=tokens, cols=H * qk / t, inner=np.where(qr > 0, qr, _f(d_model)), **rate)
            + shaped_gemm_time_s(rows=tokens, cols=kv + qk_rope_head_dim, inner=d_model, **rate)
            + shaped_gemm_time_s(rows=tokens, cols=H * (_f(qk_nope_head_dim) + v_head_dim) / t, inner=kv, **rate)
            + shaped_gemm_time_s(rows=tokens, cols=d_model, inner=H * _f(v_head_dim) / t, **rate))


def attention_core_time_s(*, batch_size, seq_len, n_head, head_dim, v_head_dim, tp, act_bytes, flash,
                          matmul_flops_per_s, hbm_bytes_per_s, hbm_efficiency=1.0, kernel_flops_per_s=np.nan):
    """Forward time of one block's attention core, Q@K^T and P@V, one micro-batch, one GPU [s].

    Parameters
    ----------
    batch_size : B [sequences]; seq_len : T [tokens]; n_head [1]; tp [1]
    head_dim : width of queries and keys [1]; v_head_dim : width of values [1] (both ``hd`` but with
    multi-head latent attention: ``qk_nope_head_dim + qk_rope_head_dim`` and ``v_head_dim``)
    act_bytes : bytes per element [bytes]; flash : 1 for a fused kernel [1]
    matmul_flops_per_s [FLOP/s], hbm_bytes_per_s [B/s], hbm_efficiency [1] : the GPU
    kernel_flops_per_s : the fused kernel's published rate, forward and backward
        (:func:`attention_kernel_flops_per_s`); NaN: the GEMM roofline [FLOP/s]

    Notes
    -----
    Two batched GEMMs over ``h = B*H/tp`` heads, Q@K^T at ``hd`` and P@V at
    ``hd_v``, each ``F = 2 h T^2 hd`` (halved by flash, which skips the
    causal half) and ``h * a * (3 T hd + (1 - flash) T^2)`` bytes (two
    operands and the result, plus the T x T matrix that naive attention
    writes and reads back); time by the roofline :func:`compute.gemm_time_s`:
    ``t = G(F(hd), bytes(hd)) + G(F(hd_v), bytes(hd_v))`` (Dao et al. 2022).
    A fused kernel with a published rate ``R_k`` takes
    ``max((F(hd) + F(hd_v)) / R_k, (bytes(hd) + bytes(hd_v)) / (BW eta))``
    instead: FlashAttention reaches a fraction of the peak well below a
    GEMM's (Dao 2023, Shah et al. 2024).
    """
    heads = np.asarray(batch_size, dtype=np.float64) * n_head / np.asarray(tp, dtype=np.float64)
    T = seq_len
    naive = 1 - flash
    causal = np.where(flash == 1, 0.5, 1.0)
    widths = (np.asarray(head_dim, dtype=np.float64), np.asarray(v_head_dim, dtype=np.float64))
    flops = [2.0 * heads * T * T * w * causal for w in widths]
    nbytes = [heads * act_bytes * (3.0 * T * w + naive * T * T) for w in widths]
    roofline = sum(compute.gemm_time_s(flops=f, bytes=n, matmul_flops_per_s=matmul_flops_per_s,
                                       hbm_bytes_per_s=hbm_bytes_per_s, hbm_efficiency=hbm_efficiency)
                   for f, n in zip(flops, nbytes))
    rate = np.asarray(kernel_flops_per_s, dtype=np.float64)
    known = (np.asarray(flash) == 1) & np.isfinite(rate)
    with np.errstate(divide="ignore", invalid="ignore"):
        kernel = np.maximum((flops[0] + flops[1]) / rate,
                            compute.memory_time_s(bytes=nbytes[0] + nbytes[1], hbm_bytes_per_s=hbm_bytes_per_s,
                                                  hbm_efficiency=hbm_efficiency))
    return np.where(known, kernel, roofline)


def attention_kernel_flops_per_s(*, generation, peak_flops_per_s, flash1_fraction, flash2_fraction,
                                 flash3_fraction):
    """Rate of a fused attention kernel, forward and backward, on one GPU [FLOP/s].

    Parameters
    ----------
    generation : FlashAttention generation, 1, 2 or 3 (0: naive attention) [1]
    peak_flops_per_s : dense peak at the compute dtype [FLOP/s]
    flash1_fraction, flash2_fraction, flash3_fraction : published fraction of
        the peak each generation reaches on the GPU (NaN: none published) [1]

    Notes
    -----
    ``R_k = peak * f_gen``; NaN for naive attention or an unpublished
    fraction. Sources (catalogs/systems.toml): Dao 2023 (arXiv:2307.08691),
    FlashAttention 25-40 % and FlashAttention-2 50-73 % of the A100's peak;
    Shah et al. 2024 (arXiv:2407.08608), FlashAttention-2 35 % of the H100's,
    FlashAttention-3 1.5-2.0x faster.
    """
    g = np.asarray(generation)
    fraction = np.where(g == 1, flash1_fraction, np.where(g == 2, flash2_fraction,
                                                          np.where(g == 3, flash3_fraction, np.nan)))
    return np.asarray(peak_flops_per_s, dtype=np.float64) * fraction


def attention_core_backward_time_s(*, forward_time_s, flash):
    """Backward time of the attention core [s]: ``2.5 t_fwd`` with flash (recomputes P), else ``2 t_fwd``.

    Dao et al. 2022 (FlashAttention), sec. 3.1 and 4; the usual 2x of a GEMM's backward otherwise.
    """
    return forward_time_s * np.where(flash == 1, 2.5, 2.0)


def block_forward_time_s(*, linear_s, attention_s, memory_s):
    """Forward time of one block, one micro-batch [s]: ``t_lin + t_attn + t_mem``."""
    return linear_s + attention_s + memory_s


def block_backward_time_s(*, linear_s, attention_backward_s, memory_s):
    """Backward time of one block, one micro-batch [s]: ``2 t_lin + t_attn_bwd + 2 t_mem``.

    Each GEMM's backward is two GEMMs of its size (input and weight
    gradients); each element-wise op reads and writes twice as much.
    """
    return 2 * linear_s + attention_backward_s + 2 * memory_s


def block_recompute_time_s(*, recompute, forward_s, attention_s, attention_memory_s):
    """Time recomputing one block's forward in the backward pass, one micro-batch [s].

    ``recompute`` 2 (full): the whole forward ``t_fwd``; 1 (selective,
    Korthikanti et al. 2022 sec. 4.2): the attention core and its element-wise
    ops ``t_attn + t_mem,attn``; 0: nothing.
    """
    rc = np.asarray(recompute)
    return np.where(rc == 2, forward_s, np.where(rc == 1, attention_s + attention_memory_s, 0.0))


def lm_head_time_s(*, tokens, vocab_size, d_model, tp, act_bytes, matmul_flops_per_s, hbm_bytes_per_s,
                   hbm_efficiency=1.0):
    """LM head forward and backward, with fp32 logits and loss, one micro-batch, one GPU [s].

    ``t = 3 G(N, V/tp, d) + 3 N (V/tp) 4 / (BW eta)``: the projection's
    forward and two backward GEMMs (:func:`shaped_gemm_time_s`), and the fp32
    logits written, read by the loss and its gradient (memory-bound).
    """
    t = np.asarray(tp, dtype=np.float64)
    return (3 * shaped_gemm_time_s(rows=tokens, cols=vocab_size / t, inner=d_model, bytes_per_element=act_bytes,
                                   matmul_flops_per_s=matmul_flops_per_s, hbm_bytes_per_s=hbm_bytes_per_s,
                                   hbm_efficiency=hbm_efficiency)
            + compute.memory_time_s(bytes=3 * tokens * vocab_size / t * 4, hbm_bytes_per_s=hbm_bytes_per_s,
                                    hbm_efficiency=hbm_efficiency))


def stage_layers(*, n_layer, pp):
    """Blocks on the busiest pipeline stage [1]: ``ceil(L / pp)``."""
    return np.ceil(np.asarray(n_layer, dtype=np.float64) / pp)


def stage_compute_time_s(*, stage_layers, forward_s, backward_s, recompute_s, lm_head_s):
    """Compute of one micro-batch on the busiest stage [s]: ``l (t_fwd + t_bwd + t_redo) + t_head``."""
    return stage_layers * (forward_s + backward_s + recompute_s) + lm_head_s


def stage_tp_comm_time_s(*, stage_layers, recompute, collective_s):
    """Tensor-parallel communication of one micro-batch on the busiest stage [s].

    ``l * (4 + 2 [recompute = 2]) * t_coll``: two all-reduces (or, with
    sequence parallelism, reduce-scatter + all-gather: the same bytes) in the
    forward and two in the backward of each block, two more when the forward
    is recomputed (Narayanan et al. 2021 sec. 3.2; Korthikanti et al. 2022 sec. 4.2.2).
    """
    return stage_layers * (4 + 2 * (np.asarray(recompute) == 2)) * collective_s


def pipeline_send_time_s(*, bytes, tp, pp, scaleup_size, scaleup_bytes_per_s, scaleup_latency_s,
                         scaleout_bytes_per_s, scaleout_latency_s):
    """One pipeline send between adjacent stages [s] (:func:`comm.p2p_time_s`).

    Over the scale-up fabric when the whole ``tp x pp`` model replica fits one
    scale-up domain (``tp * pp <= scaleup_size``), else over the scale-out one.
    """
    inside = np.asarray(tp) * pp <= np.asarray(scaleup_size)
    return comm.p2p_time_s(bytes=bytes, bytes_per_s=np.where(inside, scaleup_bytes_per_s, scaleout_bytes_per_s),
                           latency_s=np.where(inside, scaleup_latency_s, scaleout_latency_s))


def stage_pp_comm_time_s(*, pp, interleave, send_s):
    """Pipeline sends of one micro-batch on one stage [s]: ``[pp > 1] * 2 v t_send``.

    Activations forward and gradients backward, once per model chunk
    (``v`` chunks with the interleaved schedule; Narayanan et al. 2021 sec. 2.2).
    """
    return (np.asarray(pp) > 1) * 2 * np.asarray(interleave) * send_s


def bucketed_collective_time_s(*, bytes, buckets, n, local, kind, scaleup_bytes_per_s, scaleup_latency_s,
                               scaleout_bytes_per_s, scaleout_latency_s):
    """A data-parallel collective of ``bytes`` sent in ``buckets`` equal buckets [s].

    ``t = b * t_coll(S / b)`` with :func:`comm.hierarchical_time_s`
    (``kind`` 2 all-reduce, 1 reduce-scatter or all-gather). Megatron and
    PyTorch DDP reduce gradients in buckets; one bucket per block here.
    """
    return buckets * comm.hierarchical_time_s(bytes=bytes / buckets, n=n, local=local, kind=kind,
                                              scaleup_bytes_per_s=scaleup_bytes_per_s,
                                              scaleup_latency_s=scaleup_latency_s,
                                              scaleout_bytes_per_s=scaleout_bytes_per_s,
                                              scaleout_latency_s=scaleout_latency_s)


def dp_comm_once_time_s(*, zero_stage, grad_all_reduce_s, grad_reduce_scatter_s, weight_all_gather_s):
    """Data-parallel communication once per step, ZeRO stages 0-2 [s] (Rajbhandari et al. 2020 sec. 5).

    Stage 0: all-reduce the gradients. Stages 1-2: reduce-scatter the gradients
    and all-gather the updated weights.
    """
    return np.where(np.asarray(zero_stage) == 0, grad_all_reduce_s, grad_reduce_scatter_s + weight_all_gather_s)


def zero3_comm_per_micro_batch_s(*, weight_all_gather_s, grad_reduce_scatter_s):
    """ZeRO-3 communication per micro-batch [s]: ``2 t_gather + t_scatter``.

    Gather the weights for the forward and again for the backward, reduce-scatter
    the gradients (Rajbhandari et al. 2020 sec. 5.3).
    """
    return 2 * weight_all_gather_s + grad_reduce_scatter_s


def dp_hidden_time_s(*, zero_stage, stage_compute_s, stage_layers, backward_s, recompute_s, overlap):
    """Compute that data-parallel traffic can hide behind, per exposure [s].

    ZeRO-3: each micro-batch's compute (``t_stage``). Otherwise the gradient
    reduction overlaps the last micro-batch's backward, ``l (t_bwd + t_redo)``.
    0 without overlap (``overlap`` = 0).
    """
    three = np.asarray(zero_stage) == 3
    return np.where(three, stage_compute_s, stage_layers * (backward_s + recompute_s)) * np.asarray(overlap)


def exposed_time_s(*, comm_s, hidden_s, repeats):
    """Communication left exposed [s]: ``max(t_comm - t_hidden, 0) * r``, ``r`` times per step."""
    exposed = np.subtract(comm_s, hidden_s)
    if not isinstance(exposed, np.ndarray):  # 0-d inputs give a scalar
        return np.maximum(exposed, 0.0) * repeats
    np.maximum(exposed, 0.0, out=exposed)
    return _multiply(exposed, repeats)


def _owns_shape(total, part):
    """Whether ``total`` (an array) already has the broadcast shape and dtype of ``total`` and ``part``."""
    shape = np.shape(part)
    return (isinstance(total, np.ndarray) and total.dtype == np.result_type(total, part) and len(shape) <= total.ndim
            and all(p in (1, t) for p, t in zip(shape[::-1], total.shape[::-1])))


def _multiply(total, part):
    """``total * part``, in place when ``total`` already has the broadcast shape (no temporary)."""
    if _owns_shape(total, part):
        total *= part
        return total
    return total * part


def _empty(*arrays):
    """An empty float64 array of the arrays' broadcast shape (``np.broadcast_shapes`` stops at 32 dimensions)."""
    shapes = [np.shape(a) for a in arrays]
    n = max(len(sh) for sh in shapes)
    padded = [(1,) * (n - len(sh)) + tuple(sh) for sh in shapes]
    return np.empty(tuple(max(dims) for dims in zip(*padded)))


def step_time_s(*, micro_batches, bubble_micro_batches, micro_batch_time_s, dp_exposed_s, optimizer_s):
    """Predicted optimizer step [s]: ``(m + (p-1)/v) t_mb + t_dp,exposed + t_opt``.

    ``m`` micro-batches plus the bubble (:func:`pipeline.bubble_time_s`),
    then the exposed data-parallel traffic and the optimizer update
    (Narayanan et al. 2021 sec. 2.2).
    """
    per_step = np.add(micro_batches, bubble_micro_batches)
    step = _empty(per_step, micro_batch_time_s, dp_exposed_s, optimizer_s)
    np.multiply(per_step, micro_batch_time_s, out=step)
    step += dp_exposed_s
    step += optimizer_s
    return step


def steps_per_s(*, step_time_s):
    """Optimizer steps per second [1/s]: ``1 / t_step``."""
    return np.divide(1.0, step_time_s)


def micro_batches_per_gpu_peak(*, micro_batches, dp, n_gpus, peak_flops_per_s):
    """Micro-batches each GPU runs per step over its peak [s/FLOP]: ``m * dp / (n * peak)``.

    The common factor of :func:`predicted_utilisation` for MFU and HFU.
    """
    return micro_batches * dp / (np.asarray(n_gpus, dtype=np.float64) * peak_flops_per_s)


def predicted_utilisation(*, flops_per_micro_batch, per_gpu_peak, steps_per_s):
    """Predicted FLOPs utilisation [1]: ``F_mb * m * dp / (n * peak * t_step)`` (Chowdhery et al. 2022 App. B).

    ``flops_per_micro_batch``: model FLOPs of one micro-batch through the whole
    model (MFU), plus the recomputed FLOPs (HFU) [FLOP]; ``per_gpu_peak`` from
    :func:`micro_batches_per_gpu_peak` [s/FLOP]; ``steps_per_s`` = 1/t_step [1/s].
    """
    return np.multiply(steps_per_s, flops_per_micro_batch * per_gpu_peak)


def sequences_per_gpu(*, micro_batches, dp, batch_size, n_gpus):
    """Sequences each GPU's share of a step holds [sequences]: ``m * dp * B / n``."""
    return micro_batches * dp * batch_size / np.asarray(n_gpus, dtype=np.float64)


def tokens_per_s_per_gpu(*, sequences_per_gpu, seq_len, steps_per_s):
    """Training throughput per GPU [tokens/s]: ``(m dp B / n) T / t_step``."""
    return sequences_per_gpu * seq_len * steps_per_s


def train_time_s(*, tokens, sequences_per_gpu, n_gpus, seq_len, step_time_s):
    """Time to train on ``tokens`` [s]: ``D / (m dp B T) * t_step`` (steps x step time)."""
    return tokens / (sequences_per_gpu * np.asarray(n_gpus, dtype=np.float64) * seq_len) * step_time_s
