"""A base for pure ASGI middlewares (cheaper than BaseHTTPMiddleware) that act on HTTP requests only."""

from __future__ import annotations

from typing import Any


class HttpMiddleware:
    """Lifespan and websocket messages pass straight through; HTTP requests go to `handle`."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.handle(scope, receive, send)

    async def handle(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        raise NotImplementedError
