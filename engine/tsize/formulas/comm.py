"""Collective communication time, alpha-beta with a size-dependent bus bandwidth [s].

nccl-tests' model (``doc/PERFORMANCE.md``): a collective over ``n`` ranks
on a buffer of ``S`` bytes moves ``S * f`` bytes per rank, with ``f =
2(n-1)/n`` for an all-reduce and ``(n-1)/n`` for an all-gather or
reduce-scatter (``S`` the full, gathered buffer). Its time is ``alpha + S *
f / busbw``, where ``busbw`` is the bus bandwidth nccl-tests reports; it is
measured per fabric (``catalogs/systems.toml``) at large messages and falls
for small ones through one global curve (:func:`bus_bandwidth`).

That curve describes NCCL's bandwidth ("Simple") protocol. For small
messages NCCL switches to its low-latency protocol LL, which sends 8-byte
lines of 4 bytes of data and a 4-byte flag (NVIDIA/nccl
``src/include/device.h``, ``NCCL_LL_LINES_PER_THREAD``; the protocol's data
efficiency is 1/2) with no pipeline ramp, and picks the protocol with the
shorter time (NCCL ``src/graph/tuning.cc``). The bandwidth term is
therefore ``min(S f / busbw(S), S f / (busbw * LL_EFFICIENCY))``: a tiny
message costs the latency ``alpha`` only, as nccl-tests measures (A100-SXM4
NVLink, 2 ranks, 32 B: 10.1 us, NVIDIA/nccl#583), not ``alpha + f *
S_half / busbw`` (70+ us) that the Simple curve alone implies.

A group larger than the scale-up domain runs hierarchically (ring inside
each domain, then across domains over the scale-out network, every GPU's
NIC carrying its ``1/g`` share in parallel): the layout that
stas00/ml-engineering ``network/README.md`` and NCCL's tree/ring algorithms
use; sending everything through one NIC was measured 3.9x slower.

References
----------
NVIDIA/nccl-tests doc/PERFORMANCE.md (algbw, busbw, factors).
Thakur, Rabenseifner, Gropp 2005, "Optimization of collective communication
operations in MPICH" (ring all-reduce = reduce-scatter + all-gather).
"""

from __future__ import annotations

import numpy as np

#: Message size at which a collective reaches half its large-message bus bandwidth [bytes].
#: catalogs/systems.toml [defaults] half_bandwidth_mib (16 MiB) is the catalog's copy.
HALF_BANDWIDTH_BYTES = 16 * 2**20
#: Data fraction of NCCL's LL protocol lines (4 data bytes per 8-byte line) [1]. NVIDIA/nccl src/include/device.h.
LL_EFFICIENCY = 0.5


def _f(x):
    return np.asarray(x, dtype=np.float64)


def bus_bandwidth(*, bytes, bus_bytes_per_s, half_bytes=HALF_BANDWIDTH_BYTES):
    """Bus bandwidth a collective on a ``bytes`` buffer reaches [B/s]: ``busbw * S / (S + S_half)``."""
    S = _f(bytes)
    return _f(bus_bytes_per_s) * S / (S + half_bytes)


def transfer_time_s(*, bytes, factor, bus_bytes_per_s, half_bytes=HALF_BANDWIDTH_BYTES, ll_efficiency=LL_EFFICIENCY):
    """Bandwidth part of a collective on a ``bytes`` buffer [s], the faster of NCCL's two protocols.

    ``S f * min(1 / busbw(S), 1 / (busbw * e_LL))``: the Simple protocol on
    the size curve (:func:`bus_bandwidth`), or LL at ``e_LL`` (1/2) of the
    large-message bus bandwidth with no ramp. LL is the faster below
    ``S_half * e_LL / (1 - e_LL)`` (16 MiB at ``e_LL = 1/2``). 0 for ``S = 0``.

    Parameters
    ----------
    bytes : buffer size S [bytes]
    factor : bytes moved per rank per byte of buffer, f (:func:`ring_factor`) [1]
    bus_bytes_per_s : large-message bus bandwidth [B/s]
    """
    S = _f(bytes)
    B = _f(bus_bytes_per_s)
    with np.errstate(divide="ignore", invalid="ignore"):
        simple = 1.0 / bus_bandwidth(bytes=S, bus_bytes_per_s=B, half_bytes=half_bytes)
        t = S * _f(factor) * np.minimum(simple, 1.0 / (B * ll_efficiency))
    return np.where(S > 0, t, 0.0)


def ring_factor(*, n, kind):
    """Bytes each rank moves per byte of buffer [1]: ``2(n-1)/n`` (kind 2, all-reduce) or ``(n-1)/n`` (kind 1)."""
    n = _f(n)
    return _f(kind) * (n - 1) / n


def ring_time_s(*, bytes, n, bus_bytes_per_s, latency_s, kind=2, half_bytes=HALF_BANDWIDTH_BYTES):
    """One collective inside one fabric [s]: ``alpha + transfer(S * f)`` (0 for ``n = 1``; :func:`transfer_time_s`).

    Parameters
    ----------
    bytes : buffer size S (the full buffer for all-gather / reduce-scatter) [bytes]
    n : ranks in the group [1]
    bus_bytes_per_s : large-message bus bandwidth of the fabric [B/s]
    latency_s : per-collective latency alpha [s]
    kind : 2 all-reduce, 1 all-gather or reduce-scatter [1]
    """
    S = _f(bytes)
    t = latency_s + transfer_time_s(bytes=S, factor=ring_factor(n=n, kind=kind), bus_bytes_per_s=bus_bytes_per_s,
                                    half_bytes=half_bytes)
    return np.where((_f(n) > 1) & (S > 0), t, 0.0)


def all_reduce_time_s(*, bytes, n, bus_bytes_per_s, latency_s, half_bytes=HALF_BANDWIDTH_BYTES):
    """Ring all-reduce of ``bytes`` over ``n`` ranks of one fabric [s]: ``alpha + 2(n-1)/n * S / busbw``."""
    return ring_time_s(bytes=bytes, n=n, bus_bytes_per_s=bus_bytes_per_s, latency_s=latency_s, kind=2,
                       half_bytes=half_bytes)


def local_ranks(*, n, stride, domain):
    """Members of a group that share one scale-up domain [1].

    A group of ``n`` ranks whose members are ``stride`` ranks apart (tensor
    parallel: 1; pipeline: ``tp``; data parallel: ``tp * pp``), on domains of
    ``domain`` consecutive ranks: ``clip(floor(domain / stride), 1, n)``.
    """
    return np.clip(np.floor(_f(domain) / stride), 1.0, _f(n))


def hierarchical_time_s(*, bytes, n, local, scaleup_bytes_per_s, scaleup_latency_s, scaleout_bytes_per_s,
                        scaleout_latency_s, kind=2, half_bytes=HALF_BANDWIDTH_BYTES):
    """A collective over ``n`` ranks, ``local`` of them per scale-up domain [s].

    Parameters
    ----------
    bytes : buffer size S [bytes]
    n : ranks in the group [1]
    local : ranks per domain, g (:func:`local_ranks`) [1]
    scaleup_bytes_per_s, scaleout_bytes_per_s : bus bandwidth inside a domain, and per GPU across [B/s]
    scaleup_latency_s, scaleout_latency_s : latency of each phase [s]
    kind : 2 all-reduce, 1 all-gather or reduce-scatter [1]

    Notes
    -----
    With ``k = n / g`` domains: inside each domain a ring over ``g`` ranks on
    the whole buffer, across domains a ring over ``k`` ranks on each GPU's
    ``S/g`` share (all ``g`` NICs in parallel). For an all-reduce:
    ``2(g-1)/g * S / B_up + 2(k-1)/k * (S/g) / B_out`` plus both latencies.
    ``g = n``: one ring in the domain; ``g = 1``: one ring over the network.
    """
    S = _f(bytes)
    g = _f(local)
    k = _f(n) / g
    inside = ring_time_s(bytes=S, n=g, bus_bytes_per_s=scaleup_bytes_per_s, latency_s=scaleup_latency_s, kind=kind,
                         half_bytes=half_bytes)
    across = ring_time_s(bytes=S / g, n=k, bus_bytes_per_s=scaleout_bytes_per_s, latency_s=scaleout_latency_s,
                         kind=kind, half_bytes=half_bytes)
    return inside + across


def p2p_time_s(*, bytes, bytes_per_s, latency_s, half_bytes=HALF_BANDWIDTH_BYTES):
    """A point-to-point send of ``bytes`` [s]: ``alpha + S / bw(S)`` (0 for an empty message)."""
    S = _f(bytes)
    with np.errstate(divide="ignore", invalid="ignore"):  # S = 0 is masked below
        t = latency_s + S / bus_bandwidth(bytes=S, bus_bytes_per_s=bytes_per_s, half_bytes=half_bytes)
    return np.where(S > 0, t, 0.0)
