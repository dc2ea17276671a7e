"""FAISS inner-product index over item factors: exact by default, IVF or HNSW for large catalogues."""

from __future__ import annotations

import math
from pathlib import Path

import faiss
import numpy as np

from recsys.errors import ConfigError, NotFittedError


class ItemIndex:
    """Maximum inner product search over item factors. `kind`: flat | ivf | hnsw."""

    def __init__(self, kind: str = "flat", *, nprobe: int = 16, hnsw_m: int = 32, ef_search: int = 256,
                 seed: int = 42) -> None:
        if kind not in ("flat", "ivf", "hnsw"):
            raise ConfigError(f"unknown index kind {kind!r}: use flat, ivf or hnsw")
        self.kind = kind
        self.nprobe = nprobe
        self.hnsw_m = hnsw_m
        self.ef_search = ef_search
        self.seed = seed

    def fit(self, item_factors: np.ndarray) -> ItemIndex:
        vecs = np.ascontiguousarray(item_factors, dtype=np.float32)
        n, dim = vecs.shape
        if self.kind == "flat" or n < 4096:
            index: faiss.Index = faiss.IndexFlatIP(dim)
        elif self.kind == "ivf":
            nlist = max(16, int(4 * math.sqrt(n)))
            quantizer = faiss.IndexFlatIP(dim)
            index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
            index.cp.seed = self.seed  # k-means init is random: seed it for reproducible refreshes
            index.train(vecs)
            index.nprobe = self.nprobe
        else:
            index = faiss.IndexHNSWFlat(dim, self.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efSearch = self.ef_search
        index.add(vecs)
        self.index_ = index
        self.n_items_ = n
        return self

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k item indices and inner products per query row (-1 / -inf where fewer exist)."""
        if not hasattr(self, "index_"):
            raise NotFittedError("ItemIndex is not fitted")
        k = min(k, self.n_items_)
        scores, ids = self.index_.search(np.ascontiguousarray(queries, dtype=np.float32), k)
        return ids, scores

    def save(self, path: Path) -> None:
        faiss.write_index(self.index_, str(path))

    @classmethod
    def load(cls, path: Path, kind: str = "flat") -> ItemIndex:
        obj = cls(kind)
        obj.index_ = faiss.read_index(str(path))
        obj.n_items_ = int(obj.index_.ntotal)
        return obj
