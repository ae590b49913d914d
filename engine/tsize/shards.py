"""Sharded sweeps: a grid cut along its outer axes into shards, each written as one Parquet part.

A shard is a box of the grid (``Grid.boxes(shard_points)``, row-major, at most ``shard_points``
points, every trailing axis whole), so shard ``i`` is a pure function of the spec, the catalogs and
``i``: any process on any machine computes the same bytes with the same vectorized code.

A sweep's dataset is one directory::

    DIR/manifest.json                 sweep, spec, fingerprint, shard count, completed shards
    DIR/models.parquet ...            the small tiers (models, gpus, steps, placements, runs, shards, settings)
    DIR/shard=00017/part.parquet      the points tier, one zstd part per shard (hive-partitioned)

Column layout is the store's (``store.table_columns``), so the ``results`` view joins the
dataset exactly as it joins the DuckDB tables. A part is written to a hidden temporary name, flushed
to disk and renamed; a reader or a resumed run never sees half a part. Each part's footer carries
the sweep fingerprint, its shard index, row count and fit count, so the parts on disk are the truth
and the manifest (rewritten atomically by the driver) is their summary.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import shutil
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any


from tsize import catalog
from tsize.version import __version__
from tsize.errors import TsizeError
from tsize.grid import Box, Grid
from tsize.registry import TIERS
from tsize.spec import Spec

#: Grid points per shard: ~1 M points is 1-2 s of work, a part of ~20 MB, and a worker below 1 GiB.
SHARD_POINTS = 1 << 20
#: Points per row group inside a part (the evaluation chunk).
CHUNK_POINTS = 1 << 18
FORMAT = "tsize-sweep-parquet/1"
MANIFEST = "manifest.json"
RETRIES = 2
SMALL_TIERS = tuple(t for t in TIERS if t != "points")
_PART = re.compile(r"^shard=(\d{5,})$")


# ---------------------------------------------------------------------------
# the plan: which boxes are the shards


def shard_boxes(grid: Grid, shard_points: int = SHARD_POINTS) -> list[Box]:
    """The shards of a grid, in index order."""
    return list(grid.boxes(shard_points))


def fingerprint(spec: Spec, shard_points: int = SHARD_POINTS) -> str:
    """What a dataset's bytes depend on: the resolved axes, the catalogs, the store layout and the shard size."""
    from tsize import store

    text = json.dumps({"name": spec.name, "axes": repr(spec.axes), "catalogs": catalog.versions(),
                       "schema": store.schema_fingerprint(), "tsize": __version__,
                       "shard_points": shard_points}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def part_path(directory: Path, index: int) -> Path:
    return directory / f"shard={index:05d}" / "part.parquet"


def _points_columns() -> list[tuple[str, Any]]:
    from tsize import frames, store

    return [(name, frames.NUMPY[kind]) for name, kind in store.table_columns("points")[1:]]


def _small_columns(tier: str) -> list[tuple[str, Any]]:
    from tsize import frames, store

    return [(name, frames.NUMPY[kind]) for name, kind in store.table_columns(tier)[1:]]


# ---------------------------------------------------------------------------
# one shard (runs in any process)

_GRIDS: dict[str, tuple[Grid, list[Box]]] = {}


def peak_rss_mib() -> float:
    """This process's peak resident memory [MiB] (VmHWM; ru_maxrss where /proc is missing)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    import resource
    import sys

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (1024 if sys.platform != "darwin" else 1 << 20)


def compute_shard(spec: Spec, index: int, directory: str, *, shard_points: int, fp: str,
                  catalogs: dict[str, str], chunk_points: int = CHUNK_POINTS) -> dict[str, Any]:
    """Evaluate shard ``index`` and write ``DIR/shard=NNNNN/part.parquet`` atomically; return its summary."""
    import pyarrow.parquet as pq

    from tsize import frames, store

    started, cpu = time.perf_counter(), time.process_time()
    if catalog.versions() != catalogs:
        raise TsizeError(f"catalog versions differ on this worker ({catalog.versions()}) from the driver's "
                         f"({catalogs}); install the same tsize and catalogs on every node")
    if fp not in _GRIDS:
        grid = spec.grid()
        _GRIDS.clear()
        _GRIDS[fp] = (grid, shard_boxes(grid, shard_points))
    grid, boxes = _GRIDS[fp]
    box = boxes[index]
    names = _points_columns()
    target = part_path(Path(directory), index)
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.parent / f".part.parquet.{os.getpid()}.tmp"
    rows = fits = 0
    writer = None
    try:
        for sub in grid.boxes(chunk_points, _sub_shape(box)):
            values = grid.evaluate(_offset(sub, box))  # once per box: the chunk and its count of fitting points
            chunk = frames.table(grid, _offset(sub, box), names, values)
            if writer is None:
                writer = pq.ParquetWriter(temp, chunk.schema, compression="zstd")
            writer.write_table(chunk, row_group_size=chunk.num_rows)
            rows += chunk.num_rows
            fits += store.fit_count(grid, _offset(sub, box), chunk, values)
        writer.add_key_value_metadata({"tsize": json.dumps({"fingerprint": fp, "shard": index, "rows": rows,
                                                            "fits": fits})})
        writer.close()
        writer = None
        with open(temp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(temp, target)
        _fsync_dir(target.parent)
    finally:
        if writer is not None:
            writer.close()
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
    return {"shard": index, "rows": rows, "fits": fits, "seconds": time.perf_counter() - started,
            "cpu_s": time.process_time() - cpu, "peak_rss_mib": peak_rss_mib(), "pid": os.getpid()}


def _sub_shape(box: Box) -> tuple[int, ...]:
    return tuple(b - a for a, b in box)


def _offset(sub: Box, box: Box) -> Box:
    return tuple((a + s, a + t) for (s, t), (a, _) in zip(sub, box))


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def read_part(path: Path) -> dict[str, Any] | None:
    """The summary in a part's footer, or None when the file is not a complete tsize part."""
    import pyarrow.parquet as pq

    try:
        meta = pq.read_metadata(path).metadata or {}
        return json.loads(meta[b"tsize"])
    except Exception:  # noqa: BLE001 - anything unreadable is simply not a completed shard
        return None


# ---------------------------------------------------------------------------
# the dataset directory (driver side)


def _write_atomic(path: Path, data: bytes) -> None:
    temp = path.parent / f".{path.name}.{os.getpid()}.tmp"
    with open(temp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temp, path)
    _fsync_dir(path.parent)


def read_manifest(directory: Path) -> dict[str, Any] | None:
    try:
        manifest = json.loads((directory / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) and manifest.get("format") == FORMAT else None


def is_dataset(path: str | Path | None) -> bool:
    return path is not None and Path(path).is_dir() and read_manifest(Path(path)) is not None


def _ours(name: str) -> bool:
    return (name == MANIFEST or name == ".lock" or bool(_PART.match(name)) or name.startswith(f".{MANIFEST}.")
            or any(name == f"{t}.parquet" or name.startswith(f".{t}.parquet.") for t in SMALL_TIERS))


def check_directory(directory: Path, fp: str, name: str, *, resume: bool, owned: bool) -> None:
    """Refuse (before writing anything) a directory that holds other files or another sweep's dataset.

    ``owned``: a staging directory tsize chose itself, which may be started over.
    """
    if directory.exists() and not directory.is_dir():
        raise TsizeError(f"--output {directory} is a file, not a directory")
    if not directory.exists() or not any(directory.iterdir()):
        return
    manifest = read_manifest(directory)
    foreign = sorted(p.name for p in directory.iterdir() if not _ours(p.name))
    if manifest is None or foreign:
        what = f"file {foreign[0]!r}" if foreign else "no tsize manifest"
        raise TsizeError(f"--output {directory} holds files that are not a tsize sweep ({what}); "
                         f"give an empty or new directory")
    if manifest.get("fingerprint") != fp and not owned:
        raise TsizeError(f"--output {directory} holds another sweep's files (sweep {manifest.get('sweep')!r}, "
                         f"fingerprint {manifest.get('fingerprint')}); give another directory or remove it")
    if manifest.get("fingerprint") == fp and not resume and not owned:
        done = len(manifest.get("completed", []))
        raise TsizeError(f"--output {directory} already holds sweep {name!r} ({done} of {manifest.get('shards')} "
                         f"shards); pass --resume to complete it, or remove the directory to start over")


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    import fcntl

    handle = open(directory / ".lock", "a")  # noqa: SIM115 - held for the whole run
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise TsizeError(f"{directory} is being written by another tsize process; wait for it to finish") from None
        yield
    finally:
        handle.close()


def _clear(directory: Path) -> None:
    """Remove a dataset's own files (never anything else)."""
    for path in directory.iterdir():
        if path.name == ".lock" or not _ours(path.name):
            continue
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()


def completed_parts(directory: Path, fp: str, boxes: list[Box]) -> dict[int, dict[str, Any]]:
    """Shards whose part is on disk, complete, of this sweep and of the right size; stale temporaries removed."""
    done: dict[int, dict[str, Any]] = {}
    for sub in directory.iterdir():
        match = _PART.match(sub.name)
        if not match or not sub.is_dir():
            continue
        for temp in sub.glob(".part.parquet.*.tmp"):
            temp.unlink(missing_ok=True)
        index = int(match.group(1))
        summary = read_part(sub / "part.parquet") if (sub / "part.parquet").exists() else None
        if (summary and summary.get("fingerprint") == fp and summary.get("shard") == index < len(boxes)
                and summary.get("rows") == math.prod(_sub_shape(boxes[index]))):
            done[index] = summary
    return done


def _write_small_tiers(spec: Spec, grid: Grid, directory: Path) -> None:
    import pyarrow.parquet as pq

    from tsize import frames

    for tier in SMALL_TIERS:
        names = _small_columns(tier)
        target = directory / f"{tier}.parquet"
        temp = directory / f".{tier}.parquet.{os.getpid()}.tmp"
        writer = None
        for box in grid.sub_boxes(tier, CHUNK_POINTS):
            chunk = frames.table(grid, box, names)
            writer = writer or pq.ParquetWriter(temp, chunk.schema, compression="zstd")
            writer.write_table(chunk)
        writer.close()
        with open(temp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(temp, target)


def _manifest(spec: Spec, fp: str, shard_points: int, boxes: list[Box], grid: Grid,
              done: dict[int, dict[str, Any]]) -> dict[str, Any]:
    return {"format": FORMAT, "sweep": spec.name, "description": spec.description, "spec_path": spec.path,
            "spec": spec.text, "fingerprint": fp, "catalogs": catalog.versions(), "tsize_version": __version__,
            "shard_points": shard_points, "shards": len(boxes), "points": grid.size,
            "axes": {name: [str(v) for v in grid.labels(name)] for name in grid.values},
            "completed": sorted(done), "fits": sum(s["fits"] for s in done.values()),
            "complete": len(done) == len(boxes)}


# ---------------------------------------------------------------------------
# running: serial, local processes, Ray


def check_workers(workers: Any) -> int:
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise TsizeError(f"--workers {workers!r} is out of range; valid: an integer >= 1 "
                         f"(this machine has {os.cpu_count()} cores)")
    return workers


class Job:
    """One sharded run of ``spec`` into the dataset at ``directory``.

    Constructing it checks everything that can be wrong before anything is written (worker count, the
    directory's contents, the Ray connection); :meth:`parts` then computes the missing shards and yields
    each completed part as it lands (already completed ones first, on ``resume``), so a consumer (the DuckDB
    ingest) works while the workers compute. ``workers`` processes on this machine (1: this process), or
    Ray tasks when ``ray`` is set (True: a local instance; ``"auto"``: this machine's cluster; an address).
    A failing shard is retried ``retries`` times; shards still failing are named in the error, and the
    completed ones stay on disk for ``resume``.
    """

    def __init__(self, spec: Spec, directory: str | Path, *, workers: int = 1, ray: str | bool | None = None,
                 resume: bool = False, owned: bool = False, shard_points: int = SHARD_POINTS,
                 retries: int = RETRIES, chunk_points: int = CHUNK_POINTS):
        check_workers(workers)
        if isinstance(shard_points, bool) or not isinstance(shard_points, int) or shard_points < 1:
            raise TsizeError(f"shard_points {shard_points!r} is out of range; valid: an integer >= 1")
        self.spec, self.directory, self.workers, self.resume = spec, Path(directory), workers, resume
        self.shard_points, self.retries, self.chunk_points = shard_points, retries, chunk_points
        self.grid = spec.grid()
        self.boxes = shard_boxes(self.grid, shard_points)
        self.fp = fingerprint(spec, shard_points)
        check_directory(self.directory, self.fp, spec.name, resume=resume, owned=owned)
        self.backend = _Ray(ray, workers) if ray not in (None, False) else None
        self.stats: dict[str, Any] = {}

    def _save(self, done: dict[int, dict[str, Any]]) -> None:
        manifest = _manifest(self.spec, self.fp, self.shard_points, self.boxes, self.grid, done)
        _write_atomic(self.directory / MANIFEST, json.dumps(manifest, indent=1).encode())

    def parts(self, progress: bool | None = None) -> Iterator[Path]:
        from tsize.frames import Progress

        started, cpu = time.perf_counter(), time.process_time()
        directory, boxes = self.directory, self.boxes
        try:
            directory.mkdir(parents=True, exist_ok=True)
            with _locked(directory):
                manifest = read_manifest(directory)
                if manifest is not None and (manifest.get("fingerprint") != self.fp or not self.resume):
                    _clear(directory)
                done = completed_parts(directory, self.fp, boxes) if self.resume else {}
                self._save(done)
                _write_small_tiers(self.spec, self.grid, directory)
                pending = [i for i in range(len(boxes)) if i not in done]
                bar = Progress(sum(math.prod(_sub_shape(boxes[i])) for i in pending), f"sweep {self.spec.name}",
                               enabled=progress)
                args = dict(shard_points=self.shard_points, fp=self.fp, catalogs=catalog.versions(),
                            chunk_points=self.chunk_points)
                failed: dict[int, str] = {}
                peak, saved, shard_cpu = 0.0, time.monotonic(), 0.0
                try:
                    for index in sorted(done):
                        yield part_path(directory, index)
                    if self.backend is not None:
                        results = self.backend.map(self.spec, pending, str(directory), args, self.retries, failed)
                    elif self.workers == 1 or len(pending) <= 1:
                        results = _serial(self.spec, pending, str(directory), args, self.retries, failed)
                    else:
                        results = _processes(self.spec, pending, str(directory), args, self.workers,
                                             self.retries, failed)
                    for summary in results:
                        done[summary["shard"]] = summary
                        peak = max(peak, summary["peak_rss_mib"])
                        shard_cpu += summary.get("cpu_s", 0.0)
                        bar.advance(summary["rows"])
                        if time.monotonic() - saved > 2.0:
                            self._save(done)
                            saved = time.monotonic()
                        yield part_path(directory, summary["shard"])
                    for temp in directory.glob("shard=*/.part.parquet.*.tmp"):  # left by a worker that died
                        temp.unlink(missing_ok=True)
                finally:
                    bar.close()
                    self._save(done)
        finally:
            self.close()
        if failed:
            first = min(failed)
            raise TsizeError(f"{len(failed)} of {len(boxes)} shards failed after {self.retries + 1} attempts "
                             f"(shards {', '.join(map(str, sorted(failed)[:20]))}); shard {first}: {failed[first]}; "
                             f"the {len(done)} completed shards are kept in {directory}: rerun with --resume")
        self.stats = {"sweep": self.spec.name, "points": self.grid.size,
                      "fits": sum(s["fits"] for s in done.values()), "shards": len(boxes), "computed": len(pending),
                      "seconds": time.perf_counter() - started, "worker_peak_rss_mib": peak,
                      "shard_cpu_s": shard_cpu, "driver_cpu_s": time.process_time() - cpu,
                      "directory": str(directory), "fingerprint": self.fp}

    def close(self) -> None:
        if self.backend is not None:
            self.backend.close()
            self.backend = None


def run(spec: Spec, directory: str | Path, *, progress: bool | None = None, **options: Any) -> dict[str, Any]:
    """Compute every missing shard of ``spec`` into the dataset at ``directory`` (see :class:`Job`)."""
    job = Job(spec, directory, **options)
    for _ in job.parts(progress):
        pass
    return job.stats


def _error(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def _serial(spec, pending, directory, args, retries, failed) -> Iterator[dict[str, Any]]:
    for index in pending:
        for attempt in range(retries + 1):
            try:
                yield compute_shard(spec, index, directory, **args)
                break
            except TsizeError:
                raise
            except Exception as exc:  # noqa: BLE001 - retried, then reported by index
                if attempt == retries:
                    failed[index] = _error(exc)


def _processes(spec, pending, directory, args, workers, retries, failed) -> Iterator[dict[str, Any]]:
    """Shards on a pool of ``workers`` processes. A failed shard runs again in the next round; a worker
    that dies (killed, out of memory) breaks the pool, whose unfinished shards then count one attempt."""
    import multiprocessing

    context = multiprocessing.get_context("spawn" if os.name != "posix" else "forkserver")
    attempts = dict.fromkeys(pending, 0)
    queue = list(pending)
    while queue:
        pool = ProcessPoolExecutor(max_workers=min(workers, len(queue)), mp_context=context)
        try:
            futures = {pool.submit(compute_shard, spec, i, directory, **args): i for i in queue}
            queue = []
            for future in as_completed(futures):
                index = futures[future]
                try:
                    summary = future.result()
                except TsizeError:
                    raise
                except Exception as exc:  # noqa: BLE001 - retried, then reported by index
                    attempts[index] += 1
                    if attempts[index] <= retries:
                        queue.append(index)
                    else:
                        failed[index] = _error(exc)
                    continue
                yield summary
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        queue.sort()


class _Ray:
    """Shards as Ray tasks (retried by Ray), on a local instance or a cluster."""

    def __init__(self, address: str | bool, workers: int):
        try:
            import ray
        except ImportError:
            raise TsizeError("--ray needs Ray: pip install 'tsize[ray]'") from None
        self.ray = ray
        self.started = False
        if ray.is_initialized():
            return
        address = None if address is True else str(address)
        if address not in (None, "auto"):
            _reachable(address)
        try:
            if address is None:
                ray.init(num_cpus=workers if workers > 1 else None, include_dashboard=False,
                         log_to_driver=False, configure_logging=False)
            else:
                ray.init(address=address, log_to_driver=False, configure_logging=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise TsizeError(f"cannot connect to the Ray cluster at {address!r}: "
                             f"{str(exc).strip().splitlines()[0]}") from None
        self.started = True

    def map(self, spec, pending, directory, args, retries, failed) -> Iterator[dict[str, Any]]:
        ray = self.ray
        task = ray.remote(max_retries=retries, retry_exceptions=True)(compute_shard)
        spec_ref = ray.put(spec)
        refs = {task.remote(spec_ref, i, directory, **args): i for i in pending}
        running = list(refs)
        while running:
            finished, running = ray.wait(running, num_returns=1)
            for ref in finished:
                try:
                    yield ray.get(ref)
                except Exception as exc:  # noqa: BLE001 - Ray already retried it; report by index
                    cause = getattr(exc, "cause", None) or exc
                    if isinstance(cause, TsizeError):
                        raise cause from None
                    failed[refs[ref]] = _error(cause)

    def close(self) -> None:
        if self.started:
            self.ray.shutdown()


def _reachable(address: str) -> None:
    """Fail fast, with one line, when a ``host:port`` Ray address does not answer."""
    import socket

    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise TsizeError(f"--ray {address!r} is not a Ray address; valid: auto, HOST:PORT or ray://HOST:PORT")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as exc:
        raise TsizeError(f"cannot reach the Ray cluster at {address}: {exc.strerror or exc}") from None


# ---------------------------------------------------------------------------
# reading a dataset


def connect(directory: str | Path):
    """An in-memory DuckDB connection whose ``results``, ``fleet_options``, tier views and ``sweeps`` table
    read the dataset; it can read nothing but that directory and write nothing to disk."""
    import duckdb

    from tsize import store

    directory = Path(directory).resolve()
    manifest = read_manifest(directory)
    if manifest is None:
        raise TsizeError(f"{directory} is not a tsize sweep dataset (no {MANIFEST})")
    if not manifest.get("complete"):
        raise TsizeError(f"sweep {manifest.get('sweep')!r} in {directory} is incomplete "
                         f"({len(manifest.get('completed', []))} of {manifest.get('shards')} shards); "
                         f"complete it with tsize sweep SPEC --resume --output {directory}")
    con = duckdb.connect(":memory:")
    quoted = str(directory).replace("'", "''")
    for tier in SMALL_TIERS:
        con.execute(f"CREATE VIEW {tier} AS SELECT 1 AS sweep_id, * FROM read_parquet('{quoted}/{tier}.parquet')")
    cols = ", ".join(name for name, _ in store.table_columns("points")[1:])
    con.execute(f"CREATE VIEW points AS SELECT 1 AS sweep_id, {cols} "
                f"FROM read_parquet('{quoted}/shard=*/part.parquet', hive_partitioning = false)")
    con.execute("CREATE TABLE sweeps AS SELECT 1 AS sweep_id, ? AS name, ? AS description, ? AS spec_path, "
                "? AS spec, ? AS axes, ? AS catalogs, ? AS tsize_version, CAST(NULL AS TIMESTAMP) AS created_at, "
                "CAST(? AS BIGINT) AS points, CAST(NULL AS DOUBLE) AS seconds",
                [manifest["sweep"], manifest.get("description"), manifest.get("spec_path"), manifest.get("spec"),
                 json.dumps(manifest.get("axes")), json.dumps(manifest.get("catalogs")),
                 manifest.get("tsize_version"), manifest.get("points")])
    for statement in store.view_sql():
        con.execute(statement)
    con.execute(f"SET allowed_directories = ['{quoted}/']")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    return con


def query(sql: str, directory: str | Path):
    """Run SQL against a dataset; returns a Polars frame."""
    import duckdb
    import polars as pl

    con = connect(directory)
    try:
        relation = con.sql(sql)
        return pl.DataFrame() if relation is None else pl.from_arrow(relation.to_arrow_table())
    except duckdb.Error as exc:
        raise TsizeError(f"query failed: {str(exc).splitlines()[0]}") from None
    finally:
        con.close()


def default_workers() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def sweep(spec: Any, *, path: str | Path | None = None, workers: int | None = None, ray: str | bool | None = None,
          resume: bool = False, format: str = "duckdb", output: str | Path | None = None,
          shard_points: int | None = None, chunk_points: int | None = None, progress: bool | None = None,
          wait_s: float = 30.0) -> dict[str, Any]:
    """Evaluate a sweep spec (path, dict or ``Spec``) on ``workers`` local processes (default: every core; 1 into
    DuckDB on a machine of 2 cores or fewer) or on Ray (``ray``: True for a local instance, ``"auto"`` or an
    address for a cluster).

    ``format="duckdb"`` (default) ends in the DuckDB file ``path``: one worker evaluates in this process as
    always; more workers (or Ray, or ``resume``) write Parquet parts to a staging directory (``output``, else
    next to the file, removed when ingested) that the store then ingests. ``format="parquet"`` keeps the
    hive-partitioned dataset in ``output`` (``tsize query --db DIR`` reads it). ``resume`` computes only the
    shards missing from an interrupted run.
    """
    from tsize import frames, store
    from tsize.spec import load

    if workers is None:
        # Into DuckDB, one process already keeps two cores busy (evaluation overlapped with the insert); on two
        # cores, two workers measured half as fast (README, "Speed and memory"): they add Parquet encode/decode.
        workers = default_workers() if format == "parquet" or ray or default_workers() > 2 else 1
    workers = check_workers(workers)
    if format not in ("duckdb", "parquet"):
        raise TsizeError(f"--format {format!r} is not a sweep format; valid: duckdb, parquet")
    if format == "parquet" and output is None:
        raise TsizeError("--format parquet needs --output DIR (the dataset directory)")
    shard_points = SHARD_POINTS if shard_points is None else shard_points
    chunk_points = frames.CHUNK_POINTS if chunk_points is None else chunk_points
    loaded = spec if isinstance(spec, Spec) else load(spec)
    grid = loaded.grid()
    n_shards = math.ceil(grid.size / max(1, shard_points))
    if format == "duckdb" and not resume and not ray and output is None and min(workers, n_shards) == 1:
        return store.write(loaded, path=path, chunk_points=chunk_points, progress=progress, wait_s=wait_s)
    options = dict(workers=workers, ray=ray, resume=resume, shard_points=shard_points, chunk_points=chunk_points)
    if format == "parquet":
        return run(loaded, output, progress=progress, **options)
    owned = output is None
    if owned:
        db = store.db_path(path)
        staging = db.with_name(db.name + ".parts") / re.sub(r"[^A-Za-z0-9._-]", "_", loaded.name)
    else:
        staging = Path(output)
    job = Job(loaded, staging, owned=owned, **options)
    try:
        result = store.write(loaded, path=path, progress=progress, wait_s=wait_s, parts=job.parts(progress=False))
    finally:
        job.close()
    if owned:
        shutil.rmtree(staging, ignore_errors=True)
        with contextlib.suppress(OSError):
            staging.parent.rmdir()
    return {**result, "worker_peak_rss_mib": job.stats["worker_peak_rss_mib"], "shards": job.stats["shards"],
            "shard_cpu_s": job.stats["shard_cpu_s"]}
