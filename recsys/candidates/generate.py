"""Batch top-N candidates for every user: FAISS search, seen items removed, popularity fill.

Users are processed in chunks sorted by history length, so each FAISS search asks for only as
many extra neighbours as that chunk's heaviest user has seen, never a Python loop per user.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from recsys.candidates.index import ItemIndex

log = logging.getLogger(__name__)


@dataclass
class CandidateLists:
    """Row i belongs to user i: item indices (-1 = none), their ALS scores, how many came from ALS, and
    the user vector as the store keeps it (quantised: the served ALS scores are recomputed from it)."""

    items: np.ndarray  # int64 [n_users, n]
    scores: np.ndarray  # float32 [n_users, n]: what the search found (generation order); not stored
    n_primary: np.ndarray  # int32 [n_users]
    user_vectors: np.ndarray  # float32 [n_users, factors], quantised (quantise_vectors)

    def row(self, i: int) -> tuple[np.ndarray, np.ndarray, int]:
        """(items, user vector, n_primary): a `CachedList` exactly as the store returns it."""
        valid = self.items[i] >= 0
        return self.items[i][valid], self.user_vectors[i], int(self.n_primary[i])


def generate_candidates(user_factors: np.ndarray, item_factors: np.ndarray, index: ItemIndex,
                        seen: sp.csr_matrix, popular: np.ndarray, n: int = 100, *, chunk_size: int = 4096,
                        progress: Callable[[int], None] | None = None) -> CandidateLists:
    """Top-`n` unseen items per user by ALS score; rows short of `n` are filled by popularity.

    With an approximate index a heavy user's probed lists can hold fewer than `n` unseen items:
    those rows are searched again exactly, so only a catalogue the user has nearly exhausted ends
    in popularity fill.
    """
    n_users, n_items = seen.shape
    n = min(n, n_items)
    if not seen.has_sorted_indices:
        seen = seen.copy()
        seen.sort_indices()
    out_items = np.full((n_users, n), -1, dtype=np.int64)
    out_scores = np.zeros((n_users, n), dtype=np.float32)
    n_primary = np.zeros(n_users, dtype=np.int32)
    seen_counts = np.diff(seen.indptr)
    order = np.argsort(seen_counts, kind="stable")
    for start in range(0, n_users, chunk_size):
        rows = order[start:start + chunk_size]
        _top_unseen(index, user_factors, seen, rows, n, out_items, out_scores, n_primary)
        if progress is not None:
            progress(rows.size)
    short = np.flatnonzero(n_primary < np.minimum(n, n_items - seen_counts))
    if short.size and index.kind != "flat":
        log.info("event=exact_research users=%d index=%s", short.size, index.kind)
        exact = ItemIndex("flat").fit(item_factors)
        for start in range(0, short.size, chunk_size):
            _top_unseen(exact, user_factors, seen, short[start:start + chunk_size], n, out_items, out_scores,
                        n_primary)
    short = np.flatnonzero(n_primary < n)
    for u in short:
        _fill_from_popularity(int(u), out_items, out_scores, seen, popular, user_factors, item_factors, n_primary)
    return CandidateLists(out_items, out_scores, n_primary, quantise_vectors(user_factors))


def quantise_vectors(vectors: np.ndarray) -> np.ndarray:
    """User vectors as the store keeps them, as float32: int8 q with one float16 scale per user
    (scale = max |factor| / 127, factor = q * scale). recsys.store.codec encodes the same rule
    (`quantise_rows`; a test checks they agree bit for bit), so offline features equal the served ones."""
    shape = np.shape(vectors)
    v = np.asarray(vectors, dtype=np.float32).reshape(-1, shape[-1])  # one vector or a batch
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        scale = (np.abs(v).max(axis=1, initial=0.0) / np.float32(127)).astype(np.float16).astype(np.float32)
        s32 = scale[:, None]
        ok = np.isfinite(v).all(axis=1, keepdims=True) & (s32 > 0) & np.isfinite(s32)
        q = np.clip(np.rint(np.where(ok, v / np.where(ok, s32, 1), 0)), -127, 127).astype(np.int8)
    scale[~np.isfinite(v).all(axis=1)] = np.nan
    return (q.astype(np.float32) * scale[:, None]).reshape(shape)


def _top_unseen(index: ItemIndex, user_factors: np.ndarray, seen: sp.csr_matrix, rows: np.ndarray, n: int,
                out_items: np.ndarray, out_scores: np.ndarray, n_primary: np.ndarray) -> None:
    """Search `rows` for n + (most seen in the chunk) items, drop seen ones, keep the first `n`."""
    n_items = seen.shape[1]
    seen_counts = seen.indptr[rows + 1] - seen.indptr[rows]
    k = min(n_items, n + int(seen_counts.max()))
    ids, scores = index.search(user_factors[rows], k)
    # Mask seen items: key (row, item) pairs; the seen keys are sorted (row-major, sorted indices),
    # so one binary search per candidate tests membership.
    sub = seen[rows]
    seen_keys = np.repeat(np.arange(rows.size, dtype=np.int64), np.diff(sub.indptr)) * n_items + sub.indices
    cand_keys = np.arange(rows.size, dtype=np.int64)[:, None] * n_items + np.where(ids < 0, 0, ids)
    if seen_keys.size:
        pos = np.minimum(np.searchsorted(seen_keys, cand_keys), seen_keys.size - 1)
        masked = (seen_keys[pos] == cand_keys) | (ids < 0)
    else:
        masked = ids < 0
    pick = np.argsort(masked, axis=1, kind="stable")[:, :n]
    chosen = np.take_along_axis(ids, pick, axis=1)
    chosen_scores = np.take_along_axis(scores, pick, axis=1)
    valid = ~np.take_along_axis(masked, pick, axis=1)
    width = pick.shape[1]
    out_items[rows] = -1
    out_scores[rows] = 0.0
    out_items[rows, :width] = np.where(valid, chosen, -1)
    out_scores[rows, :width] = np.where(valid, chosen_scores, 0.0)
    n_primary[rows] = valid.sum(axis=1)


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
