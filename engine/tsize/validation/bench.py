"""``tsize bench``: speed and memory, measured the way users run tsize.

Phases, each in a fresh Python process so its peak memory is its own:

* ``evaluate``: every output of the registry over the whole grid, each at its
  broadcast shape (``Grid.evaluate`` box by box): the engine's work, what the
  store and the sharded sweeps build their tier tables from;
* ``frame``: every column of the long-form frame (inputs and all outputs) for
  every grid point, into reused buffers: evaluation plus one copy of each
  column per point, what ``frames.frame`` users pay;
* ``store``: ``tsize sweep`` end to end into a new DuckDB file;
* ``scalar``: the same formulas called once per grid point with scalar
  inputs (plain Python loop, the seed's and peers' style), on a sample;
* ``workers1``, ``workers2``: the sharded sweep (``tsize sweep --format parquet``) on 1 and 2 local
  processes; ``ray``: the same on a local Ray instance with 2 CPUs (its start and shutdown timed apart,
  as ``startup_s``: a cluster is already running); ``store2``: ``tsize sweep --workers 2`` into DuckDB;
* ``views`` (run on its own): the same dataset queried through views over the Parquet parts and
  after ingesting them into DuckDB tables.

The grid is ``sweeps/capacity.toml`` (10.6 million points) unless another
spec is given; ``--points`` repeats its ``tokens`` axis to reach a size.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tsize.errors import TsizeError

DEFAULT_SPEC = Path(__file__).resolve().parents[3] / "sweeps" / "capacity.toml"
LABELS = {"evaluate": "evaluation: every output at its broadcast shape (numpy)",
          "frame": "long-form frame: every column of every point (numpy)",
          "store": "end to end into a DuckDB file (tsize sweep)",
          "scalar": "plain Python loop over the same formulas, one point at a time",
          "workers1": "sharded into Parquet, 1 process (--format parquet)",
          "workers2": "sharded into Parquet, 2 processes (--workers 2)",
          "ray": "sharded into Parquet, Ray local with 2 CPUs (--ray)",
          "store2": "end to end into DuckDB, 2 processes (--workers 2)",
          "views": "queries on views over the Parquet parts vs on ingested DuckDB tables"}
#: What ``tsize bench`` runs unless told otherwise.
PHASES = ("evaluate", "frame", "store", "scalar", "workers1", "workers2", "ray", "store2")
#: The queries the ``views`` phase times: a scan, a grouped aggregate over the joined view, the fleet view.
QUERIES = {"count fits": "SELECT count(*) FROM results WHERE fits",
           "group by gpu": "SELECT gpu, count(*), max(max_micro_batch), min(memory_per_gpu_bytes) FROM results "
                           "GROUP BY gpu",
           "fleet_options": "SELECT count(*), min(cost_usd) FROM fleet_options WHERE pareto"}


def _spec(path: str, points: float | None):
    from tsize.spec import load

    spec = load(path)
    if points:
        size = spec.grid().size
        copies = max(1, math.ceil(points / size))
        spec.axes["tokens"] = [float(t) for t in (1e12 * (1 + i) for i in range(copies))]
        spec.name = f"{spec.name}-bench"
    return spec


def _peak_rss_mib() -> float:
    """This process's peak resident memory [MiB]: VmHWM where /proc has it (ru_maxrss is inherited
    from the parent across fork and exec on Linux, so a busy parent would show through)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    scale = 1024 if sys.platform != "darwin" else 1024 * 1024  # ru_maxrss: KiB on Linux, bytes on macOS
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale


def phase(name: str, spec_path: str, points: float | None, sample: int) -> dict:
    import numpy as np

    from tsize import frames as sweep
    from tsize import store
    from tsize.registry import OUTPUT_NAMES
    from tsize.point import point as one_point  # noqa: F401  (imports shared by every phase)
    from tsize.grid import Grid

    spec = _spec(spec_path, points)
    grid = spec.grid()
    if name == "evaluate":
        started, cpu = time.perf_counter(), time.process_time()
        done = 0
        for box in grid.boxes(sweep.CHUNK_POINTS):
            grid.evaluate(box)
            done += sweep.box_size(box)
        return {"points": done, "seconds": time.perf_counter() - started, "cpu_s": time.process_time() - cpu,
                "columns": len(OUTPUT_NAMES)}
    if name == "frame":
        arrays = {n: np.empty(sweep.CHUNK_POINTS, dtype=t) for n, t in sweep.columns()}
        started, cpu = time.perf_counter(), time.process_time()
        done = 0
        for box in grid.boxes(sweep.CHUNK_POINTS):
            done += sweep.fill(grid, box, arrays)
        return {"points": done, "seconds": time.perf_counter() - started, "cpu_s": time.process_time() - cpu,
                "columns": len(arrays)}
    if name == "store":
        with tempfile.TemporaryDirectory() as tmp:
            db = Path(tmp) / "bench.duckdb"
            cpu = time.process_time()  # every thread of this process: evaluation and DuckDB's
            result = store.write(spec, path=db, progress=False)
            cpu = time.process_time() - cpu
            size = db.stat().st_size
        return {"points": result["points"], "seconds": result["seconds"], "cpu_s": cpu, "file_bytes": size}
    if name == "scalar":
        rng = np.random.default_rng(0)
        flat = rng.choice(grid.size, size=min(sample, grid.size), replace=False)
        indices = [np.unravel_index(i, grid.shape) for i in flat]
        started, cpu = time.perf_counter(), time.process_time()
        for index in indices:
            Grid.evaluate(grid, tuple((int(i), int(i) + 1) for i in index))
        return {"points": len(indices), "seconds": time.perf_counter() - started, "cpu_s": time.process_time() - cpu}
    if name in ("workers1", "workers2", "ray"):
        from tsize import shards

        with tempfile.TemporaryDirectory() as tmp:
            started = time.perf_counter()
            job = shards.Job(spec, Path(tmp) / "ds", workers=1 if name == "workers1" else 2,
                             ray=True if name == "ray" else None)
            ready = time.perf_counter()
            for _ in job.parts(progress=False):
                pass
            done = time.perf_counter()
            job.close()
            size = sum(f.stat().st_size for f in Path(tmp).rglob("*") if f.is_file())
        return {"points": grid.size, "seconds": done - ready, "startup_s": ready - started + time.perf_counter() - done,
                "shards": job.stats["shards"], "worker_peak_rss_mib": job.stats["worker_peak_rss_mib"],
                "shard_cpu_s": job.stats["shard_cpu_s"], "driver_cpu_s": job.stats["driver_cpu_s"],
                "cpu_s": job.stats["shard_cpu_s"] + job.stats["driver_cpu_s"],
                "load_average": os.getloadavg()[0], "file_bytes": size}
    if name == "store2":
        from tsize import shards

        with tempfile.TemporaryDirectory() as tmp:
            started, cpu = time.perf_counter(), time.process_time()
            result = shards.sweep(spec, path=Path(tmp) / "bench.duckdb", workers=2, progress=False)
            seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
            size = (Path(tmp) / "bench.duckdb").stat().st_size
        return {"points": result["points"], "seconds": seconds, "file_bytes": size,
                "cpu_s": cpu + result.get("shard_cpu_s", math.nan),
                "worker_peak_rss_mib": result.get("worker_peak_rss_mib", math.nan)}
    if name == "views":
        return _views(spec)
    raise TsizeError(f"unknown phase {name!r}; valid: {', '.join(LABELS)}")


def _views(spec) -> dict:
    """Query times [s] on views over the Parquet parts vs on the ingested tables (median of 3 runs each)."""
    import statistics

    from tsize import shards, store

    with tempfile.TemporaryDirectory() as tmp:
        ds = Path(tmp) / "ds"
        shards.run(spec, ds, workers=2, progress=False)
        views_db, tables_db = Path(tmp) / "views.duckdb", Path(tmp) / "tables.duckdb"
        started = time.perf_counter()
        store.write(spec, path=tables_db, progress=False, parts=sorted(ds.glob("shard=*/part.parquet")))
        ingest_s = time.perf_counter() - started
        con = store.connect(views_db)
        store.ensure_schema(con, views_db)
        con.execute("DROP VIEW results")
        con.execute("DROP VIEW fleet_options")
        cols = ", ".join(c for c, _ in store.table_columns("points")[1:])
        con.execute("ALTER TABLE points RENAME TO points_unused")
        con.execute(f"CREATE VIEW points AS SELECT 1 AS sweep_id, {cols} FROM read_parquet('{ds}/shard=*/part.parquet')")
        for tier in shards.SMALL_TIERS:
            con.execute(f"INSERT INTO {tier} SELECT 1, * FROM read_parquet('{ds}/{tier}.parquet')")
        con.execute("INSERT INTO sweeps (sweep_id, name, points) VALUES (1, ?, ?)", [spec.name, spec.grid().size])
        for statement in store.view_sql():
            con.execute(statement)
        con.close()
        timings: dict[str, dict[str, float]] = {}
        for label, db in (("views", views_db), ("tables", tables_db)):
            con = store.connect(db, read_only=True)
            for query, sql in QUERIES.items():
                runs = []
                for _ in range(3):
                    t = time.perf_counter()
                    con.execute(sql).fetchall()
                    runs.append(time.perf_counter() - t)
                timings.setdefault(query, {})[label] = statistics.median(runs)
            con.close()
        sizes = {"views_file_bytes": views_db.stat().st_size, "tables_file_bytes": tables_db.stat().st_size,
                 "parquet_bytes": sum(f.stat().st_size for f in ds.rglob("*.parquet"))}
    return {"points": spec.grid().size, "seconds": ingest_s, "ingest_s": ingest_s, "queries_s": timings, **sizes}


def run(spec_path: str | None = None, *, points: float | None = None, sample: int = 2000,
        phases: tuple[str, ...] = PHASES) -> dict:
    spec_path = str(spec_path or DEFAULT_SPEC)
    report = {"spec": spec_path, "python": platform.python_version(), "cpus": os.cpu_count(),
              "machine": platform.machine(), "phases": {}}
    for name in phases:
        if name == "ray" and importlib.util.find_spec("ray") is None:
            continue  # the optional extra is not installed: pip install 'tsize[ray]'
        out = subprocess.run([sys.executable, "-m", "tsize.validation.bench", "--phase", name, "--spec", spec_path,
                              "--points", str(points or 0), "--sample", str(sample)],
                             capture_output=True, text=True)
        if out.returncode != 0:
            raise RuntimeError(f"benchmark phase {name} failed: {out.stderr.strip().splitlines()[-1]}")
        report["phases"][name] = json.loads(out.stdout)
    return report


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--phase", required=True)
    parser.add_argument("--spec", required=True)
    parser.add_argument("--points", type=float, default=0)
    parser.add_argument("--sample", type=int, default=2000)
    args = parser.parse_args()
    result = phase(args.phase, args.spec, args.points or None, args.sample)
    result["points_per_s"] = result["points"] / result["seconds"]
    if "cpu_s" in result:
        result["points_per_cpu_s"] = result["points"] / result["cpu_s"]
    result["peak_rss_mib"] = _peak_rss_mib()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
