"""The scheduled jobs as plain functions of a JobContext: refresh, train-ranker, drift, ingest, update.

Each returns a JobOutcome (status, version produced, details for the history) and calls
`ctx.checkpoint()` before it publishes, so a shutdown or a lost lock leaves the previous version serving.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from jobs.context import JobContext, JobFn, JobOutcome
from recsys.config import Settings
from recsys.errors import ConfigError

if TYPE_CHECKING:
    from recsys.engines.local import RefreshResult
    from recsys.progress import Progress
    from recsys.store import Store


class RefreshFn(Protocol):
    """What every refresh engine is: `recsys.engines.local.run_refresh`'s signature."""

    def __call__(self, settings: Settings, store: Store, data: str | Path | None = None, *,
                 progress: Progress | None = None, before_publish: Callable[[], None] | None = None,
                 force: bool = False) -> RefreshResult: ...

log = logging.getLogger(__name__)


def refresh_engine(settings: Settings) -> RefreshFn:
    """The refresh function `settings.engine` names. Resolved here, in a shell, because the library never
    imports Spark: the Spark engine (engines_spark/, the `[spark]` extra) is imported only when asked for."""
    if settings.engine == "spark":
        try:
            from engines_spark import run_spark_refresh
        except ImportError as exc:
            raise ConfigError(f"the spark engine needs the [spark] extra (pip install -e '.[spark]'): {exc}") from exc
        return run_spark_refresh
    from recsys.engines.local import run_refresh

    return run_refresh


def refresh(ctx: JobContext) -> JobOutcome:
    """ALS + FAISS candidates from the base data (`settings.data_path`, optional) and the lake, published
    with an atomic pointer flip, by the engine the settings name (RECSYS_ENGINE)."""
    run_refresh = refresh_engine(ctx.settings)
    result = run_refresh(ctx.settings, ctx.store, ctx.settings.data_path, before_publish=ctx.checkpoint)
    return JobOutcome(version=result.version, details={
        "users": result.users, "items": result.items, "interactions": result.interactions,
        "rows_base": result.rows_base, "rows_lake": result.rows_lake, "seconds": round(result.total_seconds, 2),
        "guardrails": result.guardrails.to_dict() if result.guardrails else None})


def train_ranker(ctx: JobContext) -> JobOutcome:
    """LightGBM LambdaMART ranker on `settings.data_path` (checked against the serving candidate version),
    promoted (after `ctx.checkpoint()`) if it ranks at least as well as the serving model on the same users."""
    from jobs.tracking import record_train
    from recsys.artifacts import registry_for
    from recsys.engines.publish import serving_shape
    from recsys.ranking.train import train_ranker_job

    result = train_ranker_job(ctx.settings, before_publish=ctx.checkpoint, serving=serving_shape(ctx.store))
    mlflow_run = record_train(ctx.settings, registry_for(ctx.settings, ctx.store), result)
    comparison = result.comparison.to_dict() if result.comparison else {}
    details = {"rows_base": result.rows_base, "rows_lake": result.rows_lake, "promoted": result.promoted,
               "message": result.reason, "valid_ndcg": result.valid_ndcg, "promotion": comparison}
    if mlflow_run:
        details["mlflow_run_id"] = mlflow_run
    return JobOutcome(version=result.model_version, details=details)


def drift(ctx: JobContext) -> JobOutcome:
    """Compare served features with the ranker's training reference; on drift, run train-ranker.

    Options (from `recsys drift`): html_path, json_path (default: timestamped files under
    <artifacts>/reports/drift, pruned to `drift.keep_reports`) and retrain (default True).
    """
    from recsys.monitoring.drift import check_drift, default_report_paths, prune_reports

    now = time.time()
    html_path: Path | None = ctx.options.get("html_path")
    json_path: Path | None = ctx.options.get("json_path")
    default_paths = html_path is None and json_path is None
    if default_paths:
        html_path, json_path = default_report_paths(ctx.settings, now)
    result = check_drift(ctx.settings, ctx.store, now=now, html_path=html_path, json_path=json_path)
    if default_paths and json_path is not None:
        prune_reports(json_path.parent, ctx.settings.drift.keep_reports)
    details: dict[str, Any] = {
        "drift_status": result.status, "message": result.message, "model_version": result.model_version,
        "drifted_share": result.drifted_share, "current_rows": result.current_rows,
        "drifted_features": [d.feature for d in result.features if d.drifted],
        "report_html": result.html_path, "report_json": result.json_path}
    if result.retrain:
        if not ctx.options.get("retrain", True):
            details["retrain"] = "not triggered (disabled for this run)"
        else:
            ctx.checkpoint()
            log.warning("event=drift_retrain_triggered reason=%r", result.reason)
            sub = ctx.run_job("train-ranker", trigger="drift", reason=result.reason)
            details.update(triggered="train-ranker", reason=result.reason,
                           retrain_run_id=sub.run_id if sub else None,
                           retrain_status=sub.status if sub else "not started (shutting down)")
    return JobOutcome(details=details)


def ingest(ctx: JobContext) -> JobOutcome:
    """Drain the event and impression logs into the lake (exactly once), apply forget requests, retention."""
    from recsys.events.ingest import run_ingest

    result = run_ingest(ctx.settings, ctx.store, before_commit=ctx.checkpoint)
    details: dict[str, Any] = {f"{name}_{k}": getattr(s, k) for name, s in result.streams.items()
                               for k in ("read", "written", "quarantined", "trimmed")}
    details.update(forget_requests=result.forget_requests, lake_rows_forgotten=result.lake_rows_forgotten,
                   partitions_dropped=result.partitions_dropped, seconds=round(result.seconds, 3))
    return JobOutcome(details=details)


def update(ctx: JobContext) -> JobOutcome:
    """Micro-batch: ingest first (under the ingest job's lock), then fold the new events into the serving
    version's candidates with its fixed item factors."""
    from recsys.events.update import run_update

    sub = ctx.run_job("ingest", trigger="update", reason="the update drains the log first")
    ctx.checkpoint()
    result = run_update(ctx.settings, ctx.store)
    return JobOutcome(version=result.version, details={
        "ingest_status": sub.status if sub else "not started", "events": result.events, "users": result.users,
        "new_users": result.new_users, "skipped_users": result.skipped_users,
        "updated_through": result.updated_through, "discarded": result.discarded,
        "seconds": round(result.seconds, 3)})


DEFAULT_JOBS: dict[str, JobFn] = {"refresh": refresh, "train-ranker": train_ranker, "drift": drift,
                                  "ingest": ingest, "update": update}
