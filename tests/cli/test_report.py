"""The human report renders what api.report returns and computes nothing."""

from __future__ import annotations

import io

import pytest
from rich.console import Console
from tsize import api
from tsize.cli.report import render


def _render(report, **kwargs) -> str:
    out = io.StringIO()
    render(report, console=Console(file=out, width=250), **kwargs)
    return out.getvalue()


@pytest.fixture(scope="module")
def report():
    return api.report("gpt2", batch_size=[1, 4], iter_time_s=0.5)


def test_report_holds_the_point_and_its_neighbours(report):
    assert api.json_safe(report["point"]) == api.json_safe(api.size("gpt2", batch_size=1, iter_time_s=0.5))
    assert [r["batch_size"] for r in report["by_batch"]] == [1, 4]
    assert sorted(r["gpu"] for r in report["by_gpu"]) == sorted(r["id"] for r in api.catalog_rows("gpus"))
    naive_fp32 = api.size("gpt2", attention="naive", dtype="float32")["activation_bytes"]
    assert report["by_kernel"]["activation_bytes"]["naive"]["float32"] == naive_fp32


@pytest.mark.parametrize("causal,column,label", [
    (False, "flops_backward", "backward (2 x forward)"),
    (True, "flops_backward_causal", "backward (2 x forward)"),
    (False, "train_flops_full_recompute", "8ND (full recomputation) ="),
    (True, "flops_forward_causal", "forward"),
])
def test_numbers_come_from_the_report(report, causal, column, label):
    """Plant a value no formula would give: the rendered text shows it, so the renderer did not recompute."""
    planted = dict(report, point=dict(report["point"], **{column: 1.2345e21}))
    text = _render(planted, causal=causal)
    assert label in text and "1.2345e+21 FLOP" in text
    assert "1.2345e+21" not in _render(report, causal=causal)


def test_gpu_hours_are_gpu_time(report):
    planted = dict(report, by_gpu=[dict(r, gpu_time_s=3600 * 4242) for r in report["by_gpu"]])
    assert "4,242 h" in _render(planted)
