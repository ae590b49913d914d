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


@pytest.mark.parametrize("name", ["qwen3-moe-odd", "deepseek-v3-odd", "deepseek-v2-odd", "gpt-oss-odd"])
@pytest.mark.parametrize("experts", [None, "eager"])
def test_memory_free_weights_measure_what_real_weights_do(name, experts, monkeypatch):
    """Zero weights that take one slice of memory (``_zero_weights``), one parameter per expert
    (``_split_experts``) and gradients freed as they come (``_drop_grads``) change neither the saved bytes nor
    the FLOPs: both equal the measurement with real, zeroed weights (initialised, then ``_init_small``)."""
    from tsize.model import from_hf_config

    from tests.test_hfconfig import ODD

    m = from_hf_config(ODD[name], name=name)
    kw = dict(batch_size=2, seq_len=9)
    low = (measure.saved_bytes(m, **kw, dtype="float32", attention="naive", experts=experts),
           measure.saved_bytes(m, **kw, dtype="bfloat16", attention="naive", experts=experts), measure.flops(m, **kw))
    real_build = measure.build
    monkeypatch.setattr(measure, "build", lambda *a, **k: real_build(*a, **dict(k, init=True)))
    monkeypatch.setattr(measure, "_zero_weights", measure._init_small)
    monkeypatch.setattr(measure, "_split_experts", lambda model: None)
    monkeypatch.setattr(measure, "_drop_grads", lambda model: None)
    real = (measure.saved_bytes(m, **kw, dtype="float32", attention="naive", experts=experts),
            measure.saved_bytes(m, **kw, dtype="bfloat16", attention="naive", experts=experts), measure.flops(m, **kw))
    assert low == real
