"""Co-visitation: items that follow each other within a user's session, as sparse neighbour lists."""

from __future__ import annotations

import numpy as np
import polars as pl
import scipy.sparse as sp


def covisitation(interactions: pl.DataFrame, item_index_map: pl.DataFrame, n_items: int, *,
                 window: int = 5, session_gap_seconds: int = 1800, top_n: int = 50) -> sp.csr_matrix:
    """Count pairs (a, b) where b comes within `window` events after a in the same session.

    Sessions split on gaps longer than `session_gap_seconds`; MovieLens-style logs with many events
    per second still form sessions. Symmetric counts, each row pruned to its `top_n` neighbours.
    """
    ordered = (interactions.select("user_id", "item_id", "timestamp").join(item_index_map, on="item_id")
               .sort(["user_id", "timestamp", "item_id"]))
    if ordered.height == 0:
        return sp.csr_matrix((n_items, n_items), dtype=np.float32)
    gap = ordered["timestamp"].diff().fill_null(0).to_numpy()
    new_user = (ordered["user_id"] != ordered["user_id"].shift(1)).fill_null(True).to_numpy()
    session = np.cumsum(new_user | (gap > session_gap_seconds))
    items = ordered["_i"].to_numpy().astype(np.int64)
    rows, cols = [], []
    for lag in range(1, window + 1):
        same = session[lag:] == session[:-lag]
        a, b = items[:-lag][same], items[lag:][same]
        keep = a != b
        rows.extend([a[keep], b[keep]])
        cols.extend([b[keep], a[keep]])
    r = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
    c = np.concatenate(cols) if cols else np.zeros(0, dtype=np.int64)
    mat = sp.csr_matrix((np.ones(r.size, dtype=np.float32), (r, c)), shape=(n_items, n_items))
    mat.sum_duplicates()
    return _top_n_per_row(mat, top_n)


def _top_n_per_row(mat: sp.csr_matrix, top_n: int) -> sp.csr_matrix:
    indptr, indices, data = mat.indptr, mat.indices, mat.data
    out_r, out_c, out_d = [], [], []
    for row in range(mat.shape[0]):
        lo, hi = indptr[row], indptr[row + 1]
        if hi == lo:
            continue
        d = data[lo:hi]
        keep = np.argsort(-d, kind="stable")[:top_n]
        out_r.append(np.full(keep.size, row))
        out_c.append(indices[lo:hi][keep])
        out_d.append(d[keep])
    if not out_r:
        return sp.csr_matrix(mat.shape, dtype=np.float32)
    return sp.csr_matrix((np.concatenate(out_d), (np.concatenate(out_r), np.concatenate(out_c))),
                         shape=mat.shape, dtype=np.float32)
