"""Pipeline schedule: micro-batches per step, the bubble, interleaving.

References
----------
Narayanan et al. 2021, "Efficient Large-Scale Language Model Training on GPU
Clusters Using Megatron-LM" (SC'21), sec. 2.2: 1F1B bubble fraction
``(p-1)/m``; interleaved schedule with ``v`` model chunks per device
``(p-1)/(v*m)``; ``m = global batch / (micro-batch * dp)``.
Korthikanti et al. 2022, sec. 4.2.3: the interleaved schedule keeps
``1 + (p-1)/(p*v)`` times the activations of the non-interleaved one.
"""

from __future__ import annotations

import numpy as np


def _f(x):
    return np.asarray(x, dtype=np.float64)


def micro_batches(*, global_batch_size, dp, batch_size, grad_accum):
    """Micro-batches each pipeline runs per optimizer step, m [1].

    ``global_batch_size / (dp * B)`` when a global batch is given (> 0),
    else ``grad_accum``. Fractional where the global batch does not divide
    (see :func:`batch_divides`); NaN where ``dp`` is NaN.
    """
    gbs = _f(global_batch_size)
    return np.where(gbs > 0, gbs / (_f(dp) * batch_size), _f(grad_accum))


def batch_divides(*, global_batch_size, dp, batch_size):
    """Whether ``dp * B`` divides the global batch (always true without one) [bool]."""
    gbs = _f(global_batch_size)
    m = gbs / (_f(dp) * batch_size)
    return (gbs <= 0) | (np.isfinite(m) & (m >= 1) & (m == np.floor(m)))


def interleave_divides(*, n_layer, pp, interleave):
    """Whether ``pp * v`` divides the layers, as Megatron requires for ``v > 1`` chunks [bool]."""
    v = np.asarray(interleave)
    return (v <= 1) | (np.asarray(n_layer) % (np.asarray(pp) * v) == 0)


def bubble_fraction(*, pp, micro_batches, interleave=1):
    """Idle fraction of the ideal time, ``(p-1) / (v*m)`` [1]."""
    return (_f(pp) - 1) / (_f(interleave) * micro_batches)


def bubble_time_s(*, pp, interleave, micro_batch_time_s):
    """Time the pipeline idles per step [s]: ``(p-1)/v`` micro-batch times (= fraction x m x t_mb)."""
    return (_f(pp) - 1) / _f(interleave) * micro_batch_time_s


def interleave_activation_factor(*, pp, interleave):
    """Activation memory of the interleaved schedule relative to 1F1B [1]: ``1 + (p-1)/(p*v)`` for ``v > 1``."""
    p, v = _f(pp), _f(interleave)
    return np.where(v > 1, 1 + (p - 1) / (p * v), 1.0)


def bubble_micro_batches(*, pp, interleave):
    """Pipeline bubble in micro-batch times per step [1]: ``(p-1)/v`` (Narayanan et al. 2021, sec. 2.2)."""
    return (_f(pp) - 1) / _f(interleave)
