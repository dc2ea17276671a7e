"""Percentile bootstrap: intervals contain the mean, cover the truth, pair correctly, are seeded."""

from __future__ import annotations

import numpy as np
import pytest

from recsys.evaluation.bootstrap import bootstrap_ci, paired_difference


def test_interval_contains_the_mean() -> None:
    rng = np.random.default_rng(1)
    samples = (rng.exponential(0.1, size=300), (rng.random(500) < 0.3).astype(float), rng.normal(size=40))
    for values in samples:
        ci = bootstrap_ci(values, seed=3)
        assert ci.mean == pytest.approx(values.mean())
        assert ci.low < ci.mean < ci.high


def test_constant_values_give_a_point() -> None:
    ci = bootstrap_ci(np.full(50, 0.25))
    assert (ci.low, ci.mean, ci.high) == pytest.approx((0.25, 0.25, 0.25))


def test_seeded_and_width_shrinks_with_users() -> None:
    rng = np.random.default_rng(2)
    small = rng.normal(size=100)
    assert bootstrap_ci(small, seed=5) == bootstrap_ci(small, seed=5)
    assert bootstrap_ci(small, seed=5) != bootstrap_ci(small, seed=6)
    large = rng.normal(size=1600)
    w_small = bootstrap_ci(small).high - bootstrap_ci(small).low
    w_large = bootstrap_ci(large).high - bootstrap_ci(large).low
    assert w_large / w_small == pytest.approx(0.25, rel=0.3)  # 16x users -> 1/4 the width


def test_coverage_close_to_nominal() -> None:
    rng = np.random.default_rng(11)
    hits = 0
    reps = 150
    for r in range(reps):
        sample = rng.normal(loc=2.0, scale=1.0, size=80)
        hits += bootstrap_ci(sample, n_resamples=400, seed=r).contains(2.0)
    assert 0.86 <= hits / reps <= 0.99


def test_paired_difference() -> None:
    rng = np.random.default_rng(4)
    base = rng.random(400)
    same = paired_difference(base, base)
    assert (same.low, same.mean, same.high) == pytest.approx((0.0, 0.0, 0.0))
    better = base + 0.05 + rng.normal(scale=0.01, size=base.size)
    diff = paired_difference(better, base)
    assert diff.mean == pytest.approx(0.05, abs=0.003)
    assert diff.low > 0.0
    # Pairing matters: the unpaired spread of `base` would swamp a 0.05 shift, the paired one does not.
    assert diff.high - diff.low < 0.01
    with pytest.raises(ValueError):
        paired_difference(base, base[:-1])


def test_rejects_empty() -> None:
    with pytest.raises(ValueError):
        bootstrap_ci(np.array([]))
