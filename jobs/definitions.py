"""The scheduled jobs as plain functions of a JobContext: refresh, train-ranker, drift.

Each returns a JobOutcome (status, version produced, details for the history) and calls
`ctx.checkpoint()` before it publishes, so a shutdown or a lost lock leaves the previous version serving.
"""

from __future__ import annotations

import inspect
import logging
import time
from pathlib import Path
from typing import Any

from jobs.runner import JobContext, JobFn, JobOutcome
from recsys.errors import ConfigError

log = logging.getLogger(__name__)

RANKER_UNAVAILABLE = "skipped: ranker training not available"


def refresh(ctx: JobContext) -> JobOutcome:
    """ALS + FAISS candidates from `settings.data_path`, published with an atomic pointer flip."""
    from recsys.engines.local import run_refresh

    data_path = ctx.settings.data_path
    if data_path is None:
        raise ConfigError("the scheduled refresh has no data: set RECSYS_DATA_PATH to the interactions file "
                          "or directory")
    result = run_refresh(ctx.settings, ctx.store, data_path, before_publish=ctx.checkpoint)
    return JobOutcome(version=result.version, details={
        "users": result.users, "items": result.items, "interactions": result.interactions,
        "seconds": round(result.total_seconds, 2)})


def _version_of(result: Any) -> str | None:
    """The model version a train_ranker_job result names (a str, a dict or an object with an attribute)."""
    if result is None or isinstance(result, str):
        return result
    for key in ("model_version", "version"):
        value = result.get(key) if isinstance(result, dict) else getattr(result, key, None)
        if value is not None:
            return str(value)
    return None


def train_ranker(ctx: JobContext) -> JobOutcome:
    """LightGBM LambdaMART ranker via `recsys.ranking.train.train_ranker_job(settings, store)`.

    If that function accepts `before_publish`, it gets `ctx.checkpoint` to call before promoting the
    new model; until the module exists the run is recorded as skipped, not failed.
    """
    try:
        from recsys.ranking.train import train_ranker_job
    except ImportError as exc:
        # Only the module (or its entry point) being absent means "not available"; a missing dependency
        # *inside* it is a real failure and propagates.
        if exc.name not in ("recsys.ranking.train", "recsys.ranking"):
            raise
        log.warning("event=train_ranker_unavailable error=%r", str(exc))
        return JobOutcome(status=RANKER_UNAVAILABLE)
    kwargs: dict[str, Any] = {}
    if "before_publish" in inspect.signature(train_ranker_job).parameters:
        kwargs["before_publish"] = ctx.checkpoint
    result = train_ranker_job(ctx.settings, **kwargs)
    return JobOutcome(version=_version_of(result))


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


DEFAULT_JOBS: dict[str, JobFn] = {"refresh": refresh, "train-ranker": train_ranker, "drift": drift}
