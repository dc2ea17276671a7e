"""`recsys refresh`: load → validate → ALS → FAISS → bundle → publish, all or nothing."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from recsys.bundle import bundles_dir, prune_bundles
from recsys.candidates.generate import encode_rows, needs_wide
from recsys.candidates.matrix import code_interactions
from recsys.candidates.pipeline import CandidateArtifacts, build_candidates_coded
from recsys.config import Settings
from recsys.data.loaders import ColumnMap, Dataset, load_dataset
from recsys.progress import NullProgress, Progress
from recsys.store import CandidateStore
from recsys.store.candidate_store import new_version_id
from recsys.store.codec import encode_index_rows
from recsys.timing import Stopwatch, peak_rss_bytes

log = logging.getLogger(__name__)


@dataclass
class RefreshResult:
    version: str
    users: int
    items: int
    interactions: int
    bytes_per_user: float
    seconds: dict[str, float] = field(default_factory=dict)  # wall seconds per stage
    bundle_path: str = ""
    notes: list[str] = field(default_factory=list)
    cpu_seconds: dict[str, float] = field(default_factory=dict)  # CPU seconds (all threads) per stage
    peak_rss_bytes: int = 0  # this process's peak RSS when the refresh ended

    @property
    def total_seconds(self) -> float:
        return sum(self.seconds.values())


def publish_artifacts(store: CandidateStore, artifacts: CandidateArtifacts, *, version: str,
                      batch_size: int = 2000, progress: Progress | None = None,
                      before_publish: Callable[[], None] | None = None, extra_meta: dict | None = None) -> float:
    """Write every user's candidates + history under `version`, then flip the pointer.

    Users are encoded and written one batch at a time (streaming), so the blobs of a million users
    never sit in memory together. Any exception before the flip removes the partial version and
    re-raises: nothing is published. Returns mean candidate bytes per user.
    """
    progress = progress or NullProgress()
    user_ids = artifacts.matrix.user_ids
    lists, histories = artifacts.lists, artifacts.histories
    wide = needs_wide(lists)
    total_bytes = 0
    writer = store.begin(version)
    try:
        tick = progress.stage("publish users", len(user_ids))
        for start in range(0, len(user_ids), batch_size):
            stop = min(start + batch_size, len(user_ids))
            blobs = encode_rows(lists, start, stop, wide=wide)
            total_bytes += sum(len(b) for b in blobs)
            history_blobs = encode_index_rows(histories.indptr, histories.indices, start, stop)
            writer.write_users(user_ids[start:stop].tolist(), blobs, history_blobs, batch_size=batch_size,
                               progress=tick)
        writer.write_items(artifacts.bundle.item_ids)
        writer.write_meta({"items": artifacts.bundle.n_items, "created_at": time.time(), **(extra_meta or {})})
        if before_publish is not None:
            before_publish()
        store.publish(version)
    except BaseException:
        log.error("event=publish_failed version=%s users_written=%d", version, writer.users_written)
        try:
            store.abandon(version)
        except Exception:  # the store may be what failed; GC of the next publish cleans up
            log.exception("event=abandon_failed version=%s", version)
        raise
    return total_bytes / len(user_ids) if len(user_ids) else 0.0


def run_refresh(settings: Settings, store: CandidateStore, data: str | Path | Dataset, *,
                columns: ColumnMap | None = None, progress: Progress | None = None,
                before_publish: Callable[[], None] | None = None) -> RefreshResult:
    """The whole refresh. Raises (and publishes nothing) on invalid input or any failure."""
    progress = progress or NullProgress()
    watch = Stopwatch("refresh")
    with watch.stage("load"):
        dataset = data if isinstance(data, Dataset) else load_dataset(data, columns)
    source, data_format, n_interactions = dataset.source, dataset.format, dataset.interactions.height
    items, notes = dataset.items, list(dataset.report.notes)
    with watch.stage("code"):
        coded = code_interactions(dataset.interactions)
    # A dataset loaded here is ours: its string frame (~3 GB at 1M users) is not needed once coded.
    del dataset

    version = new_version_id()
    artifacts = build_candidates_coded(coded, items, version=version, als_config=settings.als,
                                       candidate_config=settings.candidates, progress=progress)
    del coded
    watch.wall.update(artifacts.timings)
    watch.cpu.update(artifacts.cpu_timings)

    with watch.stage("bundle_write"):
        root = bundles_dir(settings.artifacts_dir)
        bundle_path = artifacts.bundle.save(root, extra={
            "source": source, "format": data_format, "users": artifacts.matrix.n_users,
            "interactions": n_interactions, "als": settings.als.model_dump(),
            "candidates": settings.candidates.model_dump()})

    try:
        with watch.stage("publish"):
            bytes_per_user = publish_artifacts(store, artifacts, version=version,
                                               batch_size=settings.publish_batch_size, progress=progress,
                                               before_publish=before_publish,
                                               extra_meta={"source": source})
    except BaseException:
        import shutil

        shutil.rmtree(bundle_path, ignore_errors=True)
        raise
    keep = {version}
    keep.update(str(v["version"]) for v in store.versions())
    prune_bundles(settings.artifacts_dir, keep)
    result = RefreshResult(version=version, users=artifacts.matrix.n_users, items=artifacts.matrix.n_items,
                           interactions=n_interactions, bytes_per_user=bytes_per_user,
                           seconds=watch.wall, cpu_seconds=watch.cpu, bundle_path=str(bundle_path),
                           notes=notes, peak_rss_bytes=peak_rss_bytes())
    log.info("event=refresh_done version=%s users=%d items=%d total_s=%.2f cpu_s=%.2f peak_rss_mb=%.0f %s", version,
             result.users, result.items, result.total_seconds, sum(watch.cpu.values()), result.peak_rss_bytes / 2**20,
             " ".join(f"{k}_s={v:.2f}" for k, v in watch.wall.items()))
    return result
