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

from recsys.candidates.pipeline import build_candidates
from recsys.config import Settings
from recsys.data.splits import session_holdout
from recsys.errors import DataValidationError
from recsys.features import REGISTRY, ItemSide
from recsys.features.context import FeatureContext, make_context
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


def offline_features(item_side: ItemSide, candidates: tuple[np.ndarray, np.ndarray, int], history: np.ndarray,
                     session: list[tuple[str, str, float]], now: float, names: list[str]
                     ) -> tuple[FeatureContext, np.ndarray]:
    """The training-side feature matrix of one user: same context + registry as serving."""
    cand, scores, n_primary = candidates
    ctx = make_context(item_side, cand, scores, n_primary, history, session, now, history)
    return ctx, REGISTRY.build_matrix(names, ctx)


def build_ranker_data(interactions: pl.DataFrame, items: pl.DataFrame | None, settings: Settings,
                      feature_names: list[str] | None = None, *, max_users: int = 50_000,
                      progress: Progress | None = None) -> RankerData:
    """Hold out each user's tail, generate candidates without it, label candidates found in it."""
    progress = progress or NullProgress()
    names = feature_names or REGISTRY.names
    REGISTRY.check(names)
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

    blocks, labels, groups, kept, found, total = [], [], [], [], 0, 0
    tick = progress.stage("ranker features", len(users))
    for user in users:
        tick(1)
        row = user_row.get(user)
        if row is None:
            continue
        session = [(str(i), str(e), float(t)) for i, e, t in session_of.get(user, [])]
        now = max(t for _, _, t in session) if session else 0.0
        ctx, matrix = offline_features(item_side, arts.lists.row(row), arts.histories[row], session, now, names)
        target_idx = arts.bundle.indices_of(split.targets[user])
        y = np.isin(ctx.candidates, target_idx).astype(np.float32)
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
    log.info("event=ranker_data users=%d rows=%d candidate_recall=%.3f", len(kept), sum(groups),
             found / max(total, 1))
    return RankerData(np.vstack(blocks), np.concatenate(labels), np.asarray(groups), kept, names,
                      found / max(total, 1))
