"""Request rules: availability, category and attribute filters, and diversity (DESIGN.md §11).

Filters apply before ranking, as exclusions do (the ranker scores only what may be served); when they
leave fewer than k items, the list is filled with the most popular matching items and the response
says `filter_too_narrow`. Diversity (`max_per_category`) is a greedy re-rank after scoring: walk the
ranked list and keep an item unless one of its categories already has `max_per_category` items.

Attribute filter grammar (the `filter` query parameter, repeatable; all must hold):

    NAME=VALUE          equality (strings, numbers, `true`/`false` for booleans)
    NAME=V1|V2|V3       in: equal to any of the values
    NAME<NUMBER         numbers only, strictly less
    NAME>NUMBER         numbers only, strictly greater

NAME matches `[A-Za-z_][A-Za-z0-9_]*`. An item without the attribute, or whose attribute has another type
than the value (`price=cheap` on numbers, `color<3` on strings, `flag=yes` on booleans), never matches:
a filter no item satisfies is an over-narrow filter (`filter_too_narrow`), never an error. Only a filter
that does not follow the grammar is refused (422).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from recsys.catalogue import CatalogueView
from recsys.errors import InvalidRequestError
from recsys.store import ItemRecord

_NUMBER = r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?"
# The grammar as one regular expression (also the API's documented pattern of a `filter`).
FILTER_PATTERN = rf"^[A-Za-z_][A-Za-z0-9_]{{0,63}}(?:=[^\x00]+|[<>]{_NUMBER})$"
_CONDITION = re.compile(r"^([A-Za-z_][A-Za-z0-9_]{0,63})(=|<|>)(.+)$", re.DOTALL)
MAX_FILTER_LENGTH = 1100
_FILTER = re.compile(FILTER_PATTERN, re.DOTALL)
MAX_CONDITIONS = 20


@dataclass(frozen=True)
class Condition:
    name: str
    op: str  # "=", "in", "<", ">"
    values: tuple[str, ...]

    def __str__(self) -> str:
        if self.op == "in":
            return f"{self.name}={'|'.join(self.values)}"
        return f"{self.name}{self.op}{self.values[0]}"


def parse_condition(text: str) -> Condition:
    """One filter of the grammar above, or an InvalidRequestError saying how to write it."""
    m = _CONDITION.match(text) if len(text) <= MAX_FILTER_LENGTH and _FILTER.match(text) else None
    if m is None:
        raise InvalidRequestError(f"filter {text!r}: write NAME=VALUE, NAME=V1|V2, NAME<NUMBER or NAME>NUMBER "
                                  "(NAME: letters, digits, _)")
    name, op, value = m.groups()
    if op == "=":
        values = tuple(value.split("|"))
        return Condition(name, "in" if len(values) > 1 else "=", values)
    return Condition(name, op, (value,))


@dataclass(frozen=True)
class Rules:
    """What one request asks beyond the ranking; the default asks nothing."""

    categories: tuple[str, ...] = ()  # only items in any of these
    exclude_categories: tuple[str, ...] = ()  # never items in any of these
    conditions: tuple[Condition, ...] = ()
    max_per_category: int | None = None  # None: the configured default; 0: no cap

    @classmethod
    def parse(cls, *, category: Sequence[str] = (), exclude_category: Sequence[str] = (),
              filters: Sequence[str] = (), max_per_category: int | None = None) -> Rules:
        if len(filters) > MAX_CONDITIONS:
            raise InvalidRequestError(f"at most {MAX_CONDITIONS} filters, got {len(filters)}")
        if max_per_category is not None and max_per_category < 0:
            raise InvalidRequestError("max_per_category must be >= 0 (0: no cap)")
        return cls(tuple(category), tuple(exclude_category), tuple(parse_condition(f) for f in filters),
                   max_per_category)

    @property
    def narrows(self) -> bool:
        return bool(self.categories or self.exclude_categories or self.conditions)


NO_RULES = Rules()


def _numbers(values: tuple[str, ...]) -> list[float]:
    out = []
    for v in values:
        try:
            x = float(v)
        except ValueError:
            continue  # not a number: matches no number
        if math.isfinite(x):
            out.append(x)
    return out


def _condition_mask(view: CatalogueView, cond: Condition) -> np.ndarray:
    """Items that satisfy `cond` (see the module docstring: type mismatches match nothing)."""
    col = view.attributes.get(cond.name)
    nothing = np.zeros(view.n_items, dtype=bool)
    if col is None:
        return nothing
    if col.kind == "number":
        nums = _numbers(cond.values)
        if not nums:
            return nothing
        if cond.op == "<":
            return np.asarray(col.values < nums[0])  # NaN (missing) compares False
        if cond.op == ">":
            return np.asarray(col.values > nums[0])
        return np.isin(col.values, nums)
    if cond.op in ("<", ">"):
        return nothing
    if col.kind == "bool":
        flags = {"true": 1, "false": 0}
        return np.isin(col.values, [flags[v.lower()] for v in cond.values if v.lower() in flags])
    codes = [col.vocab[v] for v in cond.values if v in col.vocab]
    return np.isin(col.values, codes) if codes else nothing


def allowed_mask(view: CatalogueView, rules: Rules) -> np.ndarray | None:
    """Items the request's filters allow (None: no filter, every item)."""
    if not rules.narrows:
        return None
    allowed = np.ones(view.n_items, dtype=bool)
    if rules.categories:
        allowed &= np.logical_or.reduce([view.category_mask(c) for c in rules.categories])
    for c in rules.exclude_categories:
        allowed &= ~view.category_mask(c)
    for cond in rules.conditions:
        allowed &= _condition_mask(view, cond)
    return allowed


def diversify(view: CatalogueView, ranked: np.ndarray, k: int, max_per_category: int) -> np.ndarray:
    """Greedy re-rank: positions of `ranked` (item indices, best first) kept, at most `max_per_category`
    items per category, up to k. Items without a category are never held back."""
    counts: dict[int, int] = {}
    kept: list[int] = []
    for pos, item in enumerate(ranked.tolist()):
        cats = view.categories_of(item).tolist()
        if any(counts.get(c, 0) >= max_per_category for c in cats):
            continue
        for c in cats:
            counts[c] = counts.get(c, 0) + 1
        kept.append(pos)
        if len(kept) == k:
            break
    return np.asarray(kept, dtype=np.int64)


def record_matches(record: ItemRecord, rules: Rules) -> bool:
    """The request's filters on one catalogue record (new items, which the arrays of a view do not hold),
    with the same semantics as `allowed_mask`."""
    if rules.categories and not set(rules.categories) & set(record.categories):
        return False
    if set(rules.exclude_categories) & set(record.categories):
        return False
    for cond in rules.conditions:
        value = record.attributes.get(cond.name)
        if value is None:
            return False
        try:
            if isinstance(value, bool):
                ok = cond.op in ("=", "in") and value in {v.lower() == "true" for v in cond.values
                                                          if v.lower() in ("true", "false")}
            elif isinstance(value, float):
                nums = _numbers(cond.values)
                ok = bool(nums) and (value < nums[0] if cond.op == "<" else value > nums[0] if cond.op == ">"
                                     else value in nums)
            else:
                ok = cond.op in ("=", "in") and value in cond.values
        except ValueError:
            ok = False
        if not ok:
            return False
    return True
