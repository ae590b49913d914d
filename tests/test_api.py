"""The api: the one door the command line uses (store, catalogs, charts, validation), end to end."""

from __future__ import annotations

import importlib.metadata
import math
from pathlib import Path

import pytest
from tsize import api
from tsize.errors import TsizeError

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    path = tmp_path_factory.mktemp("api") / "t.duckdb"
    result = api.sweep(ROOT / "sweeps" / "seed.toml", path=path, progress=False)
    return path, result


def test_sweep_summary(db):
    _, result = db
    assert result["sweep"] == "seed" and result["points"] == 600  # 5 models x 6 batches x 2 dtypes x 2 kernels x 5 GPUs
    assert result["fit_share"] == result["fits"] / 600
    assert result["points_per_s"] == pytest.approx(600 / result["seconds"], rel=1e-6)


def test_query_and_sweeps(db, tmp_path):
    path, _ = db
    assert api.query("SELECT count(*) AS n FROM results", path=path)["n"][0] == 600
    sql = tmp_path / "q.sql"
    sql.write_text("SELECT DISTINCT model FROM results ORDER BY model")
    assert api.query(file=sql, path=path)["model"].to_list()[0] == "gpt2"
    assert api.sweeps(path)["name"].to_list() == ["seed"]


@pytest.mark.parametrize("kwargs", [{}, {"sql": "SELECT 1", "file": "q.sql"}])
def test_query_takes_one_source(kwargs):
    with pytest.raises(TsizeError, match="give one SQL statement or --file FILE"):
        api.query(**kwargs)


def test_chart_of_nothing_says_why(db, tmp_path):
    path, _ = db
    with pytest.raises(TsizeError, match="no points to chart: sweep 'fleet' selected no rows"):
        api.chart("pareto", path=path, output=tmp_path / "c.html")
    with pytest.raises(TsizeError, match="unknown chart 'pie'; valid: pareto, fleet"):
        api.chart("pie", path=path)


@pytest.mark.parametrize("which,key,count", [("gpus", "id", 37), ("models", "name", None), ("precisions", "id", None),
                                             ("optimizers", "id", None)])
def test_catalog_rows_are_json_safe(which, key, count):
    rows = api.catalog_rows(which)
    assert count is None or len(rows) == count  # README: 37 accelerators
    assert all(r[key] for r in rows)
    assert not any(isinstance(v, float) and not math.isfinite(v) for r in rows for v in r.values())


def test_unknown_catalog():
    with pytest.raises(TsizeError, match="unknown catalog 'tpus'; valid: models, gpus, precisions, optimizers"):
        api.catalog_rows("tpus")


def test_json_safe():
    assert api.json_safe({"a": math.nan, "b": math.inf, "c": 1.0, "d": "x"}) == {"a": None, "b": None, "c": 1.0,
                                                                                  "d": "x"}


@pytest.mark.usefixtures("torch")
@pytest.mark.parametrize("kwargs", [{}, {"model": "gpt2", "all_models": True}])
def test_validate_takes_one_model_or_all(kwargs):
    with pytest.raises(TsizeError, match="give one MODEL or --all"):
        api.validate(**kwargs)


def test_seed_checks_cite_the_measurements():
    checks = api.seed_checks()
    # catalogs/measurements.toml: the seed's peaks at B = 1..32 (MiB), its checkpoint file, its iteration time
    assert [c["measured"] for c in checks[:6]] == [2269, 2870, 3918, 6012, 10206, 18595]
    assert checks[6]["measured"] == 1_542_470_366
    assert all(abs(c["estimate"] / c["measured"] - 1) < 0.03 for c in checks[:7])


def test_version_is_the_installed_one():
    assert api.__version__ == importlib.metadata.version("tsize")
