"""Grids: axes in registry order, registry defaults, categorical axes resolved into catalog facts."""

from __future__ import annotations

import numpy as np
import pytest
from tsize import catalog
from tsize.errors import TsizeError
from tsize.grid import Grid
from tsize.registry import INPUT_NAMES, INPUTS


def test_missing_axes_take_registry_defaults():
    grid = Grid({"model": [catalog.models()["gpt2"]]})
    assert grid.shape == (1,) * len(INPUTS) and grid.size == 1
    for spec in INPUTS:
        if spec.name not in ("model", "precision"):
            assert grid.values[spec.name] == [spec.default], spec.name
    assert grid.values["precision"] == ["amp-bf16"]  # catalogs/precisions.toml: default_for = "bfloat16"


@pytest.mark.parametrize("axes,message", [
    ({"batch": [1]}, "unknown input 'batch'; valid: model"),
    ({"batch_size": []}, "input 'batch_size' has no values"),
])
def test_bad_axes(axes, message):
    with pytest.raises(TsizeError, match=message):
        Grid(axes)


def test_resolve_expands_categories_along_their_axes():
    models = catalog.models()
    grid = Grid({"model": [models["gpt2"], models["llama-2-7b"]], "gpu": ["nvidia_h100_sxm", "nvidia_a100_40gb_sxm"],
                 "precision": ["amp-bf16", "fp32"]})
    x = grid.resolve(grid.full_box)
    m, g, p = (INPUT_NAMES.index(n) for n in ("model", "gpu", "precision"))
    assert x["n_layer"].shape[m] == 2 and x["n_layer"].reshape(-1).tolist() == [12, 32]
    assert x["param_bits"].reshape(-1).tolist() == [32.0, 32.0]  # both recipes keep fp32 weights
    assert x["compute_bits"].reshape(-1).tolist() == [16.0, 32.0]
    peak = x["peak_flops_per_s"]
    assert peak.shape[g] == 2 and peak.shape[p] == 2
    # catalogs/gpus.toml: H100 SXM 989 TFLOP/s bf16 dense, A100 312; FP32 (non-tensor) 67 and 19.5
    assert p < g and np.squeeze(peak).tolist() == [[989e12, 312e12], [67e12, 19.5e12]]  # [precision][gpu]



def test_mixed_fp8_attention_runs_at_the_bf16_rate():
    """Transformer Engine keeps the attention core in bf16 (recipe fp8_dpa defaults to False): on an H100 SXM the
    GEMMs of mixed-fp8 run at the FP8 peak (1,979 TFLOP/s) x the measured fraction 794.5 / 989, the attention core
    at the bf16 peak (989) x the same fraction, 794.5 TFLOP/s; other recipes' attention runs at their GEMM rate."""
    grid = Grid({"model": [catalog.models()["gpt2"]], "gpu": ["nvidia_h100_sxm"],
                 "precision": ["mixed-fp8", "amp-bf16"]})
    x = grid.resolve(grid.full_box)
    assert np.squeeze(x["peak_flops_per_s"]).tolist() == [1979e12, 989e12]
    assert np.squeeze(x["attention_peak_flops_per_s"]).tolist() == [989e12, 989e12]
    np.testing.assert_allclose(np.squeeze(x["matmul_flops_per_s"]), [1979e12 * 794.5 / 989, 794.5e12], rtol=1e-12)
    np.testing.assert_allclose(np.squeeze(x["attention_matmul_flops_per_s"]), [794.5e12, 794.5e12], rtol=1e-12)


def test_effective_seq_len_falls_back_to_n_ctx():
    models = catalog.models()
    grid = Grid({"model": [models["gpt2"], models["llama-2-7b"]], "seq_len": [0, 256]})
    assert np.squeeze(grid.effective_seq_len(grid.full_box)).tolist() == [[1024, 256], [4096, 256]]


def test_tier_keys_number_rows_within_the_tier():
    models = catalog.models()
    grid = Grid({"model": [models["gpt2"], models["gpt2-xl"]], "gpu": ["nvidia_h100_sxm", "nvidia_l4", "amd_mi300x"],
                 "batch_size": [1, 2]})
    assert grid.tier_size("gpus") == 3 and grid.tier_size("models") == 2
    assert sorted(np.unique(grid.key("gpus", grid.full_box)).tolist()) == [0, 1, 2]
    steps = np.broadcast_to(grid.key("steps", grid.full_box), grid.shape)
    assert sorted(np.unique(steps).tolist()) == [0, 1, 2, 3]  # model x batch_size
