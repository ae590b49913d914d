"""Fleet options, the Pareto flag and the fleet that meets a deadline."""

from __future__ import annotations

import math

import polars as pl
import pytest
from tsize import api, store
from tsize import spec as spec_mod

FLEET = {"name": "f", "models": ["llama-3-8b", "llama-2-70b"],
         "grid": {"tokens": [1e12, 4e12], "seq_len": 4096, "batch_size": [1, 2], "grad_accum": 8,
                  "precision": "mixed-bf16", "recompute": ["none", "full"],
                  "gpu": ["nvidia_h100_sxm", "amd_mi300x", "nvidia_l40s", "intel_gaudi3"],
                  "n_gpus": [8, 16, 64, 256], "tp": [1, 8], "pp": [1, 4], "zero_stage": [1, 3]}}


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    path = tmp_path_factory.mktemp("fleet") / "t.duckdb"
    store.write(spec_mod.load(FLEET), path=path, progress=False)
    return path


def test_options_are_the_cheapest_fitting_layout(db):
    opts = api.fleet_options(sweep="f", path=db)
    rows = store.query("SELECT * FROM results WHERE sweep = 'f'", path=db)
    fit = rows.filter("fits")
    for opt in opts.filter("fits").iter_rows(named=True):
        group = fit.filter((pl.col("model") == opt["model"]) & (pl.col("tokens") == opt["tokens"])
                           & (pl.col("gpu") == opt["gpu"]) & (pl.col("n_gpus") == opt["n_gpus"]))
        key = "cost_usd" if math.isfinite(opt["cost_usd"]) else "train_time_s"
        assert opt[key] == pytest.approx(group[key].min())
    # combinations where no layout fits are listed, flagged
    missing = opts.filter(~pl.col("fits"))
    assert not missing.is_empty()
    for row in missing.iter_rows(named=True):
        assert fit.filter((pl.col("model") == row["model"]) & (pl.col("gpu") == row["gpu"])
                          & (pl.col("n_gpus") == row["n_gpus"]) & (pl.col("tokens") == row["tokens"])).is_empty()


def test_pareto_flag_matches_brute_force(db):
    opts = api.fleet_options(sweep="f", path=db).filter(pl.col("fits") & pl.col("cost_usd").is_finite())
    for (model, tokens), group in opts.group_by(["model", "tokens"]):
        points = list(zip(group["cost_usd"].round(2), group["train_time_s"], group["pareto"]))
        for cost, time, flag in points:
            dominated = any((c <= cost and t <= time) and (c < cost or t < time) for c, t, _ in points)
            assert flag == (not dominated), (model, tokens, cost, time)
        assert group["pareto"].sum() >= 1


def test_fleet_meets_the_deadline_with_the_fewest_gpus(db):
    deadline = 20.0
    fleets = api.fleets(deadline_days=deadline, sweep="f", path=db)
    opts = api.fleet_options(sweep="f", path=db).filter("fits")
    for row in fleets.iter_rows(named=True):
        same = opts.filter((pl.col("model") == row["model"]) & (pl.col("tokens") == row["tokens"])
                           & (pl.col("gpu") == row["gpu"]))
        meeting = same.filter(pl.col("train_time_s") <= deadline * 86400)
        if row["n_gpus"] is None:
            assert meeting.is_empty()
            assert row["verdict"].startswith("too slow" if not same.is_empty() else "does not fit")
        else:
            assert row["n_gpus"] == meeting["n_gpus"].min()
            assert row["train_time_s"] <= deadline * 86400 and row["verdict"] == "meets deadline"
            assert row["purchase_usd"] != row["purchase_usd"] or row["purchase_usd"] > 0


def test_source_selection_and_errors(db):
    only = api.fleet_options(path=db, sweep="f", models=["llama-3-8b"], tokens=[1e12])
    assert set(only["model"]) == {"llama-3-8b"} and set(only["tokens"]) == {1e12}
    by_sql = api.fleet_options(path=db, sql="SELECT * FROM results WHERE sweep = 'f' AND gpu = 'amd_mi300x'")
    assert set(by_sql["gpu"]) == {"amd_mi300x"}
    with pytest.raises(ValueError, match="give a sweep name"):
        api.fleet_options(path=db)
    with pytest.raises(ValueError, match=r"deadline_days -1 is out of range; valid: > 0"):
        api.fleets(deadline_days=-1, sweep="f", path=db)
