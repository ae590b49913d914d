"""Fleet planning: the best layout per GPU type and count, Pareto fronts, fleets that meet a deadline.

Everything here is SQL over a relation with the columns of ``results``
(the store's view, or a user's query of it), run by DuckDB. A *target* is a
model trained on a number of tokens. For each target and each GPU type and
count, the *option* is the cheapest layout that fits (parallelism,
ZeRO stage, recomputation, micro-batch); cloud cost is GPU-hours times the
price, so the cheapest is also the fastest layout of that fleet.

An option is on the Pareto front of its target when no other option is at
least as cheap and at least as fast, and better in one of the two.
"""

from __future__ import annotations

from tsize.errors import TsizeError
from tsize.registry import RECOMPUTE

TARGET = ("model", "tokens")

#: Columns an option carries (the layout, its memory, time and money).
OPTION_COLUMNS = ("model", "tokens", "gpu", "n_gpus", "tp", "pp", "data_parallel", "zero_stage", "recompute",
                  "batch_size", "grad_accum", "precision", "memory_per_gpu_bytes", "memory_required_bytes",
                  "gpu_memory_bytes", "train_time_s", "gpu_time_s", "cost_usd", "purchase_usd", "energy_j",
                  "energy_usd", "train_mfu", "interleave", "global_batch_size", "step_time_s", "compute_time_s",
                  "tp_comm_time_s", "pp_comm_time_s", "pp_bubble_time_s", "dp_comm_exposed_time_s",
                  "optimizer_time_s", "tokens_per_s_per_gpu")


def _literal(text: str) -> str:
    return "'" + str(text).replace("'", "''") + "'"


def source_sql(*, sweep: str | None = None, sql: str | None = None, models: list[str] | None = None,
               tokens: list[float] | None = None) -> str:
    """The relation charts read: one sweep of ``results``, or a user's query; optionally some targets."""
    if (sweep is None) == (sql is None):
        raise TsizeError("give a sweep name (--sweep) or a query (--sql)")
    base = f"({sql.strip().rstrip(';')})" if sql is not None else f"(SELECT * FROM results WHERE sweep = {_literal(sweep)})"
    where = []
    if models:
        where.append(f"model IN ({', '.join(map(_literal, models))})")
    if tokens:
        where.append(f"tokens IN ({', '.join(repr(float(t)) for t in tokens)})")
    return f"(SELECT * FROM {base} WHERE {' AND '.join(where)})" if where else base


#: How an option is chosen among the fitting layouts of a target, GPU type and count: cheapest, fastest, least
#: memory, fewest-way tensor and pipeline parallelism, lowest ZeRO stage, no interleaving, least recomputation;
#: then every other option column. Layouts equal in cost, time and memory are common (interleaving at pp = 1,
#: recomputation whose extra compute hides data-parallel traffic it would otherwise expose): without a total
#: order the option picked would depend on the order the store's rows are scanned in.
RANK = ("cost_usd", "train_time_s", "memory_required_bytes", "tp", "pp", "zero_stage", "interleave",
        f"list_position([{', '.join(repr(r) for r in RECOMPUTE)}], recompute)")


def options_sql(source: str, *, by: tuple[str, ...] = TARGET) -> str:
    """Per target (``by``), GPU type and count: the cheapest fitting layout (fastest where the cloud
    price is unknown), flagged when on its target's Pareto front of cloud cost vs time; and the
    combinations where nothing fits (``fits`` false, layout columns null)."""
    target = ", ".join(by)
    cols = ", ".join(dict.fromkeys(by + OPTION_COLUMNS))
    rank = ", ".join(dict.fromkeys(RANK + tuple(c for c in OPTION_COLUMNS if c not in by + ("gpu", "n_gpus"))))
    return f"""
WITH src AS (SELECT * FROM {source}),
best AS (
    SELECT {cols}, true AS fits FROM src WHERE fits
    QUALIFY row_number() OVER (PARTITION BY {target}, gpu, n_gpus ORDER BY {rank}) = 1
),
priced AS (  -- costs equal to the cent count as equal: a bigger fleet of one type costs the same GPU-hours
    SELECT *, min(train_time_s) OVER (PARTITION BY {target} ORDER BY round(cost_usd, 2), train_time_s
                                      ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS faster_before
    FROM best WHERE isfinite(cost_usd)
),
missing AS (
    SELECT {target}, gpu, n_gpus, min(gpu_memory_bytes) AS gpu_memory_bytes,
           min(memory_required_bytes) AS memory_required_bytes
    FROM src GROUP BY ALL HAVING NOT bool_or(fits)
)
SELECT * EXCLUDE (faster_before), coalesce(train_time_s < faster_before, true) AS pareto FROM priced
UNION ALL BY NAME
SELECT *, false AS pareto FROM best WHERE NOT isfinite(cost_usd)
UNION ALL BY NAME
SELECT *, false AS fits, false AS pareto FROM missing
ORDER BY {target}, gpu, n_gpus"""


def fleet_sql(source: str, *, deadline_s: float) -> str:
    """Per target and GPU type: the smallest fleet that fits and trains within the deadline, its
    cheapest layout, and why a GPU type has none."""
    cols = ", ".join(f"o.{c}" for c in OPTION_COLUMNS if c not in ("model", "tokens", "gpu"))
    return f"""
WITH opts AS ({options_sql(source)}),
gpus AS (SELECT DISTINCT model, tokens, gpu FROM opts),
meets AS (
    SELECT * FROM opts WHERE fits AND train_time_s <= {float(deadline_s)!r}
    QUALIFY row_number() OVER (PARTITION BY model, tokens, gpu ORDER BY n_gpus, cost_usd) = 1
),
reason AS (
    SELECT model, tokens, gpu, bool_or(fits) AS any_fit, max(n_gpus) AS largest FROM opts GROUP BY ALL
)
SELECT g.model, g.tokens, g.gpu, {cols},
       CASE WHEN o.n_gpus IS NOT NULL THEN 'meets deadline'
            WHEN r.any_fit THEN 'too slow with up to ' || r.largest || ' GPUs'
            ELSE 'does not fit on up to ' || r.largest || ' GPUs' END AS verdict
FROM gpus g
LEFT JOIN meets o USING (model, tokens, gpu)
JOIN reason r USING (model, tokens, gpu)
ORDER BY g.model, g.tokens, o.purchase_usd NULLS LAST, g.gpu"""


#: Columns of a serving option (``serving_sql``).
SERVING_COLUMNS = ("model", "context_len", "output_len", "gpu", "tp", "pp", "weight_dtype", "kv_dtype", "concurrency",
                   "ttft_s", "tpot_s", "output_tokens_per_s_per_gpu", "usd_per_million_output_tokens",
                   "serving_memory_per_gpu_bytes", "gpu_memory_bytes", "max_concurrency", "serving_fits")


def serving_sql(source: str) -> str:
    """Serving points (mode = serve) with a finite cost and latency, each flagged ``pareto`` when it fits and no
    fitting point of the same model and context length is at least as cheap per output token and faster (TPOT);
    points with exactly the same cost and TPOT do not dominate each other (``EXCLUDE GROUP``)."""
    cols = ", ".join(SERVING_COLUMNS)
    return f"""
WITH src AS (
    SELECT {cols} FROM {source}
    WHERE mode = 'serve' AND isfinite(tpot_s) AND isfinite(usd_per_million_output_tokens)
),
ranked AS (
    SELECT *, min(CASE WHEN serving_fits THEN tpot_s END) OVER (
        PARTITION BY model, context_len ORDER BY usd_per_million_output_tokens, tpot_s
        RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW EXCLUDE GROUP) AS faster_before
    FROM src
)
SELECT * EXCLUDE (faster_before), serving_fits AND (faster_before IS NULL OR tpot_s < faster_before) AS pareto
FROM ranked ORDER BY model, context_len, usd_per_million_output_tokens"""
