"""Co-visitation: items that follow each other within a user's session, as sparse neighbour lists.

Pairs are counted over the coded log in chunks of events (memory stays at one chunk's pairs plus
the distinct pairs so far, never all ~10^8 pair occurrences of a 1M-user log at once), as one
unordered key per pair, and each row is pruned to its top neighbours without a Python loop.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import scipy.sparse as sp

from recsys.candidates.keys import unique_counts
from recsys.candidates.matrix import CodedInteractions, code_interactions
from recsys.candidates.topn import top_n_per_row

CHUNK_EVENTS = 4_000_000
TOP_N_BLOCK_ENTRIES = 8_000_000  # mirrored entries pruned at once: bounds the top-n step's memory


def covisitation(interactions: pl.DataFrame, item_index_map: pl.DataFrame, n_items: int, *,
                 window: int = 5, session_gap_seconds: int = 1800, top_n: int = 50) -> sp.csr_matrix:
    """Count pairs (a, b) where b comes within `window` events after a in the same session.

    Sessions split on gaps longer than `session_gap_seconds`; MovieLens-style logs with many events
    per second still form sessions. Symmetric counts, each row pruned to its `top_n` neighbours
    (ties to the lower item index). `item_index_map` (item_id → _i) fixes the column space.
    """
    ids = item_index_map.sort("_i")["item_id"].to_numpy()
    if ids.size != n_items:
        raise ValueError(f"item_index_map has {ids.size} items, expected {n_items}")
    return covisitation_coded(code_interactions(interactions, ids), window=window,
                              session_gap_seconds=session_gap_seconds, top_n=top_n)


def covisitation_coded(coded: CodedInteractions, *, window: int = 5, session_gap_seconds: int = 1800,
                       top_n: int = 50, chunk_events: int = CHUNK_EVENTS,
                       block_entries: int = TOP_N_BLOCK_ENTRIES) -> sp.csr_matrix:
    """`covisitation` over an already coded log sorted by (user, timestamp, item)."""
    n_items, n = coded.n_items, coded.user.size
    if n == 0:
        return sp.csr_matrix((n_items, n_items), dtype=np.float32)
    gap = np.diff(coded.timestamp, prepend=coded.timestamp[:1])
    new_user = np.ones(n, dtype=bool)
    new_user[1:] = coded.user[1:] != coded.user[:-1]
    session = np.cumsum(new_user | (gap > session_gap_seconds))
    # Unordered pair key lo * n_items + hi; uint32 when it fits (half the sort work of int64).
    key_dtype = np.uint32 if n_items * n_items < 2**32 else np.int64
    items = coded.item.astype(key_dtype)
    keys = np.zeros(0, dtype=key_dtype)
    counts = np.zeros(0, dtype=np.int64)
    for start in range(0, n, chunk_events):
        stop = min(start + chunk_events, n)
        parts = []
        for lag in range(1, window + 1):
            a = np.arange(start, min(stop, n - lag))
            if a.size == 0:
                continue
            same = session[a] == session[a + lag]
            x, y = items[a[same]], items[a[same] + lag]
            differ = x != y
            x, y = x[differ], y[differ]
            parts.append(np.minimum(x, y) * key_dtype(n_items) + np.maximum(x, y))
        if not parts:
            continue
        chunk_keys, chunk_counts = unique_counts(np.concatenate(parts))
        keys, counts = _merge_counts(keys, counts, chunk_keys, chunk_counts)
    return _symmetric_top_n(keys, counts, n_items, top_n, block_entries)


def _symmetric_top_n(keys: np.ndarray, counts: np.ndarray, n_items: int, top_n: int,
                     block_entries: int = TOP_N_BLOCK_ENTRIES) -> sp.csr_matrix:
    """Top-n per row of the symmetric matrix whose upper triangle is (keys, counts), in row blocks.

    Row r holds the pairs with lo == r (a contiguous run of the sorted keys) and those with hi == r;
    a block of rows is mirrored and pruned at a time, so at most ~`block_entries` entries are in
    flight instead of twice all distinct pairs.
    """
    lo, hi = np.divmod(keys, keys.dtype.type(n_items))
    lo, hi = lo.astype(np.int32), hi.astype(np.int32)
    vals = counts.astype(np.float32)
    per_row = np.bincount(lo, minlength=n_items) + np.bincount(hi, minlength=n_items)
    bounds = np.searchsorted(np.cumsum(per_row), np.arange(block_entries, int(per_row.sum()), block_entries))
    edges = np.unique(np.concatenate([[0], bounds + 1, [n_items]]).clip(0, n_items))
    lo_starts = np.searchsorted(lo, edges)  # keys are sorted, so lo is sorted
    parts = []
    for b in range(edges.size - 1):
        r0, r1 = int(edges[b]), int(edges[b + 1])
        a = slice(lo_starts[b], lo_starts[b + 1])
        mirror = np.flatnonzero((hi >= r0) & (hi < r1))
        rows = np.concatenate([lo[a], hi[mirror]]).astype(np.int64) - r0
        cols = np.concatenate([hi[a], lo[mirror]])
        block = top_n_per_row(rows, cols, np.concatenate([vals[a], vals[mirror]]), (r1 - r0, n_items), top_n)
        parts.append(block)
    return sp.vstack(parts, format="csr", dtype=np.float32) if parts else \
        sp.csr_matrix((n_items, n_items), dtype=np.float32)


def _merge_counts(keys: np.ndarray, counts: np.ndarray, new_keys: np.ndarray, new_counts: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Add (new_keys, new_counts) into the sorted unique (keys, counts); both inputs sorted and unique."""
    if keys.size == 0:
        return new_keys, new_counts
    pos = np.searchsorted(keys, new_keys)
    hit = pos < keys.size
    hit[hit] = keys[pos[hit]] == new_keys[hit]
    counts = counts.copy()
    counts[pos[hit]] += new_counts[hit]  # new_keys are unique, so each position is hit at most once
    miss = ~hit
    return np.insert(keys, pos[miss], new_keys[miss]), np.insert(counts, pos[miss], new_counts[miss])
