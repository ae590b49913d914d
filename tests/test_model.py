"""Model inputs: catalog names, TOML files, Hugging Face config.json, and their errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tsize.api import size
from tsize.catalog import resolve
from tsize.model import from_hf_config, from_mapping
from tsize.validation import measure

DATA = Path(__file__).parent / "data"
HF_CONFIGS = sorted(DATA.glob("*.config.json"))


@pytest.mark.parametrize("path", HF_CONFIGS, ids=lambda p: p.name)
def test_hf_config_count_equals_transformers(path):
    """Our reading of config.json counts what transformers builds from the same file."""
    import torch
    import transformers

    config = json.loads(path.read_text())
    hf = transformers.AutoConfig.for_model(**config)
    with torch.device("meta"):
        model = transformers.AutoModelForCausalLM.from_config(hf)
    assert size(str(path))["params_total"] == sum(p.numel() for p in model.parameters())


def test_hf_config_fields():
    m = resolve(str(DATA / "mixtral-8x7b.config.json"))
    assert (m.family, m.n_experts, m.top_k, m.kv_heads, m.tied_embeddings) == ("mixtral", 8, 2, 8, False)
    q = resolve(str(DATA / "qwen2-0.5b.config.json"))
    assert q.qkv_bias and not q.out_bias and q.tied_embeddings
    g = resolve(str(DATA / "gpt2.config.json"))
    assert g.implementation == "hf" and g.mlp_activation == "gelu_new" and g.d_ff == 3072


def test_hf_gpt2_activations_match_transformers():
    """A config.json GPT-2 is measured as transformers' GPT2LMHeadModel (Python gelu_new, fp32 loss)."""
    g = resolve(str(DATA / "gpt2.config.json"))
    measured = measure.saved_bytes(g, batch_size=1, seq_len=256, dtype="bfloat16", attention="flash")
    assert size(g, batch_size=1, seq_len=256, precision="bf16")["activation_bytes"] == \
        pytest.approx(measured, rel=0.05)


def test_toml_model_file():
    m = resolve(str(DATA / "tiny-model.toml"))
    assert (m.name, m.kv_heads, m.rmsnorm, m.tied_embeddings) == ("tiny-llama", 2, True, False)
    assert size(m)["params_total"] == measure.param_count(m)


def test_unsupported_model_type():
    with pytest.raises(ValueError, match=r"unsupported model_type 'bert'; valid: gpt2, llama, mistral, mixtral, "
                                         r"qwen2"):
        from_hf_config({"model_type": "bert"})


def test_malformed_json(tmp_path):
    path = tmp_path / "config.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match=r"config\.json: malformed JSON"):
        resolve(str(path))


def test_malformed_toml(tmp_path):
    path = tmp_path / "m.toml"
    path.write_text("[model\nname=")
    with pytest.raises(ValueError, match=r"m\.toml: malformed TOML"):
        resolve(str(path))


def test_missing_file():
    with pytest.raises(ValueError, match=r"model file 'nope\.json' not found"):
        resolve("nope.json")


@pytest.mark.parametrize("fields,message", [
    (dict(n_head=5), r"n_head=5 does not divide d_model=64; valid n_head near 5: 1, 2, 4, 8, 16, 32, 64"),
    (dict(n_layer=-2), r"n_layer must be a positive integer, got -2"),
    (dict(n_kv_head=3), r"n_kv_head=3 does not divide n_head=4; valid n_kv_head near 3: 1, 2, 4"),
    (dict(family="bert"), r"unknown family 'bert'; valid: gpt2, llama, mistral, mixtral, qwen2"),
    (dict(qkv_bias="yes"), r"qkv_bias must be true or false, got 'yes'"),
    (dict(colour=1), r"unknown field 'colour'"),
    (dict(top_k=2), r"top_k=2 exceeds n_experts=1"),
])
def test_invalid_shapes(fields, message):
    base = dict(name="m", family="llama", n_layer=2, d_model=64, n_head=4, d_ff=128, vocab_size=100, n_ctx=32)
    with pytest.raises(ValueError, match=message):
        from_mapping(base | fields)


def test_unknown_model_lists_catalog():
    with pytest.raises(ValueError, match=r"unknown model 'gpt5'; valid: gpt2-tiny, gpt2, "):
        resolve("gpt5")
