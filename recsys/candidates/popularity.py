"""Popularity: all-time and recent-window counts, the fallback of every other source."""

from __future__ import annotations

import numpy as np
import polars as pl
import scipy.sparse as sp

from recsys.candidates.matrix import CodedInteractions


def popularity_counts(interactions: pl.DataFrame, item_index_map: pl.DataFrame, n_items: int,
                      *, recent_days: float) -> tuple[np.ndarray, np.ndarray]:
    """(all-time distinct-user counts, counts within the last `recent_days` of the log) per item index."""
    coded = interactions.select("user_id", "item_id", "timestamp").join(item_index_map, on="item_id")
    end = int(coded["timestamp"].max()) if coded.height else 0  # type: ignore[arg-type]  # an int column
    all_time = np.zeros(n_items, dtype=np.float32)
    recent = np.zeros(n_items, dtype=np.float32)
    per_item = coded.unique(subset=["user_id", "_i"]).group_by("_i").len()
    all_time[per_item["_i"].to_numpy()] = per_item["len"].to_numpy()
    recent_rows = coded.filter(pl.col("timestamp") >= end - int(recent_days * 86400)).group_by("_i").len()
    recent[recent_rows["_i"].to_numpy()] = recent_rows["len"].to_numpy()
    return all_time, recent


def popular_order(all_time: np.ndarray) -> np.ndarray:
    """Item indices by descending popularity, ties broken by index (deterministic)."""
    return np.lexsort((np.arange(all_time.size), -all_time))


def popularity_counts_coded(coded: CodedInteractions, matrix: sp.csr_matrix, *, recent_days: float
                            ) -> tuple[np.ndarray, np.ndarray]:
    """`popularity_counts` from the coded log: distinct users per item are the matrix's column counts."""
    n_items = coded.n_items
    all_time = np.bincount(matrix.indices, minlength=n_items).astype(np.float32)
    if coded.timestamp.size == 0:
        return all_time, np.zeros(n_items, dtype=np.float32)
    end = int(coded.timestamp.max())
    recent_items = coded.item[coded.timestamp >= end - int(recent_days * 86400)]
    return all_time, np.bincount(recent_items, minlength=n_items).astype(np.float32)
