"""Interactions → a user×item CSR matrix with id maps local to one artifact version."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
import scipy.sparse as sp


@dataclass
class InteractionMatrix:
    """Binary user×item matrix plus the external ids of its rows and columns (sorted, deterministic)."""

    matrix: sp.csr_matrix  # float32, 1.0 where the user interacted with the item
    user_ids: np.ndarray  # str, row order
    item_ids: np.ndarray  # str, column order

    @property
    def n_users(self) -> int:
        return int(self.matrix.shape[0])

    @property
    def n_items(self) -> int:
        return int(self.matrix.shape[1])

    def item_index(self) -> dict[str, int]:
        return {str(it): i for i, it in enumerate(self.item_ids.tolist())}

    def user_index(self) -> dict[str, int]:
        return {str(u): i for i, u in enumerate(self.user_ids.tolist())}


def build_matrix(interactions: pl.DataFrame, item_ids: np.ndarray | None = None) -> InteractionMatrix:
    """Build the binary matrix; `item_ids` fixes the column space (e.g. the full catalogue)."""
    users = interactions["user_id"].unique().sort()
    items = pl.Series("item_id", item_ids) if item_ids is not None else (
        interactions["item_id"].unique().sort())
    u_map = pl.DataFrame({"user_id": users, "_u": np.arange(users.len(), dtype=np.int32)})
    i_map = pl.DataFrame({"item_id": items, "_i": np.arange(items.len(), dtype=np.int32)})
    coded = (interactions.select("user_id", "item_id").join(u_map, on="user_id", how="inner")
             .join(i_map, on="item_id", how="inner"))
    rows = coded["_u"].to_numpy()
    cols = coded["_i"].to_numpy()
    data = np.ones(rows.size, dtype=np.float32)
    mat = sp.csr_matrix((data, (rows, cols)), shape=(users.len(), items.len()), dtype=np.float32)
    mat.sum_duplicates()
    mat.data[:] = 1.0  # repeats do not add confidence: binary implicit feedback
    return InteractionMatrix(mat, users.to_numpy().astype(str), items.to_numpy().astype(str))


def recent_histories(interactions: pl.DataFrame, user_ids: np.ndarray, item_index_map: pl.DataFrame,
                     limit: int) -> list[np.ndarray]:
    """Each user's last `limit` distinct item indices, oldest first (for online features)."""
    ordered = (interactions.select("user_id", "item_id", "timestamp")
               .join(item_index_map, on="item_id", how="inner")
               .sort(["user_id", "timestamp", "item_id"])
               .unique(subset=["user_id", "_i"], keep="last", maintain_order=True)
               .group_by("user_id", maintain_order=True).agg(pl.col("_i").tail(limit)))
    by_user = dict(zip(ordered["user_id"].to_list(), ordered["_i"].to_list(), strict=True))
    return [np.asarray(by_user.get(str(u), []), dtype=np.int64) for u in user_ids.tolist()]
