"""One configuration as a grid of one point: ``size(model, **inputs) -> dict``.

A single point is a grid whose axes all have length one, so this path runs
exactly the code the sweeps run. ``tsize.api`` re-exports these; they live
here, below the api, so ``tsize.validation`` can use them without a cycle.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tsize import catalog
from tsize.catalog import resolve
from tsize.errors import TsizeError
from tsize.grid import DEFAULT_DTYPE, LABELS, Grid
from tsize.model import ModelConfig
from tsize.registry import INPUT_NAMES, MODEL_ATTRIBUTES, OUTPUTS, frame_columns, input_


def axes_for(model: str | ModelConfig, *, dtype: str | None = None, **inputs: Any) -> dict[str, list]:
    """Grid axes from keyword inputs; each value a scalar or a list. ``dtype`` picks the default recipe."""
    axes: dict[str, list] = {"model": [resolve(model)]}
    for name, value in inputs.items():
        if value is None:
            continue
        spec = input_(name)  # raises KeyError naming the valid inputs
        values = list(value) if isinstance(value, (list, tuple)) else [value]
        axes[name] = [spec.check(v) for v in values]
    if "precision" not in axes:
        axes["precision"] = [catalog.precision_for_dtype(dtype or DEFAULT_DTYPE)]
    elif dtype is not None:
        for recipe in axes["precision"]:
            if catalog.lookup("precision", recipe).dtype != dtype:
                raise TsizeError(f"precision {recipe!r} computes in {catalog.lookup('precision', recipe).dtype}, "
                                 f"not --dtype {dtype}; drop one of the two")
    for name in ("precision", "optimizer", "gpu"):
        for value in axes.get(name, []):
            if value is not None:
                catalog.lookup(name, value)
    return axes


def _scalar(value: Any) -> Any:
    value = np.asarray(value).reshape(-1)[0]
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    value = float(value)
    return value


def point(grid: Grid, index: tuple[int, ...] | None = None) -> dict[str, Any]:
    """One grid point as a flat dict with the columns of ``registry.frame_columns``."""
    index = index or (0,) * len(grid.shape)
    box = tuple((i, i + 1) for i in index)
    out = grid.evaluate(box)
    row: dict[str, Any] = {}
    for name in INPUT_NAMES + MODEL_ATTRIBUTES:
        value = _scalar(grid.frame_column(name, box))
        row[name] = grid.categories(name)[value] if name in LABELS else value
    row = {name: row[name] for name in frame_columns() if name in row}
    for spec in OUTPUTS:
        row[spec.name] = _scalar(out[spec.name])
    return row


def rows(grid: Grid) -> list[dict[str, Any]]:
    """Every point of a (small) grid as a flat dict, row-major in ``registry.INPUTS`` order; one evaluation."""
    box = grid.full_box
    out = grid.evaluate(box)
    columns = {name: np.broadcast_to(grid.frame_column(name, box), grid.shape)
               for name in frame_columns() if name in INPUT_NAMES or name in MODEL_ATTRIBUTES}
    outputs = {spec.name: np.broadcast_to(out[spec.name], grid.shape) for spec in OUTPUTS}
    labels = {name: grid.categories(name) for name in columns if name in LABELS}
    result = []
    for index in np.ndindex(grid.shape):
        row = {name: _scalar(values[index]) for name, values in columns.items()}
        for name, categories in labels.items():
            row[name] = categories[row[name]]
        result.append(row | {name: _scalar(values[index]) for name, values in outputs.items()})
    return result


def size(model: str | ModelConfig, *, dtype: str | None = None, **inputs: Any) -> dict[str, Any]:
    """Everything tsize computes for one configuration, as ``{column: value}`` in base units.

    >>> size("gpt2", batch_size=12, dtype="bfloat16")["params_total"]
    124439808
    """
    grid = Grid(axes_for(model, dtype=dtype, **inputs))
    if grid.size != 1:
        raise TsizeError(f"size() takes one value per input; got a grid of {grid.size} points (use sweep)")
    return point(grid)
