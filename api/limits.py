"""Request body size bound, as a pure ASGI middleware: runs before any parsing, buffers at most the bound.

Without it a client can send a body of any size: FastAPI reads it all into memory before pydantic
sees the first byte and rejects it. The bound is checked twice: against Content-Length before
anything is read, and against the bytes actually received for chunked bodies (no Content-Length),
which are counted as they stream in and cut off the moment they pass the bound.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from api.asgi import HttpMiddleware

log = logging.getLogger(__name__)

DEFAULT_MAX_BODY_BYTES = 1 << 20  # 1 MiB: 100 events or a full inline request are a few tens of KB


class BodySizeLimitMiddleware(HttpMiddleware):
    """Answer 413 (JSON error body, connection closed) to bodies larger than `max_bytes`."""

    def __init__(self, app: Any, max_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        super().__init__(app)
        self.max_bytes = max_bytes

    async def handle(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None:
            # The server (h11/httptools) has already rejected a malformed Content-Length with a 400
            # and never delivers more bytes than it announces: checking the header is enough.
            if length.isdigit() and int(length) > self.max_bytes:
                await self._reject(scope, send, int(length))
                return
            await self.app(scope, receive, send)
            return
        if b"chunked" not in headers.get(b"transfer-encoding", b"").lower():
            await self.app(scope, receive, send)  # no body
            return
        # Chunked: read the body up to the bound first, then hand it to the app in one message.
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body = message.get("body", b"")
            size += len(body)
            if size > self.max_bytes:
                await self._reject(scope, send, size)
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()  # after the body: wait for a disconnect, as the server would

        await self.app(scope, replay, send)

    async def _reject(self, scope: dict[str, Any], send: Any, size: int) -> None:
        log.warning("event=body_too_large path=%s bytes=%d max_bytes=%d", scope.get("path"), size, self.max_bytes)
        payload = json.dumps({"error": "PayloadTooLarge",
                              "detail": f"request body larger than {self.max_bytes} bytes"}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(payload)).encode()),
                                (b"connection", b"close")]})  # do not read the rest of a huge body
        await send({"type": "http.response.body", "body": payload})
