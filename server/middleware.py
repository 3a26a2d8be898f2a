"""Pure ASGI middleware: request metrics, API-key auth, and body-size limits.

Pure ASGI (not ``BaseHTTPMiddleware``) so streamed responses pass straight
through and a client disconnect reaches the endpoint."""

from __future__ import annotations

import hmac
import json
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rag.errors import AuthError, PayloadTooLargeError, RagError
from server.errors import rag_error_body
from server.metrics import Metrics

# The page and the API's description are public; the page asks for the key, and
# Swagger UI's "Authorize" button takes it (the schema declares the bearer scheme)
PUBLIC_PATHS = ("/healthz", "/", "/favicon.ico", "/docs", "/redoc", "/openapi.json")
PUBLIC_PREFIXES = ("/static/", "/docs/assets/")


async def _send_error(send: Send, exc: RagError) -> None:
    body = json.dumps(rag_error_body(exc)).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if exc.http_status == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    if exc.http_status == 413:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": exc.http_status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class MetricsMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = [500]
        t0 = time.perf_counter()

        async def send_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            self.metrics.requests.labels(route, scope["method"], str(status[0])).inc()
            self.metrics.latency.labels(route).observe(time.perf_counter() - t0)


class AuthMiddleware:
    """With an API key set, every route but the public ones needs ``Authorization: Bearer <key>``."""

    def __init__(self, app: ASGIApp, api_key: str | None) -> None:
        self.app = app
        self.key = api_key.encode() if api_key else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.key is None or scope["type"] != "http" or self.public(scope["path"]):
            await self.app(scope, receive, send)
            return
        given = b""
        for name, value in scope.get("headers", []):
            if name == b"authorization":
                scheme, _, token = value.partition(b" ")
                if scheme.lower() == b"bearer":
                    given = token.strip()
        if not given:
            await _send_error(send, AuthError("missing API key: send 'Authorization: Bearer <key>'"))
        elif not hmac.compare_digest(given, self.key):
            await _send_error(send, AuthError("wrong API key"))
        else:
            await self.app(scope, receive, send)

    @staticmethod
    def public(path: str) -> bool:
        return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


class BodyLimitMiddleware:
    """413 for bodies over the limit: at once from Content-Length, or, for a body
    sent without one (chunked), after reading at most ``limit`` bytes of it."""

    def __init__(self, app: ASGIApp, max_body: int, max_upload: int, upload_path: str = "/v1/documents") -> None:
        self.app = app
        self.max_body = max_body
        self.max_upload = max_upload
        self.upload_path = upload_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_upload if scope["path"] == self.upload_path else self.max_body
        too_large = PayloadTooLargeError(f"request body larger than {limit} bytes")
        declared = None
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                declared = int(value) if value.isdigit() else 0
        if declared is not None:
            if declared > limit:
                await _send_error(send, too_large)
                return
            await self.app(scope, receive, send)  # the server never delivers more than declared
            return
        # no Content-Length: buffer up to the limit, then replay it to the app
        parts: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            size += len(message.get("body", b""))
            if size > limit:
                await _send_error(send, too_large)
                return
            parts.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(parts), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
