"""The sequence length a step runs at, and whether the model can take it [tokens].

A sweep's ``seq_len`` axis may say 0, meaning "the model's context length";
this is the one place that fallback is written down.
"""

from __future__ import annotations

import numpy as np

#: T when the seq_len axis says 0: the model's context, capped at this many tokens [tokens] (a newcomer expects a
#: training length, not Mistral-Nemo's 1,024,000 positions).
DEFAULT_SEQ_LEN = 4096


def effective_seq_len(*, seq_len, n_ctx, default_cap=DEFAULT_SEQ_LEN):
    """Sequence length actually used [tokens]: ``seq_len``, or ``min(n_ctx, default_cap)`` where ``seq_len`` is 0.

    >>> int(effective_seq_len(seq_len=0, n_ctx=1024)), int(effective_seq_len(seq_len=128, n_ctx=1024))
    (1024, 128)
    >>> int(effective_seq_len(seq_len=0, n_ctx=131072))
    4096
    """
    return np.where(np.asarray(seq_len) > 0, seq_len, np.minimum(n_ctx, default_cap))


def seq_len_ok(*, seq_len, n_ctx, learned_positions):
    """Whether a model takes ``seq_len`` tokens [bool]: ``T <= n_ctx`` where positions are learned.

    A learned position table (GPT-2) has ``n_ctx`` rows, so a longer sequence
    cannot be embedded (nanoGPT ``model.py`` asserts ``t <= block_size``);
    rotary positions (LLaMA) have no table and no such limit.

    >>> bool(seq_len_ok(seq_len=2048, n_ctx=1024, learned_positions=1))
    False
    >>> bool(seq_len_ok(seq_len=2048, n_ctx=1024, learned_positions=0))
    True
    """
    return (np.asarray(seq_len) <= np.asarray(n_ctx)) | (np.asarray(learned_positions) == 0)
