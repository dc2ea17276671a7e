"""Popular items: the list of a user without cached candidates (unknown to the last refresh)."""

from __future__ import annotations

import numpy as np

from recsys.candidates.item_side import ItemSide
from recsys.candidates.sources.base import SOURCE_POPULAR, Proposal, SourceRequest


def popular_items(items: ItemSide, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The `n` most popular items and their log-popularity (the score the ranker sees for them)."""
    popular = items.popular[:n].astype(np.int64)
    return popular, items.pop_log[popular].astype(np.float32)


class PopularCandidates:
    name = "popular"

    def propose(self, request: SourceRequest) -> Proposal | None:
        items, scores = popular_items(request.items, request.config.n_candidates)
        return Proposal(items, scores, np.full(items.size, SOURCE_POPULAR, dtype=np.int8))
