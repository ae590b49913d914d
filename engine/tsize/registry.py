"""The one registry of inputs and outputs.

Every column tsize produces is declared here once: its unit, the store
table ("tier") it lives in, a description and a reference. The options of
``tsize size``, its ``--json``, the sweep frames, the DuckDB schema,
docs/reference.md and the tests all read this module;
``tests/test_registry.py`` checks the declarations, ``tests/test_evaluate.py``
that the evaluator computes exactly these outputs, and ``tests/test_docs.py``
that the reference lists them.

Tiers. A sweep is a grid over the input axes below. An output that depends
on only some axes is stored once per combination of those axes, in its
tier's table, and the ``results`` view joins the tiers back into one row
per grid point:

* ``models``: per model configuration;
* ``gpus``: per accelerator (catalog facts);
* ``steps``: per training step on one device (model, precision, optimizer,
  attention, batch, sequence...);
* ``placements``: a step on one GPU type (memory share, measured MFU);
* ``runs``: per training run (model, precision, tokens, GPU type and count,
  assumed MFU, energy prices);
* ``shards``: model states per GPU under a layout (GPU count, tp, pp, ZeRO);
* ``settings``: layout and accounting settings (sequence parallelism, overheads, system, global batch,
  interleaving, overlap);
* ``servings``: serving a model on one GPU type (``mode = serve``; NaN or
  false when ``mode = train``). The training outputs do not depend on the
  mode: with ``mode = serve`` they still describe training with the
  training inputs and do not apply; the ``mode`` column says which applies;
* ``stages``: one micro-batch on the busiest pipeline stage of a layout (its compute and communication);
* ``points``: everything that needs the full point (activations per GPU, fit, exposed data-parallel time).

Outputs marked ``stored=False`` are cheap functions of stored columns (the step time and its parts from the
per-micro-batch stage times and the micro-batch count; time, cost and energy from the step time; the memory
required and its share of the GPU from the peak per GPU); the ``results`` view computes them
(``store.DERIVED``) instead of storing one more column per point.
"""

from __future__ import annotations

import dataclasses
import math

from tsize.errors import TsizeError
from tsize.formulas import sequence


@dataclasses.dataclass(frozen=True)
class Input:
    name: str
    kind: str  # "model" | "catalog" | "choice" | "int" | "float" | "bool"
    default: object
    unit: str
    description: str
    choices: tuple = ()
    minimum: float | None = None  # inclusive
    above: float | None = None  # exclusive lower bound
    maximum: float | None = None  # inclusive

    def check(self, value: object) -> object:
        """Return ``value`` converted to this input's kind; TsizeError naming it and the valid range otherwise.

        Numbers must be finite and within the documented bounds (every integer input has an upper bound, so
        no count derived from it wraps); NaN passes only where the default is NaN ("NaN: not measured").
        """
        if self.kind == "model":
            return value
        if self.kind == "catalog":
            if not isinstance(value, str):
                raise TsizeError(f"{self.name} must be a catalog id (text), got {value!r}")
            return value
        if self.choices:
            if value not in self.choices or isinstance(value, bool) != isinstance(self.choices[0], bool):
                raise TsizeError(f"{self.name} {value!r} is not valid; valid: {', '.join(map(str, self.choices))}")
            return value
        if self.kind == "bool":
            if not isinstance(value, bool):
                raise TsizeError(f"{self.name} must be true or false, got {value!r}")
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TsizeError(f"{self.name} must be a number, got {value!r}")
        if isinstance(value, float) and math.isnan(value) and isinstance(self.default, float) and \
                math.isnan(self.default):
            return value
        if isinstance(value, float) and not math.isfinite(value):
            raise TsizeError(f"{self.name} {value!r} is not a finite number; valid: {self.valid()}")
        given = value
        if self.kind == "int":
            if isinstance(value, float) and not value.is_integer():
                raise TsizeError(f"{self.name} must be an integer, got {value!r}")
            value = int(value)
        ok = ((self.minimum is None or value >= self.minimum)
              and (self.above is None or value > self.above)
              and (self.maximum is None or value <= self.maximum))
        if not ok:
            raise TsizeError(f"{self.name} {given!r} is out of range; valid: {self.valid()}")
        return value if self.kind == "int" else float(value)

    def valid(self) -> str:
        """The valid values in words: the choices, the bounds of a number (``">= 1 and <= 4294967296"``), or
        ``""`` for a model, a catalog id or a flag."""
        if self.choices:
            return ", ".join(map(str, self.choices))
        if self.kind not in ("int", "float"):
            return ""
        bounds = []
        if self.minimum is not None:
            bounds.append(f">= {self.minimum:g}")
        if self.above is not None:
            bounds.append(f"> {self.above:g}")
        if self.maximum is not None:
            m = self.maximum
            bounds.append(f"<= {int(m)}" if float(m).is_integer() and abs(m) < 1e16 else f"<= {m:g}")
        return " and ".join(bounds) or "any finite number"


@dataclasses.dataclass(frozen=True)
class Output:
    name: str
    unit: str
    tier: str
    dtype: str  # "int64" | "float64" | "bool"
    description: str
    reference: str = ""
    #: False: not stored; the store's ``results`` view computes it from stored columns (``store.DERIVED``),
    #: with the same arithmetic, in the same order, as ``evaluate``.
    stored: bool = True


ATTENTION = ("naive", "flash", "flash1", "flash3")
#: FlashAttention generation of each fused attention choice (0: naive): "flash" is FlashAttention-2, the kernel of
#: PyTorch's SDPA flash backend (torch >= 2.2); "flash1" FlashAttention-1 and its Triton port (2022-23);
#: "flash3" the Hopper kernel of FlashAttention-3.
FLASH_GENERATION = {"naive": 0, "flash": 2, "flash1": 1, "flash3": 3}
#: T when the seq_len axis says 0: min(n_ctx, DEFAULT_SEQ_LEN) (defined with its formula, formulas/sequence.py).
DEFAULT_SEQ_LEN = sequence.DEFAULT_SEQ_LEN
#: Upper bound of seq_len and of a model's n_ctx [tokens] (2^30; the longest published contexts are ~1e7).
MAX_TOKENS_PER_SEQUENCE = 2**30
RECOMPUTE = ("none", "selective", "full")
MODES = ("train", "serve")
WEIGHT_DTYPES = ("bf16", "fp16", "fp8", "int8", "int4")
KV_DTYPES = ("bf16", "fp16", "fp8")

#: Input axes, in grid order (first = slowest varying).
INPUTS: tuple[Input, ...] = (
    Input("model", "model", "gpt2", "", "Model: a catalog name, a .toml model file or a Hugging Face config.json"),
    Input("precision", "catalog", None, "",
          "Precision recipe id from catalogs/precisions.toml (default: amp-bf16, the bfloat16 recipe)"),
    Input("optimizer", "catalog", "adamw", "",
          "Optimizer id from catalogs/optimizers.toml (adamw: fused or foreach update; adamw-unfused: a per-parameter "
          "loop of eager element-wise ops)"),
    Input("attention", "choice", "flash", "",
          "Attention kernel: naive (materialised T x T), flash (fused: FlashAttention-2, PyTorch SDPA), flash1 "
          "(FlashAttention-1 or its Triton port, 2022-23) or flash3 (FlashAttention-3, Hopper)", ATTENTION),
    Input("dropout", "float", 0.0, "1", "Dropout probability (residual, attention, embedding)", minimum=0,
          maximum=0.999),
    Input("dropout_mask_bytes", "float", 1.0, "bytes",
          "Bytes per element of a saved dropout mask: 1 on CUDA (bool mask); the dtype's size on CPU", above=0,
          maximum=16),
    Input("recompute", "choice", "none", "", "Activation recomputation: none, selective (attention core) or full",
          RECOMPUTE),
    Input("grad_accum", "int", 1, "1", "Micro-batches per optimizer step (gradient accumulation)", minimum=1,
          maximum=2**20),
    Input("seq_len", "int", 0, "tokens",
          f"Sequence length T (0: min(n_ctx, {DEFAULT_SEQ_LEN}), the model's context capped at {DEFAULT_SEQ_LEN})",
          minimum=0, maximum=MAX_TOKENS_PER_SEQUENCE),
    Input("batch_size", "int", 1, "sequences", "Micro-batch size B per GPU", minimum=1, maximum=2**32),
    Input("gpu", "catalog", "nvidia_h100_sxm", "", "Accelerator id from catalogs/gpus.toml"),
    Input("n_gpus", "int", 8, "GPUs", "Number of GPUs (tp * pp * dp)", minimum=1, maximum=2**32),
    Input("tokens", "float", 300e9, "tokens", "Training tokens D", above=0, maximum=1e18),
    Input("assumed_mfu", "float", math.nan, "1",
          "Override: hardware FLOPs utilisation assumed for train_time_s (NaN: the predicted step time is used)",
          above=0, maximum=1),
    Input("pue", "float", 1.2, "1", "Facility power usage effectiveness (energy multiplier)", minimum=1,
          maximum=10),
    Input("usd_per_kwh", "float", 0.10, "USD/kWh", "Electricity price", minimum=0, maximum=1000),
    Input("tp", "int", 1, "GPUs", "Tensor-parallel degree", minimum=1, maximum=2**20),
    Input("pp", "int", 1, "GPUs", "Pipeline-parallel degree", minimum=1, maximum=2**20),
    Input("zero_stage", "int", 0, "", "ZeRO stage over data parallelism: 0, 1, 2 or 3 (3 = FSDP full shard)",
          (0, 1, 2, 3)),
    Input("sequence_parallel", "bool", False, "", "Sequence parallelism with tensor parallelism"),
    Input("overhead_bytes", "float", 2**30, "bytes",
          "Per-GPU memory outside PyTorch's allocator: CUDA context, cuBLAS/NCCL workspaces", minimum=0,
          maximum=2**50),
    Input("allocator_slack", "float", 0.05, "1", "Caching-allocator fragmentation, as a fraction of the peak",
          minimum=0, maximum=10),
    Input("iter_time_s", "float", math.nan, "s", "Measured seconds per iteration, for MFU (NaN: not measured)",
          above=0, maximum=1e9),
    # --- serving (issue 13) -------------------------------------------------
    Input("mode", "choice", "train", "", "What the point sizes: train, or serve (the serving outputs; NaN when train)",
          MODES),
    Input("weight_dtype", "choice", "bf16", "",
          "Serving weight format: bf16/fp16; fp8 or int8 (W8A8, needs the GPU's fp8/int8 tensor cores); "
          "int4 (AWQ/GPTQ W4A16, group 128, 16-bit scale + 4-bit zero per group)", WEIGHT_DTYPES),
    Input("kv_dtype", "choice", "bf16", "", "KV-cache element type", KV_DTYPES),
    Input("context_len", "int", 512, "tokens", "Serving: prompt tokens per request", minimum=1, maximum=2**31 - 1),
    Input("output_len", "int", 128, "tokens", "Serving: generated tokens per request", minimum=1,
          maximum=2**31 - 1),
    Input("concurrency", "int", 1, "sequences",
          "Serving: requests in flight, batched together (0 is flagged: nothing served)", minimum=0,
          maximum=2**31 - 1),
    Input("block_size", "int", 16, "tokens", "Serving: KV-cache page size (vLLM default 16)", minimum=1,
          maximum=2**20),
    Input("gpu_memory_utilization", "float", 0.9, "1",
          "Serving: fraction of GPU memory the server may use (vLLM default 0.9)", above=0, maximum=1),
    Input("system", "catalog", "auto", "",
          "System id from catalogs/systems.toml: scale-up domain and network (auto: the GPU's default system)"),
    Input("global_batch_size", "int", 0, "sequences",
          "Sequences per optimizer step; micro-batches per pipeline = global / (dp * batch_size) "
          "(0: grad_accum micro-batches per GPU)", minimum=0, maximum=2**40),
    Input("interleave", "int", 1, "1", "Virtual pipeline stages (model chunks) per pipeline rank", minimum=1,
          maximum=2**20),
    Input("overlap_grad_reduce", "bool", True, "",
          "Overlap the data-parallel gradient reduction with backward (Megatron --overlap-grad-reduce, DDP, FSDP)"),
)

INPUT_NAMES = tuple(i.name for i in INPUTS)

#: Bit widths a precision recipe sets (catalogs/precisions.toml fields; resolved inputs of the evaluator).
PRECISION_BITS = ("param_bits", "grad_bits", "master_bits", "state_bits", "copy_bits", "compute_bits",
                  "residual_bits", "softmax_bits", "loss_bits")

#: Attributes of the model shown after ``model`` in frames and in ``results`` (ModelConfig properties).
MODEL_ATTRIBUTES = ("family", "n_layer", "d_model", "n_head", "n_kv_head", "head_dim", "d_ff", "vocab_size",
                    "n_ctx", "n_experts", "top_k")
_BY_INPUT = {i.name: i for i in INPUTS}

_STEP_AXES = ("model", "precision", "optimizer", "attention", "dropout", "dropout_mask_bytes", "recompute",
              "grad_accum", "seq_len", "batch_size")

#: Store tables and the axes each depends on (see the module docstring).
TIERS: dict[str, tuple[str, ...]] = {
    "models": ("model",),
    "gpus": ("gpu",),
    "steps": _STEP_AXES,
    "placements": _STEP_AXES + ("gpu", "iter_time_s"),
    "runs": ("model", "precision", "recompute", "seq_len", "gpu", "n_gpus", "tokens", "assumed_mfu", "pue",
             "usd_per_kwh"),
    "shards": ("model", "precision", "optimizer", "n_gpus", "tp", "pp", "zero_stage"),
    "settings": ("sequence_parallel", "overhead_bytes", "allocator_slack", "system", "global_batch_size", "interleave",
                 "overlap_grad_reduce"),
    "servings": ("model", "gpu", "system", "tp", "pp", "overhead_bytes", "mode", "weight_dtype", "kv_dtype", "context_len",
                 "output_len", "concurrency", "block_size", "gpu_memory_utilization"),
    "stages": ("model", "precision", "attention", "dropout", "recompute", "seq_len", "batch_size", "gpu", "tp", "pp",
               "sequence_parallel", "system", "interleave"),
    "points": INPUT_NAMES,
}
#: Tiers whose keys a tier's rows carry, so the ``results`` view can join them.
PARENTS: dict[str, tuple[str, ...]] = {
    "models": (), "gpus": (), "steps": ("models",), "placements": ("steps", "gpus"), "runs": (), "shards": (),
    "settings": (), "servings": (), "stages": (),
    "points": ("placements", "runs", "shards", "settings", "servings", "stages"),
}


def home_tier(axis: str) -> str:
    """Where an axis's values are stored: the first tier (in ``TIERS`` order) that depends on it."""
    return next(t for t, axes in TIERS.items() if axis in axes)


_P = "parameters"
_NANO = "nanoGPT model.py; tests/formulas/test_params.py (PyTorch count)"
_SEED = "seed notebook (nanoGPT transformer_sizing.ipynb)"
_KORT = "Korthikanti et al. 2022, sec. 4.1; tests/formulas/test_activations.py (saved_tensors_hooks)"
_ZERO = "Rajbhandari et al. 2020 (ZeRO), sec. 3.1 and 5"
_MEG = "Narayanan et al. 2021; Korthikanti et al. 2022 (Megatron-LM)"
_SERVE = "tsize/formulas/serving.py (vLLM paging; roofline); tests/test_serving.py"
_NAR = "Narayanan et al. 2021, sec. 2.2; tsize/formulas/pipeline.py"

OUTPUTS: tuple[Output, ...] = (
    # --- per model --------------------------------------------------------
    Output("params_token_embedding", _P, "models", "int64", "Token embedding V*d", _NANO),
    Output("params_position_embedding", _P, "models", "int64", "Learned position embedding n_ctx*d (0 with RoPE)",
           _NANO),
    Output("params_attention", _P, "models", "int64", "Attention projections and biases, all blocks", _NANO),
    Output("params_mlp", _P, "models", "int64", "MLPs (all experts) and biases, all blocks", _NANO),
    Output("params_router", _P, "models", "int64", "MoE routers, all blocks", "Jiang et al. 2024 (Mixtral)"),
    Output("params_norm", _P, "models", "int64", "All norms: 2 per block plus the final norm", _NANO),
    Output("params_lm_head", _P, "models", "int64", "LM head (0 when tied to the token embedding)", _NANO),
    Output("params_layer", _P, "models", "int64", "One transformer block", _NANO),
    Output("params_total", _P, "models", "int64", "All parameters, tied weights once (= PyTorch's count)", _NANO),
    Output("params_non_embedding", _P, "models", "int64",
           "Total minus lookup tables (position embeddings; token embedding unless tied)",
           "nanoGPT get_num_params(non_embedding=True)"),
    Output("params_active", _P, "models", "int64", "Parameters used per token (MoE: top-k experts)",
           "Jiang et al. 2024 (Mixtral), sec. 2"),
    Output("param_tensors", "tensors", "models", "int64", "Distinct parameter tensors (checkpoint records)", _NANO),
    Output("heads_divide", "", "models", "bool", "n_head divides d_model and n_kv_head divides n_head",
           "Vaswani et al. 2017, sec. 3.2.2 (d_k = d_model/h); Ainslie et al. 2023 (GQA groups)"),
    # --- per accelerator ---------------------------------------------------
    Output("gpu_memory_bytes", "bytes", "gpus", "float64",
           "Device memory: nvidia-smi/rocm-smi total where sourced, else the vendor label in its real unit",
           "catalogs/gpus.toml"),
    Output("gpu_tdp_w", "W", "gpus", "float64", "Board power (TDP)", "catalogs/gpus.toml"),
    Output("gpu_price_usd", "USD", "gpus", "float64", "Approximate purchase price per GPU (NaN: unknown)",
           "catalogs/gpus.toml"),
    Output("gpu_cloud_usd_per_hour", "USD/h", "gpus", "float64", "On-demand price per GPU-hour (NaN: unknown)",
           "catalogs/gpus.toml"),
    # --- per training step on one device ------------------------------------
    Output("seq_len_ok", "", "steps", "bool", "T fits the model: T <= n_ctx where positions are learned",
           "nanoGPT model.py forward (t <= block_size); tsize/formulas/sequence.py"),
    Output("flops_qkv", "FLOP", "steps", "float64", "Forward Q/K/V projections, all blocks", _SEED),
    Output("flops_attention_scores", "FLOP", "steps", "float64", "Forward Q@K^T, all blocks, full T x T", _SEED),
    Output("flops_attention_values", "FLOP", "steps", "float64", "Forward P@V, all blocks, full T x T", _SEED),
    Output("flops_attention_out", "FLOP", "steps", "float64", "Forward attention output projection, all blocks",
           _SEED),
    Output("flops_mlp", "FLOP", "steps", "float64", "Forward MLP (k experts per token), all blocks", _SEED),
    Output("flops_router", "FLOP", "steps", "float64", "Forward MoE router, all blocks",
           "Jiang et al. 2024 (Mixtral); FlopCounterMode"),
    Output("flops_lm_head", "FLOP", "steps", "float64", "Forward LM head", _SEED),
    Output("flops_forward", "FLOP", "steps", "float64", "Forward matmul FLOPs of one micro-batch B*T (non-causal)",
           "Kaplan et al. 2020, Table 1; FlopCounterMode"),
    Output("flops_backward", "FLOP", "steps", "float64", "Backward: 2 x forward", "Kaplan et al. 2020, sec. 2.1"),
    Output("flops_iteration", "FLOP", "steps", "float64", "Forward + backward of one micro-batch (non-causal)",
           "FlopCounterMode; tests/formulas/test_flops.py"),
    Output("flops_iteration_causal", "FLOP", "steps", "float64",
           "As flops_iteration with attention scores and values halved (causal accounting)", "Dao 2023"),
    Output("flops_palm_iteration", "FLOP", "steps", "float64", "PaLM estimate (6N + 12*L*H*Q*T) * B*T",
           "Chowdhery et al. 2022, App. B"),
    Output("flops_recompute", "FLOP", "steps", "float64", "Forward FLOPs recomputed in backward, one micro-batch",
           "Korthikanti et al. 2022, sec. 4"),
    Output("weights_bytes", "bytes", "steps", "float64", "Stored parameters at the recipe's width", _ZERO),
    Output("buffers_bytes", "bytes", "steps", "float64",
           "Persistent buffers: nanoGPT's causal masks, L*n_ctx^2*4, with naive attention", _NANO),
    Output("weight_copies_bytes", "bytes", "steps", "float64", "16-bit weight copies autocast keeps for backward",
           "PyTorch autocast cast cache"),
    Output("gradients_bytes", "bytes", "steps", "float64", "Gradient buffers", _ZERO),
    Output("optimizer_bytes", "bytes", "steps", "float64", "Optimizer states, fp32 master weights included", _ZERO),
    Output("activation_layer_bytes", "bytes", "steps", "float64", "Saved for backward by one block, one micro-batch",
           _KORT),
    Output("activation_bytes", "bytes", "steps", "float64",
           "Saved for backward by one micro-batch: blocks, embeddings, logits and loss", _KORT),
    Output("memory_total_bytes", "bytes", "steps", "float64",
           "Weights + buffers + copies + gradients + optimizer + activations, one device", _SEED),
    Output("memory_peak_bytes", "bytes", "steps", "float64",
           "Estimated peak allocated memory of an iteration, one device (torch.cuda.max_memory_allocated)",
           "tsize/formulas/memory.py peak; tests/formulas/test_memory.py (seed's measured peaks)"),
    Output("checkpoint_bytes", "bytes", "steps", "float64", "nanoGPT-style torch.save of model and optimizer",
           "tests/formulas/test_memory.py (real torch.save)"),
    # --- per training run -------------------------------------------------
    Output("peak_flops_per_s", "FLOP/s", "runs", "float64", "GPU dense peak for the recipe's dtype (NaN: unsupported)",
           "catalogs/gpus.toml"),
    Output("train_flops", "FLOP", "runs", "float64",
           "Model FLOPs to train, the 6*N*D convention (N active; attention not counted)",
           "Kaplan et al. 2020; Brown et al. 2020, App. D"),
    Output("train_hardware_flops", "FLOP", "runs", "float64", "The 6ND convention with recomputation: 8*N*D when full",
           "Chen et al. 2016; Korthikanti et al. 2022"),
    Output("train_time_s", "s", "points", "float64",
           "Time to train: steps x step_time_s (with assumed_mfu: executed FLOPs / (n x peak x assumed_mfu))",
           _SEED + "; tsize/formulas/step.py train_time_s, training.py time_s",
           stored=False),
    Output("gpu_time_s", "GPU*s", "points", "float64", "Accelerator time (GPU-seconds)",
           "train_time_s x n_gpus (tsize/formulas/training.py gpu_time_s)", stored=False),
    Output("cost_usd", "USD", "points", "float64", "Cloud cost: GPU-hours x price per GPU-hour",
           "catalogs/gpus.toml (cloud_usd_per_hour, dated)", stored=False),
    Output("purchase_usd", "USD", "runs", "float64", "Purchase cost of n_gpus accelerators",
           "catalogs/gpus.toml (price_usd, dated)"),
    Output("energy_j", "J", "points", "float64", "Facility energy: TDP x n x time x PUE",
           "The Green Grid 2007, White Paper 6 (PUE); catalogs/gpus.toml (TDP)", stored=False),
    Output("energy_usd", "USD", "points", "float64", "Electricity cost of energy_j", "1 kWh = 3.6e6 J (SI); usd_per_kwh input",
           stored=False),
    Output("train_mfu", "1", "points", "float64",
           "The run's MFU: predicted_mfu, or assumed_mfu x model / executed FLOPs",
           "Chowdhery et al. 2022, App. B; tsize/formulas/step.py predicted_utilisation, training.py mfu_at_hfu",
           stored=False),
    Output("train_hfu", "1", "points", "float64", "The run's hardware FLOPs utilisation: predicted_hfu, or assumed_mfu",
           "Chowdhery et al. 2022, App. B; tsize/formulas/step.py predicted_utilisation", stored=False),
    # --- per point ----------------------------------------------------------
    Output("mfu", "1", "placements", "float64", "Measured MFU from iter_time_s (NaN when not measured)",
           "Chowdhery et al. 2022, App. B"),
    Output("hfu", "1", "placements", "float64", "Measured HFU: mfu with recomputed FLOPs counted",
           "Chowdhery et al. 2022, App. B"),
    Output("states_share", "1", "placements", "float64", "(weights + optimizer) / GPU memory, one device", _SEED),
    Output("data_parallel", "GPUs", "shards", "float64", "dp = n_gpus / (tp * pp); NaN when it does not divide", _MEG),
    Output("weights_per_gpu_bytes", "bytes", "shards", "float64", "Weights on the busiest GPU", _ZERO),
    Output("gradients_per_gpu_bytes", "bytes", "shards", "float64", "Gradients on the busiest GPU", _ZERO),
    Output("optimizer_per_gpu_bytes", "bytes", "shards", "float64", "Optimizer states on the busiest GPU", _ZERO),
    Output("activations_per_gpu_bytes", "bytes", "points", "float64", "Activations on the busiest GPU", _MEG),
    Output("memory_per_gpu_bytes", "bytes", "points", "float64", "Estimated peak allocated memory per GPU", _MEG),
    Output("memory_required_bytes", "bytes", "points", "float64",
           "Peak per GPU x (1 + allocator_slack) + overhead_bytes",
           "PyTorch CUDA caching allocator (reserved vs allocated); tsize/formulas/memory.py required",
           stored=False),
    Output("memory_share", "1", "points", "float64", "memory_required / GPU memory", _SEED, stored=False),
    Output("fits", "", "points", "bool",
           "Buildable model and layout, supported dtype, and memory_required <= GPU memory",
           "tsize/formulas/memory.py fits; tests/formulas/test_parallel.py"),
    Output("max_micro_batch", "sequences", "points", "float64",
           "Largest micro-batch that fits this layout (0: none)",
           "tsize/formulas/parallel.py max_micro_batch; tests/formulas/test_parallel.py"),
    Output("min_gpus", "GPUs", "points", "float64",
           "Fewest GPUs of this type that fit, at this tp, pp, ZeRO stage and micro-batch (inf: never)",
           "Rajbhandari et al. 2020 (ZeRO), sec. 5; tsize/formulas/parallel.py min_gpus"),
    # --- what `tsize size` shows beside the above (report.py renders, never computes) ----------------------
    Output("flops_attention_scores_causal", "FLOP", "steps", "float64",
           "Forward Q@K^T, all blocks, causal accounting (half of T x T)", "Dao 2023"),
    Output("flops_attention_values_causal", "FLOP", "steps", "float64",
           "Forward P@V, all blocks, causal accounting (half of T x T)", "Dao 2023"),
    Output("flops_forward_causal", "FLOP", "steps", "float64",
           "Forward matmul FLOPs of one micro-batch, causal accounting", "Dao 2023"),
    Output("flops_backward_causal", "FLOP", "steps", "float64", "Backward: 2 x flops_forward_causal",
           "Kaplan et al. 2020, sec. 2.1"),
    Output("train_flops_full_recompute", "FLOP", "runs", "float64",
           "Executed FLOPs to train with full recomputation, whatever recompute says: 8*N*D",
           "Chen et al. 2016; Korthikanti et al. 2022"),
    # --- serving (mode = serve; NaN / false when mode = train) -------------------
    Output("context_fits_model", "", "servings", "bool",
           "context_len + output_len <= the model's n_ctx (false when mode = train)", _SERVE),
    Output("weight_dtype_supported", "", "servings", "bool",
           "The GPU has the dense peak the weight format computes at (fp8/int8 tensor cores for W8A8)",
           "catalogs/gpus.toml"),
    Output("serving_weights_per_gpu_bytes", "bytes", "servings", "float64",
           "Weights on the busiest GPU: TP-split, KV projections and norms replicated, block linears at "
           "weight_dtype (int4: + group scales and zeros), the rest 16-bit", _SERVE),
    Output("kv_cache_bytes_per_token", "bytes", "servings", "float64",
           "KV cache per token of context on the busiest GPU: 2 x layers x max(1, n_kv_head // tp) x head_dim x "
           "kv bytes", _SERVE),
    Output("kv_cache_bytes_per_sequence", "bytes", "servings", "float64",
           "KV cache of one request (context_len + output_len tokens) on the busiest GPU, in whole blocks", _SERVE),
    Output("serving_workspace_bytes", "bytes", "servings", "float64",
           "Activation peak of a prefill chunk (min(context_len x concurrency, 8192) tokens) and fp32 logits",
           _SERVE),
    Output("kv_cache_budget_bytes", "bytes", "servings", "float64",
           "GPU memory x gpu_memory_utilization - weights - workspace - overhead_bytes (>= 0)", _SERVE),
    Output("kv_cache_tokens", "tokens", "servings", "float64", "Tokens the KV cache holds (whole blocks)", _SERVE),
    Output("max_concurrency", "sequences", "servings", "float64",
           "Requests of context_len + output_len tokens whose KV cache fits at once", _SERVE),
    Output("serving_memory_per_gpu_bytes", "bytes", "servings", "float64",
           "Weights + workspace + overhead + concurrency x KV per sequence, busiest GPU", _SERVE),
    Output("ttft_s", "s", "servings", "float64",
           "Time to first token: prefill of concurrency prompts, each GEMM per rank a roofline with the GEMM "
           "size curve, + attention + element-wise kernels + TP all-reduces; no kernel shorter than kernel_launch_us",
           _SERVE),
    Output("tpot_s", "s", "servings", "float64",
           "Time per output token: one decode step of the batch at the mean context, each GEMM per rank a roofline "
           "(weight reads / HBM vs FLOPs / matmul rate x size curve), + KV read + element-wise kernels + TP "
           "all-reduces; no kernel shorter than kernel_launch_us", _SERVE),
    Output("ttft_overhead_s", "s", "servings", "float64",
           "Part of ttft_s beyond the GEMM, attention, LM-head and all-reduce rooflines: the element-wise kernels "
           "and the per-kernel floor (catalogs/systems.toml kernel_launch_us)", _SERVE),
    Output("tpot_overhead_s", "s", "servings", "float64",
           "Part of tpot_s beyond the GEMM, attention, LM-head and all-reduce rooflines: the element-wise kernels "
           "and the per-kernel floor (catalogs/systems.toml kernel_launch_us)", _SERVE),
    Output("decode_kernels", "kernels", "servings", "float64",
           "Kernels one GPU runs per forward pass besides collectives: per layer its GEMMs, 1 attention, 4 "
           "element-wise (FasterTransformer's decoder layer); + embedding, final norm, LM head", _SERVE),
    Output("decode_memory_bound", "", "servings", "bool", "The decode step's GEMMs are limited by HBM, not by compute",
           _SERVE),
    Output("output_tokens_per_s_per_replica", "tokens/s", "servings", "float64",
           "concurrency x output_len / (ttft + output_len x tpot), one replica of tp x pp GPUs", _SERVE),
    Output("output_tokens_per_s_per_gpu", "tokens/s", "servings", "float64",
           "output_tokens_per_s_per_replica / (tp x pp)", _SERVE),
    Output("requests_per_s_per_replica", "requests/s", "servings", "float64",
           "output_tokens_per_s_per_replica / output_len", _SERVE),
    Output("usd_per_million_input_tokens", "USD", "servings", "float64",
           "Cloud cost of the prefill time per million prompt tokens (GPU-hours of the replica)", _SERVE),
    Output("usd_per_million_output_tokens", "USD", "servings", "float64",
           "Cloud cost of the decode time per million generated tokens (GPU-hours of the replica)", _SERVE),
    Output("serving_fits", "", "servings", "bool",
           "mode = serve, valid input (context fits the model, weight format runs, concurrency >= 1, tp splits "
           "the heads) and weights + workspace + concurrency x KV fit gpu_memory_utilization of the GPU", _SERVE),
    # --- predicted step time ----------------------------------------------
    Output("micro_batches", "1", "points", "float64",
           "Micro-batches per pipeline per step: global_batch_size / (dp x batch_size), else grad_accum",
           _NAR + " micro_batches",
           stored=False),
    Output("batch_divides", "", "points", "bool", "dp x batch_size divides global_batch_size (true without one)",
           _NAR + " batch_divides", stored=False),
    Output("interleave_divides", "", "points", "bool", "pp x interleave divides n_layer (true for interleave 1)",
           _NAR + " interleave_divides", stored=False),
    Output("stage_compute_time_s", "s", "stages", "float64",
           "One micro-batch on the busiest stage: GEMMs (roofline, size curve) and memory-bound ops",
           "tsize/formulas/step.py stage_compute_time_s (block_linear_time_s, attention_core_time_s, "
           "lm_head_time_s); compute.py gemm_time_s, layer_elementwise_bytes"),
    Output("stage_tp_comm_time_s", "s", "stages", "float64",
           "One micro-batch on the busiest stage: tensor-parallel collectives",
           "Narayanan et al. 2021, sec. 3.2; tsize/formulas/step.py stage_tp_comm_time_s, comm.py hierarchical_time_s"),
    Output("stage_pp_comm_time_s", "s", "stages", "float64",
           "One micro-batch on the busiest stage: pipeline sends (forward and backward, per chunk)",
           "Narayanan et al. 2021, sec. 2.2; tsize/formulas/step.py stage_pp_comm_time_s, pipeline_send_time_s"),
    Output("compute_time_s", "s", "points", "float64",
           "Per step: GEMMs (roofline, size-dependent efficiency) and memory-bound ops of the busiest stage",
           "m x stage_compute_time_s (tsize/formulas/step.py stage_compute_time_s)", stored=False),
    Output("tp_comm_time_s", "s", "points", "float64",
           "Per step: tensor-parallel all-reduces (or reduce-scatter + all-gather), not overlapped",
           "Narayanan et al. 2021, sec. 3.2; m x tsize/formulas/step.py stage_tp_comm_time_s", stored=False),
    Output("pp_comm_time_s", "s", "points", "float64", "Per step: pipeline point-to-point sends, not overlapped",
           "Narayanan et al. 2021, sec. 2.2; m x tsize/formulas/step.py stage_pp_comm_time_s", stored=False),
    Output("pp_bubble_time_s", "s", "points", "float64",
           "Per step: pipeline bubble, (pp - 1) / interleave micro-batch times", _NAR + " bubble_time_s",
           stored=False),
    Output("dp_comm_exposed_time_s", "s", "points", "float64",
           "Per step: data-parallel / ZeRO communication not hidden behind backward",
           _ZERO + "; tsize/formulas/step.py exposed_time_s (dp_comm_once_time_s, zero3_comm_per_micro_batch_s, "
           "dp_hidden_time_s, bucketed_collective_time_s)"),
    Output("optimizer_time_s", "s", "points", "float64", "Per step: optimizer update, memory-bound",
           "tsize/formulas/compute.py optimizer_bytes, memory_time_s"),
    Output("step_time_s", "s", "points", "float64", "Predicted optimizer step: the sum of the six parts above",
           "tsize/formulas/step.py step_time_s; README, Step time", stored=False),
    Output("pp_bubble_fraction", "1", "points", "float64", "Bubble over ideal time, (pp - 1) / (interleave x m)",
           _NAR + " bubble_fraction", stored=False),
    Output("predicted_mfu", "1", "points", "float64", "Model FLOPs per step / (n_gpus x peak x step_time_s)",
           "Chowdhery et al. 2022, App. B; tsize/formulas/step.py predicted_utilisation", stored=False),
    Output("predicted_hfu", "1", "points", "float64", "As predicted_mfu with recomputed FLOPs counted",
           "Korthikanti et al. 2022, sec. 6; tsize/formulas/step.py predicted_utilisation", stored=False),
    Output("tokens_per_s_per_gpu", "tokens/s", "points", "float64", "Training throughput per GPU",
           "global tokens per step / (n_gpus x step_time_s) (tsize/formulas/step.py tokens_per_s_per_gpu)",
           stored=False),
    Output("train_executed_flops", "FLOP", "runs", "float64",
           "FLOPs executed to train on D tokens: 3 x forward per token (every matmul, causal attention included) "
           "+ recomputed forward, x D; what train_time_s divides", "Kaplan et al. 2020; Korthikanti et al. 2022"),
)

OUTPUT_NAMES = tuple(o.name for o in OUTPUTS)
_BY_OUTPUT = {o.name: o for o in OUTPUTS}


def output(name: str) -> Output:
    try:
        return _BY_OUTPUT[name]
    except KeyError:
        raise TsizeError(f"unknown output {name!r}; valid: {', '.join(OUTPUT_NAMES)}") from None


def input_(name: str) -> Input:
    try:
        return _BY_INPUT[name]
    except KeyError:
        raise TsizeError(f"unknown input {name!r}; valid: {', '.join(INPUT_NAMES)}") from None


def frame_columns() -> tuple[str, ...]:
    """Columns of a long-form frame and of the ``results`` view: inputs (model attributes after
    ``model``), then every output."""
    names: list[str] = []
    for name in INPUT_NAMES:
        names.append(name)
        if name == "model":
            names += MODEL_ATTRIBUTES
    return tuple(names) + OUTPUT_NAMES


def tier_outputs(tier: str) -> tuple[Output, ...]:
    return tuple(o for o in OUTPUTS if o.tier == tier)
