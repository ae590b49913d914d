"""The measuring harness itself: fake tensors see what real tensors see."""

from __future__ import annotations

import pytest
from tsize.validation import measure

from tests.conftest import SMALL_MODELS

pytestmark = pytest.mark.usefixtures("torch")


def test_fake_and_real_tensors_agree():
    """The fake-tensor session (and its Hugging Face mask patch) sees what real tensors see."""
    import contextlib

    import torch

    model = SMALL_MODELS["llama-gqa"]
    fake = measure.saved_bytes(model, batch_size=2, seq_len=32, dtype="bfloat16", attention="flash")
    saved = {}
    with torch.device("cpu"):
        real_model = measure.build(model, attention="flash", dtype="bfloat16")
        idx = torch.arange(64).view(2, 32) % model.vocab_size
    params = {p.untyped_storage()._cdata for p in real_model.parameters()}

    def pack(t):
        key = t.untyped_storage()._cdata
        if key not in params:
            saved[key] = t.untyped_storage().nbytes()
        return t

    with contextlib.ExitStack() as stack:
        stack.enter_context(torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t))
        real_model(idx, idx.clone())
    assert sum(saved.values()) == fake
