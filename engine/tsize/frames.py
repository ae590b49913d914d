"""Evaluate a sweep's grid into long-form Polars frames, chunk by chunk.

* :func:`frame` returns one frame for the whole grid (one row per point:
  input columns, then every output of the registry).
* :func:`frames` streams the same rows in chunks of bounded size, for grids
  too large for memory.
* :func:`build` is the one builder of columns over a box: the frames above,
  the store's tier tables (``store._arrow_chunk``) and the Parquet parts of
  sharded sweeps (``tsize.shards``) all call it, through :func:`table` for Arrow.

Evaluation broadcasts: each output is computed once at its minimal shape
(per model, per step, ...) and copied into pre-allocated columns.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from tsize.grid import LABELS, Box, Grid, column_kind
from tsize.registry import INPUT_NAMES, MODEL_ATTRIBUTES, OUTPUT_NAMES, OUTPUTS, TIERS, frame_columns
from tsize.spec import Spec, load

CHUNK_POINTS = 1 << 18

#: numpy dtype per column kind: ``grid.column_kind`` kinds, ``registry`` output dtypes and the store's SQL
#: types. Labels are int32 codes into ``Grid.categories`` (Arrow dictionary indices).
NUMPY = {"int64": np.int64, "float64": np.float64, "bool": np.bool_, "label": np.int32, "int": np.int64,
         "float": np.float64, "INTEGER": np.int32, "BIGINT": np.int64, "DOUBLE": np.float64,
         "BOOLEAN": np.bool_, "VARCHAR": np.int32}


def columns() -> list[tuple[str, Any]]:
    """Column names and numpy dtypes of a long-form frame, in order (``registry.frame_columns``)."""
    kinds = {n: NUMPY[column_kind(n)] for n in INPUT_NAMES + MODEL_ATTRIBUTES}
    kinds.update({o.name: NUMPY[o.dtype] for o in OUTPUTS})
    return [(name, kinds[name]) for name in frame_columns()]


def box_size(box: Box) -> int:
    return math.prod(b - a for a, b in box)


def _source(grid: Grid, box: Box, name: str, values: dict[str, np.ndarray]) -> np.ndarray:
    """One column over a box at its minimal broadcast shape: an output, a tier key (``<tier>_key``:
    the row number in that tier's sub-grid), or an input column / model attribute."""
    if name in values:
        return values[name]
    if name.endswith("_key") and f"{name[:-4]}s" in TIERS:
        return grid.key(f"{name[:-4]}s", box)
    return grid.frame_column(name, box)


#: Shortest run of consecutive elements one step of :func:`expand` copies [elements]: numpy's broadcasting copy
#: costs about one call of its inner loop per run, so a source that varies along a short trailing axis (ZeRO
#: stage, pp) and repeats over longer ones would cost a call per two or four elements.
MIN_RUN = 1024


def expand(target: np.ndarray, shape: tuple[int, ...], source: np.ndarray) -> None:
    """Write ``source`` broadcast over ``shape`` into the flat ``target`` (row-major, cast to its dtype).

    The same values as ``np.copyto(target.reshape(shape), source, casting="unsafe")``. Where the source's
    innermost run of elements is short, it is first broadcast over the trailing axes that hold at least
    :data:`MIN_RUN` elements (a tile as large as the source times those axes), and the tile is copied in runs
    of that length.
    """
    source = np.asarray(source)
    source = source.reshape((1,) * (len(shape) - source.ndim) + source.shape)
    keep = [i for i, n in enumerate(shape) if n > 1]
    big = tuple(shape[i] for i in keep)
    small = tuple(source.shape[i] for i in keep)
    source = source.reshape(small)
    run, varies = 1, None
    for n, m in zip(reversed(big), reversed(small)):  # the innermost stretch of axes that all vary or all repeat
        if varies is not None and (m > 1) != varies:
            break
        varies = m > 1
        run *= n
    k, inner = len(big), 1
    while k > 0 and inner < MIN_RUN:
        k -= 1
        inner *= big[k]
    tile_size = math.prod(small[:k]) * inner
    if run >= MIN_RUN or inner < MIN_RUN or 2 * tile_size > target.size:
        np.copyto(target.reshape(big), source, casting="unsafe")
        return
    tile = np.empty(small[:k] + big[k:], dtype=target.dtype)
    np.copyto(tile, source, casting="unsafe")
    np.copyto(target.reshape(big[:k] + (inner,)), tile.reshape(small[:k] + (inner,)))


def build(grid: Grid, box: Box, names: Sequence[tuple[str, Any]],
          out: dict[str, np.ndarray] | None = None, values: dict[str, np.ndarray] | None = None
          ) -> dict[str, np.ndarray]:
    """THE builder of long-form columns: each ``(name, dtype)`` flattened over one box (row-major).

    Names are outputs, inputs, model attributes or tier keys; labels come as int32 codes. With
    ``out`` (arrays of at least the box's size) the values are written into those buffers. ``values``:
    ``grid.evaluate(box)`` where the caller has it already (else evaluated here when an output is named).
    """
    shape = tuple(b - a for a, b in box)
    n = math.prod(shape)
    if values is None:
        values = grid.evaluate(box) if any(name in OUTPUT_NAMES for name, _ in names) else {}
    result = {}
    for name, dtype in names:
        target = out[name][:n] if out is not None else np.empty(n, dtype=dtype)
        expand(target, shape, _source(grid, box, name, values))
        result[name] = target
    return result


def to_arrow(grid: Grid, arrays: dict[str, np.ndarray], n: int, names: Sequence[str] | None = None) -> pa.Table:
    """An Arrow table over the first ``n`` rows of ``arrays`` (labels as dictionary arrays, numbers zero-copy)."""
    data = {}
    for name in names or list(arrays):
        values = arrays[name][:n]
        if name in LABELS:
            index = pa.array(values.astype(np.int32, copy=False))
            data[name] = pa.DictionaryArray.from_arrays(index, pa.array(grid.categories(name), pa.string()))
        else:
            data[name] = pa.array(values)
    return pa.table(data)


def table(grid: Grid, box: Box, names: Sequence[tuple[str, Any]],
          values: dict[str, np.ndarray] | None = None) -> pa.Table:
    """One box of the named columns as Arrow (a tier's table chunk, a Parquet part's row group)."""
    arrays = build(grid, box, names, values=values)
    return to_arrow(grid, arrays, box_size(box), [name for name, _ in names])


def fill(grid: Grid, box: Box, out: dict[str, np.ndarray]) -> int:
    """Write every column of one box into ``out`` (arrays of at least its size); return the row count."""
    build(grid, box, columns(), out)
    return box_size(box)


def to_polars(grid: Grid, arrays: dict[str, np.ndarray], n: int) -> pl.DataFrame:
    """A Polars frame over the first ``n`` rows of ``arrays`` (labels as Categoricals)."""
    return pl.from_arrow(to_arrow(grid, arrays, n, [name for name, _ in columns()]))


def _grid(source: str | Path | dict | Spec | Grid) -> Grid:
    if isinstance(source, Grid):
        return source
    spec = source if isinstance(source, Spec) else load(source)
    return spec.grid()


def frame(source: str | Path | dict | Spec | Grid, *, chunk_points: int = CHUNK_POINTS) -> pl.DataFrame:
    """The whole grid as one long-form frame."""
    grid = _grid(source)
    arrays = {name: np.empty(grid.size, dtype=dtype) for name, dtype in columns()}
    start = 0
    for box in grid.boxes(chunk_points):
        views = {name: a[start:] for name, a in arrays.items()}
        start += fill(grid, box, views)
    return to_polars(grid, arrays, grid.size)


def frames(source: str | Path | dict | Spec | Grid, *, chunk_points: int = CHUNK_POINTS) -> Iterator[pl.DataFrame]:
    """The grid as a stream of long-form frames of at most ``chunk_points`` rows each, in row order."""
    grid = _grid(source)
    for box in grid.boxes(chunk_points):
        n = box_size(box)
        arrays = {name: np.empty(n, dtype=dtype) for name, dtype in columns()}
        fill(grid, box, arrays)
        yield to_polars(grid, arrays, n)


class Progress:
    """A progress bar (points, points/s, time left) on a terminal; silent otherwise."""

    def __init__(self, total: int, label: str, enabled: bool | None = None):
        import sys

        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.total, self.done, self.started = total, 0, time.perf_counter()
        self._bar = None
        if self.enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
            from rich.progress import Progress as Bar

            self._bar = Bar(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[rate]}"), TimeRemainingColumn(), transient=True)
            self._task = self._bar.add_task(label, total=total, rate="")
            self._bar.start()

    def advance(self, n: int) -> None:
        self.done += n
        if self._bar is not None:
            rate = self.done / max(time.perf_counter() - self.started, 1e-9)
            self._bar.update(self._task, completed=self.done, rate=f"{rate / 1e6:,.2f} M points/s")

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
