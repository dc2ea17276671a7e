"""MLflow, when it is on: the entry points every shell calls, importing nothing of MLflow when it is off.

`record_train` after a train-ranker run (the job, `recsys train-ranker`, `recsys demo`), `record_promotion`
after a promotion or rollback (the CLI, the console). With `RECSYS_MLFLOW__TRACKING_URI` empty both return
at once; set, they load `jobs.mlflow_tracker` (which imports mlflow, the optional extra `[mlflow]`).
MLflow mirrors the project's own registry: an error there is logged, never fails the training or the
promotion that already happened.
"""

from __future__ import annotations

import logging

from recsys.artifacts import ArtifactRegistry
from recsys.config import Settings
from recsys.ranking.train import TrainResult

log = logging.getLogger(__name__)


def record_train(settings: Settings, registry: ArtifactRegistry, result: TrainResult) -> str | None:
    """Log the run (params, metrics, importances, the LightGBM model as a registered version); its run id."""
    if not settings.mlflow.tracking_uri:
        return None
    try:
        from jobs.mlflow_tracker import log_ranker_run

        return log_ranker_run(settings.mlflow, registry, result)
    except Exception as exc:
        log.error("event=mlflow_log_failed model_version=%s error=%r", result.model_version, str(exc))
        return None


def record_promotion(settings: Settings, registry: ArtifactRegistry, version: str) -> None:
    """Move the champion alias to the MLflow model version of `version` (the serving model)."""
    if not settings.mlflow.tracking_uri:
        return
    try:
        from jobs.mlflow_tracker import move_champion

        move_champion(settings.mlflow, version)
    except Exception as exc:
        log.error("event=mlflow_alias_failed model_version=%s error=%r", version, str(exc))
