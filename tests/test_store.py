"""The DuckDB store: round trip, atomic replace, interruption, concurrency, read-only queries."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest
from tsize import frames as sweep
from tsize import spec as spec_mod
from tsize import store
from tsize.cli.main import main

ROOT = Path(__file__).resolve().parent.parent
SMALL = {"name": "small", "models": ["gpt2", "llama-3-8b"],
         "grid": {"batch_size": [1, 8], "gpu": ["nvidia_h100_sxm", "nvidia_l4"], "n_gpus": [1, 8],
                  "zero_stage": [0, 3], "precision": ["amp-bf16", "fp32"]}}


def _strings(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_columns(pl.col(pl.Categorical).cast(pl.String))


STEP = {"name": "step", "models": ["gpt2", "llama-3-8b"],
        "grid": {"batch_size": [1, 4], "seq_len": 1024, "n_gpus": [8, 64], "tp": [1, 8], "pp": [1, 2],
                 "interleave": [1, 2, 5], "global_batch_size": [0, 64, 100], "assumed_mfu": [float("nan"), 0.5],
                 "system": ["auto", "pcie_server"], "zero_stage": [1, 3], "recompute": ["none", "full"],
                 "gpu": ["nvidia_h100_sxm", "nvidia_l4"]}}


def test_derived_outputs_are_the_unstored_ones():
    from tsize.registry import OUTPUTS

    names = [n for n, _ in store.DERIVED if not n.startswith("_")]
    assert names == [o.name for o in OUTPUTS if not o.stored] or set(names) == {o.name for o in OUTPUTS
                                                                                 if not o.stored}
    assert len(names) == len(set(names))


@pytest.mark.parametrize("spec, points", [(SMALL, 2 * 2**5), (STEP, 2 * 2**11 * 9 // 4)])
def test_results_view_equals_the_frame(tmp_path, spec, points):
    """Stored and view-computed columns equal the frame evaluate() builds, exactly."""
    db = tmp_path / "t.duckdb"
    summary = store.write(spec_mod.load(spec), path=db, progress=False)
    assert summary["points"] == points
    stored = store.query("SELECT * EXCLUDE (sweep, sweep_id) FROM results", path=db)
    frame = _strings(sweep.frame(spec))
    stored = stored.with_columns([pl.col(c).cast(frame.schema[c]) for c in stored.columns])
    assert stored.columns == frame.columns
    assert stored.sort(pl.all()).equals(frame.sort(pl.all()))
    assert summary["fits"] == frame["fits"].sum()


def test_sweeps_table_records_provenance(tmp_path):
    db = tmp_path / "t.duckdb"
    store.write(spec_mod.load(ROOT / "sweeps" / "seed.toml"), path=db, progress=False)
    row = store.query("SELECT * FROM sweeps", path=db).row(0, named=True)
    assert row["name"] == "seed" and row["points"] == 600 and "batch_size" in row["spec"]
    assert set(json.loads(row["catalogs"])) == {"models", "gpus", "precisions", "optimizers", "systems"}
    assert row["tsize_version"] and row["created_at"] and row["seconds"] > 0


def test_rerun_replaces_rows(tmp_path):
    db = tmp_path / "t.duckdb"
    store.write(spec_mod.load(SMALL), path=db, progress=False)
    store.write(spec_mod.load(ROOT / "sweeps" / "seed.toml"), path=db, progress=False)
    changed = dict(SMALL, grid=dict(SMALL["grid"], batch_size=[2]))
    store.write(spec_mod.load(changed), path=db, progress=False)
    counts = dict(store.query("SELECT sweep, count(*) FROM results GROUP BY ALL", path=db).iter_rows())
    assert counts == {"small": 32, "seed": 600}
    assert store.query("SELECT DISTINCT batch_size FROM results WHERE sweep = 'small'", path=db).item() == 2
    for tier in ("points", "steps", "models"):  # no leftover rows of the replaced sweep
        orphans = store.query(f"SELECT count(*) FROM {tier} WHERE sweep_id NOT IN (SELECT sweep_id FROM sweeps)",
                              path=db).item()
        assert orphans == 0


def _victim_spec(tmp_path) -> Path:
    text = (ROOT / "sweeps" / "capacity.toml").read_text().replace('name = "capacity"', 'name = "victim"')
    path = tmp_path / "victim.toml"
    path.write_text(text)
    return path


def _prepare(tmp_path) -> tuple[Path, pl.DataFrame]:
    db = tmp_path / "t.duckdb"
    store.write(spec_mod.load(ROOT / "sweeps" / "seed.toml"), path=db, progress=False)
    store.write(spec_mod.load(dict(SMALL, name="victim")), path=db, progress=False)
    return db, store.query("SELECT * FROM results ORDER BY ALL", path=db)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT])
def test_interrupted_sweep_leaves_earlier_results(tmp_path, sig):
    db, before = _prepare(tmp_path)
    proc = subprocess.Popen([sys.executable, "-m", "tsize.cli.main", "sweep", str(_victim_spec(tmp_path)), "--db",
                             str(db), "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # wait until it is writing the big points tier
        time.sleep(0.2)
        wal = Path(str(db) + ".wal")
        if wal.exists() and wal.stat().st_size > 5_000_000:
            break
    proc.send_signal(sig)
    proc.wait(timeout=60)
    assert proc.returncode != 0
    after = store.query("SELECT * FROM results ORDER BY ALL", path=db)
    assert after.equals(before)
    # the next write removes what the interrupted one left behind
    store.write(spec_mod.load(SMALL), path=db, progress=False)
    assert store.query("SELECT count(*) FROM points WHERE sweep_id NOT IN (SELECT sweep_id FROM sweeps)",
                       path=db).item() == 0


def test_failure_mid_write_leaves_earlier_results(tmp_path, monkeypatch):
    """A write that dies half-way (a full disk, say) changes nothing that readers see."""
    db, before = _prepare(tmp_path)
    calls = {"n": 0}
    real = store._arrow_chunk

    def failing(grid, tier, box):
        calls["n"] += 1
        if tier == "points" and calls["n"] > 12:
            raise OSError(28, "No space left on device")
        return real(grid, tier, box)

    monkeypatch.setattr(store, "_arrow_chunk", failing)
    big = dict(SMALL, name="victim", grid=dict(SMALL["grid"], batch_size=list(range(1, 200))))
    with pytest.raises(OSError, match="No space left"):
        store.write(spec_mod.load(big), path=db, progress=False, chunk_points=64)
    assert store.query("SELECT * FROM results ORDER BY ALL", path=db).equals(before)


def test_second_writer_fails_clearly(tmp_path):
    db = tmp_path / "t.duckdb"
    store.write(spec_mod.load(SMALL), path=db, progress=False)
    holder = subprocess.Popen([sys.executable, "-c", f"import duckdb, time; c = duckdb.connect({str(db)!r}); "
                               "print('ready', flush=True); time.sleep(30)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        holder.stdout.close()
        with pytest.raises(ValueError, match=r"is being written by another tsize process.*waited 0\.5 s"):
            store.write(spec_mod.load(SMALL), path=db, progress=False, wait_s=0.5)
    finally:
        holder.kill()
        holder.wait()
    assert store.query("SELECT count(*) FROM results", path=db).item() == 64


def test_query_is_read_only(tmp_path, capsys):
    db = tmp_path / "t.duckdb"
    store.write(spec_mod.load(SMALL), path=db, progress=False)
    before = db.stat().st_mtime_ns
    for sql in ("DELETE FROM points", "DROP VIEW results", "CREATE TABLE x AS SELECT 1",
                "UPDATE sweeps SET name = 'x'"):
        assert main(["query", sql, "--db", str(db)]) == 2
        assert "read-only" in capsys.readouterr().err
    assert db.stat().st_mtime_ns == before
    assert store.query("SELECT count(*) FROM results", path=db).item() == 64


@pytest.mark.parametrize("fmt", ["csv", "json", "parquet"])
def test_query_formats(tmp_path, capsys, fmt):
    db = tmp_path / "t.duckdb"
    store.write(spec_mod.load(SMALL), path=db, progress=False)
    out = tmp_path / f"out.{fmt}"
    sql = "SELECT model, gpu, max(batch_size) AS b FROM results WHERE fits GROUP BY ALL ORDER BY ALL"
    assert main(["query", sql, "--db", str(db), "--format", fmt, "--output", str(out)]) == 0
    read = {"csv": pl.read_csv, "json": pl.read_json, "parquet": pl.read_parquet}[fmt](out)
    expected = (_strings(sweep.frame(SMALL)).filter("fits").group_by("model", "gpu").agg(b=pl.col("batch_size").max())
                .sort(pl.all()))
    assert read.columns == ["model", "gpu", "b"]
    assert read.rows() == expected.rows()


def test_query_errors(tmp_path, capsys):
    assert main(["query", "SELECT 1", "--db", str(tmp_path / "none.duckdb")]) == 2
    assert "no results database at" in capsys.readouterr().err
    db = tmp_path / "t.duckdb"
    store.write(spec_mod.load(SMALL), path=db, progress=False)
    assert main(["query", "SELEC nonsense", "--db", str(db)]) == 2
    assert "query failed: Parser Error" in capsys.readouterr().err


def test_sweep_command_summary(tmp_path, capsys):
    db = tmp_path / "t.duckdb"
    assert main(["sweep", str(ROOT / "sweeps" / "seed.toml"), "--db", str(db)]) == 0
    out = capsys.readouterr()
    assert "sweep 'seed': 600 points, 342 fit" in out.out and str(db) in out.out
    assert out.err == ""  # no progress bar when stderr is not a terminal


def test_default_database_location(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TSIZE_DB", raising=False)
    assert main(["sweep", str(ROOT / "sweeps" / "seed.toml"), "--quiet"]) == 0
    assert (tmp_path / "outputs" / "tsize.duckdb").exists()
    os.environ.pop("TSIZE_DB", None)


def test_a_file_in_another_layout_is_refused_untouched(tmp_path):
    db = tmp_path / "t.duckdb"
    store.write(spec_mod.load(SMALL), path=db, progress=False)
    import duckdb

    con = duckdb.connect(str(db))
    con.execute("UPDATE tsize_schema SET fingerprint = 'older', tsize_version = '0.0.1'")
    con.close()
    with pytest.raises(ValueError, match=r"t\.duckdb holds results in another layout \(written by tsize 0\.0\.1\)"):
        store.write(spec_mod.load(SMALL), path=db, progress=False)
    assert store.query("SELECT count(*) FROM results", path=db).item() == 64
