"""Serving formulas: KV cache measured on transformers' caches, vLLM's paging, quantized weights, roofline time."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from transformers import AutoConfig, AutoModelForCausalLM
from tsize import api, catalog
from tsize.errors import TsizeError
from tsize.formulas import serving

GIB = 2**30
SMALL = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=4, num_attention_heads=4, vocab_size=100,
             max_position_embeddings=64)

#: transformers model type, extra config, and the formula's keyword arguments for that architecture.
CACHES = {
    "llama-gqa": ("llama", dict(num_key_value_heads=2), dict(n_kv_head=2, head_dim=16)),
    "llama-mqa": ("llama", dict(num_key_value_heads=1), dict(n_kv_head=1, head_dim=16)),
    "mistral-sliding": ("mistral", dict(num_key_value_heads=2, sliding_window=8),
                        dict(n_kv_head=2, head_dim=16, sliding_window=8, n_sliding_layers=4)),
    "gemma2-local-global": ("gemma2", dict(num_key_value_heads=2, head_dim=24, sliding_window=8),
                            dict(n_kv_head=2, head_dim=24, sliding_window=8, n_sliding_layers=2)),
    "deepseek-v2-mla": ("deepseek_v2", dict(kv_lora_rank=32, qk_rope_head_dim=8, qk_nope_head_dim=16, v_head_dim=16,
                                            q_lora_rank=None, n_routed_experts=4, num_experts_per_tok=2,
                                            moe_intermediate_size=32, first_k_dense_replace=4),
                        dict(n_kv_head=4, head_dim=16, kv_lora_rank=32, qk_rope_head_dim=8)),
}


@pytest.mark.parametrize("case", sorted(CACHES))
@pytest.mark.parametrize("tokens", [5, 13])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_kv_cache_equals_transformers_dynamic_cache(case, tokens, dtype):
    """Bytes of the DynamicCache after a forward pass of `tokens` tokens, per sequence."""
    model_type, extra, kw = CACHES[case]
    kw = dict(kw)
    config = AutoConfig.for_model(model_type, **SMALL, **extra)
    model = AutoModelForCausalLM.from_config(config).to(dtype).eval()
    batch = 3
    with torch.no_grad():
        cache = model(torch.randint(0, 100, (batch, tokens)), use_cache=True).past_key_values
    measured = sum(layer.keys.nbytes + layer.values.nbytes for layer in cache.layers) / batch
    window = kw.pop("sliding_window", 0)
    n_sliding = kw.pop("n_sliding_layers", 0)
    per_layer = serving.kv_cache_bytes_per_token_layer(kv_bits=torch.finfo(dtype).bits, **kw)
    # transformers keeps the last sliding_window - 1 tokens between steps (the step's own token makes the window)
    estimate = serving.kv_cache_bytes_per_sequence(tokens=tokens, per_token_layer=per_layer, n_layer=4,
                                                   sliding_window=max(window - 1, 0), n_sliding_layers=n_sliding)
    assert estimate == measured


@pytest.mark.parametrize("n_layer, n_kv_head, gib", [(32, 8, 0.125), (80, 8, 0.3125)])
def test_kv_cache_per_1024_tokens_llama_3_1(n_layer, n_kv_head, gib):
    """Hugging Face, "Llama 3.1 - 405B, 70B & 8B with multilinguality and long context" (2024-07-23), KV cache
    table: 8B 0.125 GiB and 70B 0.3125 GiB per 1,024 tokens in 16 bits."""
    per_layer = serving.kv_cache_bytes_per_token_layer(n_kv_head=n_kv_head, head_dim=128, kv_bits=16)
    assert serving.kv_cache_bytes_per_token(per_token_layer=per_layer, n_layer=n_layer) * 1024 == gib * GIB


@pytest.mark.parametrize("n_kv_head, tp, per_rank", [(8, 1, 8), (8, 2, 4), (8, 8, 1), (8, 16, 1), (1, 4, 1),
                                                     (32, 8, 4)])
def test_kv_heads_replicate_when_tp_exceeds_them(n_kv_head, tp, per_rank):
    """vLLM ModelConfig.get_num_kv_heads: max(1, total_num_kv_heads // tensor_parallel_size)."""
    assert serving.kv_heads_per_rank(n_kv_head=n_kv_head, tp=tp) == per_rank


def test_vllm_paging_hand_worked():
    """vLLM: page_size_bytes = 2 * block_size * num_kv_heads * head_size * dtype_size per layer; a request of n
    tokens takes cdiv(n, block_size) blocks; the cache holds available // page_size blocks.
    Llama-3-8B (32 layers, 8 KV heads of 128), bf16, block 16, 1,000 tokens: cdiv(1000, 16) = 63 blocks of
    16 tokens x 32 layers x 2 x 8 x 128 x 2 bytes = 63 x 2,097,152 bytes."""
    per_layer = serving.kv_cache_bytes_per_token_layer(n_kv_head=8, head_dim=128, kv_bits=16)
    assert 16 * per_layer == 2 * 16 * 8 * 128 * 2
    seq = serving.kv_cache_bytes_per_sequence(tokens=1000, per_token_layer=per_layer, n_layer=32, block_size=16)
    assert seq == 63 * 2_097_152
    # 10 GiB for the cache: floor(10 * 2**30 / 2,097,152) = 5120 blocks = 81,920 tokens; 81 requests of 1,000
    budget = 10 * GIB
    per_token = serving.kv_cache_bytes_per_token(per_token_layer=per_layer, n_layer=32)
    assert serving.kv_cache_tokens(budget_bytes=budget, bytes_per_token=per_token, block_size=16) == 81_920
    assert serving.max_concurrency(budget_bytes=budget, sequence_bytes=seq) == 81  # 5120 // 63
    # tp=4: 2 KV heads per rank, a quarter of the bytes; pp=2: half the layers on the busiest stage
    quarter = serving.kv_cache_bytes_per_token_layer(n_kv_head=8, head_dim=128, kv_bits=16, tp=4)
    assert serving.kv_cache_bytes_per_sequence(tokens=1000, per_token_layer=quarter, n_layer=32, pp=2,
                                               block_size=16) == 63 * 2_097_152 / 8


@pytest.mark.parametrize("bits, group, scale, zero, expected", [(16, 0, 0, 0, 16.0), (8, 0, 16, 0, 8.0),
                                                                (4, 128, 16, 4, 4 + 20 / 128), (4, 32, 16, 4, 4.625)])
def test_quantized_bits(bits, group, scale, zero, expected):
    assert serving.quantized_bits(bits=bits, group_size=group, scale_bits=scale, zero_bits=zero) == expected


def _meta_params(model_type, **extra):
    config = AutoConfig.for_model(model_type, **extra)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name, model_type, config", [
    ("llama-2-7b", "llama", dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                                 num_attention_heads=32, num_key_value_heads=32, vocab_size=32000)),
    ("llama-3-8b", "llama", dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                                 num_attention_heads=32, num_key_value_heads=8, vocab_size=128256)),
    ("mixtral-8x7b", "mixtral", dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                                     num_attention_heads=32, num_key_value_heads=8, vocab_size=32000,
                                     num_local_experts=8, num_experts_per_tok=2)),
])
def test_bf16_weights_at_tp1_equal_pytorch_parameters(name, model_type, config):
    """One GPU, 16-bit: weights = 2 bytes x the parameters PyTorch counts (meta device)."""
    row = api.size(name, mode="serve", gpu="nvidia_h200_sxm", context_len=16, output_len=16)
    assert row["serving_weights_per_gpu_bytes"] == 2 * _meta_params(model_type, **config)


def test_int4_llama_2_7b_matches_awq_checkpoint_layout():
    """Hand-worked AutoAWQ layout (group 128): block linears 6,476,005,376 elements x (4 + (16 + 4)/128) / 8
    = 3,364,487,168 bytes; embeddings and LM head 2 x 32000 x 4096 x 2 = 524,288,000; 65 norms x 4096 x 2 =
    532,480. Total 3,889,307,648 bytes."""
    row = api.size("llama-2-7b", mode="serve", weight_dtype="int4", gpu="nvidia_h200_sxm", context_len=16,
                   output_len=16)
    assert row["serving_weights_per_gpu_bytes"] == 3_889_307_648


def test_tensor_parallel_weights_replicate_kv_projections_and_norms():
    """Llama-3-70B at tp=16 (8 KV heads): each rank keeps one whole KV head, so K and V projections are
    replicated twice over; hand-worked per rank: 80 x (2 x 8192 x 4 x 128 + 2 x 8192 x 1 x 128 +
    3 x 8192 x 28672/16) linear + 80 x 2 x 8192 norm + 128256/16 x 8192 x 2 (embedding, LM head) + 8192."""
    row = api.size("llama-3-70b", mode="serve", tp=16, gpu="nvidia_h200_sxm", context_len=16, output_len=16)
    linear = 80 * (2 * 8192 * 4 * 128 + 2 * 8192 * 1 * 128 + 3 * 8192 * 28672 // 16)
    rest = 80 * 2 * 8192 + 2 * (128256 // 16) * 8192 + 8192
    assert row["serving_weights_per_gpu_bytes"] == 2 * (linear + rest)


def test_weights_per_gpu_never_rise_with_more_gpus():
    rows = [api.size("llama-3-70b", mode="serve", tp=tp, pp=pp, gpu="nvidia_h200_sxm")
            for tp, pp in ((1, 1), (2, 1), (4, 1), (8, 1), (16, 1), (8, 2))]
    w = [r["serving_weights_per_gpu_bytes"] for r in rows]
    assert w[:5] == sorted(w[:5], reverse=True) and w[5] < w[3]


def test_roofline_decode_memory_bound_then_compute_bound():
    """Hand-worked: 14 GB of weights at 2 TB/s x 0.8 = 8.75 ms; 2 x 7e9 FLOP per token at 200 TFLOP/s = 70 us,
    so batch 1 is memory-bound and batch 256 (17.9 ms of compute) compute-bound."""
    hw = dict(matmul_flops_per_s=200e12, hbm_bytes_per_s=2e12, hbm_efficiency=0.8)
    assert serving.roofline_time_s(flops=2 * 7e9, nbytes=14e9, **hw) == pytest.approx(8.75e-3)
    assert serving.roofline_time_s(flops=256 * 2 * 7e9, nbytes=14e9, **hw) == pytest.approx(17.92e-3)


def test_tp_comm_time_hand_worked():
    """Two all-reduces per layer: 40 layers, one all-reduce of 12 us -> 960 us."""
    assert serving.tp_comm_time_s(all_reduce_s=12e-6, n_layer=40) == pytest.approx(80 * 12e-6)


def test_experts_touched():
    """Uniform routing: E(1 - (1 - k/E)^n); 8 experts, top-2: 2 at one token, 8 - 8 x 0.75^4 = 5.47 at four."""
    assert serving.experts_touched(n_experts=8, top_k=2, tokens=1) == pytest.approx(2)
    assert serving.experts_touched(n_experts=8, top_k=2, tokens=4) == pytest.approx(8 - 8 * 0.75**4)
    assert serving.experts_touched(n_experts=1, top_k=1, tokens=64) == 1


def test_cost_and_throughput_hand_worked():
    """8 requests, 100 output tokens, ttft 0.5 s, tpot 20 ms: 800 tokens in 2.5 s = 320 tokens/s; at 4 GPUs x
    $2/h the decode (2 s of 4 GPUs = $0.00444) per 800 tokens = $5.556 per million."""
    assert serving.output_tokens_per_s(concurrency=8, output_len=100, ttft_s=0.5, tpot_s=0.02) == 320
    usd = serving.usd_per_million_tokens(usd_per_gpu_hour=2.0, n_gpus=4, seconds=2.0, tokens=800)
    assert usd == pytest.approx(4 * 2.0 * 2.0 / 3600 / 800 * 1e6)


def test_vectorized_equals_scalar_loop():
    grid = dict(tp=[1, 2, 8], concurrency=[1, 16], context_len=[512, 4096], weight_dtype=["bf16", "int4"])
    from tsize.api import axes_for
    from tsize.grid import Grid
    g = Grid(axes_for("llama-3-70b", mode="serve", gpu="nvidia_h100_sxm", **grid))
    values = g.evaluate()
    for i, tp in enumerate(grid["tp"]):
        for j, c in enumerate(grid["concurrency"]):
            row = api.size("llama-3-70b", mode="serve", gpu="nvidia_h100_sxm", tp=tp, concurrency=c,
                           context_len=4096, weight_dtype="int4")
            for name in ("tpot_s", "ttft_s", "max_concurrency", "serving_weights_per_gpu_bytes"):
                full = np.broadcast_to(values[name], g.shape)
                index = [0] * len(g.shape)
                for axis, value in (("tp", i), ("concurrency", j), ("context_len", 1), ("weight_dtype", 1)):
                    index[g._axis[axis]] = value
                assert float(full[tuple(index)]) == pytest.approx(row[name], rel=1e-12), name


def test_training_mode_leaves_serving_outputs_empty():
    row = api.size("llama-3-8b")
    assert math.isnan(row["ttft_s"]) and math.isnan(row["kv_cache_bytes_per_token"]) and not row["serving_fits"]


@pytest.mark.parametrize("inputs, flag", [
    (dict(context_len=8192, output_len=1), "context_fits_model"),
    (dict(weight_dtype="fp8", gpu="nvidia_a100_80gb_sxm"), "weight_dtype_supported"),
])
def test_bad_serving_input_is_flagged(inputs, flag):
    row = api.size("llama-2-7b", mode="serve", **inputs)
    assert row[flag] is False and not row["serving_fits"] and math.isnan(row["tpot_s"])


def test_concurrency_zero_is_flagged():
    row = api.size("llama-2-7b", mode="serve", concurrency=0)
    assert not row["serving_fits"] and math.isnan(row["output_tokens_per_s_per_gpu"])


def test_does_not_fit_is_a_flag_not_an_error():
    row = api.size("llama-3-70b", mode="serve", gpu="nvidia_h100_sxm", tp=1)
    assert row["serving_fits"] is False and row["max_concurrency"] == 0


def test_serving_check_names_the_bad_input():
    with pytest.raises(TsizeError, match="context_len"):
        api.check_serving(api.size("llama-2-7b", mode="serve", context_len=8192))


def test_capacity_never_falls_with_more_tensor_parallelism():
    """Weights, workspace and KV per rank shrink (or stay, once KV heads replicate) as tp grows."""
    caps = [api.size("llama-3-70b", mode="serve", tp=tp, gpu="nvidia_h200_sxm", context_len=4096)["max_concurrency"]
            for tp in (1, 2, 4, 8, 16)]
    assert caps == sorted(caps) and caps[0] < caps[-1]


def test_fp8_kv_cache_halves_the_bytes_per_token():
    rows = [api.size("llama-3-8b", mode="serve", kv_dtype=k) for k in ("bf16", "fp8")]
    assert rows[1]["kv_cache_bytes_per_token"] * 2 == rows[0]["kv_cache_bytes_per_token"] == 131072


def test_moe_decode_reads_more_experts_at_larger_batch():
    """Mixtral at batch 1 reads 2 of 8 experts per layer: its TPOT is well below a dense read of all weights."""
    one = api.size("mixtral-8x7b", mode="serve", gpu="nvidia_h200_sxm", concurrency=1, context_len=128, output_len=1)
    many = api.size("mixtral-8x7b", mode="serve", gpu="nvidia_h200_sxm", concurrency=64, context_len=128,
                    output_len=1)
    from tsize import catalog

    dense_read = one["serving_weights_per_gpu_bytes"] / (4.8e12 * catalog.rates("nvidia_h200_sxm").hbm_efficiency)
    assert one["tpot_s"] < 0.5 * dense_read and many["tpot_s"] > 0.9 * dense_read


@pytest.mark.parametrize("name, value", [("context_len", 2**31), ("concurrency", -1), ("block_size", 0),
                                         ("gpu_memory_utilization", 1.5), ("weight_dtype", "int3")])
def test_out_of_range_serving_input_is_refused(name, value):
    with pytest.raises(TsizeError, match=name):
        api.size("llama-3-8b", mode="serve", **{name: value})


def test_decode_turns_compute_bound_at_large_batch():
    """Llama-3-8B on H100, 16-token prompts: at batch 1 reading 16 GB dominates; at batch 512 the
    2 x 8e9 x 512 FLOPs (10 ms at 794.5 TFLOP/s) exceed 16 GB at 3.35 TB/s x 0.8 (6 ms)."""
    small, large = (api.size("llama-3-8b", mode="serve", gpu="nvidia_h100_sxm", concurrency=c, context_len=16,
                             output_len=16) for c in (1, 512))
    assert small["decode_memory_bound"] and not large["decode_memory_bound"]


@pytest.mark.parametrize("gpu, weight_dtype, runs", [
    ("nvidia_v100_32gb_sxm2", "bf16", False), ("nvidia_v100_32gb_sxm2", "int4", True),
    ("google_tpu_v5p", "int4", True), ("nvidia_b300_sxm", "int8", False), ("nvidia_a100_80gb_sxm", "int8", True),
    ("nvidia_h100_sxm", "fp8", True), ("nvidia_a100_80gb_sxm", "fp8", False),
])
def test_weight_format_runs_where_the_gpu_has_its_tensor_cores(gpu, weight_dtype, runs):
    """Catalog peaks: V100 has no bf16, B300 no int8, A100 no fp8; int4 W4A16 needs fp16 or bf16."""
    row = api.size("llama-3-8b", mode="serve", gpu=gpu, weight_dtype=weight_dtype)
    assert row["weight_dtype_supported"] is runs


@pytest.mark.parametrize("blocks, kv_gib, max_model_len, concurrency", [(1952, 3.81, 20000, "1.56"),
                                                                       (1478, 2.89, 29000, "0.82")])
def test_vllm_startup_log_llama_3_1_8b(blocks, kv_gib, max_model_len, concurrency):
    """vllm-project/vllm#10517 (RTX 3090, Llama-3.1-8B-Instruct, bf16, block 16): "kv_cache_size=3.81GiB ...
    # GPU blocks: 1952 ... Maximum concurrency for 20000 tokens per request: 1.56x", and 2.89 GiB / 1478 blocks
    / 0.82x at 29000 ("maximum number of tokens that can be stored in KV cache (23648)")."""
    per_layer = serving.kv_cache_bytes_per_token_layer(n_kv_head=8, head_dim=128, kv_bits=16)
    per_token = serving.kv_cache_bytes_per_token(per_token_layer=per_layer, n_layer=32)
    budget = blocks * 16 * per_token
    assert round(budget / GIB, 2) == kv_gib
    assert serving.kv_cache_tokens(budget_bytes=budget, bytes_per_token=per_token, block_size=16) == blocks * 16
    request = serving.kv_cache_bytes_per_sequence(tokens=max_model_len, per_token_layer=per_layer, n_layer=32,
                                                  block_size=16)
    assert f"{budget / request:.2f}" == concurrency


# -- time: GEMMs per rank, attention, hand-worked ------------------------------------------------------------
LLAMA_2_7B = dict(d_model=4096, n_head=32, n_kv_head=32, head_dim=128, d_ff=11008, gated_mlp=1)


def test_llama_2_7b_gemm_shapes_at_tp2():
    """Megatron split of one Llama-2-7B block on 2 ranks: QKV 4096 x 3*4096/2, output 2048 x 4096, gate+up
    4096 x 2*11008/2, down 5504 x 4096. Their weights are half a block's 4*4096^2 + 3*4096*11008 = 202,375,168."""
    shapes = serving.layer_gemm_shapes(tokens=3, **LLAMA_2_7B, n_experts=1, top_k=1, tp=2)
    got = [tuple(float(v) for v in s) for s in shapes]
    assert got[:4] == [(3, 6144, 4096, 1), (3, 4096, 2048, 1), (3, 11008, 4096, 1), (3, 4096, 5504, 1)]
    assert got[4][3] == 0  # no router
    assert sum(c * k * n for _, c, k, n in got) == 202_375_168 / 2


def test_moe_gemms_run_once_per_expert_touched():
    """8 experts, top-2: one token touches 2 experts with 1 row each; 4 tokens touch 8 - 8 x 0.75^4 = 5.46875,
    each with 8 / 5.46875 rows. The router is [tokens x d] @ [d x 8]."""
    kw = dict(d_model=64, n_head=4, n_kv_head=4, head_dim=16, d_ff=128, gated_mlp=1, n_experts=8, top_k=2, tp=1)
    up = serving.layer_gemm_shapes(tokens=1, **kw)[2]
    assert (float(up[0]), float(up[3])) == pytest.approx((1.0, 2.0))
    up4 = serving.layer_gemm_shapes(tokens=4, **kw)[2]
    assert (float(up4[0]), float(up4[3])) == pytest.approx((8 / 5.46875, 5.46875))
    router = serving.layer_gemm_shapes(tokens=4, **kw)[4]
    assert tuple(float(v) for v in router) == (4, 8, 64, 1)


def test_linear_gemm_bytes_with_int4_weights():
    """One token through a 4096 x 4096 int4 projection: activations (4096 + 4096) x 2 B, weights 4096^2 / 2 B."""
    assert serving.linear_gemm_bytes(rows=1, cols=4096, inner=4096, weight_bits=4, act_bits=16) == 16_384 + 8_388_608


def test_attention_flops_and_bytes_hand_worked():
    """512-token causal prefill at tp 2: 4 x 16 heads x 128 x 512 x 256.5 = 1,075,838,976 FLOP per layer; its
    bytes are Q and the output, 2 x 512 x 16 x 128 x 2 = 4,194,304, plus the KV it reads."""
    assert serving.attention_flops_per_layer(tokens=512, n_head=32, head_dim=128, attended=256.5, tp=2) == (
        1_075_838_976)
    assert serving.attention_bytes_per_layer(tokens=512, n_head=32, head_dim=128, tp=2, act_bits=16,
                                             kv_read_bytes=1000) == 4_194_304 + 1000


def test_llama_2_7b_decode_on_a100_hand_worked():
    """Batch 1, 128 + 20 tokens, fp16, tp 1 on A100 80GB SXM (HBM 2.039 TB/s; MAMF 271.2 TFLOP/s).

    Every GEMM is memory-bound (the largest, QKV: 100.7 MFLOP takes (F + 3e9) / (0.85 x 271.2e12) = 13.4 us of
    compute). Bytes per block, weights + activations: QKV 100,663,296 + 32,768 and gate/up 180,355,072 + 52,224
    (>= 100 MB: 0.90 of peak, Calculon's table), output 33,554,432 + 16,384 and down 90,177,536 + 30,208 (>= 10 MB:
    0.75): 281,103,360 B / (2.039e12 x 0.90) + 123,778,560 B / (2.039e12 x 0.75) = 234.12 us. Attention reads the
    KV of ceil(138.5) = 139 tokens, 139 x 2 x 32 x 128 x 2 B, plus Q and the output, 2 x 4096 x 2 B: 2,293,760 B
    at 0.60 = 1.87 us, below the 2.7 us kernel floor. Four element-wise kernels of a few KiB each: 4 x 2.7 us.
    Per pass: embedding and final norm, 2 x 2.7 us, and the LM head, 4096 x 32000 x 2 + (4096 + 32000) x 2 =
    262,216,192 B at 0.90 = 142.89 us. TPOT = 32 x (234.12 + 2.7 + 10.8) + 5.4 + 142.89 us = 8.0722 ms, of which
    32 x (2.7 - 1.87 + 10.8) + 5.4 = 377.4 us are the floor and the element-wise kernels.
    """
    r = api.size("llama-2-7b", mode="serve", gpu="nvidia_a100_80gb_sxm", tp=1, concurrency=1, context_len=128,
                 output_len=20, weight_dtype="fp16", kv_dtype="fp16")
    bw = 2.039e12
    block = 281_103_360 / (bw * 0.9) + 123_778_560 / (bw * 0.75)
    floor = 2.7e-6
    head = 262_216_192 / (bw * 0.9)
    assert r["tpot_s"] == pytest.approx(32 * (block + floor + 4 * floor) + 2 * floor + head, rel=1e-6)
    overhead = 32 * (floor - 2_293_760 / (bw * 0.6) + 4 * floor) + 2 * floor
    assert r["tpot_overhead_s"] == pytest.approx(overhead, rel=1e-4)
    assert r["decode_kernels"] == 32 * 9 + 3
    assert r["decode_memory_bound"]


def test_decode_all_reduce_is_latency_bound():
    """At tp 8 a decode step's 64 all-reduces of 8 KiB each cost ~10 us (LL protocol), not the Simple curve's
    alpha + 1.75 x 16 MiB / busbw (>= 100 us): tp 8 decodes more than 2.5x faster than tp 1 (gpt-fast measured
    3.1x on A100: 104.9 and 328.4 tokens/s, pytorch-labs/gpt-fast README)."""
    kw = dict(mode="serve", gpu="nvidia_a100_80gb_sxm", concurrency=1, context_len=128, output_len=20,
              weight_dtype="fp16", kv_dtype="fp16")
    t1, t8 = (api.size("llama-2-7b", tp=tp, **kw)["tpot_s"] for tp in (1, 8))
    # tp 8: 64 x ~10.1 us of all-reduce = 0.65 ms on top of GEMMs of 4-23 MB (0.75 of peak HBM) and the
    # per-kernel floor; well under the Simple curve's 8 ms
    assert t8 < t1 / 2.5
    assert t8 < 64 * 100e-6


@pytest.mark.parametrize("model", ["deepseek-v3", "deepseek-v2-lite", "qwen3-30b-a3b", "qwen1.5-moe-a2.7b",
                                   "mixtral-8x7b", "gemma-2-9b", "falcon-7b"])
def test_bf16_weights_are_two_bytes_per_parameter_for_every_architecture(model):
    """bf16 at tp 1: the weights are 2 bytes x the exact parameter count (measured against transformers in
    tests/test_model.py), whatever the block: narrow experts (moe_d_ff), shared experts, first dense layers,
    multi-head latent attention. Norms and biases are counted at 16 bits too, so the two agree within 0.01 %."""
    row = api.size(model, mode="serve", gpu="nvidia_h200_sxm", tp=1, context_len=128, output_len=1)
    assert row["serving_weights_per_gpu_bytes"] == pytest.approx(2 * row["params_total"], rel=1e-4)


# -- per-kernel floor, element-wise kernels, HBM efficiency by size ------------------------------------------------
def test_kernel_floor_hand_worked():
    """Three 1 us kernels under a 2.7 us floor take 8.1 us; a 5 us kernel keeps its 5 us; zero kernels take 0 s."""
    assert serving.kernel_floor_time_s(time_s=1e-6, kernel_s=2.7e-6, count=3) == pytest.approx(8.1e-6)
    assert serving.kernel_floor_time_s(time_s=5e-6, kernel_s=2.7e-6) == pytest.approx(5e-6)
    assert serving.kernel_floor_time_s(time_s=1e-6, kernel_s=2.7e-6, count=0) == 0


@pytest.mark.parametrize("nbytes, expected", [(150e6, 0.90), (100e6, 0.90), (50e6, 0.75), (10e6, 0.75),
                                              (5e6, 0.60), (1e6, 0.60), (999_999, 0.30), (0, 0.30)])
def test_hbm_size_efficiency_is_calculons_table(nbytes, expected):
    """calculon-ai/calculon systems/a100_80g.json mem1.MB_efficiency: [[100, 0.90], [10, 0.75], [1, 0.6], [0, 0.3]]."""
    assert serving.hbm_size_efficiency(nbytes=nbytes, large_efficiency=0.9) == pytest.approx(expected)


def test_hbm_size_efficiency_scales_with_the_gpus_own_large_transfer_efficiency():
    """A GPU measured at 0.8 for large transfers gets 0.8 x 0.75 / 0.9 for a 50 MB kernel; arrays broadcast."""
    got = serving.hbm_size_efficiency(nbytes=np.array([50e6, 500e6]), large_efficiency=0.8)
    assert got == pytest.approx([0.8 * 0.75 / 0.9, 0.8])


def test_elementwise_kernel_bytes_hand_worked():
    """One Llama-2-7B token, 16-bit: norm 2 x 4096 x 2, add + norm 4 x 4096 x 2, SiLU x gate 3 x 11008 x 2,
    residual add 3 x 4096 x 2 bytes; at tp 2 only the MLP activation halves."""
    kw = dict(tokens=1, d_model=4096, d_ff=11008, gated_mlp=1, act_bits=16)
    assert [float(b) for b in serving.elementwise_kernel_bytes(tp=1, **kw)] == [16_384, 32_768, 66_048, 24_576]
    assert float(serving.elementwise_kernel_bytes(tp=2, **kw)[2]) == 33_024


def test_decode_kernels_count_fastertransformers_decoder_layer():
    """ParallelGptDecoder: 4 GEMMs + 1 fused attention + 4 element-wise kernels per layer, 9; 40 layers of the
    FasterTransformer 13B GPT + embedding, final norm and LM head = 363."""
    assert serving.decode_kernels(layers=40, gemms_per_layer=4) == 363


def test_kernel_floor_comes_from_the_systems_catalog():
    """2.7 us per back-to-back empty kernel on A100 (reframe-hpc/reframe CSCS kernel_latency reference), used for
    every GPU without its own measurement."""
    assert catalog.rates("nvidia_a100_80gb_sxm").kernel_s == pytest.approx(2.7e-6)
    assert catalog.rates("nvidia_h100_sxm").kernel_s == pytest.approx(2.7e-6)


def test_a_measured_kernel_time_overrides_the_default(catalog_copy):
    path = catalog_copy / "systems.toml"
    text = path.read_text()
    old = 'gpu = "nvidia_h100_sxm"\n'
    assert old in text
    path.write_text(text.replace(old, old + "kernel_launch_us = 1.5\n", 1))
    catalog.reload()
    assert catalog.rates("nvidia_h100_sxm").kernel_s == pytest.approx(1.5e-6)
    kw = dict(mode="serve", gpu="nvidia_h100_sxm", tp=8, concurrency=1, context_len=128, output_len=20,
              weight_dtype="fp16", kv_dtype="fp16")
    fast = api.size("llama-2-7b", **kw)
    path.write_text(text.replace(old, old + "kernel_launch_us = 0\n", 1))
    catalog.reload()
    with pytest.raises(TsizeError, match="kernel_launch_us"):
        catalog.systems()
    path.write_text(text)
    catalog.reload()
    assert api.size("llama-2-7b", **kw)["tpot_overhead_s"] > fast["tpot_overhead_s"]


def test_tpot_overhead_is_the_floor_and_element_wise_part():
    """At tp 8 on H100 most kernels of a Llama-2-7B decode step are shorter than the floor: the overhead is at least
    32 layers x 4 element-wise kernels x 2.7 us, and below 32 x 9 + 3 kernels x 2.7 us."""
    r = api.size("llama-2-7b", mode="serve", gpu="nvidia_h100_sxm", tp=8, concurrency=1, context_len=128,
                 output_len=20, weight_dtype="fp16", kv_dtype="fp16")
    assert 32 * 4 * 2.7e-6 < r["tpot_overhead_s"] < (32 * 9 + 3) * 2.7e-6
    assert 0 < r["ttft_overhead_s"] < r["ttft_s"]


# -- multi-head latent attention's GEMMs, measured on transformers' DeepseekV3Attention ------------------------
MLA_SHAPES = {"q-lora": 24, "q-proj": None}


@pytest.mark.parametrize("q_lora", sorted(MLA_SHAPES))
def test_mla_gemm_shapes_match_transformers(q_lora):
    """The prefill (non-absorbed) GEMMs of layer_gemm_shapes at tp 1 run the FLOPs FlopCounterMode measures in
    transformers' DeepseekV3Attention (eager: plus Q.K^T at n + p and P.V at v per head), and both forms read the
    attention's linear weights once (the absorbed W_UK and W_UV are kv_b_proj's two halves)."""
    from torch.utils.flop_counter import FlopCounterMode

    q_lora_rank = MLA_SHAPES[q_lora]
    H, d, r, p, n, v, B, T = 4, 64, 32, 8, 16, 12, 2, 7
    config = AutoConfig.for_model("deepseek_v3", hidden_size=d, intermediate_size=96, moe_intermediate_size=32,
                                  num_hidden_layers=1, first_k_dense_replace=1, num_attention_heads=H,
                                  num_key_value_heads=H, q_lora_rank=q_lora_rank, kv_lora_rank=r, qk_rope_head_dim=p,
                                  qk_nope_head_dim=n, v_head_dim=v, vocab_size=100, max_position_embeddings=64,
                                  n_routed_experts=4, num_experts_per_tok=2, n_group=1, topk_group=1,
                                  attn_implementation="eager")
    model = AutoModelForCausalLM.from_config(config)
    attn = model.model.layers[0].self_attn
    with FlopCounterMode(display=False) as counter:
        model(torch.zeros(B, T, dtype=torch.long))
    measured = sum(counter.get_flop_counts()[f"{type(model).__name__}.model.layers.0.self_attn"].values())
    weights = sum(m.weight.numel() for m in attn.modules() if isinstance(m, torch.nn.Linear))

    kw = dict(d_model=d, n_head=H, n_kv_head=H, head_dim=16, d_ff=96, gated_mlp=1, n_experts=1, top_k=1, tp=1,
              q_lora_rank=q_lora_rank or 0, kv_lora_rank=r, qk_rope_head_dim=p, qk_nope_head_dim=n, v_head_dim=v)
    prefill = serving.layer_gemm_shapes(tokens=B * T, **kw, absorbed=0)
    decode = serving.layer_gemm_shapes(tokens=B * T, **kw, absorbed=1)
    mlp = (2, 3, 4)  # MLP up/gate, down, router
    gemm_flops = sum(2 * m * c * k * count for i, (m, c, k, count) in enumerate(prefill) if i not in mlp)
    assert float(gemm_flops) + 2 * B * H * T * T * (n + p + v) == measured
    for shapes in (prefill, decode):
        assert float(sum(c * k * count for i, (_, c, k, count) in enumerate(shapes) if i not in mlp)) == weights
    assert [float(s[3]) for s in prefill[:2]] == [0.0, 0.0]  # no per-head QKV or output GEMM


def test_mla_decode_gemms_hand_worked():
    """DeepSeek-V3 attention, one decode token at tp 8 (d 7168, 128 heads -> 16 per rank, q_lora 1536, kv_lora
    512, rope 64, nope 128, v 128): fused q_a + kv_a [1 x 7168] @ [7168 x 2112] on every rank, q_b
    [1 x 1536] @ [1536 x 16*192 = 3072], W_UK [1 x 128] @ [128 x 512] and W_UV [1 x 512] @ [512 x 128] for each
    of the 16 heads, one batched kernel each ([1 x 128] @ [128 x 16*512 = 8192], [1 x 512] @ [512 x 16*128]),
    output [1 x 16*128 = 2048] @ [2048 x 7168]; no kv_b GEMM, no per-head QKV."""
    shapes = serving.layer_gemm_shapes(tokens=1, d_model=7168, n_head=128, n_kv_head=128, head_dim=56, d_ff=2048,
                                       gated_mlp=1, n_experts=256, top_k=8, tp=8, q_lora_rank=1536, kv_lora_rank=512,
                                       qk_rope_head_dim=64, qk_nope_head_dim=128, v_head_dim=128, absorbed=1)
    got = [tuple(float(x) for x in s) for s in shapes]
    assert got[0][3] == got[1][3] == 0.0
    assert got[5:] == [(1, 2112, 7168, 1), (1, 3072, 1536, 1), (1, 4096, 512, 0), (1, 8192, 128, 1),
                       (1, 2048, 512, 1), (1, 7168, 2048, 1)]
