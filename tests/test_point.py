"""One configuration as a grid of one point: axes from keywords, rows of a small grid, size()."""

from __future__ import annotations

import math

import numpy as np
import pytest
from tsize.errors import TsizeError
from tsize.grid import Grid
from tsize.point import axes_for, point, rows, size
from tsize.registry import frame_columns


def test_axes_for_checks_values_and_picks_the_dtype_recipe():
    axes = axes_for("gpt2", dtype="float32", batch_size=[1, 2], tokens=1e9)
    assert axes["batch_size"] == [1, 2] and axes["tokens"] == [1e9] and axes["precision"] == ["fp32"]
    assert axes["model"][0].name == "gpt2"


@pytest.mark.parametrize("kwargs,message", [
    (dict(dtype="float32", precision="amp-bf16"), "precision 'amp-bf16' computes in bfloat16, not --dtype float32"),
    (dict(gpu="h100"), "unknown gpu 'h100'; valid:"),
    (dict(optimizer="adagrad"), "unknown optimizer 'adagrad'; valid:"),
    (dict(batch_size=[1, 2]), "size() takes one value per input; got a grid of 2 points"),
    (dict(dtype="int8"), "unknown dtype 'int8'; valid: float32, bfloat16, float16"),
])
def test_user_errors(kwargs, message):
    with pytest.raises(TsizeError) as info:
        size("gpt2", **kwargs)
    assert message in str(info.value)


def test_rows_of_a_grid_equal_its_points():
    grid = Grid(axes_for("gpt2", batch_size=[1, 2], gpu=["nvidia_h100_sxm", "nvidia_l4"], attention=["naive", "flash"]))
    got = rows(grid)
    assert len(got) == 8
    for index, row in zip(np.ndindex(grid.shape), got):
        one = point(grid, index)
        assert tuple(row) == frame_columns() == tuple(one)
        for key, value in one.items():
            assert row[key] == value or (isinstance(value, float) and math.isnan(value) and math.isnan(row[key]))


def test_labels_come_back_as_names():
    row = size("gpt2", gpu="nvidia_l4", attention="naive")
    assert (row["model"], row["family"], row["gpu"], row["attention"], row["precision"]) == \
        ("gpt2", "gpt2", "nvidia_l4", "naive", "amp-bf16")
    assert isinstance(row["fits"], bool) and isinstance(row["params_total"], int)
