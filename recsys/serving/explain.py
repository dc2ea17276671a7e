"""Why a user gets what they get: the serving path of one request, with everything it computed kept.

For operators (the console's Try page), never for the recommendation path: `explain` walks the same
stages as `RecommendationService.recommend` (the same read, the same candidate sources, the same feature
matrix, the same model call) on the serving state of the moment, and returns the intermediate results
that `recommend` throws away: each candidate's source and ALS rank, every feature value the ranker saw
and its score. It logs no impression and no feature row, so looking does not feed the loop.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from recsys.candidates.sources import SOURCE_ALS, SOURCE_POPULAR, SOURCE_SESSION
from recsys.features import REGISTRY
from recsys.serving.fallback import FallbackReason, unranked_scores
from recsys.serving.rules import NO_RULES
from recsys.serving.service import RecommendationService

SOURCE_NAMES = {SOURCE_ALS: "als", SOURCE_POPULAR: "popular", SOURCE_SESSION: "session"}


@dataclass(frozen=True)
class ExplainedItem:
    item_id: str
    source: str  # the candidate source that brought it (als, popular, session)
    als_rank: int | None  # 1-based position in the cached ALS list; None for items ALS did not propose
    als_score: float | None
    score: float  # the ranker's score (or the fallback order's score without a model)
    rank: int  # 1-based position after reranking
    features: dict[str, float | None]  # the model's features, in its order (None: missing value)


@dataclass
class Explanation:
    user_id: str
    candidates_version: str | None
    model_version: str | None
    fallback: FallbackReason | None
    session: list[tuple[str, str, float]]  # (item, event, timestamp), oldest first
    history_size: int
    feature_names: list[str]
    items: list[ExplainedItem] = field(default_factory=list)  # every candidate, in reranked order
    # The running experiment this user is in, if any: its variant may serve another order than the model's
    # ranking shown here (ALS order, or two lists interleaved).
    experiment: str | None = None

    @property
    def als_order(self) -> list[ExplainedItem]:
        """The ALS-proposed candidates in the order ALS ranked them."""
        return sorted((i for i in self.items if i.als_rank is not None), key=lambda i: i.als_rank or 0)


def _value(x: float) -> float | None:
    return None if math.isnan(x) else float(x)


def explain(service: RecommendationService, user_id: str) -> Explanation:
    """The whole candidate pool of `user_id`, reranked by the serving model, with sources and features."""
    state = service.state
    if state.bundle is None or state.item_side is None:
        return Explanation(user_id, None, None, FallbackReason.NO_CANDIDATES, [], 0, [])
    now = time.time()
    read = service._read(state, user_id, with_session=True)  # the serving read, corruption checks included
    # The same pool the service scores: unavailable items (the catalogue) are never in it.
    view = service.catalogue_view(state, read.record, store_down=read.fallback == FallbackReason.STORE_UNAVAILABLE)
    ctx = service._candidates(state, read.record, None, (), now, service._ruled_out(view, NO_RULES, now))
    fallback = read.fallback
    if read.record is None or read.record.candidates is None:
        fallback = fallback or (FallbackReason.STORE_UNAVAILABLE if service._store_lost(state, read.record)
                                else FallbackReason.UNKNOWN_USER)
    model = state.model
    names = list(model.feature_names) if model is not None else []
    matrix = np.zeros((ctx.n, 0), dtype=np.float32)
    if model is None or ctx.n == 0:
        scores = unranked_scores(ctx)
        fallback = fallback or (FallbackReason.NO_MODEL if model is None else None)
    else:
        try:
            matrix = REGISTRY.build_matrix(names, ctx)
            scores = model.predict(matrix)
        except Exception:  # the same rule as serving: a model that cannot score falls back to ALS order
            scores, matrix = unranked_scores(ctx), np.zeros((ctx.n, 0), dtype=np.float32)
            fallback = fallback or FallbackReason.MODEL_ERROR
    order = np.argsort(-scores, kind="stable")
    als_positions = np.flatnonzero(ctx.source == SOURCE_ALS)
    als_rank = {int(p): r + 1 for r, p in enumerate(als_positions)}  # pool positions of ALS items, in ALS order
    ids = state.bundle.item_ids
    items = []
    for rank, pos in enumerate(order, start=1):
        p = int(pos)
        features = ({n: _value(float(matrix[p, j])) for j, n in enumerate(names)} if matrix.shape[1] else {})
        items.append(ExplainedItem(
            item_id=ids[int(ctx.candidates[p])], source=SOURCE_NAMES.get(int(ctx.source[p]), str(int(ctx.source[p]))),
            als_rank=als_rank.get(p), als_score=_value(float(ctx.als_scores[p])) if p in als_rank else None,
            score=float(scores[p]), rank=rank, features=features))
    session = [(e.item_id, e.event, e.timestamp) for e in (read.record.session if read.record else [])]
    history = read.record.history if read.record is not None and read.record.history is not None else None
    assignment = service.experiments.assign(user_id) if service.experiments else None
    experiment = (None if assignment is None else
                  f"{assignment.experiment}: {assignment.kind}, variant {assignment.variant} ({assignment.ranker})")
    return Explanation(user_id, state.candidates_version, state.model_version, fallback, session,
                       int(history.size) if history is not None else 0, names, items, experiment)
