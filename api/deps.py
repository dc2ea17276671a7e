"""Dependencies: the service and store live on app.state, opened by the lifespan."""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request
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


# Document the bearer schemes in OpenAPI; auto_error=False so that the require_* functions decide the status.
_bearer = HTTPBearer(auto_error=False, description="RECSYS_ADMIN_TOKEN")
_client_bearer = HTTPBearer(auto_error=False, scheme_name="ClientToken",
                            description="RECSYS_CLIENT_TOKEN, when set: required by the write endpoints")


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


async def require_client(settings: Annotated[Settings, Depends(get_settings)],
                         credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_client_bearer)]) -> None:
    """The write endpoints (events, inline recommendations) feed sessions and the feature log that can
    trigger a retrain: with RECSYS_CLIENT_TOKEN set, only clients holding it may write (401 otherwise).
    Separate from the admin token, so a client never holds admin rights. Same constant-time comparison."""
    if not settings.client_token:
        return
    token = credentials.credentials if credentials is not None else ""
    if not hmac.compare_digest(_digest(token), _digest(settings.client_token)):
        raise HTTPException(401, "missing or wrong client token (Authorization: Bearer $RECSYS_CLIENT_TOKEN)",
                            headers={"WWW-Authenticate": "Bearer"})


ServiceDep = Annotated[RecommendationService, Depends(get_service)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
AdminDep = Annotated[None, Depends(require_admin)]
ClientDep = Annotated[None, Depends(require_client)]
