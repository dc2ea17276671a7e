"""Why a response is not the full personalised ranking, and the scores that serve instead.

The fallback chain, in the order the service walks it (the first that applies is reported):

    no_candidates_published   nothing loaded yet: an empty list
    store_unavailable         the store is down or lost its data: popular items from memory
    corrupt_value             this user's stored candidates or history do not decode (out-of-range item
                              index, truncated, foreign bytes): served like an unknown user, logged once per key
    unknown_user              no cached list for this user: popular items (+ session neighbours)
    no_model                  no ranker: the candidates in ALS order (session similarity for unknown users)
    model_error               the ranker failed on this request: same order as no_model
    filter_too_narrow         the request's filters left fewer than k ranked items: the list is filled with
                              the most popular items that match them (reported only when nothing above applies)

One enum, shared by the service, the API's metrics and the ranker's training data (which trains on
unknown users the way the service serves them).
"""

from __future__ import annotations

from enum import Enum

import numpy as np

from recsys.candidates.sources import SOURCE_ALS
from recsys.features import FeatureContext


class FallbackReason(str, Enum):
    NO_CANDIDATES = "no_candidates_published"
    STORE_UNAVAILABLE = "store_unavailable"
    CORRUPT_VALUE = "corrupt_value"
    UNKNOWN_USER = "unknown_user"
    NO_MODEL = "no_model"
    MODEL_ERROR = "model_error"
    FILTER_TOO_NARROW = "filter_too_narrow"

    def __str__(self) -> str:
        return self.value


def unranked_scores(ctx: FeatureContext) -> np.ndarray:
    """Without a model: ALS order for known users; for others, session similarity then popularity."""
    if (ctx.source == SOURCE_ALS).any() or ctx.session_items.size == 0:
        return -np.arange(ctx.n, dtype=np.float32)
    return ctx.covisit_session + ctx.knn_session + 1e-3 * ctx.items.pop_log[ctx.candidates]
