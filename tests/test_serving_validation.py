"""Serving latency against published measurements (tsize.validation.serving); the README reports the same table."""

from __future__ import annotations

from pathlib import Path

import pytest

from tsize.validation import serving as v

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.fixture(scope="module")
def results():
    return v.run()


def test_every_case_has_an_estimate(results):
    assert len(results) == len(v.CASES) == 36
    assert all(r.estimate_s > 0 for r in results)


def test_fastertransformer_decode_at_tp1_within_twenty_percent(results):
    """Memory-bound decode is the roofline's home ground: 13B fp16 weights over the A100's HBM (at the catalog's
    hbm_efficiency 0.9, Calculon's A100 figure, it is 15 % fast)."""
    (r,) = [r for r in results if r.case.set == "fastertransformer" and r.case.tp == 1 and r.case.quantity == "tpot_s"]
    assert abs(r.error) < 0.20


def test_roofline_is_optimistic_on_fastertransformer_prefill(results):
    """No overhead is modelled beyond FLOPs and bytes, so every FasterTransformer prefill estimate is faster."""
    assert all(r.error < 0 for r in results if r.case.set == "fastertransformer" and r.case.quantity == "ttft_s")


def test_errors_as_reported(results):
    """The README's summary (median |error| 21.3 % FasterTransformer, 20.8 % NeMo) stays what the code gives."""
    s = v.summary(results)
    assert s["fastertransformer"]["median_abs"] == pytest.approx(0.213, abs=0.001)
    assert s["nemo-llama-2-7b"]["median_abs"] == pytest.approx(0.208, abs=0.001)


def test_readme_has_the_current_table(results):
    text = README.read_text()
    for line in v.table(results).splitlines():
        assert line in text, line


def test_cli_prints_the_table(capsys):
    from tsize.cli.main import main

    assert main(["validate", "--serving"]) == 0
    assert "| fastertransformer | 4 |" in capsys.readouterr().out
