"""Matmul FLOPs by component for one iteration of ``B`` sequences of ``T`` tokens.

Conventions (as in the seed notebook, Kaplan et al. 2020 Table 1 and
``torch.utils.flop_counter.FlopCounterMode``):

* a matrix product ``(m x k) @ (k x n)`` costs ``2*m*k*n`` FLOP (a
  multiply-add is two FLOP); element-wise work (norms, softmax, activations,
  bias additions, the loss) is not counted;
* attention scores and attention-over-values are counted over the full
  ``T x T`` matrix, masked or not, unless ``causal`` is true, in which case
  they are halved (the accounting used for causal MFU, e.g. FlashAttention-2
  benchmarks);
* the backward pass costs twice the forward (gradients with respect to both
  the input and the weight of every matmul).

All results are float64 [FLOP], since totals overflow int64.
"""

from __future__ import annotations

import numpy as np


def _f(x):
    return np.asarray(x, dtype=np.float64)


def qkv(*, tokens, d_model, n_head, n_kv_head, head_dim):
    """Query, key and value projections [FLOP]: ``2*BT*d*(H + 2K)*hd``."""
    return 2 * _f(tokens) * d_model * ((_f(n_head) + 2 * _f(n_kv_head)) * head_dim)


def attention_scores(*, batch_size, seq_len, n_head, head_dim, causal=False):
    """Scores ``Q @ K^T`` over all heads [FLOP]: ``2*B*H*T*T*hd``, halved when causal."""
    return 2 * _f(batch_size) * n_head * _f(seq_len) ** 2 * head_dim * (1 - 0.5 * _f(causal))


def attention_values(*, batch_size, seq_len, n_head, head_dim, causal=False):
    """Attention over values ``P @ V`` [FLOP]: ``2*B*H*T*T*hd``, halved when causal."""
    return attention_scores(batch_size=batch_size, seq_len=seq_len, n_head=n_head, head_dim=head_dim,
                            causal=causal)


def attention_out(*, tokens, d_model, n_head, head_dim):
    """Attention output projection [FLOP]: ``2*BT*(H*hd)*d``."""
    return 2 * _f(tokens) * (_f(n_head) * head_dim) * d_model


def mlp(*, tokens, d_model, d_ff, gated_mlp, top_k):
    """MLP, or the ``k`` experts each token visits [FLOP]: ``2*BT*(2 + gated)*d*f*k``."""
    return 2 * _f(tokens) * (2 + _f(gated_mlp)) * d_model * _f(d_ff) * top_k


def router(*, tokens, d_model, n_experts):
    """MoE router logits [FLOP]: ``2*BT*d*E`` (0 for dense models)."""
    return 2 * _f(tokens) * d_model * _f(n_experts) * (_f(n_experts) > 1)


def lm_head(*, tokens, d_model, vocab_size):
    """Projection to vocabulary logits [FLOP]: ``2*BT*d*V`` (counted whether or not tied)."""
    return 2 * _f(tokens) * d_model * _f(vocab_size)


def layer(*, qkv, attention_scores, attention_values, attention_out, mlp, router):
    """One transformer block, forward [FLOP]."""
    return qkv + attention_scores + attention_values + attention_out + mlp + router


def forward(*, layer, n_layer, lm_head):
    """Forward pass [FLOP]: ``L`` blocks plus the LM head."""
    return _f(n_layer) * layer + lm_head


def backward(*, forward):
    """Backward pass [FLOP]: ``2 x`` forward (input and weight gradients of every matmul)."""
    return 2 * forward


def iteration(*, forward):
    """Forward plus backward [FLOP]: ``forward + backward(forward) = 3 x forward`` (Kaplan et al. 2020, sec. 2.1)."""
    return forward + backward(forward=forward)


def palm_per_token(*, params, n_layer, n_head, head_dim, seq_len):
    """PaLM's model FLOPs per token [FLOP/token]: ``6N + 12*L*H*Q*T``.

    Chowdhery et al. 2022, "PaLM", Appendix B. ``N`` is the number of
    parameters used in matmuls per token (non-embedding, active); the second
    term is attention forward plus backward, unmasked.
    """
    return 6 * _f(params) + 12 * _f(n_layer) * n_head * _f(head_dim) * seq_len


def recompute(*, layer, attention_scores, attention_values, n_layer, recompute):
    """Extra forward FLOPs executed to recompute activations in backward [FLOP].

    ``recompute``: 0 none; 1 selective (the attention core is recomputed,
    Korthikanti et al. 2022 section 4.2: ``L*(scores + values)``); 2 full
    (every block's forward runs again, Chen et al. 2016: ``L*layer``; the LM
    head is not recomputed).
    """
    r = np.asarray(recompute)
    return _f(n_layer) * ((r == 1) * (attention_scores + attention_values) + (r == 2) * layer)


def forward_per_token(*, seq_len, n_layer, d_model, n_head, n_kv_head, head_dim, d_ff, gated_mlp, top_k, n_experts,
                      vocab_size):
    """Forward matmul FLOPs per token of one sequence of ``T`` tokens, attention causal [FLOP/token].

    ``F = (L * (qkv + scores + values + out + mlp + router) + head) / T``
    with every term for ``B = 1`` (:func:`layer`, :func:`forward`) and causal
    (halved) attention: the FLOPs a training step executes per token.
    """
    t = np.asarray(seq_len, dtype=np.float64)
    scores = attention_scores(batch_size=1, seq_len=t, n_head=n_head, head_dim=head_dim, causal=True)
    values = attention_values(batch_size=1, seq_len=t, n_head=n_head, head_dim=head_dim, causal=True)
    block = layer(qkv=qkv(tokens=t, d_model=d_model, n_head=n_head, n_kv_head=n_kv_head, head_dim=head_dim),
                  attention_scores=scores, attention_values=values,
                  attention_out=attention_out(tokens=t, d_model=d_model, n_head=n_head, head_dim=head_dim),
                  mlp=mlp(tokens=t, d_model=d_model, d_ff=d_ff, gated_mlp=gated_mlp, top_k=top_k),
                  router=router(tokens=t, d_model=d_model, n_experts=n_experts))
    return forward(layer=block, n_layer=n_layer, lm_head=lm_head(tokens=t, d_model=d_model,
                                                                  vocab_size=vocab_size)) / t


def attention_per_token(*, seq_len, n_layer, n_head, head_dim):
    """Forward attention-core FLOPs (``Q K^T`` and ``P V``, causal) per token of a ``T``-token sequence [FLOP/token].

    ``L * (scores + values) / T = L * 2 * H * T * hd / T`` (:func:`attention_scores`, causal, ``B = 1``).
    """
    t = np.asarray(seq_len, dtype=np.float64)
    scores = attention_scores(batch_size=1, seq_len=t, n_head=n_head, head_dim=head_dim, causal=True)
    values = attention_values(batch_size=1, seq_len=t, n_head=n_head, head_dim=head_dim, causal=True)
    return np.asarray(n_layer, dtype=np.float64) * (scores + values) / t
