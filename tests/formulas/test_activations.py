"""Activation bytes against the bytes autograd saves for backward (saved_tensors_hooks)."""

from __future__ import annotations

import pytest
from tsize import catalog
from tsize.api import size
from tsize.validation import measure

from tests.conftest import SMALL_MODELS

PURE = {"float32": "fp32", "bfloat16": "bf16"}  # model.to(dtype): the pure recipes
#: The requirement is 5 %; the model is held to 1 % so that a wrong term anywhere shows here.
REL = 0.01
MASK_BYTES_CPU = {"float32": 4, "bfloat16": 2}  # CPU dropout saves the scaled noise in the dtype


def _estimate(model, *, batch_size, seq_len, dtype, attention, dropout=0.0):
    return size(model, batch_size=batch_size, seq_len=seq_len, precision=PURE[dtype], attention=attention,
                dropout=dropout, dropout_mask_bytes=MASK_BYTES_CPU[dtype])["activation_bytes"]


@pytest.mark.usefixtures("torch")
@pytest.mark.parametrize("name", sorted(SMALL_MODELS))
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("attention", ["naive", "flash"])
def test_within_1_percent(name, dtype, attention):
    model = SMALL_MODELS[name]
    T = min(32, model.n_ctx)
    measured = measure.saved_bytes(model, batch_size=2, seq_len=T, dtype=dtype, attention=attention)
    assert _estimate(model, batch_size=2, seq_len=T, dtype=dtype, attention=attention) == \
        pytest.approx(measured, rel=REL)


@pytest.mark.usefixtures("torch")
@pytest.mark.parametrize("name", ["nanogpt-bias", "hf-gpt2-gelu-new", "llama-gqa", "mixtral"])
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_dropout_masks_within_1_percent(name, dtype):
    """Naive attention with dropout (CPU SDPA has no dropout kernel, so flash+dropout is not measurable here)."""
    model = SMALL_MODELS[name]
    measured = measure.saved_bytes(model, batch_size=2, seq_len=32, dtype=dtype, attention="naive", dropout=0.1)
    without = measure.saved_bytes(model, batch_size=2, seq_len=32, dtype=dtype, attention="naive")
    assert measured > without
    estimate = _estimate(model, batch_size=2, seq_len=32, dtype=dtype, attention="naive", dropout=0.1)
    assert estimate == pytest.approx(measured, rel=REL)


@pytest.mark.usefixtures("torch")
@pytest.mark.parametrize("name,seq_len", [("gpt2", 1024), ("llama-2-7b", 4096), ("llama-3-8b", 2048),
                                          ("mistral-7b", 1024)])
@pytest.mark.parametrize("attention", ["naive", "flash"])
def test_full_size_models_within_1_percent(name, seq_len, attention):
    """Catalog models at their real width, measured on fake tensors (no memory)."""
    model = catalog.models()[name]
    measured = measure.saved_bytes(model, batch_size=1, seq_len=seq_len, dtype="bfloat16", attention=attention)
    estimate = _estimate(model, batch_size=1, seq_len=seq_len, dtype="bfloat16", attention=attention)
    assert estimate == pytest.approx(measured, rel=REL)


def test_hand_worked_flash_layer():
    """nanoGPT block, pure bf16, flash, per token (d=768, f=3072, 12 heads):

    ln_1 input 2d + mean/rstd 8, c_attn input 2d, qkv 6d, attention output 2d + lse 4*12,
    ln_2 input 2d + 8, c_fc input 2d, GELU input 2f, c_proj input 2f -> 16d + 4f + 64 bytes.
    """
    row = size("gpt2", batch_size=1, seq_len=1024, precision="bf16", attention="flash")
    assert row["activation_layer_bytes"] == 1024 * (16 * 768 + 4 * 3072 + 64)


def test_seed_activation_defects_fixed():
    """The seed's flash formula omits the logits and loss; tsize counts the saved log-softmax (4 B x V per token)."""
    amp = size("gpt2", batch_size=8, seq_len=1024, precision="amp-bf16", attention="flash")
    blocks = 12 * amp["activation_layer_bytes"]
    assert amp["activation_bytes"] - blocks > 8 * 1024 * 4 * 50257


def test_activations_linear_in_batch():
    one = size("llama-3-8b", batch_size=1, seq_len=2048)["activation_bytes"]
    four = size("llama-3-8b", batch_size=4, seq_len=2048)["activation_bytes"]
    per_forward = 2 * 2 * 2048 * 128  # rotary cos/sin tables, bf16, once per forward
    assert four - per_forward == pytest.approx(4 * (one - per_forward))
