"""The inputs of feature computation for one user's candidate list, with shared work cached.

Offline (ranker training) and online (serving) both build a FeatureContext and call the same
registry functions on it, so a feature cannot differ between training and serving. Intermediate
results (session similarities, neighbour scores) are cached properties: computed only when a
feature the model still uses asks for them, so pruned features cost nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import numpy as np

from recsys.bundle import ItemBundle
from recsys.candidates.als import ALSModel
from recsys.config import ALSConfig

SOURCE_ALS, SOURCE_POPULAR, SOURCE_SESSION = 0, 1, 2
KNN_HISTORY = 50

_T = TypeVar("_T")


class cached_property(Generic[_T]):  # noqa: N801 - a drop-in for functools.cached_property
    """functools.cached_property without its lock.

    On Python 3.11 the standard one holds a lock per *class attribute*, shared by every instance:
    concurrent requests (FastAPI runs them in a thread pool) queued on it and p99 went from ~5 ms to
    hundreds of ms. Contexts are never shared between threads, so no lock is needed. A non-data
    descriptor: after the first access the value in the instance dict shadows it.
    """

    def __init__(self, func: Callable[[Any], _T]) -> None:
        self.func = func
        self.name = func.__name__
        self.__doc__ = func.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, instance: Any, owner: type | None = None) -> _T:
        if instance is None:
            return self  # type: ignore[return-value]
        value = self.func(instance)
        instance.__dict__[self.name] = value
        return value

# Event types and how strongly they signal intent (used for session weights and validation).
EVENT_WEIGHTS: dict[str, float] = {
    "view": 0.5, "click": 1.0, "add_to_cart": 2.0, "purchase": 3.0, "rating": 1.0, "like": 1.5,
    "interaction": 1.0,
}


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


@dataclass
class FeatureContext:
    """One user's request: candidate items plus what is known about the user and the session."""

    items: ItemSide
    candidates: np.ndarray  # item indices [n]
    als_scores: np.ndarray  # float32 [n]
    source: np.ndarray  # int8 per candidate: SOURCE_ALS, SOURCE_POPULAR or SOURCE_SESSION
    history: np.ndarray  # item indices, oldest first
    session_items: np.ndarray  # known session item indices, oldest first
    session_weights: np.ndarray  # event weights of those items
    session_timestamps: np.ndarray  # seconds
    now: float

    @property
    def n(self) -> int:
        return int(self.candidates.size)

    @cached_property
    def positions(self) -> np.ndarray:
        return self.items.candidate_positions(self.candidates)

    def neighbours(self, matrix_name: str, sources: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        """Per-candidate sum of neighbour weights from `sources` in the covisit or itemknn matrix."""
        return self.items.neighbour_scores_at(matrix_name, sources, self.positions, self.n, weights)

    def neighbours_max(self, matrix_name: str, sources: np.ndarray) -> np.ndarray:
        return self.items.neighbour_max(matrix_name, sources, self.positions, self.n)

    @cached_property
    def cand_unit(self) -> np.ndarray:
        return self.items.unit[self.candidates]

    @cached_property
    def session_sims(self) -> np.ndarray:
        """Cosine similarity, candidates × session items (factor space)."""
        if self.session_items.size == 0:
            return np.zeros((self.n, 0), dtype=np.float32)
        return self.cand_unit @ self.items.unit[self.session_items].T

    @cached_property
    def recency_weights(self) -> np.ndarray:
        """Most recent session item weighs 1, each older one half as much."""
        k = self.session_items.size
        return (0.5 ** np.arange(k - 1, -1, -1)).astype(np.float32)

    @cached_property
    def folded_user(self) -> np.ndarray:
        """User vector with history and session folded in (session events weighted by type)."""
        items = np.concatenate([self.history, self.session_items])
        weights = np.concatenate([np.ones(self.history.size), self.session_weights]).astype(np.float64)
        if items.size == 0:
            return np.zeros(self.items.factors.shape[1], dtype=np.float32)
        return self.items.fold_in(items, weights)

    @cached_property
    def folded_scores(self) -> np.ndarray:
        return self.items.factors[self.candidates] @ self.folded_user

    @cached_property
    def user_category_profile(self) -> np.ndarray:
        cats = self.items.categories_dense
        if self.history.size == 0 or cats.shape[1] == 0:
            return np.zeros(cats.shape[1], dtype=np.float32)
        prof = cats[self.history].sum(axis=0)
        return prof / max(float(prof.sum()), 1.0)

    @cached_property
    def session_category_profile(self) -> np.ndarray:
        cats = self.items.categories_dense
        if self.session_items.size == 0 or cats.shape[1] == 0:
            return np.zeros(cats.shape[1], dtype=np.float32)
        return cats[self.session_items].max(axis=0)

    @cached_property
    def covisit_session(self) -> np.ndarray:
        return self.neighbours("covisit", self.session_items, self.recency_weights)

    @cached_property
    def knn_history(self) -> np.ndarray:
        # The last KNN_HISTORY items only: the whole 200-item history cost ~0.3 ms per request for
        # little extra signal (older taste is already in the ALS score).
        return self.neighbours("itemknn", self.history[-KNN_HISTORY:])

    @cached_property
    def knn_session(self) -> np.ndarray:
        return self.neighbours("itemknn", self.session_items, self.recency_weights)

    @cached_property
    def recent_history(self) -> np.ndarray:
        return self.history[-10:]


def session_arrays(bundle: ItemBundle, session: list[tuple[str, str, float]]
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(item indices, event weights, timestamps) of the known items of a session, oldest first.

    Unknown items are ignored, not fatal: the catalogue of this version may not have them yet.
    """
    known = [(bundle.item_index[i], EVENT_WEIGHTS.get(e, 1.0), t) for i, e, t in sorted(session, key=lambda s: s[2])
             if i in bundle.item_index]
    if not known:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64), np.zeros(0, dtype=np.float64)
    idx, w, ts = zip(*known, strict=True)
    return np.asarray(idx, dtype=np.int64), np.asarray(w, dtype=np.float64), np.asarray(ts, dtype=np.float64)


def session_neighbours(items: ItemSide, s_items: np.ndarray, s_weights: np.ndarray, exclude: np.ndarray,
                       n: int) -> np.ndarray:
    """Up to `n` items co-visited with / similar to the session items, best first, none in `exclude`
    (item indices, or a boolean mask over the catalogue).

    The second candidate source: the cached ALS list is computed before the session exists, so
    items the session points at are added here, at request time.
    """
    if n <= 0 or s_items.size == 0:
        return np.zeros(0, dtype=np.int64)
    near = items.neighbour_scores("covisit", s_items, s_weights) + items.neighbour_scores("itemknn", s_items,
                                                                                          s_weights)
    near[exclude] = 0.0
    positive = np.flatnonzero(near > 0)
    if positive.size > n:
        positive = positive[np.argpartition(-near[positive], n - 1)[:n]]
    return positive[np.lexsort((positive, -near[positive]))].astype(np.int64)


def make_context(items: ItemSide, candidates: np.ndarray, scores: np.ndarray, n_primary: int,
                 history: np.ndarray, session: list[tuple[str, str, float]], now: float,
                 blocked: np.ndarray | None = None, *, session_candidates: int = 0) -> FeatureContext:
    """The one way a FeatureContext is made (training and serving).

    Drops blocked candidates (history, session, explicit excludes) and then adds up to
    `session_candidates` session neighbours, so features like ranks are computed on the very list
    that will be scored, identically offline and online. Added items have no ALS score (NaN:
    LightGBM's missing value).
    """
    s_items, s_weights, s_ts = session_arrays(items.bundle, session)
    drop = s_items if blocked is None else np.concatenate([blocked, s_items])
    source = np.full(candidates.size, SOURCE_POPULAR, dtype=np.int8)
    source[:n_primary] = SOURCE_ALS
    scores = scores.astype(np.float32)
    # Dense catalogue masks: one O(catalogue) fill each, cheaper than np.isin's sorts at request sizes.
    dropped = np.zeros(items.n_items, dtype=bool)
    dropped[drop] = True
    if drop.size:
        keep = ~dropped[candidates]
        candidates, scores, source = candidates[keep], scores[keep], source[keep]
    dropped[candidates] = True  # session neighbours already in the list are not added twice
    extra = session_neighbours(items, s_items, s_weights, dropped, session_candidates)
    if extra.size:
        candidates = np.concatenate([candidates, extra])
        scores = np.concatenate([scores, np.full(extra.size, np.nan, dtype=np.float32)])
        source = np.concatenate([source, np.full(extra.size, SOURCE_SESSION, dtype=np.int8)])
    return FeatureContext(items=items, candidates=candidates, als_scores=scores, source=source, history=history,
                          session_items=s_items, session_weights=s_weights, session_timestamps=s_ts, now=now)
