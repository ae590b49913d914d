"""evaluate(): composes the formulas into every registry output, each at its smallest broadcast shape."""

from __future__ import annotations

import numpy as np
import pytest
from tsize import catalog
from tsize.errors import TsizeError
from tsize.evaluate import RESOLVED_INPUTS, evaluate
from tsize.grid import Grid
from tsize.registry import INPUT_NAMES, OUTPUT_NAMES, TIERS, output


@pytest.fixture(scope="module")
def grid():
    models = catalog.models()
    return Grid({"model": [models["gpt2"], models["mixtral-8x7b"]], "batch_size": [1, 4], "gpu":
                 ["nvidia_h100_sxm", "nvidia_l4"], "n_gpus": [8, 16]})


def test_reads_exactly_what_grid_resolves(grid):
    assert set(grid.resolve(grid.full_box)) == set(RESOLVED_INPUTS)


def test_returns_every_output(grid):
    assert tuple(grid.evaluate()) == OUTPUT_NAMES


def test_a_missing_input_is_a_bug_not_a_user_error(grid):
    x = grid.resolve(grid.full_box)
    del x["n_layer"]
    with pytest.raises(KeyError) as info:
        evaluate(x)
    assert not isinstance(info.value, TsizeError)


@pytest.mark.parametrize("name", ["params_total", "gpu_memory_bytes", "flops_forward", "train_time_s",
                                  "weights_per_gpu_bytes", "fits"])
def test_outputs_keep_their_smallest_shape(grid, name):
    """A parameter count is computed once per model, not once per point."""
    shape = np.shape(grid.evaluate()[name])
    varying = {INPUT_NAMES[i] for i, n in enumerate(shape) if n > 1}
    assert varying <= set(TIERS[output(name).tier])
    assert np.prod(shape) <= grid.size


def test_hand_worked_gpt2_point():
    """gpt2 at B=1, T=1024: 124,439,808 parameters; forward per token 2*12*12*768^2 + 4*1024*768*12
    + 2*768*50257 = 169,869,312 + 37,748,736 + 77,194,752 = 284,812,800 FLOP (Kaplan et al. 2020, Table 1)."""
    grid = Grid({"model": [catalog.models()["gpt2"]], "seq_len": [1024]})
    out = grid.evaluate()
    assert int(np.squeeze(out["params_total"])) == 124_439_808
    assert float(np.squeeze(out["flops_forward"])) == 284_812_800 * 1024
    assert float(np.squeeze(out["flops_backward"])) == 2 * 284_812_800 * 1024


def test_training_only_box_skips_serving_with_the_same_values():
    """A box without serve points short-cuts the serving stage: its serving outputs are exactly what the full
    stage gives the train rows of a mixed box (NaN, flags false), and every other output is unchanged."""
    models = catalog.models()
    axes = {"model": [models["llama-2-7b"]], "gpu": ["nvidia_h100_sxm", "nvidia_a100_80gb_sxm"], "tp": [1, 2]}
    train_only = Grid(dict(axes, mode=["train"])).evaluate()
    mixed = Grid(dict(axes, mode=["train", "serve"])).evaluate()
    m = INPUT_NAMES.index("mode")
    for name in OUTPUT_NAMES:
        got = np.broadcast_to(train_only[name], Grid(dict(axes, mode=["train"])).shape)
        full = np.take(np.broadcast_to(mixed[name], Grid(dict(axes, mode=["train", "serve"])).shape), [0], axis=m)
        np.testing.assert_array_equal(got, full, err_msg=name)
    assert np.isnan(train_only["ttft_s"]).all() and not np.any(train_only["serving_fits"])
    assert np.isfinite(np.take(np.broadcast_to(mixed["ttft_s"], Grid(dict(axes, mode=["train", "serve"])).shape),
                               [1], axis=m)).all()
