"""pipeline.py: bubble fraction, micro-batches, divisibility flags (hand-worked)."""

import numpy as np
import pytest
from tsize.formulas import pipeline


def test_bubble_fraction_hand_worked():
    # Narayanan et al. 2021 sec. 2.2: (p-1)/m = 3/8; interleaved (p-1)/(v*m) = 3/16
    assert pipeline.bubble_fraction(pp=4, micro_batches=8) == pytest.approx(0.375)
    assert pipeline.bubble_fraction(pp=4, micro_batches=8, interleave=2) == pytest.approx(0.1875)
    assert pipeline.bubble_time_s(pp=4, interleave=1, micro_batch_time_s=2.0) == pytest.approx(6.0)


def test_more_micro_batches_shrink_the_bubble():
    fractions = pipeline.bubble_fraction(pp=8, micro_batches=np.array([8, 16, 64, 256]))
    assert np.all(np.diff(fractions) < 0)


def test_micro_batches_and_flags():
    assert pipeline.micro_batches(global_batch_size=512, dp=8, batch_size=4, grad_accum=1) == 16
    assert pipeline.micro_batches(global_batch_size=0, dp=8, batch_size=4, grad_accum=3) == 3
    assert pipeline.batch_divides(global_batch_size=512, dp=8, batch_size=4)
    assert not pipeline.batch_divides(global_batch_size=500, dp=8, batch_size=4)
    assert not pipeline.batch_divides(global_batch_size=16, dp=8, batch_size=4)  # fewer than one micro-batch
    assert pipeline.batch_divides(global_batch_size=0, dp=np.nan, batch_size=4)
    assert pipeline.interleave_divides(n_layer=24, pp=4, interleave=3)
    assert not pipeline.interleave_divides(n_layer=24, pp=4, interleave=5)
    assert pipeline.interleave_activation_factor(pp=4, interleave=2) == pytest.approx(1 + 3 / 8)
    assert pipeline.interleave_activation_factor(pp=4, interleave=1) == 1


def test_bubble_micro_batches_hand_worked():
    # (p - 1) / v: 3 micro-batch times for pp 4, 1.5 with 2 chunks
    np.testing.assert_array_equal(pipeline.bubble_micro_batches(pp=4, interleave=np.array([1, 2])), [3.0, 1.5])
