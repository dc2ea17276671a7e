"""Each row's top-n entries of a sparse matrix, vectorised (no Python loop per row).

Why: co-visitation and item-kNN keep the strongest neighbours of each of up to ~10^5 items; a Python
loop per row, or one `np.lexsort` over ~10^8 entries, took minutes at 1M users. Packing
(row, value rank, column) into one int64 and sorting that with numpy's SIMD sort is ~10x faster and
exactly reproduces "descending value, ties to the lower column".
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

_RANK_BITS = 31  # float32 bit patterns of non-negative values lie in [0, 2^31)
_RANK_MAX = (1 << _RANK_BITS) - 1


def top_n_per_row(rows: np.ndarray, cols: np.ndarray, values: np.ndarray, shape: tuple[int, int],
                  n: int) -> sp.csr_matrix:
    """Keep each row's `n` largest values; ties go to the lower column. Returns canonical float32 CSR.

    `(rows, cols)` pairs must be unique and `values` non-negative: the bit pattern of a non-negative
    float32 orders like its value, which is what makes the single-key sort exact.
    """
    n_rows, n_cols = int(shape[0]), int(shape[1])
    vals = np.asarray(values, dtype=np.float32) + np.float32(0.0)  # -0.0 -> +0.0 (its sign bit breaks the key)
    if vals.size and float(vals.min()) < 0:
        raise ValueError("top_n_per_row needs non-negative values")
    if vals.size == 0 or n <= 0:
        return sp.csr_matrix((n_rows, n_cols), dtype=np.float32)
    rows = np.asarray(rows, dtype=np.int64)
    cols = np.asarray(cols, dtype=np.int64)
    # key = local_row | value rank (31 bits) | column: bit fields, so decoding is shifts and masks.
    col_bits = max(1, int(n_cols - 1).bit_length())
    rank_shift = col_bits
    row_shift = col_bits + _RANK_BITS
    per_block = 1 << max(0, 62 - row_shift)
    if n_rows <= per_block:
        blocks = [(0, slice(None))]
    else:
        order = np.argsort(rows, kind="stable")
        bounds = np.searchsorted(rows[order], np.arange(0, n_rows + per_block, per_block))
        blocks = [(start, order[lo:hi]) for start, lo, hi in
                  zip(range(0, n_rows, per_block), bounds[:-1], bounds[1:], strict=False) if hi > lo]
    out_r, out_c, out_v = [], [], []
    for start, take in blocks:
        key = rows[take] - start
        key <<= row_shift
        key |= (_RANK_MAX - vals[take].view(np.int32).astype(np.int64)) << rank_shift
        key |= cols[take]
        key.sort()
        local = key >> row_shift
        first = np.ones(key.size, dtype=bool)
        np.not_equal(local[1:], local[:-1], out=first[1:])
        run_start = np.maximum.accumulate(np.where(first, np.arange(key.size), 0))
        kept = key[np.arange(key.size) - run_start < n]
        out_r.append((kept >> row_shift) + start)
        out_c.append(kept & ((1 << col_bits) - 1))
        out_v.append((_RANK_MAX - ((kept >> rank_shift) & _RANK_MAX)).astype(np.int32).view(np.float32))
    mat = sp.csr_matrix((np.concatenate(out_v), (np.concatenate(out_r), np.concatenate(out_c))),
                        shape=(n_rows, n_cols), dtype=np.float32)
    mat.sort_indices()
    return mat
