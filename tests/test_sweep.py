"""Sweep specs, vectorized evaluation and the long-form frame."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from tsize import catalog
from tsize import frames as sweep
from tsize import spec as spec_mod
from tsize.api import size
from tsize.errors import TsizeError
from tsize.grid import Grid
from tsize.registry import INPUT_NAMES, OUTPUTS, TIERS, frame_columns

ROOT = Path(__file__).resolve().parent.parent

SMALL_SPEC = {
    "name": "small",
    "models": ["gpt2", "llama-3-8b", "mixtral-8x7b"],
    "grid": {"batch_size": [1, 4], "seq_len": [512, 2048], "attention": ["flash", "naive"],
             "precision": ["amp-bf16", "mixed-bf16"], "gpu": ["nvidia_h100_sxm", "amd_mi300x"],
             "n_gpus": [8, 64], "tp": [1, 8], "zero_stage": [0, 3], "recompute": ["none", "full"],
             "grad_accum": [1, 4], "assumed_mfu": 0.4},
}


def _reference(row: dict) -> dict:
    """A few outputs of one point, from the papers' closed forms in plain Python: an oracle independent of
    tsize.formulas and evaluate (only catalog facts are shared).

    GPT-2 (nanoGPT: LayerNorm and linear biases, learned positions, tied head; Radford et al. 2019) and
    LLaMA/Mixtral (RMSNorm, no biases, SwiGLU experts, untied head; Touvron et al. 2023, Jiang et al. 2024);
    FLOPs 2mkn per matmul with attention over the full T x T (Kaplan et al. 2020, Table 1); 6ND and 8ND.
    """
    L, d, H, K, hd, f, V = (row[k] for k in ("n_layer", "d_model", "n_head", "n_kv_head", "head_dim", "d_ff",
                                             "vocab_size"))
    E, k, T, B = row["n_experts"], row["top_k"], row["seq_len"], row["batch_size"]
    if row["family"] == "gpt2":
        block = 2 * 2 * d + (3 * d * d + 3 * d) + (d * d + d) + (d * f + f) + (f * d + d)
        total = V * d + row["n_ctx"] * d + L * block + 2 * d
        active, mlp_flops = total, 2 * 2 * d * f
    else:
        expert = 3 * d * f
        block = 2 * d + d * H * hd + 2 * d * K * hd + H * hd * d + E * expert + (d * E if E > 1 else 0)
        total = V * d + L * block + d + V * d
        active, mlp_flops = total - L * (E - k) * expert, k * 2 * expert
    layer = 2 * d * (H + 2 * K) * hd + 2 * 2 * T * H * hd + 2 * H * hd * d + mlp_flops + (2 * d * E if E > 1 else 0)
    recipe = catalog.lookup("precision", row["precision"])
    peak = catalog.lookup("gpu", row["gpu"]).peak_flops_per_s.get(recipe.peak, math.nan)
    executed = (8 if row["recompute"] == "full" else 6) * active * row["tokens"]
    # the time divides the FLOPs executed, attention causal (half of T x T): 3 forward passes per token, and
    # one more with full recomputation (SMALL_SPEC recomputes none or full)
    attention = 2 * 2 * T * H * hd
    forward_per_token = L * (layer - attention / 2) + 2 * d * V
    run = row["tokens"] * forward_per_token * (4 if row["recompute"] == "full" else 3)
    mp = row["tp"] * row["pp"]
    return {
        "params_total": total, "params_active": active, "flops_forward": float(B * T * (L * layer + 2 * d * V)),
        "weights_bytes": total * recipe.param_bits / 8, "gradients_bytes": total * recipe.grad_bits / 8,
        "train_flops": 6 * active * row["tokens"], "train_hardware_flops": executed,
        "train_executed_flops": run, "train_time_s": run / (row["n_gpus"] * peak * row["assumed_mfu"]),
        "data_parallel": row["n_gpus"] / mp if row["n_gpus"] % mp == 0 else math.nan,
    }


def test_vectorized_equals_an_independent_scalar_reference():
    """Sampled points of a 3 x 2^10 grid, evaluated vectorized, against the closed forms of ``_reference``."""
    df = sweep.frame(SMALL_SPEC)
    assert df.height == 3 * 2**10
    for row in df.sample(n=60, seed=1).iter_rows(named=True):
        for name, expected in _reference(row).items():
            if math.isnan(expected):
                assert row[name] is None or math.isnan(row[name]), name
            else:
                assert row[name] == pytest.approx(expected, rel=1e-12), (name, row["model"])


STEP_SPEC = {
    "name": "step",
    "models": ["gpt2", "llama-3-8b"],
    "grid": {"batch_size": [1, 4], "seq_len": 1024, "n_gpus": [8, 64], "tp": [1, 8], "pp": [1, 2],
             "interleave": [1, 2], "global_batch_size": [0, 64], "assumed_mfu": [math.nan, 0.5],
             "system": ["auto", "pcie_server"], "zero_stage": [1, 3], "overlap_grad_reduce": [False, True]},
}


@pytest.mark.parametrize("spec, points", [(SMALL_SPEC, 3 * 2**10), (STEP_SPEC, 2**11)])
def test_frame_rows_equal_one_point_evaluations(spec, points):
    """Every output of sampled rows of the frame equals ``size`` at that point (the sweep and one-point paths)."""
    df = sweep.frame(spec)
    assert df.height == points
    assert df.columns == list(frame_columns())
    rows = df.sample(n=60, seed=1).iter_rows(named=True)
    for row in rows:
        inputs = {name: row[name] for name in INPUT_NAMES if name not in ("model", "iter_time_s")}
        one = size(row["model"], **inputs)
        for out in OUTPUTS:
            a, b = row[out.name], one[out.name]
            if isinstance(b, float) and math.isnan(b):
                assert a is None or math.isnan(a), out.name
            else:
                assert a == pytest.approx(b, rel=1e-12), out.name


def test_outputs_live_in_their_tier():
    """Each output varies only along its tier's axes, so storing it once per tier row loses nothing."""
    axes = {"model": ["gpt2", "mixtral-8x7b"], "precision": ["amp-bf16", "bf16"], "optimizer": ["adamw", "sgd"],
            "attention": ["flash", "naive"], "dropout": [0.0, 0.1], "dropout_mask_bytes": [1.0, 2.0],
            "recompute": ["none", "full"], "grad_accum": [1, 4], "seq_len": [256, 512], "batch_size": [1, 2],
            "gpu": ["nvidia_h100_sxm", "nvidia_l4"], "n_gpus": [8, 16], "tokens": [1e9, 2e9],
            "assumed_mfu": [0.3, 0.5], "pue": [1.1, 1.3], "usd_per_kwh": [0.1, 0.2], "tp": [1, 2], "pp": [1, 2],
            "zero_stage": [1, 3], "sequence_parallel": [False, True], "overhead_bytes": [0.0, 1e9],
            "allocator_slack": [0.0, 0.1], "iter_time_s": [1.0, 2.0], "mode": ["train", "serve"],
            "weight_dtype": ["bf16", "int4"], "kv_dtype": ["bf16", "fp8"], "context_len": [256, 512],
            "output_len": [16, 32], "concurrency": [1, 4], "block_size": [16, 32],
            "gpu_memory_utilization": [0.8, 0.9],
            "system": ["auto", "dgx_a100"], "global_batch_size": [0, 64], "interleave": [1, 2],
            "overlap_grad_reduce": [False, True]}
    parsed = spec_mod.load({"name": "dep", "models": axes.pop("model"), "grid": axes})
    grid = parsed.grid()
    assert all(n == 2 for n in grid.shape)
    values = grid.evaluate()
    for out in OUTPUTS:
        varying = {INPUT_NAMES[i] for i, n in enumerate(np.shape(values[out.name])) if n > 1}
        assert varying <= set(TIERS[out.tier]), (out.name, varying - set(TIERS[out.tier]))


def test_streamed_frames_equal_the_whole_frame():
    whole = sweep.frame(SMALL_SPEC)
    streamed = pl.concat([f.clone() for f in sweep.frames(SMALL_SPEC, chunk_points=100)])
    assert whole.equals(streamed)


@pytest.mark.parametrize("shape, varying", [
    ((2, 3, 3, 6, 8, 8, 4, 4, 2), (8,)),            # ZeRO stage only: a run of 2, tiled
    ((2, 3, 3, 6, 8, 8, 4, 4, 2), (0, 8)),          # outer and innermost axes
    ((2, 3, 3, 6, 8, 8, 4, 4, 2), (0, 1, 2, 3, 4, 6, 7)),  # a large tile: copied directly
    ((2, 3, 3, 6, 8, 8, 4, 4, 2), (3,)),            # repeats over long inner runs
    ((2, 3, 3, 6, 8, 8, 4, 4, 2), tuple(range(9))),  # point-wise
    ((1, 48, 1, 1, 1, 5, 1, 3), (1, 7)), ((4, 1, 1), ()), ((7,), (0,)), ((1, 1), (0, 1)),
])
@pytest.mark.parametrize("dtype", [np.float64, np.int64, np.int32, np.bool_])
def test_expand_equals_numpy_broadcasting(shape, varying, dtype):
    """frames.expand writes the same values as broadcasting the source over the box, in row-major order."""
    rng = np.random.default_rng(7)
    small = tuple(n if i in varying else 1 for i, n in enumerate(shape))
    source = rng.integers(-1000, 1000, size=small).astype(np.float64)
    source.flat[::3] = np.nan if dtype is np.float64 else 0
    n = math.prod(shape)
    target = np.full(n + 5, 99, dtype=dtype)  # longer than the box, as the reused buffers are
    sweep.expand(target[:n], shape, source)
    np.testing.assert_array_equal(target[:n], np.broadcast_to(source, shape).ravel().astype(dtype))
    np.testing.assert_array_equal(target[n:], np.full(5, 99, dtype=dtype))


def test_boxes_cover_the_grid_once():
    grid = spec_mod.load(SMALL_SPEC).grid()
    for chunk in (1, 7, 100, 5000, 10**9):
        seen = np.zeros(grid.shape, dtype=int)
        for box in grid.boxes(chunk):
            seen[tuple(slice(a, b) for a, b in box)] += 1
            assert sweep.box_size(box) <= max(chunk, 1)
        assert (seen == 1).all()


def test_generated_family_and_flags():
    parsed = spec_mod.load({"name": "fam", "family": [{"prefix": "g", "base": "gpt2", "n_layer": [2, 4],
                                                       "d_model": [256, 512], "head_dim": 64, "mlp_ratio": 4}],
                            "grid": {"batch_size": 1}})
    names = [m.name for m in parsed.axes["model"]]
    assert names == ["g-n_layer2-d_model256", "g-n_layer2-d_model512", "g-n_layer4-d_model256",
                     "g-n_layer4-d_model512"]
    heads = {m.name: (m.n_head, m.head_size, m.d_ff) for m in parsed.axes["model"]}
    assert heads["g-n_layer4-d_model512"] == (8, 64, 2048)
    flagged = spec_mod.load({"name": "bad", "family": [{"base": "gpt2", "d_model": 256, "n_head": [4, 5]}]})
    df = sweep.frame(flagged)
    flags = dict(zip(df["model"].cast(pl.String), df["heads_divide"]))
    assert flags == {"family-n_head4": True, "family-n_head5": False}  # 256 is not a multiple of 5 heads
    assert not df.filter(~pl.col("heads_divide"))["fits"].any()


@pytest.mark.parametrize("name", ["seed", "fleet", "capacity"])
def test_shipped_specs_load(name):
    parsed = spec_mod.load(ROOT / "sweeps" / f"{name}.toml")
    assert parsed.name == name
    if name == "capacity":
        assert parsed.grid().size >= 10_000_000


def test_seed_spec_is_the_notebook_study():
    grid = spec_mod.load(ROOT / "sweeps" / "seed.toml").grid()
    assert [m.name for m in grid.values["model"]] == ["gpt2-tiny", "gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl"]
    assert grid.values["batch_size"] == [1, 2, 4, 8, 16, 32]
    assert set(grid.values["attention"]) == {"flash", "naive"}


@pytest.mark.parametrize("data,message", [
    ({"name": "x", "models": ["gpt2"], "grid": {"batch_sise": 1}},
     r"spec: unknown key 'grid\.batch_sise'; valid: precision, optimizer"),
    ({"name": "x", "models": ["gpt5"]}, r"spec: models: unknown model 'gpt5'; valid: gpt2-tiny"),
    ({"name": "x", "models": ["gpt2"], "grid": {"gpu": ["h100"]}},
     r"spec: grid\.gpu: unknown gpu 'h100'; valid: nvidia_b200_sxm"),
    ({"name": "x", "models": ["gpt2"], "grid": {"batch_size": "big"}},
     r"spec: grid\.batch_size: batch_size must be a number, got 'big'"),
    ({"name": "x", "models": ["gpt2"], "grid": {"batch_size": []}}, r"spec: grid\.batch_size is empty"),
    ({"name": "x", "models": ["gpt2"], "grid": {"attention": "fast"}},
     r"grid\.attention: attention 'fast' is not valid; valid: naive, flash"),
    ({"name": "x", "models": ["gpt2"], "grid": {"dtype": "int8"}},
     r"grid\.dtype: unknown dtype 'int8'; valid: float32, bfloat16, float16"),
    ({"name": "x", "modles": ["gpt2"]}, r"spec: unknown key 'modles'; valid: name, description, models"),
    ({"models": ["gpt2"]}, r"spec: key 'name' must be a non-empty string"),
    ({"name": "x"}, r"spec: no models"),
    ({"name": "x", "family": [{"base": "gpt2", "n_layers": [1]}]}, r"family #1: unknown key 'n_layers'"),
])
def test_spec_errors(data, message):
    with pytest.raises(ValueError, match=message):
        spec_mod.load(data)


def test_spec_file_errors(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\nmodels = ["gpt2"]\n[grid]\nn_gpus = [8, 0]\n')
    with pytest.raises(ValueError, match=r"bad\.toml: grid\.n_gpus: n_gpus 0 is out of range; valid: >= 1"):
        spec_mod.load(bad)
    bad.write_text("name = \n")
    with pytest.raises(ValueError, match=r"bad\.toml: malformed TOML"):
        spec_mod.load(bad)
    with pytest.raises(ValueError, match=r"sweep spec '.*missing\.toml' not found"):
        spec_mod.load(tmp_path / "missing.toml")


def test_grid_defaults_fill_missing_axes():
    grid = Grid({"model": [spec_mod.resolve("gpt2")]})
    assert grid.size == 1
    assert grid.values["precision"] == ["amp-bf16"]


# --- issue 10: hostile specs --------------------------------------------------------------------------


@pytest.mark.parametrize("data,message", [
    ({"grid": {"gpu": {"a": 1}}}, r"grid\.gpu: gpu must be a catalog id \(text\), got \{'a': 1\}"),
    ({"grid": {"precision": [[1, 2]]}}, r"grid\.precision: precision must be a catalog id \(text\)"),
    ({"grid": {"tp": 1e30}}, r"grid\.tp: tp 1e\+30 is out of range; valid: >= 1 and <= 1048576"),
    ({"grid": {"pp": math.inf}}, r"grid\.pp: pp inf is not a finite number"),
    ({"grid": {"tokens": [math.inf]}}, r"grid\.tokens: tokens inf is not a finite number"),
    ({"grid": {"pue": [1.2, math.inf]}}, r"grid\.pue: pue inf is not a finite number"),
    ({"grid": {"usd_per_kwh": math.inf}}, r"grid\.usd_per_kwh: usd_per_kwh inf is not a finite number"),
    ({"grid": {"dropout_mask_bytes": math.inf}}, r"dropout_mask_bytes inf is not a finite number"),
    ({"grid": {"allocator_slack": math.inf}}, r"allocator_slack inf is not a finite number"),
    ({"grid": {"iter_time_s": math.inf}}, r"iter_time_s inf is not a finite number"),
    ({"family": [{"base": "gpt2", "mlp_ratio": "a"}]}, r"family #1: mlp_ratio must be a number > 0"),
    ({"family": [{"base": "gpt2", "mlp_ratio": math.nan}]}, r"family #1: mlp_ratio must be a number > 0"),
    ({"family": [{"base": "gpt2", "head_dim": True}]}, r"family #1: head_dim must be a positive integer"),
    ({"family": [{"base": "gpt2", "d_model": "wide", "mlp_ratio": 4}]},
     r"d_model must be a positive integer, got 'wide'"),
    ({"family": [{"base": "gpt2", "n_layer": list(range(1, 1025)), "d_model": list(range(1, 1025)),
                  "n_ctx": list(range(1, 1025))}]}, r"generates 1,073,741,824 models; at most 1,048,576"),
])
def test_hostile_specs_are_refused_in_one_line(data, message):
    with pytest.raises(ValueError, match=message):
        spec_mod.load({"name": "x", "models": ["gpt2"]} | data)


def test_spec_paths_that_are_not_files(tmp_path):
    """Issue 10: a directory or /dev/null given as a spec was reported as 'not found'."""
    with pytest.raises(ValueError, match=r"sweep spec '.*' is a directory; give a file"):
        spec_mod.load(tmp_path)
    with pytest.raises(ValueError, match=r"sweep spec '/dev/null' is not a regular file \(a device or a pipe\)"):
        spec_mod.load("/dev/null")
    deep = tmp_path / "deep.toml"
    deep.write_text("name = 'x'\nmodels = " + "[" * 100_000)
    with pytest.raises(ValueError, match=r"deep\.toml: malformed TOML"):
        spec_mod.load(deep)


def test_a_family_of_90000_models_parses():
    """Issue 10: a 300 x 300 family took 74.8 s to parse (a quadratic duplicate check; now a set, about a second
    of CPU here). No time is asserted (timings belong to the benchmark, not to tests): the family parses whole,
    and a duplicate name among its 90,000 models is still caught."""
    family = {"prefix": "g", "base": "gpt2", "n_layer": list(range(1, 301)),
              "d_model": [64 * k for k in range(1, 301)], "head_dim": 64}
    loaded = spec_mod.load({"name": "big", "family": [family]})
    assert len(loaded.axes["model"]) == 90_000
    assert len({m.name for m in loaded.axes["model"]}) == 90_000
    with pytest.raises(TsizeError, match="g-n_layer1-d_model64"):
        spec_mod.load({"name": "twice", "family": [family, family]})


def test_default_sequence_length_is_capped():
    """Issue 10: the default T was the whole context (Qwen2-7B at 131,072; Mistral-Nemo at 1,024,000)."""
    assert spec_mod.resolve("llama-3.1-405b").n_ctx == 131072
    assert size("llama-3.1-405b")["seq_len"] == 4096
    assert size("gpt2")["seq_len"] == 1024  # min(n_ctx, 4096)
    assert size("llama-3.1-405b", seq_len=131072)["seq_len"] == 131072
