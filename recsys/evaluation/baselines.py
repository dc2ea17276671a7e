"""Baseline recommenders for the offline protocol: popularity, ALS (± session), item-kNN, EASE.

Every baseline is fitted on the training split only and answers a whole batch of users at once:
`recommend(users, histories, sessions, n)` returns each user's top-n item ids, never an item of
the user's history or session (DESIGN.md §6, step 4). "+session" models read the live session as
extra history ("folding it in"); the others ignore it except for exclusion. A user with nothing to
score from (no known history, and no known session items where the model reads the session) gets
the popularity list, as the service's fallback would give.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from recsys.candidates.als import ALSModel
from recsys.candidates.matrix import InteractionMatrix
from recsys.candidates.topn import top_n_per_csr_row
from recsys.config import ALSConfig
from recsys.errors import ConfigError, NotFittedError

log = logging.getLogger(__name__)

ProgressCallback = Callable[[int], None]
_SCORE_BUDGET = 1 << 24  # dense scores held at once (users in a chunk x catalogue size)


class BatchRecommender(Protocol):
    """What the protocol runner needs from a baseline."""

    name: str

    def fit(self, train: InteractionMatrix) -> BatchRecommender: ...

    def recommend(self, users: Sequence[str], histories: Mapping[str, Sequence[str]],
                  sessions: Mapping[str, Sequence[str]], n: int,
                  progress: ProgressCallback | None = None) -> dict[str, list[str]]: ...


def _rows(users: Sequence[str], items_of: Mapping[str, Sequence[str]], item_index: Mapping[str, int],
          n_items: int) -> sp.csr_matrix:
    """Binary users×items matrix of the known items in `items_of` (unknown ids are skipped)."""
    indptr = [0]
    indices: list[int] = []
    for user in users:
        cols = sorted({item_index[i] for i in items_of.get(user, ()) if i in item_index})
        indices.extend(cols)
        indptr.append(len(indices))
    data = np.ones(len(indices), dtype=np.float32)
    return sp.csr_matrix((data, np.asarray(indices, dtype=np.int64), np.asarray(indptr, dtype=np.int64)),
                         shape=(len(users), n_items))


def top_n(scores: np.ndarray, blocked: sp.csr_matrix, n: int) -> list[np.ndarray]:
    """Per row, the indices of the n best scores not blocked; ties go to the lower index."""
    scores = np.array(scores, dtype=np.float64, copy=True)
    rows = np.repeat(np.arange(blocked.shape[0]), np.diff(blocked.indptr))
    scores[rows, blocked.indices] = -np.inf
    order = np.argsort(-scores, axis=1, kind="stable")[:, :n]
    picked = np.take_along_axis(scores, order, axis=1)
    return [order[r][np.isfinite(picked[r])] for r in range(order.shape[0])]


class _ScoringRecommender:
    """Shared batch loop: build input rows, score a chunk densely, mask seen items, take top-n."""

    name = "base"
    uses_session = False

    def fit(self, train: InteractionMatrix) -> _ScoringRecommender:
        self.item_ids_ = train.item_ids
        self.item_index_ = train.item_index()
        self.user_index_ = train.user_index()
        counts = np.asarray(train.matrix.sum(axis=0), dtype=np.float64).ravel()  # distinct users per item
        self.popularity_ = counts
        self._fit(train)
        return self

    def _fit(self, train: InteractionMatrix) -> None:
        pass

    def _scores(self, users: Sequence[str], inputs: sp.csr_matrix) -> np.ndarray:
        raise NotImplementedError

    def recommend(self, users: Sequence[str], histories: Mapping[str, Sequence[str]],
                  sessions: Mapping[str, Sequence[str]], n: int,
                  progress: ProgressCallback | None = None) -> dict[str, list[str]]:
        if not hasattr(self, "item_ids_"):
            raise NotFittedError(f"{self.name} is not fitted: call fit() first")
        users = list(users)
        n_items = len(self.item_ids_)
        chunk = max(1, _SCORE_BUDGET // max(n_items, 1))
        out: dict[str, list[str]] = {}
        for start in range(0, len(users), chunk):
            batch = users[start:start + chunk]
            history = _rows(batch, histories, self.item_index_, n_items)
            session = _rows(batch, sessions, self.item_index_, n_items)
            blocked = ((history + session) > 0).astype(np.float32).tocsr()
            inputs = blocked if self.uses_session else history
            scores = self._scores(batch, inputs)
            cold = np.diff(inputs.indptr) == 0
            if cold.any():
                scores[cold] = self.popularity_
            for user, idx in zip(batch, top_n(scores, blocked, n), strict=True):
                out[user] = self.item_ids_[idx].tolist()
            if progress is not None:
                progress(len(batch))
        return out


class PopularityRecommender(_ScoringRecommender):
    """Items by the number of distinct training users who touched them; ties by item index."""

    name = "popularity"

    def _scores(self, users: Sequence[str], inputs: sp.csr_matrix) -> np.ndarray:
        return np.broadcast_to(self.popularity_, (len(users), self.popularity_.size)).copy()


class ALSRecommender(_ScoringRecommender):
    """ALS dot-product scores. Without the session: the user's fitted factors; with it: an exact
    fold-in of history + session items against the item factors (what the online path does).

    `pretrained` lets the protocol reuse the model behind the published candidates, so "als" is
    exactly the candidate model and not a second fit that could differ.
    """

    def __init__(self, config: ALSConfig | None = None, *, fold_session: bool = False,
                 pretrained: ALSModel | None = None) -> None:
        self.config = config or ALSConfig()
        self.fold_session = fold_session
        self.pretrained = pretrained
        self.name = "als+session" if fold_session else "als"
        self.uses_session = fold_session

    def _fit(self, train: InteractionMatrix) -> None:
        if self.pretrained is not None:
            self.model_ = self.pretrained
        else:
            self.model_ = ALSModel(self.config).fit(train.matrix)

    def _scores(self, users: Sequence[str], inputs: sp.csr_matrix) -> np.ndarray:
        model = self.model_
        factors = np.zeros((len(users), model.item_factors_.shape[1]), dtype=np.float32)
        # Thousands of tiny (factors x factors) solves: BLAS threads only add contention (6x slower
        # measured on 2 busy cores).
        with threadpool_limits(1, "blas"):
            for row, user in enumerate(users):
                items = inputs.indices[inputs.indptr[row]:inputs.indptr[row + 1]]
                fitted = self.user_index_.get(user)
                if not self.fold_session and fitted is not None and hasattr(model, "user_factors_"):
                    factors[row] = model.user_factors_[fitted]
                elif items.size:
                    factors[row] = model.fold_in(items.astype(np.int64))
        return (factors @ model.item_factors_.T).astype(np.float64)


class ItemKNNRecommender(_ScoringRecommender):
    """Item-based kNN: cosine similarity of item columns, each item keeps its `neighbours` nearest;
    a user's score for j is the summed similarity of j to the items in history + session."""

    name = "itemknn+session"
    uses_session = True

    def __init__(self, neighbours: int = 100) -> None:
        if neighbours < 1:
            raise ConfigError(f"itemknn neighbours must be >= 1, got {neighbours}")
        self.neighbours = neighbours

    def _fit(self, train: InteractionMatrix) -> None:
        x = train.matrix.tocsc().astype(np.float64)
        norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=0)).ravel())
        norms[norms == 0] = 1.0
        gram = (x.T @ x).tocsr()
        gram.setdiag(0.0)
        gram.eliminate_zeros()
        inv = sp.diags(1.0 / norms)
        cosine = (inv @ gram @ inv).tocsr()
        self.similarity_ = top_n_per_csr_row(cosine, self.neighbours)

    def _scores(self, users: Sequence[str], inputs: sp.csr_matrix) -> np.ndarray:
        return np.asarray((inputs.astype(np.float64) @ self.similarity_).toarray())


class EASERecommender(_ScoringRecommender):
    """EASE (Steck 2019): closed-form item×item weights B = I - P / diag(P), P = (XᵀX + λI)⁻¹.

    λ = 250 by default: on ml-100k session-holdout nDCG@10 is flat (0.120 ± 0.001) for λ in
    100..300 and falls slowly above (0.117 at 500), so 250 sits in the plateau rather than on a
    tuned peak. The solve is dense, so it is refused above `max_items` (memory grows as items²).
    """

    name = "ease+session"
    uses_session = True

    def __init__(self, l2: float = 250.0, *, max_items: int = 20_000) -> None:
        if l2 <= 0:
            raise ConfigError(f"EASE lambda must be > 0, got {l2}")
        self.l2 = l2
        self.max_items = max_items

    def _fit(self, train: InteractionMatrix) -> None:
        if train.n_items > self.max_items:
            raise ConfigError(f"EASE needs a dense {train.n_items}x{train.n_items} solve; limit is "
                              f"{self.max_items} items")
        dtype = np.float64 if train.n_items <= 5000 else np.float32
        gram = (train.matrix.T @ train.matrix).toarray().astype(dtype)
        gram[np.diag_indices_from(gram)] += self.l2
        p = np.linalg.inv(gram)
        weights = -p / np.diag(p)[None, :]
        np.fill_diagonal(weights, 0.0)
        self.weights_ = weights

    def _scores(self, users: Sequence[str], inputs: sp.csr_matrix) -> np.ndarray:
        return np.asarray(inputs.astype(self.weights_.dtype) @ self.weights_, dtype=np.float64)
