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

Creation. A new store (no file, an empty one, or one whose creation was
interrupted) is built complete, schema and version record, in a temporary
file that is then linked into place (:func:`open_for_write`): a kill at any
moment leaves no file or a valid, empty store. A file tsize did not write,
or wrote in another layout, is refused untouched.

Reading. :func:`query` runs one SELECT in DuckDB's sandbox (:data:`SANDBOX`):
read-only, no other file, no ATTACH, no extensions, settings locked.
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
#: Most points one sweep may store (2^40, about 10^12: far beyond a disk, far below int64 keys).
MAX_POINTS = 2**40
#: Longest wait for another writer [s] (``--wait``): a day.
MAX_WAIT_S = 86400.0
#: DuckDB buffer-manager cap; big transactions spill to disk instead of growing RSS.
MEMORY_LIMIT = "256MB"

#: Every integer column is 64-bit (BIGINT): inputs are bounded by the registry far below 2^63.
_SQL = {"int64": "BIGINT", "float64": "DOUBLE", "bool": "BOOLEAN", "label": "VARCHAR", "int": "BIGINT",
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
    return ([("sweep_id", "BIGINT")] + [(k, "BIGINT") for k in keys] + _home_columns(tier)
            + [(o.name, _SQL[o.dtype]) for o in _stored(tier)])


_NAN = "'NaN'::DOUBLE"
#: Outputs the ``results`` view computes (``registry.Output.stored`` false), in order; names starting with
#: ``_`` are intermediate. Each mirrors ``evaluate._points`` (``memory.required``, ``memory.share``) and
#: ``evaluate._times`` operation by operation, so the view equals the frame exactly (tests/test_store.py).
DERIVED: tuple[tuple[str, str], ...] = (
    ("memory_required_bytes", "memory_per_gpu_bytes * (1 + allocator_slack) + overhead_bytes"),
    ("memory_share", "memory_required_bytes / gpu_memory_bytes"),
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
    ("train_time_s", "CASE WHEN _given THEN train_executed_flops / (n_gpus * peak_flops_per_s * assumed_mfu) "
                     "ELSE tokens / (_sequences_per_gpu * n_gpus * seq_len) * step_time_s END"),
    ("gpu_time_s", "train_time_s * n_gpus"),
    ("cost_usd", "gpu_time_s / 3600.0 * gpu_cloud_usd_per_hour"),
    ("energy_j", "gpu_tdp_w * n_gpus * train_time_s * pue"),
    ("energy_usd", "energy_j / 3600000.0 * usd_per_kwh"),
    ("train_mfu", "CASE WHEN _given THEN assumed_mfu * train_flops / train_executed_flops ELSE predicted_mfu END"),
    ("train_hfu", "CASE WHEN _given THEN assumed_mfu ELSE predicted_hfu END"),
)


_SWEEPS = """CREATE TABLE IF NOT EXISTS sweeps (
    sweep_id BIGINT PRIMARY KEY, name VARCHAR UNIQUE NOT NULL, description VARCHAR, spec_path VARCHAR,
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


#: DuckDB settings of a ``tsize query`` connection: nothing outside the store file is read or written
#: (no files, no ATTACH, no extensions installed or loaded), and no setting can be changed afterwards.
SANDBOX = {"enable_external_access": False, "autoinstall_known_extensions": False,
           "autoload_known_extensions": False, "allow_community_extensions": False, "lock_configuration": True}


def connect(path: str | Path | None = None, *, read_only: bool = False, wait_s: float = 30.0,
            sandbox: bool = False):
    """A DuckDB connection; waits while another process holds the file, then fails with one clear line.

    ``sandbox=True`` (read-only): DuckDB locked down by :data:`SANDBOX`, for SQL a user typed.
    """
    path = db_path(path)
    _check_wait(wait_s)
    if read_only:
        if not path.exists():
            raise TsizeError(f"no results database at {path}; run 'tsize sweep SPEC' first (or give --db)")
        if path.is_dir() or not path.is_file():
            raise TsizeError(f"{path} is not a results database (it is a directory or a device); give --db FILE")
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
    config = {"memory_limit": MEMORY_LIMIT, **(SANDBOX if sandbox else {})}
    deadline = time.monotonic() + wait_s
    while True:
        try:
            con = duckdb.connect(str(path), read_only=read_only, config=dict(config))
            break
        except duckdb.IOException as exc:
            if not _LOCK.search(str(exc)):
                raise TsizeError(f"cannot open {path}: not a readable DuckDB file ({str(exc).splitlines()[0]}); "
                                 f"tsize leaves it alone: move it away or give another --db file") from None
            if time.monotonic() > deadline:
                holder = re.search(r"PID (\d+)", str(exc))
                who = f" (process {holder.group(1)})" if holder else ""
                raise TsizeError(f"{path} is being written by another tsize process{who}; "
                                 f"waited {wait_s:g} s - try again when it finishes") from None
            time.sleep(0.2)
        except duckdb.Error as exc:
            raise TsizeError(f"cannot open {path}: {str(exc).splitlines()[0]}") from None
    if not sandbox:
        con.execute("SET preserve_insertion_order = false")
    return con


def view_sql() -> list[str]:
    """The statements that create the ``results`` and ``fleet_options`` views over the tier tables (also used
    over a Parquet dataset's tier views, ``tsize.shards.connect``)."""
    return [s for s in _schema_sql() if s.startswith("CREATE OR REPLACE VIEW")]


def _check_wait(wait_s: float) -> None:
    if isinstance(wait_s, bool) or not isinstance(wait_s, (int, float)) or not 0 <= wait_s <= MAX_WAIT_S:
        raise TsizeError(f"--wait {wait_s!r} is out of range; valid: 0 to {MAX_WAIT_S:g} seconds")


def schema_fingerprint() -> str:
    """A short hash of the tables and views this version of tsize writes."""
    import hashlib

    return hashlib.sha256("\n".join(_schema_sql()).encode()).hexdigest()[:16]


#: Tables and views a tsize store holds (any version): a file holding only these and no sweep is half-made.
_TSIZE_NAMES = {"tsize_schema", "sweeps", "results", "fleet_options", *TIERS}


def _state(con) -> tuple[str, str]:
    """(state, detail) of an open file: "current", "new" (nothing stored: empty, or half-created by tsize),
    "older" (a tsize store in another layout; detail: the version) or "foreign" (detail: table names)."""
    names = {row[0] for row in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    if not names:
        return "new", ""
    foreign = sorted(names - _TSIZE_NAMES)
    if foreign:
        return "foreign", ", ".join(foreign[:5])
    found = (con.execute("SELECT fingerprint, tsize_version FROM tsize_schema").fetchall()
             if "tsize_schema" in names else [])
    if found and found[0][0] == schema_fingerprint():
        return "current", ""
    stored = con.execute("SELECT count(*) FROM sweeps").fetchall()[0][0] if "sweeps" in names else 0
    if not found and not stored:
        return "new", ""  # a creation that was interrupted before its version record: nothing to lose
    return "older", (found[0][1] if found else "an earlier version")


def ensure_schema(con, path: Path | str = "the database") -> None:
    """Check that an open file holds a tsize store of exactly this layout; one clear line otherwise."""
    state, detail = _state(con)
    if state == "current":
        return
    if state == "new":
        raise TsizeError(f"{path} holds no tsize results yet; write a sweep into it first (tsize sweep SPEC)")
    if state == "foreign":
        raise TsizeError(f"{path} is a DuckDB file with tables tsize did not write ({detail}); tsize leaves it "
                         f"alone: give another --db file")
    raise TsizeError(f"{path} holds results in another layout (written by tsize {detail}); keep it for that "
                     f"version and write to a new --db file, or move this one away")


def _create(path: Path) -> None:
    """Write a new, empty store to ``path``: schema and version record built in a temporary file that
    appears under ``path`` only when complete (a hard link, so a store another process created meanwhile
    is never replaced). A kill at any moment leaves either no file or a complete one."""
    _remove_stale_temporaries(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.creating")
    for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
        leftover.unlink(missing_ok=True)
    try:
        con = duckdb.connect(str(tmp), config={"memory_limit": MEMORY_LIMIT})
        try:
            con.execute("BEGIN TRANSACTION")
            con.execute("CREATE TABLE tsize_schema (fingerprint VARCHAR, tsize_version VARCHAR)")
            for statement in _schema_sql():
                con.execute(statement)
            con.execute("INSERT INTO tsize_schema VALUES (?, ?)", [schema_fingerprint(), __version__])
            con.execute("COMMIT")
            con.execute("CHECKPOINT")
        finally:
            con.close()
        _fsync(tmp)
        if path.exists():  # an empty or half-created file (checked by the caller): replace it
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)  # fails if another process created the store meanwhile: keep theirs
            except FileExistsError:
                pass
            except OSError:  # a file system without hard links
                if not path.exists():
                    os.replace(tmp, path)
        _fsync(path.parent)
    finally:
        for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
            leftover.unlink(missing_ok=True)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:  # directories cannot be fsynced on some systems
        pass
    finally:
        os.close(fd)


def _remove_stale_temporaries(path: Path) -> None:
    """Delete the temporary files of creations whose process is gone (killed mid-creation)."""
    for leftover in path.parent.glob(f".{path.name}.*.creating*"):
        pid = leftover.name[len(path.name) + 2:].split(".")[0]
        if pid.isdigit() and not _alive(int(pid)):
            leftover.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def open_for_write(path: str | Path | None = None, *, wait_s: float = 30.0):
    """A read-write connection to a store of this layout, creating the store (crash-safely) when the file
    is missing, empty, or holds nothing but an interrupted creation."""
    path = db_path(path)
    _check_wait(wait_s)
    if path.is_dir():
        raise TsizeError(f"--db {path} is a directory; give a file name (e.g. {path / 'tsize.duckdb'})")
    if path.exists() and not path.is_file():
        raise TsizeError(f"--db {path} is not a regular file (a device or a pipe); give a file name")
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(path)
    if not path.exists() or path.stat().st_size == 0:
        _create(path)
    con = connect(path, wait_s=wait_s)
    try:
        state, _ = _state(con)
        if state == "new":
            con.close()
            _create(path)
            con = connect(path, wait_s=wait_s)
        ensure_schema(con, path)
    except BaseException:
        con.close()
        raise
    return con


# ---------------------------------------------------------------------------
# writing


def _tier_boxes(grid: Grid, tier: str, chunk_points: int) -> Iterator[Box]:
    return grid.boxes(chunk_points) if tier == "points" else grid.sub_boxes(tier, chunk_points)


def _arrow_chunk(grid: Grid, tier: str, box: Box, values: dict[str, np.ndarray] | None = None) -> pa.Table:
    """One box of a tier's table, as Arrow (built by ``frames.table``, the one builder of columns)."""
    return frames.table(grid, box, [(name, frames.NUMPY[kind]) for name, kind in table_columns(tier)[1:]],
                        values=values)


def fit_count(grid: Grid, box: Box, chunk: pa.Table, values: dict[str, np.ndarray] | None = None) -> int:
    """Points of a chunk that fit: ``fits`` where mode = train, ``serving_fits`` where mode = serve.
    ``values``: ``grid.evaluate(box)``, the outputs the chunk was built from (else evaluated again)."""
    train = chunk.column("fits").to_numpy(zero_copy_only=False)
    if "serve" not in grid.values["mode"]:
        return int(np.count_nonzero(train))
    shape = tuple(b - a for a, b in box)
    serve = (np.asarray(grid.values["mode"]) == "serve")[grid.column("mode", box)]
    serving = (values if values is not None else grid.evaluate(box))["serving_fits"]
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

    if isinstance(chunk_points, bool) or not isinstance(chunk_points, int) or not 1 <= chunk_points <= 2**30:
        raise TsizeError(f"--chunk-points {chunk_points!r} is out of range; valid: 1 to {2**30}")
    grid = spec.grid()
    if grid.size > MAX_POINTS:
        raise TsizeError(f"{spec.path}: the grid has {grid.size:,} points; a sweep stores at most {MAX_POINTS:,}")
    started = time.perf_counter()
    con = open_for_write(path, wait_s=wait_s)
    bar = Progress(grid.size, f"sweep {spec.name}", enabled=progress)
    try:
        _remove_orphans(con)
        sweep_id = con.execute("SELECT coalesce(max(sweep_id), 0) + 1 FROM sweeps").fetchall()[0][0]
        fits = 0
        for tier in TIERS:
            cols = ", ".join(c for c, _ in table_columns(tier)[1:])
            if tier == "points" and parts is not None:
                fits = _ingest(con, f"INSERT INTO points SELECT {sweep_id}, {cols} FROM chunk", parts, bar)
                continue
            with _Writer(con, f"INSERT INTO {tier} SELECT {sweep_id}, {cols} FROM chunk") as writer:
                for box in _tier_boxes(grid, tier, chunk_points):
                    values = grid.evaluate(box) if tier == "points" else None  # once: the chunk and its fit count
                    chunk = _arrow_chunk(grid, tier, box, values)
                    writer.put(chunk)
                    if tier == "points":
                        fits += fit_count(grid, box, chunk, values)
                        bar.advance(chunk.num_rows)
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

    fits = 0
    with _Writer(con, sql) as writer:
        for part in parts:
            with pq.ParquetFile(part) as source:
                fits += json.loads(source.metadata.metadata[b"tsize"])["fits"]  # counted by the worker (fit_count)
                for group in range(source.num_row_groups):
                    chunk = source.read_row_group(group)
                    writer.put(chunk)
                    bar.advance(chunk.num_rows)
    return fits


def _remove_orphans(con) -> None:
    """Delete tier rows no ``sweeps`` row names: an interrupted write's, or a replaced sweep's."""
    for tier in TIERS:
        con.execute(f"DELETE FROM {tier} WHERE sweep_id NOT IN (SELECT sweep_id FROM sweeps)")


#: Chunks DuckDB ingests at once, each on its own thread and cursor (its own connection to the same database).
INSERT_THREADS = 2


class _Writer:
    """Inserts Arrow chunks on background threads, so evaluation overlaps DuckDB's ingest and up to
    :data:`INSERT_THREADS` chunks are ingested at once.

    Each INSERT commits on its own, as with one thread: the rows stay invisible until the sweep's ``sweeps`` row
    is committed (:func:`write`), and an interrupted write leaves only orphans the next write removes.
    """

    def __init__(self, con, sql: str, threads: int = INSERT_THREADS):
        self.sql = sql
        self.free = [con.cursor() for _ in range(threads)]
        self.busy: list[tuple[threading.Thread, Any]] = []
        self.error: BaseException | None = None

    def _insert(self, cursor, chunk: pa.Table) -> None:
        try:
            cursor.register("chunk", chunk)
            cursor.execute(self.sql)
            cursor.unregister("chunk")
        except BaseException as exc:  # re-raised in the writing thread
            self.error = exc

    def _wait_one(self) -> None:
        thread, cursor = self.busy.pop(0)
        thread.join()
        self.free.append(cursor)
        self._raise()

    def _raise(self) -> None:
        if self.error is not None:
            error, self.error = self.error, None
            self.close()
            raise error

    def put(self, chunk: pa.Table) -> None:
        self._raise()
        if not self.free:
            self._wait_one()
        cursor = self.free.pop()
        thread = threading.Thread(target=self._insert, args=(cursor, chunk), daemon=True)
        thread.start()
        self.busy.append((thread, cursor))

    def close(self) -> None:
        while self.busy:
            thread, cursor = self.busy.pop(0)
            thread.join()
            self.free.append(cursor)
        for cursor in self.free:
            cursor.close()
        self.free = []
        self._raise()

    def abort(self) -> None:
        """After a failure elsewhere: wait for the inserts in flight (their rows stay orphans, removed by the
        next write), close the cursors, and drop their errors (the failure being raised is the one to report)."""
        self.error = None
        try:
            self.close()
        except BaseException:
            pass

    def __enter__(self) -> _Writer:
        return self

    def __exit__(self, kind, error, traceback) -> None:
        """Close (raising an insert's error) when the block ended normally; :meth:`abort` when it raised."""
        if kind is None:
            self.close()
        else:
            self.abort()


# ---------------------------------------------------------------------------
# reading


#: Statement types ``tsize query`` runs: SELECT (with CTEs, windows, QUALIFY, DESCRIBE, SHOW, SUMMARIZE...)
#: and EXPLAIN. Anything else (ATTACH, COPY, EXPORT, SET, PRAGMA, CALL, CHECKPOINT, VACUUM, CREATE...) is refused.
QUERY_STATEMENTS = ("SELECT", "EXPLAIN")
#: DuckDB column types Polars reads and every output format writes; others become DuckDB's text for them.
_PLAIN_TYPES = {"boolean", "tinyint", "smallint", "integer", "bigint", "hugeint", "utinyint", "usmallint",
                "uinteger", "ubigint", "uhugeint", "float", "double", "decimal", "varchar", "uuid", "enum"}
_OPAQUE = re.compile(r"\b(UNION|INTERVAL|BIGNUM|BIT|VARIANT|GEOMETRY)\b")


def check_statement(con, sql: str) -> None:
    """Refuse anything but one SELECT or EXPLAIN statement (see ``QUERY_STATEMENTS``)."""
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as exc:
        raise TsizeError(f"query failed: {str(exc).splitlines()[0]}") from None
    if len(statements) != 1:
        raise TsizeError(f"give one SQL statement, got {len(statements)}")
    kind = statements[0].type.name
    if kind not in QUERY_STATEMENTS:
        words = statements[0].query.split(None, 1)
        typed = words[0].upper() if words and words[0].isalpha() else kind  # CHECKPOINT parses as a CALL
        raise TsizeError(f"tsize query runs read-only SELECT statements; got {typed} "
                         f"(valid: {', '.join(QUERY_STATEMENTS)}; tables: results, sweeps, fleet_options, ...)")


def _portable(relation, form: str):
    """``relation`` with the columns ``form`` cannot hold cast in DuckDB (never in Python).

    ``frame``/``parquet``: types Polars cannot import (UNION, INTERVAL, BIGNUM, BIT, VARIANT, anywhere in a
    nested type) become text. ``csv``/``table``: every column that is not a number, boolean or string becomes
    DuckDB's text for it (lists, structs, BLOBs, dates and infinities included). ``json``: one column,
    ``json``, holding each row as DuckDB's JSON object text (``to_json``), NaN and infinities as null.
    """
    def quoted(name: str) -> str:
        return '"' + name.replace('"', '""') + '"'

    if form == "json":
        fields = []
        for name, kind in zip(relation.columns, relation.types):
            q = quoted(name)
            value = f"CASE WHEN isfinite({q}) THEN {q} END" if kind.id in ("float", "double") else q
            fields.append(f"{q} := {value}")
        return relation.project(f"to_json(struct_pack({', '.join(fields)}))::VARCHAR AS json")
    columns = []
    for name, kind in zip(relation.columns, relation.types):
        q = quoted(name)
        if form in ("csv", "table") and kind.id not in _PLAIN_TYPES:
            columns.append(f"CAST({q} AS VARCHAR) AS {q}")
        elif _OPAQUE.search(str(kind)):
            columns.append(f"CAST({q} AS VARCHAR) AS {q}")
        else:
            columns.append(q)
    return relation.project(", ".join(columns)) if columns else relation


def query(sql: str, *, path: str | Path | None = None, wait_s: float = 30.0, form: str = "frame"):
    """Run one SELECT read-only against the store, in DuckDB's sandbox; returns a Polars frame.

    The store is opened read-only with :data:`SANDBOX` (no file outside it, no ATTACH, no extension
    loading, settings locked) and only ``QUERY_STATEMENTS`` run. ``form`` ("frame", "csv", "table",
    "json", "parquet") converts the columns that form cannot hold (see ``_portable``).
    """
    con = connect(path, read_only=True, wait_s=wait_s, sandbox=True)
    try:
        check_statement(con, sql)
        relation = con.sql(sql)
        if relation is None:
            return pl.DataFrame()
        return pl.from_arrow(_portable(relation, form).to_arrow_table())
    except duckdb.Error as exc:
        raise TsizeError(f"query failed: {str(exc).splitlines()[0]}") from None
    finally:
        con.close()


def sweeps(path: str | Path | None = None):
    return query("SELECT sweep_id, name, points, seconds, created_at, tsize_version FROM sweeps ORDER BY sweep_id",
                 path=path)
