"""The Python API for one configuration: ``size(model, **inputs) -> dict``.

A single point is a grid whose axes all have length one, so this path runs
exactly the code the sweeps run.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import polars as pl

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


def size(model: str | ModelConfig, *, dtype: str | None = None, **inputs: Any) -> dict[str, Any]:
    """Everything tsize computes for one configuration, as ``{column: value}`` in base units.

    >>> size("gpt2", batch_size=12, dtype="bfloat16")["params_total"]
    124439808
    """
    grid = Grid(axes_for(model, dtype=dtype, **inputs))
    if grid.size != 1:
        raise TsizeError(f"size() takes one value per input; got a grid of {grid.size} points (use sweep)")
    return point(grid)


def check_serving(row: dict[str, Any]) -> dict[str, Any]:
    """``row`` unchanged when it is not a serving point or its serving input is valid; a one-line TsizeError
    naming the bad input otherwise (what a sweep keeps as flags)."""
    if row.get("mode") != "serve":
        return row
    if row["concurrency"] < 1:
        raise TsizeError(f"concurrency {row['concurrency']} serves nothing; valid: >= 1")
    if not row["context_fits_model"]:
        raise TsizeError(f"context_len {row['context_len']} + output_len {row['output_len']} exceeds "
                         f"{row['model']}'s n_ctx {row['n_ctx']}; valid: context_len + output_len <= {row['n_ctx']}")
    if not row["weight_dtype_supported"]:
        gpu = catalog.lookup("gpu", row["gpu"])
        from tsize.grid import WEIGHT_FORMATS, format_peak

        ok = [w for w in WEIGHT_FORMATS if math.isfinite(format_peak(gpu, w))]
        peaks = WEIGHT_FORMATS[row["weight_dtype"]][4]
        needs = peaks if isinstance(peaks, str) else " or ".join(peaks)
        raise TsizeError(f"weight_dtype {row['weight_dtype']} needs {needs} tensor cores, which {row['gpu']} lacks; "
                         f"valid on it: {', '.join(ok)}")
    tp, heads, kv = row["tp"], row["n_head"], row["n_kv_head"]
    if heads % tp or (kv % tp and tp % kv):
        valid = [t for t in range(1, heads + 1) if heads % t == 0 and (kv % t == 0 or t % kv == 0)]
        raise TsizeError(f"tp {tp} cannot split {row['model']}'s {heads} heads and {kv} KV heads; "
                         f"valid tp: {', '.join(map(str, valid))}")
    return row


def json_safe(row: dict[str, Any]) -> dict[str, Any]:
    """NaN and infinity become null, the JSON way."""
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()}


def fleet_options(*, path: str | Path | None = None, **source) -> "pl.DataFrame":
    """Best option per target, GPU type and count (``source``: sweep or sql, models, tokens)."""
    from tsize import fleet, store

    return store.query(fleet.options_sql(fleet.source_sql(**source)), path=path)


def fleets(*, deadline_days: float, path: str | Path | None = None, **source) -> "pl.DataFrame":
    """Smallest fleet per target and GPU type that meets the deadline."""
    from tsize import fleet, store

    if not (isinstance(deadline_days, (int, float)) and math.isfinite(deadline_days) and deadline_days > 0):
        raise TsizeError(f"deadline_days {deadline_days!r} is out of range; valid: > 0")
    return store.query(fleet.fleet_sql(fleet.source_sql(**source), deadline_s=deadline_days * 86400.0), path=path)


def serving_options(*, path: str | Path | None = None, **source) -> "pl.DataFrame":
    """Serving points of a sweep (or query) with cost per output token, TPOT and a Pareto flag per model and
    context length (``source``: sweep or sql, models)."""
    from tsize import fleet, store

    return store.query(fleet.serving_sql(fleet.source_sql(**source)), path=path)
