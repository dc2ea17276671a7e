"""Evaluation splits. `session_holdout` is DESIGN.md §6, written so any two implementations agree."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from recsys.errors import DataValidationError


@dataclass
class HoldoutSplit:
    """Training interactions, each evaluation user's live session and the targets to find."""

    train: pl.DataFrame
    sessions: pl.DataFrame  # user_id, item_id, event, timestamp; n_session rows per evaluation user
    targets: dict[str, list[str]]  # evaluation user -> target item ids (never empty)

    @property
    def users(self) -> list[str]:
        return list(self.targets)

    def session_items(self) -> dict[str, list[str]]:
        grouped = self.sessions.group_by("user_id", maintain_order=True).agg(pl.col("item_id"))
        return dict(zip(grouped["user_id"].to_list(), grouped["item_id"].to_list(), strict=True))


def _ordered(interactions: pl.DataFrame) -> pl.DataFrame:
    return interactions.sort(["user_id", "timestamp", "item_id"]).with_columns(
        pl.int_range(pl.len()).over("user_id").alias("_pos"),
        pl.len().over("user_id").alias("_n"),
    )


def session_holdout(interactions: pl.DataFrame, *, n_holdout: int = 10, n_session: int = 3,
                    min_interactions: int = 20) -> HoldoutSplit:
    """Split per DESIGN.md §6.

    Per user sorted by (timestamp, item_id): users with >= `min_interactions` hold out their last
    `n_holdout`; the first `n_session` of those are the live session, the rest (minus items in the
    user's training history or session) are targets. Everything else is training data.
    """
    if not 0 < n_session < n_holdout < min_interactions:
        raise DataValidationError(
            f"need 0 < n_session ({n_session}) < n_holdout ({n_holdout}) "
            f"< min_interactions ({min_interactions})")
    df = _ordered(interactions)
    held_mask = (pl.col("_n") >= min_interactions) & (pl.col("_pos") >= pl.col("_n") - n_holdout)
    train = df.filter(~held_mask)
    held = df.filter(held_mask).with_columns((pl.col("_pos") - (pl.col("_n") - n_holdout)).alias("_h"))
    if held.height == 0:
        raise DataValidationError(
            f"data set too small for session-holdout: no user has >= {min_interactions} interactions "
            f"({interactions['user_id'].n_unique()} users, {interactions.height} interactions)")
    sessions = held.filter(pl.col("_h") < n_session)
    candidates = held.filter(pl.col("_h") >= n_session)
    # Targets exclude items the user has already seen in training or in the session.
    seen = pl.concat([train.select("user_id", "item_id"), sessions.select("user_id", "item_id")])
    # An item held out twice is one target, at its first position (sort first: joins and `unique`
    # do not keep row order, so "first" must be made explicit).
    targets_df = (candidates.select("user_id", "item_id", "_h")
                  .join(seen.unique(), on=["user_id", "item_id"], how="anti")
                  .sort(["user_id", "_h"])
                  .unique(subset=["user_id", "item_id"], keep="first", maintain_order=True)
                  .group_by("user_id", maintain_order=True).agg(pl.col("item_id")))
    targets = {u: list(items) for u, items in zip(targets_df["user_id"].to_list(),
                                                   targets_df["item_id"].to_list(), strict=True) if items}
    sessions = sessions.filter(pl.col("user_id").is_in(list(targets))).select(
        "user_id", "item_id", "event", "timestamp")
    return HoldoutSplit(train=train.drop("_pos", "_n"), sessions=sessions, targets=targets)


def global_time(interactions: pl.DataFrame, *, quantile: float = 0.9, n_session: int = 3,
                min_after: int = 4) -> tuple[HoldoutSplit, set[str]]:
    """One global cutoff at a timestamp quantile; returns the split and the set of cold users.

    Users with >= `min_after` events after the cutoff are evaluated: their first `n_session`
    events after it form the session, the rest (minus seen items) the targets.
    """
    if not 0.0 < quantile < 1.0:
        raise DataValidationError(f"quantile must be in (0, 1), got {quantile}")
    cutoff = int(interactions["timestamp"].quantile(quantile, interpolation="lower"))
    df = interactions.sort(["user_id", "timestamp", "item_id"])
    before = df.filter(pl.col("timestamp") <= cutoff)
    after = df.filter(pl.col("timestamp") > cutoff).with_columns(
        pl.int_range(pl.len()).over("user_id").alias("_h"), pl.len().over("user_id").alias("_n"))
    after = after.filter(pl.col("_n") >= min_after)
    if after.height == 0:
        raise DataValidationError(f"no user has >= {min_after} interactions after the cutoff {cutoff}")
    sessions = after.filter(pl.col("_h") < n_session)
    rest = after.filter(pl.col("_h") >= n_session)
    # Interactions after the cutoff of users that are not evaluated are dropped: they are the future.
    seen = pl.concat([before.select("user_id", "item_id"), sessions.select("user_id", "item_id")]).unique()
    targets_df = (rest.join(seen, on=["user_id", "item_id"], how="anti").sort(["user_id", "_h"])
                  .unique(subset=["user_id", "item_id"], keep="first", maintain_order=True)
                  .group_by("user_id", maintain_order=True).agg(pl.col("item_id")))
    targets = {u: list(i) for u, i in zip(targets_df["user_id"].to_list(), targets_df["item_id"].to_list(),
                                          strict=True) if i}
    known = set(before["user_id"].unique().to_list())
    cold = {u for u in targets if u not in known}
    sessions = sessions.filter(pl.col("user_id").is_in(list(targets))).select(
        "user_id", "item_id", "event", "timestamp")
    return HoldoutSplit(train=before, sessions=sessions, targets=targets), cold
