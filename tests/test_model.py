"""Model inputs: catalog names, TOML files, Hugging Face config.json, and their errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tsize.api import size
from tsize.catalog import resolve
from tsize.errors import TsizeError
from tsize.model import from_hf_config, from_mapping
from tsize.validation import measure

DATA = Path(__file__).parent / "data"
HF_CONFIGS = sorted(DATA.glob("*.config.json"))


@pytest.mark.usefixtures("torch")
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


@pytest.mark.usefixtures("torch")
def test_hf_gpt2_activations_match_transformers():
    """A config.json GPT-2 is measured as transformers' GPT2LMHeadModel (Python gelu_new, fp32 loss)."""
    g = resolve(str(DATA / "gpt2.config.json"))
    measured = measure.saved_bytes(g, batch_size=1, seq_len=256, dtype="bfloat16", attention="flash")
    assert size(g, batch_size=1, seq_len=256, precision="bf16")["activation_bytes"] == \
        pytest.approx(measured, rel=0.05)


@pytest.mark.usefixtures("torch")
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


# --- issue 10: bounds, not wraps; config files of every shape ------------------------------------------

LLAMA = json.loads((DATA / "llama-2-7b.config.json").read_text())
MIXTRAL = json.loads((DATA / "mixtral-8x7b.config.json").read_text())


def _config(tmp_path, data) -> str:
    path = tmp_path / "config.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return str(path)


@pytest.mark.parametrize("base,fields,message", [
    # the minimal cases: negative parameter counts and "fits" everywhere, or int32 tracebacks
    (LLAMA, dict(hidden_size=2_000_000_000, intermediate_size=2_000_000_000),
     r"d_model 2000000000 is out of range; valid: 1 to 1,048,576"),
    (MIXTRAL, dict(num_local_experts=2147483647), r"n_experts 2147483647 is out of range; valid: 1 to 65,536"),
    (LLAMA, dict(num_hidden_layers=10**15), r"num_hidden_layers 1000000000000000 is out of range; valid: 1 to 65,536"),
    (LLAMA, dict(vocab_size=10**12), r"vocab_size 1000000000000 is out of range; valid: 1 to 67,108,864"),
    (LLAMA, dict(max_position_embeddings=2147483648), r"n_ctx 2147483648 is out of range; valid: 1 to 1,073,741,824"),
    (LLAMA, dict(num_hidden_layers=65536, hidden_size=2**20, intermediate_size=2**24, num_attention_heads=1024),
     r"about 3\.61e\+18 parameters; tsize counts models of at most 2\^53"),
])
def test_sizes_beyond_the_bounds_are_refused(tmp_path, base, fields, message):
    with pytest.raises(ValueError, match=message):
        size(_config(tmp_path, base | fields))


def test_counts_near_the_bounds_are_exact():
    """A model far beyond int32 products, inside the bounds: the count equals the hand-worked one, in Python
    integers (no wrap): 2*V*d untied + L*(4*d^2 attention + 3*d*f SwiGLU + 2*d norms) + d final norm."""
    m = from_mapping(dict(name="huge", family="llama", n_layer=8, d_model=2**20, n_head=1024, d_ff=2**22,
                          vocab_size=2**20, n_ctx=2**30))
    row = size(m, seq_len=4096)
    d, f, V, L = 2**20, 2**22, 2**20, 8
    assert row["params_total"] == 2 * V * d + L * (4 * d * d + 3 * d * f + 2 * d) + d == 142_936_529_436_672
    assert row["params_mlp"] == L * 3 * d * f
    assert row["memory_required_bytes"] > 0 and not row["fits"]


def test_nearby_divisors_do_not_enumerate_up_to_d_model():
    """Issue 10: n_embd 1,000,000,007 took 38 s to list every divisor; now the message lists a few near
    values at once (1 and the prime itself divide it; 2^20 is the largest d_model)."""
    import signal

    from tsize.model import _nearby_divisors

    def hang(signum, frame):  # a hang detector, not a speed claim: enumerating to 10^15 never ends
        raise AssertionError("divisor listing hangs")

    previous = signal.signal(signal.SIGALRM, hang)
    signal.alarm(60)
    try:
        assert _nearby_divisors(1_000_000_007, 12) == "1, 1000000007"
        assert _nearby_divisors(10**15, 7) == "1, 2, 4, 5, 8, 10, 16, 1000000000000000"
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    with pytest.raises(ValueError, match=r"n_head=7 does not divide d_model=1048576; valid n_head near 7: "
                                         r"1, 2, 4, 8, 16, 32, 1048576"):
        from_mapping(dict(name="m", family="gpt2", n_layer=1, d_model=2**20, n_head=7, d_ff=8, vocab_size=8,
                          n_ctx=8))


@pytest.mark.parametrize("text,message", [
    ("[" * 100_000, r"malformed (config|JSON)"),  # RecursionError before
    ("[1, 2]", r"expected a JSON object"),
    ("null", r"expected a JSON object"),
    ("", r"malformed JSON"),
    ("NaN", r"expected a JSON object"),
    ('{"model_type": "gpt2", "n_embd": Infinity}', r"n_embd must be an integer, got inf"),
    ('{"model_type": "gpt2", "n_embd": 1e400}', r"n_embd must be an integer, got inf"),
    ('{"model_type": "llama", "hidden_size": Infinity}', r"hidden_size must be an integer, got inf"),
])
def test_malformed_config_documents(tmp_path, text, message):
    with pytest.raises(ValueError, match=message):
        resolve(_config(tmp_path, text))


def test_config_paths_that_are_not_files(tmp_path):
    (tmp_path / "dir.json").mkdir()
    with pytest.raises(ValueError, match=r"model file '.*dir\.json' is a directory; give a file"):
        resolve(str(tmp_path / "dir.json"))
    binary = tmp_path / "binary.json"
    binary.write_bytes(b"\xff\xfe{}")
    with pytest.raises(ValueError, match=r"model file '.*binary\.json' is not UTF-8 text"):
        resolve(str(binary))


def test_string_booleans_are_refused(tmp_path):
    """Issue 10 item 2: "false" (a string) was read as tied: Llama-3-8B came out at 7,504,924,672."""
    with pytest.raises(ValueError, match=r"tie_word_embeddings"):
        size(_config(tmp_path, LLAMA | {"tie_word_embeddings": "false"}))


def test_unknown_llama_activation_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"unsupported hidden_act 'relu'; valid: silu"):
        size(_config(tmp_path, LLAMA | {"hidden_act": "relu"}))


def test_unknown_gpt2_activation_is_refused(tmp_path):
    """Issue 10 item 2: an unknown activation silently became GELU."""
    gpt2 = json.loads((DATA / "gpt2.config.json").read_text())
    with pytest.raises(ValueError, match=r"relu"):
        size(_config(tmp_path, gpt2 | {"activation_function": "relu"}))


def test_a_billion_layers_is_refused_before_any_layer_pattern_is_built():
    """Fuzz case (a hang): a Gemma 2 config with num_hidden_layers = 2^30 built a 2^30-entry layer pattern."""
    config = {"model_type": "gemma2", "hidden_size": 3584, "intermediate_size": 14336,
              "num_hidden_layers": 1073741824, "num_attention_heads": 16, "num_key_value_heads": 8, "head_dim": 256,
              "vocab_size": 256000, "sliding_window": 4096}
    with pytest.raises(TsizeError, match=r"num_hidden_layers 1073741824 is out of range; valid: 1 to 65,536"):
        from_hf_config(config)


def test_a_model_type_that_is_not_text_is_one_line():
    """Fuzz case (a traceback): ``"model_type": []`` is unhashable."""
    with pytest.raises(TsizeError, match=r"unsupported model_type \[\]; valid: "):
        from_hf_config({"model_type": [], "hidden_size": 8})
