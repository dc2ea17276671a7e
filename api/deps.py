"""Dependencies: the service and store live on app.state, opened by the lifespan."""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.metrics import Metrics
from recsys.config import Settings
from recsys.serving.service import RecommendationService


async def get_service(request: Request) -> RecommendationService:
    return request.app.state.service


async def get_metrics(request: Request) -> Metrics:
    return request.app.state.metrics


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


# Documents the bearer scheme in OpenAPI; auto_error=False so that require_admin decides the status.
_bearer = HTTPBearer(auto_error=False, description="RECSYS_ADMIN_TOKEN")


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


async def require_admin(settings: Annotated[Settings, Depends(get_settings)],
                  credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> None:
    """Bearer token from settings; admin is off (403) when no token is set, 401 on a missing or wrong one.

    The comparison runs in constant time over fixed-length digests, so neither the content nor the
    length of the configured token leaks through response timing.
    """
    if not settings.admin_token:
        raise HTTPException(403, "admin endpoints are disabled: set RECSYS_ADMIN_TOKEN")
    token = credentials.credentials if credentials is not None else ""
    if not hmac.compare_digest(_digest(token), _digest(settings.admin_token)):
        raise HTTPException(401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"})


async def require_client(request: Request) -> None:
    """The write endpoints (events, inline recommendations) feed sessions and the feature log that can
    trigger a retrain: with RECSYS_CLIENT_TOKEN set, only clients holding it may write (401 otherwise).
    Separate from the admin token, so a client never holds admin rights. Same constant-time comparison.

    The header is read here rather than through a security dependency: the token is optional, and the
    OpenAPI document declares the requirement only when it is set (`document_client_token`).
    """
    expected = request.app.state.settings.client_token
    if not expected:
        return
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        token = ""
    if not hmac.compare_digest(_digest(token.strip()), _digest(expected)):
        raise HTTPException(401, "missing or wrong client token (Authorization: Bearer $RECSYS_CLIENT_TOKEN)",
                            headers={"WWW-Authenticate": "Bearer"})


CLIENT_SCHEME = "ClientToken"
CLIENT_WRITES = (("/v1/events", "post"), ("/v1/recommendations", "post"))


def document_client_token(app: FastAPI, settings: Settings) -> None:
    """With a client token set, the OpenAPI document says so: a bearer scheme on the write endpoints."""
    if not settings.client_token:
        return
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        schemes = schema.setdefault("components", {}).setdefault("securitySchemes", {})
        schemes[CLIENT_SCHEME] = {"type": "http", "scheme": "bearer",
                                  "description": "RECSYS_CLIENT_TOKEN: required by the write endpoints"}
        for path, method in CLIENT_WRITES:
            schema["paths"][path][method]["security"] = [{CLIENT_SCHEME: []}]
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


ServiceDep = Annotated[RecommendationService, Depends(get_service)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
AdminDep = Annotated[None, Depends(require_admin)]
ClientDep = Annotated[None, Depends(require_client)]
