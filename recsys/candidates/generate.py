"""Batch top-N candidates for every user: FAISS search, seen items removed, popularity fill.

Users are processed in chunks sorted by history length, so each FAISS search asks for only as
many extra neighbours as that chunk's heaviest user has seen, never a Python loop per user.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from recsys.candidates.index import ItemIndex


@dataclass
class CandidateLists:
    """Row i belongs to user i: item indices (-1 = none), scores, and how many came from ALS."""

    items: np.ndarray  # int64 [n_users, n]
    scores: np.ndarray  # float32 [n_users, n]
    n_primary: np.ndarray  # int32 [n_users]

    def row(self, i: int) -> tuple[np.ndarray, np.ndarray, int]:
        valid = self.items[i] >= 0
        return self.items[i][valid], self.scores[i][valid], int(self.n_primary[i])


def generate_candidates(user_factors: np.ndarray, item_factors: np.ndarray, index: ItemIndex,
                        seen: sp.csr_matrix, popular: np.ndarray, n: int = 100, *, chunk_size: int = 4096,
                        progress: Callable[[int], None] | None = None) -> CandidateLists:
    """Top-`n` unseen items per user by ALS score; rows short of `n` are filled by popularity."""
    n_users, n_items = seen.shape
    n = min(n, n_items)
    out_items = np.full((n_users, n), -1, dtype=np.int64)
    out_scores = np.zeros((n_users, n), dtype=np.float32)
    n_primary = np.zeros(n_users, dtype=np.int32)
    seen_counts = np.diff(seen.indptr)
    order = np.argsort(seen_counts, kind="stable")
    for start in range(0, n_users, chunk_size):
        rows = order[start:start + chunk_size]
        k = min(n_items, n + int(seen_counts[rows].max()))
        ids, scores = index.search(user_factors[rows], k)
        # Mask seen items: key (row, item) pairs and test membership in one sorted pass.
        sub = seen[rows]
        seen_keys = np.repeat(np.arange(rows.size, dtype=np.int64), np.diff(sub.indptr)) * n_items + sub.indices
        cand_keys = np.arange(rows.size, dtype=np.int64)[:, None] * n_items + np.where(ids < 0, 0, ids)
        masked = np.isin(cand_keys, seen_keys) | (ids < 0)
        pick = np.argsort(masked, axis=1, kind="stable")[:, :n]
        chosen = np.take_along_axis(ids, pick, axis=1)
        chosen_scores = np.take_along_axis(scores, pick, axis=1)
        valid = ~np.take_along_axis(masked, pick, axis=1)
        out_items[rows] = np.where(valid, chosen, -1)
        out_scores[rows] = np.where(valid, chosen_scores, 0.0)
        n_primary[rows] = valid.sum(axis=1)
        if progress is not None:
            progress(rows.size)
    short = np.flatnonzero(n_primary < n)
    for u in short:
        _fill_from_popularity(u, out_items, out_scores, seen, popular, user_factors, item_factors, n_primary)
    # The store keeps float16 scores: quantise here so offline features equal the served ones exactly.
    return CandidateLists(out_items, out_scores.astype(np.float16).astype(np.float32), n_primary)


def _fill_from_popularity(u: int, items: np.ndarray, scores: np.ndarray, seen: sp.csr_matrix,
                          popular: np.ndarray, user_factors: np.ndarray, item_factors: np.ndarray,
                          n_primary: np.ndarray) -> None:
    have = int(n_primary[u])
    need = items.shape[1] - have
    blocked = set(seen.indices[seen.indptr[u]:seen.indptr[u + 1]].tolist()) | set(items[u, :have].tolist())
    fill = [i for i in popular[: have + need + len(blocked)].tolist() if i not in blocked][:need]
    if fill:
        idx = np.asarray(fill, dtype=np.int64)
        items[u, have:have + idx.size] = idx
        # Fill items keep their true ALS score so the ranker sees comparable values.
        scores[u, have:have + idx.size] = item_factors[idx] @ user_factors[u]


def encode_rows(lists: CandidateLists) -> list[bytes]:
    """Encode every user's list at once; irregular rows (fewer than n) go through the scalar codec."""
    from recsys.store.codec import encode_candidates

    n_users, n = lists.items.shape
    wide = lists.items.max(initial=0) >= 65535
    header = np.zeros((n_users, 6), dtype=np.uint8)
    header[:, 0] = 0xC1
    header[:, 1] = 1 if wide else 0
    header[:, 2:4] = np.frombuffer(np.full(n_users, n, dtype="<u2").tobytes(), dtype=np.uint8).reshape(-1, 2)
    header[:, 4:6] = np.frombuffer(lists.n_primary.astype("<u2").tobytes(), dtype=np.uint8).reshape(-1, 2)
    idx = np.where(lists.items < 0, 0, lists.items).astype("<u4" if wide else "<u2")
    body = np.concatenate([header, idx.view(np.uint8).reshape(n_users, -1),
                           lists.scores.astype("<f2").view(np.uint8).reshape(n_users, -1)], axis=1)
    complete = (lists.items >= 0).all(axis=1)
    out = [row.tobytes() for row in body]
    for u in np.flatnonzero(~complete):
        items, scores, primary = lists.row(int(u))
        out[u] = encode_candidates(items, scores, min(primary, items.size))
    return out
