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


ServiceDep = Annotated[RecommendationService, Depends(get_service)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
AdminDep = Annotated[None, Depends(require_admin)]
