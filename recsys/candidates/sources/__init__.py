"""The candidate sources and their registry (see base.py). Register a new source here, in its order."""

from __future__ import annotations

from recsys.candidates.sources.base import (
    SOURCE_ALS,
    SOURCE_NAMES,
    SOURCE_POPULAR,
    SOURCE_SESSION,
    CachedList,
    CandidatePool,
    ExtraSource,
    PrimarySource,
    Proposal,
    SourceRegistry,
    SourceRequest,
)
from recsys.candidates.sources.cached import CachedCandidates
from recsys.candidates.sources.popular import PopularCandidates, popular_items
from recsys.candidates.sources.session import SessionNeighbours, session_neighbours

SOURCES = SourceRegistry()
SOURCES.add_primary(CachedCandidates())  # the user's published list
SOURCES.add_primary(PopularCandidates())  # fallback: users without one
SOURCES.add_extra(SessionNeighbours())  # request time: what the live session points at

__all__ = ["SOURCES", "SOURCE_ALS", "SOURCE_NAMES", "SOURCE_POPULAR", "SOURCE_SESSION", "CachedList", "CandidatePool",
           "ExtraSource", "PrimarySource", "Proposal", "SourceRegistry", "SourceRequest", "popular_items",
           "session_neighbours"]
