"""ALS candidate model (implicit) with BLAS threads limited while fitting, and an exact fold-in."""

from __future__ import annotations

import logging

import numpy as np
import scipy.sparse as sp
from scipy.linalg.lapack import dposv
from threadpoolctl import threadpool_limits

from recsys.config import ALSConfig
from recsys.errors import NotFittedError

log = logging.getLogger(__name__)


class ALSModel:
    """Wraps implicit's ALS. Learned state ends in `_`; `fit` returns self."""

    def __init__(self, config: ALSConfig | None = None) -> None:
        self.config = config or ALSConfig()

    def fit(self, user_items: sp.csr_matrix, *, show_progress: bool = False) -> ALSModel:
        from implicit.cpu.als import AlternatingLeastSquares

        c = self.config
        # faiss-cpu ships its own OpenBLAS: implicit warns and slows down unless BLAS is single-threaded.
        with threadpool_limits(1, "blas"):
            model = AlternatingLeastSquares(factors=c.factors, regularization=c.regularization, alpha=c.alpha,
                                            iterations=c.iterations, random_state=c.random_state,
                                            calculate_training_loss=False)
            model.fit(user_items, show_progress=show_progress)
        self.user_factors_ = np.ascontiguousarray(model.user_factors, dtype=np.float32)
        self.item_factors_ = np.ascontiguousarray(model.item_factors, dtype=np.float32)
        self._prepare_fold_in()
        return self

    @classmethod
    def from_factors(cls, item_factors: np.ndarray, config: ALSConfig) -> ALSModel:
        model = cls(config)
        model.item_factors_ = np.ascontiguousarray(item_factors, dtype=np.float32)
        model._prepare_fold_in()
        return model

    def _prepare_fold_in(self) -> None:
        # float64 copy kept: fold_in runs on every request, and converting its rows each time cost more
        # than the memory (8 bytes × factors per item).
        self._factors64 = self.item_factors_.astype(np.float64)
        y = self._factors64
        self._gram = y.T @ y + self.config.regularization * np.eye(y.shape[1])

    def _check(self) -> None:
        if not hasattr(self, "item_factors_"):
            raise NotFittedError("ALSModel is not fitted: call fit() or from_factors() first")

    def fold_in(self, item_indices: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        """Solve one user's factors from the items they touched (same normal equations as implicit).

        With confidence c = alpha * w: (YtY + reg I + sum (c-1) y y^T) x = sum c y.
        Used online to fold the live session into the user's vector.
        """
        self._check()
        if item_indices.size == 0:
            return np.zeros(self.item_factors_.shape[1], dtype=np.float32)
        y = self._factors64[item_indices]
        conf = self.config.alpha * (np.ones(len(item_indices)) if weights is None else weights)
        a = self._gram + (y.T * (conf - 1.0)) @ y
        b = y.T @ conf
        # Cholesky (LAPACK dposv) straight away: the system is symmetric positive definite whenever
        # every confidence is >= 1, and numpy's general solve costs twice as much in a request.
        _, x, info = dposv(a, b)
        if info != 0:  # not positive definite (confidences below 1): the general solver
            x = np.linalg.solve(a, b)
        return x.astype(np.float32)
