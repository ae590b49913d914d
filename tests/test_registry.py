"""The registry: every input and output declared once, completely, and checked values: finite, bounded
numbers (issue 10: bounds, not wraps)."""

from __future__ import annotations

import importlib
import inspect
import math
import pkgutil
import re

import pytest
import tsize.formulas
from tsize.api import size
from tsize.errors import TsizeError
from tsize.registry import (
    INPUT_NAMES,
    INPUTS,
    OUTPUT_NAMES,
    OUTPUTS,
    PARENTS,
    TIERS,
    frame_columns,
    home_tier,
    input_,
    output,
)

FORMULA_MODULES = [importlib.import_module(f"tsize.formulas.{m.name}") for m in pkgutil.iter_modules(
    tsize.formulas.__path__)]
FORMULAS = [(m.__name__.rsplit(".", 1)[1], name, f) for m in FORMULA_MODULES
            for name, f in inspect.getmembers(m, inspect.isfunction) if not name.startswith("_")
            and f.__module__ == m.__name__]


def test_names_are_unique_and_do_not_collide():
    assert len(set(INPUT_NAMES)) == len(INPUTS) and len(set(OUTPUT_NAMES)) == len(OUTPUTS)
    assert not set(INPUT_NAMES) & set(OUTPUT_NAMES)
    assert len(set(frame_columns())) == len(frame_columns())


@pytest.mark.parametrize("spec", OUTPUTS, ids=lambda o: o.name)
def test_every_output_is_declared_completely(spec):
    assert spec.tier in TIERS and spec.dtype in ("int64", "float64", "bool")
    assert spec.description and spec.reference, "every output cites where its formula comes from"
    assert spec.unit or spec.dtype == "bool"
    if spec.unit in ("bytes", "FLOP", "s", "USD", "J", "W"):  # base units, named in the column
        assert spec.name.endswith(("_bytes", "_s", "_usd", "_j", "_w")) or spec.name.startswith("usd_per_") \
                or any(u in spec.name for u in ("flops", "_bytes_per_"))


@pytest.mark.parametrize("spec", INPUTS, ids=lambda i: i.name)
def test_every_input_default_is_valid(spec):
    assert spec.kind in ("model", "catalog", "choice", "int", "float", "bool")
    assert spec.description
    if spec.default is not None and spec.kind not in ("model", "catalog"):
        checked = spec.check(spec.default)
        assert checked == spec.default or (math.isnan(checked) and math.isnan(spec.default))
    if spec.choices:
        assert spec.default in spec.choices


def test_tiers_name_inputs_and_parents():
    assert set(PARENTS) == set(TIERS)
    for tier, axes in TIERS.items():
        assert set(axes) <= set(INPUT_NAMES), tier
        for parent in PARENTS[tier]:
            assert set(TIERS[parent]) <= set(axes), (tier, parent)
    assert TIERS["points"] == INPUT_NAMES
    assert home_tier("model") == "models" and home_tier("gpu") == "gpus" and home_tier("tp") == "shards"


@pytest.mark.parametrize("name,value,message", [
    ("batch_size", 0, "batch_size 0 is out of range; valid: >= 1 and <= 4294967296"),
    ("batch_size", 1.5, "batch_size must be an integer, got 1.5"),
    ("batch_size", True, "batch_size must be a number, got True"),
    ("assumed_mfu", 1.5, "assumed_mfu 1.5 is out of range; valid: > 0 and <= 1"),
    ("tokens", math.nan, "tokens nan is not a finite number; valid: > 0 and <= 1e+18"),
    ("attention", "sparse", "attention 'sparse' is not valid; valid: naive, flash, flash1, flash3"),
    ("zero_stage", 4, "zero_stage 4 is not valid; valid: 0, 1, 2, 3"),
    ("sequence_parallel", 1, "sequence_parallel must be true or false, got 1"),
])
def test_check_refuses_with_one_line_naming_the_valid_values(name, value, message):
    with pytest.raises(TsizeError) as info:
        input_(name).check(value)
    assert str(info.value) == message


def test_check_converts():
    assert input_("batch_size").check(4.0) == 4 and isinstance(input_("batch_size").check(4.0), int)
    assert isinstance(input_("tokens").check(10**12), float)
    assert math.isnan(input_("iter_time_s").check(math.nan))  # NaN is this input's "not measured"


def test_valid_words():
    assert input_("assumed_mfu").valid() == "> 0 and <= 1"
    assert input_("recompute").valid() == "none, selective, full"
    assert input_("sequence_parallel").valid() == ""


def test_unknown_names():
    with pytest.raises(TsizeError, match="unknown input 'batch'; valid: model, precision"):
        input_("batch")
    with pytest.raises(TsizeError, match="unknown output 'flops'; valid: params_token_embedding"):
        output("flops")


@pytest.mark.parametrize("module,name,function", FORMULAS, ids=[f"{m}.{n}" for m, n, _ in FORMULAS])
def test_every_formula_documents_its_unit_and_takes_keywords(module, name, function):
    """pvlib style: a docstring with the unit in brackets; keyword-only arguments, never a config object."""
    doc = inspect.getdoc(function) or ""
    assert re.search(r"\[[^\]]+\]", doc), "unit in brackets"
    kinds = {p.kind for p in inspect.signature(function).parameters.values()}
    assert kinds <= {inspect.Parameter.KEYWORD_ONLY}


@pytest.mark.parametrize("name", [i.name for i in INPUTS if i.kind in ("int", "float") and not i.choices])
def test_every_number_input_has_an_upper_bound_and_refuses_infinity(name):
    spec = input_(name)
    assert spec.maximum is not None and math.isfinite(spec.maximum)
    with pytest.raises(ValueError, match=rf"^{name} inf is not a finite number; valid: "):
        spec.check(math.inf)
    with pytest.raises(ValueError, match=rf"^{name} -inf is not a finite number; valid: "):
        spec.check(-math.inf)
    beyond = spec.maximum * 2 + 1
    with pytest.raises(ValueError, match=rf"^{name} .* is out of range; valid: .*<= "):
        spec.check(int(beyond) if spec.kind == "int" else beyond)
    assert spec.check(spec.maximum) == spec.maximum


def test_nan_only_where_the_registry_says_not_measured():
    assert math.isnan(input_("iter_time_s").check(math.nan))
    for name in ("tokens", "pue", "usd_per_kwh", "dropout_mask_bytes", "allocator_slack", "overhead_bytes",
                 "batch_size", "tp", "pp"):
        with pytest.raises(ValueError, match=rf"^{name} nan is not a finite number"):
            input_(name).check(math.nan)


@pytest.mark.parametrize("name,value,message", [
    ("tp", 1e30, r"tp 1e\+30 is out of range; valid: >= 1 and <= 1048576"),  # "Python int too large" before
    ("pp", math.inf, r"pp inf is not a finite number; valid: >= 1 and <= 1048576"),  # "cannot convert infinity"
    ("batch_size", 9223372036854775808, r"batch_size 9223372036854775808 is out of range; valid: >= 1 and "
                                        r"<= 4294967296"),
    ("gpu", {"a": 1}, r"gpu must be a catalog id \(text\), got \{'a': 1\}"),  # "unhashable type" before
    ("precision", [[1, 2]], r"precision must be a catalog id \(text\), got \[\[1, 2\]\]"),
    ("batch_size", 1.5, r"batch_size must be an integer, got 1\.5"),
    ("batch_size", True, r"batch_size must be a number, got True"),
])
def test_hostile_values(name, value, message):
    with pytest.raises(ValueError, match=message):
        input_(name).check(value)


def test_iteration_time_infinity_is_refused():
    """Issue 10: --iter-time inf printed 'in inf s'."""
    with pytest.raises(ValueError, match=r"iter_time_s inf is not a finite number"):
        size("gpt2", iter_time_s=math.inf)


#: Issue 11's step-time outputs and the formula function each one's reference must name.
STEP_TIME_FORMULAS = {
    "micro_batches": "pipeline.micro_batches", "batch_divides": "pipeline.batch_divides",
    "interleave_divides": "pipeline.interleave_divides", "stage_compute_time_s": "step.stage_compute_time_s",
    "stage_tp_comm_time_s": "step.stage_tp_comm_time_s", "stage_pp_comm_time_s": "step.stage_pp_comm_time_s",
    "compute_time_s": "step.stage_compute_time_s", "tp_comm_time_s": "step.stage_tp_comm_time_s",
    "pp_comm_time_s": "step.stage_pp_comm_time_s", "pp_bubble_time_s": "pipeline.bubble_time_s",
    "dp_comm_exposed_time_s": "step.exposed_time_s", "optimizer_time_s": "compute.optimizer_bytes",
    "step_time_s": "step.step_time_s", "pp_bubble_fraction": "pipeline.bubble_fraction",
    "predicted_mfu": "step.predicted_utilisation", "predicted_hfu": "step.predicted_utilisation",
    "tokens_per_s_per_gpu": "step.tokens_per_s_per_gpu", "train_time_s": "step.train_time_s",
    "train_mfu": "step.predicted_utilisation", "train_hfu": "step.predicted_utilisation",
}


@pytest.mark.parametrize("name,formula", STEP_TIME_FORMULAS.items())
def test_step_time_outputs_name_their_formula_function(name, formula):
    module, function = formula.split(".")
    assert (module, function) in {(m, n) for m, n, _ in FORMULAS}
    reference = output(name).reference
    assert f"{module}.py" in reference and re.search(rf"\b{function}\b", reference), reference
