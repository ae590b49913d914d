"""Shared fixtures: small model configurations that PyTorch builds in milliseconds."""

from __future__ import annotations

import shutil

import pytest
from tsize import catalog
from tsize.model import from_mapping

SMALL = dict(n_layer=2, d_model=64, n_head=4, d_ff=256, vocab_size=100, n_ctx=32)


def small(name: str, family: str, **fields):
    return from_mapping(dict(SMALL, name=name, family=family, **fields))


#: One small config per reference implementation and architecture feature.
SMALL_MODELS = {
    "nanogpt-bias": small("nanogpt-bias", "gpt2"),
    "nanogpt-nobias": small("nanogpt-nobias", "gpt2", norm_bias=False, qkv_bias=False, out_bias=False,
                            mlp_bias=False),
    "nanogpt-untied-odd": small("nanogpt-untied-odd", "gpt2", n_layer=3, d_model=48, n_head=3, d_ff=100,
                                vocab_size=97, n_ctx=24, tied_embeddings=False),
    "hf-gpt2-gelu-new": small("hf-gpt2-gelu-new", "gpt2", mlp_activation="gelu_new", implementation="hf",
                              loss_fp32=True),
    "llama-gqa": small("llama-gqa", "llama", n_kv_head=2, d_ff=176),
    "llama-mqa-biases": small("llama-mqa-biases", "llama", n_kv_head=1, d_ff=176, qkv_bias=True, out_bias=True,
                              mlp_bias=True),
    "mistral": small("mistral", "mistral", n_kv_head=2, d_ff=176),
    "qwen2-tied": small("qwen2-tied", "qwen2", n_kv_head=2, d_ff=176, tied_embeddings=True),
    "llama-head-dim": small("llama-head-dim", "llama", n_head=4, head_dim=24, n_kv_head=2, d_ff=176),
    "mixtral": small("mixtral", "mixtral", n_kv_head=2, d_ff=96, n_experts=4, top_k=2),
}


@pytest.fixture
def torch():
    """PyTorch (and transformers), or a skip with the reason: these tests measure the real model."""
    reason = "needs PyTorch and transformers to measure the real model: pip install -e '.[test]'"
    pytest.importorskip("transformers", reason=reason)
    return pytest.importorskip("torch", reason=reason)


@pytest.fixture(params=sorted(SMALL_MODELS))
def small_model(request):
    return SMALL_MODELS[request.param]


@pytest.fixture
def catalog_copy(tmp_path, monkeypatch):
    """A writable copy of catalogs/ that tsize reads (``$TSIZE_CATALOGS``), for tests that edit a catalog."""
    target = tmp_path / "catalogs"
    shutil.copytree(catalog.catalog_dir(), target)
    monkeypatch.setenv("TSIZE_CATALOGS", str(target))
    catalog.reload()
    yield target
    monkeypatch.delenv("TSIZE_CATALOGS")
    catalog.reload()
