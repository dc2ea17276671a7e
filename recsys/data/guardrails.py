"""Publish guardrails: may this data set replace the one the serving version was built from?

A refresh on a 2-row file once exited 0 and replaced the 943-user MovieLens version: every real user
fell back to popular items. Before anything is built, the new data's shape is compared with the
serving version's (users, items, interactions, which items) and with minimum sizes
(`GuardrailConfig`, env `RECSYS_GUARDRAILS__…`). A refusal names every rule that failed with its
numbers; `--force` publishes anyway and the override is recorded with the version (and the job run).
A first publish (no serving version) has only the minimum-size checks.

The same check runs on the data `train-ranker` reads, so a ranker trained on a toy file cannot
replace one trained on the data that serves.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import polars as pl

from recsys.config import GuardrailConfig
from recsys.errors import RecsysError

log = logging.getLogger(__name__)

ENV = "RECSYS_GUARDRAILS__"


class GuardrailError(RecsysError):
    """The new data failed the publish guardrails: nothing was published."""

    def __init__(self, message: str, verdict: GuardVerdict) -> None:
        super().__init__(message)
        self.verdict = verdict


@dataclass(frozen=True)
class DataShape:
    """What a data set (or the serving version built from it) holds."""

    users: int
    items: int
    interactions: int | None  # None: a version published before the count was recorded
    item_ids: frozenset[str] | None = None  # the serving version's items (for the overlap rule)

    @classmethod
    def of(cls, interactions: pl.DataFrame) -> DataShape:
        return cls(users=int(interactions["user_id"].n_unique()), items=int(interactions["item_id"].n_unique()),
                   interactions=interactions.height)

    @classmethod
    def of_version(cls, meta: dict[str, Any], item_ids: Sequence[str]) -> DataShape:
        """The serving version's shape from its store meta (`users`, `items`, `interactions`) and item ids."""
        interactions = meta.get("interactions")
        return cls(users=int(meta.get("users", 0)), items=int(meta.get("items", len(item_ids))),
                   interactions=int(interactions) if isinstance(interactions, int | float) else None,
                   item_ids=frozenset(item_ids) if item_ids else None)


@dataclass
class GuardVerdict:
    """The outcome of the check, with every number behind it (recorded with the version and the job)."""

    passed: bool
    problems: list[str]
    new: dict[str, int]
    serving: dict[str, int | None] | None = None
    serving_version: str | None = None
    item_overlap: float | None = None
    forced: bool = False
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_data(interactions: pl.DataFrame, config: GuardrailConfig, *, serving: DataShape | None = None,
               serving_version: str | None = None) -> GuardVerdict:
    """Compare new interactions with the serving version's shape (None: first publish) and the minimums."""
    new = DataShape.of(interactions)
    problems = _minimum_problems(new, config)
    overlap = None
    if serving is not None:
        problems += _shrink_problems(new, serving, config)
        if serving.item_ids:
            kept = len(serving.item_ids & set(interactions["item_id"].unique().to_list()))
            overlap = kept / len(serving.item_ids)
            if overlap < config.min_item_overlap:
                problems.append(f"only {kept} of the serving version's {len(serving.item_ids)} items "
                                f"({overlap:.1%}) are in the new data, below {ENV}MIN_ITEM_OVERLAP="
                                f"{config.min_item_overlap:g} (a different data set?)")
    verdict = GuardVerdict(
        passed=not problems, problems=problems,
        new={"users": new.users, "items": new.items, "interactions": new.interactions or 0},
        serving=None if serving is None else {"users": serving.users, "items": serving.items,
                                              "interactions": serving.interactions},
        serving_version=serving_version, item_overlap=overlap)
    if serving is not None and serving.interactions is None:
        verdict.notes.append("the serving version did not record its interaction count: that rule was skipped")
    return verdict


def enforce(verdict: GuardVerdict, *, force: bool, what: str) -> GuardVerdict:
    """Raise GuardrailError on a failed check unless `force`; a forced pass is marked and logged."""
    if verdict.passed:
        return verdict
    if force:
        verdict.forced = True
        log.warning("event=guardrails_overridden what=%r problems=%r", what, verdict.problems)
        return verdict
    against = (f"the serving version {verdict.serving_version} ({_shape(verdict.serving)})"
               if verdict.serving is not None else "the minimum sizes (first publish)")
    message = (f"refusing to {what}: the new data ({_shape(verdict.new)}) fails the publish guardrails "
               f"against {against}: " + "; ".join(verdict.problems)
               + ". Nothing was published; the serving version is unchanged. If this data is right (a "
               "different data set on purpose), pass --force (recorded); or tune the limits with "
               f"{ENV}MAX_SHRINK, MIN_ITEM_OVERLAP, MIN_USERS, MIN_ITEMS, MIN_INTERACTIONS")
    raise GuardrailError(message, verdict)


def _shape(numbers: dict[str, Any] | None) -> str:
    if not numbers:
        return "-"
    return ", ".join(f"{v} {k}" for k, v in numbers.items() if v is not None)


def _minimum_problems(new: DataShape, config: GuardrailConfig) -> list[str]:
    out = []
    for name, value, minimum in (("users", new.users, config.min_users), ("items", new.items, config.min_items),
                                 ("interactions", new.interactions or 0, config.min_interactions)):
        if value < minimum:
            out.append(f"{value} {name}, below the minimum {ENV}MIN_{name.upper()}={minimum}")
    return out


def _shrink_problems(new: DataShape, serving: DataShape, config: GuardrailConfig) -> list[str]:
    out = []
    for name, before, after in (("users", serving.users, new.users), ("items", serving.items, new.items),
                                ("interactions", serving.interactions, new.interactions)):
        if not before or after is None:
            continue
        drop = (before - after) / before
        if drop > config.max_shrink:
            out.append(f"{name} shrink from {before} to {after} (-{drop:.1%}), more than "
                       f"{ENV}MAX_SHRINK={config.max_shrink:g}")
    return out
