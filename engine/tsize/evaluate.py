"""Compose the formulas into every output of the registry.

:func:`evaluate` takes resolved inputs, numpy arrays that broadcast against
each other (one axis per sweep dimension, length 1 elsewhere), and returns
one array per output. Each output keeps the smallest shape its inputs give
it: a parameter count has extent only along the model axis, so per-config
work is done once per config, never per point.

Resolved inputs are the sweep axes of ``registry.INPUTS`` with categorical
ones expanded into their attributes (see ``grid.resolve``): the model's
shape fields, the precision recipe's bit widths, the optimizer's states,
the GPU's memory, prices and dense peak for the recipe's dtype.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from tsize.formulas import (activations, comm, compute, flops, memory, parallel, params, pipeline, sequence,
                            serving, step, training)
from tsize.registry import OUTPUT_NAMES, OUTPUTS, PRECISION_BITS

#: Bytes per tensor record in PyTorch's zip checkpoint format (local header
#: ~30 B + name ~30 B + padding to 64-byte alignment ~32 B, central-directory
#: entry ~46 B + name + zip64 extra ~24 B, pickled persistent id ~80 B).
CHECKPOINT_RECORD_BYTES = 256
#: Pickled ``model_args``, ``iter_num``, ``best_val_loss`` and ``config`` of
#: a nanoGPT checkpoint, plus the archive's fixed records.
CHECKPOINT_METADATA_BYTES = 2048

#: Names of the resolved inputs ``evaluate`` reads.
MODEL_FIELDS = (
    "n_layer", "d_model", "n_head", "n_kv_head", "head_dim", "d_ff", "vocab_size", "n_ctx", "learned_positions",
    "rmsnorm", "norm_bias", "mlp_saved", "gated_mlp", "mlp_bias", "qkv_bias", "out_bias", "tied_embeddings",
    "n_experts", "top_k", "softmax_fp32", "loss_fp32", "fused_qkv", "residual_dropout", "mask_buffer",
    "heads_divide",
    # newer block structures (grid._structure_fields)
    "block_norms", "parallel_residual", "post_norms", "sandwich_norms", "qk_norm", "fused_gate_up", "rotary_dim",
    "attention_sinks", "attn_softcap", "final_softcap", "sliding_window", "n_sliding_layers", "mla", "q_lora_rank",
    "kv_lora_rank", "qk_rope_head_dim", "qk_nope_head_dim", "v_head_dim", "qk_dim", "v_dim", "moe_d_ff",
    "moe_layers", "shared_d_ff", "shared_expert_gate", "expert_bias", "router_bias", "norm_fp32", "expert_loop",
    "v_view", "out_copy", "router_fp32", "sdpa_math", "masked_blocks",
)
PRECISION_FIELDS = PRECISION_BITS
OPTIMIZER_FIELDS = ("n_states", "optimizer_state_bits", "step_tensor", "optimizer_fused")
GPU_FIELDS = ("gpu_memory_bytes", "gpu_tdp_w", "gpu_price_usd", "gpu_cloud_usd_per_hour", "peak_flops_per_s")
#: Achievable rates (catalogs/systems.toml): ``hbm_bytes_per_s`` peak HBM [B/s], ``hbm_efficiency`` [1],
#: ``matmul_flops_per_s`` measured dense GEMM ceiling at the recipe's dtype, before the size curve [FLOP/s];
#: the point's system: ``scaleup_size`` [GPUs], ``scaleup_bytes_per_s`` per-GPU bus bandwidth [B/s],
#: ``scaleup_latency_s`` [s], ``scaleout_bytes_per_s`` per GPU [B/s], ``scaleout_latency_s`` [s]; ``kernel_s`` the
#: shortest time one kernel takes in a stream of back-to-back launches [s] (serving's per-kernel floor);
#: ``flash1_fraction`` ... ``flash3_fraction`` fraction of the dense peak FlashAttention-1/-2/-3 reach [1] (NaN:
#: unpublished for the GPU, the GEMM roofline is used); ``attention_peak_flops_per_s`` and
#: ``attention_matmul_flops_per_s``: the dense peak and measured rate at the recipe's ``attention_peak`` [FLOP/s].
SYSTEM_FIELDS = ("hbm_bytes_per_s", "hbm_efficiency", "matmul_flops_per_s", "scaleup_size", "scaleup_bytes_per_s",
                 "scaleup_latency_s", "scaleout_bytes_per_s", "scaleout_latency_s", "kernel_s", "flash1_fraction",
                 "flash2_fraction", "flash3_fraction", "attention_peak_flops_per_s", "attention_matmul_flops_per_s")
NUMERIC_INPUTS = ("flash", "flash_generation", "dropout", "dropout_mask_bytes", "recompute", "grad_accum", "seq_len",
                  "batch_size", "n_gpus", "tokens", "assumed_mfu", "pue", "usd_per_kwh", "tp", "pp", "zero_stage",
                  "sequence_parallel", "overhead_bytes", "allocator_slack", "iter_time_s", "global_batch_size",
                  "interleave", "overlap_grad_reduce")
SERVING_FIELDS = (
    "serve", "weight_bits", "weight_group_size", "weight_scale_bits", "weight_zero_bits", "kv_bits", "context_len",
    "output_len", "concurrency", "block_size", "gpu_memory_utilization",
    "serving_matmul_flops_per_s", "sliding_window", "n_sliding_layers",
    "kv_lora_rank", "qk_rope_head_dim",
)
RESOLVED_INPUTS = (MODEL_FIELDS + PRECISION_FIELDS + OPTIMIZER_FIELDS + GPU_FIELDS + SYSTEM_FIELDS + NUMERIC_INPUTS
                   + SERVING_FIELDS)

#: Serving: tokens of vLLM's profiling forward pass (``max_num_batched_tokens``, 8192 for the API server in
#: vLLM V1) and rows of its sampler run (``max_num_seqs``, default 256); activations and all-reduces in 16 bits.
PREFILL_CHUNK_TOKENS = 8192
SAMPLER_ROWS = 256
SERVING_ACT_BITS = 16


def evaluate(x: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every output of ``registry.OUTPUTS`` from resolved, broadcastable inputs.

    One private stage per registry tier, in dependency order; each stage
    reads the inputs and the intermediates (``s``) of the stages before it
    and writes its tier's outputs into ``out``.
    """
    missing = [k for k in RESOLVED_INPUTS if k not in x]
    if missing:
        raise KeyError(f"missing resolved input {missing[0]!r}")  # a bug in grid.resolve, not a user error
    out: dict[str, np.ndarray] = {}
    s: dict[str, np.ndarray] = {}
    for stage in (_models, _gpus, _steps, _runs, _placements, _shards, _points, _times, _serving):
        stage(x, s, out)
    return {name: out[name] for name in OUTPUT_NAMES}


def _models(x, s, out) -> None:
    """Parameter counts (tier ``models``)."""
    L, d, H, K, hd = x["n_layer"], x["d_model"], x["n_head"], x["n_kv_head"], x["head_dim"]
    f, V, E, k = x["d_ff"], x["vocab_size"], x["n_experts"], x["top_k"]
    L_moe, mla = x["moe_layers"], np.asarray(x["mla"]) > 0
    p_tok = params.token_embedding(vocab_size=V, d_model=d)
    p_pos = params.position_embedding(n_ctx=x["n_ctx"], d_model=d, learned_positions=x["learned_positions"])
    p_norm = params.norm(d_model=d, norm_bias=x["norm_bias"])
    p_attn_std = params.attention(d_model=d, n_head=H, n_kv_head=K, head_dim=hd, qkv_bias=x["qkv_bias"],
                                  out_bias=x["out_bias"])
    p_attn_mla = params.mla_attention(d_model=d, n_head=H, q_lora_rank=x["q_lora_rank"],
                                      kv_lora_rank=x["kv_lora_rank"], qk_rope_head_dim=x["qk_rope_head_dim"],
                                      qk_nope_head_dim=x["qk_nope_head_dim"], v_head_dim=x["v_head_dim"],
                                      qkv_bias=x["qkv_bias"], out_bias=x["out_bias"])
    p_attn_norms = params.qk_norm(n_head=H, n_kv_head=K, head_dim=hd, qk_norm=x["qk_norm"]) + np.where(
        mla, params.mla_norms(q_lora_rank=x["q_lora_rank"], kv_lora_rank=x["kv_lora_rank"]), 0)
    p_sinks = params.attention_sinks(n_head=H, attention_sinks=x["attention_sinks"])
    p_attn = np.where(mla, p_attn_mla, p_attn_std) + np.where(mla, 0, p_attn_norms) + p_sinks
    p_mlp = params.mlp(d_model=d, d_ff=f, gated_mlp=x["gated_mlp"], mlp_bias=x["mlp_bias"])
    p_expert = params.mlp(d_model=d, d_ff=x["moe_d_ff"], gated_mlp=x["gated_mlp"], mlp_bias=x["expert_bias"])
    p_router = params.router(d_model=d, n_experts=E) + params.router_bias(n_experts=E, router_bias=x["router_bias"])
    p_shared = params.shared_expert(d_model=d, shared_d_ff=x["shared_d_ff"], gated_mlp=x["gated_mlp"],
                                    mlp_bias=x["mlp_bias"], shared_expert_gate=x["shared_expert_gate"])
    p_head = params.lm_head(vocab_size=V, d_model=d, tied_embeddings=x["tied_embeddings"])
    p_dense_block = params.block(norm=p_norm, block_norms=x["block_norms"], attention=p_attn,
                                 mlp=p_mlp)
    p_moe_block = params.block(norm=p_norm, block_norms=x["block_norms"], attention=p_attn,
                               mlp=params.moe_mlp(expert=p_expert, n_experts=E, router=p_router,
                                                  shared_expert=p_shared))
    p_blocks = params.blocks(dense_block=p_dense_block, moe_block=p_moe_block, n_layer=L, moe_layers=L_moe)
    p_total = params.total_blocks(token_embedding=p_tok, position_embedding=p_pos, blocks=p_blocks, norm=p_norm,
                                  lm_head=p_head)
    p_active = params.active_experts(total=p_total, expert=p_expert, moe_layers=L_moe, n_experts=E, top_k=k)
    p_lookup = params.lookup(token_embedding=p_tok, position_embedding=p_pos, tied_embeddings=x["tied_embeddings"])
    p_matmul = params.matmul(total=p_total, lookup=p_lookup, norm=p_norm, n_layer=L) - (
        np.asarray(x["block_norms"]) - 2) * L * p_norm - L * (p_attn_norms + p_sinks)
    n_tensors = params.tensors(n_layer=L, norm_bias=x["norm_bias"], fused_qkv=x["fused_qkv"], qkv_bias=x["qkv_bias"],
                               out_bias=x["out_bias"], gated_mlp=x["gated_mlp"], mlp_bias=x["mlp_bias"], n_experts=E,
                               learned_positions=x["learned_positions"], tied_embeddings=x["tied_embeddings"],
                               block_norms=x["block_norms"], qk_norm=x["qk_norm"],
                               attention_sinks=x["attention_sinks"], mla=x["mla"], q_lora_rank=x["q_lora_rank"],
                               fused_gate_up=x["fused_gate_up"], moe_layers=L_moe, router_bias=x["router_bias"],
                               expert_bias=x["expert_bias"], shared_d_ff=x["shared_d_ff"],
                               shared_expert_gate=x["shared_expert_gate"])
    p_layer_mean = (p_blocks / np.asarray(L, dtype=np.float64))
    s.update(p_attn=p_attn, p_tok=p_tok, p_pos=p_pos, p_norm=p_norm, p_head=p_head, p_layer=p_layer_mean, p_total=p_total,
             p_active=p_active, p_lookup=p_lookup, p_matmul=p_matmul, n_tensors=n_tensors, p_mlp=p_mlp,
             p_block_norms=np.asarray(x["block_norms"]) * p_norm)
    moe_any = np.asarray(L_moe) > 0
    out.update(
        params_token_embedding=p_tok, params_position_embedding=p_pos, params_attention=L * p_attn,
        params_mlp=(np.asarray(L) - L_moe) * p_mlp + np.asarray(L_moe) * (E * p_expert + p_shared),
        params_router=L_moe * p_router, params_norm=(np.asarray(x["block_norms"]) * L + 1) * p_norm,
        params_lm_head=p_head, params_layer=np.where(moe_any, p_moe_block, p_dense_block), params_total=p_total,
        params_non_embedding=params.non_embedding(total=p_total, lookup=p_lookup), params_active=p_active, param_tensors=n_tensors,
        heads_divide=np.asarray(x["heads_divide"], dtype=bool),
    )


def _gpus(x, s, out) -> None:
    """Accelerator facts (tier ``gpus``)."""
    out.update(gpu_memory_bytes=np.asarray(x["gpu_memory_bytes"], dtype=np.float64), gpu_tdp_w=x["gpu_tdp_w"],
               gpu_price_usd=x["gpu_price_usd"], gpu_cloud_usd_per_hour=x["gpu_cloud_usd_per_hour"])


def _expert_d_ff(x) -> np.ndarray:
    """Width of one MLP or expert for the time and serving models [elements]: ``moe_d_ff`` where the model
    gives one (its experts are narrower than its dense MLP), else ``d_ff``."""
    return np.where(np.asarray(x["moe_d_ff"]) > 0, x["moe_d_ff"], x["d_ff"])


def _mla_widths(x) -> dict[str, np.ndarray]:
    """Multi-head latent attention's widths, as the formulas take them (all 0 without MLA)."""
    return {k: x[k] for k in ("q_lora_rank", "kv_lora_rank", "qk_rope_head_dim", "qk_nope_head_dim", "v_head_dim")}


def _forward(x, B, T) -> dict[str, np.ndarray]:
    """The forward FLOPs of one micro-batch of ``B`` sequences of ``T`` tokens, by part [FLOP]: per block
    (``qkv``, ``scores``, ``values``, ``out``, ``layer``: means over the blocks where dense and MoE blocks
    differ), all blocks (``mlp_all``, ``router_all``), the LM head and the whole pass, with full and causal
    (windowed where the model has windows) attention. The one composition the steps and the runs share."""
    L, d, H, K, hd = x["n_layer"], x["d_model"], x["n_head"], x["n_kv_head"], x["head_dim"]
    f, V, E, k = x["d_ff"], x["vocab_size"], x["n_experts"], x["top_k"]
    tokens = np.asarray(B, dtype=np.float64) * T
    mla, qk_dim, v_dim, L_moe = np.asarray(x["mla"]) > 0, x["qk_dim"], x["v_dim"], x["moe_layers"]
    f_qkv = np.where(mla, flops.mla_projections(
        tokens=tokens, d_model=d, n_head=H, q_lora_rank=x["q_lora_rank"], kv_lora_rank=x["kv_lora_rank"],
        qk_rope_head_dim=x["qk_rope_head_dim"], qk_nope_head_dim=x["qk_nope_head_dim"], v_head_dim=x["v_head_dim"]),
        flops.qkv(tokens=tokens, d_model=d, n_head=H, n_kv_head=K, head_dim=hd))
    f_scores = flops.attention_scores(batch_size=B, seq_len=T, n_head=H, head_dim=qk_dim)
    f_values = flops.attention_values(batch_size=B, seq_len=T, n_head=H, head_dim=v_dim)
    f_out = flops.attention_out(tokens=tokens, d_model=d, n_head=H, head_dim=v_dim)
    f_mlp_all = (np.asarray(L) - L_moe) * flops.mlp(tokens=tokens, d_model=d, d_ff=f, gated_mlp=x["gated_mlp"],
                                                    top_k=1) + np.asarray(L_moe) * flops.moe_mlp(
        tokens=tokens, d_model=d, moe_d_ff=x["moe_d_ff"], gated_mlp=x["gated_mlp"], top_k=k,
        shared_d_ff=x["shared_d_ff"], shared_expert_gate=x["shared_expert_gate"])
    f_router_all = np.asarray(L_moe) * flops.router(tokens=tokens, d_model=d, n_experts=E)
    f_mlp, f_router = f_mlp_all / np.asarray(L, dtype=np.float64), f_router_all / np.asarray(L, dtype=np.float64)
    f_head = flops.lm_head(tokens=tokens, d_model=d, vocab_size=V)
    f_layer = flops.layer(qkv=f_qkv, attention_scores=f_scores, attention_values=f_values, attention_out=f_out,
                          mlp=f_mlp, router=f_router)
    causal_share = flops.window_fraction(seq_len=T, sliding_window=x["sliding_window"],
                                         n_sliding_layers=x["n_sliding_layers"], n_layer=L, causal=True)
    f_scores_causal, f_values_causal = f_scores * causal_share, f_values * causal_share
    f_fwd_causal = flops.forward(n_layer=L, lm_head=f_head, layer=flops.layer(
        qkv=f_qkv, attention_out=f_out, mlp=f_mlp, router=f_router, attention_scores=f_scores_causal,
        attention_values=f_values_causal))
    return dict(qkv=f_qkv, scores=f_scores, values=f_values, out=f_out, mlp_all=f_mlp_all, router_all=f_router_all,
                head=f_head, layer=f_layer, fwd=flops.forward(layer=f_layer, n_layer=L, lm_head=f_head),
                scores_causal=f_scores_causal, values_causal=f_values_causal, fwd_causal=f_fwd_causal)


def _steps(x, s, out) -> None:
    """FLOPs and memory of one micro-batch on one device (tier ``steps``)."""
    L, d, H, K, hd = x["n_layer"], x["d_model"], x["n_head"], x["n_kv_head"], x["head_dim"]
    f, V, E, k = x["d_ff"], x["vocab_size"], x["n_experts"], x["top_k"]
    B = x["batch_size"]
    T = sequence.effective_seq_len(seq_len=x["seq_len"], n_ctx=x["n_ctx"])
    tokens_mb = np.asarray(B, dtype=np.float64) * T
    mla, qk_dim, v_dim = np.asarray(x["mla"]) > 0, x["qk_dim"], x["v_dim"]
    fw = _forward(x, B, T)
    f_qkv, f_scores, f_values, f_out = fw["qkv"], fw["scores"], fw["values"], fw["out"]
    f_mlp_all, f_router_all, f_head, f_layer, f_fwd = fw["mlp_all"], fw["router_all"], fw["head"], fw["layer"], fw["fwd"]
    f_scores_causal, f_values_causal, f_fwd_causal = fw["scores_causal"], fw["values_causal"], fw["fwd_causal"]
    n_compute = s["p_active"] - s["p_lookup"]
    out.update(
        seq_len_ok=sequence.seq_len_ok(seq_len=T, n_ctx=x["n_ctx"], learned_positions=x["learned_positions"]),
        flops_qkv=L * f_qkv, flops_attention_scores=L * f_scores, flops_attention_values=L * f_values,
        flops_attention_out=L * f_out, flops_mlp=f_mlp_all, flops_router=f_router_all, flops_lm_head=f_head,
        flops_forward=f_fwd, flops_backward=flops.backward(forward=f_fwd),
        flops_iteration=flops.iteration(forward=f_fwd),
        flops_iteration_causal=flops.iteration(forward=f_fwd_causal),
        flops_attention_scores_causal=L * f_scores_causal, flops_attention_values_causal=L * f_values_causal,
        flops_forward_causal=f_fwd_causal, flops_backward_causal=flops.backward(forward=f_fwd_causal),
        flops_palm_iteration=tokens_mb * flops.palm_per_token(params=n_compute, n_layer=L, n_head=H, head_dim=qk_dim,
                                                              seq_len=T),
        flops_recompute=flops.recompute(layer=f_layer, attention_scores=f_scores, attention_values=f_values,
                                        n_layer=L, recompute=x["recompute"]),
    )

    p_total = s["p_total"]
    state_bits = np.where(np.isnan(x["optimizer_state_bits"]), x["state_bits"], x["optimizer_state_bits"])
    w = memory.weights(params=p_total, param_bits=x["param_bits"])
    g = memory.gradients(params=p_total, grad_bits=x["grad_bits"])
    o = memory.optimizer(params=p_total, master_bits=x["master_bits"], n_states=x["n_states"], state_bits=state_bits)
    c = memory.weight_copies(params_matmul=s["p_matmul"], copy_bits=x["copy_bits"])
    g1 = memory.first_gradient(vocab_size=V, d_model=d, grad_bits=x["grad_bits"])

    mask_present = np.asarray(x["mask_buffer"]) * (1 - np.asarray(x["flash"]))
    buf = memory.mask_buffers(n_layer=L, n_ctx=x["n_ctx"], present=mask_present)
    a_bytes = np.asarray(x["compute_bits"]) / 8
    r_bytes = np.asarray(x["residual_bits"]) / 8
    s_bytes = np.maximum(x["softmax_bits"], 32 * np.asarray(x["softmax_fp32"])) / 8
    l_bytes = np.maximum(x["loss_bits"], 32 * np.asarray(x["loss_fp32"])) / 8
    flash, drop, mask = x["flash"], x["dropout"], x["dropout_mask_bytes"]
    # SDPA called with fewer K/V heads than query heads and no enable_gqa (Falcon) runs PyTorch's math
    # fallback: the tensors of naive attention, with q, k, v and the softmax upcast to fp32
    sdpa_math = np.asarray(flash) * np.asarray(x["sdpa_math"])
    flash = np.asarray(flash) * (1 - np.asarray(x["sdpa_math"]))
    norm_bytes = np.where(np.asarray(x["norm_fp32"]) > 0, 4.0, r_bytes)  # Gemma's norm saves its output in fp32
    a_norm = activations.norm(d_model=d, rmsnorm=x["rmsnorm"], residual_bytes=norm_bytes)
    a_capped, a_final_cap = activations.softcap(seq_len=T, n_head=H, vocab_size=V, flash=flash, act_bytes=a_bytes,
                                                attn_softcap=x["attn_softcap"], final_softcap=x["final_softcap"])
    a_matrix = activations.attention_matrix(seq_len=T, n_head=H, flash=flash, act_bytes=a_bytes,
                                            softmax_bytes=s_bytes, dropout=drop, dropout_mask_bytes=mask) + a_capped
    a_matrix = a_matrix + activations.sinks(n_head=H, flash=flash, softmax_bytes=s_bytes,
                                            attention_sinks=x["attention_sinks"])
    masks = activations.residual_masks(dropout=drop, residual_dropout=x["residual_dropout"])
    a_win_mask, a_win_kv = activations.window_mask(
        seq_len=T, sliding_window=x["sliding_window"], n_sliding_layers=x["n_sliding_layers"], n_layer=L, n_head=H,
        n_kv_head=K, head_dim=hd, flash=flash, act_bytes=a_bytes, masked_blocks=x["masked_blocks"], batch_size=B)
    a_rep = a_win_mask + activations.layer_replicated(norm=a_norm, d_model=d, act_bytes=a_bytes, residual_masks=masks,
                                                      dropout_mask_bytes=mask) + activations.block_structure(
        norm=a_norm, block_norms=x["block_norms"], parallel_residual=x["parallel_residual"], rmsnorm=x["rmsnorm"],
        d_model=d, act_bytes=a_bytes, residual_bytes=r_bytes)
    a_shard = activations.layer_sharded(
        qkv=np.where(mla, activations.mla_qkv(
            n_head=H, q_lora_rank=x["q_lora_rank"], kv_lora_rank=x["kv_lora_rank"],
            qk_rope_head_dim=x["qk_rope_head_dim"], qk_nope_head_dim=x["qk_nope_head_dim"],
            v_head_dim=x["v_head_dim"], act_bytes=a_bytes),
            activations.qkv(n_head=H, n_kv_head=K, head_dim=hd, flash=flash, act_bytes=a_bytes))
        + activations.qk_norm(n_head=H, n_kv_head=K, head_dim=hd, qk_norm=x["qk_norm"], act_bytes=a_bytes,
                              norm_fp32=x["norm_fp32"])
        + activations.attention_layout(n_head=H, n_kv_head=K, head_dim=hd, flash=flash, act_bytes=a_bytes,
                                       v_view=x["v_view"], out_copy=x["out_copy"], batch_size=B) + a_win_kv
        + activations.sdpa_math_upcast(seq_len=T, n_head=H, n_kv_head=K, head_dim=hd, act_bytes=a_bytes,
                                       softmax_bytes=s_bytes, sdpa_math=sdpa_math, batch_size=B),
        attention_core=activations.attention_core(n_head=H, head_dim=v_dim, flash=flash, act_bytes=a_bytes,
                                                  attention_matrix=a_matrix),
        mlp=activations.mlp_mean(
            dense=activations.mlp(d_model=d, d_ff=f, mlp_saved=x["mlp_saved"], n_experts=1, top_k=1,
                                  act_bytes=a_bytes),
            moe=activations.mlp(d_model=d, d_ff=x["moe_d_ff"], mlp_saved=x["mlp_saved"], n_experts=E, top_k=k,
                                act_bytes=a_bytes, expert_loop=x["expert_loop"])
            + activations.shared_expert(d_model=d, shared_d_ff=x["shared_d_ff"], mlp_saved=x["mlp_saved"],
                                        shared_expert_gate=x["shared_expert_gate"], act_bytes=a_bytes)
            + activations.router_fp32_input(d_model=d, act_bytes=a_bytes, router_fp32=x["router_fp32"]),
            n_layer=L, moe_layers=x["moe_layers"]),
    )
    a_layer = activations.layer_on_gpu(layer_replicated=a_rep, layer_sharded=a_shard)
    a_head = activations.head(norm=a_norm, d_model=d, vocab_size=V, act_bytes=a_bytes, loss_bytes=l_bytes,
                              residual_masks=masks, dropout_mask_bytes=mask) + a_final_cap
    a_seq = activations.per_sequence(seq_len=T, head_dim=x["rotary_dim"], learned_positions=x["learned_positions"],
                                     act_bytes=a_bytes, n_layer=L, mask_compare=mask_present)
    act = activations.total(batch_size=B, seq_len=T, n_layer=L, layer=a_layer, attention_matrix=a_matrix,
                            residual_bytes=r_bytes, d_model=d, head=a_head, per_sequence=a_seq,
                            recompute=x["recompute"])
    s.update(state_bits=state_bits)
    s.update(T=T, w=w, g=g, o=o, c=c, g1=g1, buf=buf, a_matrix=a_matrix, a_head=a_head, a_seq=a_seq, a_rep=a_rep,
             a_shard=a_shard, r_bytes=r_bytes)
    out.update(
        weights_bytes=w, buffers_bytes=buf, weight_copies_bytes=c, gradients_bytes=g, optimizer_bytes=o,
        activation_layer_bytes=tokens_mb * a_layer, activation_bytes=act,
        memory_total_bytes=memory.total(weights=w, buffers=buf, weight_copies=c, gradients=g, optimizer=o,
                                        activations=act),
        memory_peak_bytes=memory.peak(weights=w, buffers=buf, weight_copies=c, gradients=g, optimizer=o,
                                      activations=act, first_gradient=g1, grad_accum=x["grad_accum"]),
        checkpoint_bytes=memory.checkpoint(params=p_total, param_bits=x["param_bits"], master_bits=x["master_bits"],
                                           n_states=x["n_states"], state_bits=state_bits,
                                           step_tensor=x["step_tensor"], tensors=s["n_tensors"], buffers=buf,
                                           buffer_tensors=L * mask_present, record_bytes=CHECKPOINT_RECORD_BYTES,
                                           metadata_bytes=CHECKPOINT_METADATA_BYTES),
    )


def _runs(x, s, out) -> None:
    """Compute and purchase cost of a training run (tier ``runs``)."""
    peak_fs = np.asarray(x["peak_flops_per_s"], dtype=np.float64)
    n, D = x["n_gpus"], x["tokens"]
    p_active = s["p_active"]
    c_model = training.model_flops(params=p_active, tokens=D)
    c_hw = training.hardware_flops(params=p_active, tokens=D, recompute=x["recompute"], n_layer=x["n_layer"],
                                   n_head=x["n_head"], head_dim=x["head_dim"], seq_len=s["T"])
    f_token, a_token = _forward_per_token(x, s["T"])
    c_exec = training.executed_flops(tokens=D, forward_per_token=f_token, attention_per_token=a_token,
                                     recompute=x["recompute"])
    s.update(peak_fs=peak_fs, c_model=c_model, c_hw=c_hw, c_exec=c_exec)
    out.update(peak_flops_per_s=peak_fs, train_flops=c_model, train_hardware_flops=c_hw, train_executed_flops=c_exec,
               purchase_usd=training.purchase_cost_usd(n_gpus=n, price_usd=x["gpu_price_usd"]),
               train_flops_full_recompute=training.hardware_flops(
                   params=p_active, tokens=D, recompute=2, n_layer=x["n_layer"], n_head=x["n_head"],
                   head_dim=x["head_dim"], seq_len=s["T"]))


def _forward_per_token(x, T):
    """Forward FLOPs per token of one sequence of ``T`` tokens, attention causal, and its attention core
    [FLOP/token]: :func:`_forward` at ``B = 1`` over ``T``."""
    fw = _forward(x, 1, T)
    t = np.asarray(T, dtype=np.float64)
    return fw["fwd_causal"] / t, np.asarray(x["n_layer"], dtype=np.float64) * (fw["scores_causal"]
                                                                                 + fw["values_causal"]) / t


def _placements(x, s, out) -> None:
    """A step on one GPU type: measured MFU/HFU, states' share of memory (tier ``placements``)."""
    measured = training.mfu(flops_per_iteration=out["flops_iteration"], grad_accum=x["grad_accum"],
                            iter_time_s=x["iter_time_s"], peak_flops_per_s=s["peak_fs"])
    out.update(
        mfu=measured,
        hfu=training.hfu(mfu=measured, model_flops=out["flops_iteration"],
                         hardware_flops=out["flops_iteration"] + out["flops_recompute"]),
        states_share=memory.share(part=s["w"] + s["o"], memory_bytes=out["gpu_memory_bytes"]),
    )


def _shards(x, s, out) -> None:
    """Model states per GPU under a layout (tier ``shards``)."""
    tp, pp, zero = x["tp"], x["pp"], x["zero_stage"]
    dp = parallel.data_parallel(n_gpus=x["n_gpus"], tp=tp, pp=pp)
    p_gpu = parallel.params_per_gpu(
        layer=s["p_layer"], n_layer=x["n_layer"], tp=tp, pp=pp, token_embedding=s["p_tok"],
        position_embedding=s["p_pos"], norm=s["p_norm"], lm_head=s["p_head"], tied_embeddings=x["tied_embeddings"],
        layer_replicated_params=parallel.layer_replicated_params(norm=s["p_block_norms"] / 2, d_model=x["d_model"],
                                                                 out_bias=x["out_bias"], mlp_bias=x["mlp_bias"],
                                                                 n_experts=x["n_experts"]),
    )
    share = parallel.gpu_share(params_per_gpu=p_gpu, params_total=s["p_total"])
    w_rank, g_rank, o_rank = s["w"] * share, s["g"] * share, s["o"] * share
    s.update(dp=dp, share=share, p_gpu=p_gpu, w_rank=w_rank, g_rank=g_rank, o_rank=o_rank,
             c_rank=s["c"] * share * (np.asarray(zero) < 3),
             w_gpu=parallel.zero_shard(value=w_rank, dp=dp, zero_stage=zero, stage=3),
             g_gpu=parallel.zero_shard(value=g_rank, dp=dp, zero_stage=zero, stage=2),
             o_gpu=parallel.zero_shard(value=o_rank, dp=dp, zero_stage=zero, stage=1))
    out.update(data_parallel=dp, weights_per_gpu_bytes=s["w_gpu"], gradients_per_gpu_bytes=s["g_gpu"],
               optimizer_per_gpu_bytes=s["o_gpu"])


def _points(x, s, out) -> None:
    """Activations and peak per GPU, fit, largest micro-batch and fewest GPUs (tier ``points``)."""
    tp, pp, zero, sp = x["tp"], x["pp"], x["zero_stage"], x["sequence_parallel"]
    B = x["batch_size"]
    # micro-batches per step: from the global batch when given (Narayanan et al. 2021, sec. 2.2)
    m = pipeline.micro_batches(global_batch_size=x["global_batch_size"], dp=s["dp"], batch_size=B,
                               grad_accum=x["grad_accum"])
    layout_ok = (pipeline.batch_divides(global_batch_size=x["global_batch_size"], dp=s["dp"], batch_size=B)
                 & pipeline.interleave_divides(n_layer=x["n_layer"], pp=pp, interleave=x["interleave"]))
    grad_accum = x["grad_accum"]
    if np.any(np.asarray(x["global_batch_size"]) > 0):  # else m == grad_accum: keep its small shape
        grad_accum = np.where(np.isfinite(m), np.maximum(np.floor(m), 1.0), np.asarray(grad_accum, dtype=np.float64))
    s.update(m=m, layout_ok=layout_ok)
    mem = out["gpu_memory_bytes"]
    w_gpu, g_gpu, o_gpu, c_rank = s["w_gpu"], s["g_gpu"], s["o_gpu"], s["c_rank"]
    gather = parallel.zero3_gather(layer=s["p_layer"], tp=tp, zero_stage=zero, param_bits=x["param_bits"])
    act_gpu = activations.total(
        batch_size=B, seq_len=s["T"], n_layer=x["n_layer"], attention_matrix=s["a_matrix"], head=s["a_head"],
        per_sequence=s["a_seq"], residual_bytes=s["r_bytes"], d_model=x["d_model"], recompute=x["recompute"],
        tp=tp, pp=pp, sequence_parallel=sp, grad_accum=grad_accum, interleave=x["interleave"],
        layer=activations.layer_on_gpu(layer_replicated=s["a_rep"], layer_sharded=s["a_shard"], tp=tp,
                                       sequence_parallel=sp),
    )
    g1_gpu = s["g1"] / np.asarray(tp, dtype=np.float64)
    buf_gpu = s["buf"] * s["share"]
    peak_gpu = memory.peak(weights=w_gpu, buffers=buf_gpu, weight_copies=c_rank, gradients=g_gpu, optimizer=o_gpu,
                           activations=act_gpu + gather, first_gradient=g1_gpu, grad_accum=grad_accum)
    slack, overhead = x["allocator_slack"], x["overhead_bytes"]
    required = memory.required(peak=peak_gpu, allocator_slack=slack, overhead_bytes=overhead)
    usable = memory.usable(memory_bytes=mem, allocator_slack=slack, overhead_bytes=overhead)
    buildable = np.isfinite(s["peak_fs"]) & out["heads_divide"] & out["seq_len_ok"]
    valid = buildable & np.isfinite(s["dp"])

    # largest micro-batch: activations are affine in B, the rest does not depend on it
    accumulating = np.asarray(grad_accum) > 1
    max_mb = parallel.max_micro_batch(
        usable=usable, per_sample=(act_gpu - s["a_seq"]) / np.asarray(B, dtype=np.float64), valid=valid,
        fixed=w_gpu + buf_gpu + o_gpu + c_rank + gather + s["a_seq"] + np.where(accumulating, g_gpu, g1_gpu),
        room_ok=accumulating | (w_gpu + buf_gpu + o_gpu + g_gpu <= usable))

    # fewest GPUs: smallest dp whose ZeRO shards fit, at this tp, pp and micro-batch
    w_rank, g_rank, o_rank = s["w_rank"], s["g_rank"], s["o_rank"]
    s1, s2, s3 = (np.asarray(zero) >= k for k in (1, 2, 3))
    kept = w_rank * ~s3 + o_rank * ~s1 + buf_gpu
    sharded = w_rank * s3 + o_rank * s1
    live = c_rank + act_gpu + gather
    dp_backward = parallel.min_data_parallel(
        fixed=kept + live + np.where(accumulating, g_rank * ~s2, g1_gpu),
        sharded=sharded + np.where(accumulating, g_rank * s2, 0.0), budget=usable)
    dp_step = parallel.min_data_parallel(fixed=kept + g_rank * ~s2, sharded=sharded + g_rank * s2, budget=usable)
    min_dp = np.maximum(dp_backward, np.where(accumulating, 1.0, dp_step))
    out.update(
        activations_per_gpu_bytes=act_gpu, memory_per_gpu_bytes=peak_gpu, memory_required_bytes=required,
        memory_share=memory.share(part=required, memory_bytes=mem),
        fits=valid & layout_ok & memory.fits(required=required, memory_bytes=mem),
        max_micro_batch=max_mb, min_gpus=parallel.min_gpus(tp=tp, pp=pp, min_dp=min_dp, buildable=buildable),
    )


def _serving(x, s, out) -> None:
    """Serving a model on one GPU type: memory, KV capacity, latency, throughput, cost (tier ``servings``).

    Every output is NaN (flags false) when ``mode = train``; times, rates and
    costs are NaN at invalid input (context longer than the model, a weight
    format the GPU cannot run, concurrency 0, tp that cannot split the heads).
    """
    serve = np.asarray(x["serve"]) == 1
    if not serve.any():  # a training-only box: every serving output is NaN (flags false), at the mode's shape
        out.update({o.name: np.full(serve.shape, False) if o.dtype == "bool" else np.full(serve.shape, np.nan)
                    for o in OUTPUTS if o.tier == "servings" and o.stored})
        return
    with np.errstate(divide="ignore", invalid="ignore"):  # concurrency 0: masked to NaN below
        _serving_point(x, s, out)


def _serving_point(x, s, out) -> None:
    serve = np.asarray(x["serve"]) == 1
    L, d, H, K, hd = x["n_layer"], x["d_model"], x["n_head"], x["n_kv_head"], x["head_dim"]
    f, V, E, k, gated = x["d_ff"], x["vocab_size"], x["n_experts"], x["top_k"], x["gated_mlp"]
    tp, pp = x["tp"], x["pp"]
    c, n_in, n_out, bs = x["concurrency"], x["context_len"], x["output_len"], x["block_size"]
    act = SERVING_ACT_BITS
    window = dict(sliding_window=x["sliding_window"], n_sliding_layers=x["n_sliding_layers"])
    fabric = dict(scaleup_bytes_per_s=x["scaleup_bytes_per_s"], scaleup_latency_s=x["scaleup_latency_s"],
                  scaleout_bytes_per_s=x["scaleout_bytes_per_s"], scaleout_latency_s=x["scaleout_latency_s"])
    tp_local = comm.local_ranks(n=tp, stride=1, domain=x["scaleup_size"])

    def tp_comm(tokens):
        one = comm.hierarchical_time_s(bytes=np.asarray(tokens, dtype=np.float64) * d * act / 8, n=tp, local=tp_local,
                                       kind=2, **fabric)
        return serving.tp_comm_time_s(all_reduce_s=one, n_layer=L)

    # experts are moe_d_ff wide where the model says so (Qwen-MoE, DeepSeek): every block taken as a MoE block
    # with its shared expert; multi-head latent attention's weights are the exact count, split tp ways
    f = _expert_d_ff(x)
    shape = dict(d_model=d, n_head=H, n_kv_head=K, head_dim=hd, d_ff=f, gated_mlp=gated)

    # memory (vLLM's accounting)
    w_bits = serving.quantized_bits(bits=x["weight_bits"], group_size=x["weight_group_size"],
                                    scale_bits=x["weight_scale_bits"], zero_bits=x["weight_zero_bits"])
    t_f = np.asarray(tp, dtype=np.float64)
    attn = np.where(np.asarray(x["mla"]) > 0, s["p_attn"] / t_f,
                    serving.layer_linear_params_per_rank(**shape, n_experts=0, tp=tp))
    moe_share = np.asarray(x["moe_layers"], dtype=np.float64) / np.asarray(L, dtype=np.float64)
    width = (2 + np.asarray(gated)) * np.asarray(d, dtype=np.float64)  # elements per unit of MLP width
    mlp = width * ((1 - moe_share) * np.asarray(x["d_ff"])
                   + moe_share * (np.asarray(E) * f + np.asarray(x["shared_d_ff"]))) / t_f
    mlp = np.where(np.asarray(E) > 1, mlp, width * np.asarray(x["d_ff"]) / t_f)
    linear = attn + mlp  # per block, averaged over dense and MoE blocks
    dense = serving.layer_dense_params_per_rank(**shape, n_experts=E, qkv_bias=x["qkv_bias"], out_bias=x["out_bias"],
                                                mlp_bias=x["mlp_bias"], norm_bias=x["norm_bias"], tp=tp)
    weights = serving.weights_per_gpu_bytes(
        linear_params=linear, dense_params=dense, n_layer=L, pp=pp, token_embedding=s["p_tok"],
        position_embedding=s["p_pos"], final_norm=s["p_norm"], lm_head=s["p_head"],
        tied_embeddings=x["tied_embeddings"], tp=tp, weight_bits=w_bits)
    kv_layer = serving.kv_cache_bytes_per_token_layer(n_kv_head=K, head_dim=hd, kv_bits=x["kv_bits"], tp=tp,
                                                      kv_lora_rank=x["kv_lora_rank"],
                                                      qk_rope_head_dim=x["qk_rope_head_dim"])
    kv_token = serving.kv_cache_bytes_per_token(per_token_layer=kv_layer, n_layer=L, pp=pp)
    seq_bytes = serving.kv_cache_bytes_per_sequence(tokens=np.asarray(n_in) + n_out, per_token_layer=kv_layer,
                                                    n_layer=L, pp=pp, block_size=bs, **window)
    chunk = np.minimum(np.asarray(c, dtype=np.float64) * n_in, PREFILL_CHUNK_TOKENS)
    workspace = serving.prefill_workspace_bytes(tokens=chunk, **shape, tp=tp, act_bits=act, vocab_size=V,
                                                logits_rows=np.minimum(c, SAMPLER_ROWS))
    budget = serving.kv_cache_budget_bytes(memory_bytes=out["gpu_memory_bytes"],
                                           gpu_memory_utilization=x["gpu_memory_utilization"], weights=weights,
                                           workspace=workspace, overhead_bytes=x["overhead_bytes"])
    needed = weights + workspace + x["overhead_bytes"] + np.asarray(c) * seq_bytes

    # time: prefill of the batch, then decode steps at the mean context; pipeline stages run one after another.
    # Every GEMM through the training model's roofline with its one size curve (compute.gemm_time_s); every
    # kernel of the pass takes at least kernel_s (serving.kernel_floor_time_s)
    rate, bw, eta, k_s = x["serving_matmul_flops_per_s"], x["hbm_bytes_per_s"], x["hbm_efficiency"], x["kernel_s"]
    t_pp = np.asarray(pp, dtype=np.float64)
    layers = np.ceil(np.asarray(L, dtype=np.float64) / t_pp) * t_pp  # every stage, one after another

    def gemms(tokens, bits, absorbed):
        """One block's GEMMs on one rank [s]: floored, roofline only, compute-only and memory-only parts, count."""
        total = roofline = compute_part = memory_part = n_gemms = 0.0
        for rows, cols, inner, count in serving.layer_gemm_shapes(tokens=tokens, **shape, n_experts=E, top_k=k,
                                                                  tp=tp, **_mla_widths(x), absorbed=absorbed):
            fl = 2 * rows * cols * inner
            nb = serving.linear_gemm_bytes(rows=rows, cols=cols, inner=inner, weight_bits=bits, act_bits=act)
            one = compute.gemm_time_s(flops=fl, bytes=nb, matmul_flops_per_s=rate, hbm_bytes_per_s=bw,
                                      hbm_efficiency=serving.hbm_size_efficiency(nbytes=nb, large_efficiency=eta))
            total = total + serving.kernel_floor_time_s(time_s=one, kernel_s=k_s, count=count)
            roofline = roofline + count * one
            compute_part = compute_part + compute.gemm_time_s(flops=fl, bytes=0.0, matmul_flops_per_s=rate,
                                                              hbm_bytes_per_s=bw, count=count)
            memory_part = memory_part + count * compute.memory_time_s(bytes=nb, hbm_bytes_per_s=bw,
                                                                       hbm_efficiency=eta)
            n_gemms = n_gemms + count
        return total, roofline, compute_part, memory_part, n_gemms

    def hbm(nb):
        """Memory-bound kernel time [s], at the achievable bandwidth for its size (serving.hbm_size_efficiency)."""
        return compute.memory_time_s(bytes=nb, hbm_bytes_per_s=bw,
                                     hbm_efficiency=serving.hbm_size_efficiency(nbytes=nb, large_efficiency=eta))

    def elementwise(tokens):
        """One block's element-wise kernels on one rank [s], each floored (FasterTransformer's four)."""
        total = 0.0
        for nb in serving.elementwise_kernel_bytes(tokens=tokens, d_model=d, d_ff=f * np.asarray(k), gated_mlp=gated,
                                                   tp=tp, act_bits=act):
            total = total + serving.kernel_floor_time_s(time_s=hbm(nb), kernel_s=k_s)
        return total

    def lm_head(rows):
        fl = 2 * rows * np.asarray(V, dtype=np.float64) / tp * d
        nb = serving.linear_gemm_bytes(rows=rows, cols=np.asarray(V) / tp, inner=d, weight_bits=16, act_bits=act)
        return compute.gemm_time_s(flops=fl, bytes=nb, matmul_flops_per_s=rate, hbm_bytes_per_s=bw,
                                   hbm_efficiency=serving.hbm_size_efficiency(nbytes=nb, large_efficiency=eta))

    def pass_kernels(rows):
        """The embedding lookup and the final norm (one row of d each per token) and the LM head, floored [s]."""
        ends = hbm(rows * d * act / 8 * 2)
        return 2 * serving.kernel_floor_time_s(time_s=ends, kernel_s=k_s) + serving.kernel_floor_time_s(
            time_s=lm_head(rows), kernel_s=k_s)

    c_f = np.asarray(c, dtype=np.float64)
    prefill_tokens = c_f * n_in
    # attention's mean width of Q.K and P.V per head; MLA prefills per head (qk, v) and decodes absorbed, as
    # multi-query attention over the latent (r_kv + rope, r_kv) (serving.layer_gemm_shapes)
    mla_ = np.asarray(x["mla"]) > 0
    hd_prefill = (np.asarray(x["qk_dim"], dtype=np.float64) + x["v_dim"]) / 2
    hd_decode = np.where(mla_, np.asarray(x["kv_lora_rank"], dtype=np.float64) + np.asarray(x["qk_rope_head_dim"]) / 2,
                         hd)
    # the keys and values the prefill attends, per layer and rank (MLA: up-projected per head, 16-bit)
    kv_prefill = prefill_tokens * np.where(mla_, serving.kv_cache_bytes_per_token_layer(
        n_kv_head=H, head_dim=hd_prefill, kv_bits=act, tp=tp), kv_layer)
    attn_prefill_bytes = serving.attention_bytes_per_layer(tokens=prefill_tokens, n_head=H, head_dim=hd_prefill,
                                                           tp=tp, act_bits=act, kv_read_bytes=kv_prefill)
    attn_prefill = compute.gemm_time_s(
        flops=serving.attention_flops_per_layer(tokens=prefill_tokens, n_head=H, head_dim=hd_prefill,
                                                attended=(np.asarray(n_in) + 1) / 2, tp=tp),
        bytes=attn_prefill_bytes, matmul_flops_per_s=rate, hbm_bytes_per_s=bw,
        hbm_efficiency=serving.hbm_size_efficiency(nbytes=attn_prefill_bytes, large_efficiency=eta))
    p_total, p_roofline = gemms(prefill_tokens, w_bits, 0)[:2]
    comm_prefill = tp_comm(prefill_tokens)
    ttft = (layers * (p_total + serving.kernel_floor_time_s(time_s=attn_prefill, kernel_s=k_s)
                      + elementwise(prefill_tokens)) + pass_kernels(c_f) + comm_prefill)
    ttft_roofline = layers * (p_roofline + attn_prefill) + lm_head(c_f) + comm_prefill
    mean_ctx = np.asarray(n_in) + (np.asarray(n_out) + 1) / 2
    kv_read = c_f * serving.kv_cache_bytes_per_sequence(tokens=mean_ctx, per_token_layer=kv_layer, n_layer=L,
                                                        pp=pp, **window) * t_pp  # every layer of every stage
    attn_decode_bytes = serving.attention_bytes_per_layer(tokens=layers * c_f, n_head=H, head_dim=hd_decode, tp=tp,
                                                          act_bits=act, kv_read_bytes=kv_read)
    attn_decode = serving.roofline_time_s(
        flops=layers * serving.attention_flops_per_layer(tokens=c_f, n_head=H, head_dim=hd_decode, attended=mean_ctx,
                                                         tp=tp),
        nbytes=attn_decode_bytes, matmul_flops_per_s=rate, hbm_bytes_per_s=bw,
        hbm_efficiency=serving.hbm_size_efficiency(nbytes=attn_decode_bytes / layers, large_efficiency=eta))
    g_total, g_roofline, g_compute, g_memory, n_gemms = gemms(c_f, w_bits, 1)
    comm_decode = tp_comm(c_f)
    tpot = (layers * (g_total + serving.kernel_floor_time_s(time_s=attn_decode / layers, kernel_s=k_s)
                      + elementwise(c_f)) + pass_kernels(c_f) + comm_decode)
    tpot_roofline = layers * g_roofline + attn_decode + lm_head(c_f) + comm_decode
    n_kernels = serving.decode_kernels(layers=layers / t_pp, gemms_per_layer=n_gemms)
    memory_bound = g_memory >= g_compute
    n_gpus = np.asarray(tp) * t_pp
    tput = serving.output_tokens_per_s(concurrency=c, output_len=n_out, ttft_s=ttft, tpot_s=tpot)
    price = x["gpu_cloud_usd_per_hour"]
    usd_in = serving.usd_per_million_tokens(usd_per_gpu_hour=price, n_gpus=n_gpus, seconds=ttft,
                                            tokens=prefill_tokens)
    usd_out = serving.usd_per_million_tokens(usd_per_gpu_hour=price, n_gpus=n_gpus, seconds=np.asarray(n_out) * tpot,
                                             tokens=np.asarray(c, dtype=np.float64) * n_out)

    # flags and masks
    context_ok = serve & (np.asarray(n_in) + n_out <= np.asarray(x["n_ctx"]))
    dtype_ok = serve & np.isfinite(x["serving_matmul_flops_per_s"])
    valid = (context_ok & dtype_ok & (np.asarray(c) >= 1) & out["heads_divide"]
             & serving.tp_divides_heads(n_head=H, n_kv_head=K, tp=tp) & np.isfinite(x["hbm_bytes_per_s"]))
    fits = valid & (needed <= np.asarray(out["gpu_memory_bytes"]) * x["gpu_memory_utilization"])

    def served(value):
        return np.where(serve, value, np.nan)

    def timed(value):
        return np.where(valid, value, np.nan)

    out.update(
        context_fits_model=context_ok, weight_dtype_supported=dtype_ok,
        serving_weights_per_gpu_bytes=served(weights), kv_cache_bytes_per_token=served(kv_token),
        kv_cache_bytes_per_sequence=served(seq_bytes), serving_workspace_bytes=served(workspace),
        kv_cache_budget_bytes=served(budget),
        kv_cache_tokens=served(serving.kv_cache_tokens(budget_bytes=budget, bytes_per_token=kv_token,
                                                       block_size=bs)),
        max_concurrency=served(serving.max_concurrency(budget_bytes=budget, sequence_bytes=seq_bytes)),
        serving_memory_per_gpu_bytes=served(needed), ttft_s=timed(ttft), tpot_s=timed(tpot),
        ttft_overhead_s=timed(ttft - ttft_roofline), tpot_overhead_s=timed(tpot - tpot_roofline),
        decode_kernels=timed(n_kernels),
        decode_memory_bound=valid & memory_bound, output_tokens_per_s_per_replica=timed(tput),
        output_tokens_per_s_per_gpu=timed(tput / n_gpus), requests_per_s_per_replica=timed(tput / n_out),
        usd_per_million_input_tokens=timed(usd_in), usd_per_million_output_tokens=timed(usd_out),
        serving_fits=fits,
    )


def _times(x, s, out) -> None:
    """Predicted step time and its parts, throughput, and the run's time, cost and energy (tier ``points``).

    The busiest pipeline stage (``ceil(L/pp)`` blocks plus the LM head) runs
    ``m`` micro-batches; each is its GEMMs (roofline with the size curve),
    its memory-bound ops, its tensor-parallel collectives and its pipeline
    sends. Add the bubble, the exposed data-parallel / ZeRO traffic and the
    optimizer step. See README, "Step time".
    """
    L, d, H, hd = x["n_layer"], x["d_model"], x["n_head"], x["head_dim"]
    B, T = x["batch_size"], s["T"]
    tp, pp, v, zero, rc = x["tp"], x["pp"], x["interleave"], x["zero_stage"], np.asarray(x["recompute"])
    flash = np.asarray(x["flash"])
    a = np.asarray(x["compute_bits"], dtype=np.float64) / 8
    sm = np.maximum(x["softmax_bits"], 32 * np.asarray(x["softmax_fp32"])) / 8
    gpu = dict(matmul_flops_per_s=x["matmul_flops_per_s"], hbm_bytes_per_s=x["hbm_bytes_per_s"],
               hbm_efficiency=x["hbm_efficiency"])
    tokens = np.asarray(B, dtype=np.float64) * T

    def hbm(n_bytes):
        return compute.memory_time_s(bytes=n_bytes, hbm_bytes_per_s=gpu["hbm_bytes_per_s"],
                                     hbm_efficiency=gpu["hbm_efficiency"])

    # one block, one micro-batch, one GPU
    # multi-head latent attention: its own projections replace the per-head QKV and output GEMMs (no heads there)
    mla = np.asarray(x["mla"]) > 0
    linear = step.block_linear_time_s(tokens=tokens, d_model=d, n_head=np.where(mla, 0, H),
                                      n_kv_head=np.where(mla, 0, x["n_kv_head"]), head_dim=hd,
                                      d_ff=_expert_d_ff(x), gated_mlp=x["gated_mlp"], n_experts=x["n_experts"],
                                      top_k=x["top_k"], tp=tp, act_bytes=a, **gpu) + mla * step.mla_linear_time_s(
        tokens=tokens, d_model=d, n_head=H, **_mla_widths(x), tp=tp, act_bytes=a, **gpu)
    # the attention core at the recipe's attention peak (mixed-fp8: Transformer Engine keeps it in bf16)
    kernel = step.attention_kernel_flops_per_s(generation=x["flash_generation"],
                                               peak_flops_per_s=x["attention_peak_flops_per_s"],
                                               flash1_fraction=x["flash1_fraction"],
                                               flash2_fraction=x["flash2_fraction"],
                                               flash3_fraction=x["flash3_fraction"])
    attn_fwd = step.attention_core_time_s(batch_size=B, seq_len=T, n_head=H, head_dim=x["qk_dim"],
                                          v_head_dim=x["v_dim"], tp=tp, act_bytes=a, flash=flash,
                                          kernel_flops_per_s=kernel,
                                          **{**gpu, "matmul_flops_per_s": x["attention_matmul_flops_per_s"]})
    attn_bwd = step.attention_core_backward_time_s(forward_time_s=attn_fwd, flash=flash)
    elementwise = dict(d_model=d, d_ff=_expert_d_ff(x) * np.asarray(x["top_k"]), gated_mlp=x["gated_mlp"], act_bytes=a,
                       residual_bytes=s["r_bytes"], tp=tp, sequence_parallel=x["sequence_parallel"],
                       softmax_bytes=sm, flash=flash, dropout=x["dropout"],
                       attention_elements=np.asarray(B, dtype=np.float64) * H * T * T)
    mem_fwd = hbm(compute.layer_elementwise_bytes(tokens=tokens, **elementwise))
    mem_attn = hbm(compute.layer_elementwise_bytes(tokens=0.0, **elementwise))
    fwd = step.block_forward_time_s(linear_s=linear, attention_s=attn_fwd, memory_s=mem_fwd)
    bwd = step.block_backward_time_s(linear_s=linear, attention_backward_s=attn_bwd, memory_s=mem_fwd)
    redo = step.block_recompute_time_s(recompute=rc, forward_s=fwd, attention_s=attn_fwd, attention_memory_s=mem_attn)
    head = step.lm_head_time_s(tokens=tokens, vocab_size=x["vocab_size"], d_model=d, tp=tp, act_bytes=a, **gpu)
    stage_layers = step.stage_layers(n_layer=L, pp=pp)
    compute_mb = step.stage_compute_time_s(stage_layers=stage_layers, forward_s=fwd, backward_s=bwd,
                                           recompute_s=redo, lm_head_s=head)

    fabric = dict(scaleup_bytes_per_s=x["scaleup_bytes_per_s"], scaleup_latency_s=x["scaleup_latency_s"],
                  scaleout_bytes_per_s=x["scaleout_bytes_per_s"], scaleout_latency_s=x["scaleout_latency_s"])
    domain = x["scaleup_size"]
    tp_one = comm.hierarchical_time_s(bytes=tokens * d * a, n=tp, kind=2,
                                      local=comm.local_ranks(n=tp, stride=1, domain=domain), **fabric)
    tp_mb = step.stage_tp_comm_time_s(stage_layers=stage_layers, recompute=rc, collective_s=tp_one)
    send = step.pipeline_send_time_s(bytes=tokens * d * a / np.asarray(tp, dtype=np.float64), tp=tp, pp=pp,
                                     scaleup_size=domain, **fabric)
    pp_mb = step.stage_pp_comm_time_s(pp=pp, interleave=v, send_s=send)

    # data parallel: per bucket (one block's share), hierarchical over dp ranks tp*pp apart
    dp, m = s["dp"], s["m"]
    local = comm.local_ranks(n=dp, stride=np.asarray(tp) * pp, domain=domain)
    grads = s["p_gpu"] * np.asarray(x["grad_bits"]) / 8
    weights = s["p_gpu"] * np.asarray(x["param_bits"]) / 8

    def dp_time(n_bytes, kind):
        return step.bucketed_collective_time_s(bytes=n_bytes, buckets=stage_layers, n=dp, local=local, kind=kind,
                                               **fabric)

    z = np.asarray(zero)
    grad_scatter, weight_gather = dp_time(grads, 1), dp_time(weights, 1)
    once = step.dp_comm_once_time_s(zero_stage=z, grad_all_reduce_s=dp_time(grads, 2),
                                    grad_reduce_scatter_s=grad_scatter, weight_all_gather_s=weight_gather)
    per_mb = step.zero3_comm_per_micro_batch_s(weight_all_gather_s=weight_gather, grad_reduce_scatter_s=grad_scatter)
    state_params = s["p_gpu"] / np.where(z >= 1, dp, 1.0)
    optimizer = hbm(compute.optimizer_bytes(params=state_params, param_bits=x["param_bits"], grad_bits=x["grad_bits"],
                                            master_bits=x["master_bits"], n_states=x["n_states"],
                                            state_bits=s["state_bits"], fused=x["optimizer_fused"]))

    # Compose at the smallest shapes first: every array below that spans the whole box costs one pass over it.
    # ``nan`` is 0 where the layout is buildable and NaN where it is not (flagged points get NaN times).
    nan = np.where(s["layout_ok"], 0.0, np.nan)
    m_ok = m + nan
    t_mb = compute_mb + tp_mb + pp_mb
    lag = pipeline.bubble_micro_batches(pp=pp, interleave=v)
    # ZeRO-3 traffic hides behind each micro-batch's compute, the gradient reduction behind the last
    # micro-batch's backward; without overlap all of it is exposed
    three = z == 3
    hidden = step.dp_hidden_time_s(zero_stage=z, stage_compute_s=compute_mb, stage_layers=stage_layers,
                                   backward_s=bwd, recompute_s=redo, overlap=x["overlap_grad_reduce"])
    comm_dp, mult = np.where(three, per_mb, once), np.where(three, m_ok, 1.0 + nan)
    opt_s = optimizer + nan
    dp_s = step.exposed_time_s(comm_s=comm_dp, hidden_s=hidden, repeats=mult)
    step_s = step.step_time_s(micro_batches=m_ok, bubble_micro_batches=lag, micro_batch_time_s=t_mb,
                              dp_exposed_s=dp_s, optimizer_s=opt_s)
    inv = step.steps_per_s(step_time_s=step_s)

    n = x["n_gpus"]
    sequences_per_gpu = step.sequences_per_gpu(micro_batches=m, dp=dp, batch_size=B, n_gpus=n)
    peak = s["peak_fs"]
    per_gpu = step.micro_batches_per_gpu_peak(micro_batches=m, dp=dp, n_gpus=n, peak_flops_per_s=peak)
    assumed = np.asarray(x["assumed_mfu"], dtype=np.float64)
    given = np.isfinite(assumed)
    mfu_pred = step.predicted_utilisation(flops_per_micro_batch=out["flops_iteration"], per_gpu_peak=per_gpu,
                                          steps_per_s=inv)
    hfu_pred = step.predicted_utilisation(flops_per_micro_batch=out["flops_iteration"] + out["flops_recompute"],
                                          per_gpu_peak=per_gpu, steps_per_s=inv)
    if given.all():  # the override everywhere: time, cost and energy do not depend on the layout
        t_train = training.time_s(flops=s["c_exec"], peak_flops_per_s=peak, mfu=assumed, n_gpus=x["n_gpus"])
        train_mfu = training.mfu_at_hfu(hfu=assumed, model_flops=s["c_model"], hardware_flops=s["c_exec"])
        train_hfu = assumed
    else:
        t_train = step.train_time_s(tokens=x["tokens"], sequences_per_gpu=sequences_per_gpu, n_gpus=n, seq_len=T,
                                    step_time_s=step_s)
        train_mfu, train_hfu = mfu_pred, hfu_pred
        if given.any():
            t_train = np.where(given, training.time_s(flops=s["c_exec"], peak_flops_per_s=peak, mfu=assumed,
                                                      n_gpus=x["n_gpus"]), t_train)
            train_mfu = np.where(given, training.mfu_at_hfu(hfu=assumed, model_flops=s["c_model"],
                                                            hardware_flops=s["c_exec"]), mfu_pred)
            train_hfu = np.where(given, assumed, hfu_pred)
    gpu_s = training.gpu_time_s(time_s=t_train, n_gpus=x["n_gpus"])
    e_j = training.energy_j(tdp_w=x["gpu_tdp_w"], n_gpus=x["n_gpus"], time_s=t_train, pue=x["pue"])
    out.update(
        stage_compute_time_s=compute_mb, stage_tp_comm_time_s=tp_mb, stage_pp_comm_time_s=pp_mb,
        micro_batches=m, batch_divides=pipeline.batch_divides(global_batch_size=x["global_batch_size"], dp=dp,
                                                              batch_size=B),
        interleave_divides=pipeline.interleave_divides(n_layer=L, pp=pp, interleave=v),
        compute_time_s=m_ok * compute_mb, tp_comm_time_s=m_ok * tp_mb, pp_comm_time_s=m_ok * pp_mb,
        pp_bubble_time_s=pipeline.bubble_time_s(pp=pp, interleave=v, micro_batch_time_s=t_mb) + nan,
        dp_comm_exposed_time_s=dp_s, optimizer_time_s=opt_s, step_time_s=step_s,
        pp_bubble_fraction=pipeline.bubble_fraction(pp=pp, micro_batches=m, interleave=v) + nan,
        predicted_mfu=mfu_pred, predicted_hfu=hfu_pred,
        tokens_per_s_per_gpu=step.tokens_per_s_per_gpu(sequences_per_gpu=sequences_per_gpu, seq_len=T, steps_per_s=inv),
        train_time_s=t_train, gpu_time_s=gpu_s,
        cost_usd=training.cloud_cost_usd(gpu_hours=training.gpu_hours(gpu_time_s=gpu_s),
                                         usd_per_gpu_hour=x["gpu_cloud_usd_per_hour"]),
        energy_j=e_j, energy_usd=training.energy_cost_usd(energy_j=e_j, usd_per_kwh=x["usd_per_kwh"]),
        train_mfu=train_mfu, train_hfu=train_hfu,
    )
