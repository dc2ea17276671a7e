"""The local refresh engine (`recsys refresh`): load → validate → ALS → FAISS → bundle → publish, all or nothing."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from recsys.artifacts import ArtifactRegistry, registry_for
from recsys.candidates.matrix import code_interactions
from recsys.candidates.pipeline import build_candidates_coded
from recsys.config import Settings
from recsys.data.guardrails import GuardVerdict, check_data, enforce
from recsys.data.loaders import ColumnMap, Dataset
from recsys.data.training import load_training_data
from recsys.engines.publish import publish_artifacts, serving_shape
from recsys.progress import NullProgress, Progress
from recsys.store import Store, new_version_id
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
    guardrails: GuardVerdict | None = None  # the publish check (forced=True: published over a refusal)
    rows_base: int = 0  # training rows from the base data (RECSYS_DATA_PATH / --data)
    rows_lake: int = 0  # training rows from the lake (events that came through the API)

    @property
    def total_seconds(self) -> float:
        return sum(self.seconds.values())



@dataclass(frozen=True)
class RefreshInput:
    """What a refresh trains on once the publish guardrails have passed: the same for every engine."""

    dataset: Dataset
    rows_base: int  # training rows from the base data (RECSYS_DATA_PATH / --data)
    rows_lake: int  # training rows from the lake
    lake_upto: str | None  # newest lake event id read
    guard: GuardVerdict


def load_refresh_input(settings: Settings, store: Store, data: str | Path | Dataset | None, *,
                       columns: ColumnMap | None, force: bool, watch: Stopwatch) -> RefreshInput:
    """A path (or None: settings.data_path) read with `columns` (default: the settings' mapping) together
    with the lake; a Dataset built in memory used as it is; then the guardrails against the serving version."""
    with watch.stage("load"):
        if isinstance(data, Dataset):
            dataset, rows_base, rows_lake, lake_upto = data, data.interactions.height, 0, None
        else:
            training = load_training_data(settings, data, columns=columns or ColumnMap.from_config(settings.data))
            dataset, rows_base, rows_lake = training.dataset, training.rows_base, training.rows_lake
            lake_upto = training.lake_events_upto
    with watch.stage("guardrails"):
        guard = check_guardrails(settings, store, dataset, force=force, what="publish a refresh")
    return RefreshInput(dataset, rows_base, rows_lake, lake_upto, guard)

def run_refresh(settings: Settings, store: Store, data: str | Path | Dataset | None = None, *,
                columns: ColumnMap | None = None, progress: Progress | None = None,
                before_publish: Callable[[], None] | None = None,
                registry: ArtifactRegistry | None = None, force: bool = False) -> RefreshResult:
    """The whole refresh. Raises (and publishes nothing) on invalid input, on data that fails the publish
    guardrails against the serving version (unless `force`), or on any failure.

    A path (or None: settings.data_path, which may be unset) is read with `columns` (default: the
    settings' column mapping, `RECSYS_DATA__…`) together with the lake (data/training.py); a Dataset
    built in memory (evaluation, tests) is used as it is.
    """
    progress = progress or NullProgress()
    registry = registry or registry_for(settings, store)
    watch = Stopwatch("refresh")
    checked = load_refresh_input(settings, store, data, columns=columns, force=force, watch=watch)
    dataset, rows_base, rows_lake, lake_upto, guard = (checked.dataset, checked.rows_base, checked.rows_lake,
                                                       checked.lake_upto, checked.guard)
    del checked  # holds the loaded frame: dropping `dataset` below must free it
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
        artifacts.bundle.save(registry, extra={
            "source": source, "data_format": data_format, "users": artifacts.matrix.n_users,
            "interactions": n_interactions, "als": settings.als.model_dump(),
            "candidates": settings.candidates.model_dump()})
    bundle_path = registry.bundle_location(version)

    try:
        with watch.stage("publish"):
            bytes_per_user = publish_artifacts(store, artifacts, version=version,
                                               batch_size=settings.publish_batch_size, progress=progress,
                                               before_publish=before_publish,
                                               extra_meta={"source": source, "interactions": n_interactions,
                                                           "rows_base": rows_base, "rows_lake": rows_lake,
                                                           "lake_events_upto": lake_upto,
                                                           **({"guardrails_forced": guard.problems}
                                                              if guard.forced else {})})
    except BaseException:
        registry.delete_bundle(version)
        raise
    keep = {version}
    keep.update(str(v["version"]) for v in store.candidates.versions())
    registry.prune_bundles(keep)
    result = RefreshResult(version=version, users=artifacts.matrix.n_users, items=artifacts.matrix.n_items,
                           interactions=n_interactions, bytes_per_user=bytes_per_user,
                           seconds=watch.wall, cpu_seconds=watch.cpu, bundle_path=str(bundle_path),
                           notes=notes, peak_rss_bytes=peak_rss_bytes(), guardrails=guard, rows_base=rows_base,
                           rows_lake=rows_lake)
    if guard.forced:
        result.notes.append("published with --force over the guardrails: " + "; ".join(guard.problems))
    log.info("event=refresh_done version=%s rows_base=%d rows_lake=%d users=%d items=%d total_s=%.2f cpu_s=%.2f "
             "peak_rss_mb=%.0f %s", version, rows_base, rows_lake, result.users, result.items, result.total_seconds,
             sum(watch.cpu.values()), result.peak_rss_bytes / 2**20,
             " ".join(f"{k}_s={v:.2f}" for k, v in watch.wall.items()))
    return result


def check_guardrails(settings: Settings, store: Store, dataset: Dataset, *, force: bool,
                     what: str) -> GuardVerdict:
    """The publish guardrails for `dataset` against what serves now; raises GuardrailError on a refusal."""
    serving = serving_shape(store)
    verdict = check_data(dataset.interactions, settings.guardrails, serving=serving[1] if serving else None,
                         serving_version=serving[0] if serving else None)
    verdict = enforce(verdict, force=force, what=what)
    log.info("event=guardrails_checked what=%r passed=%s forced=%s serving_version=%s new=%s", what,
             verdict.passed, verdict.forced, verdict.serving_version, verdict.new)
    return verdict
