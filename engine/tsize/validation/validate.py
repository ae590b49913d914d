"""``tsize validate``: measure the real PyTorch model and show the error of every estimate.

For one model (or the whole catalog) this builds the reference PyTorch
model (``tsize.validation.measure``) and compares:

* the parameter count (meta device, any size);
* forward and backward FLOPs of one micro-batch (``FlopCounterMode``);
* bytes saved for backward, naive and SDPA attention, fp32 and bf16;
* the size of a real nanoGPT-style checkpoint (small models only).

Dense models are measured at full size on fake tensors. Mixtures of experts
route tokens data-dependently, which fake tensors cannot follow, so they run
on real CPU tensors (zero weights that take one slice of memory,
``measure._zero_weights``): on a slice of the model (same widths) of one MoE block,
plus one dense block when the model starts with dense blocks and one
full-attention block when only some blocks have a sliding window, with the
estimate computed for the same slice. SDPA's fused kernel is not measured
where the CPU cannot run it (``measure.fused_kernel_unmeasurable``).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from tsize import catalog
from tsize.point import size
from tsize.catalog import resolve
from tsize.model import ModelConfig

#: Pure-dtype recipes matching ``model.to(dtype)``, as measured.
RECIPES = {"float32": "fp32", "bfloat16": "bf16"}
CPU_MASK_BYTES = {"float32": 4.0, "bfloat16": 2.0}
#: Largest model whose checkpoint is written for real (bytes in memory: about 16 per parameter).
CHECKPOINT_MAX_PARAMS = 150_000_000
#: Largest slice of a mixture of experts measured on real CPU tensors. Its weights take no memory
#: (``measure._zero_weights``); what remains is the build's untouched allocations (virtual, 4 bytes a
#: parameter) and one weight copied at a time: a 2.9B-parameter Mixtral-8x22B block peaks at 3.7 GB resident.
#: DeepSeek-V3's 13.9B-parameter slice (one expert tensor alone 30 GB virtual in fp32) stays parameters only.
MOE_SLICE_MAX_PARAMS = 4_000_000_000


@dataclasses.dataclass
class Check:
    model: str
    quantity: str
    setting: str
    estimate: float
    measured: float

    @property
    def error(self) -> float:
        """Relative error of the estimate [1]: ``estimate / measured - 1``."""
        if self.measured == 0:
            return 0.0 if self.estimate == 0 else math.inf
        return self.estimate / self.measured - 1

    def as_dict(self) -> dict[str, Any]:
        return {"model": self.model, "quantity": self.quantity, "setting": self.setting,
                "estimate": self.estimate, "measured": self.measured, "error": self.error}


def _slice(m: ModelConfig) -> tuple[ModelConfig, str]:
    """What is measured: the model, or for MoE a one-block slice of it."""
    if m.n_experts > 1 or m.mla:
        # one MoE block, plus one dense block and one full-attention block where the model has them
        mixed_window = 0 < m.n_sliding_layers < m.n_layer
        n = 1 + (m.first_dense_layers > 0 or mixed_window)
        sliding = (1 if mixed_window else n) if m.n_sliding_layers else 0
        target = dataclasses.replace(m, n_layer=n, first_dense_layers=min(m.first_dense_layers, 1),
                                     n_sliding_layers=sliding, name=f"{m.name} ({n}-block slice)")
        return target, f"{n} block{'s' if n > 1 else ''}, real CPU tensors"
    return m, "full model, fake tensors"


def run(model: str | ModelConfig, *, batch_size: int = 1, seq_len: int | None = None,
        checkpoint: bool | None = None) -> list[Check]:
    """Every check for one model."""
    from tsize.validation import measure

    measure.require()
    m = resolve(model)
    checks = [Check(m.name, "params_total", "meta device", size(m)["params_total"], measure.param_count(m))]
    target, where = _slice(m)
    if target is not m and size(target)["params_total"] > MOE_SLICE_MAX_PARAMS:
        return checks  # too large to run on real CPU tensors here
    T = seq_len or min(target.n_ctx, 64 if target is not m else 1024)
    flops = measure.flops(target, batch_size=batch_size, seq_len=T)
    estimate = size(target, batch_size=batch_size, seq_len=T)
    setting = f"B={batch_size} T={T}, {where}"
    checks.append(Check(m.name, "flops_forward", setting, estimate["flops_forward"], flops["forward"]))
    checks.append(Check(m.name, "flops_backward", setting, estimate["flops_backward"], flops["backward"]))
    kernels = ("naive",) if measure.fused_kernel_unmeasurable(m) else ("naive", "flash")
    for attention in kernels:
        for dtype, recipe in RECIPES.items():
            measured = measure.saved_bytes(target, batch_size=batch_size, seq_len=T, dtype=dtype, attention=attention)
            est = size(target, batch_size=batch_size, seq_len=T, precision=recipe, attention=attention,
                       dropout_mask_bytes=CPU_MASK_BYTES[dtype])["activation_bytes"]
            checks.append(Check(m.name, "activation_bytes", f"{attention} {dtype}, {setting}", est, measured))
    small = checks[0].measured <= CHECKPOINT_MAX_PARAMS
    if checkpoint if checkpoint is not None else small:
        real = measure.checkpoint_bytes(m)
        est = size(m, precision="fp32", optimizer="adamw")["checkpoint_bytes"]
        checks.append(Check(m.name, "checkpoint_bytes", "fp32 + AdamW after one step, real torch.save", est, real))
    return checks


def run_all(**options) -> list[Check]:
    """Every check of every catalog model, each model in a fresh process.

    transformers' models hold reference cycles and PyTorch's CPU allocator
    keeps freed memory: a fresh process per model returns all of it, so the
    peak is the largest model's, not the sum.
    """
    import functools
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    names = list(catalog.models())
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                             max_tasks_per_child=1) as pool:
        return [check for checks in pool.map(functools.partial(run, **options), names) for check in checks]


def markdown(checks: list[Check]) -> str:
    """The accuracy report as a Markdown table."""
    lines = ["| model | quantity | setting | estimate | measured | error |", "|---|---|---|---:|---:|---:|"]
    for c in checks:
        lines.append(f"| {c.model} | {c.quantity} | {c.setting} | {c.estimate:,.0f} | {c.measured:,.0f} | "
                     f"{c.error:+.2%} |")
    return "\n".join(lines)


def summary_markdown(checks: list[Check]) -> str:
    """One row per model: the parameter count and the largest error of each kind of estimate."""
    models = list(dict.fromkeys(c.model for c in checks))
    lines = ["| model | parameters (tsize = PyTorch) | FLOPs fwd/bwd | activations, worst of naive/flash x fp32/bf16 |"
             " checkpoint | measured on |", "|---|---:|---:|---:|---:|---|"]

    def worst(model: str, quantity: str) -> str:
        errors = [c.error for c in checks if c.model == model and c.quantity.startswith(quantity)]
        return f"{max(errors, key=abs):+.2%}" if errors else "-"

    for model in models:
        params = next(c for c in checks if c.model == model and c.quantity == "params_total")
        equal = "equal" if params.estimate == params.measured else f"{params.error:+.4%}"
        where = next((c.setting.split(", ", 1)[-1] for c in checks if c.model == model and c.quantity == "flops_forward"),
                     "parameters only (slice too large for CPU tensors)")
        setting = next((c.setting.split(",")[0] for c in checks if c.model == model and c.quantity == "flops_forward"),
                       "")
        lines.append(f"| {model} | {params.measured:,.0f} ({equal}) | {worst(model, 'flops')} | "
                     f"{worst(model, 'activation')} | {worst(model, 'checkpoint')} | {setting} {where} |")
    return "\n".join(lines)
