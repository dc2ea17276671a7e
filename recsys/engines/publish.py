"""Publishing a candidate version: every user's blobs under a new version id, then one pointer flip.

Shared by every refresh engine, so the local engine and the Spark engine write the same keys with
the same codec, and a failure anywhere before the flip publishes nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from recsys.candidates.pipeline import CandidateArtifacts
from recsys.data.guardrails import DataShape
from recsys.progress import NullProgress, Progress
from recsys.store import Store, VersionWriter
from recsys.store.codec import encode_candidate_rows, encode_index_rows, needs_wide

log = logging.getLogger(__name__)


def publish_artifacts(store: Store, artifacts: CandidateArtifacts, *, version: str, batch_size: int = 2000,
                      progress: Progress | None = None, before_publish: Callable[[], None] | None = None,
                      extra_meta: dict[str, Any] | None = None) -> float:
    """Write every user's candidates + history under `version`, then flip the pointer.

    Users are encoded and written one batch at a time (streaming), so the blobs of a million users
    never sit in memory together. Any exception before the flip removes the partial version and
    re-raises: nothing is published. Returns mean candidate bytes per user.
    """
    progress = progress or NullProgress()
    user_ids = artifacts.matrix.user_ids
    lists, histories = artifacts.lists, artifacts.histories
    wide = needs_wide(lists.items)
    total_bytes = 0
    writer = store.candidates.begin(version)
    try:
        tick = progress.stage("publish users", len(user_ids))
        for start in range(0, len(user_ids), batch_size):
            stop = min(start + batch_size, len(user_ids))
            total_bytes += write_user_rows(writer, user_ids[start:stop].tolist(), lists.items[start:stop],
                                           lists.scores[start:stop], lists.n_primary[start:stop],
                                           histories.indptr, histories.indices, start, stop, wide=wide,
                                           progress=tick)
        finish_version(store, writer, artifacts.bundle.item_ids, {"items": artifacts.bundle.n_items,
                                                                   "created_at": time.time(), **(extra_meta or {})},
                       before_publish)
    except BaseException:
        log.error("event=publish_failed version=%s users_written=%d", version, writer.users_written)
        abandon(store, version)
        raise
    return total_bytes / len(user_ids) if len(user_ids) else 0.0


def write_user_rows(writer: VersionWriter, user_ids: list[str], items: np.ndarray, scores: np.ndarray,
                    n_primary: np.ndarray, history_indptr: np.ndarray, history_indices: np.ndarray, start: int,
                    stop: int, *, wide: bool, progress: Callable[[int], None] | None = None) -> int:
    """Encode one batch of users (candidate rows + history rows start..stop of a CSR-like pair) and write
    it; returns the candidate bytes written. The one encoding every engine uses (the Spark engine calls it
    from each partition), so serving cannot tell the engines apart."""
    blobs = encode_candidate_rows(items, scores, n_primary, wide=wide)
    history_blobs = encode_index_rows(history_indptr, history_indices, start, stop)
    writer.write_users(user_ids, blobs, history_blobs, progress=progress)
    return sum(len(b) for b in blobs)


def finish_version(store: Store, writer: VersionWriter, item_ids: list[str], meta: dict[str, Any],
                   before_publish: Callable[[], None] | None) -> None:
    """Item ids and meta (`writer.users_written` users), the caller's last check, then the pointer flip."""
    writer.write_items(item_ids)
    writer.write_meta(meta)
    if before_publish is not None:
        before_publish()
    store.candidates.publish(writer.version)


def abandon(store: Store, version: str) -> None:
    """Remove a version that will never be published; the store may be what failed, so never raise."""
    try:
        store.candidates.abandon(version)
    except Exception:  # the GC of the next publish cleans up
        log.exception("event=abandon_failed version=%s", version)


def serving_shape(store: Store) -> tuple[str, DataShape] | None:
    """The serving candidate version and the shape of the data it was built from (None: nothing published).

    What the publish guardrails compare new data with (recsys/data/guardrails.py).
    """
    version = store.candidates.current_version()
    if version is None:
        return None
    meta = store.candidates.meta(version) or {}
    return version, DataShape.of_version(meta, store.candidates.item_ids(version))
