"""MFU, time to train, cost and energy."""

from __future__ import annotations

import pytest
from tsize import catalog
from tsize.api import size
from tsize.formulas import training


def test_seed_mfu_example_is_gpt2_on_a100():
    """The seed's MFU example: gpt2 (124M), batch 20 x grad accum 5 in 0.755 s on an A100 -> about 37 %.

    The seed applied it to gpt2-xl and got 184 % on an H100; for the model it was measured on it is 37.1 %.
    """
    measured = catalog.measurements()["seed-gpt2-iteration-time"]
    assert (measured["batch_size"], measured["grad_accum"], measured["value"]) == ([20], 5, 0.755)
    row = size("gpt2", batch_size=20, grad_accum=5, iter_time_s=0.755, seq_len=1024, gpu="nvidia_a100_40gb_sxm",
               precision="amp-bf16")
    assert row["mfu"] == pytest.approx(0.3714, abs=5e-4)
    per_sequence = size("gpt2", batch_size=1, seq_len=1024)["flops_iteration"]
    assert row["mfu"] == pytest.approx(per_sequence * 100 / 0.755 / 312e12)


def test_mfu_nan_without_measurement():
    assert size("gpt2")["mfu"] != size("gpt2")["mfu"]  # NaN


def test_seed_time_to_train_with_a_real_h100_peak():
    """Seed: gpt2-xl, 300B tokens, 8 GPUs, MFU 0.3, with the H100 SXM's dense bf16 peak (989 TFLOP/s, not
    the seed's guessed 756, which is the PCIe part). The seed divides 6ND (13.67 days with the correct N);
    the time divides the FLOPs executed, attention included (issue 10), worked by hand at T = 1024:
    matmul weights 48 x 12 x 1600^2 + 50257 x 1600 = 1,554,971,200 -> 2 x that per token forward, plus
    causal attention 2 x L x T x d = 157,286,400 -> forward 3,267,228,800, x 3 with backward."""
    row = size("gpt2-xl", tokens=300e9, n_gpus=8, assumed_mfu=0.3, gpu="nvidia_h100_sxm", precision="amp-bf16",
               seq_len=1024)
    assert row["train_flops"] == 6 * 1_557_611_200 * 300e9  # the 6ND convention, labelled as such
    assert 6 * 1_557_611_200 * 300e9 / (8 * 989e12 * 0.3) / 86400 == pytest.approx(13.67, abs=0.01)
    per_token = 3 * (2 * (48 * 12 * 1600**2 + 50257 * 1600) + 2 * 48 * 1024 * 1600)
    assert per_token == 9_801_686_400
    assert row["train_executed_flops"] == pytest.approx(per_token * 300e9)
    expected = per_token * 300e9 / (8 * 989e12 * 0.3)
    assert row["train_time_s"] == pytest.approx(expected)
    assert row["train_time_s"] / 86400 == pytest.approx(14.34, abs=0.01)
    pcie = size("gpt2-xl", tokens=300e9, n_gpus=8, assumed_mfu=0.3, gpu="nvidia_h100_pcie", precision="amp-bf16",
                seq_len=1024)
    assert pcie["train_time_s"] / row["train_time_s"] == pytest.approx(989 / 756)


def test_cost_and_energy_hand_worked():
    """gpt2-xl (N = 1,557,611,200) on 300e9 tokens at T = 1024, 8 H100 SXM at MFU 0.3; catalogs/gpus.toml:
    989e12 FLOP/s bf16 dense, 700 W, $30,000, $6.88 per GPU-hour.

    The time divides the FLOPs executed, attention included (9,801,686,400 per token, worked in
    test_seed_time_to_train_with_a_real_h100_peak): t = 2.94050592e21 / 2.3736e15 = 1,238,838.018 s; GPU time
    8t = 9,910,704.146 GPU*s = 2,752.973 GPU-h; cloud 2,752.973 x 6.88 = $18,940.46; purchase 8 x 30,000;
    energy 700 x 8 x t x 1.5 = 1.0406239e10 J = 2,890.622 kWh, at $0.2/kWh $578.12.
    """
    row = size("gpt2-xl", tokens=300e9, n_gpus=8, assumed_mfu=0.3, gpu="nvidia_h100_sxm", pue=1.5,
               usd_per_kwh=0.2, seq_len=1024)
    assert row["train_flops"] == 2.80370016e21
    assert row["train_time_s"] == pytest.approx(1_238_838.018, rel=1e-9)
    assert row["gpu_time_s"] == pytest.approx(9_910_704.146, rel=1e-9)
    assert row["cost_usd"] == pytest.approx(18_940.46, rel=1e-6)
    assert row["purchase_usd"] == 240_000
    assert row["energy_j"] == pytest.approx(1.0406239e10, rel=1e-6)
    assert row["energy_usd"] == pytest.approx(578.12, rel=1e-5)


@pytest.mark.parametrize("function,kwargs,expected", [
    (training.model_flops, dict(params=1e9, tokens=1e12), 6e21),
    (training.time_s, dict(flops=8e18, peak_flops_per_s=1e15, mfu=0.5, n_gpus=4), 4000.0),
    (training.gpu_time_s, dict(time_s=3600.0, n_gpus=8), 28_800.0),
    (training.gpu_hours, dict(gpu_time_s=28_800.0), 8.0),
    (training.cloud_cost_usd, dict(gpu_hours=8.0, usd_per_gpu_hour=2.5), 20.0),
    (training.purchase_cost_usd, dict(n_gpus=8, price_usd=30_000.0), 240_000.0),
    (training.energy_j, dict(tdp_w=700.0, n_gpus=8, time_s=3600.0, pue=1.5), 30_240_000.0),
    (training.energy_cost_usd, dict(energy_j=30_240_000.0, usd_per_kwh=0.2), 1.68),  # 8.4 kWh
    (training.mfu, dict(flops_per_iteration=1e15, grad_accum=4, iter_time_s=10.0, peak_flops_per_s=1e15), 0.4),
    (training.hfu, dict(mfu=0.3, model_flops=6.0, hardware_flops=8.0), 0.4),
    (training.mfu_at_hfu, dict(hfu=0.4, model_flops=6.0, hardware_flops=8.0), 0.3),
], ids=lambda v: getattr(v, "__name__", None))
def test_hand_worked(function, kwargs, expected):
    assert function(**kwargs) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("recompute,expected", [(0, 6e21), (2, 8e21), (1, 6e21 + 1e12 * 4 * 2 * 4 * 8 * 16)])
def test_hardware_flops_hand_worked(recompute, expected):
    """N = 1e9, D = 1e12; selective recomputation adds 4*L*H*hd*T per token (L=2, H=4, hd=8, T=16)."""
    assert training.hardware_flops(params=1e9, tokens=1e12, recompute=recompute, n_layer=2, n_head=4, head_dim=8,
                                   seq_len=16) == pytest.approx(expected, rel=1e-12)


def test_unsupported_dtype_gives_nan_and_no_fit():
    """The V100 has no bf16 tensor cores: no peak, no time, and the point does not fit."""
    row = size("gpt2", gpu="nvidia_v100_32gb_sxm2", precision="amp-bf16")
    assert row["peak_flops_per_s"] != row["peak_flops_per_s"]
    assert row["train_time_s"] != row["train_time_s"]
    assert not row["fits"]
    fp16 = size("gpt2", gpu="nvidia_v100_32gb_sxm2", precision="amp-fp16")
    assert fp16["peak_flops_per_s"] == 125e12 and fp16["fits"]


def test_recomputation_costs_time_at_the_same_hardware_utilisation():
    """Full recomputation runs the forward again: 4 forwards' worth for 3 (8ND for 6ND). The run's MFU is
    6ND over what it executes: 0.45 x 9,345,667,200 / 9,801,686,400 per token without recomputation
    (gpt2-xl at T = 1024, worked in test_seed_time_to_train_with_a_real_h100_peak), 3/4 of that with."""
    plain = size("gpt2-xl", recompute="none", assumed_mfu=0.45, seq_len=1024)
    full = size("gpt2-xl", recompute="full", assumed_mfu=0.45, seq_len=1024)
    assert full["train_hfu"] == 0.45 == plain["train_hfu"]
    assert full["train_time_s"] == pytest.approx(plain["train_time_s"] * 8 / 6)
    assert plain["train_mfu"] == pytest.approx(0.45 * 6 * 1_557_611_200 / 9_801_686_400)
    assert full["train_mfu"] == pytest.approx(plain["train_mfu"] * 6 / 8)


def test_measured_hfu_counts_recomputed_flops():
    row = size("gpt2", batch_size=8, seq_len=1024, iter_time_s=0.5, recompute="full", gpu="nvidia_a100_40gb_sxm")
    hardware = row["flops_iteration"] + row["flops_recompute"]
    assert row["hfu"] == pytest.approx(row["mfu"] * hardware / row["flops_iteration"])


def test_time_formula_vectorizes():
    t = training.time_s(flops=1e21, peak_flops_per_s=[1e15, 2e15], mfu=0.5, n_gpus=[[1], [4]])
    assert t.shape == (2, 2)
    assert t[1, 1] == pytest.approx(1e21 / (4 * 2e15 * 0.5))


def test_executed_flops_count_attention_at_long_sequences():
    """Issue 10: 6ND ignores attention, about 25x too low at T = 1e7. Llama-2-7B at T = 10,000,000, worked
    by hand per token: matmul weights 32 x (4 x 4096^2 + 3 x 4096 x 11008) + 32000 x 4096 = 6,607,077,376,
    forward 2 x that + causal attention 2 x 32 x 1e7 x 4096; executed = 3 x forward."""
    row = size("llama-2-7b", seq_len=10_000_000, tokens=1e12, assumed_mfu=0.3)
    weights = 32 * (4 * 4096**2 + 3 * 4096 * 11008) + 32000 * 4096
    assert weights == 6_607_077_376
    per_token = 3 * (2 * weights + 2 * 32 * 10_000_000 * 4096)
    assert row["train_executed_flops"] == pytest.approx(per_token * 1e12)
    assert row["train_executed_flops"] / row["train_flops"] > 25
    assert row["train_time_s"] == pytest.approx(per_token * 1e12 / (8 * 989e12 * 0.3))


def test_executed_flops_formula_hand_worked():
    assert training.executed_flops(tokens=10, forward_per_token=5.0, attention_per_token=2.0, recompute=0) == 150
    assert training.executed_flops(tokens=10, forward_per_token=5.0, attention_per_token=2.0, recompute=1) == 170
    assert training.executed_flops(tokens=10, forward_per_token=5.0, attention_per_token=2.0, recompute=2) == 200
