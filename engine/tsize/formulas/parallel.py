"""Memory per GPU under data, tensor and pipeline parallelism [bytes].

Layouts follow Megatron-LM (Shoeybi et al. 2019; Narayanan et al. 2021;
Korthikanti et al. 2022) and ZeRO/FSDP (Rajbhandari et al. 2020):

* ``n_gpus = tp * pp * dp``; a layout whose degrees do not divide is flagged.
* Tensor parallelism (``tp``) splits every linear layer and the vocabulary
  (embedding, LM head, logits) ``tp`` ways; norms, position embeddings and
  the biases of row-parallel layers (attention output, MLP down) are
  replicated. Activations inside attention and the MLP split ``tp`` ways;
  the rest (norms, block inputs, dropout masks) split only with sequence
  parallelism.
* Pipeline parallelism (``pp``) gives each stage ``ceil(L/pp)`` blocks; the
  first stage also holds the embeddings, the last the final norm and LM head
  (a tied LM head is a second copy of the embedding there). Activations per
  GPU, pipelining included, are ``activations.total``.
* ZeRO stage 1 shards optimizer states, 2 also gradients, 3 (FSDP full
  sharding) also weights, over ``dp``; stage 3 gathers two blocks' weights
  at a time (current and prefetched).

Every function is monotone: more GPUs of any kind never raise memory per GPU.
"""

from __future__ import annotations

import numpy as np


def _f(x):
    return np.asarray(x, dtype=np.float64)


def data_parallel(*, n_gpus, tp, pp):
    """Data-parallel degree [1]: ``n / (tp * pp)``, NaN where that does not divide."""
    n, mp = np.asarray(n_gpus), np.asarray(tp) * np.asarray(pp)
    return np.where(n % mp == 0, _f(n) / mp, np.nan)


def layer_replicated_params(*, norm, d_model, out_bias, mlp_bias, n_experts):
    """Parameters of one block that tensor parallelism replicates [parameters].

    Two norms and the row-parallel biases (attention output, and MLP/expert
    down projection).
    """
    return 2 * _f(norm) + _f(d_model) * (_f(out_bias) + _f(mlp_bias) * n_experts)


def params_per_gpu(*, layer, layer_replicated_params, n_layer, tp, pp, token_embedding, position_embedding, norm,
                   lm_head, tied_embeddings):
    """Parameters on the busiest GPU [parameters].

    Blocks: ``ceil(L/pp) * ((layer - rep)/tp + rep)``. With one stage add the
    embeddings, final norm and LM head (vocabulary split ``tp`` ways); with
    several, the larger of the first stage's embeddings and the last stage's
    final norm and LM head (a copy of the embedding when tied).
    """
    t, p = _f(tp), _f(pp)
    blocks = np.ceil(_f(n_layer) / p) * ((_f(layer) - layer_replicated_params) / t + layer_replicated_params)
    first = _f(token_embedding) / t + position_embedding
    last = _f(norm) + (_f(lm_head) + _f(tied_embeddings) * (p > 1) * token_embedding) / t
    return blocks + np.where(p == 1, first + last, np.maximum(first, last))


def zero_shard(*, value, dp, zero_stage, stage):
    """``value`` divided over ``dp`` when ZeRO ``zero_stage >= stage`` [same unit]."""
    return _f(value) / np.where(np.asarray(zero_stage) >= stage, dp, 1.0)


def zero3_gather(*, layer, tp, zero_stage, param_bits):
    """Weights gathered at once under ZeRO-3 / FSDP [bytes]: two blocks (current, prefetched)."""
    return (np.asarray(zero_stage) >= 3) * 2 * _f(layer) / tp * param_bits / 8


def min_data_parallel(*, fixed, sharded, budget):
    """Smallest ``dp`` with ``fixed + sharded/dp <= budget`` [1]; inf when none.

    Memory per GPU is ``fixed`` plus the ZeRO-sharded states over ``dp``.
    """
    room = _f(budget) - fixed
    with np.errstate(divide="ignore", invalid="ignore"):
        dp = np.maximum(np.ceil(_f(sharded) / room), 1.0)
    return np.where(room > 0, np.where(_f(sharded) > 0, dp, 1.0), np.inf)


def gpu_share(*, params_per_gpu, params_total):
    """Fraction of the model's states on the busiest GPU before ZeRO [1]: ``params_per_gpu / N``.

    Weights, gradients and optimizer states scale with parameters, so each
    per-GPU state is its one-device value times this share (Narayanan et al.
    2021, sec. 3).
    """
    return _f(params_per_gpu) / params_total


def max_micro_batch(*, usable, fixed, per_sample, room_ok, valid):
    """Largest micro-batch that fits [sequences]: ``floor((usable - fixed) / per_sample)``, at least 0.

    Activations are affine in the micro-batch ``B`` (``fixed`` holds
    everything that does not depend on it: states, gathered ZeRO-3 weights,
    per-sequence tensors), so the largest ``B`` with
    ``fixed + B * per_sample <= usable`` is the floor above. 0 where the
    layout is not ``valid`` or the states alone leave no room (``room_ok``
    false).
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        b = np.maximum(np.floor((_f(usable) - fixed) / per_sample), 0.0)
    return np.where(np.asarray(valid) & np.asarray(room_ok), b, 0.0)


def min_gpus(*, tp, pp, min_dp, buildable):
    """Fewest GPUs of this type that fit [GPUs]: ``tp * pp * min_dp`` (NaN where the model cannot be built).

    ``min_dp`` is the smallest data-parallel degree whose ZeRO shards fit
    (:func:`min_data_parallel`, taken at the backward pass and at the
    optimizer step); ``inf`` when no degree does.
    """
    return np.where(np.asarray(buildable), _f(tp) * _f(pp) * min_dp, np.nan)
