"""Team-draft interleaving (Radlinski, Kurup & Joachims 2008) of two ranked lists into one top-k.

Each round, the team with fewer picks so far (a coin toss on a tie) adds its highest-ranked item not yet
shown; every shown item remembers the team that picked it. A click on an item credits its team; the
team with more credited clicks wins the impression. Because each team's items sit at positions its own
ranking deserves, position bias cancels in expectation and the comparison is within one user's one
request: that is why interleaving needs far fewer impressions than an A/B test.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def team_draft(a: Sequence[int], b: Sequence[int], k: int, rng: np.random.Generator) -> tuple[list[int], list[int]]:
    """Interleave rankings `a` and `b` (items, best first) into at most `k` items.

    Returns (items, teams) with teams[i] = 0 when items[i] was picked by `a`, 1 when by `b`. `rng` decides
    the coin tosses: seed it per request, so the same request is reproducible.
    """
    lists = (list(a), list(b))
    shown: list[int] = []
    teams: list[int] = []
    seen: set[int] = set()
    cursor = [0, 0]
    picks = [0, 0]
    while len(shown) < k:
        # the team with fewer picks picks next; a coin toss decides between equals
        team = (0 if picks[0] < picks[1] else 1) if picks[0] != picks[1] else int(rng.integers(0, 2))
        pick = _next_unseen(lists[team], cursor, team, seen)
        if pick is None:  # this team's list is used up: the other team fills the rest
            team = 1 - team
            pick = _next_unseen(lists[team], cursor, team, seen)
            if pick is None:
                break
        shown.append(pick)
        teams.append(team)
        seen.add(pick)
        picks[team] += 1
    return shown, teams


def _next_unseen(ranking: list[int], cursor: list[int], team: int, seen: set[int]) -> int | None:
    while cursor[team] < len(ranking) and ranking[cursor[team]] in seen:
        cursor[team] += 1
    if cursor[team] >= len(ranking):
        return None
    cursor[team] += 1
    return ranking[cursor[team] - 1]


def credit(teams: Sequence[str | None], items: Sequence[str], clicked: set[str], team_names: tuple[str, str]
           ) -> int:
    """Which team won one impression: +1 team_names[0], -1 team_names[1], 0 a tie (or no click)."""
    wins = [0, 0]
    for item, team in zip(items, teams, strict=True):
        if item in clicked and team in team_names:
            wins[team_names.index(team)] += 1
    return (wins[0] > wins[1]) - (wins[0] < wins[1])
