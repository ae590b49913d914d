"""The one door: everything the command line calls, and the Python API.

Each ``tsize`` command is one call of one function here, whose result the
command renders: :func:`size` and :func:`report` (one configuration),
:func:`sweep`, :func:`query`, :func:`sweeps` (the store), :func:`catalog_rows`,
:func:`chart`, :func:`validate`, :func:`bench`. The registry's declarations
(``INPUTS``, ``OUTPUTS``, ``TIERS``) and the catalog's dtype names are
re-exported so the command line builds its options and docs from them
without reaching past this module.

A user's mistake raises :class:`tsize.errors.TsizeError`; anything else is a
bug.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tsize import catalog
from tsize.catalog import DTYPES
from tsize.errors import TsizeError
from tsize.grid import DEFAULT_DTYPE, Grid
from tsize.model import ModelConfig
from tsize.point import axes_for, point, rows, size
from tsize.registry import DEFAULT_SEQ_LEN, INPUTS, OUTPUTS, TIERS, home_tier, input_
from tsize.version import __version__

if TYPE_CHECKING:
    import polars as pl

__all__ = ["DEFAULT_DTYPE", "DTYPES", "INPUTS", "OUTPUTS", "TIERS", "__version__", "axes_for",
           "bench", "catalog_rows", "chart", "fleet_options", "fleets", "home_tier", "json_safe", "point", "query",
           "report", "seed_checks", "serving_options", "size", "sweep", "sweeps", "validate", "validate_serving_markdown",
           "validation_markdown", "check_serving", "CHARTS", "validate_throughput", "validate_serving"]

#: Seconds a command waits while another tsize process writes the store.
WAIT_S = 30.0
CATALOGS = ("models", "gpus", "precisions", "optimizers", "systems")
CHARTS = ("pareto", "fleet", "breakdown", "serving")
#: Phases ``tsize bench`` can time (tsize.validation.bench.PHASES).
BENCH_PHASES = ("evaluate", "frame", "store", "scalar", "workers1", "workers2", "ray", "store2")


def check_serving(row: dict[str, Any]) -> dict[str, Any]:
    """``row`` unchanged when it is not a serving point or its serving input is valid; a one-line TsizeError
    naming the bad input otherwise (what a sweep keeps as flags)."""
    if row.get("mode") != "serve":
        return row
    if row["concurrency"] < 1:
        raise TsizeError(f"concurrency {row['concurrency']} serves nothing; valid: >= 1")
    if not row["context_fits_model"]:
        raise TsizeError(f"context_len {row['context_len']} + output_len {row['output_len']} exceeds "
                         f"{row['model']}'s n_ctx {row['n_ctx']}; valid: context_len + output_len <= {row['n_ctx']}")
    if not row["weight_dtype_supported"]:
        gpu = catalog.lookup("gpu", row["gpu"])
        from tsize.grid import WEIGHT_FORMATS, format_peak

        ok = [w for w in WEIGHT_FORMATS if math.isfinite(format_peak(gpu, w))]
        peaks = WEIGHT_FORMATS[row["weight_dtype"]][4]
        needs = peaks if isinstance(peaks, str) else " or ".join(peaks)
        raise TsizeError(f"weight_dtype {row['weight_dtype']} needs {needs} tensor cores, which {row['gpu']} lacks; "
                         f"valid on it: {', '.join(ok)}")
    tp, heads, kv = row["tp"], row["n_head"], row["n_kv_head"]
    if heads % tp or (kv % tp and tp % kv):
        valid = [t for t in range(1, heads + 1) if heads % t == 0 and (kv % t == 0 or t % kv == 0)]
        raise TsizeError(f"tp {tp} cannot split {row['model']}'s {heads} heads and {kv} KV heads; "
                         f"valid tp: {', '.join(map(str, valid))}")
    return row


def json_safe(row: dict[str, Any]) -> dict[str, Any]:
    """NaN and infinity become null, the JSON way."""
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()}


# --- one configuration --------------------------------------------------------------------------------------------

def report(model: str | ModelConfig, *, dtype: str | None = None, batch_size: int | Sequence[int] | None = None,
           **inputs: Any) -> dict[str, Any]:
    """Everything ``tsize size`` shows for one configuration, computed; the caller only renders it.

    ``batch_size`` may be several values (the memory table's rows); the
    point itself is at the first. Returns ``point`` (one row of every
    column), ``model``, ``precision`` and ``gpu`` (catalog facts),
    ``by_gpu`` (the point on every catalog GPU), ``by_batch`` (the point at
    each batch size) and ``by_kernel`` (the point for each attention kernel
    and each dtype's default recipe), ``default_seq_len`` (the cap T took when
    no ``seq_len`` was given, else None).
    """
    if batch_size is None:
        batch_size = input_("batch_size").default
    batches = list(batch_size) if isinstance(batch_size, (list, tuple)) else [batch_size]
    axes = axes_for(model, dtype=dtype, batch_size=batches, **inputs)
    first = axes | {"batch_size": axes["batch_size"][:1]}
    (p,) = rows(Grid(first))
    m = axes["model"][0]
    recipes = {d: catalog.precision_for_dtype(d) for d in DTYPES}
    kernels = ("naive", "flash")
    by_kernel = rows(Grid(first | {"attention": list(kernels), "precision": list(recipes.values())}))
    recipe = catalog.lookup("precision", p["precision"])
    gpu = catalog.lookup("gpu", p["gpu"])
    return {
        "point": p,
        # the cap T took when no --seq-len was given (the report says so), else None
        "default_seq_len": None if inputs.get("seq_len") else DEFAULT_SEQ_LEN,
        "model": _model_row(m) | {"head_dim": m.head_size, "mla": m.mla, "q_lora_rank": m.q_lora_rank,
                                  "kv_lora_rank": m.kv_lora_rank, "qk_nope_head_dim": m.qk_nope_head_dim,
                                  "qk_rope_head_dim": m.qk_rope_head_dim, "v_head_dim": m.v_head_dim,
                                  "not_modelled": m.not_modelled()},
        "precision": {"id": recipe.id, "description": recipe.description, "peak": recipe.peak,
                      "param_bits": recipe.param_bits},
        "gpu": {"id": gpu.id, "name": gpu.name, "device_memory_bytes": gpu.device_memory_bytes},
        "by_gpu": rows(Grid(first | {"gpu": list(catalog.gpus())})),
        "by_batch": rows(Grid(axes)),
        "by_kernel": {"kernels": kernels, "recipes": recipes,
                      "activation_bytes": {k: {d: next(r["activation_bytes"] for r in by_kernel
                                                       if r["attention"] == k and r["precision"] == recipes[d])
                                               for d in DTYPES} for k in kernels}},
    }


# --- the store ----------------------------------------------------------------------------------------------------

def sweeps(path: str | Path | None = None) -> "pl.DataFrame":
    """The stored sweeps, one row each."""
    from tsize import store

    return store.sweeps(path)


def fleet_options(*, path: str | Path | None = None, **source) -> "pl.DataFrame":
    """Best option per target, GPU type and count (``source``: sweep or sql, models, tokens)."""
    from tsize import fleet, store

    return store.query(fleet.options_sql(fleet.source_sql(**source)), path=path)


def fleets(*, deadline_days: float, path: str | Path | None = None, **source) -> "pl.DataFrame":
    """Smallest fleet per target and GPU type that meets the deadline."""
    from tsize import fleet, store

    if not (isinstance(deadline_days, (int, float)) and math.isfinite(deadline_days) and deadline_days > 0):
        raise TsizeError(f"deadline_days {deadline_days!r} is out of range; valid: > 0")
    return store.query(fleet.fleet_sql(fleet.source_sql(**source), deadline_s=deadline_days * 86400.0), path=path)


def chart(kind: str, *, path: str | Path | None = None, sweep: str | None = None, sql: str | None = None,
          models: list[str] | None = None, tokens: list[float] | None = None, deadline_days: float = 30.0,
          output: str | Path | None = None) -> Path:
    """Chart fleet options from the store ('pareto' or 'fleet') into ``output`` (.html, .png, .svg)."""
    from tsize import charts

    if kind not in CHARTS:
        raise TsizeError(f"unknown chart {kind!r}; valid: {', '.join(CHARTS)}")
    if kind == "serving":
        sweep = sweep or "serving"
        data = serving_options(path=path, sweep=sweep if sql is None else None, sql=sql, models=models)
        if data.is_empty():
            raise TsizeError(f"no serving points to chart in {'the query' if sql else repr(sweep)} "
                             f"(stored sweeps: tsize sweeps; the serving study: tsize sweep sweeps/serving.toml)")
        return charts.save(charts.serving(data), output or "outputs/serving.html")
    sweep = sweep or "fleet"
    source = dict(sweep=sweep if sql is None else None, sql=sql, models=models, tokens=tokens)
    if kind in ("pareto", "breakdown"):
        data = fleet_options(path=path, **source)
    else:
        data = fleets(deadline_days=deadline_days, path=path, **source)
    if data.is_empty():
        what = f"sweep {sweep!r}" if sql is None else "the query"
        raise TsizeError(f"no points to chart: {what} selected no rows (stored sweeps: tsize sweeps; "
                         f"the fleet study: tsize sweep sweeps/fleet.toml)")
    made = (charts.pareto(data) if kind == "pareto" else charts.breakdown(data) if kind == "breakdown"
            else charts.fleet(data, deadline_days=deadline_days))
    return charts.save(made, output or f"outputs/{kind}.html")


# --- catalogs -----------------------------------------------------------------------------------------------------

def _model_row(m: ModelConfig) -> dict[str, Any]:
    """A model's shape as shown to users (the catalog listing and the size report share it)."""
    return {"name": m.name, "family": m.family, "n_layer": m.n_layer, "d_model": m.d_model, "n_head": m.n_head,
            "n_kv_head": m.kv_heads, "d_ff": m.d_ff, "vocab_size": m.vocab_size, "n_ctx": m.n_ctx,
            "n_experts": m.n_experts, "top_k": m.top_k, "published_params": m.published_params}


def catalog_rows(which: str) -> list[dict[str, Any]]:
    """One catalog as JSON-safe rows (``which``: models, gpus, precisions, optimizers)."""
    if which == "models":
        rows_ = [_model_row(m) | {"source": m.source} for m in catalog.models().values()]
    elif which == "gpus":
        rows_ = [{"id": g.id, "vendor": g.vendor, "name": g.name, "memory_bytes": g.memory_bytes,
                  "memory_usable_bytes": g.memory_usable_bytes,
                  **{f"{k}_flops_per_s": v for k, v in g.peak_flops_per_s.items()},
                  "tdp_w": g.tdp_w, "price_usd": g.price_usd, "cloud_usd_per_hour": g.cloud_usd_per_hour,
                  "source": g.source} for g in catalog.gpus().values()]
    elif which == "precisions":
        rows_ = [dict(vars(r)) for r in catalog.precisions().values()]
    elif which == "systems":
        rows_ = [{"id": y.id, "gpus": ", ".join(y.gpus) or ("(fallback)" if y.default else "-"),
                  "scaleup_size": y.scaleup_size, "scaleup_busbw_gb_s": round(y.scaleup_bytes_per_s / 1e9, 1),
                  "scaleout_gb_s_per_gpu": round(y.scaleout_bytes_per_s / 1e9, 2), "source": y.source}
                 for y in catalog.systems().values()]
    elif which == "optimizers":
        rows_ = [dict(vars(o)) for o in catalog.optimizers().values()]
    else:
        raise TsizeError(f"unknown catalog {which!r}; valid: {', '.join(CATALOGS)}")
    return [json_safe(r) for r in rows_]


# --- measurement --------------------------------------------------------------------------------------------------

def validate(model: str | ModelConfig | None = None, *, all_models: bool = False, batch_size: int = 1,
             seq_len: int | None = None) -> list:
    """Estimates against the real PyTorch model: a list of ``validation.validate.Check``.

    Needs PyTorch and transformers (``pip install -e '.[validate]'``).
    """
    try:
        from tsize.validation import measure

        measure.require()
    except RuntimeError as exc:
        raise TsizeError(str(exc)) from None
    from tsize.validation import validate as validate_mod

    if all_models == (model is not None):
        raise TsizeError("give one MODEL or --all")
    options = dict(batch_size=batch_size, seq_len=seq_len)
    return validate_mod.run_all(**options) if all_models else validate_mod.run(model, **options)


def validation_markdown(checks: list, *, summary: bool = False) -> str:
    """Checks as a Markdown table; ``summary``: one row per model (the README's accuracy table)."""
    from tsize.validation import validate as validate_mod

    return validate_mod.summary_markdown(checks) if summary else validate_mod.markdown(checks)


def bench(spec: str | Path | None = None, *, points: float | None = None, sample: int = 2000,
          phases: tuple[str, ...] = ("evaluate", "frame", "store", "scalar")) -> dict[str, Any]:
    """Speed and peak memory of evaluation, of the long-form frame, of a sweep into DuckDB (one process, sharded
    processes, Ray) and of a scalar loop (``phases``, of ``BENCH_PHASES``); each phase has a ``label``, wall-clock
    ``seconds`` and, where measured, ``cpu_s`` (CPU time of every thread and worker)."""
    from tsize.validation import bench as bench_mod

    unknown = [p for p in phases if p not in BENCH_PHASES]
    if unknown or not phases:
        raise TsizeError(f"unknown benchmark phase {unknown[0] if unknown else ''!r}; valid: {', '.join(BENCH_PHASES)}")

    result = bench_mod.run(None if spec is None else str(spec), points=points, sample=sample, phases=phases)
    for name, phase in result["phases"].items():
        phase["label"] = bench_mod.LABELS[name]
    return result


def seed_checks() -> list[dict[str, Any]]:
    """The seed notebook's measurements next to tsize's estimates, for the models they belong to.

    Each row: ``label``, ``measured`` (its unit in ``unit``: MiB, B or none)
    and ``estimate`` in the same unit.
    """
    from tsize.model import from_mapping

    m = catalog.measurements()
    out = []
    peak = m["seed-gpt2-peak-memory"]
    for b, mib in zip(peak["batch_size"], peak["values"]):
        est = size("gpt2", batch_size=b, seq_len=1024, precision="amp-bf16", attention="flash")["memory_peak_bytes"]
        out.append({"label": f"gpt2 peak memory, flash, bf16, B={b}, T=1024", "unit": "MiB", "measured": mib,
                    "estimate": est / 2**20})
    ckpt = m["seed-gpt2-checkpoint"]
    model = from_mapping(dict(ckpt["model_fields"], name=ckpt["model"]))
    out.append({"label": "checkpoint of GPT-2 124M (bias=False, mask buffers)", "unit": "B",
                "measured": ckpt["value"],
                "estimate": size(model, attention="naive", optimizer="adamw")["checkpoint_bytes"]})
    it = m["seed-gpt2-iteration-time"]
    mfu = size("gpt2", batch_size=it["batch_size"][0], grad_accum=it["grad_accum"], iter_time_s=it["value"],
               seq_len=1024, gpu="nvidia_a100_40gb_sxm")["mfu"]
    out.append({"label": f"MFU of gpt2, 20 x 5 sequences in {it['value']} s on an A100", "unit": "",
                "measured": None, "estimate": mfu})
    return out


def validate_throughput() -> dict[str, Any]:
    """Published training runs (catalogs/published_runs.toml) against the predicted step time.

    Returns ``cases`` (one dict each), ``summary`` (median and largest |error| per group, in-sample and
    out-of-sample apart), ``markdown`` (the README table), ``targets`` (median, largest) and ``target_met``.
    """
    from tsize.validation import throughput

    cases = throughput.run()
    summary = throughput.summary(cases)
    row = summary["all"]
    return {"cases": [c.as_dict() for c in cases], "summary": summary, "markdown": throughput.markdown(cases),
            "targets": (throughput.TARGET_MEDIAN, throughput.TARGET_MAX),
            "target_met": row["median_abs_error"] <= throughput.TARGET_MEDIAN
            and row["max_abs_error"] <= throughput.TARGET_MAX}


def validate_serving() -> dict[str, Any]:
    """Serving latency and throughput against published measurements (catalogs/published_serving.toml).

    Returns ``cases`` (one dict each, with ``exact``: whether its set states batch, TP, precision, input and
    output lengths), ``summary`` (per set), ``target`` (issue 13's median |error| over the exactly stated cases,
    ``met`` and the not-counted cases' figures), ``line`` (that verdict in one line) and ``markdown`` (the README
    table).
    """
    from tsize.validation import serving

    results = serving.run()
    return {"cases": [r.as_dict() for r in results], "summary": serving.summary(results),
            "target": serving.target(results),
            "line": serving.summary_line(results), "markdown": serving.table(results)}


def validate_serving_markdown() -> str:
    """Serving latency and throughput against published measurements, as the README's Markdown table."""
    return validate_serving()["markdown"]


def serving_options(*, path: str | Path | None = None, **source) -> "pl.DataFrame":
    """Serving points of a sweep (or query) with cost per output token, TPOT and a Pareto flag per model and
    context length (``source``: sweep or sql, models)."""
    from tsize import fleet, store

    return store.query(fleet.serving_sql(fleet.source_sql(**source)), path=path)
def sweep(spec: Any, *, path: str | Path | None = None, workers: int | None = None, ray: str | bool | None = None,
          resume: bool = False, format: str = "duckdb", output: str | Path | None = None,
          shard_points: int | None = None, chunk_points: int | None = None, progress: bool | None = None,
          wait_s: float = WAIT_S) -> dict[str, Any]:
    """Evaluate a sweep spec (path, dict or ``Spec``) into the DuckDB store ``path`` (or a Parquet dataset), on
    ``workers`` local processes or on Ray; see ``tsize.shards.sweep``. Returns the summary plus ``fit_share``
    and ``points_per_s``."""
    from tsize import shards

    return _rates(shards.sweep(spec, path=path, workers=workers, ray=ray, resume=resume, format=format,
                               output=output, shard_points=shard_points, chunk_points=chunk_points,
                               progress=progress, wait_s=wait_s))


def _rates(result: dict[str, Any]) -> dict[str, Any]:
    """A sweep's summary plus ``fit_share`` and ``points_per_s``."""
    return result | {"fit_share": result["fits"] / result["points"] if result["points"] else 0.0,
                     "points_per_s": result["points"] / max(result["seconds"], 1e-9)}


def query(sql: str | None = None, *, file: str | Path | None = None, path: str | Path | None = None,
          wait_s: float = WAIT_S, form: str = "frame") -> "pl.DataFrame":
    """Run one SQL statement (given, or read from ``file``) read-only against the DuckDB store, in DuckDB's
    sandbox, or against a sweep's Parquet dataset when ``path`` is one. ``form`` (frame, csv, table, json,
    parquet) converts columns that output format cannot hold (``store.query``)."""
    from tsize import paths, shards, store

    if (sql is None) == (file is None):
        raise TsizeError("give one SQL statement or --file FILE")
    sql = paths.read_text(file, "query file") if file is not None else sql
    if shards.is_dataset(path):
        return shards.query(sql, path)
    return store.query(sql, path=path, wait_s=wait_s, form=form)


def store_path(path: str | Path | None = None) -> Path:
    """The DuckDB file a command uses: ``path``, else ``$TSIZE_DB``, else ``outputs/tsize.duckdb``."""
    from tsize import store

    return store.db_path(path)
