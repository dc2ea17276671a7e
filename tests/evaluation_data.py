"""Generated interaction logs with known structure for the evaluation tests.

Users belong to taste clusters and mostly pick their cluster's items (so a personalised model must
beat popularity); item popularity follows a power law inside each cluster; event times spread over
100 days. The last 10% of users ("newcomers") only appear in the last 10 days, so a global cutoff
at the 0.8 quantile (day ~89) has cold users (no history before it) as well as warm ones.
"""

from __future__ import annotations

import numpy as np
import polars as pl

T0 = 1_600_000_000
DAY = 86_400


def clustered_log(n_users: int = 240, n_items: int = 160, n_clusters: int = 4, per_user: int = 40,
                  newcomer_share: float = 0.1, own_share: float = 0.9, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    item_cluster = np.arange(n_items) % n_clusters
    rows: list[tuple[str, str, int, str, float]] = []
    n_new = int(n_users * newcomer_share)
    for u in range(n_users):
        c = u % n_clusters
        own = np.flatnonzero(item_cluster == c)
        other = np.flatnonzero(item_cluster != c)
        weights = 1.0 / np.arange(1, own.size + 1) ** 0.8  # power law inside the cluster
        n_own = min(int(round(per_user * own_share)), own.size)
        picks = np.concatenate([rng.choice(own, size=n_own, replace=False, p=weights / weights.sum()),
                                rng.choice(other, size=per_user - n_own, replace=False)])
        rng.shuffle(picks)
        newcomer = u >= n_users - n_new
        lo, hi = (90 * DAY, 100 * DAY) if newcomer else (0, 100 * DAY)
        times = np.sort(rng.integers(lo, hi, size=picks.size))
        for it, t in zip(picks, times, strict=True):
            rows.append((f"u{u}", f"i{it}", T0 + int(t), "click", 1.0))
    return pl.DataFrame(rows, schema={"user_id": pl.String, "item_id": pl.String, "timestamp": pl.Int64,
                                      "event": pl.String, "weight": pl.Float32}, orient="row")
