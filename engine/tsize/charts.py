"""Altair charts of fleet options: Pareto fronts of cost vs time, and fleet-purchase comparisons.

Data stay in base units (USD, seconds, bytes); days and GiB are computed by
the chart itself (Vega ``calculate`` transforms), for display only. Charts
save as self-contained HTML (Vega, Vega-Lite and vega-embed inlined: no
network needed) or as PNG/SVG through vl-convert.
"""

from __future__ import annotations

from pathlib import Path

import altair as alt
import polars as pl

from tsize.errors import TsizeError

FORMATS = ("html", "png", "svg")
DAYS = "datum.train_time_s / 86400"
GIB = "datum.memory_required_bytes / 1073741824"
LAYOUT = ("'tp ' + datum.tp + ' x pp ' + datum.pp + ' x dp ' + datum.data_parallel + ', ZeRO-' + datum.zero_stage"
          " + ', recompute ' + datum.recompute + ', micro-batch ' + datum.batch_size")


def _data(frame: pl.DataFrame) -> alt.Data:
    """Rows as plain records (NaN and infinity become null, which JSON and Vega understand)."""
    clean = frame.with_columns(pl.col(pl.Float64).fill_nan(None))
    return alt.Data(values=clean.to_dicts())


def _target(model: str, tokens: float) -> str:
    return f"{model}, {tokens / 1e12:.3g}T tokens"


def pareto(options: pl.DataFrame, *, title: str = "Cloud cost vs time to train") -> alt.VConcatChart:
    """Per target: cost (x) vs days (y) of the options that fit, coloured by GPU type, with the Pareto
    front as a line; beside it, which GPU types and counts fit at all."""
    if options.is_empty():
        raise TsizeError("no points to chart: the sweep or query selected no rows")
    gpus = sorted(options["gpu"].unique().to_list())
    colors = alt.Scale(domain=gpus)
    rows = []
    for (model, tokens), group in options.group_by(["model", "tokens"], maintain_order=True):
        fit = group.filter(pl.col("fits") & pl.col("cost_usd").is_finite())
        base = alt.Chart(_data(fit)).transform_calculate(days=DAYS, required_gib=GIB, layout=LAYOUT)
        x = alt.X("cost_usd:Q", scale=alt.Scale(type="log"), axis=alt.Axis(format="$~s"),
                  title="cloud cost (USD, on-demand GPU-hours)")
        y = alt.Y("days:Q", scale=alt.Scale(type="log"), title="days to train")
        points = base.mark_point(filled=True, opacity=0.85).encode(
            x=x, y=y,
            color=alt.Color("gpu:N", title="GPU", scale=colors),
            size=alt.Size("n_gpus:Q", scale=alt.Scale(type="log", range=[20, 300]), title="GPUs"),
            shape=alt.Shape("pareto:N", title="on Pareto front",
                            scale=alt.Scale(domain=[True, False], range=["diamond", "circle"])),
            tooltip=[alt.Tooltip("gpu:N", title="GPU"), alt.Tooltip("n_gpus:Q", title="GPUs"),
                     alt.Tooltip("layout:N", title="layout"),
                     alt.Tooltip("required_gib:Q", title="memory per GPU (GiB)", format=".1f"),
                     alt.Tooltip("cost_usd:Q", title="cloud cost (USD)", format="$,.0f"),
                     alt.Tooltip("purchase_usd:Q", title="purchase (USD)", format="$,.0f"),
                     alt.Tooltip("days:Q", title="days", format=",.1f"),
                     alt.Tooltip("pareto:N", title="Pareto front")],
        )
        front = base.transform_filter("datum.pareto").mark_line(color="black", strokeDash=[4, 2]).encode(
            x=x, y=y, order="cost_usd:Q")
        scatter = alt.layer(points, front).properties(width=420, height=260)
        status = group.with_columns(
            pl.when(~pl.col("fits")).then(pl.lit("does not fit"))
            .when(~pl.col("cost_usd").is_finite()).then(pl.lit("fits, no cloud price"))
            .otherwise(pl.lit("fits")).alias("status"))
        fitmap = alt.Chart(_data(status)).transform_calculate(required_gib=GIB).mark_square(size=120).encode(
            x=alt.X("n_gpus:O", title="GPUs"), y=alt.Y("gpu:N", title=None),
            color=alt.Color("status:N", title="fit", scale=alt.Scale(
                domain=["fits", "fits, no cloud price", "does not fit"], range=["#2ca02c", "#98df8a", "#d62728"])),
            tooltip=[alt.Tooltip("gpu:N", title="GPU"), alt.Tooltip("n_gpus:Q", title="GPUs"),
                     alt.Tooltip("status:N"),
                     alt.Tooltip("required_gib:Q", title="memory per GPU needed (GiB)", format=".1f")],
        ).properties(width=260, height=260)
        rows.append(alt.hconcat(scatter, fitmap).resolve_scale(color="independent")
                    .properties(title=_target(model, tokens)))
    return alt.vconcat(*rows).resolve_scale(color="independent").properties(
        title=alt.Title(title, subtitle="Each point: the cheapest layout that fits for a GPU type and count "
                                       "(diamonds: Pareto front); right: which GPU types and counts fit at all"))


def fleet(fleets: pl.DataFrame, *, deadline_days: float, title: str | None = None) -> alt.VConcatChart:
    """Per GPU type: the smallest fleet that meets the deadline - GPUs, purchase and cloud cost, days."""
    if fleets.is_empty():
        raise TsizeError("no points to chart: the sweep or query selected no rows")
    rows = []
    for (model, tokens), group in fleets.group_by(["model", "tokens"], maintain_order=True):
        order = group.sort("purchase_usd", nulls_last=True)["gpu"].to_list()
        base = alt.Chart(_data(group)).transform_calculate(days=DAYS, layout=LAYOUT)
        y = alt.Y("gpu:N", sort=order, scale=alt.Scale(domain=order), title=None)
        tooltip = [alt.Tooltip("gpu:N", title="GPU"), alt.Tooltip("n_gpus:Q", title="GPUs"),
                   alt.Tooltip("layout:N", title="layout"), alt.Tooltip("days:Q", title="days", format=",.1f"),
                   alt.Tooltip("purchase_usd:Q", title="purchase (USD)", format="$,.0f"),
                   alt.Tooltip("cost_usd:Q", title="cloud cost (USD)", format="$,.0f"),
                   alt.Tooltip("verdict:N")]

        verdict = base.mark_text(align="left").encode(y=y, text="verdict:N", color=alt.condition(
            "datum.n_gpus == null", alt.value("#d62728"), alt.value("#2ca02c"))).properties(width=200)
        label = f"{_target(model, tokens)}, within {deadline_days:g} days"
        panels = [_bars(base, group, field, title, fmt, y, tooltip) for field, title, fmt in (
            ("n_gpus", "GPUs needed", ",d"), ("purchase_usd", "purchase (USD)", "$,.2s"),
            ("cost_usd", "cloud cost (USD)", "$,.2s"), ("days", "days to train", ",.0f"))]
        rows.append(alt.hconcat(*panels, verdict).properties(title=label))
    return alt.vconcat(*rows).properties(title=alt.Title(
        title or "Which fleet to buy", subtitle="Smallest fleet of each GPU type that fits and meets the deadline; "
                                                "its cheapest layout (hover for details)"))


#: The parts of step_time_s, in stacking order, with their legend labels.
STEP_PARTS = (("compute_time_s", "compute"), ("tp_comm_time_s", "tensor-parallel comm"),
              ("pp_comm_time_s", "pipeline sends"), ("pp_bubble_time_s", "pipeline bubble"),
              ("dp_comm_exposed_time_s", "data-parallel comm (exposed)"), ("optimizer_time_s", "optimizer"))


def breakdown(options: pl.DataFrame, *, title: str = "Where the step time goes") -> alt.VConcatChart:
    """Per target and GPU type: each fleet option's (GPU count's) predicted step time, as shares by part."""
    fit = options.filter(pl.col("fits") & pl.col("step_time_s").is_finite()) if "fits" in options.columns else \
        options.filter(pl.col("step_time_s").is_finite())
    if fit.is_empty():
        raise TsizeError("no points to chart: no option that fits has a predicted step time")
    labels = dict(STEP_PARTS)
    rows = []
    for (model, tokens), group in fit.group_by(["model", "tokens"], maintain_order=True):
        long = group.unpivot(index=["gpu", "n_gpus", "tp", "pp", "data_parallel", "zero_stage", "step_time_s"],
                             on=[c for c, _ in STEP_PARTS], variable_name="part", value_name="seconds")
        long = long.with_columns(pl.col("part").replace_strict(labels))
        chart = alt.Chart(_data(long)).mark_bar().encode(
            x=alt.X("seconds:Q", title="share of the predicted step time", stack="normalize",
                    axis=alt.Axis(format="%")),
            y=alt.Y("n_gpus:O", title="GPUs"),
            color=alt.Color("part:N", sort=[label for _, label in STEP_PARTS],
                            scale=alt.Scale(domain=[label for _, label in STEP_PARTS])),
            order=alt.Order("part:N"),
            row=alt.Row("gpu:N", title=None),
            tooltip=[alt.Tooltip("gpu:N", title="GPU"), alt.Tooltip("n_gpus:Q", title="GPUs"),
                     alt.Tooltip("tp:Q"), alt.Tooltip("pp:Q"), alt.Tooltip("data_parallel:Q", title="dp"),
                     alt.Tooltip("zero_stage:Q", title="ZeRO"), alt.Tooltip("part:N"),
                     alt.Tooltip("seconds:Q", format=",.3g"), alt.Tooltip("step_time_s:Q", title="step (s)",
                                                                         format=",.3g")],
        ).properties(width=420, height=alt.Step(14), title=_target(model, tokens))
        rows.append(chart)
    return alt.vconcat(*rows).properties(title=alt.Title(
        title, subtitle="Cheapest layout per GPU type and count; bars: each part's share of the predicted step "
                        "(hover for seconds)"))


def _bars(base: alt.Chart, group: pl.DataFrame, field: str, title: str, fmt: str, y: alt.Y, tooltip: list):
    """Horizontal bars of one measure; rows without a value (no fleet meets the deadline) are left out."""
    values = group[field] if field != "days" else group["train_time_s"] / 86400
    top = values.filter(values.is_finite()).max() if values.is_not_null().any() else None
    return base.transform_filter(f"isValid(datum.{field}) && isFinite(datum.{field})").mark_bar().encode(
        x=alt.X(f"{field}:Q", title=title, axis=alt.Axis(format=fmt), scale=alt.Scale(domain=[0, top or 1])),
        y=y, tooltip=tooltip, color=alt.value("#4c78a8"),
    ).properties(width=170, height=alt.Step(22))


def serving(options: pl.DataFrame, *, title: str = "Serving: cost per million output tokens vs time per token"
            ) -> alt.VConcatChart:
    """Per model and context length: cost per million output tokens (x) vs time per output token (y) of every
    configuration, coloured by GPU, filled where it fits, grey crosses where it does not; the Pareto front of
    the fitting ones as a line."""
    if options.is_empty():
        raise TsizeError("no points to chart: the sweep or query selected no serving rows (mode = serve)")
    gpus = sorted(options["gpu"].unique().to_list())
    colors = alt.Scale(domain=gpus)
    rows = []
    for (model, context), group in options.group_by(["model", "context_len"], maintain_order=True):
        base = alt.Chart(_data(group)).transform_calculate(
            tpot_ms="datum.tpot_s * 1000", ttft_ms="datum.ttft_s * 1000",
            config="'tp ' + datum.tp + ', ' + datum.weight_dtype + ' weights, KV ' + datum.kv_dtype"
                   " + ', ' + datum.concurrency + ' in flight'")
        x = alt.X("usd_per_million_output_tokens:Q", scale=alt.Scale(type="log"), axis=alt.Axis(format="$.2~f"),
                  title="USD per million output tokens (on-demand GPU-hours)")
        y = alt.Y("tpot_ms:Q", scale=alt.Scale(type="log"), title="time per output token (ms)")
        tooltip = [alt.Tooltip("gpu:N", title="GPU"), alt.Tooltip("config:N", title="configuration"),
                   alt.Tooltip("usd_per_million_output_tokens:Q", title="USD / M output tokens", format="$.3f"),
                   alt.Tooltip("tpot_ms:Q", title="TPOT (ms)", format=".2f"),
                   alt.Tooltip("ttft_ms:Q", title="TTFT (ms)", format=",.0f"),
                   alt.Tooltip("output_tokens_per_s_per_gpu:Q", title="tokens/s per GPU", format=",.0f"),
                   alt.Tooltip("max_concurrency:Q", title="max concurrency", format=",.0f"),
                   alt.Tooltip("serving_fits:N", title="fits")]
        fit = base.transform_filter("datum.serving_fits").mark_point(filled=True, opacity=0.7).encode(
            x=x, y=y, color=alt.Color("gpu:N", title="GPU", scale=colors),
            shape=alt.Shape("weight_dtype:N", title="weights"), tooltip=tooltip)
        unfit = base.transform_filter("!datum.serving_fits").mark_point(shape="cross", color="#bbbbbb",
                                                                        opacity=0.5).encode(x=x, y=y, tooltip=tooltip)
        front = base.transform_filter("datum.pareto").mark_line(color="black", strokeDash=[4, 2]).encode(
            x=x, y=y, order="usd_per_million_output_tokens:Q")
        rows.append(alt.layer(unfit, fit, front).properties(
            width=460, height=260, title=f"{model}, {context:,} prompt tokens"))
    return alt.vconcat(*rows).resolve_scale(color="shared").properties(title=alt.Title(
        title, subtitle="Filled: fits in gpu_memory_utilization of the GPU; grey crosses: does not fit; "
                        "dashed: Pareto front of the fitting configurations"))


def save(chart: alt.TopLevelMixin, path: str | Path) -> Path:
    """Write ``chart`` as .html (self-contained, renders offline), .png or .svg."""
    path = Path(path)
    kind = path.suffix.lstrip(".").lower()
    if kind not in FORMATS:
        raise TsizeError(f"unknown chart format {path.suffix!r} for {path}; valid: .html, .png, .svg")
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "html":
        chart.save(str(path), format="html", inline=True, embed_options={"renderer": "svg", "actions": False})
    elif kind == "png":
        chart.save(str(path), format="png", scale_factor=2)
    else:
        chart.save(str(path), format="svg")
    return path
