"""The Python API for one configuration: ``size(model, **inputs) -> dict``.

A single point is a grid whose axes all have length one, so this path runs
exactly the code the sweeps run.
"""

from __future__ import annotations

import contextlib
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


def default_workers() -> int:
    """The cores this process may run on."""
    import os

    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def sweep(spec: Any, *, db: str | Path | None = None, workers: int | None = None, ray: str | bool | None = None,
          resume: bool = False, format: str = "duckdb", output: str | Path | None = None,
          shard_points: int | None = None, chunk_points: int | None = None, progress: bool | None = None,
          wait_s: float = 30.0) -> dict[str, Any]:
    """Evaluate a sweep spec (path, dict or ``Spec``) on ``workers`` local processes (default: every core; 1 into
    DuckDB on a machine of 2 cores or fewer) or on Ray (``ray``: True for a local instance, ``"auto"`` or an
    address for a cluster).

    ``format="duckdb"`` (default) ends in the DuckDB file ``db``: one worker evaluates in this process as
    always; more workers (or Ray, or ``resume``) write Parquet parts to a staging directory (``output``, else
    next to the file, removed when ingested) that the store then ingests. ``format="parquet"`` keeps the
    hive-partitioned dataset in ``output`` (``tsize query --db DIR`` reads it). ``resume`` computes only the
    shards missing from an interrupted run.
    """
    import re
    import shutil

    from tsize import shards, store
    from tsize.spec import Spec, load

    if workers is None:
        # Into DuckDB, one process already keeps two cores busy (evaluation overlapped with the insert); on two
        # cores, two workers measured half as fast (README, "Speed and memory"): they add Parquet encode/decode.
        workers = default_workers() if format == "parquet" or ray or default_workers() > 2 else 1
    workers = shards.check_workers(workers)
    if format not in ("duckdb", "parquet"):
        raise TsizeError(f"--format {format!r} is not a sweep format; valid: duckdb, parquet")
    if format == "parquet" and output is None:
        raise TsizeError("--format parquet needs --output DIR (the dataset directory)")
    shard_points = shards.SHARD_POINTS if shard_points is None else shard_points
    chunk_points = store.CHUNK_POINTS if chunk_points is None else chunk_points
    loaded = spec if isinstance(spec, Spec) else load(spec)
    grid = loaded.grid()
    n_shards = math.ceil(grid.size / max(1, shard_points))
    if format == "duckdb" and not resume and not ray and output is None and min(workers, n_shards) == 1:
        return store.write(loaded, path=db, chunk_points=chunk_points, progress=progress, wait_s=wait_s)
    options = dict(workers=workers, ray=ray, resume=resume, shard_points=shard_points, chunk_points=chunk_points)
    if format == "parquet":
        return shards.run(loaded, output, progress=progress, **options)
    owned = output is None
    if owned:
        path = store.db_path(db)
        staging = path.with_name(path.name + ".parts") / re.sub(r"[^A-Za-z0-9._-]", "_", loaded.name)
    else:
        staging = Path(output)
    job = shards.Job(loaded, staging, owned=owned, **options)
    try:
        result = store.write(loaded, path=db, progress=progress, wait_s=wait_s, parts=job.parts(progress=False))
    finally:
        job.close()
    if owned:
        shutil.rmtree(staging, ignore_errors=True)
        with contextlib.suppress(OSError):
            staging.parent.rmdir()
    return {**result, "worker_peak_rss_mib": job.stats["worker_peak_rss_mib"], "shards": job.stats["shards"]}


def query(sql: str, *, path: str | Path | None = None, wait_s: float = 30.0) -> "pl.DataFrame":
    """Run read-only SQL against the DuckDB store, or against a sweep's Parquet dataset when ``path`` is one."""
    from tsize import shards, store

    if shards.is_dataset(path):
        return shards.query(sql, path)
    return store.query(sql, path=path, wait_s=wait_s)
