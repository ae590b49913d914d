"""step.py: the parts of the predicted step time, each hand-worked.

Rates are chosen so one side of the roofline is exact: memory-bound with a matmul rate of 1e30 (time = bytes /
bandwidth), compute-bound with an HBM bandwidth of 1e30 and R = 1e12 / 0.85, where the size curve
(eff = 0.85 F / (F + 3e9), compute.py) gives t = F / (R eff) = (F + 3e9) / 1e12.
"""

import numpy as np
import pytest
from tsize.formulas import step

MEMORY_BOUND = dict(matmul_flops_per_s=1e30, hbm_bytes_per_s=1.0, hbm_efficiency=1.0)
COMPUTE_BOUND = dict(matmul_flops_per_s=1e12 / 0.85, hbm_bytes_per_s=1e30, hbm_efficiency=1.0)
MIB16 = 2**24  # comm.HALF_BANDWIDTH_BYTES: a 16 MiB message moves at half the bus bandwidth


def test_shaped_gemm_time_both_sides_of_the_ridge():
    # F = 2 * 1024 * 2048 * 512 = 2,147,483,648 -> 3 GEMMs: 3 * (2.147483648e9 + 3e9) / 1e12
    t = step.shaped_gemm_time_s(rows=1024, cols=2048, inner=512, bytes_per_element=2, count=3, **COMPUTE_BOUND)
    assert t == pytest.approx(15.442450944e-3, rel=1e-12)
    # bytes = (1024*512 + 512*2048 + 1024*2048) * 2 = 7,340,032 -> 3 * 7,340,032 / (1e12 * 0.5)
    t = step.shaped_gemm_time_s(rows=1024, cols=2048, inner=512, bytes_per_element=2, count=3,
                                matmul_flops_per_s=1e30, hbm_bytes_per_s=1e12, hbm_efficiency=0.5)
    assert t == pytest.approx(44.040192e-6, rel=1e-12)


@pytest.mark.parametrize("n_experts, top_k, expected", [
    # dense: QKV 8x4x4 (80 B) + out 8x4 inner 2 (56) + up 8x8 inner 4 (128) + down 8x4 inner 4 (80) = 344
    (1, 1, 344.0),
    # 4 experts, top 2: 4 tokens each; up 4 x (16+32+32) = 320, down 4 x (16+16+16) = 192, router 8x4x4 = 80
    (4, 2, 728.0),
])
def test_block_linear_time_memory_bound(n_experts, top_k, expected):
    t = step.block_linear_time_s(tokens=8, d_model=4, n_head=2, n_kv_head=1, head_dim=2, d_ff=8, gated_mlp=1,
                                 n_experts=n_experts, top_k=top_k, tp=2, act_bytes=1, **MEMORY_BOUND)
    assert t == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("tp, q_lora_rank, expected_flops", [
    # DeepSeek-V3, 4096 tokens: q_a 2*4096*7168*1536 = 90,194,313,216; q_b 2*4096*1536*(128*192) = 309,237,645,312;
    # kv_a 2*4096*7168*576 = 33,822,867,456; kv_b 2*4096*512*(128*256) = 137,438,953,472;
    # o 2*4096*(128*128)*7168 = 962,072,674,304
    (1, 1536, [90_194_313_216, 309_237_645_312, 33_822_867_456, 137_438_953_472, 962_072_674_304]),
    # tp 8: the down projections run whole on every rank, the others an eighth
    (8, 1536, [90_194_313_216, 309_237_645_312 / 8, 33_822_867_456, 137_438_953_472 / 8, 962_072_674_304 / 8]),
    # no q_lora (DeepSeek-V2-Lite style): q_proj 2*4096*7168*(128*192) = 1,443,109,011,456 replaces q_a and q_b
    (1, 0, [0, 1_443_109_011_456, 33_822_867_456, 137_438_953_472, 962_072_674_304]),
])
def test_mla_linear_time_compute_bound(tp, q_lora_rank, expected_flops):
    t = step.mla_linear_time_s(tokens=4096, d_model=7168, n_head=128, q_lora_rank=q_lora_rank, kv_lora_rank=512,
                               qk_rope_head_dim=64, qk_nope_head_dim=128, v_head_dim=128, tp=tp, act_bytes=2,
                               **COMPUTE_BOUND)
    assert t == pytest.approx(sum((f + 3e9) / 1e12 for f in expected_flops if f), rel=1e-12)


def test_mla_linear_time_memory_bound():
    # 8 tokens, d 4, 2 heads, q_lora 2, kv_lora 3, rope 1, nope 2, v 2, tp 2, 1-byte elements:
    # q_a 8x2 inner 4: 32+8+16 = 56; q_b 8x3 inner 2: 16+6+24 = 46; kv_a 8x4 inner 4: 32+16+32 = 80;
    # kv_b 8x4 inner 3: 24+12+32 = 68; o 8x4 inner 2: 16+8+32 = 56 -> 306
    t = step.mla_linear_time_s(tokens=8, d_model=4, n_head=2, q_lora_rank=2, kv_lora_rank=3, qk_rope_head_dim=1,
                               qk_nope_head_dim=2, v_head_dim=2, tp=2, act_bytes=1, **MEMORY_BOUND)
    assert t == pytest.approx(306.0, rel=1e-12)


def test_attention_core_naive_and_flash():
    flash = np.array([0, 1])
    # B*H/tp = 4 heads; naive bytes 4 * 2 * (3*4*8 + 16) = 896, flash 4 * 2 * 96 = 768; two GEMMs each
    t = step.attention_core_time_s(batch_size=2, seq_len=4, n_head=4, head_dim=8, v_head_dim=8, tp=2, act_bytes=2,
                                   flash=flash,
                                   **MEMORY_BOUND)
    np.testing.assert_allclose(t, [1792.0, 1536.0], rtol=1e-12)
    # FLOPs 2 * 4 * 16 * 8 = 1024 (naive), 512 (flash, causal half skipped): 2 * (F + 3e9) / 1e12
    t = step.attention_core_time_s(batch_size=2, seq_len=4, n_head=4, head_dim=8, v_head_dim=8, tp=2, act_bytes=2,
                                   flash=flash,
                                   **COMPUTE_BOUND)
    np.testing.assert_allclose(t, [2 * (1024 + 3e9) / 1e12, 2 * (512 + 3e9) / 1e12], rtol=1e-12)
    np.testing.assert_allclose(step.attention_core_backward_time_s(forward_time_s=2.0, flash=flash), [4.0, 5.0])


def test_attention_kernel_rate_replaces_the_gemm_roofline():
    # FlashAttention-1 / -2 / -3 at 0.325 / 0.615 / NaN of a 312 TFLOP/s peak; naive attention has no kernel rate
    rate = step.attention_kernel_flops_per_s(generation=np.array([0, 1, 2, 3]), peak_flops_per_s=312e12,
                                             flash1_fraction=0.325, flash2_fraction=0.615, flash3_fraction=np.nan)
    np.testing.assert_allclose(rate[1:3], [101.4e12, 191.88e12], rtol=1e-12)
    assert np.isnan(rate[0]) and np.isnan(rate[3])
    # flash, 4 heads, T = 4, hd = 8: F = 512 per GEMM (causal half), 768 bytes; at 1 kFLOP/s: 2 * 512 / 1e3 s;
    # the memory side 768 B at 1 GB/s is smaller; without a rate (NaN) the GEMM roofline of COMPUTE_BOUND
    t = step.attention_core_time_s(batch_size=2, seq_len=4, n_head=4, head_dim=8, v_head_dim=8, tp=2, act_bytes=2,
                                   flash=1, kernel_flops_per_s=np.array([1e3, np.nan]), matmul_flops_per_s=1e12,
                                   hbm_bytes_per_s=1e9)
    np.testing.assert_allclose(t, [2 * 512 / 1e3, 2 * (512 + 3e9) / 0.85e12], rtol=1e-9)


def test_attention_core_with_different_value_width():
    # MLA: Q.K^T at width 24, P.V at 8; 4 heads (B*H/tp), T 4, naive, 1-byte elements:
    # bytes 4 * (3*4*24 + 16) = 1216 and 4 * (3*4*8 + 16) = 448
    t = step.attention_core_time_s(batch_size=2, seq_len=4, n_head=4, head_dim=24, v_head_dim=8, tp=2, act_bytes=1,
                                   flash=0, **MEMORY_BOUND)
    assert t == pytest.approx(1216 + 448, rel=1e-12)


def test_block_forward_backward_recompute():
    assert step.block_forward_time_s(linear_s=1.0, attention_s=2.0, memory_s=3.0) == 6.0
    assert step.block_backward_time_s(linear_s=1.0, attention_backward_s=5.0, memory_s=3.0) == 13.0
    redo = step.block_recompute_time_s(recompute=np.array([0, 1, 2]), forward_s=6.0, attention_s=2.0,
                                       attention_memory_s=0.5)
    np.testing.assert_array_equal(redo, [0.0, 2.5, 6.0])


def test_lm_head_time_memory_bound():
    # GEMM 8 x 8 (V/tp) inner 4, 1 byte: 32 + 32 + 64 = 128 B, three of them 384; fp32 logits 3 * 8 * 8 * 4 = 768
    t = step.lm_head_time_s(tokens=8, vocab_size=16, d_model=4, tp=2, act_bytes=1, **MEMORY_BOUND)
    assert t == pytest.approx(1152.0, rel=1e-12)


def test_stage_layers_and_compute():
    np.testing.assert_array_equal(step.stage_layers(n_layer=np.array([30, 32, 1]), pp=4), [8.0, 8.0, 1.0])
    # 8 * (6 + 13 + 2.5) + 1 = 173
    assert step.stage_compute_time_s(stage_layers=8.0, forward_s=6.0, backward_s=13.0, recompute_s=2.5,
                                     lm_head_s=1.0) == 173.0


def test_stage_tp_comm_four_collectives_six_with_full_recompute():
    t = step.stage_tp_comm_time_s(stage_layers=8.0, recompute=np.array([0, 1, 2]), collective_s=0.5)
    np.testing.assert_array_equal(t, [16.0, 16.0, 24.0])


def test_pipeline_send_picks_the_fabric():
    # 16 MiB at half bandwidth: alpha + 2 S / bw; tp*pp = 8 fits a domain of 8, not one of 4
    fabric = dict(scaleup_bytes_per_s=MIB16 * 1e3, scaleup_latency_s=1e-6, scaleout_bytes_per_s=MIB16 * 1e2,
                  scaleout_latency_s=1e-5)
    t = step.pipeline_send_time_s(bytes=MIB16, tp=2, pp=4, scaleup_size=np.array([8, 4]), **fabric)
    np.testing.assert_allclose(t, [2e-3 + 1e-6, 2e-2 + 1e-5], rtol=1e-12)
    np.testing.assert_allclose(step.stage_pp_comm_time_s(pp=np.array([1, 4]), interleave=2, send_s=0.1), [0.0, 0.4])


def test_bucketed_collective():
    # 8 buckets of 16 MiB, all-reduce over 4 ranks in one domain: alpha + 2*3/4 * S / (bw/2) = 1e-5 + 3e-3 each
    fabric = dict(scaleup_bytes_per_s=MIB16 * 1e3, scaleup_latency_s=1e-5, scaleout_bytes_per_s=1.0,
                  scaleout_latency_s=1.0)
    t = step.bucketed_collective_time_s(bytes=8 * MIB16, buckets=8.0, n=4, local=4, kind=2, **fabric)
    assert t == pytest.approx(8 * 3.01e-3, rel=1e-12)
    # reduce-scatter: half the bytes moved
    t = step.bucketed_collective_time_s(bytes=8 * MIB16, buckets=8.0, n=4, local=4, kind=1, **fabric)
    assert t == pytest.approx(8 * 1.51e-3, rel=1e-12)


def test_data_parallel_traffic_by_zero_stage():
    once = step.dp_comm_once_time_s(zero_stage=np.array([0, 1, 2]), grad_all_reduce_s=5.0, grad_reduce_scatter_s=2.0,
                                    weight_all_gather_s=1.0)
    np.testing.assert_array_equal(once, [5.0, 3.0, 3.0])
    assert step.zero3_comm_per_micro_batch_s(weight_all_gather_s=1.0, grad_reduce_scatter_s=2.0) == 4.0
    hidden = step.dp_hidden_time_s(zero_stage=np.array([0, 3]), stage_compute_s=10.0, stage_layers=8.0,
                                   backward_s=1.0, recompute_s=0.5, overlap=1)
    np.testing.assert_array_equal(hidden, [12.0, 10.0])
    assert np.all(step.dp_hidden_time_s(zero_stage=np.array([0, 3]), stage_compute_s=10.0, stage_layers=8.0,
                                        backward_s=1.0, recompute_s=0.5, overlap=0) == 0)
    exposed = step.exposed_time_s(comm_s=np.array([5.0, 1.0]), hidden_s=2.0, repeats=np.array([1.0, 4.0]))
    np.testing.assert_array_equal(exposed, [3.0, 0.0])


def test_step_time_and_throughput():
    # (8 + 1.5) * 2 + 3 + 0.5 = 22.5
    assert step.step_time_s(micro_batches=8.0, bubble_micro_batches=1.5, micro_batch_time_s=2.0, dp_exposed_s=3.0,
                            optimizer_s=0.5) == 22.5
    # parts of different shapes broadcast: (2, 1) x (1, 3)
    t = step.step_time_s(micro_batches=np.array([[8.0], [4.0]]), bubble_micro_batches=0.0,
                         micro_batch_time_s=1.0, dp_exposed_s=np.array([[0.0, 1.0, 2.0]]), optimizer_s=0.5)
    np.testing.assert_array_equal(t, [[8.5, 9.5, 10.5], [4.5, 5.5, 6.5]])
    assert step.steps_per_s(step_time_s=4.0) == 0.25
    # 8 micro-batches x dp 4 / (64 GPUs x 1e15 FLOP/s) = 5e-16; 1e15 FLOP each at 0.8 steps/s -> 40 %
    per_gpu = step.micro_batches_per_gpu_peak(micro_batches=8.0, dp=4.0, n_gpus=64, peak_flops_per_s=1e15)
    assert per_gpu == pytest.approx(5e-16, rel=1e-12)
    assert step.predicted_utilisation(flops_per_micro_batch=1e15, per_gpu_peak=per_gpu,
                                      steps_per_s=0.8) == pytest.approx(0.4, rel=1e-12)
    # 8 x 4 x 2 sequences over 64 GPUs = 1 each; 2048 tokens at 0.25 steps/s = 512 tokens/s
    seqs = step.sequences_per_gpu(micro_batches=8.0, dp=4.0, batch_size=2, n_gpus=64)
    assert seqs == 1.0
    assert step.tokens_per_s_per_gpu(sequences_per_gpu=seqs, seq_len=2048, steps_per_s=0.25) == 512.0
    # 1e9 tokens / (64 x 2048 per step) = 7629.39453125 steps x 4 s
    assert step.train_time_s(tokens=1e9, sequences_per_gpu=seqs, n_gpus=64, seq_len=2048,
                             step_time_s=4.0) == pytest.approx(30517.578125, rel=1e-12)
