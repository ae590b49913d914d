"""Sharded sweeps: shards cover the grid, identical bytes at any worker count, Parquet datasets, resume,
kill -9, retries, bad input."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from tsize import api, shards, store
from tsize import spec as spec_mod
from tsize.cli.main import main
from tsize.errors import TsizeError

ROOT = Path(__file__).resolve().parent.parent
SMALL = {"name": "small", "models": ["gpt2", "llama-3-8b"],
         "grid": {"batch_size": [1, 8], "gpu": ["nvidia_h100_sxm", "nvidia_l4"], "n_gpus": [1, 8],
                  "zero_stage": [0, 3], "precision": ["amp-bf16", "fp32"]}}
#: capacity.toml on two GPU types: 2,654,208 points, three shards of the default size.
MEDIUM = ROOT / "tests" / "data" / "capacity-2gpu.toml"
CHECKSUM = "SELECT count(*) AS n, sum(hash(r)) AS h FROM (SELECT * EXCLUDE (sweep_id) FROM results) r"
TSIZE = [sys.executable, "-c", "import sys; from tsize.cli.main import main; sys.exit(main())"]


def checksum(path) -> tuple[int, int]:
    return api.query(CHECKSUM, path=path).row(0)


@pytest.fixture(scope="module")
def medium_reference(tmp_path_factory):
    """The medium grid stored the single-process way (today's path), and its checksum."""
    db = tmp_path_factory.mktemp("ref") / "ref.duckdb"
    store.write(spec_mod.load(MEDIUM), path=db, progress=False)
    return checksum(db)


def test_medium_spec_is_capacity_on_two_gpus():
    capacity = spec_mod.load(ROOT / "sweeps" / "capacity.toml").grid()
    medium = spec_mod.load(MEDIUM).grid()
    assert medium.size == capacity.size // 8 * 2 == 2_654_208


@pytest.mark.parametrize("shard_points", [1, 7, 100, 5000, 10**9])
def test_shards_tile_the_grid_in_bounded_boxes(shard_points):
    grid = spec_mod.load(SMALL).grid()
    seen = np.zeros(grid.shape, dtype=np.int64)
    boxes = shards.shard_boxes(grid, shard_points)
    for box in boxes:
        assert math.prod(b - a for a, b in box) <= shard_points
        seen[tuple(slice(a, b) for a, b in box)] += 1
    assert (seen == 1).all()  # every point in exactly one shard
    assert len(boxes) >= math.ceil(grid.size / shard_points)
    assert boxes == shards.shard_boxes(spec_mod.load(SMALL).grid(), shard_points)  # a pure function


@pytest.mark.parametrize("options", [dict(workers=2, shard_points=7), dict(workers=1, shard_points=5, chunk_points=3, resume=True),
                                     dict(workers=2, shard_points=10, format="parquet"),
                                     dict(workers=1, shard_points=64, format="parquet")],
                         ids=["2-workers", "1-worker-sharded", "2-workers-parquet", "1-worker-parquet"])
def test_same_bytes_at_any_worker_count(tmp_path, options):
    reference = tmp_path / "ref.duckdb"
    api.sweep(SMALL, path=reference, workers=1, progress=False)
    target = tmp_path / ("ds" if options.get("format") == "parquet" else "t.duckdb")
    out = api.sweep(SMALL, path=target, output=target if options.get("format") else None, progress=False, **options)
    assert out["points"] == 64
    assert checksum(target) == checksum(reference)
    rows = "SELECT * EXCLUDE (sweep_id) FROM results ORDER BY ALL"
    assert api.query(rows, path=target).equals(api.query(rows, path=reference))
    fleet = "SELECT * FROM fleet_options ORDER BY ALL"
    assert api.query(fleet, path=target).equals(api.query(fleet, path=reference))
    if options.get("format") != "parquet":
        assert not (tmp_path / "t.duckdb.parts").exists()  # the staging parts are removed once ingested


def test_medium_grid_on_two_workers_matches_one(tmp_path, medium_reference):
    out = api.sweep(MEDIUM, path=tmp_path / "t.duckdb", workers=2, progress=False)
    assert out["shards"] == 3
    assert checksum(tmp_path / "t.duckdb") == medium_reference
    assert 0 < out["worker_peak_rss_mib"] < 1024  # bounded memory per worker


def test_dataset_layout(tmp_path):
    ds = tmp_path / "ds"
    assert main(["sweep", str(ROOT / "sweeps" / "seed.toml"), "--format", "parquet", "--output", str(ds),
                 "--workers", "2", "--shard-points", "100", "--quiet"]) == 0
    manifest = json.loads((ds / "manifest.json").read_text())
    parts = sorted(ds.glob("shard=*/part.parquet"))
    # seed, axes in registry order: model 5 x precision 2 x attention 2 x batch_size 6 x gpu 5 = 600 points.
    # Trailing axes while they fit in 100: gpu x batch x attention = 60 (x precision = 120 > 100), so one
    # shard per (model, precision): 10 shards of 60 points.
    assert manifest["complete"] and manifest["points"] == 600 and manifest["shards"] == len(parts) == 10
    assert manifest["completed"] == list(range(10)) and manifest["fits"] == 342
    assert [p.parent.name for p in parts] == [f"shard={i:05d}" for i in range(10)]
    meta = pq.read_metadata(parts[0])
    assert meta.num_rows == 60
    assert meta.row_group(0).column(0).compression == "ZSTD"
    assert not list(ds.rglob("*.tmp"))
    for tier in shards.SMALL_TIERS:
        assert (ds / f"{tier}.parquet").exists()


def test_query_reads_a_dataset_and_nothing_else(tmp_path, capsys):
    ds = tmp_path / "ds"
    api.sweep(SMALL, format="parquet", output=ds, workers=1, shard_points=10, progress=False)
    assert main(["query", "--db", str(ds), "SELECT count(*) AS n FROM results WHERE sweep = 'small'",
                 "--format", "csv"]) == 0
    assert capsys.readouterr().out.splitlines() == ["n", "64"]
    assert api.query("SELECT name, points FROM sweeps", path=ds).row(0) == ("small", 64)
    (tmp_path / "secret.csv").write_text("a\n1\n")
    for sql in (f"SELECT * FROM read_csv('{tmp_path / 'secret.csv'}')",
                f"COPY (SELECT 1) TO '{tmp_path / 'out.csv'}'", "SET enable_external_access = true"):
        with pytest.raises(TsizeError, match="query failed"):
            api.query(sql, path=ds)
    assert not (tmp_path / "out.csv").exists()


def test_resume_computes_only_missing_shards(tmp_path):
    ds = tmp_path / "ds"
    first = shards.run(spec_mod.load(SMALL), ds, shard_points=8, progress=False)
    assert first["shards"] == first["computed"] == 8
    kept = {p: p.stat().st_mtime_ns for p in ds.glob("shard=*/part.parquet")}
    for index in (2, 5):
        shards.part_path(ds, index).unlink()
    (shards.part_path(ds, 6).parent / ".part.parquet.999.tmp").write_bytes(b"PAR1 half a part")
    again = shards.run(spec_mod.load(SMALL), ds, shard_points=8, resume=True, progress=False)
    assert again["computed"] == 2 and again["fits"] == first["fits"]
    for path, mtime in kept.items():
        if path.parent.name not in ("shard=00002", "shard=00005"):
            assert path.stat().st_mtime_ns == mtime  # untouched
    assert not list(ds.rglob("*.tmp"))
    ref = tmp_path / "ref.duckdb"
    store.write(spec_mod.load(SMALL), path=ref, progress=False)
    assert checksum(ds) == checksum(ref)


def test_a_failing_shard_is_retried_then_reported_by_index(tmp_path, monkeypatch):
    real = shards.compute_shard
    calls: dict[int, int] = {}

    def flaky(spec, index, directory, **kw):
        calls[index] = calls.get(index, 0) + 1
        if index == 3 or (index == 1 and calls[index] == 1):
            raise OSError(f"disk hiccup on shard {index}")
        return real(spec, index, directory, **kw)

    monkeypatch.setattr(shards, "compute_shard", flaky)
    ds = tmp_path / "ds"
    with pytest.raises(TsizeError, match=r"1 of 8 shards failed after 3 attempts \(shards 3\); shard 3: "
                                         r"OSError: disk hiccup on shard 3; the 7 completed shards are kept"):
        shards.run(spec_mod.load(SMALL), ds, shard_points=8, progress=False)
    assert calls[3] == 3 and calls[1] == 2
    manifest = json.loads((ds / "manifest.json").read_text())
    assert manifest["completed"] == [0, 1, 2, 4, 5, 6, 7] and not manifest["complete"]
    with pytest.raises(TsizeError, match="incomplete .7 of 8 shards.*--resume"):
        api.query("SELECT 1", path=ds)
    monkeypatch.setattr(shards, "compute_shard", real)
    assert shards.run(spec_mod.load(SMALL), ds, shard_points=8, resume=True, progress=False)["computed"] == 1
    assert checksum(ds)[0] == 64


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry.name))
    return out


def _wait_for_part(ds: Path, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not list(ds.glob("shard=*/part.parquet")):
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < deadline
        time.sleep(0.01)


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").exists(), reason="finds worker processes through /proc")
def test_sigkill_of_the_driver_leaves_complete_parts_and_resume_finishes(tmp_path, medium_reference):
    ds = tmp_path / "ds"
    cmd = TSIZE + ["sweep", str(MEDIUM), "--format", "parquet", "--output", str(ds), "--workers", "2",
                   "--shard-points", "65536", "--quiet"]
    with subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, start_new_session=True) as proc:
        _wait_for_part(ds, proc)
        os.killpg(proc.pid, signal.SIGKILL)  # the driver and its workers, mid-sweep
        proc.wait()
    parts = list(ds.glob("shard=*/part.parquet"))
    manifest = json.loads((ds / "manifest.json").read_text())
    # trailing axes of the medium grid: attention 2 x recompute 3 x seq_len 3 x batch 6 x gpu 2 x n_gpus 8 x
    # tp 4 x pp 4 x zero 2 = 55,296 points fit in 65,536 (x 48 models do not): 48 shards, one per model
    assert 1 <= len(parts) < manifest["shards"] == 48 and not manifest["complete"]
    for part in parts:  # every visible part is whole: footer, summary and rows agree
        summary = shards.read_part(part)
        assert summary and pq.read_table(part).num_rows == summary["rows"] == 55296
    with pytest.raises(TsizeError, match="incomplete"):
        api.query("SELECT 1", path=ds)
    resumed = subprocess.run(cmd[:-1] + ["--resume", "--quiet"], check=False, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert checksum(ds) == medium_reference
    assert not list(ds.rglob("*.tmp"))


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").exists(), reason="finds worker processes through /proc")
def test_sigkill_of_a_worker_is_retried_and_the_result_is_whole(tmp_path, medium_reference):
    db = tmp_path / "t.duckdb"
    cmd = TSIZE + ["sweep", str(MEDIUM), "--db", str(db), "--workers", "2", "--shard-points", "65536", "--quiet"]
    with subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, start_new_session=True) as proc:
        _wait_for_part(tmp_path / "t.duckdb.parts" / "capacity-2gpu", proc)
        workers = [w for child in _children(proc.pid) for w in _children(child)]  # forkserver -> workers
        assert workers
        os.kill(workers[0], signal.SIGKILL)
        assert proc.wait(timeout=120) == 0, proc.stderr.read()
    assert checksum(db) == medium_reference


def test_bad_input_is_one_line_and_changes_nothing(tmp_path, capsys, monkeypatch):
    seed = str(ROOT / "sweeps" / "seed.toml")
    monkeypatch.chdir(tmp_path)

    def fails(*argv: str, match: str) -> None:
        before = sorted(str(p) for p in tmp_path.rglob("*"))
        assert main(["sweep", seed, *argv]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("tsize: error: ") and match in err, err
        assert sorted(str(p) for p in tmp_path.rglob("*")) == before

    fails("--workers", "0", match="--workers 0 is out of range; valid: an integer >= 1")
    fails("--workers", "-3", "--format", "parquet", "--output", "ds", match="--workers -3 is out of range")
    fails("--format", "parquet", match="--format parquet needs --output DIR")
    fails("--ray", "127.0.0.1:1", "--output", "ds", match="cannot reach the Ray cluster at 127.0.0.1:1")
    fails("--ray", "not an address", match="is not a Ray address; valid: auto, HOST:PORT")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    fails("--format", "parquet", "--output", "mine", match="holds files that are not a tsize sweep (file 'notes.txt')")
    api.sweep(SMALL, format="parquet", output=tmp_path / "other", workers=1, progress=False)
    stamp = {p: p.stat().st_mtime_ns for p in (tmp_path / "other").rglob("*")}
    fails("--format", "parquet", "--output", "other", "--workers", "2",
          match="holds another sweep's files (sweep 'small'")
    fails("--output", "other", "--workers", "2", match="holds another sweep's files (sweep 'small'")
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "other").rglob("*")} == stamp
    api.sweep(seed, format="parquet", output=tmp_path / "seed-ds", workers=1, shard_points=100, progress=False)
    fails("--format", "parquet", "--output", "seed-ds", "--shard-points", "100",
          match="already holds sweep 'seed' (10 of 10 shards); pass --resume")


def test_a_worker_with_other_catalogs_refuses_its_shard(tmp_path):
    loaded = spec_mod.load(SMALL)
    with pytest.raises(TsizeError, match="catalog versions differ on this worker"):
        shards.compute_shard(loaded, 0, str(tmp_path), shard_points=8, fp=shards.fingerprint(loaded, 8),
                             catalogs={"gpus": "another version"})
    assert not list(tmp_path.rglob("*.parquet"))


def test_ray_missing_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(TsizeError, match=r"^--ray needs Ray: pip install 'tsize\[ray\]'$"):
        api.sweep(SMALL, path=tmp_path / "t.duckdb", ray=True, progress=False)
    assert not list(tmp_path.iterdir())
