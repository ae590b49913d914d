"""The command line end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from tsize.cli.main import main
from tsize.registry import frame_columns

SEED = str(Path(__file__).resolve().parent.parent / "sweeps" / "seed.toml")


def run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_size_prints_every_section(capsys):
    code, out, err = run(capsys, "size", "gpt2-xl", "--iter-time", "0.755")
    assert code == 0 and not err
    for heading in ("Parameters", "Checkpoint", "Memory share per GPU", "Time to train", "Memory on one",
                    "Activations", "FLOPs per iteration", "PaLM", "MFU", "Training compute"):
        assert heading in out
    assert "1,557,611,200" in out
    assert "GiB" in out and "GB)" in out


def test_size_json_has_the_registry_columns(capsys):
    code, out, _ = run(capsys, "size", "gpt2", "--json", "--batch-size", "20", "--grad-accum", "5", "--iter-time",
                       "0.755", "--gpu", "nvidia_a100_40gb_sxm")
    row = json.loads(out)
    assert code == 0
    assert tuple(row) == frame_columns()  # the columns of the sweep table, in order
    for key in ("params_total", "flops_forward", "flops_backward", "flops_iteration", "activation_bytes",
                "weights_bytes", "gradients_bytes", "optimizer_bytes", "memory_total_bytes", "checkpoint_bytes",
                "train_flops", "train_time_s", "cost_usd", "mfu"):
        assert key in row
    assert row["params_total"] == 124_439_808
    assert row["mfu"] == pytest.approx(0.371, abs=1e-3)
    assert row["model"] == "gpt2" and row["precision"] == "amp-bf16"


def test_size_json_nan_is_null(capsys):
    _, out, _ = run(capsys, "size", "gpt2", "--json")
    assert json.loads(out)["mfu"] is None


@pytest.mark.parametrize("argv,message", [
    (["size", "gpt5"], "unknown model 'gpt5'; valid: gpt2-tiny"),
    (["size", "gpt2", "--gpu", "h100"], "unknown gpu 'h100'; valid: nvidia_b200_sxm"),
    (["size", "gpt2", "--batch-size", "0"], "batch_size 0 is out of range; valid: >= 1"),
    (["size", "gpt2", "--optimizer", "adagrad"], "unknown optimizer 'adagrad'; valid: adamw, adam"),
    (["size", "gpt2", "--mfu", "1.5"], "assumed_mfu 1.5 is out of range; valid: > 0 and <= 1"),
    (["size", "gpt2", "--dtype", "float32", "--precision", "amp-bf16"], "precision 'amp-bf16' computes in bfloat16"),
    (["size", "gpt2", "--zero", "5"], "zero_stage 5 is not valid; valid: 0, 1, 2, 3"),
    # issue 10: "in inf s", "Python int too large to convert to C long", int32 wraps
    (["size", "gpt2", "--iter-time", "inf"], "iter_time_s inf is not a finite number; valid: > 0 and <= 1000000000"),
    (["size", "gpt2", "--tokens", "inf"], "tokens inf is not a finite number; valid: > 0 and <= 1e+18"),
    (["size", "gpt2", "--pue", "nan"], "pue nan is not a finite number; valid: >= 1 and <= 10"),
    (["size", "gpt2", "--batch-size", "9223372036854775808"], "batch_size 9223372036854775808 is out of range"),
    (["size", "gpt2", "--tp", "2000000"], "tp 2000000 is out of range; valid: >= 1 and <= 1048576"),
    (["sweep", "/dev/null"], "sweep spec '/dev/null' is not a regular file (a device or a pipe); give a file"),
    (["sweep", "."], "sweep spec '.' is a directory; give a file"),
    (["query", "SELECT 1", "--db", "/dev/null"], "/dev/null is not a results database"),
    (["sweep", SEED, "--chunk-points", "-1"], "--chunk-points -1 is out of range; valid: 1 to"),  # hung
    (["sweep", SEED, "--wait", "nan"], "--wait nan is out of range; valid: 0 to 86400 seconds"),
])
def test_errors_are_one_line(capsys, argv, message):
    code, out, err = run(capsys, *argv)
    assert code == 2 and not out
    assert err.startswith("tsize: error: ") and message in err
    assert err.count("\n") == 1


def test_bad_model_file(capsys, tmp_path):
    bad = tmp_path / "config.json"
    bad.write_text(json.dumps({"model_type": "t5"}))
    code, _, err = run(capsys, "size", str(bad))
    assert code == 2 and "unsupported model_type 't5'; valid: gpt2, llama" in err


def test_catalog_listing(capsys):
    code, out, _ = run(capsys, "catalog", "gpus", "--json")
    gpus = json.loads(out)
    assert code == 0 and len(gpus) >= 20
    h100 = next(g for g in gpus if g["id"] == "nvidia_h100_sxm")
    assert h100["bf16_flops_per_s"] == 989e12 and h100["source"]
    code, out, _ = run(capsys, "catalog", "models")
    assert code == 0 and "mixtral-8x7b" in out


def test_console_script_installed():
    result = subprocess.run([sys.executable, "-m", "tsize.cli.main", "size", "gpt2-tiny", "--json"], capture_output=True,
                            text=True, check=True)
    assert json.loads(result.stdout)["params_total"] == 14_478_592


def _size_options() -> dict[str, object]:
    from tsize.cli.main import build_parser

    sub = next(a for a in build_parser()._actions if a.__class__.__name__ == "_SubParsersAction")
    return {flag: action for action in sub.choices["size"]._actions for flag in action.option_strings}


def test_every_registry_input_is_an_option_of_size():
    from tsize.registry import INPUTS

    options = _size_options()
    for spec in INPUTS:
        if spec.name == "model":
            continue
        action = options[f"--{spec.name.replace('_', '-')}"]
        assert action.dest == spec.name and action.default is None  # the registry's default applies
        assert spec.description in action.help
        if spec.valid():
            assert spec.valid() in action.help


@pytest.mark.parametrize("old,new", [("--mfu", "--assumed-mfu"), ("--iter-time", "--iter-time-s"),
                                     ("--zero", "--zero-stage"), ("--n-gpus", "--n-gpus"), ("--dtype", "--dtype")])
def test_old_spellings_still_work(old, new):
    options = _size_options()
    assert options[old] is options[new]


@pytest.mark.parametrize("argv,column,expected", [
    (["--dropout", "0.1", "--dropout-mask-bytes", "4"], "dropout_mask_bytes", 4.0),
    (["--overhead-bytes", "0"], "overhead_bytes", 0.0),
    (["--allocator-slack", "0.2"], "allocator_slack", 0.2),
    (["--tp", "2", "--sequence-parallel"], "sequence_parallel", True),
    (["--no-sequence-parallel"], "sequence_parallel", False),
    (["--mfu", "0.5"], "assumed_mfu", 0.5),
    (["--zero", "3"], "zero_stage", 3),
])
def test_inputs_reach_the_outputs(capsys, argv, column, expected):
    code, out, _ = run(capsys, "size", "gpt2", "--json", *argv)
    assert code == 0 and json.loads(out)[column] == expected


def test_overhead_and_slack_change_the_requirement(capsys):
    """memory_required = peak x (1 + slack) + overhead, so these two options must move it by hand-worked amounts."""
    settings = (["--overhead-bytes", "0", "--allocator-slack", "0"],
                ["--overhead-bytes", "1000", "--allocator-slack", "0.5"])
    rows = [json.loads(run(capsys, "size", "gpt2", "--json", *a)[1]) for a in settings]
    peak = rows[0]["memory_per_gpu_bytes"]
    assert rows[0]["memory_required_bytes"] == peak
    assert rows[1]["memory_required_bytes"] == pytest.approx(peak * 1.5 + 1000)


def test_a_new_registry_input_becomes_an_option(monkeypatch, capsys):
    """What other modules add to registry.INPUTS appears on the command line with no CLI edit."""
    from tsize import api
    from tsize.registry import Input

    extra = Input("warmup_steps", "int", 0, "steps", "Steps of learning-rate warm-up", minimum=0)
    monkeypatch.setattr(api, "INPUTS", api.INPUTS + (extra,))
    action = _size_options()["--warmup-steps"]
    assert action.dest == "warmup_steps" and "valid: >= 0" in action.help and "default 0" in action.help


def test_docs_says_what_changed(capsys, monkeypatch, tmp_path):
    from tsize.cli import docs

    readme, reference = tmp_path / "README.md", tmp_path / "reference.md"
    readme.write_text(docs.README.read_text())
    reference.write_text(docs.REFERENCE.read_text())
    monkeypatch.setattr(docs, "README", readme)
    monkeypatch.setattr(docs, "REFERENCE", reference)
    code, out, _ = run(capsys, "docs")
    assert code == 0 and out == f"{readme}: already current\n{reference}: already current\n"


def test_size_says_which_sequence_length_it_used(capsys):
    """Issue 10: the default T was the model's whole context, silently; now min(n_ctx, 4096), stated."""
    code, out, _ = run(capsys, "size", "mistral-7b")
    assert code == 0
    assert "T=4096: the default sequence length, min(n_ctx, 4096) (give --seq-len to change)" in out
    code, out, _ = run(capsys, "size", "mistral-7b", "--seq-len", "512")
    assert "default sequence length" not in out and "T=512" in out
