"""``tsize validate --throughput``: predict published training runs from their configuration.

Each run of ``catalogs/published_runs.toml`` gives a model shape, a GPU, a
layout and a batch as published, and one published figure: Megatron's
"achieved TFLOP/s per GPU" (hardware FLOPs with recomputation, compared
with ``predicted_hfu x peak``), seconds per iteration, or tokens per second
per GPU. No run carries a constant of its own; the cases marked ``in``
chose the global GEMM efficiency curve (``compute.GEMM_PLATEAU``,
``compute.GEMM_HALF_FLOPS``) and are reported apart from the others.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import math
import statistics
import tomllib
from typing import Any

from tsize import catalog
from tsize.point import size
from tsize.errors import TsizeError
from tsize.model import from_mapping

METRICS = ("megatron_tflops_per_gpu", "step_time_s", "tokens_per_s_per_gpu")
#: The accuracy asked of the step-time model (issue 11): median |error| and largest |error|.
TARGET_MEDIAN, TARGET_MAX = 0.05, 0.20


@dataclasses.dataclass
class Case:
    id: str
    sample: str
    metric: str
    published: float
    predicted: float
    source: str
    setting: str

    @property
    def error(self) -> float:
        """Relative error of the prediction [1]: ``predicted / published - 1``."""
        return self.predicted / self.published - 1

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self) | {"error": self.error}


@functools.cache
def runs() -> tuple[dict[str, Any], ...]:
    """The published runs, validated (file, entry and field named on error)."""
    path = catalog.catalog_dir() / "published_runs.toml"
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise TsizeError(f"{path}: {exc}") from None
    entries = data.get("run")
    if not isinstance(entries, list) or not entries:
        raise TsizeError(f"{path}: expected one or more [[run]] tables")
    seen = set()
    for entry in entries:
        where = f"{path}: entry {entry.get('id')!r}"
        for field, kind in (("id", str), ("sample", str), ("metric", str), ("model", dict), ("inputs", dict),
                            ("source", str)):
            if not isinstance(entry.get(field), kind):
                raise TsizeError(f"{where}: field {field!r} must be {kind.__name__}")
        if entry["id"] in seen:
            raise TsizeError(f"{where}: duplicate id")
        seen.add(entry["id"])
        if entry["sample"] not in ("in", "out"):
            raise TsizeError(f"{where}: field 'sample' is {entry['sample']!r}; valid: in, out")
        if entry["metric"] not in METRICS:
            raise TsizeError(f"{where}: field 'metric' is {entry['metric']!r}; valid: {', '.join(METRICS)}")
        value = entry.get("value")
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
            raise TsizeError(f"{where}: field 'value' must be a positive number, got {value!r}")
        if not isinstance(entry.get("retrieved"), dt.date):
            raise TsizeError(f"{where}: field 'retrieved' must be a date")
    return tuple(entries)


def predict(entry: dict[str, Any]) -> Case:
    """One published run, predicted."""
    model = from_mapping(dict(entry["model"]), where=f"published run {entry['id']!r}")
    point = size(model, **entry["inputs"])
    metric = entry["metric"]
    if metric == "megatron_tflops_per_gpu":
        predicted = point["predicted_hfu"] * point["peak_flops_per_s"] / 1e12
    else:
        predicted = point[metric]
    i = entry["inputs"]
    setting = (f"{i['n_gpus']} x {i['gpu']}, tp {i.get('tp', 1)} pp {i.get('pp', 1)}"
               + (f" v {i['interleave']}" if i.get("interleave", 1) > 1 else "")
               + f" dp {point['data_parallel']:g}, ZeRO {i.get('zero_stage', 0)}, B {i['batch_size']}"
               f" x m {point['micro_batches']:g}, recompute {i.get('recompute', 'none')}"
               + (" + SP" if i.get("sequence_parallel") else ""))
    return Case(entry["id"], entry["sample"], metric, float(entry["value"]), float(predicted),
                entry["source"].split(",")[0].split(";")[0], setting)


def run() -> list[Case]:
    return [predict(entry) for entry in runs()]


def _stats(chosen: list[Case]) -> dict[str, float]:
    errors = [abs(c.error) for c in chosen if math.isfinite(c.error)]
    return {"cases": len(chosen), "median_abs_error": statistics.median(errors) if errors else math.nan,
            "max_abs_error": max(errors) if errors else math.nan, "unpredicted": len(chosen) - len(errors)}


def summary(cases: list[Case]) -> dict[str, dict[str, float]]:
    """Median and largest |error| and the count, for the in-sample, out-of-sample and all cases."""
    return {name: _stats(chosen) for name, chosen in (("in", [c for c in cases if c.sample == "in"]),
                                                       ("out", [c for c in cases if c.sample == "out"]),
                                                       ("all", cases))}


_UNITS = {"megatron_tflops_per_gpu": ("TFLOP/s per GPU", "{:,.1f}"), "step_time_s": ("s per step", "{:,.2f}"),
          "tokens_per_s_per_gpu": ("tokens/s per GPU", "{:,.0f}")}


def markdown(cases: list[Case]) -> str:
    """The cases and the summary as Markdown (the README's generated table)."""
    lines = ["| case | sample | configuration | published | predicted | error |", "|---|---|---|---:|---:|---:|"]
    for c in cases:
        unit, fmt = _UNITS[c.metric]
        lines.append(f"| {c.id} | {c.sample} | {c.setting} | {fmt.format(c.published)} {unit} | "
                     f"{fmt.format(c.predicted)} | {c.error:+.1%} |")
    lines += ["", "| cases | count | median abs. error | largest abs. error |", "|---|---:|---:|---:|"]
    names = {"in": "in-sample (chose the GEMM curve)", "out": "out-of-sample", "all": "all"}
    rows = [(names[name], row) for name, row in summary(cases).items()]
    groups = dict.fromkeys(_group(c) for c in cases)
    rows += [(f"of which {g}", _stats([c for c in cases if _group(c) == g])) for g in groups]
    for name, row in rows:
        lines.append(f"| {name} | {row['cases']} | {row['median_abs_error']:.1%} | {row['max_abs_error']:.1%} |")
    return "\n".join(lines)


def _group(case: Case) -> str:
    """The published source of a case, with the GPU where one source measured several ("mpt h100")."""
    parts = case.id.split("-")
    gpu = next((p for p in parts if p in ("a100", "h100", "b200")), "")
    return f"{parts[0]} {gpu}".strip()
