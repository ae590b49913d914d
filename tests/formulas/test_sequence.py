"""The sequence length a step runs at, and whether the model takes it."""

from __future__ import annotations

import numpy as np
import pytest
from tsize.api import size
from tsize.formulas import sequence


@pytest.mark.parametrize("seq_len,n_ctx,expected", [(0, 1024, 1024), (128, 1024, 128), (4096, 1024, 4096)])
def test_effective_seq_len(seq_len, n_ctx, expected):
    assert sequence.effective_seq_len(seq_len=seq_len, n_ctx=n_ctx) == expected


@pytest.mark.parametrize("seq_len,learned,expected", [(1024, 1, True), (1025, 1, False), (1025, 0, True)])
def test_seq_len_ok(seq_len, learned, expected):
    assert bool(sequence.seq_len_ok(seq_len=seq_len, n_ctx=1024, learned_positions=learned)) is expected


def test_broadcasts_over_models():
    got = sequence.effective_seq_len(seq_len=np.array([[0], [512]]), n_ctx=np.array([1024, 4096]))
    assert got.tolist() == [[1024, 4096], [512, 512]]


def test_the_fallback_reaches_the_outputs():
    """gpt2's n_ctx is 1024 (Radford et al. 2019): seq_len 0 means 1024 in every column."""
    assert size("gpt2", seq_len=0)["seq_len"] == 1024
    assert size("gpt2", seq_len=0)["flops_forward"] == size("gpt2", seq_len=1024)["flops_forward"]
    assert not size("gpt2", seq_len=2048)["seq_len_ok"] and size("llama-2-7b", seq_len=8192)["seq_len_ok"]
