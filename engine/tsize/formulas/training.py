"""Training compute, time, utilisation, cost and energy.

Model FLOPs use the ``C = 6*N*D`` rule (Kaplan et al. 2020, section 2.1;
GPT-3, Brown et al. 2020, Appendix D): forward ``2*N`` and backward ``4*N``
FLOP per parameter and token, attention ignored. Full activation
recomputation runs the forward again, ``8*N*D`` of hardware FLOPs. MFU is
model FLOPs per second over the device's dense peak (Chowdhery et al. 2022,
Appendix B); HFU counts the recomputed FLOPs too.

Time to train assumes the hardware keeps the utilisation it reaches without
recomputation (``assumed_mfu``) on whatever it executes, so recomputation
costs time: ``t = hardware FLOPs / (n * peak * assumed_mfu)``; the run's MFU
is then ``assumed_mfu * model / hardware`` FLOPs.
"""

from __future__ import annotations

import numpy as np

SECONDS_PER_HOUR = 3600.0
JOULES_PER_KWH = 3.6e6


def _f(x):
    return np.asarray(x, dtype=np.float64)


def model_flops(*, params, tokens):
    """Model FLOPs to train on ``tokens`` [FLOP]: ``6*N*D``.

    GPT-3 175B (174.6e9 parameters) on 300e9 tokens; Brown et al. 2020, Table D.1, give 3.14e23:

    >>> f"{model_flops(params=174.6e9, tokens=300e9):.3g}"
    '3.14e+23'
    """
    return 6 * _f(params) * tokens


def hardware_flops(*, params, tokens, recompute, n_layer, n_head, head_dim, seq_len):
    """FLOPs executed [FLOP]: model FLOPs plus the forward work recomputed in backward.

    ``recompute == 2`` (full) runs every forward again: ``+2*N*D``, the
    ``8*N*D`` rule. ``recompute == 1`` (selective) re-runs the attention core,
    ``+4*L*H*hd*T`` per token (its forward share of PaLM's ``12*L*H*Q*T``).
    """
    r = np.asarray(recompute)
    attention = 4 * _f(n_layer) * n_head * _f(head_dim) * seq_len
    return _f(tokens) * (6 * _f(params) + (r == 2) * 2 * _f(params) + (r == 1) * attention)


def executed_flops(*, tokens, forward_per_token, attention_per_token, recompute):
    """FLOPs executed to train on ``tokens``, attention included [FLOP].

    ``D * (3*F + (r == 2)*F + (r == 1)*A)``: forward ``F`` and backward
    ``2*F`` per token (Kaplan et al. 2020, sec. 2.1), plus the forward run
    again in backward, in full (``recompute == 2``) or only its attention core
    ``A`` (``recompute == 1``, Korthikanti et al. 2022, sec. 4). ``F`` counts
    every matmul of one token's forward pass, attention scores and values over
    its causal context included, so at long sequences it exceeds ``2*N``
    (the ``6*N*D`` convention ignores attention).
    """
    r = np.asarray(recompute)
    f = _f(forward_per_token)
    return _f(tokens) * (3 * f + (r == 2) * f + (r == 1) * _f(attention_per_token))


def time_s(*, flops, peak_flops_per_s, mfu, n_gpus):
    """Wall-clock time to execute ``flops`` [s]: ``flops / (n * peak * mfu)``."""
    return _f(flops) / (_f(n_gpus) * peak_flops_per_s * mfu)


def gpu_time_s(*, time_s, n_gpus):
    """Accelerator time [GPU*s]: ``time_s * n_gpus``."""
    return _f(time_s) * n_gpus


def gpu_hours(*, gpu_time_s):
    """Accelerator time [GPU*h]: ``gpu_time_s / 3600``."""
    return _f(gpu_time_s) / SECONDS_PER_HOUR


def cloud_cost_usd(*, gpu_hours, usd_per_gpu_hour):
    """Rental cost [USD]: GPU-hours times the on-demand price per GPU-hour."""
    return _f(gpu_hours) * usd_per_gpu_hour


def purchase_cost_usd(*, n_gpus, price_usd):
    """Purchase cost of the accelerators alone [USD]: ``n * unit price`` (no servers, network or power)."""
    return _f(n_gpus) * price_usd


def energy_j(*, tdp_w, n_gpus, time_s, pue):
    """Facility energy [J]: ``TDP * n * t * PUE``, accelerators at full board power.

    ``pue`` (power usage effectiveness, >= 1) scales device power to the
    whole facility's; an upper bound since devices rarely sit at TDP.
    """
    return _f(tdp_w) * n_gpus * time_s * pue


def energy_cost_usd(*, energy_j, usd_per_kwh):
    """Electricity cost [USD]."""
    return _f(energy_j) / JOULES_PER_KWH * usd_per_kwh


def mfu(*, flops_per_iteration, grad_accum, iter_time_s, peak_flops_per_s):
    """Model FLOPs utilisation from a measured iteration [1].

    One iteration runs ``grad_accum`` micro-batches whose model FLOPs are
    ``flops_per_iteration`` each, in ``iter_time_s`` seconds on one device:
    ``flops * grad_accum / (iter_time_s * peak)``.
    """
    return _f(flops_per_iteration) * grad_accum / (_f(iter_time_s) * peak_flops_per_s)


def hfu(*, mfu, model_flops, hardware_flops):
    """Hardware FLOPs utilisation [1]: MFU scaled by executed over model FLOPs."""
    return _f(mfu) * hardware_flops / model_flops


def mfu_at_hfu(*, hfu, model_flops, hardware_flops):
    """Model FLOPs utilisation of a run whose hardware utilisation is ``hfu`` [1]."""
    return _f(hfu) * model_flops / hardware_flops
