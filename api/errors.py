"""The one place where library errors become HTTP responses."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.schemas import ErrorBody
from recsys.errors import (
    ArtifactError,
    ConfigError,
    DataValidationError,
    InvalidRequestError,
    NoVersionPublishedError,
    RecsysError,
    StoreUnavailableError,
)

log = logging.getLogger(__name__)

STATUS_BY_ERROR: list[tuple[type[RecsysError], int]] = [
    (DataValidationError, 422),
    (InvalidRequestError, 422),
    (ConfigError, 400),
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
    404: "Unknown item",
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
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        """404/401/403/405 raised by routes or the router: the same error body as every other error."""
        return JSONResponse({"error": _error_name(exc.status_code), "detail": exc.detail}, status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        detail = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", "")} for e in exc.errors()]
        return JSONResponse({"error": "ValidationError", "detail": detail}, status_code=422)
