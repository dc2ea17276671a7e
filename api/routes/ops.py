"""Health, readiness, metrics and admin endpoints."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.deps import AdminDep, MetricsDep, ServiceDep
from api.errors import error_responses
from api.schemas import Health, JobHistory, JobRunOut
from recsys.serving.service import RecommendationService

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=Health)
def healthz() -> Health:
    """The process is alive."""
    return Health(status="ok")


@router.get("/readyz", response_model=Health, responses={503: {"model": Health}})
def readyz(service: ServiceDep) -> Response:
    """ready: store reachable and artifacts loaded; degraded (200): serving fallbacks; 503: nothing to serve.

    Computed from what serves now (the state of the last reload): fixing a cause clears its reason at the
    next reload (the poller's, or POST /v1/admin/reload)."""
    body = readiness(service)
    return JSONResponse(body.model_dump(), status_code=503 if body.status == "unavailable" else 200)


def readiness(service: RecommendationService) -> Health:
    """What /readyz answers (also the console's overview)."""
    state = service.state
    reasons = []
    store_ok = service.store.ping()
    if not store_ok:
        reasons.append("store unreachable: serving popular items from memory")
    if state.bundle_error is not None:
        serving = (f"still serving version {state.candidates_version}" if state.bundle is not None
                   else "nothing to serve")
        reasons.append(f"candidate version {state.failed_version} is published but its bundle cannot be loaded: "
                       f"{state.bundle_error} ({serving}; fix or republish with `recsys refresh`)")
    elif state.bundle is None:
        reasons.append("no candidate version published yet (run `recsys refresh`)")
    if state.bundle is not None and state.version_lost:
        reasons.append(f"the store no longer holds version {state.candidates_version} (restarted empty?): "
                       "serving popular items until the next `recsys refresh` publishes")
    if state.model_error:
        reasons.append(state.model_error + (" (previous model keeps serving)" if state.model else
                                            ": serving ALS order"))
    elif state.model is None:
        reasons.append("no ranker model (run `recsys train-ranker`): serving ALS order")
    status = "ready" if not reasons else ("degraded" if state.bundle is not None else "unavailable")
    return Health(status=status, candidates_version=state.candidates_version,
                  model_version=state.model.version if state.model else None,
                  store="ok" if store_ok else "unreachable", reasons=reasons)


@router.get("/metrics", include_in_schema=True, response_class=Response,
            responses={200: {"content": {CONTENT_TYPE_LATEST.split(";")[0]: {"schema": {"type": "string"}}},
                             "description": "Prometheus text exposition format"}})
def metrics(service: ServiceDep, m: MetricsDep) -> Response:
    """Prometheus text format: requests, fallbacks, serving versions and ages, store breaker, feature log,
    jobs, drift."""
    breaker = service.store.breaker()  # Redis only; the embedded file has none
    if breaker is not None:
        m.circuit_open.set(1 if breaker.open else 0)
        m.circuit_rejected.set(breaker.rejected_calls)
        m.circuit_outages.set(breaker.outages)
    return Response(generate_latest(m.registry), media_type=CONTENT_TYPE_LATEST)


@router.get("/v1/admin/jobs", tags=["admin"], response_model=JobHistory,
            responses=error_responses(401, 403, 422, 503))
def admin_jobs(_: AdminDep, service: ServiceDep,
               limit: Annotated[int, Query(ge=1, le=1000, description="how many runs, newest first")] = 50,
               job: Annotated[str | None, Query(max_length=64, description="only this job")] = None
               ) -> JobHistory:
    """Job history of every scheduler on the store (the same as `recsys jobs`), newest first."""
    runs = service.store.jobs.runs(limit=limit, job=job)
    return JobHistory(runs=[JobRunOut.model_validate(r) for r in runs])


@router.post("/v1/admin/reload", tags=["admin"], responses=error_responses(401, 403))
def admin_reload(_: AdminDep, service: ServiceDep) -> dict[str, object]:
    """Pick up a new candidate version or promoted model now, instead of at the next poll."""
    changed = service.reload(force=True)
    state = service.state
    return {"changed": changed, "candidates_version": state.candidates_version,
            "model_version": state.model.version if state.model else None, "model_error": state.model_error,
            "bundle_error": state.bundle_error}
