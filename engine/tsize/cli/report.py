"""``tsize size``: the seed notebook's sections as readable tables.

Only presentation lives here; every number comes from one evaluation of a
small grid (the point asked for, and that point across all catalog GPUs,
attention kinds and dtypes).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from rich.console import Console  # noqa: F401  (type of the console argument)
from rich.table import Table

from tsize import catalog
from tsize.api import axes_for, point
from tsize.cli import fmt
from tsize.grid import Grid
from tsize.registry import INPUT_NAMES

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


def _flat(out: dict[str, np.ndarray], name: str, shape: tuple[int, ...]) -> np.ndarray:
    return np.broadcast_to(out[name], shape).reshape(-1)


def render(model, *, console: Console | None = None, dtype: str | None = None, causal: bool = False,
           **inputs: Any) -> None:
    """Print every section for one configuration."""
    console = console or fmt.console()
    axes = axes_for(model, dtype=dtype, **inputs)
    batches = axes.pop("batch_size", [1])
    grid = Grid(axes | {"batch_size": batches[:1]})
    p = point(grid)
    m = axes["model"][0]
    recipe = catalog.lookup("precision", p["precision"])
    gpu = catalog.lookup("gpu", p["gpu"])
    T, B = p["seq_len"], p["batch_size"]

    console.print(f"[bold]{m.name}[/]  family={m.family}  L={m.n_layer}  d={m.d_model}  heads={m.n_head}"
                  + (f"  MLA: q_lora={m.q_lora_rank} kv_lora={m.kv_lora_rank} qk_head={m.qk_nope_head_dim}+"
                     f"{m.qk_rope_head_dim} v_head={m.v_head_dim}" if m.mla else
                     f"  kv_heads={m.kv_heads}  head_dim={m.head_size}")
                  + f"  d_ff={m.d_ff}  V={m.vocab_size}"
                  f"  n_ctx={m.n_ctx}" + (f"  experts={m.n_experts} top_k={m.top_k}" if m.n_experts > 1 else ""))
    console.print(f"B={B} T={T} precision={recipe.id} ({recipe.description}); optimizer={p['optimizer']}; "
                  f"attention={p['attention']}; dropout={p['dropout']}; recompute={p['recompute']}; "
                  f"gpu={gpu.name} x {p['n_gpus']}")
    for note in m.not_modelled():
        console.print(f"[yellow]not modelled:[/] {note}")
    if not p["heads_divide"]:
        console.print("[red]n_head does not divide d_model (or n_kv_head does not divide n_head): "
                      "no such model can be built[/]")
    if not p["seq_len_ok"]:
        console.print(f"[red]T={T} exceeds the model's {m.n_ctx} learned positions: no such run; "
                      f"outputs describe a model with a longer position table[/]")

    # 1. parameters
    total = p["params_total"]
    table = _table("Parameters", "component", "params", "share", right=(1, 2))
    for label, key in _PARAM_ROWS:
        table.add_row(label, fmt.count(p[key]), fmt.pct(p[key] / total, 4))
    table.add_row("[bold]total[/] (PyTorch count, tied once)", f"[bold]{fmt.count(total)}[/]", "100.0000 %")
    table.add_row("non-embedding", fmt.count(p["params_non_embedding"]), fmt.pct(p["params_non_embedding"] / total))
    table.add_row("active per token", fmt.count(p["params_active"]), fmt.pct(p["params_active"] / total))
    table.add_row("one block", fmt.count(p["params_layer"]), fmt.pct(p["params_layer"] / total, 4))
    if m.published_params:
        table.add_row("published", fmt.count(m.published_params), fmt.pct(m.published_params / total))
    console.print(table)

    # 2. checkpoint
    console.print(f"[bold]Checkpoint[/] (nanoGPT torch.save: weights at {recipe.param_bits:g} bits + "
                  f"{p['optimizer']} state + records): {fmt.both(p['checkpoint_bytes'])} "
                  f"= {fmt.count(p['checkpoint_bytes'])} bytes")

    # 3 and 6. per GPU: share of memory, fit, time, cost
    gpu_ids = list(catalog.gpus())
    ggrid = Grid(axes | {"batch_size": batches[:1], "gpu": gpu_ids})
    gout = ggrid.evaluate()
    shape = ggrid.shape
    col = {k: _flat(gout, k, shape) for k in ("gpu_memory_bytes", "states_share", "memory_share", "fits",
                                              "peak_flops_per_s", "train_time_s", "cost_usd", "purchase_usd",
                                              "energy_j", "mfu", "max_micro_batch", "min_gpus")}
    order = np.argsort(-col["gpu_memory_bytes"], kind="stable")
    table = _table(f"Memory share per GPU (one device; weights + optimizer = "
                   f"{fmt.gib(p['weights_bytes'] + p['optimizer_bytes'])}; B={B}, T={T}, {recipe.id})",
                   "GPU", "memory", "weights+opt", "required", "fits", "max B", "min GPUs", right=(1, 2, 3, 5, 6))
    for i in order:
        supported = np.isfinite(col["peak_flops_per_s"][i])
        table.add_row(
            gpu_ids[i], fmt.gib(col["gpu_memory_bytes"][i], 1), fmt.pct(col["states_share"][i], 1),
            fmt.pct(col["memory_share"][i], 1), "yes" if col["fits"][i] else "[red]no[/]",
            fmt.count(col["max_micro_batch"][i]) if supported else "-",
            fmt.count(col["min_gpus"][i]) if np.isfinite(col["min_gpus"][i]) else ("never" if supported else "-"),
        )
    console.print(table)
    console.print(f"  memory: nvidia-smi total where sourced, else the label; required = peak x "
                  f"(1 + {p['allocator_slack']:g} slack) + {fmt.gib(p['overhead_bytes'])} CUDA context and workspaces;"
                  f" max B = largest micro-batch that fits; min GPUs = fewest with tp={p['tp']}, pp={p['pp']}, "
                  f"ZeRO-{p['zero_stage']}; '-': {recipe.peak} unsupported")

    measured = np.isfinite(col["mfu"]).any()
    table = _table(f"Time to train {p['tokens']:.4g} tokens on {p['n_gpus']} GPUs at MFU {p['assumed_mfu']:.0%} "
                   f"({recipe.peak} dense peak)", "GPU", "peak", *(["MFU measured"] if measured else []), "days",
                   "GPU-hours", "cloud", "purchase", "energy", right=tuple(range(1, 9)))
    for i in order:
        table.add_row(gpu_ids[i], fmt.tflops(col["peak_flops_per_s"][i]),
                      *([fmt.pct(col["mfu"][i], 1)] if measured else []), fmt.days(col["train_time_s"][i]),
                      fmt.hours(col["train_time_s"][i] * p["n_gpus"]), fmt.usd(col["cost_usd"][i]),
                      fmt.usd(col["purchase_usd"][i]), fmt.mwh(col["energy_j"][i]))
    console.print(table)
    console.print("  '-': dtype unsupported by the GPU, or price unknown; cloud = GPU-hours x on-demand price; "
                  "purchase = GPUs only; energy = TDP x GPUs x time x PUE")

    # 4. memory on one device, by batch size
    bgrid = Grid(axes | {"batch_size": batches})
    bout = bgrid.evaluate()
    bshape = bgrid.shape
    table = _table(f"Memory on one {gpu.name} ({fmt.gib(gpu.device_memory_bytes)}), T={T}, {recipe.id}, "
                   f"{p['attention']} attention", "B", "weights", "autocast copies", "gradients", "optimizer",
                   "activations", "total (all resident)", "peak (estimated)", "fits", right=tuple(range(0, 8)))
    cols = {k: _flat(bout, k, bshape) for k in ("weights_bytes", "weight_copies_bytes", "gradients_bytes",
                                                "optimizer_bytes", "activation_bytes", "memory_total_bytes",
                                                "memory_peak_bytes", "fits")}
    for i, b in enumerate(batches):
        table.add_row(str(b), *(fmt.gib(cols[k][i]) for k in list(cols)[:-1]), "yes" if cols["fits"][i] else "no")
    console.print(table)
    console.print(f"  activations = bytes saved for backward incl. logits/loss ({fmt.gib(p['activation_layer_bytes'])}"
                  f" per block at B={B}); peak = weights + optimizer + max(copies + activations + first gradient, "
                  f"gradients) (grad_accum=1) - what torch.cuda.max_memory_allocated reports")

    # activations: attention kind x dtype
    dtypes = list(catalog.DTYPES)
    agrid = Grid(axes | {"batch_size": batches[:1], "attention": ["naive", "flash"],
                         "precision": [catalog.precision_for_dtype(d) for d in dtypes]})
    aout = agrid.evaluate()
    act = np.broadcast_to(aout["activation_bytes"], agrid.shape)
    ai, pi = INPUT_NAMES.index("attention"), INPUT_NAMES.index("precision")
    table = _table(f"Activations, B={B} T={T} (dropout {p['dropout']})", "attention",
                   *(f"{d} ({catalog.precision_for_dtype(d)})" for d in dtypes), right=(1, 2, 3))
    for a, kind in enumerate(["naive", "flash"]):
        idx = [0] * len(agrid.shape)
        idx[ai] = a
        cells = []
        for j in range(len(dtypes)):
            idx[pi] = j
            cells.append(fmt.gib(act[tuple(idx)]))
        table.add_row(kind, *cells)
    console.print(table)

    # 5. FLOPs
    fwd = p["flops_forward"]
    table = _table(f"FLOPs per iteration (B={B}, T={T}; matmuls only; attention "
                   f"{'causal (halved)' if causal else 'non-causal, full T x T'})", "component", "forward",
                   "share", right=(1, 2))
    half = 0.5 if causal else 1.0
    rows = [("Q/K/V projections", p["flops_qkv"]), ("attention scores", half * p["flops_attention_scores"]),
            ("attention over values", half * p["flops_attention_values"]),
            ("attention output", p["flops_attention_out"]), ("MLP", p["flops_mlp"]), ("MoE router", p["flops_router"]),
            ("LM head", p["flops_lm_head"])]
    fwd_shown = sum(v for _, v in rows)
    for label, value in rows:
        table.add_row(label, fmt.flop(value), fmt.pct(value / fwd_shown))
    iteration = p["flops_iteration_causal"] if causal else p["flops_iteration"]
    table.add_row("[bold]forward[/]", fmt.flop(fwd_shown), "100.00 %")
    table.add_row("backward (2 x forward)", fmt.flop(2 * fwd_shown), "")
    table.add_row("[bold]forward + backward[/]", fmt.flop(iteration), "")
    table.add_row("PaLM 6N + 12LHQT (non-causal)", fmt.flop(p["flops_palm_iteration"]),
                  f"ratio {fmt.ratio(p['flops_palm_iteration'] / p['flops_iteration'])}")
    console.print(table)
    del fwd

    # 7. MFU
    if np.isfinite(p["mfu"]):
        console.print(f"[bold]MFU[/] on {gpu.name}: {fmt.pct(p['mfu'], 1)} "
                      f"({p['grad_accum']} x B={B} sequences of {T} tokens in {p['iter_time_s']} s; "
                      f"dense {recipe.peak} peak {fmt.tflops(p['peak_flops_per_s'])}); other GPUs in the table above")

    # 8. training compute
    console.print(f"[bold]Training compute[/] for {p['tokens']:.4g} tokens: 6ND = {fmt.flop(p['train_flops'])}; "
                  f"executed with recompute={p['recompute']}: {fmt.flop(p['train_hardware_flops'])}; "
                  f"8ND (full recomputation) = {fmt.flop(p['train_flops'] * 8 / 6)}")
    console.print(f"On {p['n_gpus']} x {gpu.name} at MFU {p['assumed_mfu']:.0%} without recomputation (this run: MFU "
                  f"{fmt.pct(p['train_mfu'], 1)}, HFU {fmt.pct(p['train_hfu'], 1)}): {fmt.days(p['train_time_s'])}, "
                  f"{fmt.hours(p['gpu_time_s'])} GPU-hours, cloud {fmt.usd(p['cost_usd'])}, "
                  f"purchase {fmt.usd(p['purchase_usd'])}, energy {fmt.mwh(p['energy_j'])} "
                  f"({fmt.usd(p['energy_usd'])} at ${p['usd_per_kwh']}/kWh, PUE {p['pue']})")
