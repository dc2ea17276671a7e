"""Interactions → a user×item CSR matrix with id maps local to one artifact version."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import polars as pl
import scipy.sparse as sp

from recsys.candidates.keys import unique_sorted


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


@dataclass
class CodedInteractions:
    """Interactions as integer arrays sorted by (user, timestamp, item), plus the id maps.

    Why: at 1M users every stage joining string ids and sorting the log on its own dominated the
    refresh. Coding once and sorting once turns the matrix, popularity, co-visitation and recent
    histories into linear passes over arrays. Indices follow the sorted external ids, so ordering
    by index is ordering by id: results equal the per-stage string versions.
    """

    user: np.ndarray  # int32 [n_events], row index
    item: np.ndarray  # int32 [n_events], column index
    timestamp: np.ndarray  # int64 [n_events]
    user_ids: np.ndarray  # str [n_users]
    item_ids: np.ndarray  # str [n_items]

    @property
    def n_users(self) -> int:
        return int(self.user_ids.size)

    @property
    def n_items(self) -> int:
        return int(self.item_ids.size)

    def pair_keys(self) -> np.ndarray:
        """user * n_items + item per event (int64): one number per (user, item) pair."""
        return self.user.astype(np.int64) * self.n_items + self.item

    def to_matrix(self) -> InteractionMatrix:
        """The binary user×item CSR matrix (repeated pairs count once), canonical format."""
        keys = self.pair_keys()
        keys.sort()
        pairs = unique_sorted(keys, presorted=True)
        del keys
        # Row r's pairs are the keys in [r * n_items, (r + 1) * n_items): no per-pair row array needed.
        indptr = np.searchsorted(pairs, np.arange(self.n_users + 1, dtype=np.int64) * self.n_items)
        pairs %= self.n_items
        mat = sp.csr_matrix((np.ones(pairs.size, dtype=np.float32), pairs.astype(np.int32), indptr),
                            shape=(self.n_users, self.n_items))
        mat.has_canonical_format = True
        return InteractionMatrix(mat, self.user_ids, self.item_ids)


def code_interactions(interactions: pl.DataFrame, item_ids: np.ndarray | None = None) -> CodedInteractions:
    """Map ids to indices (users: all users of the log; items: `item_ids` or the log's) and sort once.

    Rows whose item is not in `item_ids` are dropped; their users keep an (empty) row.
    """
    users = interactions["user_id"].unique().sort()
    items = pl.Series("item_id", item_ids, dtype=pl.String) if item_ids is not None else (
        interactions["item_id"].unique().sort())
    # An Enum's physical value is the position in its categories: the index, without a join
    # (a join of 50M string rows needed ~1.7 GB more at its peak).
    user = interactions["user_id"].cast(pl.Enum(users)).to_physical()
    item = interactions["item_id"].cast(pl.Enum(items), strict=False).to_physical()
    coded = pl.DataFrame({"_u": user, "timestamp": interactions["timestamp"], "_i": item})
    if item_ids is not None:
        coded = coded.drop_nulls("_i")
    coded = coded.sort(["_u", "timestamp", "_i"])
    return CodedInteractions(coded["_u"].to_numpy().astype(np.int32), coded["_i"].to_numpy().astype(np.int32),
                             coded["timestamp"].to_numpy().astype(np.int64, copy=False),
                             users.to_numpy().astype(str), items.to_numpy().astype(str))


def build_matrix(interactions: pl.DataFrame, item_ids: np.ndarray | None = None) -> InteractionMatrix:
    """Build the binary matrix; `item_ids` fixes the column space (e.g. the full catalogue)."""
    return code_interactions(interactions, item_ids).to_matrix()


@dataclass
class Histories:
    """Every user's recent item indices in one CSR-like pair of arrays; `histories[u]` is user u's.

    Why: a list of a million small numpy arrays costs ~100 bytes of overhead each and a Python loop
    to build and to encode; two flat arrays cost neither.
    """

    indptr: np.ndarray  # int64 [n_users + 1]
    indices: np.ndarray  # int32 [total], oldest first within a user

    def __len__(self) -> int:
        return int(self.indptr.size - 1)

    def __getitem__(self, user: int) -> np.ndarray:
        return self.indices[self.indptr[user]:self.indptr[user + 1]].astype(np.int64)

    def __iter__(self) -> Iterator[np.ndarray]:
        return (self[u] for u in range(len(self)))

    def lengths(self) -> np.ndarray:
        return np.diff(self.indptr)

    def to_csr(self, n_items: int) -> sp.csr_matrix:
        """Users × items, 1.0 per history item (histories hold distinct items)."""
        return sp.csr_matrix((np.ones(self.indices.size, dtype=np.float32), self.indices, self.indptr),
                             shape=(len(self), n_items))

    @classmethod
    def from_lists(cls, histories: list[np.ndarray]) -> Histories:
        lengths = np.fromiter((h.size for h in histories), dtype=np.int64, count=len(histories))
        indptr = np.zeros(len(histories) + 1, dtype=np.int64)
        np.cumsum(lengths, out=indptr[1:])
        indices = np.concatenate(histories).astype(np.int32) if histories else np.zeros(0, dtype=np.int32)
        return cls(indptr, indices)


def recent_histories_coded(coded: CodedInteractions, limit: int) -> Histories:
    """Each user's last `limit` distinct items, oldest first; a repeated item counts at its last time."""
    keep = np.ones(coded.user.size, dtype=bool)
    keys = coded.pair_keys()
    ordered = np.sort(keys)
    if ordered.size and (ordered[1:] == ordered[:-1]).any():
        # Stable sort: within a run of equal pairs positions ascend, so the run's end is the last event.
        order = np.argsort(keys, kind="stable")
        last = np.ones(order.size, dtype=bool)
        last[:-1] = keys[order[1:]] != keys[order[:-1]]
        keep[:] = False
        keep[order[last]] = True
    users, items = coded.user[keep], coded.item[keep]
    counts = np.bincount(users, minlength=coded.n_users)
    ends = np.cumsum(counts)
    from_end = ends[users] - np.arange(users.size) - 1
    tail = from_end < limit
    indptr = np.zeros(coded.n_users + 1, dtype=np.int64)
    np.cumsum(np.minimum(counts, limit), out=indptr[1:])
    return Histories(indptr, items[tail].astype(np.int32))


def recent_histories(interactions: pl.DataFrame, user_ids: np.ndarray, item_index_map: pl.DataFrame,
                     limit: int) -> Histories:
    """Each user's last `limit` distinct item indices, oldest first (for online features)."""
    ordered = (interactions.select("user_id", "item_id", "timestamp")
               .join(item_index_map, on="item_id", how="inner")
               .sort(["user_id", "timestamp", "item_id"])
               .unique(subset=["user_id", "_i"], keep="last", maintain_order=True)
               .group_by("user_id", maintain_order=True).agg(pl.col("_i").tail(limit)))
    by_user = dict(zip(ordered["user_id"].to_list(), ordered["_i"].to_list(), strict=True))
    return Histories.from_lists([np.asarray(by_user.get(str(u), []), dtype=np.int64) for u in user_ids.tolist()])
