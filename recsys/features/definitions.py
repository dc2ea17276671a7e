"""The feature set. Every function is vectorised over the candidate list of one request."""

from __future__ import annotations

import numpy as np

from recsys.candidates.sources import SOURCE_POPULAR, SOURCE_SESSION
from recsys.features.context import KNN_HISTORY, FeatureContext
from recsys.features.registry import REGISTRY

register = REGISTRY.register


def _reduce(mat: np.ndarray, how: str, n: int) -> np.ndarray:
    if mat.shape[1] == 0:
        return np.zeros(n, dtype=np.float32)
    return mat.max(axis=1) if how == "max" else mat.mean(axis=1)


# ---- candidate ------------------------------------------------------------------------------
@register("als_score", "candidate", "ALS inner product of user and item factors (from the candidate store)")
def als_score(ctx: FeatureContext) -> np.ndarray:
    return ctx.als_scores


@register("als_rank", "candidate", "Position in the cached candidate list, 0 = best, scaled to [0, 1]; "
          "NaN for session candidates")
def als_rank(ctx: FeatureContext) -> np.ndarray:
    cached = ctx.source != SOURCE_SESSION
    out = np.full(ctx.n, np.nan, dtype=np.float32)
    out[cached] = np.arange(int(cached.sum()), dtype=np.float32) / max(int(cached.sum()), 1)
    return out


@register("from_popularity", "candidate", "1 when the candidate came from the popularity fill, not ALS")
def from_popularity(ctx: FeatureContext) -> np.ndarray:
    return (ctx.source == SOURCE_POPULAR).astype(np.float32)


@register("from_session", "candidate", "1 when the candidate was added at request time as a session neighbour")
def from_session(ctx: FeatureContext) -> np.ndarray:
    return (ctx.source == SOURCE_SESSION).astype(np.float32)


# ---- item -----------------------------------------------------------------------------------
@register("item_pop", "item", "log(1 + distinct users who interacted with the item)")
def item_pop(ctx: FeatureContext) -> np.ndarray:
    return ctx.items.pop_log[ctx.candidates]


@register("item_pop_recent", "item", "log(1 + interactions in the recent window)")
def item_pop_recent(ctx: FeatureContext) -> np.ndarray:
    return ctx.items.pop_recent_log[ctx.candidates]


@register("item_trend", "item", "log ratio of the item's recent share to its all-time share")
def item_trend(ctx: FeatureContext) -> np.ndarray:
    return ctx.items.trend[ctx.candidates]


@register("item_n_categories", "item", "Number of categories the item belongs to")
def item_n_categories(ctx: FeatureContext) -> np.ndarray:
    return ctx.items.n_categories[ctx.candidates]


@register("item_factor_norm", "item", "Norm of the item's ALS factors (confidence of its embedding)")
def item_factor_norm(ctx: FeatureContext) -> np.ndarray:
    return ctx.items.norms[ctx.candidates]


# ---- user -----------------------------------------------------------------------------------
@register("user_history_len", "user", "log(1 + number of items in the user's history)")
def user_history_len(ctx: FeatureContext) -> np.ndarray:
    return np.full(ctx.n, np.log1p(ctx.history.size), dtype=np.float32)


@register("user_category_affinity", "user", "Share of the user's history in the candidate's categories")
def user_category_affinity(ctx: FeatureContext) -> np.ndarray:
    cats = ctx.items.categories_dense
    if cats.shape[1] == 0:
        return np.zeros(ctx.n, dtype=np.float32)
    return cats[ctx.candidates] @ ctx.user_category_profile


@register("user_pop_gap", "user", "Candidate popularity minus the mean popularity of the user's history")
def user_pop_gap(ctx: FeatureContext) -> np.ndarray:
    mean_pop = float(ctx.items.pop_log[ctx.history].mean()) if ctx.history.size else 0.0
    return ctx.items.pop_log[ctx.candidates] - mean_pop


@register("folded_score", "user", "Score against the user vector with history + session folded into ALS")
def folded_score(ctx: FeatureContext) -> np.ndarray:
    return ctx.folded_scores


@register("folded_rank", "user", "Rank of folded_score among the candidates, scaled to [0, 1]")
def folded_rank(ctx: FeatureContext) -> np.ndarray:
    order = np.argsort(-ctx.folded_scores, kind="stable")
    ranks = np.empty(ctx.n, dtype=np.float32)
    ranks[order] = np.arange(ctx.n, dtype=np.float32)
    return ranks / max(ctx.n, 1)


# ---- session --------------------------------------------------------------------------------
@register("session_len", "session", "Number of known items in the live session")
def session_len(ctx: FeatureContext) -> np.ndarray:
    return np.full(ctx.n, float(ctx.session_items.size), dtype=np.float32)


@register("session_sim_max", "session", "Max cosine (ALS factors) between candidate and session items")
def session_sim_max(ctx: FeatureContext) -> np.ndarray:
    return _reduce(ctx.session_sims, "max", ctx.n)


@register("session_sim_mean", "session", "Mean cosine between candidate and session items")
def session_sim_mean(ctx: FeatureContext) -> np.ndarray:
    return _reduce(ctx.session_sims, "mean", ctx.n)


@register("session_sim_recency", "session", "Recency-weighted cosine to session items (last counts most)")
def session_sim_recency(ctx: FeatureContext) -> np.ndarray:
    if ctx.session_items.size == 0:
        return np.zeros(ctx.n, dtype=np.float32)
    w = ctx.recency_weights
    return ctx.session_sims @ (w / w.sum())


@register("session_sim_last", "session", "Cosine to the most recent session item")
def session_sim_last(ctx: FeatureContext) -> np.ndarray:
    if ctx.session_items.size == 0:
        return np.zeros(ctx.n, dtype=np.float32)
    return ctx.session_sims[:, -1]


@register("session_covisit", "session", "log(1 + recency-weighted co-visitation counts with session items)")
def session_covisit(ctx: FeatureContext) -> np.ndarray:
    return np.log1p(ctx.covisit_session)


@register("session_covisit_max", "session", "log(1 + max co-visitation count with any session item)")
def session_covisit_max(ctx: FeatureContext) -> np.ndarray:
    return np.log1p(ctx.neighbours_max("covisit", ctx.session_items))


@register("session_knn", "session", "Recency-weighted item-kNN similarity to session items")
def session_knn(ctx: FeatureContext) -> np.ndarray:
    return ctx.knn_session


@register("session_category_match", "session", "Share of the candidate's categories seen in the session")
def session_category_match(ctx: FeatureContext) -> np.ndarray:
    cats = ctx.items.categories_dense
    if cats.shape[1] == 0 or ctx.session_items.size == 0:
        return np.zeros(ctx.n, dtype=np.float32)
    c = cats[ctx.candidates]
    return (c @ ctx.session_category_profile) / np.maximum(c.sum(axis=1), 1.0)


@register("session_seconds_since_last", "session", "log(1 + seconds since the last session event)")
def session_seconds_since_last(ctx: FeatureContext) -> np.ndarray:
    if ctx.session_timestamps.size == 0:
        return np.full(ctx.n, -1.0, dtype=np.float32)
    return np.full(ctx.n, np.log1p(max(ctx.now - float(ctx.session_timestamps.max()), 0.0)), dtype=np.float32)


# ---- history --------------------------------------------------------------------------------
@register("history_knn", "history", "Sum of item-kNN similarities between candidate and the user's last 50 items")
def history_knn(ctx: FeatureContext) -> np.ndarray:
    return ctx.knn_history


@register("history_knn_norm", "history", "history_knn divided by the number of history items it used")
def history_knn_norm(ctx: FeatureContext) -> np.ndarray:
    return ctx.knn_history / max(min(ctx.history.size, KNN_HISTORY), 1)


@register("history_covisit_recent", "history", "log(1 + co-visitation with the user's last 10 history items)")
def history_covisit_recent(ctx: FeatureContext) -> np.ndarray:
    return np.log1p(ctx.neighbours("covisit", ctx.recent_history))


@register("history_sim_recent", "history", "Mean cosine between candidate and the last 10 history items")
def history_sim_recent(ctx: FeatureContext) -> np.ndarray:
    if ctx.recent_history.size == 0:
        return np.zeros(ctx.n, dtype=np.float32)
    return (ctx.cand_unit @ ctx.items.unit[ctx.recent_history].T).mean(axis=1)
