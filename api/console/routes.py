"""/console: the operator's pages. The shell and its assets are public (they hold no data); every
fragment and action needs the admin token, which the page keeps in the tab's sessionStorage.

Out of the OpenAPI schema (include_in_schema=False): these are pages, not the service's API.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import FileResponse, HTMLResponse
from pydantic import BaseModel, Field

from api.console import pages
from api.console.runs import CONSOLE_JOBS, JobLauncher
from api.console.stats import RequestWindow
from api.deps import AdminDep, ServiceDep
from api.routes.ops import readiness
from api.schemas import Id
from jobs.tracking import record_promotion
from recsys.data.schema import EVENT_NAMES
from recsys.errors import ArtifactError, StoreUnavailableError
from recsys.ranking.feature_report import build_feature_report
from recsys.serving.explain import explain
from recsys.store import STREAMS, SessionEvent
from recsys.store.backend import parse_log_id

STATIC = Path(__file__).parent / "static"
ASSETS = {"console.js": "text/javascript", "console.css": "text/css"}  # served by name only: no paths

router = APIRouter(prefix="/console", include_in_schema=False)


def _tracker_promoted(request: Request, version: str) -> None:
    """Mirror a promotion into MLflow's registry when tracking is on (a no-op, importing nothing, when off)."""
    record_promotion(request.app.state.settings, request.app.state.service.registry, version)


@router.get("", response_class=HTMLResponse)
def shell() -> HTMLResponse:
    return HTMLResponse((STATIC / "console.html").read_text())


@router.get("/static/{name}")
def asset(name: str) -> FileResponse:
    if name not in ASSETS:
        raise HTTPException(404, f"no console asset {name!r}")
    return FileResponse(STATIC / name, media_type=ASSETS[name])


def _window(request: Request) -> RequestWindow:
    return request.app.state.console_window


def _launcher(request: Request) -> JobLauncher:
    return request.app.state.console_jobs


def _runs(service: ServiceDep, limit: int = 50) -> list[dict[str, Any]]:
    try:
        return service.store.jobs.runs(limit=limit)
    except StoreUnavailableError:
        return []


def _loop_figures(service: ServiceDep, now: float) -> dict[str, Any]:
    """Ingest lag: the age of the oldest log entry the lake has not acknowledged (as /metrics computes it)."""
    lag: float | None = None
    try:
        for st in (service.store.event_log.state(stream) for stream in STREAMS):
            if st.first_id is not None and (st.acked_id is None
                                            or parse_log_id(st.first_id) > parse_log_id(st.acked_id)):
                lag = max(lag or 0.0, now - parse_log_id(st.first_id)[0] / 1000.0)
            elif lag is None:
                lag = 0.0
    except StoreUnavailableError:
        lag = None
    return {"ingest_lag_s": lag}


@router.get("/view/overview", response_class=HTMLResponse)
def overview(_: AdminDep, request: Request, service: ServiceDep) -> HTMLResponse:
    now = time.time()
    state = service.state
    stats = _window(request).last_hour()
    loop = _loop_figures(service, now) | {"events_rate": stats.events_rate, "impressions_rate": stats.impressions_rate}
    bundle_created = (state.bundle.manifest.created_at if state.bundle is not None and state.bundle.manifest
                      is not None else None)
    model_created = state.model.manifest.created_at if state.model is not None else None
    return HTMLResponse(pages.overview(readiness(service).model_dump(), stats, bundle_created, model_created, loop,
                                       _runs(service, 8), _launcher(request).reap()))


@router.get("/view/jobs", response_class=HTMLResponse)
def jobs_view(_: AdminDep, request: Request, service: ServiceDep) -> HTMLResponse:
    return HTMLResponse(pages.jobs(_runs(service), _launcher(request).reap(), CONSOLE_JOBS, None))


class RunJob(BaseModel):
    job: str = Field(max_length=64)


@router.post("/jobs/run", response_class=HTMLResponse)
def run_job(_: AdminDep, body: RunJob, request: Request, service: ServiceDep) -> HTMLResponse:
    if body.job not in CONSOLE_JOBS:
        raise HTTPException(422, f"the console runs {', '.join(CONSOLE_JOBS)}, not {body.job!r}")
    pid = _launcher(request).start(body.job)
    time.sleep(0.3)  # the child records its start within a moment: show it in the history it answers with
    return HTMLResponse(pages.jobs(_runs(service), _launcher(request).reap(), CONSOLE_JOBS,
                                   f"{body.job} started (process {pid}); reload to follow it"))


def _models_page(service: ServiceDep, message: str | None, error: str | None = None) -> HTMLResponse:
    registry = service.registry
    return HTMLResponse(pages.models(registry.model_summaries(), registry.promotions(), message, error))


@router.get("/view/models", response_class=HTMLResponse)
def models_view(_: AdminDep, service: ServiceDep) -> HTMLResponse:
    return _models_page(service, None)


class Promote(BaseModel):
    version: str = Field(min_length=1, max_length=128)


@router.post("/models/promote", response_class=HTMLResponse)
def promote(_: AdminDep, body: Promote, request: Request, service: ServiceDep) -> HTMLResponse:
    previous = service.registry.current_model()
    try:
        service.registry.promote(body.version, "promoted from the console")
    except ArtifactError as exc:
        return _models_page(service, None, str(exc))
    _tracker_promoted(request, body.version)
    service.reload(force=True)  # serve it now, not at the next poll
    return _models_page(service, f"{body.version} promoted (was {previous}); serving model: "
                                 f"{service.state.model_version}")


@router.post("/models/rollback", response_class=HTMLResponse)
def rollback(_: AdminDep, request: Request, service: ServiceDep) -> HTMLResponse:
    previous = service.registry.current_model()
    try:
        version = service.registry.rollback()
    except ArtifactError as exc:
        return _models_page(service, None, str(exc))
    _tracker_promoted(request, version)
    service.reload(force=True)
    return _models_page(service, f"rolled back from {previous} to {version}; serving model: "
                                 f"{service.state.model_version}")


@router.get("/view/features", response_class=HTMLResponse)
def features_view(_: AdminDep, service: ServiceDep) -> HTMLResponse:
    return HTMLResponse(pages.features(build_feature_report(service.registry)))


@router.get("/view/drift", response_class=HTMLResponse)
def drift_view(_: AdminDep, service: ServiceDep) -> HTMLResponse:
    return HTMLResponse(pages.drift(_runs(service, 200)))


@router.get("/view/try", response_class=HTMLResponse)
def try_view(_: AdminDep, service: ServiceDep, user: Annotated[str, Query(max_length=256)] = "",
             k: Annotated[int, Query(ge=1, le=100)] = 10) -> HTMLResponse:
    user = user.strip()
    return HTMLResponse(pages.try_page(user, explain(service, user) if user else None, k, None))


class TestEvent(BaseModel):
    user_id: Id
    item_id: Id
    event: str = Field("click", max_length=32)


@router.post("/try/event", response_class=HTMLResponse)
def try_event(_: AdminDep, body: TestEvent, request: Request, service: ServiceDep) -> HTMLResponse:
    """The same writes as POST /v1/events (session + event log): the list below is the one the user now gets."""
    if body.event not in EVENT_NAMES:
        raise HTTPException(422, f"event must be one of {', '.join(EVENT_NAMES)}")
    now = time.time()
    if not service.events.append(body.user_id, [SessionEvent(body.item_id, body.event, now)]):
        raise StoreUnavailableError("the store is unavailable and the in-memory event buffer is full")
    request.app.state.loop.record_events([(body.user_id, body.item_id, body.event, now, None)])
    return HTMLResponse(pages.try_page(body.user_id, explain(service, body.user_id), 10,
                                       f"{body.event} on {body.item_id} posted for {body.user_id}"))
