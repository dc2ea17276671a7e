"""The one place where library errors become HTTP responses."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from recsys.errors import (
    ArtifactError,
    ConfigError,
    DataValidationError,
    NoVersionPublishedError,
    RecsysError,
    StoreUnavailableError,
)

log = logging.getLogger(__name__)

STATUS_BY_ERROR: list[tuple[type[RecsysError], int]] = [
    (DataValidationError, 422),
    (ConfigError, 400),
    (NoVersionPublishedError, 503),
    (StoreUnavailableError, 503),
    (ArtifactError, 503),
]


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RecsysError)
    async def recsys_error(_: Request, exc: RecsysError) -> JSONResponse:
        status = next((code for cls, code in STATUS_BY_ERROR if isinstance(exc, cls)), 500)
        log.warning("event=request_error status=%d error=%r", status, str(exc))
        return JSONResponse({"error": type(exc).__name__, "detail": str(exc)}, status_code=status)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        detail = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", "")} for e in exc.errors()]
        return JSONResponse({"error": "ValidationError", "detail": detail}, status_code=422)
