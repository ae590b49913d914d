"""Catalogs: contents checked against sources, and the validator's errors."""

from __future__ import annotations

import math
import tomllib

import pytest
from tsize import catalog
from tsize.catalog import CatalogError


def test_at_least_twenty_gpus_with_sources_and_dates():
    gpus = catalog.gpus()
    assert len(gpus) >= 20
    entries = tomllib.loads((catalog.catalog_dir() / "gpus.toml").read_text())["gpu"]
    for entry in entries:
        assert entry["source"].strip() and entry["retrieved"]
        if "price_usd" in entry:
            assert entry["price_source"].strip() and entry["price_as_of"]
        if "cloud_usd_per_hour" in entry:
            assert entry["cloud_source"].strip() and entry["cloud_as_of"]


@pytest.mark.parametrize("gpu,peak,dtype", [
    ("nvidia_h100_sxm", 989e12, "bf16"),  # NVIDIA prints 1,979 with sparsity
    ("nvidia_h100_pcie", 756e12, "bf16"),  # the seed's "H100" guess is this part
    ("nvidia_a100_40gb_sxm", 312e12, "bf16"),
    ("nvidia_rtx_4090", 165.2e12, "bf16"),  # tensor FP32-accumulate, not the seed's 83 (shader rate)
    ("nvidia_b200_sxm", 2250e12, "bf16"),  # dense; torchtitan's 4.5e15 bug was the sparse figure
    ("amd_mi300x", 1307.4e12, "bf16"),
    ("nvidia_rtx_2070", 29.9e12, "fp16"),
])
def test_dense_peaks(gpu, peak, dtype):
    assert catalog.gpus()[gpu].peak_flops_per_s[dtype] == pytest.approx(peak)


def test_unsupported_dtypes_are_absent():
    assert "bf16" not in catalog.gpus()["nvidia_v100_32gb_sxm2"].peak_flops_per_s
    assert "bf16" not in catalog.gpus()["nvidia_rtx_2070"].peak_flops_per_s


def test_memory_units():
    gpus = catalog.gpus()
    assert gpus["nvidia_h100_sxm"].memory_bytes == 80 * 2**30  # label '80 GB' is GiB
    assert gpus["nvidia_h100_sxm"].device_memory_bytes == 81559 * 2**20  # nvidia-smi total
    assert gpus["nvidia_b300_sxm"].memory_bytes == 288e9  # decimal GB
    assert math.isnan(gpus["google_tpu_v5e"].memory_usable_bytes)


def test_seed_gpus_all_present():
    """The seed's tables name H100, A100, RTX 3090, RTX 4090, RTX 2070 (one missing from its FLOPs table)."""
    for gpu in ("nvidia_h100_sxm", "nvidia_a100_40gb_sxm", "nvidia_rtx_3090", "nvidia_rtx_4090", "nvidia_rtx_2070"):
        assert gpu in catalog.gpus()


def test_catalog_models_required():
    for name in ("gpt2-tiny", "gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl", "llama-2-7b", "llama-2-13b",
                 "llama-2-70b", "llama-3-8b", "llama-3-70b", "mistral-7b", "mixtral-8x7b"):
        assert catalog.models()[name].source


def test_precision_and_optimizer_catalogs():
    assert catalog.precision_for_dtype("bfloat16") == "amp-bf16"
    assert catalog.precision_for_dtype("float32") == "fp32"
    assert catalog.optimizers()["adamw"].n_states == 2
    with pytest.raises(ValueError, match=r"unknown dtype 'int4'; valid: float32, bfloat16, float16"):
        catalog.precision_for_dtype("int4")


def test_versions_recorded():
    versions = catalog.versions()
    assert set(versions) == {"models", "gpus", "precisions", "optimizers", "systems"}
    assert catalog.measurements()["seed-gpt2-peak-memory"]["values"][-1] == 18595
    assert all(v.startswith("2026.") for v in versions.values())


def _edit(path, old, new):
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def test_error_names_file_entry_and_field_for_empty_source(catalog_copy):
    path = catalog_copy / "gpus.toml"
    text = path.read_text()
    start = text.index('id = "nvidia_h100_sxm"')
    at = text.index("\nsource = ", start)
    end = text.index("\n", at + 1)
    path.write_text(text[:at] + '\nsource = ""' + text[end:])
    with pytest.raises(CatalogError, match=r"gpus\.toml: entry 'nvidia_h100_sxm': field 'source' must not be empty"):
        catalog.gpus()


@pytest.mark.parametrize("name,old,new,message", [
    ("gpus", "bf16_tflops = 989\n", "bf16_tflops = -989\n",
     r"gpus\.toml: entry 'nvidia_h\d+_\w+': field 'bf16_tflops' must be a positive number"),
    ("optimizers", 'id = "adam"\n', 'id = "adamw"\n', r"optimizers\.toml: entry 'adamw': duplicate id 'adamw'"),
    ("precisions", "grad_bits = 32\n", "", r"precisions\.toml: entry 'fp32': missing required field 'grad_bits'"),
    ("precisions", 'attention_peak = "bf16"\n', 'attention_peak = "bf8"\n',
     r"precisions\.toml: entry 'mixed-fp8': field 'attention_peak' is 'bf8'; valid: "),
    ("models", "n_head = 25\n", "n_head = 24\n",
     r"models\.toml: entry 'gpt2-xl': n_head=24 does not divide d_model=1600"),
    ("measurements", "values = [2269,", "values = [-2269,",
     r"measurements\.toml: entry 'seed-gpt2-peak-memory': 'value'/'values' must be positive numbers"),
])
def test_errors_name_file_entry_and_field(catalog_copy, name, old, new, message):
    _edit(catalog_copy / f"{name}.toml", old, new)
    with pytest.raises(CatalogError, match=message):
        getattr(catalog, name)()


def test_error_for_malformed_toml(catalog_copy):
    (catalog_copy / "gpus.toml").write_text("[[gpu]\nid = ")
    with pytest.raises(CatalogError, match=r"gpus\.toml: malformed TOML"):
        catalog.gpus()
