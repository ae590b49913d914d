"""A grid of inputs: one axis per input of the registry, evaluated box by box.

A :class:`Grid` holds the values of every input axis (a single value is an
axis of length 1). Categorical axes are resolved once into attribute
vectors (a model into its shape fields, a GPU into memory and peaks, ...),
so evaluating any box of the grid is a handful of slices and reshapes
followed by one call of :func:`tsize.evaluate.evaluate` on arrays that
broadcast. No Python code runs per grid point.
"""

from __future__ import annotations

import ctypes
import functools
import itertools
import math
import sys
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from tsize import catalog
from tsize.errors import TsizeError
from tsize.evaluate import evaluate
from tsize.formulas import sequence
from tsize.model import MLP_ACTIVATIONS, QK_NORMS, ModelConfig
from tsize.registry import (FLASH_GENERATION, INPUT_NAMES, INPUTS, MODEL_ATTRIBUTES, MODES, PRECISION_BITS, RECOMPUTE,
                            TIERS)

Box = tuple[tuple[int, int], ...]

#: Per GPU x system resolved inputs: the scale-up domain and the scale-out network (catalog.System fields).
FABRIC_FIELDS = ("scaleup_size", "scaleup_bytes_per_s", "scaleup_latency_s", "scaleout_bytes_per_s",
                 "scaleout_latency_s")

#: The compute dtype when neither a dtype nor a recipe is given (nanoGPT's default on GPUs that have it).
DEFAULT_DTYPE = "bfloat16"

#: Input columns that are categorical (stored as labels), and integer columns.
CATEGORICAL = ("model", "precision", "optimizer", "attention", "recompute", "gpu", "system", "mode", "weight_dtype",
               "kv_dtype")
#: Every labelled column of the long-form frame: categorical inputs and the model's family.
LABELS = CATEGORICAL + ("family",)
INTEGER = ("grad_accum", "seq_len", "batch_size", "n_gpus", "tp", "pp", "zero_stage", "global_batch_size", "interleave",
           "context_len", "output_len", "concurrency", "block_size")
#: Boolean input columns.
BOOLEAN = ("sequence_parallel", "overlap_grad_reduce")


#: Serving weight formats: stored bits per element, quantization group (0: none), scale and zero-point bits per
#: group, and the dense peak the matmuls run at. fp8/int8 are W8A8 (FP8 / SmoothQuant checkpoints: one scale per
#: tensor or channel, < 0.1 %, not counted); int4 is W4A16 as AutoAWQ/AutoGPTQ store it (qweight 4 bits, per group
#: of 128 inputs one fp16 scale and one packed 4-bit zero; GPTQ's g_idx not counted), dequantized to 16-bit
#: matmuls (fp16, or bf16 where a GPU has no fp16 peak).
WEIGHT_FORMATS = {
    "bf16": (16, 0, 0, 0, "bf16"), "fp16": (16, 0, 0, 0, "fp16"), "fp8": (8, 0, 0, 0, "fp8"),
    "int8": (8, 0, 0, 0, "int8"), "int4": (4, 128, 16, 4, ("fp16", "bf16")),
}


def format_peak(gpu, weight_dtype: str) -> float:
    """Dense peak [FLOP/s] a weight format's matmuls run at on a GPU (the first of its peaks the GPU has); NaN
    when it has none (the format cannot run there)."""
    peaks = WEIGHT_FORMATS[weight_dtype][4]
    for peak in (peaks,) if isinstance(peaks, str) else peaks:
        if peak in gpu.peak_flops_per_s:
            return gpu.peak_flops_per_s[peak]
    return math.nan
KV_BITS = {"bf16": 16, "fp16": 16, "fp8": 8}


#: glibc ``mallopt`` parameter M_TOP_PAD (malloc.h), and the pad tsize asks for [bytes].
_M_TOP_PAD, HEAP_PAD_BYTES = -2, 64 * 2**20


@functools.cache
def pad_heap() -> bool:
    """Keep 64 MiB spare at the top of glibc's heap (``mallopt(M_TOP_PAD)``); true where applied.

    Evaluating a box allocates and frees dozens of box-sized arrays. Without
    the pad, glibc hands the freed top of the heap back to the kernel after
    each box and the next box's arrays page-fault it in again, which costs
    about as much as the arithmetic (measured: evaluation 2x faster, peak
    memory unchanged). Elsewhere (macOS, musl) this does nothing.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        return bool(ctypes.CDLL("libc.so.6").mallopt(_M_TOP_PAD, HEAP_PAD_BYTES))
    except (OSError, AttributeError):
        return False


def column_kind(name: str) -> str:
    """Kind of an input column or model attribute: "label", "bool", "int" or "float"."""
    if name in LABELS:
        return "label"
    if name in BOOLEAN:
        return "bool"
    return "int" if name in INTEGER or name in MODEL_ATTRIBUTES else "float"


def _model_fields(m: ModelConfig) -> dict[str, float]:
    return dict(
        n_layer=m.n_layer, d_model=m.d_model, n_head=m.n_head, n_kv_head=m.kv_heads, head_dim=m.head_size,
        d_ff=m.d_ff, vocab_size=m.vocab_size, n_ctx=m.n_ctx, learned_positions=m.learned_positions,
        rmsnorm=m.rmsnorm, norm_bias=m.norm_bias, mlp_saved=MLP_ACTIVATIONS[m.mlp_activation],
        gated_mlp=m.gated_mlp, mlp_bias=m.mlp_bias, qkv_bias=m.qkv_bias, out_bias=m.out_bias,
        tied_embeddings=m.tied_embeddings, n_experts=m.n_experts, top_k=m.top_k, softmax_fp32=m.softmax_fp32,
        loss_fp32=m.loss_fp32, fused_qkv=m.fused_qkv, residual_dropout=m.residual_dropout,
        mask_buffer=m.implementation == "nanogpt", heads_divide=m.heads_divide,
        **_structure_fields(m),
    )


def _structure_fields(m: ModelConfig) -> dict[str, float]:
    """Numeric fields of the newer block structures (see ``ModelConfig``); all 0 for GPT-2 and Llama."""
    return dict(
        block_norms=m.block_norms, parallel_residual=m.norm_layout.startswith("parallel"),
        post_norms=m.norm_layout == "post", sandwich_norms=m.norm_layout == "sandwich",
        qk_norm=QK_NORMS.index(m.qk_norm), fused_gate_up=m.fused_gate_up, rotary_dim=m.rotary_dim or m.head_size,
        attention_sinks=m.attention_sinks, attn_softcap=m.attn_softcap > 0, final_softcap=m.final_softcap > 0,
        sliding_window=m.sliding_window, n_sliding_layers=m.n_sliding_layers, mla=m.mla,
        q_lora_rank=m.q_lora_rank, kv_lora_rank=m.kv_lora_rank, qk_rope_head_dim=m.qk_rope_head_dim,
        qk_nope_head_dim=m.qk_nope_head_dim, v_head_dim=m.v_head_dim,
        qk_dim=m.qk_nope_head_dim + m.qk_rope_head_dim if m.mla else m.head_size,
        v_dim=m.v_head_dim if m.mla else m.head_size,
        moe_d_ff=m.expert_d_ff, moe_layers=m.moe_layers, shared_d_ff=m.shared_d_ff,
        shared_expert_gate=m.shared_expert_gate, expert_bias=m.expert_bias, router_bias=m.router_bias,
        norm_fp32=m.norm_fp32, expert_loop=m.experts_kernel == "eager",
        # how transformers lays out attention tensors (see activations.attention_layout)
        v_view=m.family in V_VIEW_FAMILIES, out_copy=m.family in OUT_COPY_FAMILIES,
        router_fp32=m.family in ("deepseek_v2", "deepseek_v3"),
        sdpa_math=m.family == "falcon" and m.kv_heads == 1 < m.n_head,
        masked_blocks=m.family == "falcon" and m.kv_heads > 1,
    )


#: Families whose fused Q/K/V output stays alive through V (a view) while Q and K are replaced by rotary outputs.
V_VIEW_FAMILIES = ("phi3", "gpt_neox")
#: Families whose rotary embedding concatenates (head-major queries): the fused kernel's output is copied.
OUT_COPY_FAMILIES = ("phi3", "gpt_neox")


class Grid:
    """The cartesian product of input axes, in ``registry.INPUTS`` order.

    ``axes`` maps input names to lists of values; missing inputs take their
    registry default. Values are already checked (see ``spec.py``): model
    configs, catalog ids, choice names and numbers.
    """

    def __init__(self, axes: dict[str, Sequence[Any]]):
        unknown = set(axes) - set(INPUT_NAMES)
        if unknown:
            raise TsizeError(f"unknown input {sorted(unknown)[0]!r}; valid: {', '.join(INPUT_NAMES)}")
        self.values: dict[str, list] = {}
        for spec in INPUTS:
            values = list(axes.get(spec.name, [spec.default]))
            if not values:
                raise TsizeError(f"input {spec.name!r} has no values")
            self.values[spec.name] = values
        if self.values["precision"] == [None]:
            self.values["precision"] = [catalog.precision_for_dtype(DEFAULT_DTYPE)]
        self.shape = tuple(len(self.values[n]) for n in INPUT_NAMES)
        self.size = math.prod(self.shape)
        self._axis = {n: i for i, n in enumerate(INPUT_NAMES)}
        self._vectors: dict[str, tuple[int, np.ndarray]] = {}
        pad_heap()
        self._resolve()

    # -- resolution -------------------------------------------------------
    def _put(self, field: str, axis: str, values: Sequence[Any], dtype=np.float64) -> None:
        self._vectors[field] = (self._axis[axis], np.asarray(values, dtype=dtype))

    def _resolve(self) -> None:
        models = self.values["model"]
        fields = [_model_fields(m) for m in models]
        for name in fields[0]:
            dtype = bool if name in ("heads_divide",) else np.int64
            self._put(name, "model", [f[name] for f in fields], dtype)
        recipes = [catalog.lookup("precision", p) for p in self.values["precision"]]
        for name in PRECISION_BITS:
            self._put(name, "precision", [getattr(r, name) for r in recipes])
        opts = [catalog.lookup("optimizer", o) for o in self.values["optimizer"]]
        self._put("n_states", "optimizer", [o.n_states for o in opts])
        self._put("optimizer_state_bits", "optimizer", [o.state_bits for o in opts])
        self._put("step_tensor", "optimizer", [o.step_tensor for o in opts])
        self._put("optimizer_fused", "optimizer", [o.fused for o in opts], np.int64)
        gpus = [catalog.lookup("gpu", g) for g in self.values["gpu"]]
        self._put("gpu_memory_bytes", "gpu", [g.device_memory_bytes for g in gpus])
        self._put("gpu_tdp_w", "gpu", [g.tdp_w for g in gpus])
        self._put("gpu_price_usd", "gpu", [g.price_usd for g in gpus])
        self._put("gpu_cloud_usd_per_hour", "gpu", [g.cloud_usd_per_hour for g in gpus])
        peak = np.array([[g.peak_flops_per_s.get(r.peak, math.nan) for r in recipes] for g in gpus])
        attention_peak = np.array([[g.peak_flops_per_s.get(r.attention_peak, math.nan) for r in recipes]
                                   for g in gpus])
        # step-time facts: per GPU (HBM, measured matmul fraction) and per GPU x system (fabrics)
        rates = [catalog.rates(g.id) for g in gpus]
        self._put("hbm_bytes_per_s", "gpu", [g.memory_bandwidth_bytes_per_s for g in gpus])
        self._put("hbm_efficiency", "gpu", [r.hbm_efficiency for r in rates])
        self._put("kernel_s", "gpu", [r.kernel_s for r in rates])
        fraction = np.array([r.matmul_fraction for r in rates])[:, None]
        # inputs that depend on the GPU and one other axis: {axis: {field: [gpu x axis] table}}
        self._by_gpu_and: dict[str, dict[str, np.ndarray]] = {
            # the attention core runs at the recipe's attention_peak (mixed-fp8: bf16) x the same measured fraction
            "precision": {"peak_flops_per_s": peak, "matmul_flops_per_s": peak * fraction,
                          "attention_peak_flops_per_s": attention_peak,
                          "attention_matmul_flops_per_s": attention_peak * fraction}}
        systems = [[catalog.system_for(g.id, name) for name in self.values["system"]] for g in gpus]
        self._by_gpu_and["system"] = {
            field: np.array([[getattr(sy, field) for sy in row] for row in systems], dtype=np.float64)
            for field in FABRIC_FIELDS}
        self._put("flash", "attention", [FLASH_GENERATION[a] > 0 for a in self.values["attention"]], np.int64)
        self._put("flash_generation", "attention", [FLASH_GENERATION[a] for a in self.values["attention"]], np.int64)
        for i, name in enumerate(catalog.ATTENTION_FRACTIONS):
            self._put(name, "gpu", [r.attention_fractions[i] for r in rates])
        self._put("recompute", "recompute", [RECOMPUTE.index(r) for r in self.values["recompute"]], np.int64)
        for name in BOOLEAN:
            self._put(name, name, self.values[name], bool)
        for name in INTEGER:
            self._put(name, name, self.values[name], np.int64)
        for name in ("dropout", "dropout_mask_bytes", "tokens", "assumed_mfu", "pue", "usd_per_kwh",
                     "overhead_bytes", "allocator_slack", "iter_time_s"):
            self._put(name, name, self.values[name])
        self._resolve_serving(gpus)

    def _resolve_serving(self, gpus: list) -> None:
        """Serving inputs: weight and KV formats, and the matmul rate at the weight format's dtype."""
        self._put("serve", "mode", [MODES.index(m) for m in self.values["mode"]], np.int64)
        formats = [WEIGHT_FORMATS[w] for w in self.values["weight_dtype"]]
        for i, name in enumerate(("weight_bits", "weight_group_size", "weight_scale_bits", "weight_zero_bits")):
            self._put(name, "weight_dtype", [f[i] for f in formats])
        self._put("kv_bits", "kv_dtype", [KV_BITS[k] for k in self.values["kv_dtype"]])
        for name in ("context_len", "output_len", "concurrency", "block_size"):
            self._put(name, name, self.values[name], np.int64)
        self._put("gpu_memory_utilization", "gpu_memory_utilization", self.values["gpu_memory_utilization"])
        # serving computes at the weight format's dtype: its peak there times the GPU's measured matmul fraction
        ratio = [catalog.rates(g.id).matmul_fraction for g in gpus]
        self._by_gpu_and["weight_dtype"] = {"serving_matmul_flops_per_s": np.array(
            [[format_peak(g, w) * r for w in self.values["weight_dtype"]] for g, r in zip(gpus, ratio)])}

    def _along(self, vector: np.ndarray, axis: int, box: Box) -> np.ndarray:
        start, stop = box[axis]
        shape = [1] * len(box)
        shape[axis] = stop - start
        return vector[start:stop].reshape(shape)

    def resolve(self, box: Box) -> dict[str, np.ndarray]:
        """Resolved inputs of one box, each shaped to broadcast over it."""
        x = {field: self._along(vec, axis, box) for field, (axis, vec) in self._vectors.items()}
        g = self._axis["gpu"]
        g0, g1 = box[g]
        for other, tables in self._by_gpu_and.items():
            o = self._axis[other]
            o0, o1 = box[o]
            shape = [1] * len(box)
            shape[g], shape[o] = g1 - g0, o1 - o0
            for field, table in tables.items():
                part = table[g0:g1, o0:o1]
                x[field] = (part if g < o else part.T).reshape(shape)
        return x

    def evaluate(self, box: Box | None = None) -> dict[str, np.ndarray]:
        """Every output over a box (default: the whole grid), at its minimal broadcast shape."""
        return evaluate(self.resolve(box or self.full_box))

    # -- boxes ------------------------------------------------------------
    @property
    def full_box(self) -> Box:
        return tuple((0, n) for n in self.shape)

    def boxes(self, max_points: int, shape: tuple[int, ...] | None = None) -> Iterator[Box]:
        """Row-major hyper-rectangles of at most ``max_points`` (one whole trailing block at least)."""
        shape = shape or self.shape
        n = len(shape)
        k, inner = n, 1
        while k > 0 and inner * shape[k - 1] <= max_points:
            inner *= shape[k - 1]
            k -= 1
        if k == 0:
            yield tuple((0, s) for s in shape)
            return
        j = k - 1
        step = max(1, max_points // inner)
        tail = tuple((0, s) for s in shape[k:])
        for outer in itertools.product(*(range(s) for s in shape[:j])):
            head = tuple((i, i + 1) for i in outer)
            for start in range(0, shape[j], step):
                yield head + ((start, min(start + step, shape[j])),) + tail

    def sub_boxes(self, tier: str, max_points: int) -> Iterator[Box]:
        """Boxes over a tier's sub-grid: its axes in full, every other axis at its first value."""
        axes = TIERS[tier]
        shape = tuple(n if name in axes else 1 for name, n in zip(INPUT_NAMES, self.shape))
        return self.boxes(max_points, shape)

    def tier_size(self, tier: str) -> int:
        return math.prod(n for name, n in zip(INPUT_NAMES, self.shape) if name in TIERS[tier])

    def key(self, tier: str, box: Box) -> np.ndarray:
        """Row number within ``tier``'s sub-grid (row-major over its axes), shaped over the box."""
        key = np.zeros([1] * len(box), dtype=np.int64)
        stride = 1
        for name in reversed(TIERS[tier]):
            axis = self._axis[name]
            key = key + self._along(np.arange(self.shape[axis], dtype=np.int64) * stride, axis, box)
            stride *= self.shape[axis]
        return key

    # -- labels -------------------------------------------------------------
    def labels(self, name: str) -> list:
        """Display values of one input axis (model names, ids, numbers)."""
        values = self.values[name]
        if name == "model":
            return [m.name for m in values]
        return values

    def column(self, name: str, box: Box) -> np.ndarray:
        """An input axis's values over the box: category codes for labels, numbers otherwise."""
        axis = self._axis[name]
        n = self.shape[axis]
        if name in CATEGORICAL:
            vec = np.arange(n, dtype=np.uint32)
        elif name in BOOLEAN:
            vec = np.asarray(self.values[name], dtype=bool)
        elif name in INTEGER:
            vec = np.asarray(self.values[name], dtype=np.int64)
        else:
            vec = np.asarray(self.values[name], dtype=np.float64)
        return self._along(vec, axis, box)

    def frame_column(self, name: str, box: Box) -> np.ndarray:
        """An input column or model attribute of the long-form frame over the box.

        Labels (``LABELS``) come as codes into ``categories(name)``; ``seq_len``
        is the length actually used (``min(n_ctx, DEFAULT_SEQ_LEN)`` where the axis says 0).
        """
        if name == "seq_len":
            return self.effective_seq_len(box)
        if name in MODEL_ATTRIBUTES:
            vec = self.family_codes() if name == "family" else self.model_attribute(name)
            return vec[self.column("model", box)]
        return self.column(name, box)

    def categories(self, name: str) -> list[str]:
        """The labels a categorical column's codes index."""
        return self.family_labels() if name == "family" else [str(v) for v in self.labels(name)]

    def model_attribute(self, name: str) -> np.ndarray:
        """One numeric attribute per model (``registry.MODEL_ATTRIBUTES`` but family) [int64]."""
        field = {"n_kv_head": "kv_heads", "head_dim": "head_size"}.get(name, name)
        return np.asarray([getattr(m, field) for m in self.values["model"]], dtype=np.int64)

    def family_labels(self) -> list[str]:
        return sorted({m.family for m in self.values["model"]})

    def family_codes(self) -> np.ndarray:
        """Per model, the index of its family in ``family_labels``."""
        labels = self.family_labels()
        return np.asarray([labels.index(m.family) for m in self.values["model"]], dtype=np.uint32)

    def effective_seq_len(self, box: Box) -> np.ndarray:
        """T actually used: the seq_len axis, or min(n_ctx, DEFAULT_SEQ_LEN) where it is 0."""
        x = self.resolve(box)
        return sequence.effective_seq_len(seq_len=x["seq_len"], n_ctx=x["n_ctx"])

