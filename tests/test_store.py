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


#: Memory accounting settings away from their defaults: the view derives memory_required_bytes and memory_share.
MEMORY = {"name": "memory", "models": ["gpt2", "llama-3-8b"],
          "grid": {"batch_size": [1, 3], "gpu": ["nvidia_h100_sxm", "nvidia_l4", "amd_mi300x"], "n_gpus": [1, 8],
                   "tp": [1, 2], "zero_stage": [0, 3], "allocator_slack": [0.0, 0.1, 0.37],
                   "overhead_bytes": [0.0, 1e9, 123456789.5]}}


@pytest.mark.parametrize("spec, points", [(SMALL, 2 * 2**5), (STEP, 2 * 2**11 * 9 // 4),
                                          (MEMORY, 2 * 2 * 3 * 2 * 2 * 2 * 3 * 3)])
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


def test_small_chunks_on_parallel_inserts_store_the_same_rows(tmp_path):
    """About a hundred chunks per tier through the writer's concurrent cursors: the same rows as one chunk per tier."""
    one, many = tmp_path / "one.duckdb", tmp_path / "many.duckdb"
    store.write(spec_mod.load(STEP), path=one, progress=False, chunk_points=2**20)
    summary = store.write(spec_mod.load(STEP), path=many, progress=False, chunk_points=97)
    rows = "SELECT * EXCLUDE (sweep_id) FROM results ORDER BY ALL"
    assert store.query(rows, path=many).equals(store.query(rows, path=one))
    # STEP has layouts equal in cost, time and memory (interleave 1 and 2 at pp = 1): the same option either way
    fleet = "SELECT * FROM fleet_options ORDER BY ALL"
    options = store.query(fleet, path=one)
    assert store.query(fleet, path=many).equals(options)
    assert options.filter(pl.col("fits") & (pl.col("pp") == 1))["interleave"].to_list() == [1] * len(
        options.filter(pl.col("fits") & (pl.col("pp") == 1)))
    assert summary["fits"] == store.query("SELECT count(*) AS n FROM results WHERE fits", path=one)["n"][0]


def test_fit_count_of_a_mixed_sweep_reuses_the_evaluation(tmp_path, monkeypatch):
    """Train and serve points in one sweep: fits counted by each point's mode, from the evaluation that also
    built the chunk (not a second one per box)."""
    mixed = {"name": "mixed", "models": ["gpt2", "llama-3-8b"],
             "grid": {"mode": ["train", "serve"], "gpu": ["nvidia_h100_sxm", "nvidia_l4"], "n_gpus": [1, 8],
                      "batch_size": [1, 64], "concurrency": [1, 256], "context_len": [512, 4096]}}
    given = []
    real = store.fit_count

    def counting(grid, box, chunk, values=None):
        given.append(values is not None)
        return real(grid, box, chunk, values)

    monkeypatch.setattr(store, "fit_count", counting)
    summary = store.write(spec_mod.load(mixed), path=tmp_path / "t.duckdb", progress=False, chunk_points=8)
    assert given == [True] * 16  # 128 points in boxes of 8
    frame = sweep.frame(mixed)
    expected = frame.select(pl.when(pl.col("mode") == "serve").then(pl.col("serving_fits"))
                            .otherwise(pl.col("fits")).sum()).item()
    assert 0 < summary["fits"] == expected < 128


def test_a_failed_insert_is_raised_and_frees_the_cursors(tmp_path):
    import pyarrow as pa

    con = store.open_for_write(tmp_path / "t.duckdb")
    try:
        writer = store._Writer(con, "INSERT INTO models SELECT * FROM chunk")  # wrong column count
        writer.put(pa.table({"x": [1, 2]}))
        with pytest.raises(Exception, match="(?i)column|insert"):
            writer.put(pa.table({"x": [3]}))
            writer.close()
        assert writer.free == [] and writer.busy == []
    finally:
        con.close()


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

    def failing(grid, tier, box, *values):
        calls["n"] += 1
        if tier == "points" and calls["n"] > 12:
            raise OSError(28, "No space left on device")
        return real(grid, tier, box, *values)

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


# --- issue 10: crash-safe creation, 64-bit columns, the query sandbox ------------------------------------


def test_64_bit_integer_columns_keep_large_inputs(tmp_path):
    """Issue 10: batch_size = 3,000,000,000 was stored as -1,294,967,296 in a 32-bit column."""
    db = tmp_path / "t.duckdb"
    big = {"name": "big", "models": ["gpt2"], "grid": {"batch_size": [3_000_000_000], "n_gpus": [2**32]}}
    store.write(spec_mod.load(big), path=db, progress=False)
    row = store.query("SELECT batch_size, n_gpus, seq_len, n_ctx FROM results", path=db).row(0)
    assert row == (3_000_000_000, 2**32, 1024, 1024)
    kinds = store.query("SELECT data_type FROM information_schema.columns WHERE column_name IN "
                        "('batch_size', 'n_gpus', 'grad_accum', 'seq_len', 'n_ctx', 'sweep_id', 'step_key') "
                        "GROUP BY ALL", path=db)
    assert set(kinds["data_type"]) == {"BIGINT"}


def _tables(db: Path) -> set[str]:
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    try:
        return {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    finally:
        con.close()


@pytest.mark.parametrize("state", ["empty file", "no tables", "half-created by tsize"])
def test_a_file_holding_nothing_is_treated_as_new(tmp_path, state):
    """Issue 10: a half-created file made every later sweep fail with 'another layout'."""
    import duckdb

    db = tmp_path / "t.duckdb"
    if state == "empty file":
        db.write_bytes(b"")
    else:
        con = duckdb.connect(str(db))
        if state == "half-created by tsize":  # what an interrupted creation of the earlier layout left
            con.execute("CREATE TABLE tsize_schema (fingerprint VARCHAR, tsize_version VARCHAR)")
            con.execute(store._SWEEPS)
            con.execute("CREATE TABLE models (sweep_id INTEGER)")
        con.close()
    store.write(spec_mod.load(SMALL), path=db, progress=False)
    assert store.query("SELECT count(*) FROM results", path=db).item() == 64


def test_a_foreign_duckdb_file_is_refused_untouched(tmp_path):
    import duckdb

    db = tmp_path / "t.duckdb"
    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE invoices AS SELECT 1 AS amount")
    con.close()
    with pytest.raises(ValueError, match=r"t\.duckdb is a DuckDB file with tables tsize did not write \(invoices\); "
                                         r"tsize leaves it alone: give another --db file"):
        store.write(spec_mod.load(SMALL), path=db, progress=False)
    assert _tables(db) == {"invoices"}


def test_an_unreadable_file_is_refused_untouched(tmp_path, capsys):
    db = tmp_path / "t.duckdb"
    db.write_bytes(b"not a database" * 100)
    assert main(["sweep", str(ROOT / "sweeps" / "seed.toml"), "--db", str(db), "--quiet"]) == 2
    assert "not a readable DuckDB file" in capsys.readouterr().err
    assert db.read_bytes() == b"not a database" * 100


def test_creation_is_all_or_nothing(tmp_path, monkeypatch):
    """The schema is built in a temporary file; a failure before it is complete leaves no file at the path."""
    db = tmp_path / "t.duckdb"
    real = store._schema_sql

    def failing():
        return real()[:3] + ["CREATE TABLE broken (x NO_SUCH_TYPE)"]

    monkeypatch.setattr(store, "_schema_sql", failing)
    with pytest.raises(Exception):
        store.write(spec_mod.load(SMALL), path=db, progress=False)
    assert not db.exists()
    assert list(tmp_path.iterdir()) == []  # no temporary file left either
    monkeypatch.setattr(store, "_schema_sql", real)
    store.write(spec_mod.load(SMALL), path=db, progress=False)
    assert store.query("SELECT count(*) FROM results", path=db).item() == 64


@pytest.fixture(scope="module")
def small_db(tmp_path_factory) -> Path:
    db = tmp_path_factory.mktemp("store") / "t.duckdb"
    store.write(spec_mod.load(SMALL), path=db, progress=False)
    return db


#: Each attack of issue 10 item 4 on ``tsize query``, and the start of the error it must now get.
ATTACKS = {
    "ATTACH '{other}' AS o (READ_WRITE)": "got ATTACH",
    "ATTACH '{other}' AS o": "got ATTACH",
    "SELECT * FROM '{other}'": "query failed: Permission Error",
    "COPY (SELECT 1) TO '{out}'": "got COPY",
    "EXPORT DATABASE '{outdir}'": "got EXPORT",
    "SET profiling_output = '{out}'": "got SET",
    "SET enable_external_access = true": "got SET",
    "RESET lock_configuration": "got RESET",
    "PRAGMA enable_profiling": "got PRAGMA",
    "CALL pragma_version()": "got CALL",
    "CHECKPOINT": "got CHECKPOINT",
    "VACUUM": "got VACUUM",
    "CREATE TEMP TABLE x AS SELECT 1": "got CREATE",
    "INSTALL spatial": "got INSTALL",
    "LOAD spatial": "got LOAD",
    "SELECT * FROM read_text('/etc/passwd')": "query failed: Permission Error",
    "SELECT * FROM read_text('/proc/self/environ')": "query failed: Permission Error",
    "SELECT * FROM glob('/**')": "query failed: Permission Error",
    "SELECT * FROM read_csv('{other}')": "query failed: Permission Error",
    "SELECT * FROM query('ATTACH ''{other}''')": "query failed: Parser Error",
    "SELECT 1; DELETE FROM points": "give one SQL statement, got 2",
    "SELECT 1; SELECT 2": "give one SQL statement, got 2",
    "DELETE FROM points": "got DELETE",
    "DROP VIEW results": "got DROP",
}


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_query_sandbox_refuses_each_attack(small_db, tmp_path, capsys, attack):
    """Issue 10: ATTACH emptied another store, COPY/EXPORT/profiling wrote files anywhere, read_text read
    /etc/passwd, SET/PRAGMA/CALL/CHECKPOINT/VACUUM/CREATE TEMP ran. Each is refused and changes nothing."""
    import duckdb

    other = tmp_path / "other.duckdb"
    con = duckdb.connect(str(other))
    con.execute("CREATE TABLE t AS SELECT 42 AS v")
    con.close()
    before = {p: p.stat().st_mtime_ns for p in (small_db, other)}
    sql = attack.format(other=other, out=tmp_path / "out.csv", outdir=tmp_path / "exported")
    assert main(["query", sql, "--db", str(small_db)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tsize: error: ") and ATTACKS[attack] in err, err
    assert {p: p.stat().st_mtime_ns for p in (small_db, other)} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.duckdb"]  # nothing written
    con = duckdb.connect(str(other), read_only=True)
    assert con.execute("SELECT v FROM t").fetchall() == [(42,)]
    con.close()


def test_query_sql_stays_unrestricted_inside_the_store(small_db):
    """Windows, CTEs, QUALIFY, DESCRIBE, EXPLAIN and the catalog functions still run."""
    frame = store.query("WITH r AS (SELECT model, gpu, memory_required_bytes FROM results) "
                        "SELECT model, gpu FROM r QUALIFY row_number() OVER (PARTITION BY model "
                        "ORDER BY memory_required_bytes) = 1 ORDER BY model", path=small_db)
    assert frame["model"].to_list() == ["gpt2", "llama-3-8b"]
    assert store.query("DESCRIBE results", path=small_db).height > 50
    assert store.query("EXPLAIN SELECT count(*) FROM results", path=small_db).height >= 1
    assert store.query("SELECT current_setting('enable_external_access') AS e", path=small_db).item() is False


def test_query_output_refuses_the_store_and_existing_files(small_db, tmp_path, capsys):
    """Issue 10: --output pointed at the store overwrote it with a 4-byte CSV."""
    size_before = small_db.stat().st_size
    for fmt in ("csv", "json", "parquet", "table"):
        assert main(["query", "SELECT 1 AS x", "--db", str(small_db), "--format", fmt, "--output",
                     str(small_db), "--force"]) == 2
        assert "is the results database being read" in capsys.readouterr().err
    assert small_db.stat().st_size == size_before
    out = tmp_path / "out.csv"
    out.write_text("keep me")
    assert main(["query", "SELECT 1 AS x", "--db", str(small_db), "--format", "csv", "--output", str(out)]) == 2
    assert "exists; give --force to overwrite it" in capsys.readouterr().err
    assert out.read_text() == "keep me"
    assert main(["query", "SELECT 1 AS x", "--db", str(small_db), "--format", "csv", "--output", str(out),
                 "--force"]) == 0
    assert out.read_text() == "x\n1\n"


#: One column of every kind DuckDB has, and its value as each format must write it.
TYPES_SQL = ("SELECT '\\xAA\\x00'::BLOB AS blob, [1, 2] AS list, {'x': 1, 'y': 'a'} AS struct, MAP {'k': 1} AS map, "
             "union_value(num := 2)::UNION(num INT, s VARCHAR) AS u, INTERVAL 3 DAY AS i, 1::BIGNUM AS bignum, "
             "'0101'::BIT AS bit, 'infinity'::DATE AS date, 'infinity'::TIMESTAMP AS ts, [INTERVAL 1 DAY] AS li, "
             "{'b': '\\xAA'::BLOB} AS sb, 'nan'::DOUBLE AS nan, 170141183460469231731687303715884105727::HUGEINT AS h, "
             "[1, 2, 3]::INT[3] AS arr, 'a'::ENUM('a', 'b') AS e, TIME '01:02:03' AS t, NULL AS n")


@pytest.mark.parametrize("fmt", ["csv", "json", "parquet", "table"])
def test_query_writes_every_duckdb_type(small_db, tmp_path, capsys, fmt):
    """Issue 10: --format csv crashed on BLOB and list/struct columns (Polars panicked on others)."""
    out = tmp_path / f"out.{fmt}"
    args = ["query", TYPES_SQL, "--db", str(small_db), "--format", fmt]
    assert main(args + (["--output", str(out)] if fmt != "table" else [])) == 0, capsys.readouterr().err
    if fmt == "csv":
        text = out.read_text()
        assert text.splitlines()[0].startswith("blob,list,struct,map,u,i,bignum,bit,date,ts,li,sb,nan,h,arr,e,t,n")
        assert "\\xAA\\x00,\"[1, 2]\",\"{'x': 1, 'y': a}\",{k=1},2,3 days,1,0101,infinity,infinity" in text
    elif fmt == "json":
        row = json.loads(out.read_text())[0]
        assert row["list"] == [1, 2] and row["struct"] == {"x": 1, "y": "a"} and row["map"] == {"k": 1}
        assert row["i"] == "3 days" and row["date"] == "infinity" and row["nan"] is None and row["n"] is None
        assert row["h"] == 170141183460469231731687303715884105727 and row["arr"] == [1, 2, 3]
    elif fmt == "parquet":
        back = pl.read_parquet(out)
        assert back["list"].to_list() == [[1, 2]] and back["blob"].to_list() == [b"\xaa\x00"]
        assert back["i"].to_list() == ["3 days"] and back["u"].to_list() == ["2"]
    else:
        assert "3 days" in capsys.readouterr().out
