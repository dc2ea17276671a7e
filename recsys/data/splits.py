"""Evaluation splits. `session_holdout` is DESIGN.md §6, written so any two implementations agree."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from recsys.errors import DataValidationError


class SplitTooSmallError(DataValidationError):
    """No user qualifies for the protocol: the data set is too small or too short per user for it."""

    def __init__(self, message: str, *, protocol: str) -> None:
        super().__init__(message)
        self.protocol = protocol


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


def _sorted_by_time(interactions: pl.DataFrame) -> pl.DataFrame:
    """Sort by (user_id, timestamp, item_id), comparing item ids as numbers when they all are numbers.

    Why: DESIGN.md §6 breaks timestamp ties by item_id, and ties are common (MovieLens logs many
    ratings in the same second), so the tie order decides which items become session and targets.
    Item ids are strings at our boundaries, but in MovieLens they are integers and an independent
    implementation reading the file compares them as integers ("9" < "10"). Measured on ml-100k,
    popularity nDCG@10 is 0.0631 with numeric order (the reference is 0.0634 +- 0.003), 0.0687 with
    lexicographic order and 0.072 with file order. So: numeric order when every item id parses as
    an integer, lexicographic otherwise (ids like "a7" have no other natural order); the string
    itself stays the final key, so "07" and "7" still sort deterministically.
    """
    numeric = pl.col("item_id").cast(pl.Int64, strict=False)
    all_numeric = interactions.height > 0 and interactions.select(numeric.is_not_null().all()).item()
    if not all_numeric:
        return interactions.sort(["user_id", "timestamp", "item_id"])
    return (interactions.with_columns(numeric.alias("_item_num"))
            .sort(["user_id", "timestamp", "_item_num", "item_id"]).drop("_item_num"))


def _ordered(interactions: pl.DataFrame) -> pl.DataFrame:
    return _sorted_by_time(interactions).with_columns(
        pl.int_range(pl.len()).over("user_id").alias("_pos"),
        pl.len().over("user_id").alias("_n"),
    )


def session_holdout(interactions: pl.DataFrame, *, n_holdout: int = 10, n_session: int = 3,
                    min_interactions: int = 20) -> HoldoutSplit:
    """Split per DESIGN.md §6.

    Per user sorted by (timestamp, item_id): users with >= `min_interactions` hold out their last
    `n_holdout`; the first `n_session` of those are the live session, the rest (minus items in the
    user's training history or session) are targets. Everything else is training data.
    A target repeated within the 7 counts once. A user whose targets all vanish that way is not an
    evaluation user (a metric over an empty target set is undefined), and their session is dropped
    with them; on ml-100k, which has no repeated (user, item) pairs, this never happens.
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
        counts = interactions.group_by("user_id").len()["len"]
        most = int(counts.to_numpy().max()) if counts.len() else 0
        raise SplitTooSmallError(
            f"data set too small for session-holdout: no user has >= {min_interactions} interactions "
            f"({interactions['user_id'].n_unique()} users, {interactions.height} interactions, at most {most} for "
            f"one user). The protocol holds out each evaluation user's last {n_holdout} interactions "
            f"({n_session} as the live session, the rest as targets), so an evaluation user needs at least "
            f"{min_interactions} ({min_interactions - n_holdout} or more left to train on)",
            protocol="session-holdout")
    return _session_and_targets(train.drop("_pos", "_n"), held, n_session,
                                too_small="data set too small for session-holdout: every held-out item was "
                                          "already seen, no evaluation user has a target")


def time_cutoff(interactions: pl.DataFrame, quantile: float) -> int:
    """The global-time cutoff: the timestamp at `quantile` of all interactions (lower interpolation)."""
    if not 0.0 < quantile < 1.0:
        raise DataValidationError(f"quantile must be in (0, 1), got {quantile}")
    cutoff = interactions["timestamp"].quantile(quantile, interpolation="lower")
    if cutoff is None:
        raise DataValidationError("no interactions: a time cutoff needs at least one timestamp")
    return int(cutoff)


def global_time(interactions: pl.DataFrame, *, quantile: float = 0.9, n_session: int = 3,
                min_after: int = 4) -> tuple[HoldoutSplit, set[str]]:
    """One global cutoff at a timestamp quantile; returns the split and the set of cold users.

    Users with >= `min_after` events after the cutoff are evaluated: their first `n_session`
    events after it form the session, the rest (minus seen items) the targets.
    """
    cutoff = time_cutoff(interactions, quantile)
    df = _sorted_by_time(interactions)
    before = df.filter(pl.col("timestamp") <= cutoff)
    after = df.filter(pl.col("timestamp") > cutoff).with_columns(
        pl.int_range(pl.len()).over("user_id").alias("_h"), pl.len().over("user_id").alias("_n"))
    after = after.filter(pl.col("_n") >= min_after)
    if after.height == 0:
        raise SplitTooSmallError(
            f"data set too small for global-time: no user has >= {min_after} interactions after the "
            f"cutoff {cutoff} (timestamp quantile {quantile}); lower the quantile or add data", protocol="global-time")
    # Interactions after the cutoff of users that are not evaluated are dropped: they are the future.
    split = _session_and_targets(before, after, n_session,
                                 too_small="data set too small for global-time: every item after the cutoff was "
                                           "already seen, no evaluation user has a target")
    known = set(before["user_id"].unique().to_list())
    return split, {u for u in split.targets if u not in known}


def _session_and_targets(train: pl.DataFrame, held: pl.DataFrame, n_session: int, *, too_small: str) -> HoldoutSplit:
    """Split each user's `held` rows (`_h`: 0, 1, ... in time order) into the live session (the first
    `n_session`) and the targets: the rest, minus items seen in `train` or in the session.

    An item held out twice is one target, at its first position (sorted first: joins and `unique`
    do not keep row order, so "first" must be made explicit). A user left without a target is not
    evaluated and their session is dropped with them; none left at all raises `too_small`.
    """
    sessions = held.filter(pl.col("_h") < n_session)
    seen = pl.concat([train.select("user_id", "item_id"), sessions.select("user_id", "item_id")]).unique()
    targets_df = (held.filter(pl.col("_h") >= n_session).select("user_id", "item_id", "_h")
                  .join(seen, on=["user_id", "item_id"], how="anti")
                  .sort(["user_id", "_h"])
                  .unique(subset=["user_id", "item_id"], keep="first", maintain_order=True)
                  .group_by("user_id", maintain_order=True).agg(pl.col("item_id")))
    targets = {u: list(items) for u, items in zip(targets_df["user_id"].to_list(),
                                                   targets_df["item_id"].to_list(), strict=True) if items}
    if not targets:
        raise DataValidationError(too_small)
    sessions = sessions.filter(pl.col("user_id").is_in(list(targets))).select(
        "user_id", "item_id", "event", "timestamp")
    return HoldoutSplit(train=train, sessions=sessions, targets=targets)
