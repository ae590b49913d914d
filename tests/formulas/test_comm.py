"""comm.py: ring and hierarchical collectives, placement (hand-worked)."""

import pytest
from tsize.formulas import comm


def test_ring_all_reduce_hand_worked():
    # 1 GB over 8 GPUs at 200 GB/s busbw, 10 us: 10e-6 + 2*7/8 * 1e9 / 200e9 = 8.76 ms
    t = comm.all_reduce_time_s(bytes=1e9, n=8, bus_bytes_per_s=200e9, latency_s=10e-6, half_bytes=0.0)
    assert t == pytest.approx(8.76e-3)
    # with the size curve: busbw(1e9) = 200e9 * 1e9 / (1e9 + 16,777,216) = 196.70e9 -> 1.75e9 / 196.70e9 + 10 us
    t = comm.all_reduce_time_s(bytes=1e9, n=8, bus_bytes_per_s=200e9, latency_s=10e-6)
    assert t == pytest.approx(1.75e9 / 196.7001e9 + 10e-6, rel=1e-5)


def test_one_rank_and_empty_buffer_cost_nothing():
    assert comm.all_reduce_time_s(bytes=1e9, n=1, bus_bytes_per_s=1e9, latency_s=1.0) == 0
    assert comm.all_reduce_time_s(bytes=0.0, n=8, bus_bytes_per_s=1e9, latency_s=1.0) == 0
    assert comm.p2p_time_s(bytes=0.0, bytes_per_s=1e9, latency_s=1.0) == 0


def test_hierarchical_all_reduce_two_nodes():
    # 16 ranks, 8 per node: inside 2*7/8 * 1e9 / 200e9 = 8.75 ms; across 2*1/2 * (1e9/8) / 20e9 = 6.25 ms
    t = comm.hierarchical_time_s(bytes=1e9, n=16, local=8, scaleup_bytes_per_s=200e9, scaleup_latency_s=0.0,
                                 scaleout_bytes_per_s=20e9, scaleout_latency_s=0.0, half_bytes=0.0)
    assert t == pytest.approx(15e-3)
    # all inside one domain: just the ring
    t = comm.hierarchical_time_s(bytes=1e9, n=8, local=8, scaleup_bytes_per_s=200e9, scaleup_latency_s=0.0,
                                 scaleout_bytes_per_s=20e9, scaleout_latency_s=0.0, half_bytes=0.0)
    assert t == pytest.approx(8.75e-3)


@pytest.mark.parametrize("n, stride, domain, expected", [(32, 8, 8, 1), (4, 1, 8, 4), (16, 2, 8, 4), (16, 1, 72, 16)])
def test_local_ranks(n, stride, domain, expected):
    assert comm.local_ranks(n=n, stride=stride, domain=domain) == expected


def test_crossing_the_domain_is_slower_per_byte():
    kw = dict(bytes=1e8, scaleup_bytes_per_s=230e9, scaleup_latency_s=1e-5, scaleout_bytes_per_s=22.5e9,
              scaleout_latency_s=2e-5)
    t8 = comm.hierarchical_time_s(n=8, local=comm.local_ranks(n=8, stride=1, domain=8), **kw)
    t16 = comm.hierarchical_time_s(n=16, local=comm.local_ranks(n=16, stride=1, domain=8), **kw)
    assert t16 > t8


def test_tiny_all_reduce_costs_about_the_latency():
    # a decode all-reduce, 1 token x d 4096 x 2 bytes = 8192 B over 8 ranks, 235 GB/s busbw, 10 us:
    # LL: 2*7/8 * 8192 / (235e9 * 0.5) = 0.122 us; Simple: 2*7/8 * (8192 + 16,777,216) / 235e9 = 125 us -> LL
    t = comm.all_reduce_time_s(bytes=8192, n=8, bus_bytes_per_s=235e9, latency_s=10e-6)
    assert t == pytest.approx(10e-6 + 1.75 * 8192 / 117.5e9, rel=1e-9)
    # nccl-tests, A100-SXM4 NVLink, 2 ranks, 32 B: 10.14 us (NVIDIA/nccl#583); 235 GB/s busbw, 10 us latency
    t = comm.all_reduce_time_s(bytes=32, n=2, bus_bytes_per_s=235e9, latency_s=10e-6)
    assert t == pytest.approx(10.14e-6, rel=0.02)


@pytest.mark.parametrize("S, expected", [
    # below S_half (16 MiB) LL's 1/(B/2) beats Simple's (S + S_half)/(S B): 1 MiB -> 2 * 2**20 / 100e9
    (2**20, 2 * 2**20 / 100e9),
    # above it Simple: 64 MiB -> (64 + 16) MiB / 100e9
    (64 * 2**20, 80 * 2**20 / 100e9),
    # at S_half the two agree: 2 * 16 MiB / 100e9
    (16 * 2**20, 32 * 2**20 / 100e9),
])
def test_transfer_takes_the_faster_protocol(S, expected):
    assert comm.transfer_time_s(bytes=S, factor=1.0, bus_bytes_per_s=100e9) == pytest.approx(expected, rel=1e-12)


def test_transfer_of_nothing_is_free():
    assert comm.transfer_time_s(bytes=0.0, factor=1.75, bus_bytes_per_s=100e9) == 0
