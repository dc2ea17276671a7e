"""The inputs of feature computation for one user's candidate list, with shared work cached.

Offline (ranker training) and online (serving) both build a FeatureContext and call the same
registry functions on it, so a feature cannot differ between training and serving. Intermediate
results (session similarities, neighbour scores) are cached properties: computed only when a
feature the model still uses asks for them, so pruned features cost nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import numpy as np

from recsys.candidates.bundle import ItemBundle
from recsys.candidates.item_side import ItemSide
from recsys.candidates.sources import SOURCES, CachedList, SourceRegistry, SourceRequest
from recsys.config import CandidateConfig
from recsys.data.schema import EVENT_WEIGHTS

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

@dataclass
class FeatureContext:
    """One user's request: candidate items plus what is known about the user and the session."""

    items: ItemSide
    candidates: np.ndarray  # item indices [n]
    als_scores: np.ndarray  # float32 [n]
    source: np.ndarray  # int8 per candidate: the code of the source that brought it (candidates.sources)
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


def session_arrays(bundle: ItemBundle, session: Sequence[tuple[str, str, float]]
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


def make_context(items: ItemSide, cached: CachedList | None, history: np.ndarray,
                 session: Sequence[tuple[str, str, float]], now: float, blocked: np.ndarray | None = None, *,
                 config: CandidateConfig, sources: SourceRegistry = SOURCES) -> FeatureContext:
    """The one way a FeatureContext is made (training and serving).

    The candidate sources assemble the pool (the cached list or its fallback, minus blocked items —
    history, session, explicit excludes — plus request-time sources such as session neighbours), so
    features like ranks are computed on the very list that will be scored, identically offline and
    online. Items without an ALS score (session neighbours) get NaN: LightGBM's missing value.
    """
    s_items, s_weights, s_ts = session_arrays(items.bundle, session)
    pool = sources.assemble(SourceRequest(items, cached, history, s_items, s_weights, config), blocked)
    return FeatureContext(items=items, candidates=pool.candidates, als_scores=pool.scores, source=pool.source,
                          history=history, session_items=s_items, session_weights=s_weights,
                          session_timestamps=s_ts, now=now)
