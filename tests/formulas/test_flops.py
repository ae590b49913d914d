"""FLOPs: equal to FlopCounterMode, the seed's breakdown, PaLM, published training compute."""

from __future__ import annotations

import pytest
from tsize import catalog
from tsize.api import size
from tsize.formulas import flops
from tsize.validation import measure


@pytest.mark.usefixtures("torch")
def test_small_models_equal_flop_counter(small_model):
    T = min(32, small_model.n_ctx)
    counted = measure.flops(small_model, batch_size=2, seq_len=T)
    row = size(small_model, batch_size=2, seq_len=T)
    assert row["flops_forward"] == counted["forward"]
    assert row["flops_backward"] == counted["backward"]
    assert row["flops_iteration"] == counted["forward"] + counted["backward"]


@pytest.mark.usefixtures("torch")
@pytest.mark.parametrize("name", ["gpt2-xl", "llama-2-7b", "llama-3-8b", "mistral-7b", "qwen2-0.5b"])
def test_catalog_models_equal_flop_counter(name):
    """Full-size models, counted on fake tensors (no memory)."""
    model = catalog.models()[name]
    counted = measure.flops(model, batch_size=1, seq_len=64)
    row = size(model, batch_size=1, seq_len=64)
    assert row["flops_forward"] == counted["forward"]
    assert row["flops_backward"] == counted["backward"]


def test_seed_breakdown_gpt2_xl():
    """The seed notebook's FLOPs table for gpt2-xl (B=1, T=1024) is right; reproduce it exactly."""
    row = size("gpt2-xl", batch_size=1, seq_len=1024)
    L = 48
    assert row["flops_qkv"] == L * 15_728_640_000
    assert row["flops_attention_scores"] == L * 3_355_443_200
    assert row["flops_attention_values"] == L * 3_355_443_200
    assert row["flops_attention_out"] == L * 5_242_880_000
    assert row["flops_mlp"] == L * 41_943_040_000
    assert row["flops_lm_head"] == 164_682_137_600
    assert row["flops_forward"] == 3_506_703_564_800
    assert row["flops_backward"] == 7_013_407_129_600
    assert row["flops_iteration"] == 10_520_110_694_400


def test_palm_cross_check():
    """PaLM's 6N + 12LHQT against the exact count for gpt2-xl, both worked by hand (B=1, T=1024).

    L=48, d=1600, V=50257, H*Q=1600. N (nanoGPT's non-embedding count: the tied token embedding is the
    LM head, so only the position table is left out) = 1,557,611,200 - 1024*1600 = 1,555,972,800.
    PaLM per token: 6N + 12*48*1600*1024 = 9,335,836,800 + 943,718,400 = 10,279,555,200.
    Exact per token, forward: 2*48*12*1600^2 (block matmuls) + 4*1024*1600*48 (scores, values)
    + 2*1600*50257 (LM head) = 3,424,515,200; with backward x3 = 10,273,545,600.
    Ratio 10,279,555,200 / 10,273,545,600 = 1.000585 (the seed printed 1.0004 with its wrong N).
    """
    row = size("gpt2-xl", batch_size=1, seq_len=1024)
    assert row["params_non_embedding"] == 1_555_972_800
    assert row["flops_palm_iteration"] == 10_279_555_200 * 1024
    assert row["flops_iteration"] == 10_273_545_600 * 1024
    assert row["flops_palm_iteration"] / row["flops_iteration"] == pytest.approx(1.000585, abs=1e-6)


def test_causal_accounting_halves_attention_matrix_flops():
    row = size("gpt2", batch_size=4, seq_len=1024)
    attention = row["flops_attention_scores"] + row["flops_attention_values"]
    assert row["flops_iteration"] - row["flops_iteration_causal"] == pytest.approx(3 * attention / 2)
    assert flops.attention_scores(batch_size=4, seq_len=1024, n_head=12, head_dim=64, causal=True) == \
        row["flops_attention_scores"] / 12 / 2


def test_gpt3_training_compute():
    """GPT-3 175B on 300B tokens: 3.14e23 FLOP (Brown et al. 2020, Table D.1, '3.14E+23')."""
    row = size("gpt3-175b", tokens=300e9)
    assert row["train_flops"] == pytest.approx(3.14e23, rel=0.005)
    assert row["train_flops"] == 6 * row["params_total"] * 300e9


def test_recomputation_flops():
    """Full recomputation runs every block's forward again: 8ND rule in the limit; selective adds attention."""
    full = size("gpt2-xl", recompute="full", tokens=1e9)
    assert full["train_hardware_flops"] == 8 * full["params_active"] * 1e9
    assert full["flops_recompute"] == full["flops_forward"] - full["flops_lm_head"]
    sel = size("gpt2-xl", recompute="selective", tokens=1e9, seq_len=1024)
    assert sel["flops_recompute"] == sel["flops_attention_scores"] + sel["flops_attention_values"]
    assert sel["train_hardware_flops"] == 1e9 * (6 * sel["params_active"] + 4 * 48 * 25 * 64 * 1024)


def test_flops_are_float64_and_do_not_overflow():
    row = size("llama-3.1-405b", tokens=15.6e12)
    assert isinstance(row["train_flops"], float)
    assert row["train_flops"] == pytest.approx(6 * 405_853_388_800 * 15.6e12)
    assert row["train_flops"] > 2**63


# --- each formula on its own, hand-worked: B=2, T=16 (32 tokens), d=8, 4 heads of 2, 2 KV heads, f=32 ---------

@pytest.mark.parametrize("function,kwargs,expected", [
    (flops.qkv, dict(tokens=32, d_model=8, n_head=4, n_kv_head=2, head_dim=2), 2 * 32 * 8 * 8 * 2),
    (flops.attention_scores, dict(batch_size=2, seq_len=16, n_head=4, head_dim=2), 2 * 2 * 4 * 256 * 2),
    (flops.attention_scores, dict(batch_size=2, seq_len=16, n_head=4, head_dim=2, causal=True), 4096),
    (flops.attention_values, dict(batch_size=2, seq_len=16, n_head=4, head_dim=2), 8192),
    (flops.attention_out, dict(tokens=32, d_model=8, n_head=4, head_dim=2), 4096),
    (flops.mlp, dict(tokens=32, d_model=8, d_ff=32, gated_mlp=0, top_k=1), 32_768),  # up and down
    (flops.mlp, dict(tokens=32, d_model=8, d_ff=32, gated_mlp=1, top_k=2), 98_304),  # gate, up, down; 2 experts
    (flops.router, dict(tokens=32, d_model=8, n_experts=4), 2048),
    (flops.router, dict(tokens=32, d_model=8, n_experts=1), 0),
    (flops.lm_head, dict(tokens=32, d_model=8, vocab_size=100), 51_200),
    (flops.layer, dict(qkv=1, attention_scores=2, attention_values=3, attention_out=4, mlp=5, router=6), 21),
    (flops.forward, dict(layer=100, n_layer=3, lm_head=7), 307),
    (flops.backward, dict(forward=307), 614),
    (flops.iteration, dict(forward=307), 921),
    # PaLM: 6N + 12*L*H*Q*T with N = 1e6, L=2, H=4, Q=2, T=16
    (flops.palm_per_token, dict(params=1e6, n_layer=2, n_head=4, head_dim=2, seq_len=16), 6e6 + 3072),
    (flops.recompute, dict(layer=100, attention_scores=10, attention_values=10, n_layer=3, recompute=0), 0),
    (flops.recompute, dict(layer=100, attention_scores=10, attention_values=10, n_layer=3, recompute=1), 60),
    (flops.recompute, dict(layer=100, attention_scores=10, attention_values=10, n_layer=3, recompute=2), 300),
], ids=lambda v: getattr(v, "__name__", None))
def test_hand_worked(function, kwargs, expected):
    assert function(**kwargs) == expected
