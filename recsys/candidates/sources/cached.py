"""The user's cached list: ALS top-100 written by the last refresh (its tail may be popularity fill).

The store keeps the user's ALS vector, not the scores: they are recomputed here from the serving
bundle's item factors (`CachedList.scores`), the same call ranker training makes.
"""

from __future__ import annotations

import numpy as np

from recsys.candidates.sources.base import SOURCE_ALS, SOURCE_POPULAR, Proposal, SourceRequest


class CachedCandidates:
    name = "cached"

    def propose(self, request: SourceRequest) -> Proposal | None:
        cached = request.cached
        if cached is None:
            return None
        source = np.full(cached.items.size, SOURCE_POPULAR, dtype=np.int8)
        source[:cached.n_primary] = SOURCE_ALS
        return Proposal(cached.items, cached.scores(request.items.factors), source)
