"""Serving latency against published measurements (``tsize validate --serving``, the README's table).

Each case is a published measurement with its exact model, GPU, tensor
parallelism, batch, prompt and output lengths and precision, and the tsize
estimate for it from the same code ``tsize size --mode serve`` runs. No case
chose a constant's value: the GEMM size curve was chosen on Korthikanti et
al.'s training runs, the rates are the systems catalog's measured ceilings,
the collective latency (10 us) and NCCL's LL protocol come from nccl-tests
and NCCL's source, the per-kernel floor (2.7 us) from reframe's A100
kernel-latency reference, the element-wise kernel count from
FasterTransformer's source and the HBM efficiency by size from Calculon's
A100 table. Two of those were added after looking at these residuals (the
floor with the element-wise kernels, then Calculon's size table), so the
choice to model them, though not their values, was made with the
FasterTransformer and NeMo sets in view; the gpt-fast set was added after
both and is out-of-sample in every sense.

The table also gives each case's residual per forward pass,
``(measured - estimate) / passes`` (1 for a TTFT or TPOT, ``1 + output_len``
for a request's latency): what the measurement spent beyond the model. It
is reported, never added.

Sets:

* ``fastertransformer``: kipply, "Transformer Inference Arithmetic"
  (kipp.ly, 2022), FasterTransformer on A100-SXM4-40GB, a 13B GPT (40 layers,
  d 5120, 40 heads, d_ff 20480, vocabulary 50272; cli99/llm-analysis
  ``model_configs/test-13b.json``), fp16, batch 1, 512 prompt tokens,
  10 generated; prefill and per-token decode latency at tp 1 and 2 (the
  figures as tabulated in cli99/llm-analysis ``examples/fastertransformer``).
* ``nemo-llama-2-7b``: NVIDIA NeMo Framework user guide, "Llama-2 Results,
  Inference Performance" (docs.nvidia.com/nemo-framework/user-guide/latest/
  performance/llama.html), TensorRT-LLM, 128 prompt tokens, 20 generated,
  batch 1-8, tp 1-8, A100 80GB SXM4 and H100 80GB HBM3; "Average Latency"
  per request, compared with ``ttft + 20 * tpot``. The page does not state
  the precision (16-bit assumed), whether the latency is the engine's or a
  request's through the serving stack, or whether batches are static or in
  flight. Its Llama-2-13B rows are left out: at tp 1 on A100 they are faster
  than reading 26 GB of weights 20 times at the A100's peak bandwidth allows
  (142.5 ms vs >= 255 ms), so they cannot be 16-bit measurements of that
  configuration (reported on 2024-02-08 as NVIDIA/NeMo issue #8370, now
  NVIDIA-NeMo/Speech#8370, closed as stale without a correction).
* ``gpt-fast``: pytorch-labs/gpt-fast README (Benchmarks, Tensor
  Parallelism), Llama-2-7B and 70B in bf16, batch 1, a 5-token prompt and 200
  generated tokens (``generate.py`` default), ``torch.compile`` with CUDA
  graphs (``mode="reduce-overhead"``), 8 x A100-80GB power-limited to 330 W in
  a hybrid cube mesh (no NVSwitch); tokens/s = 200 / (ttft + 199 * tpot).
  The authors note the power-limited GPU reaches about 1,700 GB/s, 83 % of
  the 2,039 GB/s peak; tsize's A100 entry (0.9 of peak for large transfers)
  does not know the power limit.
"""

from __future__ import annotations

import dataclasses
import statistics

from tsize.model import ModelConfig, from_mapping

FT_13B = dict(name="ft-13b", family="gpt2", n_layer=40, d_model=5120, n_head=40, d_ff=20480, vocab_size=50272,
              n_ctx=2048)
FT_SOURCE = ("kipply, Transformer Inference Arithmetic (kipp.ly 2022), via cli99/llm-analysis "
             "examples/fastertransformer/README.md@b60b392")
GPT_FAST_SOURCE = "pytorch-labs/gpt-fast README.md@0f925b5 (Benchmarks, Tensor Parallelism)"
NEMO_SOURCE = ("docs.nvidia.com/nemo-framework/user-guide/latest/performance/llama.html "
               "(Llama-2 inference, 128 in/20 out)")


@dataclasses.dataclass(frozen=True)
class Case:
    set: str
    model: str | dict
    gpu: str
    tp: int
    batch: int
    context_len: int
    output_len: int
    quantity: str  # "ttft_s" | "tpot_s" | "latency_s" (ttft + output_len * tpot)
    measured_s: float
    source: str

    @property
    def setting(self) -> str:
        return f"{self.gpu} tp{self.tp} b{self.batch} {self.context_len}+{self.output_len}"

    @property
    def model_name(self) -> str:
        return self.model["name"] if isinstance(self.model, dict) else self.model


def _ft() -> list[Case]:
    rows = []
    for tp, prefill_ms, decode_ms in ((1, 63.17, 22.0), (2, 45.45, 13.5)):
        for quantity, ms in (("ttft_s", prefill_ms), ("tpot_s", decode_ms)):
            rows.append(Case("fastertransformer", FT_13B, "nvidia_a100_40gb_sxm", tp, 1, 512, 10, quantity,
                             ms / 1e3, FT_SOURCE))
    return rows


#: (tp, batch, A100 80GB SXM4 ms, H100 80GB HBM3 ms), Llama-2-7B, "Average Latency [ms]".
_NEMO_7B = (
    (1, 1, 234.0, 153.8), (1, 2, 249.6, 160.8), (1, 4, 272.6, 174.8), (1, 8, 329.5, 199.2),
    (2, 1, 171.7, 128.6), (2, 2, 180.3, 132.0), (2, 4, 202.9, 137.9), (2, 8, 237.6, 156.2),
    (4, 1, 143.7, 107.4), (4, 2, 149.9, 114.0), (4, 4, 165.2, 120.4), (4, 8, 196.4, 134.6),
    (8, 1, 136.5, 97.6), (8, 2, 143.3, 109.1), (8, 4, 158.6, 116.2), (8, 8, 181.9, 129.1),
)


def _nemo() -> list[Case]:
    rows = []
    for tp, batch, a100, h100 in _NEMO_7B:
        for gpu, ms in (("nvidia_a100_80gb_sxm", a100), ("nvidia_h100_sxm", h100)):
            rows.append(Case("nemo-llama-2-7b", "llama-2-7b", gpu, tp, batch, 128, 20, "latency_s", ms / 1e3,
                             NEMO_SOURCE))
    return rows


#: (model, tp, tokens/s), bf16, batch 1, A100-80GB power-limited to 330 W, 8 GPUs in a hybrid cube mesh.
_GPT_FAST = (
    ("llama-2-7b", 1, 104.9), ("llama-2-7b", 2, 168.84), ("llama-2-7b", 4, 254.02), ("llama-2-7b", 8, 328.43),
    ("llama-2-70b", 2, 21.32), ("llama-2-70b", 4, 38.01), ("llama-2-70b", 8, 62.50),
)


def _gpt_fast() -> list[Case]:
    """200 generated tokens per request (``generate.py --max_new_tokens 200``): the prefill's and 199 decode steps,
    tokens/s = 200 / (ttft + 199 x tpot)."""
    return [Case("gpt-fast", model, "nvidia_a100_80gb_sxm", tp, 1, 5, 199, "latency_s", 200 / tok_s, GPT_FAST_SOURCE)
            for model, tp, tok_s in _GPT_FAST]


CASES: tuple[Case, ...] = tuple(_ft() + _nemo() + _gpt_fast())


@dataclasses.dataclass(frozen=True)
class Result:
    case: Case
    estimate_s: float

    @property
    def error(self) -> float:
        return self.estimate_s / self.case.measured_s - 1

    @property
    def residual_per_pass_s(self) -> float:
        """Measured minus estimated time per forward pass [s] (prefill and decode steps alike)."""
        passes = 1 + self.case.output_len if self.case.quantity == "latency_s" else 1
        return (self.case.measured_s - self.estimate_s) / passes


def _model(case: Case) -> str | ModelConfig:
    return from_mapping(case.model) if isinstance(case.model, dict) else case.model


def run(cases: tuple[Case, ...] = CASES) -> list[Result]:
    """The tsize estimate for every case (16-bit weights and KV cache, as measured)."""
    from tsize.point import size

    results = []
    for case in cases:
        row = size(_model(case), mode="serve", gpu=case.gpu, tp=case.tp, concurrency=case.batch,
                   context_len=case.context_len, output_len=case.output_len, weight_dtype="fp16", kv_dtype="fp16")
        if case.quantity == "latency_s":
            estimate = row["ttft_s"] + case.output_len * row["tpot_s"]
        else:
            estimate = row[case.quantity]
        results.append(Result(case, estimate))
    return results


def summary(results: list[Result]) -> dict[str, dict[str, float]]:
    """Per set: cases, median and worst |error|, the median signed error and the median residual per pass [s]."""
    out = {}
    for name in dict.fromkeys(r.case.set for r in results):
        errors = [r.error for r in results if r.case.set == name]
        out[name] = dict(cases=len(errors), median_abs=statistics.median(abs(e) for e in errors),
                         worst_abs=max(abs(e) for e in errors), median=statistics.median(errors),
                         residual_s=statistics.median(r.residual_per_pass_s for r in results if r.case.set == name))
    return out


def table(results: list[Result]) -> str:
    """Markdown: one row per case, then the per-set summary."""
    lines = ["| set | model | setting | quantity | measured (ms) | tsize (ms) | error | residual per pass (ms) |",
             "|---|---|---|---|---|---|---|---|"]
    for r in results:
        c = r.case
        lines.append(f"| {c.set} | {c.model_name} | {c.setting} | {c.quantity} | {c.measured_s * 1e3:,.2f} | "
                     f"{r.estimate_s * 1e3:,.2f} | {r.error:+.1%} | {r.residual_per_pass_s * 1e3:.2f} |")
    lines += ["", "| set | cases | median abs. error | worst abs. error | median signed error | "
              "median residual per pass (ms) |", "|---|---|---|---|---|---|"]
    for name, s in summary(results).items():
        lines.append(f"| {name} | {s['cases']} | {s['median_abs']:.1%} | {s['worst_abs']:.1%} | "
                     f"{s['median']:+.1%} | {s['residual_s'] * 1e3:.2f} |")
    return "\n".join(lines)
