"""The one place where errors become HTTP responses: ``{"error": {"type", "message"}}``."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from rag.errors import BusyError, InputError, RagError

log = logging.getLogger(__name__)


class UnsupportedMediaTypeError(InputError):
    """A body in a content type the route does not take (HTTP 415)."""

    http_status = 415
    kind = "unsupported_media_type"


class ClientGoneError(RagError):
    """The client went away before its request was acted on (nobody reads the answer)."""

    http_status = 499  # nginx's "client closed request"
    kind = "client_gone"


_HTTP_KINDS = {400: "bad_request", 401: "unauthorized", 404: "not_found", 405: "method_not_allowed",
               413: "payload_too_large", 415: "unsupported_media_type", 422: "validation_error"}


def error_body(kind: str, message: str) -> dict[str, dict[str, str]]:
    """The body of every error the server sends, as a response or as a stream event."""
    return {"error": {"type": kind, "message": message}}


def rag_error_body(exc: RagError) -> dict[str, dict[str, str]]:
    return error_body(exc.kind, exc.message)


def error_response(status: int, kind: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(kind, message), status_code=status, headers=headers)


def rag_error_response(exc: RagError) -> JSONResponse:
    headers = None
    if isinstance(exc, BusyError):
        headers = {"Retry-After": str(max(1, round(exc.retry_after)))}
    elif exc.http_status == 401:
        headers = {"WWW-Authenticate": "Bearer"}
    return error_response(exc.http_status, exc.kind, exc.message, headers)


def _field(loc: tuple[object, ...]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:] or parts
    return ".".join(parts)


def validation_message(exc: RequestValidationError) -> tuple[int, str, str]:
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return 400, "invalid_json", "the request body is not valid JSON"
    parts = [f"{_field(tuple(e.get('loc', ())))}: {e.get('msg', 'invalid')}" for e in errors[:5]]
    return 422, "validation_error", "; ".join(parts) or "invalid request"


def _unparsable_body(exc: HTTPException) -> str | None:
    """Why FastAPI could not parse a JSON body, from the error it chained (it
    raises a bare 400 for anything but a syntax error), or None if it was not that."""
    cause = exc.__cause__
    if exc.status_code != 400 or cause is None:
        return None
    if isinstance(cause, UnicodeDecodeError):
        return "the request body is not valid JSON: it is not UTF-8 text"
    if isinstance(cause, RecursionError):
        return "the request body is not valid JSON: it is nested too deeply"
    if isinstance(cause, ValueError):  # e.g. an integer with thousands of digits
        return "the request body is not valid JSON"
    return None


def install(app: FastAPI) -> None:
    @app.exception_handler(RagError)
    async def _rag(_: Request, exc: RagError) -> JSONResponse:
        if exc.http_status >= 500:
            log.warning("%s: %s", exc.kind, exc.message)
        return rag_error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        status, kind, message = validation_message(exc)
        return error_response(status, kind, message)

    @app.exception_handler(HTTPException)
    async def _http(_: Request, exc: HTTPException) -> JSONResponse:
        unparsable = _unparsable_body(exc)
        if unparsable:
            return error_response(400, "invalid_json", unparsable)
        return error_response(exc.status_code, _HTTP_KINDS.get(exc.status_code, "http_error"), str(exc.detail),
                              getattr(exc, "headers", None))

    @app.exception_handler(ClientDisconnect)
    async def _gone(request: Request, _: ClientDisconnect) -> JSONResponse:
        # the client left (or was cut off as too slow: server.http_protocol) before its
        # request was read whole: nothing was done, and nobody will read this answer
        log.info("%s %s: the client left before its request was read", request.method, request.url.path)
        return error_response(400, "client_disconnected", "the request ended before its body was read")

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error")
        return error_response(500, "internal_error", "internal server error (see the server log)")
