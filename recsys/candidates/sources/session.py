"""Session neighbours: items co-visited with / similar to the live session's items.

The cached ALS list is computed before the session exists, so items the session points at are added
here, at request time (`RECSYS_CANDIDATES__SESSION_CANDIDATES`, default 30).
"""

from __future__ import annotations

import numpy as np

from recsys.candidates.item_side import ItemSide
from recsys.candidates.sources.base import SOURCE_SESSION, Proposal, SourceRequest


def session_neighbours(items: ItemSide, s_items: np.ndarray, s_weights: np.ndarray, exclude: np.ndarray,
                       n: int) -> np.ndarray:
    """Up to `n` items co-visited with / similar to the session items, best first, none in `exclude`
    (item indices, or a boolean mask over the catalogue)."""
    if n <= 0 or s_items.size == 0:
        return np.zeros(0, dtype=np.int64)
    near = items.neighbour_scores("covisit", s_items, s_weights) + items.neighbour_scores("itemknn", s_items,
                                                                                          s_weights)
    near[exclude] = 0.0
    positive = np.flatnonzero(near > 0)
    if positive.size > n:
        positive = positive[np.argpartition(-near[positive], n - 1)[:n]]
    return positive[np.lexsort((positive, -near[positive]))].astype(np.int64)


class SessionNeighbours:
    name = "session"

    def propose(self, request: SourceRequest, taken: np.ndarray) -> Proposal:
        extra = session_neighbours(request.items, request.session_items, request.session_weights, taken,
                                   request.config.session_candidates)
        return Proposal.of(extra, None, SOURCE_SESSION)
