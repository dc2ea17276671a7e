"""Candidate sources: where the items a ranker scores come from, offline and online alike.

A request's candidate pool is assembled in one place (`SourceRegistry.assemble`):

1. the first *primary* source that has a list for the user — the fallback chain: the user's cached
   ALS list, else popular items;
2. minus the blocked items (history, session, explicit excludes);
3. then each *extra* source in registration order adds up to its own limit of items not yet in the
   pool (session neighbours today).

Every item carries the code of the source that brought it (a ranker feature: codes are stable and
never reused). Adding a source is one new file in this package plus one registration line in
`__init__.py`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from recsys.candidates.item_side import ItemSide
from recsys.config import CandidateConfig

# Source codes, as the ranker sees them (feature `from_popularity`, `from_session`, `als_rank`).
SOURCE_ALS, SOURCE_POPULAR, SOURCE_SESSION = 0, 1, 2
# What a response says brought an item in (explanations); a new source adds its name here.
SOURCE_NAMES: dict[int, str] = {SOURCE_ALS: "als", SOURCE_POPULAR: "popular", SOURCE_SESSION: "session"}


@dataclass(frozen=True)
class CachedList:
    """A user's published candidates: item indices, the ALS user vector, and how many lead from ALS
    (the rest are popularity fill)."""

    items: np.ndarray
    user_vector: np.ndarray  # float32, quantised as stored (int8 x one scale per user)
    n_primary: int

    def scores(self, item_factors: np.ndarray) -> np.ndarray:
        """The candidates' ALS scores, item_factors[items] @ u: the one computation offline (ranker
        training) and online (the cached source, the unranked list) share, so both see the same values."""
        return (item_factors[self.items] @ np.ascontiguousarray(self.user_vector, dtype=np.float32)).astype(
            np.float32, copy=False)


@dataclass(frozen=True)
class SourceRequest:
    """What a source may look at for one request."""

    items: ItemSide
    cached: CachedList | None
    history: np.ndarray  # item indices, oldest first
    session_items: np.ndarray  # known session item indices, oldest first
    session_weights: np.ndarray  # event weights of those items
    config: CandidateConfig


@dataclass(frozen=True)
class Proposal:
    """Items a source proposes, with a score (NaN: no ALS score) and the code of the source of each."""

    items: np.ndarray  # int64
    scores: np.ndarray  # float32
    source: np.ndarray  # int8

    @classmethod
    def of(cls, items: np.ndarray, scores: np.ndarray | None, code: int) -> Proposal:
        n = items.size
        return cls(items.astype(np.int64, copy=False),
                   np.full(n, np.nan, dtype=np.float32) if scores is None else scores.astype(np.float32),
                   np.full(n, code, dtype=np.int8))


@dataclass(frozen=True)
class CandidatePool:
    """The list the ranker scores, and the primary source it started from."""

    candidates: np.ndarray
    scores: np.ndarray
    source: np.ndarray
    primary: str


class PrimarySource(Protocol):
    """A link of the fallback chain: the user's whole list, or None to pass to the next link."""

    name: str

    def propose(self, request: SourceRequest) -> Proposal | None: ...


class ExtraSource(Protocol):
    """Adds items at request time; must not propose items where `taken` is True (a catalogue mask)."""

    name: str

    def propose(self, request: SourceRequest, taken: np.ndarray) -> Proposal: ...


class SourceRegistry:
    def __init__(self) -> None:
        self._primary: list[PrimarySource] = []
        self._extra: list[ExtraSource] = []

    def add_primary(self, source: PrimarySource) -> None:
        self._check_new(source.name)
        self._primary.append(source)

    def add_extra(self, source: ExtraSource) -> None:
        self._check_new(source.name)
        self._extra.append(source)

    def remove(self, name: str) -> None:
        self._primary = [s for s in self._primary if s.name != name]
        self._extra = [s for s in self._extra if s.name != name]

    def _check_new(self, name: str) -> None:
        if name in self.names:
            raise ValueError(f"candidate source {name!r} registered twice")

    @property
    def names(self) -> list[str]:
        return [s.name for s in self._primary] + [s.name for s in self._extra]

    def __iter__(self) -> Iterator[PrimarySource | ExtraSource]:
        yield from self._primary
        yield from self._extra

    def assemble(self, request: SourceRequest, blocked: np.ndarray | None = None) -> CandidatePool:
        """The candidate pool of one request (see the module docstring for the order)."""
        first, name = self._first_primary(request)
        # Dense catalogue masks: one O(catalogue) fill each, cheaper than np.isin's sorts at request sizes.
        taken = np.zeros(request.items.n_items, dtype=bool)
        taken[request.session_items] = True
        if blocked is not None:
            taken[blocked] = True
        keep = ~taken[first.items]
        parts = [Proposal(first.items[keep], first.scores[keep], first.source[keep])]
        taken[parts[0].items] = True  # extra sources never add an item twice
        for source in self._extra:
            extra = source.propose(request, taken)
            if extra.items.size:
                parts.append(extra)
                taken[extra.items] = True
        if len(parts) == 1:
            return CandidatePool(parts[0].items, parts[0].scores, parts[0].source, name)
        return CandidatePool(np.concatenate([p.items for p in parts]), np.concatenate([p.scores for p in parts]),
                             np.concatenate([p.source for p in parts]), name)

    def _first_primary(self, request: SourceRequest) -> tuple[Proposal, str]:
        for source in self._primary:
            proposal = source.propose(request)
            if proposal is not None:
                return proposal, source.name
        empty = np.zeros(0, dtype=np.int64)
        return Proposal.of(empty, None, SOURCE_POPULAR), "none"
