"""Memory of model states, peaks, checkpoints and fit, on one device [bytes].

Model states follow Rajbhandari et al. 2020 ("ZeRO", section 3.1): with
``Psi`` parameters, mixed-precision Adam holds ``2*Psi`` of 16-bit weights,
``2*Psi`` of 16-bit gradients and ``K*Psi`` of optimizer states with
``K = 12`` (fp32 master weights, momentum and variance). Here every width is
a parameter of the precision recipe and the optimizer (``catalogs/``), so
the same functions give PyTorch autocast (fp32 weights and gradients, 16-bit
copies), pure bf16, and 8-bit optimizers.
"""

from __future__ import annotations

import numpy as np


def _f(x):
    return np.asarray(x, dtype=np.float64)


def weights(*, params, param_bits):
    """Stored parameters [bytes]: ``N * param_bits / 8``."""
    return _f(params) * param_bits / 8


def gradients(*, params, grad_bits):
    """Gradient buffers [bytes]: ``N * grad_bits / 8``."""
    return _f(params) * grad_bits / 8


def optimizer(*, params, master_bits, n_states, state_bits):
    """Optimizer states [bytes]: ``N * (master_bits + n_states * state_bits) / 8``.

    As in ZeRO, fp32 master weights (kept by mixed-precision recipes whose
    stored weights are 16-bit) count as optimizer state.
    """
    return _f(params) * (_f(master_bits) + _f(n_states) * state_bits) / 8


def weight_copies(*, params_matmul, copy_bits):
    """16-bit weight copies autocast keeps from forward to backward [bytes].

    ``torch.autocast`` casts each linear layer's fp32 weight and bias once per
    forward (its cast cache) and the matmul saves the copy for backward, so
    ``params_matmul * copy_bits / 8`` stays allocated until backward frees
    it. 0 for recipes without autocast.
    """
    return _f(params_matmul) * copy_bits / 8


def mask_buffers(*, n_layer, n_ctx, present):
    """Causal-mask buffers [bytes]: ``L * n_ctx^2 * 4`` where ``present``.

    nanoGPT registers a ``(1, 1, n_ctx, n_ctx)`` fp32 ``bias`` buffer per
    block when it uses its naive attention path; being persistent, it is
    on the device and in every checkpoint.
    """
    return _f(n_layer) * _f(n_ctx) ** 2 * 4 * _f(present)


def first_gradient(*, vocab_size, d_model, grad_bits):
    """The first gradient allocated in backward [bytes]: the LM head's, ``V*d*grad_bits/8``.

    With ``zero_grad(set_to_none=True)`` (PyTorch's default since 2.0)
    gradients do not exist when backward starts; the LM head (or the token
    embedding tied to it) is the first, and largest, to be allocated.
    """
    return _f(vocab_size) * d_model * grad_bits / 8


def total(*, weights, buffers, weight_copies, gradients, optimizer, activations):
    """Everything resident at once [bytes]: the seed's sum, plus buffers and autocast's copies."""
    return weights + buffers + weight_copies + gradients + optimizer + activations


def peak(*, weights, buffers, weight_copies, gradients, optimizer, activations, first_gradient, grad_accum):
    """Estimated peak of allocated memory in one training iteration [bytes].

    With gradient accumulation (``grad_accum > 1``) gradients persist from
    the previous micro-batch, so the peak at the start of backward holds
    everything: ``W + C + G + O + A``. Without it, gradients are freed each
    step; the peak is the larger of the start of backward, when activations,
    the autocast copies and the first gradient are live, and the optimizer
    step, when all gradients are: ``W + O + max(C + A + g1, G)``; buffers
    are always there. A fused optimizer step (no temporaries) is assumed. This is what
    ``torch.cuda.max_memory_allocated`` reports; CUDA context, library
    workspaces and allocator slack are outside it (see ``required``).
    """
    accumulating = np.asarray(grad_accum) > 1
    live = np.where(
        accumulating,
        weight_copies + gradients + activations,
        np.maximum(weight_copies + activations + first_gradient, gradients),
    )
    return weights + buffers + optimizer + live


def required(*, peak, allocator_slack, overhead_bytes):
    """Device memory a run needs [bytes]: ``peak * (1 + slack) + overhead``.

    ``allocator_slack`` [fraction] covers the caching allocator's rounding and
    fragmentation (reserved minus allocated); ``overhead_bytes`` covers the
    CUDA context and library workspaces (cuBLAS, NCCL), which PyTorch's
    counters do not see (about 0.3-1 GiB; Rees 2023 measured 863 MiB of
    context on an A100).
    """
    return _f(peak) * (1 + _f(allocator_slack)) + overhead_bytes


def usable(*, memory_bytes, allocator_slack, overhead_bytes):
    """Largest peak that fits [bytes]: ``required`` solved for ``peak``."""
    return (_f(memory_bytes) - overhead_bytes) / (1 + _f(allocator_slack))


def fits(*, required, memory_bytes):
    """Whether the run fits the device's memory [bool]: ``required <= memory_bytes``."""
    return required <= memory_bytes


def share(*, part, memory_bytes):
    """Fraction of a device's memory a quantity takes [1]."""
    return _f(part) / memory_bytes


def checkpoint(*, params, param_bits, master_bits, n_states, state_bits, step_tensor, tensors, buffers,
               buffer_tensors, record_bytes, metadata_bytes):
    """Size of a nanoGPT-style ``torch.save`` checkpoint [bytes].

    nanoGPT saves ``{'model': state_dict, 'optimizer': optimizer.state_dict(),
    'model_args', 'iter_num', 'best_val_loss', 'config'}``. Data: the
    parameters at their stored width, plus master weights and optimizer
    states. Tied tensors are written once (one storage). Overhead: each
    tensor is one record of PyTorch's zip format (local header, 64-byte
    alignment padding, central-directory entry, pickle reference; about
    ``record_bytes``) for each of the ``tensors`` model tensors and, per
    model tensor, its ``n_states`` optimizer states and (``step_tensor``)
    the 4-byte fp32 ``step`` PyTorch's Adam family keeps; the persistent
    ``buffers`` (``buffer_tensors`` records); plus ``metadata_bytes`` of
    pickled configuration.
    """
    data = _f(params) * (_f(param_bits) + master_bits + _f(n_states) * state_bits) / 8 + buffers
    records = _f(tensors) * (1 + _f(n_states) + step_tensor) + buffer_tensors
    return data + 4 * _f(tensors) * step_tensor + records * record_bytes + metadata_bytes
