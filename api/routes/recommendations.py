"""Recommendations, candidates and similar items."""

from __future__ import annotations

import time
from typing import Annotated

import orjson
from fastapi import APIRouter, HTTPException, Path, Query, Request, Response

from api.deps import ClientDep, MetricsDep, ServiceDep
from api.errors import error_responses
from api.metrics import Metrics
from api.schemas import (
    FilterExpr,
    Id,
    RecommendationRequest,
    RecommendationResponse,
    ScoredItemOut,
    SimilarItemsResponse,
)
from recsys.data.schema import ID_MAX_LENGTH, ID_PATTERN, ID_RULE
from recsys.serving import FallbackReason, Recommendations
from recsys.serving.rules import Rules
from recsys.store import SessionEvent

router = APIRouter(prefix="/v1", tags=["recommendations"])

UserPath = Annotated[str, Path(min_length=1, max_length=ID_MAX_LENGTH, pattern=ID_PATTERN, description=ID_RULE)]


def _recommendation_response(rec: Recommendations, metrics: Metrics) -> Response:
    """The RecommendationResponse JSON, written directly with orjson; counts fallbacks in /metrics.

    The OpenAPI schema still comes from each route's `response_model`, and the schema tests check
    the bodies against it. Building and re-validating a pydantic model per item cost more than the
    LightGBM call for a 100-item candidate list.
    """
    if rec.fallback is not None:
        metrics.fallbacks.labels(rec.fallback.value).inc()
        if rec.fallback == FallbackReason.UNKNOWN_USER:
            metrics.cache_misses.inc()
    body = {"user_id": rec.user_id,
            "items": [{"item_id": i.item_id, "score": i.score, "rank": i.rank} if i.explanation is None else
                      {"item_id": i.item_id, "score": i.score, "rank": i.rank,
                       "explanation": {"source": i.explanation.source, "bias": i.explanation.bias,
                                       "contributions": [{"feature": c.feature, "value": c.value,
                                                          "sentence": c.sentence} for c in i.explanation.top()]}}
                      for i in rec.items],
            "model_version": rec.model_version, "candidates_version": rec.candidates_version,
            "fallback": rec.fallback}
    if rec.rec_id:
        body["rec_id"] = rec.rec_id
        body["experiment"] = rec.experiment
        body["variant"] = rec.variant
        if rec.experiment is not None:
            metrics.experiment_impressions.labels(rec.experiment, rec.variant or "").inc()
    return Response(orjson.dumps(body), media_type="application/json")


MAX_EXCLUDE = 1000


def _split_excludes(exclude: list[str]) -> list[str]:
    """`exclude` may repeat (?exclude=a&exclude=b) or be comma-separated (?exclude=a,b); at most 1000 ids."""
    ids = [part for value in exclude for part in value.split(",") if part]
    if len(ids) > MAX_EXCLUDE:
        raise HTTPException(422, f"at most {MAX_EXCLUDE} excluded item ids, got {len(ids)}")
    return ids


# The two hot GET endpoints read the service and metrics off `request.app.state` instead of through
# dependencies: FastAPI's dependency resolution was the largest framework cost per request.
@router.get("/users/{user_id}/recommendations", response_model=RecommendationResponse,
            responses=error_responses(422))
async def recommendations(request: Request, user_id: UserPath,
                          k: Annotated[int, Query(ge=1, le=100, description="how many items, 1..100")] = 10,
                          exclude: Annotated[list[str], Query(max_length=MAX_EXCLUDE,
                                                              description="item ids never to return (repeat or "
                                                              "comma-separate; at most 1000)")] = [],  # noqa: B006
                          category: Annotated[list[str], Query(max_length=50, description="only items in one of "
                                                               "these categories (repeat)")] = [],  # noqa: B006
                          exclude_category: Annotated[list[str], Query(max_length=50, description="never items in "
                                                                       "these categories (repeat)")] = [],  # noqa: B006
                          filter: Annotated[list[FilterExpr], Query(
                              max_length=20, description="attribute filters, all must hold: NAME=VALUE, NAME=V1|V2 "
                              "(in), NAME<NUMBER, NAME>NUMBER (repeat)")] = [],  # noqa: A002,B006
                          max_per_category: Annotated[int | None, Query(ge=0, le=100, description="at most this "
                                                                        "many items per category (0: no cap; default "
                                                                        "RECSYS_RULES__MAX_PER_CATEGORY)")] = None,
                          explain: Annotated[bool, Query(description="add each item's three largest score "
                                                         "contributions and its candidate source")] = False,
                          ) -> Response:
    """Top-k for a user, reranked with the server-side live session, under the request's rules
    (docs/rules.md): an over-narrow filter is filled with matching popular items (`filter_too_narrow`)."""
    state = request.app.state
    rules = Rules.parse(category=category, exclude_category=exclude_category, filters=filter,
                        max_per_category=max_per_category)
    rec = state.service.recommend(user_id, k, exclude=_split_excludes(exclude), rules=rules, explain=explain)
    return _recommendation_response(rec, state.metrics)


@router.post("/recommendations", response_model=RecommendationResponse, responses=error_responses(401, 413, 422))
def recommendations_inline(body: RecommendationRequest, _: ClientDep, service: ServiceDep,
                           metrics: MetricsDep) -> Response:
    """Top-k with the session given inline instead of read from the session store (its scored rows feed the
    feature log: with RECSYS_CLIENT_TOKEN set, it needs `Authorization: Bearer <client token>`)."""
    now = time.time()
    session = [SessionEvent(s.item_id, s.event, s.timestamp if s.timestamp is not None else now)
               for s in body.session]
    rules = Rules.parse(category=body.category, exclude_category=body.exclude_category, filters=body.filter,
                        max_per_category=body.max_per_category)
    return _recommendation_response(
        service.recommend(body.user_id, body.k, session=session, exclude=body.exclude, now=now, rules=rules,
                          explain=body.explain), metrics)


@router.get("/users/{user_id}/candidates", response_model=RecommendationResponse,
            responses=error_responses(422, 503))
async def candidates(request: Request, user_id: UserPath, k: Annotated[int, Query(ge=1, le=100)] = 100) -> Response:
    """The cached candidates in ALS order, unranked (for operators; the latency baseline)."""
    state = request.app.state
    return _recommendation_response(state.service.candidates(user_id, k), state.metrics)


@router.get("/items/{item_id}/similar", response_model=SimilarItemsResponse, responses=error_responses(404, 422))
def similar(item_id: Annotated[Id, Path()], service: ServiceDep,
            k: Annotated[int, Query(ge=1, le=100)] = 10) -> SimilarItemsResponse:
    """Item-to-item neighbours from the FAISS index over item factors."""
    items = service.similar_items(item_id, k)
    if items is None:
        raise HTTPException(404, f"unknown item {item_id!r} in candidate version {service.state.candidates_version}")
    return SimilarItemsResponse(item_id=item_id, candidates_version=service.state.candidates_version,
                                items=[ScoredItemOut(item_id=i.item_id, score=i.score, rank=i.rank) for i in items])
