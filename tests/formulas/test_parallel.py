"""Memory per GPU under ZeRO, tensor, sequence and pipeline parallelism."""

from __future__ import annotations

import itertools

import pytest
from tsize.api import size
from tsize.formulas import parallel
from tsize.model import from_mapping

GB = 1e9


def test_zero_paper_figure_1():
    """Rajbhandari et al. 2020 (ZeRO), Figure 1: a 7.5B model, Adam with mixed precision (K = 12), 64-way data
    parallelism needs 120 GB per GPU, 31.4 GB with Pos, 16.6 GB with Pos+g and 1.9 GB with Pos+g+p."""
    psi = 7.5e9
    expected = {0: 120.0, 1: 31.4, 2: 16.6, 3: 1.9}
    row0 = size("llama-2-7b", precision="mixed-bf16", optimizer="adam", n_gpus=64)
    n = row0["params_total"]
    for stage, gb in expected.items():
        row = size("llama-2-7b", precision="mixed-bf16", optimizer="adam", n_gpus=64, zero_stage=stage)
        states = row["weights_per_gpu_bytes"] + row["gradients_per_gpu_bytes"] + row["optimizer_per_gpu_bytes"]
        assert states / n * psi / GB == pytest.approx(gb, abs=0.05)


def _megatron_gpt(**fields):
    """A GPT in Megatron's accounting: bf16 activations, 1-byte dropout masks, naive attention (a GELU
    GPT-2 as Hugging Face builds it: no nanoGPT causal-mask buffer)."""
    return from_mapping(dict(dict(name="meg", family="gpt2", n_layer=4, d_model=1024, n_head=16, d_ff=4096,
                                  vocab_size=51200, n_ctx=2048, implementation="hf"), **fields))


@pytest.mark.parametrize("tp,sp", [(1, False), (2, False), (8, False), (2, True), (8, True)])
def test_korthikanti_activations_per_layer(tp, sp):
    """Korthikanti et al. 2022, eqs. 1-4: per layer sbh(34 + 5as/h) without parallelism,
    sbh(10 + 24/t + 5as/(ht)) with tensor parallelism, sbh/t (34 + 5as/h) with sequence parallelism
    (plus our 16 B per token of fp32 norm statistics, which the paper drops)."""
    s, b, h, a = 2048, 1, 1024, 16
    layer = _one_layer_per_gpu(tp=tp, sp=sp)
    if sp:
        paper = s * b * h / tp * (34 + 5 * a * s / h)
    else:
        paper = s * b * h * (10 + 24 / tp + 5 * a * s / (h * tp))
    stats = 16 * s * b / (tp if sp else 1)
    assert layer == pytest.approx(paper + stats, rel=1e-9)


def _one_layer_per_gpu(*, tp, sp):
    four = size(_megatron_gpt(n_layer=4), batch_size=1, seq_len=2048, precision="mixed-bf16", attention="naive",
                dropout=0.1, tp=tp, sequence_parallel=sp, n_gpus=tp)
    three = size(_megatron_gpt(n_layer=3), batch_size=1, seq_len=2048, precision="mixed-bf16", attention="naive",
                 dropout=0.1, tp=tp, sequence_parallel=sp, n_gpus=tp)
    return four["activations_per_gpu_bytes"] - three["activations_per_gpu_bytes"]


def test_memory_never_rises_with_more_sharding():
    """For every layout axis, more GPUs of that kind never raise the peak memory per GPU."""
    base = dict(batch_size=2, seq_len=4096, precision="mixed-bf16", grad_accum=8, recompute="none")
    for zero in (0, 1, 2, 3):
        previous = None
        for dp in (1, 2, 4, 8, 64, 512):
            m = size("llama-2-13b", n_gpus=dp, zero_stage=zero, **base)["memory_per_gpu_bytes"]
            assert previous is None or m <= previous
            previous = m
    for dp in (2, 8, 64):  # with dp = 1 no stage shards anything (ZeRO-3 only adds its gather buffer)
        stages = [size("llama-2-13b", n_gpus=dp, zero_stage=z, **base)["memory_per_gpu_bytes"] for z in range(4)]
        assert stages == sorted(stages, reverse=True)
    for sp in (False, True):
        tps = [size("llama-2-13b", n_gpus=t, tp=t, sequence_parallel=sp, **base)["memory_per_gpu_bytes"]
               for t in (1, 2, 4, 8)]
        assert tps == sorted(tps, reverse=True)
    pps = [size("llama-2-13b", n_gpus=p, pp=p, **base)["memory_per_gpu_bytes"] for p in (1, 2, 4, 5, 8)]
    assert pps == sorted(pps, reverse=True)  # 40 layers: ceil(40/p) * p stays 40 for these p
    sp_on = size("llama-2-13b", n_gpus=8, tp=8, sequence_parallel=True, **base)["memory_per_gpu_bytes"]
    sp_off = size("llama-2-13b", n_gpus=8, tp=8, sequence_parallel=False, **base)["memory_per_gpu_bytes"]
    assert sp_on < sp_off


def test_recomputation_never_raises_activations():
    for attention in ("naive", "flash"):
        acts = [size("llama-3-8b", batch_size=4, seq_len=8192, attention=attention, recompute=r)["activation_bytes"]
                for r in ("none", "selective", "full")]
        assert acts == sorted(acts, reverse=True)
    flash = [size("llama-3-8b", attention="flash", recompute=r)["activation_bytes"] for r in ("none", "selective")]
    assert flash[0] == flash[1]  # flash attention keeps no T x T matrix to drop


def test_params_per_gpu_split():
    """tp=1, pp=1: every parameter on every GPU; tp splits all but replicated norms and row-parallel biases."""
    row = size("gpt2", n_gpus=1)
    assert row["weights_per_gpu_bytes"] == row["weights_bytes"]
    rep = parallel.layer_replicated_params(norm=1536, d_model=768, out_bias=1, mlp_bias=1, n_experts=1)
    assert rep == 2 * 1536 + 2 * 768
    p = parallel.params_per_gpu(layer=7_087_872, layer_replicated_params=rep, n_layer=12, tp=4, pp=1,
                                token_embedding=50257 * 768, position_embedding=1024 * 768, norm=1536, lm_head=0,
                                tied_embeddings=1)
    assert p == pytest.approx(12 * ((7_087_872 - rep) / 4 + rep) + 50257 * 768 / 4 + 1024 * 768 + 1536)


def test_layout_flags():
    bad = size("gpt2", n_gpus=6, tp=4)
    assert bad["data_parallel"] != bad["data_parallel"] and not bad["fits"]  # NaN dp: 6 GPUs are not 4 x k
    ok = size("gpt2", n_gpus=8, tp=4)
    assert ok["data_parallel"] == 2 and ok["fits"]


def test_max_micro_batch_is_the_largest_that_fits():
    for model, gpu, zero in itertools.product(["gpt2-xl", "llama-2-7b"], ["nvidia_h100_sxm", "nvidia_l4"], [0, 3]):
        row = size(model, gpu=gpu, n_gpus=8, zero_stage=zero, seq_len=1024)
        b = int(row["max_micro_batch"])
        if b:
            assert size(model, gpu=gpu, n_gpus=8, zero_stage=zero, seq_len=1024, batch_size=b)["fits"]
        assert not size(model, gpu=gpu, n_gpus=8, zero_stage=zero, seq_len=1024, batch_size=b + 1)["fits"]


def test_min_gpus_is_the_fewest_that_fit():
    for zero in (1, 2, 3):
        row = size("llama-2-70b", gpu="nvidia_h100_sxm", zero_stage=zero, batch_size=1, seq_len=4096, n_gpus=8)
        n = row["min_gpus"]
        if n == float("inf"):
            continue
        n = int(n)
        assert size("llama-2-70b", gpu="nvidia_h100_sxm", zero_stage=zero, batch_size=1, seq_len=4096,
                    n_gpus=n)["fits"]
        if n > 1:
            assert not size("llama-2-70b", gpu="nvidia_h100_sxm", zero_stage=zero, batch_size=1, seq_len=4096,
                            n_gpus=n - 1)["fits"]
    never = size("llama-2-70b", gpu="nvidia_h100_sxm", zero_stage=0, n_gpus=8)
    assert never["min_gpus"] == float("inf")


# --- each formula on its own, hand-worked ------------------------------------------------------------------------

@pytest.mark.parametrize("n_gpus,tp,pp,expected", [(8, 2, 2, 2.0), (64, 8, 1, 8.0), (6, 4, 1, float("nan"))])
def test_data_parallel(n_gpus, tp, pp, expected):
    assert parallel.data_parallel(n_gpus=n_gpus, tp=tp, pp=pp) == pytest.approx(expected, nan_ok=True)


def test_gpu_share():
    """A quarter of the parameters on the busiest GPU holds a quarter of each state."""
    assert parallel.gpu_share(params_per_gpu=31_109_952, params_total=124_439_808) == 0.25


@pytest.mark.parametrize("zero_stage,stage,expected", [(0, 1, 12.0), (1, 1, 3.0), (2, 3, 12.0), (3, 3, 3.0)])
def test_zero_shard(zero_stage, stage, expected):
    assert parallel.zero_shard(value=12.0, dp=4.0, zero_stage=zero_stage, stage=stage) == expected


def test_zero3_gather():
    """Two blocks of 7,087,872 parameters at 16 bits, split 2 ways by tp: 2 * 7,087,872 / 2 * 2 bytes."""
    assert parallel.zero3_gather(layer=7_087_872, tp=2, zero_stage=3, param_bits=16) == 14_175_744
    assert parallel.zero3_gather(layer=7_087_872, tp=2, zero_stage=2, param_bits=16) == 0


@pytest.mark.parametrize("fixed,sharded,budget,expected", [
    (10.0, 40.0, 20.0, 4.0),  # 10 + 40/4 = 20 <= 20, 10 + 40/3 > 20
    (10.0, 41.0, 20.0, 5.0),
    (10.0, 0.0, 20.0, 1.0),  # nothing sharded: one replica fits
    (20.0, 5.0, 20.0, float("inf")),  # no room left for any share
])
def test_min_data_parallel(fixed, sharded, budget, expected):
    assert parallel.min_data_parallel(fixed=fixed, sharded=sharded, budget=budget) == expected


@pytest.mark.parametrize("usable,fixed,per_sample,room_ok,valid,expected", [
    (100.0, 20.0, 7.0, True, True, 11.0),  # floor(80 / 7)
    (100.0, 20.0, 80.0, True, True, 1.0),
    (100.0, 120.0, 7.0, True, True, 0.0),  # states alone overflow: at least 0
    (100.0, 20.0, 7.0, False, True, 0.0),
    (100.0, 20.0, 7.0, True, False, 0.0),
])
def test_max_micro_batch(usable, fixed, per_sample, room_ok, valid, expected):
    assert parallel.max_micro_batch(usable=usable, fixed=fixed, per_sample=per_sample, room_ok=room_ok,
                                    valid=valid) == expected


@pytest.mark.parametrize("tp,pp,min_dp,buildable,expected", [
    (8, 2, 4.0, True, 64.0), (1, 1, float("inf"), True, float("inf")), (2, 1, 3.0, False, float("nan"))])
def test_min_gpus(tp, pp, min_dp, buildable, expected):
    assert parallel.min_gpus(tp=tp, pp=pp, min_dp=min_dp, buildable=buildable) == pytest.approx(expected, nan_ok=True)


def test_formulas_broadcast():
    """Arrays in, arrays out, elementwise as the scalar calls."""
    import numpy as np

    got = parallel.max_micro_batch(usable=np.array([100.0, 100.0]), fixed=np.array([[20.0], [120.0]]),
                                   per_sample=7.0, room_ok=True, valid=True)
    assert got.tolist() == [[11.0, 11.0], [0.0, 0.0]]
