"""Dependencies: the service and store live on app.state, opened by the lifespan."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request

from api.metrics import Metrics
from recsys.config import Settings
from recsys.service import RecommendationService


def get_service(request: Request) -> RecommendationService:
    return request.app.state.service


def get_metrics(request: Request) -> Metrics:
    return request.app.state.metrics


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def require_admin(settings: Annotated[Settings, Depends(get_settings)],
                  authorization: Annotated[str | None, Header()] = None) -> None:
    """Bearer token from settings, compared in constant time; admin is off when no token is set."""
    if not settings.admin_token:
        raise HTTPException(403, "admin endpoints are disabled: set RECSYS_ADMIN_TOKEN")
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.encode(), settings.admin_token.encode()):
        raise HTTPException(401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"})


ServiceDep = Annotated[RecommendationService, Depends(get_service)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
AdminDep = Annotated[None, Depends(require_admin)]
