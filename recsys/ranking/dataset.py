"""Ranker training data in the shape of serving, built from training interactions only.

Each user's history tail is held out exactly like DESIGN.md §6: an ALS that did not see the tail
generates candidates, the first events of the tail are the live session and the rest the labels.
Features come from the same `make_context` + registry the online path uses.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import polars as pl

from recsys.candidates.item_side import ItemSide
from recsys.candidates.pipeline import build_candidates
from recsys.candidates.sources import CachedList
from recsys.config import CandidateConfig, Settings
from recsys.data.splits import session_holdout
from recsys.errors import DataValidationError
from recsys.features import REGISTRY, FeatureContext, make_context
from recsys.progress import NullProgress, Progress

log = logging.getLogger(__name__)


@dataclass
class RankerData:
    features: np.ndarray  # float32 [rows, n_features]
    labels: np.ndarray  # float32 [rows]
    groups: np.ndarray  # rows per user, in order
    user_ids: list[str]
    feature_names: list[str]
    candidate_recall: float  # share of label items found among the candidates

    def take_users(self, mask: np.ndarray) -> RankerData:
        bounds = np.concatenate([[0], np.cumsum(self.groups)])
        rows = np.concatenate([np.arange(bounds[i], bounds[i + 1]) for i in np.flatnonzero(mask)])
        return RankerData(self.features[rows], self.labels[rows], self.groups[mask],
                          [u for u, m in zip(self.user_ids, mask, strict=True) if m], self.feature_names,
                          self.candidate_recall)


def offline_features(item_side: ItemSide, cached: CachedList | None, history: np.ndarray,
                     session: list[tuple[str, str, float]], now: float, names: list[str], config: CandidateConfig,
                     blocked: np.ndarray | None = None) -> tuple[FeatureContext, np.ndarray]:
    """The training-side feature matrix of one user: same context + registry as serving.

    `cached=None` is a user the service does not know: the candidate sources fall back to popular
    items exactly as they do online.
    """
    ctx = make_context(item_side, cached, history, session, now, history if blocked is None else blocked,
                       config=config)
    return ctx, REGISTRY.build_matrix(names, ctx)


def drop_tails(interactions: pl.DataFrame, n: int) -> pl.DataFrame:
    """Remove each user's last `n` interactions (same order as the protocol): an earlier window."""
    if n <= 0:
        return interactions
    return (interactions.sort(["user_id", "timestamp", "item_id"])
            .with_columns(pl.int_range(pl.len()).over("user_id").alias("_pos"), pl.len().over("user_id").alias("_n"))
            .filter(pl.col("_pos") < pl.col("_n") - n).drop("_pos", "_n"))


def build_ranker_data(interactions: pl.DataFrame, items: pl.DataFrame | None, settings: Settings,
                      feature_names: list[str] | None = None, *, progress: Progress | None = None) -> RankerData:
    """Training groups from `settings.ranker.windows` time windows per user.

    Window 0 holds out each user's last 10 interactions; window w first drops the last 10*w, so
    the ranker sees several moments of each user's history (more groups, same shape as serving).
    """
    progress = progress or NullProgress()
    names = feature_names or REGISTRY.names
    REGISTRY.check(names)
    parts = []
    for window in range(settings.ranker.windows):
        source = drop_tails(interactions, window * 10)
        try:
            parts.append(_window_data(source, items, settings, names, progress, window))
        except DataValidationError:
            if window == 0:
                raise
            break  # earlier windows run out of users with enough history: use what we have
    data = RankerData(np.vstack([p.features for p in parts]), np.concatenate([p.labels for p in parts]),
                      np.concatenate([p.groups for p in parts]), [u for p in parts for u in p.user_ids], names,
                      float(np.mean([p.candidate_recall for p in parts])))
    log.info("event=ranker_data windows=%d groups=%d rows=%d candidate_recall=%.3f", len(parts), data.groups.size,
             data.features.shape[0], data.candidate_recall)
    return data


def _window_data(interactions: pl.DataFrame, items: pl.DataFrame | None, settings: Settings, names: list[str],
                 progress: Progress, window: int) -> RankerData:
    """Hold out each user's tail, generate candidates without it, label candidates found in it."""
    max_users = settings.ranker.max_users
    split = session_holdout(interactions)
    users = split.users
    if len(users) > max_users:
        rng = np.random.default_rng(settings.seed)
        users = sorted(rng.choice(users, size=max_users, replace=False).tolist())
    arts = build_candidates(split.train, items, version="ranker-training", als_config=settings.als,
                            candidate_config=settings.candidates)
    item_side = ItemSide(arts.bundle, settings.als.regularization, settings.als.alpha)
    user_row = arts.matrix.user_index()
    sessions = (split.sessions.group_by("user_id", maintain_order=True)
                .agg(pl.col("item_id"), pl.col("event"), pl.col("timestamp")))
    session_of = {u: list(zip(i, e, t, strict=True)) for u, i, e, t in sessions.iter_rows()}

    # Some users also appear "cold" (no history, no cached list: the candidate sources fall back to
    # popular items, as the service does for unknown users), so the ranker learns to rerank popular
    # items + session neighbours too.
    rng = np.random.default_rng(settings.seed + window)
    cold = set(rng.choice(users, size=int(len(users) * settings.ranker.cold_share), replace=False).tolist())
    empty = np.zeros(0, dtype=np.int64)
    blocks, labels, groups, kept, found, total = [], [], [], [], 0, 0
    tick = progress.stage(f"ranker features w{window}", len(users))
    for user in users:
        tick(1)
        row = user_row.get(user)
        if row is None:
            continue
        session = [(str(i), str(e), float(t)) for i, e, t in session_of.get(user, [])]
        now = max(t for _, _, t in session) if session else 0.0
        target_idx = arts.bundle.indices_of(split.targets[user])
        variants: list[tuple[CachedList | None, np.ndarray, np.ndarray | None]] = [
            (CachedList(*arts.lists.row(row)), arts.histories[row], None)]
        if user in cold:
            seen = arts.matrix.matrix.indices[arts.matrix.matrix.indptr[row]:arts.matrix.matrix.indptr[row + 1]]
            variants.append((None, empty, seen.astype(np.int64)))
        for v, (cached, history, blocked) in enumerate(variants):
            ctx, matrix = offline_features(item_side, cached, history, session, now, names, settings.candidates,
                                           blocked)
            y = np.isin(ctx.candidates, target_idx).astype(np.float32)
            if v == 0:
                total += len(split.targets[user])
                found += int(y.sum())
            if y.sum() == 0 or ctx.n < 2:
                continue  # a group without positives teaches LambdaMART nothing
            blocks.append(matrix)
            labels.append(y)
            groups.append(ctx.n)
            kept.append(user)
    if not blocks:
        raise DataValidationError("no user has a held-out item among its candidates: data set too small or "
                                  "too sparse to train a ranker")
    return RankerData(np.vstack(blocks), np.concatenate(labels), np.asarray(groups), kept, names,
                      found / max(total, 1))
