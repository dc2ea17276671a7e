"""New items: catalogue items the serving candidate version does not know (added after its refresh).

They have no ALS factors, co-visitation or popularity yet, so the ranker cannot score them; this source
scores them from what is known — the user's category affinity (history, and the live session counted
twice: it says what the user wants now) — and the service gives the best of them the exploration slot's
positions (`RECSYS_RULES__EXPLORATION_SHARE`, off by default). Their first events reach the event log,
the lake and the next refresh like any other; from then on they are ordinary candidates.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

SESSION_WEIGHT = 2.0


@dataclass(frozen=True)
class NewItem:
    item_id: str
    categories: tuple[str, ...]
    created_at: float


def category_affinity(history: Sequence[Sequence[str]], session: Sequence[Sequence[str]]) -> dict[str, float]:
    """Share of the user's (category-weighted) interactions in each category; session items count twice."""
    weights: dict[str, float] = {}
    for cats, w in [(c, 1.0) for c in history] + [(c, SESSION_WEIGHT) for c in session]:
        for c in cats:
            weights[c] = weights.get(c, 0.0) + w / len(cats)
    total = sum(weights.values())
    return {c: w / total for c, w in weights.items()} if total else {}


class NewItems:
    name = "new_items"

    def propose(self, affinity: Mapping[str, float], items: Sequence[NewItem], n: int) -> list[tuple[str, float]]:
        """Up to `n` (item id, score) best first: mean affinity over the item's categories; ties (and users
        without history) newest first, then by id (deterministic)."""
        scored = [(sum(affinity.get(c, 0.0) for c in it.categories) / max(len(it.categories), 1), it.created_at,
                   it.item_id) for it in items]
        scored.sort(key=lambda t: (-t[0], -t[1], t[2]))
        return [(item_id, score) for score, _, item_id in scored[:n]]
