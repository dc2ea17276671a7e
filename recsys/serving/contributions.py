"""Why an item was recommended: the largest feature contributions to its score, in words.

LightGBM's `pred_contrib` splits each raw score into one contribution per feature plus the model's
bias (SHAP values of the tree ensemble: they sum to the score exactly). It is computed on the rows
actually returned only — one extra predict of k rows, not of the whole candidate list.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recsys.features import REGISTRY
from recsys.ranking.model import RankerModel

TOP_CONTRIBUTIONS = 3

# What a user could read for a feature that pushed an item up; features without a sentence fall back to
# the registry's description.
SENTENCES: dict[str, str] = {
    "als_score": "matches your long-term taste",
    "als_rank": "ranked high among the items picked for you",
    "from_popularity": "popular with everyone",
    "from_session": "related to what you are looking at now",
    "item_pop": "popular with many users",
    "item_pop_recent": "popular this week",
    "item_trend": "trending now",
    "item_n_categories": "fits several of the categories you like",
    "item_factor_norm": "a well-known item with a clear audience",
    "user_history_len": "based on everything you have interacted with",
    "user_category_affinity": "in categories you often choose",
    "user_pop_gap": "about as popular as what you usually pick",
    "folded_score": "matches your taste, including what you did just now",
    "folded_rank": "one of the best matches for your taste right now",
    "session_len": "based on your current session",
    "session_sim_max": "similar to an item in your current session",
    "session_sim_mean": "similar to items in your current session",
    "session_sim_recency": "similar to what you looked at most recently",
    "session_sim_last": "similar to the last item you looked at",
    "session_covisit": "often viewed together with items in your current session",
    "session_covisit_max": "often viewed together with an item in your current session",
    "session_knn": "liked by people who liked items in your current session",
    "session_category_match": "in a category you are browsing now",
    "session_seconds_since_last": "based on how recently you were active",
    "history_knn": "liked by people who liked items you liked",
    "history_knn_norm": "liked by people with a history like yours",
    "history_covisit_recent": "often viewed together with items you interacted with recently",
    "history_sim_recent": "similar to items you interacted with recently",
}


def sentence(feature: str) -> str:
    if feature in SENTENCES:
        return SENTENCES[feature]
    return REGISTRY[feature].description if feature in REGISTRY else feature


@dataclass(frozen=True)
class Contribution:
    feature: str
    value: float
    sentence: str


@dataclass(frozen=True)
class Explanation:
    """Every feature's contribution to one item's raw score (largest first) and the model's bias:
    `sum(c.value for c in contributions) + bias` is the score. The API returns the first three."""

    source: str
    contributions: tuple[Contribution, ...]
    bias: float

    def top(self, n: int = TOP_CONTRIBUTIONS) -> tuple[Contribution, ...]:
        return self.contributions[:n]


def contributions(model: RankerModel, rows: np.ndarray) -> np.ndarray:
    """[len(rows), n_features + 1] contributions (last column: bias) of feature rows `rows`."""
    if rows.shape[0] == 0:
        return np.zeros((0, len(model.feature_names) + 1))
    return np.asarray(model.booster.predict(rows, pred_contrib=True, num_threads=1))


def explanations(model: RankerModel, rows: np.ndarray, sources: list[str]) -> list[Explanation]:
    """One Explanation per row (`sources`: the candidate source of each row)."""
    contrib = contributions(model, rows)
    names = model.feature_names
    out = []
    for r, source in enumerate(sources):
        values = contrib[r, :-1]
        order = np.argsort(-values, kind="stable")  # largest (most positive) first: what pushed it up
        out.append(Explanation(source, tuple(Contribution(names[j], float(values[j]), sentence(names[j]))
                                             for j in order.tolist()), float(contrib[r, -1])))
    return out
