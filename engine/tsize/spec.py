"""Sweep specifications: a TOML file (or a dict) that names a grid.

::

    name = "seed"                       # identifies the sweep in the store
    description = "..."
    models = ["gpt2", "my-model.toml"]  # catalog names or model files (paths relative to the spec)

    [[family]]                          # optional generated models: the cartesian product of list fields
    prefix = "gpt"                      # names become gpt-n_layer12-d_model768 ...
    base = "gpt2"                       # catalog model whose fields the family starts from
    n_layer = [12, 24, 48]
    d_model = [768, 1024, 1600]
    head_dim = 64                       # n_head = d_model / head_dim (flagged if it does not divide)
    mlp_ratio = 4                       # d_ff = mlp_ratio * d_model

    [grid]                              # any input of the registry: a value or a list of values
    batch_size = [1, 2, 4, 8]
    dtype = ["bfloat16", "float32"]     # or precision = [...] (recipe ids)
    gpu = "all"                         # or a list of catalog ids

Every mistake (unknown key, unknown model or GPU, wrong type, empty list)
raises ``ValueError`` naming the file, the key and the valid choices, before
any work is done.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from pathlib import Path
from typing import Any

from tsize import catalog
from tsize.catalog import resolve
from tsize.errors import TsizeError
from tsize.grid import Grid
from tsize.model import MAX_SIZES, ModelConfig, from_fields, from_mapping
from tsize.registry import INPUT_NAMES, input_

#: Most models one [[family]] may generate (the cartesian product of its lists).
MAX_FAMILY_MODELS = 2**20
TOP_KEYS = ("name", "description", "models", "family", "grid")
FAMILY_KEYS = ("prefix", "base", "head_dim", "mlp_ratio")
_MODEL_FIELDS = tuple(f.name for f in dataclasses.fields(ModelConfig) if f.name not in ("name", "source",
                                                                                      "published_params"))


@dataclasses.dataclass
class Spec:
    name: str
    description: str
    text: str  # the spec as written (TOML), stored with the results
    path: str
    axes: dict[str, list]

    def grid(self) -> Grid:
        return Grid(self.axes)


def load(source: str | Path | dict[str, Any]) -> Spec:
    """A spec from a TOML file path or an already-parsed dict."""
    if isinstance(source, dict):
        import json

        return parse(source, where="spec", base=Path.cwd(), text=json.dumps(source, default=str, indent=1))
    from tsize.paths import read_toml

    path = Path(source)
    data, text = read_toml(path, "sweep spec")
    return parse(data, where=str(path), base=path.parent, text=text)


def _list(value: Any) -> list:
    return list(value) if isinstance(value, list) else [value]


def parse(data: dict[str, Any], *, where: str, base: Path, text: str) -> Spec:
    unknown = set(data) - set(TOP_KEYS)
    if unknown:
        raise TsizeError(f"{where}: unknown key {sorted(unknown)[0]!r}; valid: {', '.join(TOP_KEYS)}")
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise TsizeError(f"{where}: key 'name' must be a non-empty string")
    models = _models(data, where=where, base=base)
    grid = data.get("grid", {})
    if not isinstance(grid, dict):
        raise TsizeError(f"{where}: [grid] must be a table")
    axes: dict[str, list] = {"model": models}
    valid = [n for n in INPUT_NAMES if n != "model"] + ["dtype"]
    for key, value in grid.items():
        if key not in valid:
            raise TsizeError(f"{where}: unknown key 'grid.{key}'; valid: {', '.join(valid)}")
        values = _list(value)
        if not values:
            raise TsizeError(f"{where}: grid.{key} is empty; give at least one value")
        if key in ("gpu",) and values == ["all"]:
            values = list(catalog.gpus())
        if key == "dtype":
            if "precision" in grid:
                raise TsizeError(f"{where}: give grid.dtype or grid.precision, not both")
            try:
                axes["precision"] = [catalog.precision_for_dtype(v) for v in values]
            except ValueError as exc:
                raise TsizeError(f"{where}: grid.dtype: {exc}") from None
            continue
        spec = input_(key)
        try:
            axes[key] = [spec.check(v) for v in values]
            if spec.kind == "catalog":
                for v in values:
                    catalog.lookup(key, v)
        except ValueError as exc:
            raise TsizeError(f"{where}: grid.{key}: {exc}") from None
        if len(set(map(repr, values))) != len(values):
            raise TsizeError(f"{where}: grid.{key} repeats a value")
    return Spec(name=name, description=str(data.get("description", "")), text=text, path=where, axes=axes)


def _models(data: dict[str, Any], *, where: str, base: Path) -> list[ModelConfig]:
    models: list[ModelConfig] = []
    for item in _list(data.get("models", [])):
        if not isinstance(item, str):
            raise TsizeError(f"{where}: models: expected catalog names or file paths, got {item!r}")
        if item.endswith((".json", ".toml")):
            item = str(base / item)
        try:
            models.append(resolve(item))
        except ValueError as exc:
            raise TsizeError(f"{where}: models: {exc}") from None
    families = data.get("family", [])
    if not isinstance(families, list):
        raise TsizeError(f"{where}: family must be an array of tables: [[family]]")
    for index, family in enumerate(families):
        models.extend(_family(family, where=f"{where}: family #{index + 1}"))
    if not models:
        raise TsizeError(f"{where}: no models; give 'models' (catalog names or files) or a [[family]]")
    seen: set[str] = set()
    for m in models:
        if m.name in seen:
            raise TsizeError(f"{where}: model {m.name!r} appears twice")
        seen.add(m.name)
    return models


def _family(family: dict[str, Any], *, where: str) -> list[ModelConfig]:
    if not isinstance(family, dict):
        raise TsizeError(f"{where}: expected a table")
    valid = FAMILY_KEYS + _MODEL_FIELDS
    unknown = set(family) - set(valid)
    if unknown:
        raise TsizeError(f"{where}: unknown key {sorted(unknown)[0]!r}; valid: {', '.join(valid)}")
    fields: dict[str, Any] = {}
    if "base" in family:
        try:
            base = resolve(family["base"])
        except ValueError as exc:
            raise TsizeError(f"{where}: base: {exc}") from None
        fields = {k: v for k, v in dataclasses.asdict(base).items() if k in _MODEL_FIELDS}
    varying = {k: _list(v) for k, v in family.items() if k in _MODEL_FIELDS or k in ("head_dim", "mlp_ratio")}
    for key, values in varying.items():
        if not values:
            raise TsizeError(f"{where}: {key} is empty")
    n_models = math.prod(len(v) for v in varying.values())
    if n_models > MAX_FAMILY_MODELS:
        raise TsizeError(f"{where}: generates {n_models:,} models; at most {MAX_FAMILY_MODELS:,} per family")
    for value in varying.get("mlp_ratio", []):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 2**20:
            raise TsizeError(f"{where}: mlp_ratio must be a number > 0 and <= {2**20}, got {value!r}")
    for value in varying.get("head_dim", []) if "n_head" not in varying else []:
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise TsizeError(f"{where}: head_dim must be a positive integer, got {value!r}")
    build = from_fields if fields else from_mapping
    prefix = str(family.get("prefix", "family"))
    names = [k for k, v in varying.items() if len(v) > 1]
    out = []
    for combo in itertools.product(*varying.values()):
        entry = dict(fields)
        entry.update(zip(varying, combo))
        chosen = dict(zip(varying, combo))
        d_model = entry.get("d_model")
        sized = type(d_model) is int and 0 < d_model <= MAX_SIZES["d_model"]  # else from_mapping says what is wrong
        if "head_dim" in chosen and "n_head" not in varying and sized:
            entry["n_head"] = max(1, round(d_model / chosen["head_dim"]))
            entry["head_dim"] = 0
        if "mlp_ratio" in chosen:
            entry.pop("mlp_ratio")
            if sized:
                entry["d_ff"] = max(1, int(round(chosen["mlp_ratio"] * d_model)))
        if "n_layer" in chosen and fields:
            _scale_layer_pattern(entry, fields, chosen)
        if entry.get("n_kv_head", 0) == entry.get("n_head"):
            entry["n_kv_head"] = 0
        entry["name"] = "-".join([prefix] + [f"{k}{chosen[k]}" for k in names]) if names else prefix
        entry["source"] = f"generated by {where}"
        try:  # with a base, entry holds every field (the base's, some replaced): no defaults to merge
            out.append(build(entry, where=f"{where} ({entry['name']})", strict_heads=False))
        except ValueError as exc:
            raise TsizeError(str(exc)) from None
    return out


def _scale_layer_pattern(entry: dict[str, Any], base: dict[str, Any], chosen: dict[str, Any]) -> None:
    """Keep the base's per-layer pattern when a family varies ``n_layer``.

    Windowed layers keep their share of the blocks (Gemma 2's one in two,
    Gemma 3's five in six), rounded; first dense layers stay as many as in
    the base, at most all blocks. Explicit values in the family win.
    """
    n, n0 = entry["n_layer"], base.get("n_layer") or 1
    if not isinstance(n, int) or isinstance(n, bool) or n <= 0:
        return  # from_mapping reports the bad n_layer
    if base.get("n_sliding_layers") and "n_sliding_layers" not in chosen:
        entry["n_sliding_layers"] = max(1, min(n, round(base["n_sliding_layers"] * n / n0)))
    if base.get("first_dense_layers") and "first_dense_layers" not in chosen:
        entry["first_dense_layers"] = min(base["first_dense_layers"], n)
