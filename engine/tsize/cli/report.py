"""Human-readable tables: ``tsize size`` (the seed notebook's sections), catalogs, validation checks.

Only presentation lives here: :func:`render` prints what ``tsize.api.report``
returned (the point, and that point across the catalog's GPUs, the batch
sizes asked for, attention kernels and dtypes) and computes no number; shares
and ratios are formatted by ``fmt``.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console  # noqa: F401  (type of the console argument)
from rich.table import Table

from tsize.cli import fmt

_PARAM_ROWS = (
    ("token embedding", "params_token_embedding"),
    ("position embedding", "params_position_embedding"),
    ("attention (all blocks)", "params_attention"),
    ("MLP (all blocks, all experts)", "params_mlp"),
    ("MoE routers", "params_router"),
    ("norms", "params_norm"),
    ("LM head", "params_lm_head"),
)


def _table(title: str, *columns: str, right: tuple[int, ...] = ()) -> Table:
    table = Table(title=title, title_justify="left", title_style="bold", header_style="bold")
    for i, column in enumerate(columns):
        table.add_column(column, justify="right" if i in right else "left")
    return table


def _finite(x) -> bool:
    return x is not None and x == x and x not in (float("inf"), float("-inf"))


def render(report: dict[str, Any], *, console: Console | None = None, causal: bool = False) -> None:
    """Print every section of an ``api.report`` result."""
    console = console or fmt.console()
    p, m, recipe, gpu = report["point"], report["model"], report["precision"], report["gpu"]
    T, B = p["seq_len"], p["batch_size"]

    console.print(f"[bold]{m['name']}[/]  family={m['family']}  L={m['n_layer']}  d={m['d_model']}  "
                  f"heads={m['n_head']}"
                  + (f"  MLA: q_lora={m['q_lora_rank']} kv_lora={m['kv_lora_rank']} qk_head={m['qk_nope_head_dim']}+"
                     f"{m['qk_rope_head_dim']} v_head={m['v_head_dim']}" if m["mla"] else
                     f"  kv_heads={m['n_kv_head']}  head_dim={m['head_dim']}")
                  + f"  d_ff={m['d_ff']}  V={m['vocab_size']}  n_ctx={m['n_ctx']}"
                  + (f"  experts={m['n_experts']} top_k={m['top_k']}" if m["n_experts"] > 1 else ""))
    if report["default_seq_len"]:
        console.print(f"T={T}: the default sequence length, min(n_ctx, {report['default_seq_len']}) "
                      f"(give --seq-len to change)")
    console.print(f"B={B} T={T} precision={recipe['id']} ({recipe['description']}); optimizer={p['optimizer']}; "
                  f"attention={p['attention']}; dropout={p['dropout']}; recompute={p['recompute']}; "
                  f"gpu={gpu['name']} x {p['n_gpus']}")
    for note in m["not_modelled"]:
        console.print(f"[yellow]not modelled:[/] {note}")
    if not p["heads_divide"]:
        console.print("[red]n_head does not divide d_model (or n_kv_head does not divide n_head): "
                      "no such model can be built[/]")
    if not p["seq_len_ok"]:
        console.print(f"[red]T={T} exceeds the model's {m['n_ctx']} learned positions: no such run; "
                      f"outputs describe a model with a longer position table[/]")

    # 1. parameters
    total = p["params_total"]
    table = _table("Parameters", "component", "params", "share", right=(1, 2))
    for label, key in _PARAM_ROWS:
        table.add_row(label, fmt.count(p[key]), fmt.share(p[key], total, 4))
    table.add_row("[bold]total[/] (PyTorch count, tied once)", f"[bold]{fmt.count(total)}[/]", "100.0000 %")
    table.add_row("non-embedding", fmt.count(p["params_non_embedding"]), fmt.share(p["params_non_embedding"], total))
    table.add_row("active per token", fmt.count(p["params_active"]), fmt.share(p["params_active"], total))
    table.add_row("one block", fmt.count(p["params_layer"]), fmt.share(p["params_layer"], total, 4))
    if m["published_params"]:
        table.add_row("published", fmt.count(m["published_params"]), fmt.share(m["published_params"], total))
    console.print(table)

    # 2. checkpoint
    console.print(f"[bold]Checkpoint[/] (nanoGPT torch.save: weights at {recipe['param_bits']:g} bits + "
                  f"{p['optimizer']} state + records): {fmt.both(p['checkpoint_bytes'])} "
                  f"= {fmt.count(p['checkpoint_bytes'])} bytes")

    # 3 and 6. per GPU: share of memory, fit, time, cost
    by_gpu = sorted(report["by_gpu"], key=lambda r: -r["gpu_memory_bytes"])
    table = _table(f"Memory share per GPU (weights {fmt.gib(p['weights_bytes'])} + optimizer "
                   f"{fmt.gib(p['optimizer_bytes'])} on one device; B={B}, T={T}, {recipe['id']})",
                   "GPU", "memory", "weights+opt", "required", "fits", "max B", "min GPUs", right=(1, 2, 3, 5, 6))
    for r in by_gpu:
        supported = _finite(r["peak_flops_per_s"])
        table.add_row(
            r["gpu"], fmt.gib(r["gpu_memory_bytes"], 1), fmt.pct(r["states_share"], 1),
            fmt.pct(r["memory_share"], 1), "yes" if r["fits"] else "[red]no[/]",
            fmt.count(r["max_micro_batch"]) if supported else "-",
            fmt.count(r["min_gpus"]) if _finite(r["min_gpus"]) else ("never" if supported else "-"),
        )
    console.print(table)
    console.print(f"  memory: nvidia-smi total where sourced, else the label; required = peak x "
                  f"(1 + {p['allocator_slack']:g} slack) + {fmt.gib(p['overhead_bytes'])} CUDA context and workspaces;"
                  f" max B = largest micro-batch that fits; min GPUs = fewest with tp={p['tp']}, pp={p['pp']}, "
                  f"ZeRO-{p['zero_stage']}; '-': {recipe['peak']} unsupported")

    measured = any(_finite(r["mfu"]) for r in by_gpu)
    at = f"at MFU {p['assumed_mfu']:.0%}" if _finite(p["assumed_mfu"]) else "at the predicted step time"
    table = _table(f"Time to train {p['tokens']:.4g} tokens on {p['n_gpus']} GPUs {at} "
                   f"({recipe['peak']} dense peak)", "GPU", "peak", *(["MFU measured"] if measured else []), "days",
                   "GPU-hours", "cloud", "purchase", "energy", right=tuple(range(1, 9)))
    for r in by_gpu:
        table.add_row(r["gpu"], fmt.tflops(r["peak_flops_per_s"]), *([fmt.pct(r["mfu"], 1)] if measured else []),
                      fmt.days(r["train_time_s"]), fmt.hours(r["gpu_time_s"]), fmt.usd(r["cost_usd"]),
                      fmt.usd(r["purchase_usd"]), fmt.mwh(r["energy_j"]))
    console.print(table)
    console.print("  '-': dtype unsupported by the GPU, or price unknown; cloud = GPU-hours x on-demand price; "
                  "purchase = GPUs only; energy = TDP x GPUs x time x PUE")

    # 4. memory on one device, by batch size
    table = _table(f"Memory on one {gpu['name']} ({fmt.gib(gpu['device_memory_bytes'])}), T={T}, {recipe['id']}, "
                   f"{p['attention']} attention", "B", "weights", "autocast copies", "gradients", "optimizer",
                   "activations", "total (all resident)", "peak (estimated)", "fits", right=tuple(range(0, 8)))
    for r in report["by_batch"]:
        table.add_row(str(r["batch_size"]), *(fmt.gib(r[k]) for k in (
            "weights_bytes", "weight_copies_bytes", "gradients_bytes", "optimizer_bytes", "activation_bytes",
            "memory_total_bytes", "memory_peak_bytes")), "yes" if r["fits"] else "no")
    console.print(table)
    console.print(f"  activations = bytes saved for backward incl. logits/loss ({fmt.gib(p['activation_layer_bytes'])}"
                  f" per block at B={B}); peak = weights + optimizer + max(copies + activations + first gradient, "
                  f"gradients) (grad_accum=1) - what torch.cuda.max_memory_allocated reports")

    # activations: attention kind x dtype
    kernel = report["by_kernel"]
    table = _table(f"Activations, B={B} T={T} (dropout {p['dropout']})", "attention",
                   *(f"{d} ({r})" for d, r in kernel["recipes"].items()), right=(1, 2, 3))
    for kind in kernel["kernels"]:
        table.add_row(kind, *(fmt.gib(v) for v in kernel["activation_bytes"][kind].values()))
    console.print(table)

    # 5. FLOPs
    suffix = "_causal" if causal else ""
    table = _table(f"FLOPs per iteration (B={B}, T={T}; matmuls only; attention "
                   f"{'causal (halved)' if causal else 'non-causal, full T x T'})", "component", "forward",
                   "share", right=(1, 2))
    forward = p[f"flops_forward{suffix}"]
    for label, key in (("Q/K/V projections", "flops_qkv"), ("attention scores", f"flops_attention_scores{suffix}"),
                       ("attention over values", f"flops_attention_values{suffix}"),
                       ("attention output", "flops_attention_out"), ("MLP", "flops_mlp"),
                       ("MoE router", "flops_router"), ("LM head", "flops_lm_head")):
        table.add_row(label, fmt.flop(p[key]), fmt.share(p[key], forward))
    table.add_row("[bold]forward[/]", fmt.flop(forward), "100.00 %")
    table.add_row("backward (2 x forward)", fmt.flop(p[f"flops_backward{suffix}"]), "")
    table.add_row("[bold]forward + backward[/]", fmt.flop(p[f"flops_iteration{suffix}"]), "")
    table.add_row("PaLM 6N + 12LHQT (non-causal)", fmt.flop(p["flops_palm_iteration"]),
                  f"ratio {fmt.ratio_of(p['flops_palm_iteration'], p['flops_iteration'])}")
    console.print(table)

    # 7. MFU
    if _finite(p["mfu"]):
        console.print(f"[bold]MFU[/] on {gpu['name']}: {fmt.pct(p['mfu'], 1)} "
                      f"({p['grad_accum']} x B={B} sequences of {T} tokens in {p['iter_time_s']} s; "
                      f"dense {recipe['peak']} peak {fmt.tflops(p['peak_flops_per_s'])}); "
                      f"other GPUs in the table above")

    # 8. training compute
    console.print(f"[bold]Training compute[/] for {p['tokens']:.4g} tokens: 6ND = {fmt.flop(p['train_flops'])} "
                  f"(convention, attention not counted); executed at T={T} with recompute={p['recompute']}, "
                  f"attention included: {fmt.flop(p['train_executed_flops'])}; "
                  f"8ND (full recomputation) = {fmt.flop(p['train_flops_full_recompute'])}")
    if _finite(p["step_time_s"]):
        console.print(step_breakdown_table(p))
    assumed = (f"at MFU {p['assumed_mfu']:.0%} without recomputation" if _finite(p["assumed_mfu"])
               else "at the predicted step time")
    console.print(f"On {p['n_gpus']} x {gpu['name']} {assumed} "
                  f"(this run: MFU {fmt.pct(p['train_mfu'], 1)}, HFU {fmt.pct(p['train_hfu'], 1)}): "
                  f"{fmt.days(p['train_time_s'])}, "
                  f"{fmt.hours(p['gpu_time_s'])} GPU-hours, cloud {fmt.usd(p['cost_usd'])}, "
                  f"purchase {fmt.usd(p['purchase_usd'])}, energy {fmt.mwh(p['energy_j'])} "
                  f"({fmt.usd(p['energy_usd'])} at ${p['usd_per_kwh']}/kWh, PUE {p['pue']})")


def catalog_table(rows: list[dict[str, Any]], *, title: str) -> Table:
    """A catalog's rows (``api.catalog_rows``) as a table; sources and descriptions left to ``--json``."""
    table = Table(title=title, title_justify="left")
    columns = [c for c in rows[0] if c not in ("source", "description")]
    for c in columns:
        table.add_column(c)
    for r in rows:
        cells = []
        for c in columns:
            v = r.get(c)
            if v is None:
                cells.append("-")
            elif c.endswith("_bytes"):
                cells.append(fmt.gib(v, 1))
            elif c.endswith("_flops_per_s"):
                cells.append(fmt.tflops(v))
            elif isinstance(v, int) and not isinstance(v, bool) and v > 9999:
                cells.append(fmt.count(v))
            else:
                cells.append(str(v))
        table.add_row(*cells)
    return table


def checks_table(checks: list, failed: list, *, tolerance: float) -> Table:
    """Estimate vs measured (``api.validate``), the checks in ``failed`` in red."""
    table = Table(title=f"estimate vs measured (tolerance {tolerance:.1%})", title_justify="left")
    for column in ("model", "quantity", "setting", "estimate", "measured", "error"):
        table.add_column(column, justify="right" if column in ("estimate", "measured", "error") else "left")
    for c in checks:
        style = "red" if c in failed else ""
        table.add_row(c.model, c.quantity, c.setting, f"{c.estimate:,.0f}", f"{c.measured:,.0f}",
                      f"[{style}]{c.error:+.2%}[/]" if style else f"{c.error:+.2%}")
    return table


_SERVING_ROWS = (
    ("weights per GPU", "serving_weights_per_gpu_bytes", fmt.gib),
    ("KV cache per token (per GPU, KiB)", "kv_cache_bytes_per_token", lambda v: f"{v / 1024:,.1f}"),
    ("KV cache per request (per GPU)", "kv_cache_bytes_per_sequence", fmt.gib),
    ("prefill workspace", "serving_workspace_bytes", fmt.gib),
    ("KV cache budget", "kv_cache_budget_bytes", fmt.gib),
    ("KV cache capacity (tokens)", "kv_cache_tokens", fmt.count),
    ("max concurrent requests", "max_concurrency", fmt.count),
    ("memory per GPU at this concurrency", "serving_memory_per_gpu_bytes", fmt.gib),
    ("time to first token (ms)", "ttft_s", lambda v: f"{v * 1e3:,.1f}"),
    ("time per output token (ms)", "tpot_s", lambda v: f"{v * 1e3:,.2f}"),
    ("output tokens/s per replica", "output_tokens_per_s_per_replica", lambda v: f"{v:,.0f}"),
    ("output tokens/s per GPU", "output_tokens_per_s_per_gpu", lambda v: f"{v:,.0f}"),
    ("USD per million input tokens", "usd_per_million_input_tokens", lambda v: f"${v:,.4f}"),
    ("USD per million output tokens", "usd_per_million_output_tokens", lambda v: f"${v:,.4f}"),
)


def render_serving(row: dict[str, Any], *, console: Console | None = None) -> None:
    """Print one serving point (``mode = serve``): memory, capacity, latency, throughput, cost."""
    console = console or fmt.console()
    console.print(f"[bold]{row['model']}[/] on {row['gpu']}, tp={row['tp']} pp={row['pp']}, weights "
                  f"{row['weight_dtype']}, KV {row['kv_dtype']}; {row['concurrency']} requests of "
                  f"{row['context_len']} + {row['output_len']} tokens")
    table = _table("Serving", "quantity", "value", right=(1,))
    for label, key, show in _SERVING_ROWS:
        value = row[key]
        table.add_row(label, "-" if fmt._bad(value) else show(value))
    table.add_row("decode bound by", "memory" if row["decode_memory_bound"] else "compute")
    table.add_row("fits", "yes" if row["serving_fits"] else "[red]no[/]")
    console.print(table)


#: The parts of ``step_time_s``, in the order the breakdown shows them (they sum to the step).
STEP_PARTS = (("compute", "compute_time_s"), ("tensor-parallel comm", "tp_comm_time_s"),
              ("pipeline sends", "pp_comm_time_s"), ("pipeline bubble", "pp_bubble_time_s"),
              ("data-parallel comm (exposed)", "dp_comm_exposed_time_s"), ("optimizer", "optimizer_time_s"))


def step_breakdown_table(row: dict[str, Any]) -> Table:
    """Where the predicted step time goes, from an api point (``row``): seconds and share of each part."""
    table = Table(title="predicted step time", title_justify="left")
    table.add_column("part")
    table.add_column("time", justify="right")
    table.add_column("share", justify="right")
    step = row["step_time_s"]
    for label, key in STEP_PARTS:
        table.add_row(label, f"{row[key]:.4g} s", fmt.share(row[key], step, 1))
    table.add_row("step", f"{step:.4g} s", fmt.share(step, step, 1))
    table.add_row("MFU / HFU", f"{row['predicted_mfu']:.1%} / {row['predicted_hfu']:.1%}", "")
    table.add_row("tokens/s per GPU", f"{row['tokens_per_s_per_gpu']:,.0f}", "")
    return table
