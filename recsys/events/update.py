"""`recsys update`: the micro-batch update between refreshes (DESIGN.md §9).

For every user with lake events newer than what the serving version holds, fold the user's history
plus the new events into a user vector with the version's FIXED item factors (the ALS normal
equations, as serving folds in a session), search the version's FAISS index, drop seen items, fill
from popularity, and write candidates + history into the serving version: the same generation code
(`generate_candidates`) and codec as the refresh, one batch write per group of users (a user's
candidates, vector and history are one value: they change together). Users the refresh never saw
get a list too: they stop being `unknown_user`.

What "newer" means: the refresh records in the version's meta the newest lake event id it trained on
(`lake_events_upto`); the update records the newest id it folded in (`updated_through`). A full
refresh later replaces all of it with a new version.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
import polars as pl
import scipy.sparse as sp

from recsys.artifacts import ArtifactRegistry, registry_for
from recsys.candidates.bundle import ItemBundle
from recsys.candidates.generate import generate_candidates
from recsys.candidates.item_side import ItemSide
from recsys.candidates.pipeline import HISTORY_LIMIT
from recsys.candidates.popularity import popular_order
from recsys.config import Settings, lake_dir
from recsys.data.lake import Lake, id_key
from recsys.errors import NoVersionPublishedError
from recsys.progress import NullProgress, Progress
from recsys.store import Store
from recsys.store.codec import decode_user, encode_user_rows, index_width

log = logging.getLogger(__name__)


@dataclass
class UpdateResult:
    version: str | None
    events: int = 0
    users: int = 0  # users whose candidates were rewritten
    new_users: int = 0  # of them, users the version did not know
    skipped_users: int = 0  # only events on items the version does not know
    updated_through: str | None = None
    seconds: float = 0.0
    discarded: bool = False  # a new version was published meanwhile: nothing kept

    @property
    def users_per_second(self) -> float:
        return self.users / self.seconds if self.seconds > 0 else 0.0


class Updater:
    """Holds one version's item side between runs (the replay benchmark runs it every few simulated minutes)."""

    def __init__(self, settings: Settings, store: Store, *, lake: Lake | None = None,
                 registry: ArtifactRegistry | None = None) -> None:
        self.settings = settings
        self.store = store
        self.lake = lake or Lake(lake_dir(settings))
        self.registry = registry or registry_for(settings, store)
        self._version: str | None = None
        self._items: ItemSide | None = None
        self._popular: np.ndarray | None = None

    def _item_side(self, version: str) -> tuple[ItemSide, np.ndarray]:
        if self._version != version or self._items is None or self._popular is None:
            bundle = ItemBundle.load(self.registry, version)
            self._items = ItemSide(bundle, self.settings.als.regularization, self.settings.als.alpha)
            self._popular = popular_order(bundle.popularity)
            self._version = version
        return self._items, self._popular

    def run(self, *, progress: Progress | None = None) -> UpdateResult:
        t0 = time.perf_counter()
        progress = progress or NullProgress()
        version = self.store.candidates.current_version()
        if version is None:
            raise NoVersionPublishedError("no candidate version published yet: run `recsys refresh` first")
        meta = self.store.candidates.meta(version) or {}
        since = self.store.candidates.updated_through(version) or meta.get("lake_events_upto")
        events = self.lake.read_events(after_id=since)
        result = UpdateResult(version, events=events.height, updated_through=since)
        if events.height == 0:
            result.seconds = time.perf_counter() - t0
            return result
        items, popular = self._item_side(version)
        newest = max(events["id"].to_list(), key=id_key)
        per_user = (events.sort(["user_id", "ts", "id"]).group_by("user_id", maintain_order=True)
                    .agg(pl.col("item_id")))
        users = per_user["user_id"].to_list()
        new_items = per_user["item_id"].to_list()
        tick = progress.stage("update users", len(users))
        batch = self.settings.loop.update_batch
        for start in range(0, len(users), batch):
            ok = self._update_batch(version, items, popular, users[start:start + batch],
                                    new_items[start:start + batch], result)
            tick(min(batch, len(users) - start))
            if not ok:
                result.discarded = True
                break
        if not result.discarded:
            self.store.candidates.set_updated_through(version, newest)
            result.updated_through = newest
        result.seconds = time.perf_counter() - t0
        log.info("event=update_done version=%s events=%d users=%d new_users=%d skipped=%d seconds=%.3f "
                 "users_per_s=%.0f discarded=%s", version, result.events, result.users, result.new_users,
                 result.skipped_users, result.seconds, result.users_per_second, result.discarded)
        return result

    def _update_batch(self, version: str, items: ItemSide, popular: np.ndarray, users: list[str],
                      new_items: list[list[str]], result: UpdateResult) -> bool:
        bundle = items.bundle
        blobs = self.store.read_user_blobs(version, users)
        kept_users: list[str] = []
        histories: list[np.ndarray] = []
        for user, fresh, blob in zip(users, new_items, blobs, strict=True):
            old = decode_user(blob, bundle.n_items).history if blob else np.zeros(0, dtype=np.int64)
            merged = _recent_unique(np.concatenate([old, bundle.indices_of(fresh)]), HISTORY_LIMIT)
            if merged.size == 0:
                result.skipped_users += 1
                continue
            kept_users.append(user)
            histories.append(merged)
            result.new_users += blob is None
        if not kept_users:
            return True
        factors = np.vstack([items.als.fold_in(h) for h in histories]).astype(np.float32)
        lengths = np.asarray([h.size for h in histories])
        seen = sp.csr_matrix((np.ones(int(lengths.sum()), dtype=np.float32), np.concatenate(histories),
                              np.concatenate([[0], np.cumsum(lengths)])), shape=(len(histories), bundle.n_items))
        seen.sum_duplicates()
        seen.sort_indices()
        assert bundle.index is not None
        lists = generate_candidates(factors, bundle.item_factors, bundle.index, seen, popular,
                                    self.settings.candidates.n_candidates)
        indptr = np.concatenate([[0], np.cumsum(lengths)])
        user_blobs = encode_user_rows(lists.items, lists.n_primary, lists.user_vectors, indptr,
                                      np.concatenate(histories), 0, len(histories), width=index_width(bundle.n_items))
        if not self.store.candidates.update_users(version, kept_users, user_blobs):
            return False
        result.users += len(kept_users)
        return True


def _recent_unique(indices: np.ndarray, limit: int) -> np.ndarray:
    """Each item once at its latest position, oldest first, the newest `limit` kept."""
    if indices.size == 0:
        return indices.astype(np.int64)
    rev = indices[::-1]
    _, first = np.unique(rev, return_index=True)
    keep = np.sort(first)[:limit]
    return rev[keep][::-1].astype(np.int64)


def run_update(settings: Settings, store: Store, *, lake: Lake | None = None,
               progress: Progress | None = None) -> UpdateResult:
    return Updater(settings, store, lake=lake).run(progress=progress)
