"""compute.py: GEMM roofline on each side of the ridge, the size curve, memory-bound time (hand-worked)."""

import pytest
from tsize.formulas import compute

A100_MAMF, A100_HBM = 271.2e12, 2.039e12  # catalogs/systems.toml, catalogs/gpus.toml


def test_large_square_gemm_is_compute_bound():
    # 8192^3: F = 2 * 8192^3 = 1.0995e12 FLOP; bytes = 3 * 8192^2 * 2 = 402,653,184
    # compute 1.0995e12 / 271.2e12 = 4.0542 ms > memory 0.40265e9 / 2.039e12 = 0.1975 ms
    n = 8192
    b = compute.gemm_bytes(m=n, n=n, k=n, bytes_per_element=2)
    assert b == 402_653_184
    t = compute.gemm_time_s(flops=2 * n**3, bytes=b, matmul_flops_per_s=A100_MAMF, hbm_bytes_per_s=A100_HBM,
                            half_flops=0.0, plateau=1.0)
    assert t == pytest.approx(4.0542e-3, rel=1e-4)


def test_matrix_vector_is_memory_bound():
    # 1 x 8192 @ 8192 x 8192: F = 134,217,728 FLOP (0.495 us at the ceiling);
    # bytes = (8192 + 8192^2 + 8192) * 2 = 134,250,496 -> 134.25e6 / 2.039e12 = 65.841 us
    b = compute.gemm_bytes(m=1, n=8192, k=8192, bytes_per_element=2)
    assert b == 134_250_496
    t = compute.gemm_time_s(flops=2 * 8192**2, bytes=b, matmul_flops_per_s=A100_MAMF, hbm_bytes_per_s=A100_HBM,
                            half_flops=0.0, plateau=1.0)
    assert t == pytest.approx(65.841e-6, rel=1e-4)


def test_efficiency_curve_is_half_at_half_flops_and_monotone():
    assert compute.gemm_efficiency(flops=3e10, half_flops=3e10, plateau=1.0) == pytest.approx(0.5)
    assert compute.gemm_efficiency(flops=3e9, half_flops=3e9, plateau=0.8) == pytest.approx(0.4)
    # the shipped curve: a 1 TFLOP GEMM reaches 0.85 * 1e12 / (1e12 + 3e9) = 0.8475 of the ceiling
    assert compute.gemm_efficiency(flops=1e12) == pytest.approx(0.85 * 1e12 / 1.003e12)
    # compute-bound time at the shipped curve: 1.0995e12 / (271.2e12 * 0.85 * 1.0995e12 / (1.0995e12 + 3e9))
    n = 8192
    t = compute.gemm_time_s(flops=2 * n**3, bytes=0.0, matmul_flops_per_s=A100_MAMF, hbm_bytes_per_s=A100_HBM)
    assert t == pytest.approx((2 * n**3 + 3e9) / (A100_MAMF * 0.85))
    sizes = [1e6, 1e8, 1e10, 1e12, 1e14]
    effs = [float(compute.gemm_efficiency(flops=f)) for f in sizes]
    assert effs == sorted(effs) and 0 < effs[0] < effs[-1] < 0.85
    assert compute.gemm_time_s(flops=0.0, bytes=0.0, matmul_flops_per_s=1e12, hbm_bytes_per_s=1e12) == 0


def test_memory_and_optimizer_bytes():
    # AdamW, fp16 params and grads, fp32 master and two states: 2 + 2*4 + 2*2*4 + 2 = 28 bytes per parameter
    b = compute.optimizer_bytes(params=1e9, param_bits=16, grad_bits=16, master_bits=32, n_states=2, state_bits=32)
    assert b == pytest.approx(28e9)
    assert compute.memory_time_s(bytes=28e9, hbm_bytes_per_s=2e12, hbm_efficiency=0.9) == pytest.approx(28e9 / 1.8e12)
    # the same update as eager ops, one pass each (Composer DecoupledAdamW <= 0.16): 16 state passes x 4 bytes,
    # 3 gradient reads x 2, addcdiv_ reads and writes the fp32 master (2 x 4), the master copied to the fp16 param (2)
    b = compute.optimizer_bytes(params=1e9, param_bits=16, grad_bits=16, master_bits=32, n_states=2, state_bits=32,
                                fused=0)
    assert b == pytest.approx((64 + 6 + 8 + 2) * 1e9)
    # amp: fp32 params updated in place, fp32 grads, no master: 64 + 12 + 8 = 84 bytes per parameter
    b = compute.optimizer_bytes(params=1, param_bits=32, grad_bits=32, master_bits=0, n_states=2, state_bits=32,
                                fused=0)
    assert b == pytest.approx(84)


def test_elementwise_bytes_flash_has_no_attention_matrix():
    kw = dict(tokens=0.0, d_model=1024, d_ff=4096, gated_mlp=0, act_bytes=2, residual_bytes=2, tp=1,
              sequence_parallel=False, attention_elements=16 * 2048**2, softmax_bytes=2, dropout=0.0)
    assert compute.layer_elementwise_bytes(flash=1, **kw) == 0
    # naive: read 2 + write 2 bytes per element of the attention matrix
    assert compute.layer_elementwise_bytes(flash=0, **kw) == pytest.approx(16 * 2048**2 * 4)
