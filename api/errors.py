"""The one place where library errors become HTTP responses."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute, Match

from api.schemas import ErrorBody
from recsys.errors import (
    ArtifactError,
    ConfigError,
    ConflictError,
    DataValidationError,
    ExperimentConflictError,
    ExperimentNotFoundError,
    InvalidRequestError,
    NoVersionPublishedError,
    RecsysError,
    StoreUnavailableError,
)

log = logging.getLogger(__name__)

STATUS_BY_ERROR: list[tuple[type[RecsysError], int]] = [
    (DataValidationError, 422),
    (InvalidRequestError, 422),
    (ConflictError, 409),
    (ConfigError, 400),
    (ExperimentNotFoundError, 404),
    (ExperimentConflictError, 409),
    (NoVersionPublishedError, 503),
    (StoreUnavailableError, 503),
    (ArtifactError, 503),
]

# What each documented error status means, for the OpenAPI `responses` of the routes.
ERROR_DESCRIPTIONS: dict[int, str] = {
    400: "Malformed request: a body that is not UTF-8 JSON text (JSON error body), or a request the HTTP "
         "server cannot parse, e.g. a URL longer than 64 KiB (text/plain, answered by uvicorn before the app)",
    401: "Missing or wrong bearer token",
    403: "Admin endpoints are disabled (no RECSYS_ADMIN_TOKEN set)",
    404: "Unknown item or experiment",
    409: "Conflict: an experiment of that name exists, or no free traffic is left for it; or a catalogue write "
         "contradicts the stored catalogue (an attribute keeps one type across it)",
    413: "Request body larger than the bound (1 MiB by default)",
    422: "Invalid request: the detail names each bad field",
    503: "The store is unreachable (retry after the Retry-After header) or nothing is published yet",
}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries for error statuses, all with the one error body (ErrorBody)."""
    out: dict[int | str, dict[str, Any]] = {}
    for code in codes:
        out[code] = {"model": ErrorBody, "description": ERROR_DESCRIPTIONS[code]}
        if code == 400:  # the HTTP server's own parse errors are plain text
            out[code]["content"] = {"text/plain": {"schema": {"type": "string"}}}
    return out


def _error_name(status: int) -> str:
    """'NotFound', 'Unauthorized', ... from the status code."""
    try:
        return HTTPStatus(status).phrase.replace(" ", "")
    except ValueError:
        return "HTTPError"


def _leaf_routes(routes: Sequence[BaseRoute]) -> Iterator[BaseRoute]:
    """Every route, included routers unfolded (FastAPI wraps each `include_router` in one route object)."""
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from _leaf_routes(inner.routes)
        else:
            yield route


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RecsysError)
    async def recsys_error(_: Request, exc: RecsysError) -> JSONResponse:
        status = next((code for cls, code in STATUS_BY_ERROR if isinstance(exc, cls)), 500)
        log.warning("event=request_error status=%d error=%r", status, str(exc))
        # A store outage is short (the circuit breaker probes every second): tell clients when to retry.
        headers = {"Retry-After": "1"} if isinstance(exc, StoreUnavailableError) else None
        return JSONResponse({"error": type(exc).__name__, "detail": str(exc)}, status_code=status,
                            headers=headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        """404/401/403/405 raised by routes or the router: the same error body as every other error."""
        headers = getattr(exc, "headers", None)
        if exc.status_code == 405:
            # Starlette's Allow names the methods of the first route matching the path only; one path served
            # by several routes (GET/PUT/PATCH/DELETE /v1/items/{id}) must list them all.
            methods = {m for route in _leaf_routes(request.app.router.routes)
                       if route.matches(request.scope)[0] != Match.NONE for m in getattr(route, "methods", None) or ()}
            if methods:
                headers = {**(headers or {}), "Allow": ", ".join(sorted(methods))}
        return JSONResponse({"error": _error_name(exc.status_code), "detail": exc.detail}, status_code=exc.status_code,
                            headers=headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        detail = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", "")} for e in exc.errors()]
        return JSONResponse({"error": "ValidationError", "detail": detail}, status_code=422)
