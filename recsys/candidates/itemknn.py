"""Item-kNN: cosine similarity between items' user sets, top-k neighbours per item (sparse).

Cost is the sum over users of their squared history length: the caller caps each history (recent
items only), and above `max_pairs` the similarities are estimated from a seeded random sample of
users whose work fits the budget, so the cost stops growing with the user count. Blocks of item
rows are multiplied sparse × sparse with bounded work per block; nothing of size items × items is
ever dense.
"""

from __future__ import annotations

import logging

import numpy as np
import scipy.sparse as sp

from recsys.candidates.topn import top_n_per_row

log = logging.getLogger(__name__)

BLOCK_WORK = 10_000_000  # multiply-adds per block of item rows: bounds the block's co-occurrence entries


def itemknn(user_items: sp.csr_matrix, *, top_k: int = 50, shrink: float = 10.0, max_pairs: int | None = None,
            seed: int = 42) -> sp.csr_matrix:
    """Item × item cosine similarity (with shrinkage), keeping each row's `top_k` neighbours.

    Ties go to the lower item index. `max_pairs` caps the work (sum of squared history lengths).
    """
    x = user_items.tocsr().astype(np.float32, copy=True)
    x.data[:] = 1.0
    n_items = x.shape[1]
    k = min(top_k, n_items - 1)
    if k <= 0 or x.nnz == 0:
        return sp.csr_matrix((n_items, n_items), dtype=np.float32)
    x = _sample_users(x, max_pairs, seed)
    lengths = np.diff(x.indptr).astype(np.float64)
    norms = np.sqrt(np.asarray(x.sum(axis=0), dtype=np.float32).ravel())
    xt = x.T.tocsr()
    work = np.cumsum(xt @ lengths)  # multiply-adds of each item row's product, cumulated
    rows, cols, vals = [], [], []
    start = 0
    while start < n_items:
        stop = int(np.searchsorted(work, (work[start - 1] if start else 0.0) + BLOCK_WORK, side="right"))
        stop = min(max(stop, start + 1), n_items)
        co = xt[start:stop] @ x
        r = np.repeat(np.arange(stop - start), np.diff(co.indptr))
        c = co.indices
        sim = co.data / (norms[start:stop][r] * norms[c] + np.float32(shrink))
        keep = (c != r + start) & (sim > 0)  # no self-similarity
        top = top_n_per_row(r[keep], c[keep], sim[keep], (stop - start, n_items), k).tocoo()
        rows.append(top.row.astype(np.int64) + start)
        cols.append(top.col)
        vals.append(top.data)
        start = stop
    return sp.csr_matrix((np.concatenate(vals).astype(np.float32), (np.concatenate(rows), np.concatenate(cols))),
                         shape=(n_items, n_items))


def _sample_users(x: sp.csr_matrix, max_pairs: int | None, seed: int) -> sp.csr_matrix:
    """All users when their work fits `max_pairs`, else a seeded random subset that fits (rows kept in order)."""
    lengths = np.diff(x.indptr).astype(np.int64)
    total = int((lengths * lengths).sum())
    if max_pairs is None or total <= max_pairs:
        return x
    perm = np.random.default_rng(seed).permutation(x.shape[0])
    fits = int(np.searchsorted(np.cumsum(lengths[perm] ** 2), max_pairs, side="right"))
    chosen = np.sort(perm[:max(fits, 1)])
    log.info("event=itemknn_sampled users=%d of=%d pairs=%d budget=%d", chosen.size, x.shape[0], total, max_pairs)
    return x[chosen]
