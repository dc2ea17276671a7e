"""Deterministic, sticky assignment of users to experiments and variants.

Two hashes of the user id, both sha256 (the same in every process, on every machine, after every
restart: no seed, no Python `hash`):

- the **slot** hash, salted with one constant for the whole surface, places a user at a point of [0, 1).
  Each running experiment owns a slice `[slot_start, slot_start + traffic)` given when it was created
  and never moved, and slices of running experiments never overlap: a user is in at most one
  experiment, and creating or stopping one never moves another's users;
- the **variant** hash, salted with the experiment's own salt, picks the variant by the cumulative
  shares. Independent of the slot hash, so which slice an experiment got does not bias its split.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from recsys.errors import ExperimentConflictError
from recsys.experiments.config import SHARE_TOLERANCE, Experiment, Variant

SURFACE_SALT = "recsys:recommendations"
INTERLEAVED = "interleaved"  # the `variant` of a response that interleaves both variants' lists
_SCALE = float(1 << 64)


def unit_hash(salt: str, user_id: str) -> float:
    """A point of [0, 1) from (salt, user id): the first 64 bits of sha256, uniform and stable."""
    digest = hashlib.sha256(f"{salt}\x00{user_id}".encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big") / _SCALE


def pick_variant(experiment: Experiment, user_id: str) -> Variant:
    """The variant of `user_id` in an A/B experiment: cumulative shares over the variant hash."""
    u = unit_hash(experiment.effective_salt, user_id)
    edge = 0.0
    for variant in experiment.variants:
        edge += variant.share
        if u < edge:
            return variant
    return experiment.variants[-1]  # shares add up to 1 within rounding: the last edge may be 0.9999999


@dataclass(frozen=True)
class Assignment:
    """Which experiment serves a request and how: a variant (A/B), or both lists interleaved."""

    experiment: str
    kind: str
    variant: str
    ranker: str
    # Interleaving: the two variants whose lists are interleaved (team names are the variant names).
    pair: tuple[Variant, Variant] | None = None


class ExperimentSet:
    """The running experiments one replica serves, immutable (swapped whole by the reload poller)."""

    def __init__(self, experiments: Iterable[Experiment] = ()) -> None:
        self.experiments = tuple(sorted((e for e in experiments if e.running), key=lambda e: e.slot_start))

    def __bool__(self) -> bool:
        return bool(self.experiments)

    def experiment_of(self, user_id: str) -> Experiment | None:
        if not self.experiments:
            return None
        u = unit_hash(SURFACE_SALT, user_id)
        for e in self.experiments:
            if e.slot_start <= u < e.slot_start + e.traffic:
                return e
        return None

    def assign(self, user_id: str) -> Assignment | None:
        """The user's assignment, or None when no running experiment covers them (served as usual)."""
        e = self.experiment_of(user_id)
        if e is None:
            return None
        if e.kind == "interleaving":
            a, b = e.variants
            return Assignment(e.name, e.kind, INTERLEAVED, "", (a, b))
        v = pick_variant(e, user_id)
        return Assignment(e.name, e.kind, v.name, v.ranker)


def allocate_slot(running: Iterable[Experiment], traffic: float) -> float:
    """Where a new experiment's slice of `traffic` starts: the first gap between running slices that fits.

    Running slices stay where they are (that is what keeps their users); ExperimentConflictError when no
    gap is wide enough, saying how much is free.
    """
    edge, gaps = 0.0, []
    for e in sorted(running, key=lambda e: e.slot_start):
        gaps.append((edge, e.slot_start - edge))
        edge = max(edge, e.slot_start + e.traffic)
    gaps.append((edge, 1.0 - edge))
    for start, width in gaps:
        if width + SHARE_TOLERANCE >= traffic:
            return round(start, 12)
    widest = max(w for _, w in gaps)
    raise ExperimentConflictError(
        f"no free traffic for {traffic:g} of users: the widest free slice is {max(widest, 0.0):g} (running "
        "experiments never share users); stop one (`recsys experiments stop NAME`) or ask for less traffic")
