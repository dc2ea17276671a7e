"""Admin: online experiments (define, list, stop, report). Library calls live in recsys/experiments."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Path, Query, Request

from api.deps import AdminDep, ServiceDep
from api.errors import error_responses
from recsys.config import lake_dir
from recsys.data.lake import Lake
from recsys.errors import ConfigError
from recsys.experiments.config import NAME_PATTERN
from recsys.experiments.manage import create_experiment, get_experiment, list_experiments, stop_experiment
from recsys.experiments.report import experiment_report

router = APIRouter(prefix="/v1/admin/experiments", tags=["admin"])

NamePath = Annotated[str, Path(pattern=NAME_PATTERN, description="experiment name")]
EXAMPLE = {"name": "ranker-vs-als", "kind": "ab", "traffic": 1.0,
           "variants": [{"name": "control", "share": 0.5, "ranker": "als"},
                        {"name": "treatment", "share": 0.5, "ranker": "model"}]}


@router.post("", status_code=201, responses=error_responses(401, 403, 409, 422, 503))
def create(_: AdminDep, service: ServiceDep,
           body: Annotated[dict[str, Any], Body(examples=[EXAMPLE], description="name, kind (ab | interleaving), "
                                                "variants [{name, share, ranker: model | als}], traffic, salt, "
                                                "min_detectable_effect")]) -> dict[str, Any]:
    """Define and start an experiment; every replica serves it from its next poll (this one at once)."""
    try:
        experiment = create_experiment(service.store, body)
    except ConfigError as exc:  # a bad definition is bad input, like any other body
        raise HTTPException(422, str(exc)) from None
    service.reload_experiments()
    return experiment.to_dict()


@router.get("", responses=error_responses(401, 403, 503))
def list_all(_: AdminDep, service: ServiceDep) -> dict[str, Any]:
    """Every experiment, running first."""
    return {"experiments": [e.to_dict() for e in list_experiments(service.store)]}


@router.post("/{name}/stop", responses=error_responses(401, 403, 404, 422, 503))
def stop(_: AdminDep, service: ServiceDep, name: NamePath) -> dict[str, Any]:
    """Stop serving an experiment (its definition and data stay for the report)."""
    experiment = stop_experiment(service.store, name)
    service.reload_experiments()
    return experiment.to_dict()


@router.get("/{name}/report", responses=error_responses(401, 403, 404, 422, 503))
def report(_: AdminDep, service: ServiceDep, request: Request, name: NamePath,
           seed: Annotated[int, Query(ge=0, le=2**32 - 1, description="bootstrap seed")] = 42) -> dict[str, Any]:
    """The analysis from the lake (run `recsys ingest` first, or wait for the scheduled one): per-variant
    metrics per user with intervals, the lift, the SRM check; for interleaving the preference and sign test."""
    experiment = get_experiment(service.store, name)
    return experiment_report(experiment, Lake(lake_dir(request.app.state.settings)), seed=seed).to_dict()
