"""Small generated data sets with known structure for fast tests."""

from __future__ import annotations

import numpy as np
import polars as pl


def clustered_interactions(n_users: int = 200, n_items: int = 120, n_clusters: int = 4, per_user: int = 30,
                           seed: int = 0) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Users interact mostly inside their cluster's items: ALS must recover the blocks."""
    rng = np.random.default_rng(seed)
    item_cluster = np.arange(n_items) % n_clusters
    rows = []
    t0 = 1_600_000_000
    for u in range(n_users):
        c = u % n_clusters
        own = np.flatnonzero(item_cluster == c)
        other = np.flatnonzero(item_cluster != c)
        n_own = int(per_user * 0.85)
        picks = np.concatenate([rng.choice(own, size=min(n_own, own.size), replace=False),
                                rng.choice(other, size=per_user - min(n_own, own.size), replace=False)])
        rng.shuffle(picks)
        for j, it in enumerate(picks):
            rows.append((f"u{u}", f"i{it}", t0 + u * 10_000 + j * 60, "click", 1.0))
    inter = pl.DataFrame(rows, schema={"user_id": pl.String, "item_id": pl.String, "timestamp": pl.Int64,
                                       "event": pl.String, "weight": pl.Float32}, orient="row")
    items = pl.DataFrame({"item_id": [f"i{i}" for i in range(n_items)],
                          "title": [f"Item {i}" for i in range(n_items)],
                          "categories": [[f"cat{item_cluster[i]}"] for i in range(n_items)]})
    return inter, items
