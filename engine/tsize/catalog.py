"""Load and validate the catalogs in ``catalogs/``.

One loader per catalog, one validator for all: required fields present, ids
unique, numbers positive, ``source`` non-empty, ``retrieved`` a date. Errors
name the file, the entry and the field. Catalog numbers are converted to
base units here (bytes, FLOP/s), once.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import hashlib
import math
import os
import tomllib
from pathlib import Path
from typing import Any

from tsize import model as model_mod
from tsize.errors import TsizeError
from tsize.model import ModelConfig
from tsize.registry import KV_DTYPES, PRECISION_BITS, WEIGHT_DTYPES

GIB = 2**30
MIB = 2**20
GB = 10**9
TERA = 1e12

#: Dense peak columns of the GPU catalog, by the ``peak`` names precision recipes use.
PEAK_FIELDS = {"fp32": "fp32_tflops", "tf32": "tf32_tflops", "bf16": "bf16_tflops", "fp16": "fp16_tflops",
               "fp8": "fp8_tflops", "int8": "int8_tops"}


def catalog_dir() -> Path:
    """``$TSIZE_CATALOGS``, else ``catalogs/`` beside the package (checkout), else inside it (wheel)."""
    env = os.environ.get("TSIZE_CATALOGS")
    if env:
        return Path(env)
    here = Path(__file__).resolve().parent
    for candidate in (here.parent.parent / "catalogs", here / "catalogs"):
        if candidate.is_dir():
            return candidate
    raise TsizeError(f"no catalogs/ folder beside {here}; set TSIZE_CATALOGS")


@dataclasses.dataclass(frozen=True)
class Gpu:
    id: str
    vendor: str
    name: str
    memory_bytes: float  # the vendor's label, in its real unit
    memory_usable_bytes: float  # nvidia-smi/rocm-smi total, NaN if unknown
    peak_flops_per_s: dict  # {"bf16": 9.89e14, ...} dense, FLOP/s
    memory_bandwidth_bytes_per_s: float
    tdp_w: float
    price_usd: float
    cloud_usd_per_hour: float
    source: str
    interconnect_bytes_per_s: float = math.nan  # scale-up link rate per GPU, bidirectional aggregate, B/s

    @property
    def device_memory_bytes(self) -> float:
        """What the engine plans with: the reported total when sourced, else the label."""
        return self.memory_usable_bytes if math.isfinite(self.memory_usable_bytes) else self.memory_bytes


@dataclasses.dataclass(frozen=True)
class Precision:
    id: str
    dtype: str
    peak: str
    attention_peak: str  # the dense peak the attention core (Q.K^T, P.V) runs at; ``peak`` unless stated
    param_bits: float
    grad_bits: float
    master_bits: float
    state_bits: float
    copy_bits: float
    compute_bits: float
    residual_bits: float
    softmax_bits: float
    loss_bits: float
    default_for: str | None
    description: str
    source: str


@dataclasses.dataclass(frozen=True)
class Optimizer:
    id: str
    n_states: int
    state_bits: float  # NaN: follow the precision recipe
    step_tensor: bool
    fused: bool  # one pass over the state per step (False: one pass per element-wise op, eager per-parameter loop)
    description: str
    source: str


@dataclasses.dataclass(frozen=True)
class System:
    """A scale-up domain and its scale-out network, in base units (B/s, s)."""
    id: str
    name: str
    gpus: tuple
    default: bool
    scaleup_size: int
    scaleup_bytes_per_s: float  # achievable all-reduce bus bandwidth in the domain, per GPU
    scaleup_latency_s: float
    scaleout_bytes_per_s: float  # achievable, per GPU
    scaleout_latency_s: float
    source: str


@dataclasses.dataclass(frozen=True)
class Rates:
    """What one GPU achieves: measured matmul fraction of peak, HBM efficiency, shortest kernel time [s].

    ``attention_fractions``: the fraction of the dense peak that FlashAttention-1, -2 and -3 reach forward and
    backward on this GPU (NaN where none was published: the attention core then takes the GEMM roofline).
    """
    matmul_fraction: float
    hbm_efficiency: float
    kernel_s: float
    attention_fractions: tuple[float, float, float] = (math.nan, math.nan, math.nan)


class CatalogError(TsizeError):
    """A catalog file is malformed; the message names file, entry and field."""


def _load(name: str, table: str) -> tuple[Path, list[dict[str, Any]], str]:
    path = catalog_dir() / f"{name}.toml"
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise CatalogError(f"{path}: catalog file not found") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"{path}: malformed TOML: {exc}") from None
    entries = data.get(table)
    if not isinstance(entries, list) or not entries:
        raise CatalogError(f"{path}: expected one or more [[{table}]] tables")
    if not isinstance(data.get("version"), str):
        raise CatalogError(f"{path}: missing top-level field 'version'")
    return path, entries, data["version"]


def _check(path: Path, entries: list[dict], key: str, required: dict[str, type], positive: tuple[str, ...],
           optional_positive: tuple[str, ...] = (), nonnegative: tuple[str, ...] = ()) -> None:
    seen: set[str] = set()
    for index, entry in enumerate(entries):
        ident = entry.get(key)
        where = f"{path}: entry {ident!r}" if ident else f"{path}: entry #{index + 1}"
        for field, kind in required.items():
            if field not in entry:
                raise CatalogError(f"{where}: missing required field {field!r}")
            value = entry[field]
            if kind is float:
                ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            else:
                ok = isinstance(value, kind)
            if not ok:
                raise CatalogError(f"{where}: field {field!r} must be {kind.__name__}, got {value!r}")
        if ident in seen:
            raise CatalogError(f"{where}: duplicate {key} {ident!r}")
        seen.add(ident)
        if not str(entry.get("source", "")).strip():
            raise CatalogError(f"{where}: field 'source' must not be empty")
        if not isinstance(entry.get("retrieved"), dt.date):
            raise CatalogError(f"{where}: field 'retrieved' must be a date (YYYY-MM-DD), got {entry.get('retrieved')!r}")
        for field in positive + tuple(f for f in optional_positive if f in entry):
            value = entry.get(field)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
                raise CatalogError(f"{where}: field {field!r} must be a positive number, got {value!r}")
        for field in nonnegative:
            value = entry.get(field)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
                raise CatalogError(f"{where}: field {field!r} must be a number >= 0, got {value!r}")


@functools.cache
def models() -> dict[str, ModelConfig]:
    """The model catalog, by name."""
    path, entries, _ = _load("models", "model")
    _check(path, entries, "name", {"name": str, "family": str}, ("n_layer", "d_model", "n_head", "d_ff",
                                                                  "vocab_size", "n_ctx"),
           optional_positive=("n_kv_head", "head_dim", "n_experts", "top_k", "published_params"))
    out = {}
    for entry in entries:
        if "published_params" in entry and not entry.get("published_params_source"):
            raise CatalogError(f"{path}: entry {entry['name']!r}: published_params needs published_params_source")
        try:
            out[entry["name"]] = model_mod.from_mapping(entry, where=f"{path}: entry {entry['name']!r}")
        except ValueError as exc:
            raise CatalogError(str(exc)) from None
    return out


@functools.cache
def gpus() -> dict[str, Gpu]:
    """The accelerator catalog, by id, in base units."""
    path, entries, _ = _load("gpus", "gpu")
    _check(path, entries, "id", {"id": str, "vendor": str, "name": str}, (),
           optional_positive=("memory_gib", "memory_gb", "memory_usable_mib", "memory_bandwidth_tb_s", "tdp_w",
                              "interconnect_gb_s",
                              "price_usd", "cloud_usd_per_hour",
                              *PEAK_FIELDS.values()))
    out = {}
    for entry in entries:
        where = f"{path}: entry {entry['id']!r}"
        units = [k for k in ("memory_gib", "memory_gb") if k in entry]
        if len(units) != 1:
            raise CatalogError(f"{where}: give exactly one of 'memory_gib', 'memory_gb'")
        for priced, source in (("price_usd", "price_source"), ("cloud_usd_per_hour", "cloud_source")):
            if priced in entry and not str(entry.get(source, "")).strip():
                raise CatalogError(f"{where}: field {priced!r} needs a non-empty {source!r}")
        peaks = {k: entry[f] * TERA for k, f in PEAK_FIELDS.items() if f in entry}
        if "bf16" not in peaks and "fp16" not in peaks:
            raise CatalogError(f"{where}: needs a dense 'bf16_tflops' or 'fp16_tflops'")
        label = entry["memory_gib"] * GIB if "memory_gib" in entry else entry["memory_gb"] * GB
        out[entry["id"]] = Gpu(
            id=entry["id"], vendor=entry["vendor"], name=entry["name"], memory_bytes=float(label),
            memory_usable_bytes=float(entry["memory_usable_mib"] * MIB) if "memory_usable_mib" in entry else math.nan,
            peak_flops_per_s=peaks,
            memory_bandwidth_bytes_per_s=entry.get("memory_bandwidth_tb_s", math.nan) * TERA,
            tdp_w=float(entry.get("tdp_w", math.nan)), price_usd=float(entry.get("price_usd", math.nan)),
            cloud_usd_per_hour=float(entry.get("cloud_usd_per_hour", math.nan)), source=entry["source"],
            interconnect_bytes_per_s=entry.get("interconnect_gb_s", math.nan) * GB,
        )
    return out


_BITS = PRECISION_BITS
DTYPES = ("float32", "bfloat16", "float16")


@functools.cache
def precisions() -> dict[str, Precision]:
    """The precision recipes, by id."""
    path, entries, _ = _load("precisions", "precision")
    required = {"id": str, "dtype": str, "peak": str, "description": str} | {b: float for b in _BITS}
    _check(path, entries, "id", required, ("param_bits", "grad_bits", "compute_bits", "residual_bits",
                                           "softmax_bits", "loss_bits", "state_bits"),
           nonnegative=("master_bits", "copy_bits"))
    out = {}
    defaults = set()
    for entry in entries:
        where = f"{path}: entry {entry['id']!r}"
        if entry["dtype"] not in DTYPES:
            raise CatalogError(f"{where}: field 'dtype' is {entry['dtype']!r}; valid: {', '.join(DTYPES)}")
        for field in ("peak", "attention_peak"):
            value = entry.get(field, entry["peak"])
            if value not in PEAK_FIELDS:
                raise CatalogError(f"{where}: field {field!r} is {value!r}; valid: {', '.join(PEAK_FIELDS)}")
        default_for = entry.get("default_for")
        if default_for is not None:
            if default_for != entry["dtype"] or default_for in defaults:
                raise CatalogError(f"{where}: field 'default_for' must be its own dtype, once per dtype")
            defaults.add(default_for)
        out[entry["id"]] = Precision(
            id=entry["id"], dtype=entry["dtype"], peak=entry["peak"],
            attention_peak=entry.get("attention_peak", entry["peak"]), default_for=default_for,
            description=entry["description"], source=entry["source"], **{b: float(entry[b]) for b in _BITS},
        )
    if defaults != set(DTYPES):
        raise CatalogError(f"{path}: every dtype needs one recipe with default_for; missing "
                           f"{', '.join(sorted(set(DTYPES) - defaults))}")
    return out


@functools.cache
def optimizers() -> dict[str, Optimizer]:
    """The optimizers, by id."""
    path, entries, _ = _load("optimizers", "optimizer")
    _check(path, entries, "id", {"id": str, "description": str, "step_tensor": bool}, (),
           optional_positive=("state_bits",), nonnegative=("n_states",))
    for e in entries:
        if not isinstance(e.get("fused", True), bool):
            raise CatalogError(f"{path}: entry {e['id']!r}: field 'fused' must be true or false, got {e['fused']!r}")
    return {
        e["id"]: Optimizer(id=e["id"], n_states=int(e["n_states"]), state_bits=float(e.get("state_bits", math.nan)),
                           step_tensor=e["step_tensor"], fused=e.get("fused", True), description=e["description"],
                           source=e["source"])
        for e in entries
    }


@functools.cache
def measurements() -> dict[str, dict[str, Any]]:
    """Reference measurements (``catalogs/measurements.toml``), by id, validated."""
    path, entries, _ = _load("measurements", "measurement")
    _check(path, entries, "id", {"id": str, "quantity": str, "model": str, "unit": str, "setting": str}, ())
    for entry in entries:
        where = f"{path}: entry {entry['id']!r}"
        values = entry.get("values", [entry.get("value")])
        if not values or any(not isinstance(v, (int, float)) or isinstance(v, bool) or v <= 0 for v in values):
            raise CatalogError(f"{where}: 'value'/'values' must be positive numbers")
        if "values" in entry and len(entry["values"]) != len(entry.get("batch_size", [])):
            raise CatalogError(f"{where}: 'values' and 'batch_size' must have the same length")
    return {e["id"]: e for e in entries}


#: Configuration items of a published serving measurement (issue 13: "exact batch, TP, precision, input and
#: output lengths") and "metric" (what the figure measures): the values ``unstated`` may list.
SERVING_ITEMS = ("batch", "tp", "precision", "input_len", "output_len", "metric")
#: Published serving metrics, in their published unit (catalogs/published_serving.toml's header).
SERVING_METRICS = ("ttft_ms", "tpot_ms", "request_latency_ms", "output_tokens_per_s", "output_tokens_per_s_per_gpu")
_SERVING_ROW = {"model": str, "gpu": str, "tp": int, "batch": int, "input_len": int, "output_len": int,
                "weight_dtype": str, "kv_dtype": str, "metric": str, "value": float}


@functools.cache
def published_serving() -> tuple[dict[str, Any], ...]:
    """``catalogs/published_serving.toml``: one dict per set, each row merged with the set's defaults, validated.

    Every set gets ``exact`` (True when ``unstated`` is empty: batch, TP, precision, input and output lengths
    and the metric all published) and ``rows`` (complete dicts). Errors name the file, the set, the row and
    the field.
    """
    path, entries, _ = _load("published_serving", "set")
    _check(path, entries, "id", {"id": str, "sample": str, "engine": str, "unstated": list,
                                 "first_token_from_prefill": bool, "rows": list}, ())
    known_gpus = gpus()
    out = []
    for entry in entries:
        where = f"{path}: set {entry['id']!r}"
        if entry["sample"] not in ("in", "out"):
            raise CatalogError(f"{where}: field 'sample' is {entry['sample']!r}; valid: in, out")
        for item in entry["unstated"]:
            if item not in SERVING_ITEMS:
                raise CatalogError(f"{where}: field 'unstated' has {item!r}; valid: {', '.join(SERVING_ITEMS)}")
        if entry["unstated"] and not str(entry.get("unstated_why", "")).strip():
            raise CatalogError(f"{where}: field 'unstated_why' must say what is missing when 'unstated' is not empty")
        models_ = entry.get("models", {})
        if not isinstance(models_, dict) or not all(isinstance(m, dict) for m in models_.values()):
            raise CatalogError(f"{where}: field 'models' must be a table of model tables")
        if not entry["rows"]:
            raise CatalogError(f"{where}: field 'rows' must list one or more cases")
        defaults = {k: v for k, v in entry.items() if k in _SERVING_ROW}
        rows = []
        for index, raw in enumerate(entry["rows"], start=1):
            at = f"{where}: row {index}"
            if not isinstance(raw, dict):
                raise CatalogError(f"{at}: must be an inline table, got {raw!r}")
            unknown = set(raw) - set(_SERVING_ROW)
            if unknown:
                raise CatalogError(f"{at}: unknown field {sorted(unknown)[0]!r}; valid: {', '.join(_SERVING_ROW)}")
            row = defaults | raw
            for field, kind in _SERVING_ROW.items():
                if field not in row:
                    raise CatalogError(f"{at}: missing field {field!r} (on the row or the set)")
                value = row[field]
                if kind is str:
                    ok = isinstance(value, str) and bool(value)
                else:
                    ok = (isinstance(value, int) if kind is int else isinstance(value, (int, float))) \
                        and not isinstance(value, bool) and value > 0
                if not ok:
                    want = {str: "a non-empty string", int: "a positive integer", float: "a positive number"}[kind]
                    raise CatalogError(f"{at}: field {field!r} must be {want}, got {value!r}")
            for field, valid in (("gpu", tuple(known_gpus)), ("weight_dtype", WEIGHT_DTYPES),
                                 ("kv_dtype", KV_DTYPES), ("metric", SERVING_METRICS)):
                if row[field] not in valid:
                    raise CatalogError(f"{at}: field {field!r} is {row[field]!r}; valid: {', '.join(valid)}")
            if row["model"] not in models_ and row["model"] not in models():
                raise CatalogError(f"{at}: field 'model' is {row['model']!r}: neither in the set's 'models' nor "
                                   f"in catalogs/models.toml")
            rows.append(row)
        out.append(dict(entry, rows=rows, models=models_, exact=not entry["unstated"]))
    return tuple(out)


_SYSTEM_POSITIVE = ("scaleup_size", "scaleup_gb_s", "scaleup_latency_us", "scaleout_gb_s", "scaleout_latency_us")


def _fraction(path: Path, where: str, entry: dict, field: str) -> None:
    value = entry.get(field)
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 < value <= 1:
        raise CatalogError(f"{path}: {where}: field {field!r} must be a number in (0, 1], got {value!r}")


#: Optional [[accelerator]] fields: fraction of the dense peak FlashAttention-1/-2/-3 reach, forward + backward.
ATTENTION_FRACTIONS = ("flash1_fraction", "flash2_fraction", "flash3_fraction")


@functools.cache
def _systems_file() -> tuple[dict[str, Any], dict[str, Rates], dict[str, System]]:
    """``catalogs/systems.toml``: defaults, per-GPU rates and systems, validated, in base units."""
    path, entries, _ = _load("systems", "system")
    data = tomllib.loads(path.read_text())
    defaults = data.get("defaults")
    if not isinstance(defaults, dict):
        raise CatalogError(f"{path}: missing [defaults] table")
    for field in ("matmul_fraction", "hbm_efficiency", "scaleup_efficiency", "scaleout_efficiency"):
        _fraction(path, "[defaults]", defaults, field)
    _check(path, [dict(defaults, id="defaults")], "id", {}, ("half_bandwidth_mib", "kernel_launch_us"))
    accels = data.get("accelerator", [])
    if not isinstance(accels, list):
        raise CatalogError(f"{path}: [[accelerator]] must be an array of tables")
    _check(path, accels, "gpu", {"gpu": str}, ("matmul_bf16_tflops",), optional_positive=("kernel_launch_us",))
    known = gpus()
    rates: dict[str, Rates] = {}
    for entry in accels:
        where = f"entry {entry['gpu']!r}"
        if entry["gpu"] not in known:
            raise CatalogError(f"{path}: {where}: unknown gpu; valid: {', '.join(known)}")
        peak = known[entry["gpu"]].peak_flops_per_s.get("bf16", math.nan)
        fraction = entry["matmul_bf16_tflops"] * TERA / peak
        if not 0 < fraction <= 1:
            raise CatalogError(f"{path}: {where}: field 'matmul_bf16_tflops' must be > 0 and <= the bf16 peak")
        if "hbm_efficiency" in entry:
            _fraction(path, where, entry, "hbm_efficiency")
        for field in ATTENTION_FRACTIONS:
            if field in entry:
                _fraction(path, where, entry, field)
        rates[entry["gpu"]] = Rates(fraction, float(entry.get("hbm_efficiency", defaults["hbm_efficiency"])),
                                    float(entry.get("kernel_launch_us", defaults["kernel_launch_us"])) * 1e-6,
                                    tuple(float(entry.get(f, math.nan)) for f in ATTENTION_FRACTIONS))
    _check(path, entries, "id", {"id": str, "name": str, "gpus": list}, _SYSTEM_POSITIVE,
           optional_positive=("scaleup_busbw_gb_s",))
    systems: dict[str, System] = {}
    claimed: dict[str, str] = {}
    for entry in entries:
        where = f"entry {entry['id']!r}"
        if entry["id"] == "auto":
            raise CatalogError(f"{path}: {where}: 'auto' is reserved (the GPU's default system)")
        size = entry["scaleup_size"]
        if not isinstance(size, int):
            raise CatalogError(f"{path}: {where}: field 'scaleup_size' must be an integer, got {size!r}")
        if "scaleout_efficiency" in entry:
            _fraction(path, where, entry, "scaleout_efficiency")
        for gpu in entry["gpus"]:
            if gpu not in known:
                raise CatalogError(f"{path}: {where}: unknown gpu {gpu!r} in 'gpus'; valid: {', '.join(known)}")
            if gpu in claimed:
                raise CatalogError(f"{path}: {where}: gpu {gpu!r} is already the default of {claimed[gpu]!r}")
            claimed[gpu] = entry["id"]
        busbw = entry.get("scaleup_busbw_gb_s", entry["scaleup_gb_s"] * defaults["scaleup_efficiency"])
        systems[entry["id"]] = System(
            id=entry["id"], name=entry["name"], gpus=tuple(entry["gpus"]), default=entry.get("default") is True,
            scaleup_size=size, scaleup_bytes_per_s=busbw * GB, scaleup_latency_s=entry["scaleup_latency_us"] * 1e-6,
            scaleout_bytes_per_s=entry["scaleout_gb_s"] * GB * entry.get("scaleout_efficiency",
                                                                        defaults["scaleout_efficiency"]),
            scaleout_latency_s=entry["scaleout_latency_us"] * 1e-6, source=entry["source"])
    if sum(s.default for s in systems.values()) != 1:
        raise CatalogError(f"{path}: exactly one [[system]] needs default = true")
    return defaults, rates, systems


def systems() -> dict[str, System]:
    """The systems catalog, by id."""
    return _systems_file()[2]


def system_defaults() -> dict[str, Any]:
    """The ``[defaults]`` table of ``catalogs/systems.toml`` (fractions, ``half_bandwidth_mib``)."""
    return _systems_file()[0]


def rates(gpu: str) -> Rates:
    """Measured matmul fraction, HBM efficiency and kernel time of one GPU (the catalog defaults where unmeasured)."""
    defaults, table, _ = _systems_file()
    return table.get(gpu, Rates(float(defaults["matmul_fraction"]), float(defaults["hbm_efficiency"]),
                                float(defaults["kernel_launch_us"]) * 1e-6))


def system_for(gpu: str, system: str = "auto") -> System:
    """The system a point runs on: ``system`` by id; for "auto" the one listing ``gpu``, else one derived.

    A GPU no system lists gets the default system (``default = true``) with its scale-up rate replaced by
    the GPU's own ``interconnect_gb_s`` (catalogs/gpus.toml, bidirectional: half per direction) times
    ``[defaults] scaleup_efficiency``: an NVLink, xGMI or ICI part keeps its fast fabric, a PCIe card gets
    its PCIe link.
    """
    table = systems()
    if system != "auto":
        if system not in table:
            raise TsizeError(f"unknown system {system!r}; valid: auto, {', '.join(table)}")
        return table[system]
    listed = next((s for s in table.values() if gpu in s.gpus), None)
    if listed is not None:
        return listed
    fallback = next(s for s in table.values() if s.default)
    link = gpus()[gpu].interconnect_bytes_per_s if gpu in gpus() else math.nan
    if not math.isfinite(link):
        return fallback
    return dataclasses.replace(fallback, id=f"{fallback.id}+{gpu}", gpus=(gpu,), scaleup_bytes_per_s=link / 2 *
                               system_defaults()["scaleup_efficiency"],
                               source=f"{fallback.source}; scale-up: catalogs/gpus.toml {gpu} interconnect_gb_s / 2 "
                                      f"x [defaults] scaleup_efficiency")


def precision_for_dtype(dtype: str) -> str:
    """The recipe ``--dtype`` selects (nanoGPT's conventions: bf16/fp16 mean autocast)."""
    for recipe in precisions().values():
        if recipe.default_for == dtype:
            return recipe.id
    raise TsizeError(f"unknown dtype {dtype!r}; valid: {', '.join(DTYPES)}")


def versions() -> dict[str, str]:
    """Each catalog's version and a short hash of its file, recorded with every stored sweep."""
    out = {}
    for name, table in (("models", "model"), ("gpus", "gpu"), ("precisions", "precision"),
                        ("optimizers", "optimizer"), ("systems", "system")):
        path, _, version = _load(name, table)
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
        out[name] = f"{version} ({digest})"
    return out


def reload() -> None:
    """Forget loaded catalogs (after ``$TSIZE_CATALOGS`` or a file changed)."""
    for loader in (models, gpus, precisions, optimizers, measurements, published_serving, _systems_file):
        loader.cache_clear()


def lookup(kind: str, key: str) -> Any:
    """One catalog entry by id; a ValueError naming the valid ids otherwise."""
    if kind == "system":
        return system_for("", key) if key != "auto" else "auto"
    table = {"model": models, "gpu": gpus, "precision": precisions, "optimizer": optimizers}[kind]()
    if key not in table:
        raise TsizeError(f"unknown {kind} {key!r}; valid: {', '.join(table)}")
    return table[key]


def resolve(spec: str | Path | ModelConfig, catalog: dict[str, ModelConfig] | None = None) -> ModelConfig:
    """A model from a catalog name, a ``.toml`` file, or a Hugging Face ``.json`` config."""
    if isinstance(spec, ModelConfig):  # built in code: the same checks as every loader (bounds included)
        return spec.validated(strict_heads=False)
    text = str(spec)
    if text.endswith(".json"):
        return model_mod.from_hf_file(text)  # a regular file, or an error saying what it is
    if text.endswith(".toml"):
        return model_mod.from_toml(text)
    if catalog is None:
        catalog = models()
    if text in catalog:
        return catalog[text]
    raise TsizeError(
        f"unknown model {text!r}; valid: {', '.join(catalog)} (or a .toml model file or a Hugging Face config.json)"
    )
