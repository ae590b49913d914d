"""The DuckDB store: sweeps written atomically, queried read-only.

Layout. Each output is stored once per combination of the axes it depends
on (its tier, ``registry.TIERS``), in its tier's table; ``results`` is a view
that joins the tiers back into one row per grid point, with the columns of
the long-form frame (inputs, then every output). Keys are row numbers within
a tier's sub-grid, computed from the grid, so no join key is ever looked up.

* ``sweeps``: one row per stored sweep (name, spec text, catalog versions,
  tsize version, time, point count).
* ``models``, ``gpus``, ``steps``, ``runs``, ``points``: the tiers.
* ``results``: the view users query;
* ``fleet_options``: per sweep, model, tokens, GPU type and count, the cheapest layout that fits, with
  a ``pareto`` flag (``tsize.fleet``).

Writes. A sweep's rows are inserted under a new ``sweep_id`` that only
becomes visible when one short transaction replaces the ``sweeps`` row of
the same name (see :func:`write`). An interrupted write (Ctrl-C, kill, full
disk) never reaches that commit, so earlier results stay intact and the file
readable; its invisible rows are removed by the next write. DuckDB lets one
process write a file at a time; a second writer waits up to ``wait_s`` and
then fails with a clear message.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa

from tsize import catalog
from tsize.errors import TsizeError
from tsize import frames
from tsize.frames import CHUNK_POINTS
from tsize.grid import Box, Grid, column_kind
from tsize.registry import INPUT_NAMES, MODEL_ATTRIBUTES, PARENTS, TIERS, frame_columns, home_tier, tier_outputs
from tsize.spec import Spec
from tsize.version import __version__

DEFAULT_DB = Path("outputs") / "tsize.duckdb"
#: DuckDB buffer-manager cap; big transactions spill to disk instead of growing RSS.
MEMORY_LIMIT = "256MB"

_SQL = {"int64": "BIGINT", "float64": "DOUBLE", "bool": "BOOLEAN", "label": "VARCHAR", "int": "INTEGER",
        "float": "DOUBLE"}
_KEY = {tier: f"{tier[:-1]}_key" for tier in TIERS if tier != "points"}


def db_path(path: str | Path | None = None) -> Path:
    """``path``, else ``$TSIZE_DB``, else ``outputs/tsize.duckdb``."""
    return Path(path or os.environ.get("TSIZE_DB") or DEFAULT_DB)


def _home_columns(tier: str) -> list[tuple[str, str]]:
    """The input columns (and model attributes) whose values a tier's table holds."""
    names = [n for n in INPUT_NAMES if home_tier(n) == tier]
    if "model" in names:
        names += MODEL_ATTRIBUTES
    return [(n, _SQL[column_kind(n)]) for n in names]


def _stored(tier: str) -> tuple:
    return tuple(o for o in tier_outputs(tier) if o.stored)


def table_columns(tier: str) -> list[tuple[str, str]]:
    """Columns of one tier's table, in order: sweep id, keys, input values, stored outputs."""
    keys = ([_KEY[tier]] if tier in _KEY else []) + [_KEY[p] for p in PARENTS[tier]]
    return ([("sweep_id", "INTEGER")] + [(k, "INTEGER") for k in keys] + _home_columns(tier)
            + [(o.name, _SQL[o.dtype]) for o in _stored(tier)])


_NAN = "'NaN'::DOUBLE"
#: Outputs the ``results`` view computes (``registry.Output.stored`` false), in order; names starting with
#: ``_`` are intermediate. Each mirrors ``evaluate._times`` operation by operation, so the view equals the
#: frame exactly (tests/test_store.py).
DERIVED: tuple[tuple[str, str], ...] = (
    ("micro_batches", "CASE WHEN global_batch_size > 0 THEN global_batch_size / (data_parallel * batch_size) "
                      "ELSE grad_accum::DOUBLE END"),
    ("batch_divides", "global_batch_size <= 0 OR (coalesce(isfinite(micro_batches), false) AND micro_batches >= 1 "
                      "AND micro_batches = floor(micro_batches))"),
    ("interleave_divides", "interleave <= 1 OR n_layer % (pp * interleave) = 0"),
    ("_nan", f"CASE WHEN batch_divides AND interleave_divides THEN 0.0 ELSE {_NAN} END"),
    ("_m_ok", "micro_batches + _nan"),
    ("_lag", "(pp::DOUBLE - 1) / interleave"),
    ("_t_mb", "stage_compute_time_s + stage_tp_comm_time_s + stage_pp_comm_time_s"),
    ("compute_time_s", "_m_ok * stage_compute_time_s"),
    ("tp_comm_time_s", "_m_ok * stage_tp_comm_time_s"),
    ("pp_comm_time_s", "_m_ok * stage_pp_comm_time_s"),
    ("pp_bubble_time_s", "_lag * _t_mb + _nan"),
    ("step_time_s", "(_m_ok + _lag) * _t_mb + dp_comm_exposed_time_s + optimizer_time_s"),
    ("pp_bubble_fraction", "(pp::DOUBLE - 1) / (interleave * micro_batches) + _nan"),
    ("_inv", "1.0 / step_time_s"),
    ("_per_gpu", "micro_batches * data_parallel / (n_gpus * peak_flops_per_s)"),
    ("_sequences_per_gpu", "micro_batches * data_parallel * batch_size / n_gpus"),
    ("predicted_mfu", "_inv * (flops_iteration * _per_gpu)"),
    ("predicted_hfu", "_inv * ((flops_iteration + flops_recompute) * _per_gpu)"),
    ("tokens_per_s_per_gpu", "_sequences_per_gpu * seq_len * _inv"),
    ("_given", "coalesce(isfinite(assumed_mfu), false)"),
    ("train_time_s", "CASE WHEN _given THEN train_hardware_flops / (n_gpus * peak_flops_per_s * assumed_mfu) "
                     "ELSE tokens / (_sequences_per_gpu * n_gpus * seq_len) * step_time_s END"),
    ("gpu_time_s", "train_time_s * n_gpus"),
    ("cost_usd", "gpu_time_s / 3600.0 * gpu_cloud_usd_per_hour"),
    ("energy_j", "gpu_tdp_w * n_gpus * train_time_s * pue"),
    ("energy_usd", "energy_j / 3600000.0 * usd_per_kwh"),
    ("train_mfu", "CASE WHEN _given THEN assumed_mfu * train_flops / train_hardware_flops ELSE predicted_mfu END"),
    ("train_hfu", "CASE WHEN _given THEN assumed_mfu ELSE predicted_hfu END"),
)


_SWEEPS = """CREATE TABLE IF NOT EXISTS sweeps (
    sweep_id INTEGER PRIMARY KEY, name VARCHAR UNIQUE NOT NULL, description VARCHAR, spec_path VARCHAR,
    spec VARCHAR, axes VARCHAR, catalogs VARCHAR, tsize_version VARCHAR, created_at TIMESTAMP,
    points BIGINT, seconds DOUBLE)"""


def _schema_sql() -> list[str]:
    statements = [_SWEEPS]
    for tier in TIERS:
        cols = ", ".join(f"{name} {kind}" for name, kind in table_columns(tier))
        statements.append(f"CREATE TABLE IF NOT EXISTS {tier} ({cols})")
    owner = {}
    for tier in TIERS:
        for name, _ in table_columns(tier)[1:]:
            owner.setdefault(name, tier)
    derived = dict(DERIVED)
    stored = [c for c in frame_columns() if c not in derived]
    select = ",\n  ".join(f"{owner[c]}.{c}" for c in stored)
    joins, queue = [], ["points"]
    while queue:
        child = queue.pop(0)
        for parent in PARENTS[child]:
            key = _KEY[parent]
            joins.append(f"JOIN {parent} ON {parent}.sweep_id = points.sweep_id AND {parent}.{key} = {child}.{key}")
            queue.append(parent)
    relation = ("SELECT sweeps.name AS sweep, points.sweep_id,\n  " + select
                + "\nFROM points\nJOIN sweeps ON sweeps.sweep_id = points.sweep_id\n" + "\n".join(joins))
    for name, expression in DERIVED:  # one layer per derived column: later ones read earlier ones
        relation = f"SELECT *, {expression} AS {name} FROM (\n{relation}\n)"
    statements.append("CREATE OR REPLACE VIEW results AS\nSELECT sweep, sweep_id,\n  "
                      + ",\n  ".join(frame_columns()) + f"\nFROM (\n{relation}\n)")
    from tsize.fleet import options_sql

    statements.append("CREATE OR REPLACE VIEW fleet_options AS" + options_sql("results", by=("sweep", "model", "tokens")))
    return statements


_LOCK = re.compile(r"lock", re.IGNORECASE)


def connect(path: str | Path | None = None, *, read_only: bool = False, wait_s: float = 30.0):
    """A DuckDB connection; waits while another process holds the file, then fails with one clear line."""
    path = db_path(path)
    if read_only and not path.exists():
        raise TsizeError(f"no results database at {path}; run 'tsize sweep SPEC' first (or give --db)")
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + wait_s
    while True:
        try:
            con = duckdb.connect(str(path), read_only=read_only)
            break
        except duckdb.IOException as exc:
            if not _LOCK.search(str(exc)):
                raise TsizeError(f"cannot open {path}: {str(exc).splitlines()[0]}") from None
            if time.monotonic() > deadline:
                holder = re.search(r"PID (\d+)", str(exc))
                who = f" (process {holder.group(1)})" if holder else ""
                raise TsizeError(f"{path} is being written by another tsize process{who}; "
                                 f"waited {wait_s:g} s - try again when it finishes") from None
            time.sleep(0.2)
        except duckdb.Error as exc:
            raise TsizeError(f"cannot open {path}: {str(exc).splitlines()[0]}") from None
    con.execute("SET preserve_insertion_order = false")
    con.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
    return con


def view_sql() -> list[str]:
    """The statements that create the ``results`` and ``fleet_options`` views over the tier tables (also used
    over a Parquet dataset's tier views, ``tsize.shards.connect``)."""
    return [s for s in _schema_sql() if s.startswith("CREATE OR REPLACE VIEW")]


def schema_fingerprint() -> str:
    """A short hash of the tables and views this version of tsize writes."""
    import hashlib

    return hashlib.sha256("\n".join(_schema_sql()).encode()).hexdigest()[:16]


def ensure_schema(con, path: Path | str = "the database") -> None:
    """Create the tables and views, or check that an existing file has exactly this layout."""
    tables = {row[0] for row in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    found = (con.execute("SELECT fingerprint, tsize_version FROM tsize_schema").fetchall()
             if "tsize_schema" in tables else [])
    if (found and found[0][0] != schema_fingerprint()) or (not found and tables):
        writer = f"tsize {found[0][1]}" if found else "another program or an earlier tsize"
        raise TsizeError(f"{path} holds results in another layout (written by {writer}); "
                         f"write to a new --db file, or move this one away")
    con.execute("CREATE TABLE IF NOT EXISTS tsize_schema (fingerprint VARCHAR, tsize_version VARCHAR)")
    for statement in _schema_sql():
        con.execute(statement)
    if not found:
        con.execute("INSERT INTO tsize_schema VALUES (?, ?)", [schema_fingerprint(), __version__])


# ---------------------------------------------------------------------------
# writing


def _tier_boxes(grid: Grid, tier: str, chunk_points: int) -> Iterator[Box]:
    return grid.boxes(chunk_points) if tier == "points" else grid.sub_boxes(tier, chunk_points)


def _arrow_chunk(grid: Grid, tier: str, box: Box) -> pa.Table:
    """One box of a tier's table, as Arrow (built by ``frames.table``, the one builder of columns)."""
    return frames.table(grid, box, [(name, frames.NUMPY[kind]) for name, kind in table_columns(tier)[1:]])


def fit_count(grid: Grid, box: Box, chunk: pa.Table) -> int:
    """Points of a chunk that fit: ``fits`` where mode = train, ``serving_fits`` where mode = serve."""
    train = chunk.column("fits").to_numpy(zero_copy_only=False)
    if "serve" not in grid.values["mode"]:
        return int(np.count_nonzero(train))
    shape = tuple(b - a for a, b in box)
    serve = (np.asarray(grid.values["mode"]) == "serve")[grid.column("mode", box)]
    serving = grid.evaluate(box)["serving_fits"]
    serve, serving = (np.broadcast_to(v, shape).reshape(-1) for v in (serve, serving))
    return int(np.count_nonzero(np.where(serve, serving, train)))


def write(spec: Spec, *, path: str | Path | None = None, chunk_points: int = CHUNK_POINTS,
          progress: bool | None = None, wait_s: float = 30.0, parts: Iterable[Path] | None = None) -> dict[str, Any]:
    """Evaluate ``spec`` and store it, replacing any earlier sweep of the same name atomically.

    Rows are written under a fresh ``sweep_id`` that no ``sweeps`` row names
    yet, so ``results`` does not show them; one short transaction then
    swaps the ``sweeps`` row. Until that commit the earlier sweep is what
    readers see, whatever happens to this process. Rows of an earlier,
    interrupted write are removed first. (Writing in one big transaction
    would also be atomic, but DuckDB keeps uncommitted rows in memory.)

    ``parts``: Parquet files that hold the ``points`` table (a sharded sweep's parts, ``tsize.shards``,
    yielded as workers finish them), ingested instead of evaluating the points here.
    """
    from tsize.frames import Progress

    grid = spec.grid()
    for tier in TIERS:
        if grid.tier_size(tier) >= 2**31:
            raise TsizeError(f"{spec.path}: the {tier} tier has {grid.tier_size(tier):,} rows; the store keys "
                             f"tiers with 32-bit integers (at most {2**31 - 1:,})")
    started = time.perf_counter()
    con = connect(path, wait_s=wait_s)
    bar = Progress(grid.size, f"sweep {spec.name}", enabled=progress)
    try:
        ensure_schema(con, db_path(path))
        _remove_orphans(con)
        sweep_id = con.execute("SELECT coalesce(max(sweep_id), 0) + 1 FROM sweeps").fetchall()[0][0]
        fits = 0
        for tier in TIERS:
            cols = ", ".join(c for c, _ in table_columns(tier)[1:])
            if tier == "points" and parts is not None:
                fits = _ingest(con, f"INSERT INTO points SELECT {sweep_id}, {cols} FROM chunk", parts, bar)
                continue
            writer = _Writer(con, f"INSERT INTO {tier} SELECT {sweep_id}, {cols} FROM chunk")
            for box in _tier_boxes(grid, tier, chunk_points):
                chunk = _arrow_chunk(grid, tier, box)
                writer.put(chunk)
                if tier == "points":
                    fits += fit_count(grid, box, chunk)
                    bar.advance(chunk.num_rows)
            writer.close()
        seconds = time.perf_counter() - started
        axes = {name: [str(v) for v in grid.labels(name)] for name in INPUT_NAMES}
        con.execute("BEGIN TRANSACTION")
        con.execute("DELETE FROM sweeps WHERE name = ?", [spec.name])
        con.execute(
            "INSERT INTO sweeps VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [sweep_id, spec.name, spec.description, spec.path, spec.text, json.dumps(axes),
             json.dumps(catalog.versions()), __version__, dt.datetime.now(dt.timezone.utc).replace(tzinfo=None),
             grid.size, seconds],
        )
        con.execute("COMMIT")
        _remove_orphans(con)
    finally:
        bar.close()
        con.close()
    return {"sweep": spec.name, "sweep_id": sweep_id, "points": grid.size, "fits": fits,
            "seconds": time.perf_counter() - started, "db": str(db_path(path))}


def _ingest(con, sql: str, parts: Iterable[Path], bar) -> int:
    """Insert Parquet parts, row group by row group, as each part lands; return the count of fitting points
    (each part's footer holds its own, see ``tsize.shards``).

    Read by pyarrow and handed to DuckDB as Arrow, so the connection needs no access to outside files.
    """
    import pyarrow.parquet as pq

    writer, fits = _Writer(con, sql), 0
    for part in parts:
        with pq.ParquetFile(part) as source:
            fits += json.loads(source.metadata.metadata[b"tsize"])["fits"]  # counted by the worker (fit_count)
            for group in range(source.num_row_groups):
                chunk = source.read_row_group(group)
                writer.put(chunk)
                bar.advance(chunk.num_rows)
    writer.close()
    return fits


def _remove_orphans(con) -> None:
    """Delete tier rows no ``sweeps`` row names: an interrupted write's, or a replaced sweep's."""
    for tier in TIERS:
        con.execute(f"DELETE FROM {tier} WHERE sweep_id NOT IN (SELECT sweep_id FROM sweeps)")


class _Writer:
    """Inserts Arrow chunks on a background thread, so evaluation overlaps DuckDB's ingest."""

    def __init__(self, con, sql: str):
        self.con, self.sql = con, sql
        self.thread: threading.Thread | None = None
        self.error: BaseException | None = None

    def _insert(self, chunk: pa.Table) -> None:
        try:
            self.con.register("chunk", chunk)
            self.con.execute(self.sql)
            self.con.unregister("chunk")
        except BaseException as exc:  # re-raised in the writing thread
            self.error = exc

    def put(self, chunk: pa.Table) -> None:
        self.close()
        self.thread = threading.Thread(target=self._insert, args=(chunk,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        if self.thread is not None:
            self.thread.join()
            self.thread = None
        if self.error is not None:
            error, self.error = self.error, None
            raise error


# ---------------------------------------------------------------------------
# reading


def query(sql: str, *, path: str | Path | None = None, wait_s: float = 30.0):
    """Run SQL read-only against the store; returns a Polars frame. Statements that write fail."""
    con = connect(path, read_only=True, wait_s=wait_s)
    try:
        relation = con.sql(sql)
        return pl.DataFrame() if relation is None else pl.from_arrow(relation.to_arrow_table())
    except duckdb.Error as exc:
        raise TsizeError(f"query failed: {str(exc).splitlines()[0]}") from None
    finally:
        con.close()


def sweeps(path: str | Path | None = None):
    return query("SELECT sweep_id, name, points, seconds, created_at, tsize_version FROM sweeps ORDER BY sweep_id",
                 path=path)
