"""Hostile input through the command line: malformed config.json files, sweep specs and options.

Every case runs ``tsize.cli.main.main(argv)`` in-process and is classified:

* ``ok``: exit 0 and every check of the output passed;
* ``error``: a clean refusal, exit 2 with one ``tsize: error:`` line (or argparse's usage error);
* ``traceback``: any other exception (a bug);
* ``hang``: the case ran past its time limit (a bug);
* ``wrong``: exit 0 but a fitting row holds a negative or non-finite number, a parameter count that
  does not add up (or is below its exact lower bound), or a stored input that differs from the one given.

The cases are drawn by hypothesis with ``derandomize=True`` (the same cases on every run) and a bounded
number of examples. ``python tests/test_fuzz.py N [SEED]`` runs N cases of each kind without stopping at
the first bug and prints the counts per outcome (the before/after table of issue 10); SEED draws another
fixed sample.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import signal
import sys
import tempfile
from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tsize.cli.main import main
from tsize.registry import OUTPUT_NAMES, OUTPUTS

DATA = Path(__file__).parent / "data"
CASE_SECONDS = 30.0  # a hang detector (the bug: 38 s to never), generous for a loaded 2-core CI
HF_CONFIGS = {p.name.split(".")[0]: json.loads(p.read_text()) for p in sorted(DATA.glob("*.config.json"))}
#: Outputs that may be NaN in a fitting row: the registry documents them as "NaN: unknown / not measured".
#: Outputs of a serving point (tier ``servings``): NaN by design at a training point, and the only ones that apply
#: at a serving point.
SERVING_OUTPUTS = {o.name for o in OUTPUTS if o.tier == "servings"}
MAY_BE_NAN = {"assumed_mfu", "mfu", "hfu", "gpu_price_usd", "gpu_cloud_usd_per_hour", "cost_usd", "purchase_usd", "iter_time_s"}
#: Columns that may legitimately be negative: none of tsize's outputs.
HF_KEYS = ("n_layer", "n_embd", "n_head", "n_inner", "n_positions", "vocab_size", "activation_function",
           "tie_word_embeddings", "num_hidden_layers", "hidden_size", "num_attention_heads", "num_key_value_heads",
           "intermediate_size", "max_position_embeddings", "head_dim", "hidden_act", "num_local_experts",
           "num_experts_per_tok", "attention_bias", "mlp_bias", "model_type", "_name_or_path")
SIZE_KEYS = ("n_layer", "n_embd", "n_head", "n_inner", "n_positions", "vocab_size", "num_hidden_layers",
             "hidden_size", "num_attention_heads", "num_key_value_heads", "intermediate_size",
             "max_position_embeddings", "head_dim", "num_local_experts", "num_experts_per_tok")
BIG_SIZES = (2**16, 2**16 + 1, 2**20, 2**24, 2**26 + 1, 2**30, 2**31 - 1, 2**31, 2_000_000_000, 2147483647,
             10**12, 10**15, 1000000007, 2**62)
SPECIAL_INTS = (0, 1, -1, 2, 3, 7, 2**31 - 1, 2**31, 2**32, 2**53 + 1, 2**63 - 1, 2**63, 2**64, 10**12, 10**15,
                10**30, 1000000007)
SPECIAL_TEXT = ("false", "true", "relu", "silu", "gelu", "gelu_new", "1e30", "", "nan", "inf", "all", "gpt2",
                "llama", "mixtral", "x" * 300)

scalars = st.one_of(
    st.sampled_from(SPECIAL_INTS),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from((math.inf, -math.inf, math.nan, 1e30, 1e308, -0.0, 0.5, 1.5)),
    st.booleans(),
    st.sampled_from(SPECIAL_TEXT),
    st.text(max_size=6),
)
toml_values = st.one_of(scalars, st.lists(scalars, max_size=3), st.dictionaries(st.text(max_size=3), scalars,
                                                                                  max_size=2))
json_values = st.one_of(toml_values, st.none())


# ---------------------------------------------------------------------------
# running one case


class _Hang(BaseException):
    """Raised by the alarm when a case runs past CASE_SECONDS (BaseException: no except Exception catches it)."""


def _alarm(signum, frame):
    raise _Hang()


def run(argv: list[str], seconds: float = CASE_SECONDS) -> tuple[str, int | None, str, str]:
    """Run the CLI in-process: (outcome, exit status, stdout, stderr); outcome as in the module docstring."""
    out, err = io.StringIO(), io.StringIO()
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = main(argv)
    except SystemExit as exc:  # argparse: usage error (2), --help/--version (0)
        rc = exc.code if isinstance(exc.code, int) else 2
    except _Hang:
        return "hang", None, out.getvalue(), err.getvalue()
    except Exception as exc:  # noqa: BLE001 - any other exception is the bug we look for
        return "traceback", None, out.getvalue(), f"{err.getvalue()}{type(exc).__name__}: {exc}"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    stderr = err.getvalue()
    if rc == 2 and (stderr.startswith("tsize: error:") or "usage:" in stderr):
        lines = [line for line in stderr.splitlines() if line.startswith("tsize: error:")]
        if stderr.startswith("tsize: error:") and len(lines) != 1:
            return "wrong", rc, out.getvalue(), f"not one error line: {stderr!r}"
        return "error", rc, out.getvalue(), stderr
    if rc != 0:
        return "traceback", rc, out.getvalue(), f"exit {rc}: {stderr}"
    return "ok", rc, out.getvalue(), stderr


def row_problems(row: dict) -> list[str]:
    """What is wrong with one output row (a dict of columns); [] when nothing."""
    problems = []
    # a serving point is judged by serving_fits and its serving outputs; a training point by fits and the rest
    serve = row.get("mode") == "serve"
    fits = bool(row.get("serving_fits" if serve else "fits"))
    for name, value in row.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) and value is not None:
            continue
        if value is None or (isinstance(value, float) and math.isnan(value)):
            applies = (name in SERVING_OUTPUTS) == serve or name not in OUTPUT_NAMES
            if fits and applies and name not in MAY_BE_NAN and name not in ("min_gpus",):
                problems.append(f"{name} is NaN/null in a fitting row")
            continue
        if value < 0:
            problems.append(f"{name} = {value!r} is negative")
        if fits and isinstance(value, float) and math.isinf(value):
            problems.append(f"{name} is infinite in a fitting row")
    parts = ("params_token_embedding", "params_position_embedding", "params_attention", "params_mlp",
             "params_router", "params_norm", "params_lm_head")
    if all(isinstance(row.get(p), int) for p in parts + ("params_total",)):
        # exact, in Python integers (no wrap): the components add up, and the table sizes are exact
        if sum(row[p] for p in parts) != row["params_total"]:
            problems.append("params_total is not the sum of its components")
        if all(isinstance(row.get(k), int) for k in ("vocab_size", "d_model", "n_layer", "d_ff", "n_experts")):
            if row["params_token_embedding"] != row["vocab_size"] * row["d_model"]:
                problems.append("params_token_embedding != vocab_size * d_model")
            uniform = row.get("family") in ("gpt2", "llama", "mistral", "mixtral", "qwen2")  # every block alike
            if uniform and row["params_mlp"] < row["n_layer"] * row["n_experts"] * 2 * row["d_model"] * row["d_ff"]:
                problems.append("params_mlp below n_layer * n_experts * 2 * d_model * d_ff")
    return problems


def check_size(argv: list[str]) -> tuple[str, str]:
    """Run ``tsize size ... --json`` and check the row; (outcome, detail)."""
    outcome, rc, stdout, stderr = run(argv)
    if outcome != "ok" or "--json" not in argv:
        return outcome, stderr
    try:
        row = json.loads(stdout)
    except json.JSONDecodeError as exc:
        return "wrong", f"--json printed no JSON: {exc}"
    problems = row_problems(row)
    for flag, column in (("--batch-size", "batch_size"), ("--seq-len", "seq_len"), ("--n-gpus", "n_gpus"),
                         ("--grad-accum", "grad_accum"), ("--tp", "tp"), ("--pp", "pp")):
        if flag in argv:
            given = argv[argv.index(flag) + 1]
            try:
                if int(given) != row[column] and not (column == "seq_len" and int(given) == 0):
                    problems.append(f"{column} {given} came back as {row[column]!r}")
            except ValueError:
                pass
    return ("wrong", "; ".join(problems)) if problems else ("ok", "")


def check_sweep(argv: list[str], db: Path, spec: dict | None) -> tuple[str, str]:
    """Run ``tsize sweep`` and check the stored rows; (outcome, detail)."""
    outcome, rc, stdout, stderr = run(argv)
    if outcome != "ok":
        return outcome, stderr
    con = duckdb.connect(str(db), read_only=True)
    try:
        frame = con.execute("SELECT * FROM results").fetchall()
        names = [d[0] for d in con.description]
    finally:
        con.close()
    problems: list[str] = []
    grid = (spec or {}).get("grid", {})
    for values in frame[:2000]:
        row = dict(zip(names, values))
        problems += row_problems(row)
        for column in ("batch_size", "n_gpus", "grad_accum", "tp", "pp", "seq_len"):
            given = grid.get(column)
            if given is None or (column == "seq_len" and row["seq_len"] != given and given == 0):
                continue
            allowed = given if isinstance(given, list) else [given]
            if row[column] not in allowed:
                problems.append(f"stored {column} {row[column]!r} not among {allowed!r}")
        if problems:
            break
    return ("wrong", "; ".join(problems[:3])) if problems else ("ok", "")


# ---------------------------------------------------------------------------
# case generators (hypothesis strategies)


@st.composite
def config_cases(draw):
    """A config.json text: a real one with some fields replaced, or a malformed document."""
    kind = draw(st.sampled_from(["mutate"] * 4 + ["scale"] * 2 + ["document"]))
    if kind == "scale":  # plausible types, sizes far beyond any model: counts must not wrap
        base = dict(HF_CONFIGS[draw(st.sampled_from(sorted(HF_CONFIGS)))])
        for _ in range(draw(st.integers(1, 3))):
            base[draw(st.sampled_from(SIZE_KEYS))] = draw(st.sampled_from(BIG_SIZES))
        return json.dumps(base)
    if kind == "document":
        text = draw(st.sampled_from(["[" * 100_000, "{" * 50_000, "null", "[]", "1", '"x"', "", "{",
                                     '{"model_type": "llama"' + ', "a": [' * 20_000, "\udcff", "NaN", "1e999"]))
        return text
    base = dict(HF_CONFIGS[draw(st.sampled_from(sorted(HF_CONFIGS)))])
    for _ in range(draw(st.integers(1, 3))):
        key = draw(st.sampled_from(HF_KEYS) | st.sampled_from([k for k in HF_KEYS if k in base]))
        if draw(st.integers(0, 9)) == 0:
            base.pop(key, None)
        else:
            base[key] = draw(json_values)
    return json.dumps(base)


def _toml(value) -> str:
    """A tiny TOML writer for the values the strategies draw."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in value.items()) + "}"
    raise TypeError(value)


GRID_KEYS = ("precision", "dtype", "optimizer", "attention", "dropout", "dropout_mask_bytes", "recompute",
             "grad_accum", "seq_len", "batch_size", "gpu", "n_gpus", "tokens", "assumed_mfu", "pue", "usd_per_kwh",
             "tp", "pp", "zero_stage", "sequence_parallel", "overhead_bytes", "allocator_slack", "iter_time_s",
             "bogus")
GOOD_GRID = dict(precision=["amp-bf16"], dtype=["float32", "bfloat16"], optimizer=["adamw", "sgd"],
                 attention=["naive", "flash"], recompute=["none", "full"], gpu=["nvidia_h100_sxm", "all"],
                 batch_size=[1, 2, 8], seq_len=[0, 128, 2048], n_gpus=[1, 8, 64], tp=[1, 2], pp=[1, 2],
                 zero_stage=[0, 3], tokens=[1e9, 3e11], grad_accum=[1, 4])
FAMILY_KEYS = ("n_layer", "d_model", "n_head", "d_ff", "vocab_size", "n_ctx", "head_dim", "mlp_ratio", "n_kv_head",
               "n_experts", "top_k", "tied_embeddings", "mlp_activation", "family")


FAMILY_GOOD = {"n_layer": (1, 2, 12, 96), "d_model": (64, 768, 4096, 12288), "n_head": (1, 4, 12, 32),
               "d_ff": (128, 3072, 14336), "vocab_size": (100, 50257, 256000), "n_ctx": (32, 1024, 131072),
               "head_dim": (32, 64, 128), "mlp_ratio": (1, 2.5, 4), "n_kv_head": (0, 1, 4), "n_experts": (1, 8),
               "top_k": (1, 2), "tied_embeddings": (True, False), "mlp_activation": ("gelu", "swiglu"),
               "family": ("gpt2", "llama")}


@st.composite
def spec_cases(draw):
    """A sweep spec as a dict (written as TOML): small grids with hostile values."""
    spec: dict = {"name": draw(st.sampled_from(["fuzz"] * 6 + ["", "x" * 50]))}
    if draw(st.booleans()):
        spec["models"] = draw(st.lists(st.sampled_from(["gpt2", "llama-2-7b", "mixtral-8x7b", "qwen2-0.5b",
                                                        "nope", "gpt2-tiny"]), min_size=0, max_size=2, unique=True))
    if "models" not in spec or draw(st.integers(0, 2)) == 0:
        family = {"prefix": "f", "base": draw(st.sampled_from(["gpt2-tiny", "gpt2", "llama-2-7b", "mixtral-8x7b"]))}
        for _ in range(draw(st.integers(1, 3))):
            key = draw(st.sampled_from(FAMILY_KEYS))
            family[key] = draw(st.one_of(scalars, st.lists(scalars, min_size=1, max_size=3),
                                         st.lists(st.sampled_from(FAMILY_GOOD.get(key, (1, 2))), min_size=1,
                                                  max_size=3, unique=True),
                                         st.lists(st.sampled_from(FAMILY_GOOD.get(key, (1, 2))), min_size=1,
                                                  max_size=2, unique=True),
                                         st.lists(st.sampled_from(BIG_SIZES), min_size=1, max_size=2, unique=True)))
        spec["family"] = [family]
    grid = {}
    for _ in range(draw(st.integers(0, 3))):
        key = draw(st.sampled_from(GRID_KEYS))
        if key in GOOD_GRID and draw(st.booleans()):
            grid[key] = draw(st.sampled_from(GOOD_GRID[key]))
        else:
            grid[key] = draw(st.one_of(toml_values, st.lists(scalars, min_size=1, max_size=3, unique_by=repr)))
    if grid:
        spec["grid"] = grid
    return spec


def spec_text(spec: dict) -> str:
    lines = [f"{k} = {_toml(v)}" for k, v in spec.items() if k not in ("family", "grid")]
    for family in spec.get("family", []):
        lines.append("[[family]]")
        lines += [f"{k} = {_toml(v)}" for k, v in family.items()]
    if "grid" in spec:
        lines.append("[grid]")
        lines += [f"{json.dumps(k)} = {_toml(v)}" for k, v in spec["grid"].items()]
    return "\n".join(lines) + "\n"


SIZE_OPTIONS = ("--batch-size", "--seq-len", "--dtype", "--precision", "--attention", "--dropout", "--optimizer",
                "--recompute", "--gpu", "--n-gpus", "--tp", "--pp", "--zero", "--tokens", "--mfu", "--iter-time",
                "--grad-accum", "--pue", "--usd-per-kwh")
OPTION_VALUES = ("1", "0", "-1", "2", "8", "1e30", "inf", "-inf", "nan", "9223372036854775808", "2147483648",
                 "3000000000", "abc", "", "1.5", "0.5", "1e-300", "float32", "bfloat16", "amp-bf16", "flash",
                 "full", "nvidia_h100_sxm", "{}", "[[1]]", "4096", "1000000", "300e9", "1e18", "1e19")


#: Values each option accepts, drawn half of the time so that outputs get checked, not only refusals.
GOOD_OPTIONS = {"--batch-size": ("1", "4", "3000000000", "4294967296"), "--seq-len": ("0", "128", "4096", "1000000"),
                "--dtype": ("float32", "bfloat16"), "--precision": ("amp-bf16",), "--attention": ("naive", "flash"),
                "--dropout": ("0", "0.1"), "--optimizer": ("adamw", "sgd"), "--recompute": ("none", "full"),
                "--gpu": ("nvidia_h100_sxm", "nvidia_t4", "amd_mi300x"), "--n-gpus": ("1", "8", "4294967296"),
                "--tp": ("1", "2", "8"), "--pp": ("1", "4"), "--zero": ("0", "3"),
                "--tokens": ("1e9", "1e18", "1"), "--mfu": ("0.5", "1"), "--iter-time": ("0.5", "1e9", "1e-9"),
                "--grad-accum": ("1", "1048576"), "--pue": ("1", "10"), "--usd-per-kwh": ("0", "1000")}


@st.composite
def size_cases(draw):
    """argv for ``tsize size``: a model and a few options with hostile values."""
    model = draw(st.sampled_from(["gpt2", "llama-2-7b", "mixtral-8x7b", "qwen2-0.5b", "gpt2-tiny", "nope",
                                  "/dev/null", ".", "x.json", "y.toml"]))
    argv = ["size", model]
    for option in draw(st.lists(st.sampled_from(SIZE_OPTIONS), min_size=1, max_size=4, unique=True)):
        argv += [option, draw(st.one_of(st.sampled_from(GOOD_OPTIONS.get(option, ("1",))),
                                        st.sampled_from(GOOD_OPTIONS.get(option, ("1",))),
                                        st.sampled_from(OPTION_VALUES), st.integers(-(2**66), 2**66).map(str),
                                        st.floats().map(repr)))]
    if draw(st.integers(0, 4)):
        argv.append("--json")
    return argv


@st.composite
def sweep_option_cases(draw):
    """argv tail for ``tsize sweep``: hostile --chunk-points, --wait and spec paths."""
    spec = draw(st.sampled_from(["SPEC", "SPEC", "SPEC", "/dev/null", ".", "missing.toml", "DIR"]))
    argv = [spec]
    if draw(st.booleans()):
        argv += ["--chunk-points", draw(st.sampled_from(("1", "0", "-1", "7", "1e30", "inf", "abc",
                                                        "9223372036854775808", "3")))]
    if draw(st.booleans()):
        argv += ["--wait", draw(st.sampled_from(("0", "-1", "inf", "nan", "1e308", "abc", "1")))]
    return argv


SMALL_SPEC = {"name": "fuzz-small", "models": ["gpt2-tiny", "llama-2-7b"],
              "grid": {"batch_size": [1, 4], "gpu": ["nvidia_h100_sxm", "nvidia_a100_40gb_sxm"], "n_gpus": [1, 8]}}


# ---------------------------------------------------------------------------
# the cases, run


def config_case(text: str, tmp: Path) -> tuple[str, str]:
    path = tmp / "config.json"
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    return check_size(["size", str(path), "--json"])


def spec_case(spec: dict, tmp: Path) -> tuple[str, str]:
    path = tmp / "spec.toml"
    path.write_text(spec_text(spec))
    db = tmp / "fuzz.duckdb"
    for stale in tmp.glob("fuzz.duckdb*"):
        stale.unlink()
    return check_sweep(["sweep", str(path), "--db", str(db), "--quiet"], db, spec)


def sweep_option_case(tail: list[str], tmp: Path) -> tuple[str, str]:
    spec = tmp / "small.toml"
    spec.write_text(spec_text(SMALL_SPEC))
    (tmp / "adir").mkdir(exist_ok=True)
    db = tmp / "opts.duckdb"
    for stale in tmp.glob("opts.duckdb*"):
        stale.unlink()
    tail = [str(spec) if t == "SPEC" else str(tmp / "adir") if t == "DIR" else t for t in tail]
    return check_sweep(["sweep", *tail, "--db", str(db), "--quiet"], db, SMALL_SPEC if tail[0] == str(spec) else None)


KINDS = {
    "config": (config_cases(), config_case),
    "spec": (spec_cases(), spec_case),
    "size": (size_cases(), lambda argv, tmp: check_size(argv)),
    "sweep-options": (sweep_option_cases(), sweep_option_case),
}
EXAMPLES = {"config": 300, "spec": 250, "size": 300, "sweep-options": 40}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_fuzz_finds_no_bug(kind, tmp_path):
    strategy, case = KINDS[kind]

    @settings(max_examples=EXAMPLES[kind], derandomize=True, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def fuzz(value):
        outcome, detail = case(value, tmp_path)
        assert outcome in ("ok", "error"), f"{outcome}: {value!r:.300}: {detail[-600:]}"

    fuzz()


# ---------------------------------------------------------------------------
# python tests/test_fuzz.py N: count outcomes without stopping


def count(n: int, seed: int | None = None) -> dict[str, dict[str, int]]:
    """Run ``n`` cases of each kind; the suite's cases, or with ``seed`` another fixed sample."""
    from collections import Counter

    from hypothesis import seed as with_seed

    table: dict[str, dict[str, int]] = {}
    examples: dict[str, list] = {}
    for kind, (strategy, case) in KINDS.items():
        seen: Counter = Counter()
        with tempfile.TemporaryDirectory() as tmp:

            @settings(max_examples=n, derandomize=seed is None, deadline=None, database=None,
                      suppress_health_check=list(HealthCheck))
            @given(strategy)
            def fuzz(value):
                try:
                    outcome, detail = case(value, Path(tmp))
                except Exception as exc:  # noqa: BLE001 - a bug of the harness, counted apart
                    outcome, detail = "harness", f"{type(exc).__name__}: {exc}"
                seen[outcome] += 1
                if outcome not in ("ok", "error"):
                    examples.setdefault(kind, []).append((outcome, repr(value)[:200], detail.strip()[-300:]))

            (fuzz if seed is None else with_seed(seed)(fuzz))()
        table[kind] = dict(seen)
    for kind, found in examples.items():
        for outcome, value, detail in found[:40]:
            print(f"[{kind}] {outcome}: {value}\n    {detail.splitlines()[-1] if detail else ''}")
    return table


if __name__ == "__main__":
    counts = count(int(sys.argv[1]) if len(sys.argv) > 1 else 250, int(sys.argv[2]) if len(sys.argv) > 2 else None)
    total: dict[str, int] = {}
    for kind, seen in counts.items():
        print(f"{kind:14s} {sum(seen.values()):5d} cases: " + ", ".join(f"{k} {v}" for k, v in sorted(seen.items())))
        for k, v in seen.items():
            total[k] = total.get(k, 0) + v
    print(f"{'all':14s} {sum(total.values()):5d} cases: " + ", ".join(f"{k} {v}" for k, v in sorted(total.items())))
