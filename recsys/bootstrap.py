"""Percentile bootstrap over evaluation users: confidence intervals and paired differences.

Users are the unit of resampling because metrics are per-user averages. Every call with the
same seed and user count draws the same resamples, so intervals of different models are paired
(the same resampled populations) and two runs give identical numbers.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

_CHUNK = 64  # resamples drawn at once: bounds memory at 64 x n_users indices


@dataclass(frozen=True)
class Interval:
    """A point estimate (the plain mean over users) and its percentile bootstrap interval."""

    mean: float
    low: float
    high: float
    level: float = 0.95

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high

    def to_dict(self) -> dict[str, float]:
        return {"mean": self.mean, "low": self.low, "high": self.high, "level": self.level}


def _resample_means(values: np.ndarray, n_resamples: int, seed: int) -> Iterator[np.ndarray]:
    rng = np.random.default_rng(seed)
    n = values.size
    done = 0
    while done < n_resamples:
        size = min(_CHUNK, n_resamples - done)
        idx = rng.integers(0, n, size=(size, n))
        yield values[idx].mean(axis=1)
        done += size


def bootstrap_ci(values: np.ndarray, *, n_resamples: int = 1000, level: float = 0.95,
                 seed: int = 42) -> Interval:
    """Percentile interval of the mean of `values` (one value per evaluation user)."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1 or values.size == 0:
        raise ValueError("bootstrap_ci needs a non-empty 1-d array of per-user values")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    means = np.concatenate(list(_resample_means(values, n_resamples, seed)))
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return Interval(float(values.mean()), float(low), float(high), level)


def paired_difference(a: np.ndarray, b: np.ndarray, *, n_resamples: int = 1000, level: float = 0.95,
                      seed: int = 42) -> Interval:
    """Interval of mean(a - b) where a[i] and b[i] belong to the same user (resampled together)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired values need equal shapes, got {a.shape} and {b.shape}")
    return bootstrap_ci(a - b, n_resamples=n_resamples, level=level, seed=seed)
