"""Charts: their data and encodings, and that the HTML draws in a real headless Chromium."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest
from tsize import api, charts, store
from tsize import spec as spec_mod
from tsize.cli.main import main

from tests.test_fleet import FLEET

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    path = tmp_path_factory.mktemp("charts") / "t.duckdb"
    store.write(spec_mod.load(FLEET), path=path, progress=False)
    return path


def _data(spec: dict, path: list) -> list:
    """The data values a view of a Vega-Lite spec uses: its own, or its nearest ancestor's."""
    node, found = spec, spec.get("data")
    for step in path:
        node = node[step]
        if isinstance(node, dict) and "data" in node:
            found = node["data"]
    return found["values"]


def test_pareto_encodings_and_data(db):
    opts = api.fleet_options(sweep="f", path=db, models=["llama-2-70b"], tokens=[1e12])
    spec = charts.pareto(opts).to_dict()
    row = spec["vconcat"][0]["hconcat"]
    scatter = row[0]
    points, front = scatter["layer"]
    assert points["mark"]["type"] == "point"
    assert points["encoding"]["x"]["field"] == "cost_usd" and points["encoding"]["y"]["field"] == "days"
    assert points["encoding"]["color"]["field"] == "gpu"
    assert {t["field"] for t in points["encoding"]["tooltip"]} >= {"gpu", "n_gpus", "layout", "required_gib",
                                                                   "cost_usd", "days"}
    assert front["mark"]["type"] == "line"
    assert {"filter": "datum.pareto"} in front["transform"]
    plotted = _data(spec, ["vconcat", 0, "hconcat", 0, "layer", 0])
    fitting = opts.filter("fits").filter(opts.filter("fits")["cost_usd"].is_finite())
    assert len(plotted) == fitting.height
    assert sum(p["pareto"] for p in plotted) == fitting["pareto"].sum()
    assert {"calculate": "datum.train_time_s / 86400", "as": "days"} in points["transform"]
    statuses = {r["status"] for r in _data(spec, ["vconcat", 0, "hconcat", 1])}
    assert statuses >= {"fits", "does not fit", "fits, no cloud price"}


def test_fleet_chart_data(db):
    fleets = api.fleets(deadline_days=20, sweep="f", path=db, models=["llama-2-70b"], tokens=[1e12])
    spec = charts.fleet(fleets, deadline_days=20).to_dict()
    panels = spec["vconcat"][0]["hconcat"]
    assert [p["encoding"]["x"]["field"] for p in panels[:4]] == ["n_gpus", "purchase_usd", "cost_usd", "days"]
    assert panels[4]["encoding"]["text"]["field"] == "verdict"
    assert len(_data(spec, ["vconcat", 0, "hconcat", 4])) == fleets.height == 4  # every GPU type, with its verdict
    gpus = panels[0]["encoding"]["y"]["scale"]["domain"]
    assert sorted(gpus) == sorted(fleets["gpu"].to_list())


@pytest.mark.parametrize("suffix,magic", [(".png", b"\x89PNG"), (".svg", b"<svg")])
def test_static_formats(db, tmp_path, suffix, magic):
    out = tmp_path / f"chart{suffix}"
    assert main(["chart", "pareto", "--db", str(db), "--sweep", "f", "--output", str(out)]) == 0
    assert out.read_bytes()[:4] == magic and out.stat().st_size > 10_000


def test_unknown_format(db, tmp_path, capsys):
    assert main(["chart", "fleet", "--db", str(db), "--sweep", "f", "--output", str(tmp_path / "x.pdf")]) == 2
    assert "unknown chart format '.pdf'" in capsys.readouterr().err


def test_empty_selection(db, capsys):
    assert main(["chart", "pareto", "--db", str(db), "--sweep", "nope"]) == 2
    assert "no points to chart" in capsys.readouterr().err


@pytest.mark.parametrize("kind", ["pareto", "fleet"])
def test_html_draws_in_headless_chromium(db, tmp_path, kind):
    """Self-contained HTML (no network) rendered by Debian's chromium: no console messages, marks drawn."""
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed; .ci/run installs Debian's chromium package")
        pytest.skip("chromium not installed (apt-get install chromium); CI runs this test")
    out = tmp_path / f"{kind}.html"
    assert main(["chart", kind, "--db", str(db), "--sweep", "f", "--output", str(out)]) == 0
    html = out.read_text()
    assert "<script" in html and not re.search(r"<script[^>]+src=\"https?://", html)  # everything inlined
    profile = tmp_path / "profile"
    result = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", "--virtual-time-budget=10000",
         "--dump-dom", out.as_uri()],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    console = [line for line in result.stderr.splitlines() if "CONSOLE" in line]
    assert console == []
    dom = result.stdout
    assert "<svg" in dom
    marks = len(re.findall(r'role="graphics-symbol"', dom))
    assert marks > 20


def test_breakdown_chart_stacks_the_step_parts(db):
    opts = api.fleet_options(sweep="f", path=db, models=["llama-2-70b"], tokens=[1e12])
    spec = charts.breakdown(opts).to_dict()
    bars = spec["vconcat"][0]
    assert bars["mark"]["type"] == "bar" and bars["encoding"]["x"]["field"] == "seconds"
    assert bars["encoding"]["row"]["field"] == "gpu" and bars["encoding"]["color"]["field"] == "part"
    values = bars["data"]["values"] if "data" in bars else _data(spec, ["vconcat", 0])
    fitting = opts.filter(opts["fits"] & opts["step_time_s"].is_finite())
    assert len(values) == 6 * fitting.height  # six parts per option
    # the parts of one option add up to its step time
    first = fitting.row(0, named=True)
    mine = [v["seconds"] for v in values if v["gpu"] == first["gpu"] and v["n_gpus"] == first["n_gpus"]]
    assert sum(mine) == pytest.approx(first["step_time_s"], rel=1e-9)
