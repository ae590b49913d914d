"""``tsize bench``: what each phase measures and how the README table shows it (no timing is asserted)."""

from __future__ import annotations

from pathlib import Path

import pytest
from tsize import api
from tsize.cli.docs import bench_markdown
from tsize.errors import TsizeError
from tsize.registry import OUTPUT_NAMES, frame_columns
from tsize.validation import bench

SEED = str(Path(__file__).resolve().parents[2] / "sweeps" / "seed.toml")


@pytest.mark.parametrize("name, columns", [("evaluate", len(OUTPUT_NAMES)), ("frame", len(frame_columns()))])
def test_evaluation_and_frame_phases_cover_the_grid(name, columns):
    result = bench.phase(name, SEED, None, sample=10)
    assert result["points"] == 600  # the seed study: every point once
    assert result["columns"] == columns
    assert result["seconds"] > 0 and result["cpu_s"] > 0


def test_store_phase_reports_cpu_and_file():
    result = bench.phase("store", SEED, None, sample=10)
    assert result["points"] == 600 and result["cpu_s"] > 0 and result["file_bytes"] > 0


def test_unknown_phase_is_one_line():
    with pytest.raises(TsizeError, match="unknown benchmark phase 'evaluation'; valid: evaluate, frame"):
        api.bench(SEED, phases=("evaluation",))


def test_table_shows_wall_and_cpu_rates():
    report = {"cpus": 2, "python": "3.11.7", "phases": {
        "evaluate": {"points": 10_616_832, "points_per_s": 12.5e6, "points_per_cpu_s": 14.25e6,
                     "peak_rss_mib": 200.0, "label": bench.LABELS["evaluate"]},
        "scalar": {"points": 2000, "points_per_s": 951.0, "peak_rss_mib": 103.0, "label": bench.LABELS["scalar"]}}}
    lines = bench_markdown([report]).splitlines()
    assert lines[0] == ("| grid | phase | points/s (wall clock) | points per CPU-second | "
                        "peak RSS (driver / worker) |")
    assert lines[2] == (f"| capacity.toml, 10,616,832 points | {bench.LABELS['evaluate']} | 12.50 M | 14.25 M | "
                        "200 MiB |")
    assert lines[3].endswith("| 951 | - | 103 MiB |")
