"""Serving sweeps in the store: Pareto flags, the chart, and the CLI's serve mode."""

from __future__ import annotations

import json

import pytest
from tsize import api, charts, store
from tsize import spec as spec_mod
from tsize.cli.main import main

SERVING = {"name": "srv", "models": ["llama-3-8b", "llama-3-70b"],
           "grid": {"mode": "serve", "gpu": ["nvidia_h100_sxm", "nvidia_a100_80gb_sxm"], "tp": [1, 2, 8],
                    "weight_dtype": ["bf16", "fp8", "int4"], "context_len": [1024, 4096], "output_len": 256,
                    "concurrency": [1, 8, 64]}}


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    path = tmp_path_factory.mktemp("serving") / "s.duckdb"
    result = store.write(spec_mod.load(SERVING), path=path, progress=False)
    assert result["points"] == 2 * 2 * 3 * 3 * 2 * 3
    return path


def test_pareto_front_is_exactly_the_undominated_fitting_points(db):
    rows = api.serving_options(sweep="srv", path=db).to_dicts()
    assert any(not r["serving_fits"] for r in rows)  # non-fitting configurations are kept, flagged
    assert not any(r["weight_dtype"] == "fp8" and r["gpu"] == "nvidia_a100_80gb_sxm" for r in rows)  # no fp8 units
    for r in rows:
        rivals = [o for o in rows if o["serving_fits"] and (o["model"], o["context_len"]) == (r["model"],
                                                                                             r["context_len"])]
        dominated = any(o["usd_per_million_output_tokens"] <= r["usd_per_million_output_tokens"]
                        and o["tpot_s"] <= r["tpot_s"] and o is not r
                        and (o["usd_per_million_output_tokens"], o["tpot_s"])
                        != (r["usd_per_million_output_tokens"], r["tpot_s"]) for o in rivals)
        assert r["pareto"] == (r["serving_fits"] and not dominated), r


def test_serving_chart_layers_and_data(db):
    data = api.serving_options(sweep="srv", path=db, models=["llama-3-70b"])
    spec = charts.serving(data).to_dict()
    assert len(spec["vconcat"]) == 2  # one panel per context length
    layers = spec["vconcat"][0]["layer"]
    assert [layer["mark"]["type"] for layer in layers] == ["point", "point", "line"]
    assert layers[0]["mark"]["shape"] == "cross"
    values = spec["vconcat"][0]["data"]["values"]
    assert {v["serving_fits"] for v in values} == {True, False}


def test_cli_chart_serving(db, tmp_path, capsys):
    out = tmp_path / "serving.html"
    assert main(["chart", "serving", "--db", str(db), "--sweep", "srv", "--output", str(out)]) == 0
    assert out.read_text().count("<svg") + out.read_text().count("vega") > 0
    assert main(["chart", "serving", "--db", str(db), "--sweep", "nope", "--output", str(out)]) == 2
    assert "no serving points" in capsys.readouterr().err


def test_cli_size_serve_json(capsys):
    assert main(["size", "llama-3-8b", "--mode", "serve", "--gpu", "nvidia_h100_sxm", "--context-len", "2048",
                 "--concurrency", "8", "--json"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["mode"] == "serve" and row["serving_fits"] and row["kv_cache_bytes_per_token"] == 131072


@pytest.mark.parametrize("argv, message", [
    (["--context-len", "8192"], "context_len 8192 + output_len 128 exceeds llama-2-7b's n_ctx 4096"),
    (["--weight-dtype", "fp8", "--gpu", "nvidia_a100_80gb_sxm"], "weight_dtype fp8 needs fp8 tensor cores"),
    (["--concurrency", "0"], "concurrency 0 serves nothing"),
    (["--tp", "3"], "tp 3 cannot split llama-2-7b's 32 heads"),
])
def test_cli_size_serve_bad_input_is_one_line(argv, message, capsys):
    assert main(["size", "llama-2-7b", "--mode", "serve", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_cli_size_serve_report(capsys):
    assert main(["size", "llama-3-70b", "--mode", "serve", "--tp", "4", "--weight-dtype", "int4"]) == 0
    out = capsys.readouterr().out
    assert "time per output token" in out and "fits" in out
