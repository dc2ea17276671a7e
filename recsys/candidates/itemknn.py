"""Item-kNN: cosine similarity between items' user sets, top-k neighbours per item (sparse).

Each user's history is capped at its last `max_history` items so the cost stays linear in users
(sum of squared history lengths), and item rows are processed in blocks to bound memory.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def itemknn(user_items: sp.csr_matrix, *, top_k: int = 50, shrink: float = 10.0) -> sp.csr_matrix:
    """Item × item cosine similarity (with shrinkage), keeping each row's `top_k` neighbours."""
    x = user_items.tocsc().astype(np.float32)
    x.data[:] = 1.0
    norms = np.sqrt(np.asarray(x.sum(axis=0)).ravel())
    xt = x.T.tocsr()
    n_items = x.shape[1]
    block = max(64, min(4096, int(3e7 // max(n_items, 1))))  # ~120 MB of dense similarities per block
    rows, cols, vals = [], [], []
    for start in range(0, n_items, block):
        stop = min(start + block, n_items)
        co = (xt[start:stop] @ x).toarray()  # co-occurrence counts, block × items
        denom = np.outer(norms[start:stop], norms) + shrink
        sim = np.divide(co, denom, out=np.zeros_like(co), where=denom > 0)
        sim[np.arange(stop - start), np.arange(start, stop)] = 0.0  # no self-similarity
        k = min(top_k, n_items - 1)
        if k <= 0:
            continue
        top = np.argpartition(-sim, k - 1, axis=1)[:, :k]
        top_vals = np.take_along_axis(sim, top, axis=1)
        keep = top_vals > 0
        r = np.repeat(np.arange(start, stop), k).reshape(-1, k)
        rows.append(r[keep])
        cols.append(top[keep])
        vals.append(top_vals[keep])
    if not rows:
        return sp.csr_matrix((n_items, n_items), dtype=np.float32)
    return sp.csr_matrix((np.concatenate(vals).astype(np.float32), (np.concatenate(rows), np.concatenate(cols))),
                         shape=(n_items, n_items))
