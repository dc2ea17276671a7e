"""Per-item arrays derived once per bundle (not per request): what candidate sources and features read.

Factors and their unit vectors, popularity (all-time, recent, trend), categories, the co-visitation
and item-kNN neighbour matrices with vectorised gathers over them, and the ALS fold-in solver.
"""

from __future__ import annotations

import numpy as np

from recsys.candidates.als import ALSModel
from recsys.candidates.bundle import ItemBundle
from recsys.config import ALSConfig


class ItemSide:
    """Per-item arrays derived once per bundle (not per request)."""

    def __init__(self, bundle: ItemBundle, als_regularization: float = 0.05, als_alpha: float = 2.0) -> None:
        self.bundle = bundle
        f = bundle.item_factors.astype(np.float32)
        self.factors = f
        self.norms = np.linalg.norm(f, axis=1).astype(np.float32)
        self.unit = f / np.maximum(self.norms, 1e-6)[:, None]
        self.pop_log = np.log1p(bundle.popularity).astype(np.float32)
        self.pop_recent_log = np.log1p(bundle.popularity_recent).astype(np.float32)
        total, recent_total = float(bundle.popularity.sum()) or 1.0, float(bundle.popularity_recent.sum()) or 1.0
        # Trend: share of recent activity over share of all-time activity (smoothed), on a log scale.
        self.trend = np.log((bundle.popularity_recent / recent_total + 1e-5)
                            / (bundle.popularity / total + 1e-5)).astype(np.float32)
        self.categories = bundle.categories.tocsr()
        self.categories_dense = self.categories.toarray().astype(np.float32) if self.categories.shape[1] else \
            np.zeros((bundle.n_items, 0), dtype=np.float32)
        self.n_categories = self.categories_dense.sum(axis=1).astype(np.float32)
        self.covisit = bundle.covisit.tocsr()
        self.itemknn = bundle.itemknn.tocsr()
        self.n_items = bundle.n_items
        # Online fold-in uses the candidate model's own solver (same normal equations as training).
        self.als = ALSModel.from_factors(f, ALSConfig(regularization=als_regularization, alpha=als_alpha))
        order = np.lexsort((np.arange(self.n_items), -bundle.popularity))
        self.popular = order

    def _gather(self, matrix_name: str, sources: np.ndarray, weights: np.ndarray | None
                ) -> tuple[np.ndarray, np.ndarray]:
        """(neighbour indices, weights) of all `sources` rows, without a Python loop."""
        mat = self.covisit if matrix_name == "covisit" else self.itemknn
        starts, stops = mat.indptr[sources], mat.indptr[sources + 1]
        lengths = stops - starts
        total = int(lengths.sum())
        # Ragged arange: position j of row r maps to starts[r] + j.
        take = np.repeat(starts - np.cumsum(lengths) + lengths, lengths) + np.arange(total)
        w = mat.data[take]
        if weights is not None:
            w = w * np.repeat(weights, lengths)
        return mat.indices[take], w

    def neighbour_scores(self, matrix_name: str, sources: np.ndarray, weights: np.ndarray | None = None
                         ) -> np.ndarray:
        """Dense per-item sum of neighbour weights from `sources` (rows of a sparse item×item matrix)."""
        if sources.size == 0:
            return np.zeros(self.n_items, dtype=np.float32)
        idx, w = self._gather(matrix_name, sources, weights)
        return np.bincount(idx, weights=w, minlength=self.n_items).astype(np.float32)

    def candidate_positions(self, candidates: np.ndarray) -> np.ndarray:
        """Dense item -> position in `candidates` map (-1 for other items).

        One O(catalogue) fill per request, shared by every neighbour feature, instead of a sort and
        a binary search in each of them.
        """
        positions = np.full(self.n_items, -1, dtype=np.int32)
        positions[candidates] = np.arange(candidates.size, dtype=np.int32)
        return positions

    def neighbour_scores_at(self, matrix_name: str, sources: np.ndarray, positions: np.ndarray, n: int,
                            weights: np.ndarray | None = None) -> np.ndarray:
        """neighbour_scores restricted to the `n` candidates of `positions` (see candidate_positions)."""
        if sources.size == 0 or n == 0:
            return np.zeros(n, dtype=np.float32)
        idx, w = self._gather(matrix_name, sources, weights)
        pos = positions[idx]
        hit = pos >= 0
        return np.bincount(pos[hit], weights=w[hit], minlength=n).astype(np.float32)

    def neighbour_max(self, matrix_name: str, sources: np.ndarray, positions: np.ndarray, n: int) -> np.ndarray:
        """Per-candidate max neighbour weight from any source item (weights are non-negative)."""
        out = np.zeros(n, dtype=np.float32)
        if sources.size == 0 or n == 0:
            return out
        idx, w = self._gather(matrix_name, sources, None)
        pos = positions[idx]
        hit = pos >= 0
        np.maximum.at(out, pos[hit], w[hit].astype(np.float32))
        return out

    def fold_in(self, items: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """ALS user vector from (items, weights): same normal equations as implicit's solver."""
        return self.als.fold_in(items, weights)
