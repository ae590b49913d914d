"""Time of the arithmetic of a training step on one GPU [s].

A roofline per operation: a GEMM takes the longer of its FLOPs at the
achievable matmul rate and its bytes at the achievable HBM bandwidth;
element-wise operations (norms, activations, softmax, dropout, residual
adds, the optimizer step) take their bytes at the HBM bandwidth.

The achievable matmul rate is a measured ceiling (the "maximum achievable
matmul FLOPS" of stas00/ml-engineering, ``catalogs/systems.toml``), reached
only by large GEMMs on an idle GPU. Inside training they reach less; ONE
global curve of the GEMM's size says how much (:func:`gemm_efficiency`). It
is the same for every GPU, model and case.

References
----------
Williams, Waterman, Patterson 2009, "Roofline" (CACM 52(4)).
Isaev et al. 2023, Calculon (SC'23): op time = FLOPs / (peak x eff(size)).
stas00/ml-engineering compute/accelerator/README.md (MAMF).
"""

from __future__ import annotations

import numpy as np

#: The global GEMM efficiency curve ``eff(F) = GEMM_PLATEAU * F / (F + GEMM_HALF_FLOPS)``, relative to the
#: measured matmul ceiling. Both chosen once, in-sample, on the 8 runs of Korthikanti et al. 2022 Table 5, over
#: the grid plateau in {1, 0.95, 0.9, 0.85, 0.8} x half in {1e9, 3e9, 1e10, 3e10, 6e10}: the smallest largest
#: error with a median under 5 % (4.4 % median, 7.0 % largest). See README, "Step time".
GEMM_PLATEAU = 0.85  # large training GEMMs reach 85 % of the best measured (MAMF) rate [1]
GEMM_HALF_FLOPS = 3e9  # FLOPs of one GEMM at which it reaches half the plateau [FLOP]


def _f(x):
    return np.asarray(x, dtype=np.float64)


def gemm_efficiency(*, flops, half_flops=GEMM_HALF_FLOPS, plateau=GEMM_PLATEAU):
    """Fraction of the measured matmul ceiling one GEMM reaches [1].

    Parameters
    ----------
    flops : FLOPs of the GEMM (2*m*n*k) [FLOP]
    half_flops : size at which the GEMM reaches half the plateau [FLOP]
    plateau : fraction of the ceiling that large GEMMs reach inside training [1]

    Notes
    -----
    ``eff = plateau * F / (F + F_half)``: large GEMMs saturate the tensor
    cores, small ones are dominated by launch, tail and wave-quantisation
    overheads (Calculon's step table by op size: >= 128 GFLOP 0.95, >= 16
    0.90, >= 1 0.60). The plateau is below 1 because the ceiling (MAMF) is
    the best rate over a sweep of shapes on an idle GPU; a training step's
    GEMMs have fixed shapes, share the GPU with communication kernels and run
    on older libraries. Monotone in ``F``; 0 for an empty GEMM.
    """
    F = _f(flops)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(F > 0, plateau * F / (F + half_flops), 0.0)


def gemm_bytes(*, m, n, k, bytes_per_element):
    """HBM traffic of one GEMM C[m,n] = A[m,k] @ B[k,n] [bytes]: read A and B, write C once."""
    return (_f(m) * k + _f(k) * n + _f(m) * n) * bytes_per_element


def gemm_time_s(*, flops, bytes, matmul_flops_per_s, hbm_bytes_per_s, hbm_efficiency=1.0, count=1.0,
                half_flops=GEMM_HALF_FLOPS, plateau=GEMM_PLATEAU):
    """Time of ``count`` identical GEMMs [s] (roofline).

    Parameters
    ----------
    flops : FLOPs of ONE GEMM [FLOP]
    bytes : HBM bytes of one GEMM (:func:`gemm_bytes`) [bytes]
    matmul_flops_per_s : measured matmul ceiling at the compute dtype [FLOP/s]
    hbm_bytes_per_s : peak HBM bandwidth [B/s]
    hbm_efficiency : achievable fraction of ``hbm_bytes_per_s`` [1]
    count : how many such GEMMs run one after the other [1]
    half_flops, plateau : the efficiency curve (:func:`gemm_efficiency`)

    Notes
    -----
    ``t = count * max(F / (R * eff(F)), bytes / (BW * eta))``. Left of the
    ridge (``F/bytes < R/BW``) a GEMM is memory-bound.
    """
    F = _f(flops)
    with np.errstate(divide="ignore", invalid="ignore"):  # F = 0 is masked below
        compute = F / (_f(matmul_flops_per_s) * gemm_efficiency(flops=F, half_flops=half_flops, plateau=plateau))
    memory = _f(bytes) / (_f(hbm_bytes_per_s) * hbm_efficiency)
    return _f(count) * np.where(F > 0, np.maximum(compute, memory), 0.0)


def memory_time_s(*, bytes, hbm_bytes_per_s, hbm_efficiency=1.0):
    """Time of memory-bound work that moves ``bytes`` through HBM [s]: ``bytes / (BW * eta)``."""
    return _f(bytes) / (_f(hbm_bytes_per_s) * hbm_efficiency)


def layer_elementwise_bytes(*, tokens, d_model, d_ff, gated_mlp, act_bytes, residual_bytes, tp, sequence_parallel,
                            attention_elements, softmax_bytes, flash, dropout):
    """HBM traffic of the element-wise work of one block's forward, one micro-batch, one GPU [bytes].

    Parameters
    ----------
    tokens : B*T of the micro-batch [tokens]
    d_model, d_ff : widths [1]
    gated_mlp : 1 for SwiGLU-style MLPs (two up projections) [1]
    act_bytes, residual_bytes, softmax_bytes : bytes per element [bytes]
    tp : tensor-parallel degree [1]
    sequence_parallel : norms, dropout and residual adds split ``tp`` ways [bool]
    attention_elements : B * n_head * T^2, the attention matrix [elements]
    flash : 1 when attention is one fused kernel (no matrix in HBM) [1]
    dropout : dropout probability (a mask is written where > 0) [1]

    Notes
    -----
    Per block: two norms (read the residual stream, write the normed
    activations), two residual adds (read two, write one, each preceded by
    dropout when ``dropout > 0``: read, write, 1-byte mask), the MLP
    activation (read ``(1 + gated)`` x ``d_ff``, write ``d_ff``, split
    ``tp`` ways) and, with naive attention, the softmax of the attention
    matrix (read and write, split ``tp`` ways) and its dropout. Fused kernels
    (Megatron's bias-gelu, bias-dropout-add, scale-mask-softmax) move each
    element once, as counted here.
    """
    t = _f(tp)
    m = _f(tokens)
    drop = _f(dropout) > 0
    stream = np.where(sequence_parallel, m / t, m) * d_model
    norms = 2 * stream * (_f(residual_bytes) + act_bytes)
    adds = 2 * stream * (3 * _f(residual_bytes) + drop * (2 * _f(act_bytes) + 1))
    act = m * d_ff / t * (2 + _f(gated_mlp)) * act_bytes
    naive = 1 - _f(flash)
    softmax = naive * _f(attention_elements) / t * (_f(act_bytes) + softmax_bytes + drop * (2 * _f(softmax_bytes) + 1))
    return norms + adds + act + softmax


def optimizer_bytes(*, params, param_bits, grad_bits, master_bits, n_states, state_bits, fused=1):
    """HBM traffic of one optimizer step over ``params`` parameters [bytes].

    Parameters
    ----------
    params : parameters this GPU updates [1]
    param_bits, grad_bits, master_bits, state_bits : bits per element [bits] (``master_bits`` 0: no master copy)
    n_states : optimizer states per parameter [1]
    fused : 1 for one kernel over all tensors (apex FusedAdam, torch ``fused``/``foreach``); 0 for a
        per-parameter loop of eager element-wise ops [1]

    Notes
    -----
    Fused: read the gradient, read and write the master weights and each
    state, write the parameter: ``P * (g + 2*m + 2*n*s + p) / 8``.

    Unfused (Adam's update as eager ops, ``torch.optim.AdamW(foreach=False)``,
    Composer ``DecoupledAdamW`` <= 0.16): every op reads its operands and
    writes its result. Per moment, ``mul_`` and ``add_``/``addcmul_``
    (``4 s`` and one or two gradient reads); the denominator ``sqrt``, ``/``,
    ``add_(eps)`` (``6 s``); ``addcdiv_`` reads the first moment and the
    denominator and reads and writes the updated weight ``u`` (``2 s + 2 u``):
    ``P * (8 n s + (3 n / 2) g + 2 u + [m > 0] p) / 8`` with ``u = m`` when a
    master copy exists (then copied to the parameter), else ``p``; for Adam
    (``n = 2``) ``16 s + 3 g + 2 u``.
    """
    m = _f(master_bits)
    n = _f(n_states)
    fused_bits = _f(grad_bits) + 2 * m + 2 * n * state_bits + param_bits
    updated = np.where(m > 0, m, param_bits)
    eager_bits = 8 * n * _f(state_bits) + 1.5 * n * _f(grad_bits) + 2 * updated + np.where(m > 0, param_bits, 0.0)
    return _f(params) * np.where(_f(fused) > 0, fused_bits, eager_bits) / 8
