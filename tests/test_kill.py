"""kill -9 at random moments of a sweep: every file stays usable and no committed row is lost.

Issue 10 found that killing the first sweep into a new file left a third of the files truncated or
half-created. Here a real ``tsize`` process is killed (SIGKILL, no cleanup) at random points, from the
store's creation to the commit, both into a new file and into one holding earlier sweeps; then the file
is opened, checked and swept again. The random points are drawn with a fixed seed; half of them fall in
the first 0.08 s after the process starts writing, where the new file is created.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
from tsize import spec as spec_mod
from tsize import store

KILL_SPEC = {"name": "victim", "models": ["gpt2", "llama-2-7b", "mixtral-8x7b"],
             "grid": {"batch_size": [1, 2, 4, 8], "gpu": "all", "n_gpus": [8, 64, 512], "tp": [1, 2, 8],
                      "zero_stage": [0, 3]}}
KEEP_SPEC = {"name": "keep", "models": ["gpt2"], "grid": {"batch_size": [1, 2, 4], "gpu": ["nvidia_h100_sxm"]}}
#: Replaces "keep" with a different grid: after a kill "keep" must be wholly the old or wholly the new.
REPLACE_SPEC = {"name": "keep", "models": ["gpt2", "llama-2-7b"], "grid": {"batch_size": [1, 2, 4, 8],
                                                                           "gpu": "all"}}
AGAIN_SPEC = {"name": "again", "models": ["gpt2-tiny"], "grid": {"batch_size": [1, 2]}}

_CHILD = """
import json, sys
from tsize import spec, store
loaded = spec.load(json.loads(sys.argv[2]))
print("go", flush=True)
store.write(loaded, path=sys.argv[1], progress=False, chunk_points=int(sys.argv[3]))
print("done", flush=True)
"""


def _killed_sweep(db: Path, spec: dict, delay: float, chunk_points: int = 2000) -> bool:
    """Start a sweep in a child process, SIGKILL it ``delay`` s after it starts writing; True if it finished first."""
    import json

    child = subprocess.Popen([sys.executable, "-c", _CHILD, str(db), json.dumps(spec), str(chunk_points)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "go", child.stderr.read()
    time.sleep(delay)
    finished = child.poll() is not None
    if not finished:
        os.kill(child.pid, signal.SIGKILL)
    child.wait()
    child.stdout.close()
    child.stderr.close()
    return finished and child.returncode == 0


def _sweep_rows(db: Path) -> dict[str, tuple]:
    """Per stored sweep: rows, sum of params_total, fitting rows, sum of whole bytes required (a checksum)."""
    frame = store.query("SELECT sweep, count(*) AS n, sum(params_total) AS p, count(*) FILTER (WHERE fits) AS f, "
                        "sum(floor(memory_required_bytes)::HUGEINT) FILTER (WHERE isfinite(memory_required_bytes)) "
                        "AS m FROM results GROUP BY sweep", path=db)
    return {row["sweep"]: (row["n"], row["p"], row["f"], row["m"]) for row in frame.iter_rows(named=True)}


def _usable(db: Path) -> dict[str, tuple]:
    """Open the file as a user would (read-only query, then a new sweep); the stored sweeps before the new one."""
    before = _sweep_rows(db) if db.exists() else {}
    result = store.write(spec_mod.load(AGAIN_SPEC), path=db, progress=False)
    assert result["points"] == 2
    after = _sweep_rows(db)
    assert after["again"][0] == 2
    assert {k: v for k, v in after.items() if k != "again"} == {k: v for k, v in before.items() if k != "again"}
    return before


def _delays(rng: random.Random, n: int, span: float) -> list[float]:
    return [rng.uniform(0.0, 0.08) if i % 2 == 0 else rng.uniform(0.0, span) for i in range(n)]


@pytest.fixture(scope="module")
def expected(tmp_path_factory) -> dict[str, dict[str, tuple]]:
    """The complete contents of each spec, written without interruption (and how long the victim takes)."""
    out = {}
    for spec in (KILL_SPEC, KEEP_SPEC, REPLACE_SPEC):
        db = tmp_path_factory.mktemp("ref") / "ref.duckdb"
        started = time.perf_counter()
        store.write(spec_mod.load(spec), path=db, progress=False, chunk_points=2000)
        out[id(spec)] = _sweep_rows(db)
        out[f"seconds {id(spec)}"] = time.perf_counter() - started
    return out


def test_kill_during_the_first_sweep_into_a_new_file(tmp_path, expected):
    rng = random.Random(10)
    span = max(expected[f"seconds {id(KILL_SPEC)}"], 0.3)
    unusable = []
    for i, delay in enumerate(_delays(rng, 7, span)):
        db = tmp_path / f"new{i}" / "tsize.duckdb"
        db.parent.mkdir()
        finished = _killed_sweep(db, KILL_SPEC, delay)
        try:
            before = _usable(db)
        except Exception as exc:  # noqa: BLE001 - counted and reported below
            unusable.append(f"kill at {delay:.3f} s: {type(exc).__name__}: {exc}")
            continue
        # the victim's sweep is either absent or complete, never partial
        assert before.get("victim") in (None, expected[id(KILL_SPEC)]["victim"]), (delay, before)
        if finished:
            assert before["victim"] == expected[id(KILL_SPEC)]["victim"]
        assert not list(db.parent.glob(".*.creating*")), "temporary files of killed creations are cleaned up"
    assert unusable == []


def test_kill_during_a_sweep_into_an_existing_file(tmp_path, expected):
    rng = random.Random(11)
    db = tmp_path / "tsize.duckdb"
    store.write(spec_mod.load(KEEP_SPEC), path=db, progress=False)
    keep_old = expected[id(KEEP_SPEC)]["keep"]
    keep_new = expected[id(REPLACE_SPEC)]["keep"]
    span = max(expected[f"seconds {id(REPLACE_SPEC)}"], expected[f"seconds {id(KILL_SPEC)}"], 0.3)
    victims_committed = None
    for i, delay in enumerate(_delays(rng, 6, span)):
        victim = REPLACE_SPEC if i % 2 else KILL_SPEC
        _killed_sweep(db, victim, delay)
        before = _usable(db)
        assert before["keep"] in (keep_old, keep_new), (delay, before["keep"])  # never a partial replacement
        assert before.get("victim") in (None, expected[id(KILL_SPEC)]["victim"])
        if victims_committed is not None:  # once committed, a sweep is never lost (a replacement is identical)
            assert before.get("victim") == victims_committed
        victims_committed = before.get("victim")
    con = duckdb.connect(str(db), read_only=True)
    try:
        orphans = con.execute("SELECT count(*) FROM points WHERE sweep_id NOT IN (SELECT sweep_id FROM sweeps)")
        assert orphans.fetchall()[0][0] == 0  # the last write removed every interrupted write's rows
    finally:
        con.close()
