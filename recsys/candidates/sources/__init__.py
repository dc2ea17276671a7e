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
from recsys.candidates.sources.new_items import NewItem, NewItems, category_affinity
from recsys.candidates.sources.popular import PopularCandidates, popular_items
from recsys.candidates.sources.session import SessionNeighbours, session_neighbours

SOURCES = SourceRegistry()
SOURCES.add_primary(CachedCandidates())  # the user's published list
SOURCES.add_primary(PopularCandidates())  # fallback: users without one
SOURCES.add_extra(SessionNeighbours())  # request time: what the live session points at
# Catalogue items unknown to the candidate version: scored apart (no factors yet), served in the exploration slot.
NEW_ITEMS = NewItems()

__all__ = ["NEW_ITEMS", "SOURCES", "SOURCE_ALS", "SOURCE_NAMES", "SOURCE_POPULAR", "SOURCE_SESSION", "CachedList",
           "CandidatePool", "ExtraSource", "NewItem", "NewItems", "PrimarySource", "Proposal", "SourceRegistry",
           "SourceRequest", "category_affinity", "popular_items", "session_neighbours"]
