"""``tsize validate``: estimates against the real model, end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tsize.cli.main import main
from tsize.validation import measure, validate

DATA = Path(__file__).parent.parent / "data"

pytestmark = pytest.mark.usefixtures("torch")


def test_small_catalog_model_end_to_end(capsys):
    assert main(["validate", "gpt2-tiny", "--json"]) == 0
    checks = json.loads(capsys.readouterr().out)
    quantities = [c["quantity"] for c in checks]
    assert quantities == ["params_total", "flops_forward", "flops_backward"] + ["activation_bytes"] * 4 + \
        ["checkpoint_bytes"]
    assert checks[0]["estimate"] == checks[0]["measured"] == 14_478_592
    assert all(abs(c["error"]) <= 0.05 for c in checks)


def test_model_file_and_table(capsys):
    assert main(["validate", str(DATA / "tiny-model.toml")]) == 0
    out = capsys.readouterr().out
    assert "tiny-llama" in out and "flash bfloat16" in out and "error" in out


def test_moe_is_measured_on_a_one_block_slice():
    from tests.conftest import SMALL_MODELS

    checks = validate.run(SMALL_MODELS["mixtral"], seq_len=16)
    assert checks[1].model == "mixtral" and "1 block, real CPU tensors" in checks[1].setting
    assert all(abs(c.error) < 0.01 for c in checks)


def test_a_wrong_estimate_fails(monkeypatch, capsys):
    """The check can fail: an estimate 10 % too high is reported and the exit status is 1."""
    real = validate.size

    def inflated(model, **inputs):
        row = real(model, **inputs)
        return dict(row, activation_bytes=row["activation_bytes"] * 1.10)

    monkeypatch.setattr(validate, "size", inflated)
    assert main(["validate", "gpt2-tiny", "--tolerance", "0.05"]) == 1
    err = capsys.readouterr().err
    assert "4 of 8 estimates off by more than 5.0%" in err and "activation_bytes" in err and "+10.0" in err


def test_markdown_report(capsys):
    assert main(["validate", "gpt2-tiny", "--markdown"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "| model | quantity | setting | estimate | measured | error |"
    assert lines[2].startswith("| gpt2-tiny | params_total | meta device | 14,478,592 | 14,478,592 | +0.00% |")


def test_without_pytorch_says_how_to_install(monkeypatch, capsys):
    monkeypatch.setattr(measure, "torch", None)
    assert main(["validate", "gpt2-tiny"]) == 2
    assert "pip install -e '.[validate]'" in capsys.readouterr().err


def test_argument_errors(capsys):
    assert main(["validate"]) == 2
    assert "give one MODEL or --all" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["validate", "gpt2", "--tolerance", "x"])
