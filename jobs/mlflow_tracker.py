"""The MLflow adapter (optional extra `[mlflow]`); loaded only by jobs/tracking.py when tracking is on.

One MLflow run per ranker training: its parameters, validation metrics, feature importances and pruning
decision, and the model itself with the LightGBM flavour (the registry's LightGBM text model, loaded as a
Booster and saved by MLflow as text: no pickle), registered as a version of `model_name` tagged with the
project's model version. A promotion moves the `champion` alias to that version, so
`models:/<name>@champion` is always the model the service serves.
"""

from __future__ import annotations

import logging
from typing import Any

import lightgbm as lgb
import mlflow
from mlflow import MlflowClient

from recsys.artifacts import ArtifactRegistry
from recsys.config import MlflowConfig
from recsys.ranking.model import MODEL_FILE
from recsys.ranking.train import TrainResult

log = logging.getLogger(__name__)

VERSION_TAG = "recsys_model_version"


def _flat(prefix: str, value: Any, out: dict[str, str]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flat(f"{prefix}.{k}" if prefix else str(k), v, out)
    else:
        out[prefix] = str(value)[:500]  # MLflow caps a parameter value's length


def log_ranker_run(cfg: MlflowConfig, registry: ArtifactRegistry, result: TrainResult) -> str:
    mlflow.set_tracking_uri(cfg.tracking_uri)
    mlflow.set_experiment(cfg.experiment)
    manifest = registry.model_manifest(result.model_version)
    booster = lgb.Booster(model_str=registry.model_file(result.model_version, MODEL_FILE).decode())
    params: dict[str, str] = {}
    _flat("", manifest.params, params)
    params.update(features=str(len(result.feature_names)), best_iteration=str(result.best_iteration),
                  rows_base=str(result.rows_base), rows_lake=str(result.rows_lake))
    metrics = {k.replace("@", "_at_"): float(v) for k, v in manifest.metrics.items() if isinstance(v, int | float)}
    metrics.update(valid_ndcg_at_10=result.valid_ndcg, train_seconds=result.seconds,
                   promoted=1.0 if result.promoted else 0.0)
    with mlflow.start_run(run_name=f"train-ranker {result.model_version}") as run:
        mlflow.set_tags({VERSION_TAG: result.model_version, "promoted": str(result.promoted),
                         "promotion_reason": result.reason[:500]})
        mlflow.log_params(params)
        mlflow.log_metrics(metrics)
        mlflow.log_dict({"importances": result.importances, "features": result.feature_names},
                        "importances.json")
        mlflow.log_dict({"pruning": result.pruning,
                         "comparison": result.comparison.to_dict() if result.comparison else None},
                        "decision.json")
        info = mlflow.lightgbm.log_model(booster, name="model", registered_model_name=cfg.model_name)
    client = MlflowClient(cfg.tracking_uri)
    mv = _version_of_run(client, cfg.model_name, run.info.run_id, info.model_uri)
    client.set_model_version_tag(cfg.model_name, mv, VERSION_TAG, result.model_version)
    if result.promoted:
        client.set_registered_model_alias(cfg.model_name, cfg.champion_alias, mv)
    log.info("event=mlflow_run_logged run_id=%s model_version=%s mlflow_version=%s promoted=%s",
             run.info.run_id, result.model_version, mv, result.promoted)
    return str(run.info.run_id)


def _version_of_run(client: MlflowClient, name: str, run_id: str, model_uri: str) -> str:
    for mv in client.search_model_versions(f"name='{name}'"):
        if mv.run_id == run_id:
            return str(mv.version)
    raise LookupError(f"no version of registered model {name!r} for run {run_id} ({model_uri})")


def move_champion(cfg: MlflowConfig, version: str) -> None:
    client = MlflowClient(cfg.tracking_uri)
    matches = [mv for mv in client.search_model_versions(f"name='{cfg.model_name}'")
               if mv.tags.get(VERSION_TAG) == version]
    if not matches:
        log.warning("event=mlflow_alias_not_moved model_version=%s reason=%r", version,
                    "this model was trained while MLflow tracking was off: it has no MLflow version")
        return
    client.set_registered_model_alias(cfg.model_name, cfg.champion_alias, str(matches[-1].version))
    log.info("event=mlflow_champion_moved model_version=%s mlflow_version=%s", version, matches[-1].version)
