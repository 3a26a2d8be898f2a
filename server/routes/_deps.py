"""Small helpers shared by the routers."""

from __future__ import annotations

import json

from fastapi import Request

from server.errors import UnsupportedMediaTypeError
from server.schemas import ErrorOut
from server.service import Service

# OpenAPI for the errors the middleware and these helpers add to a route
ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    400: {"model": ErrorOut, "description": "Bad input (invalid JSON, empty question, control characters...)"},
    401: {"model": ErrorOut, "description": "Missing or wrong API key (when RAG_API_KEY is set)"},
    413: {"model": ErrorOut, "description": "Request body or question too large"},
    422: {"model": ErrorOut, "description": "Validation error naming the field"},
}
JSON_ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    **ERROR_RESPONSES,
    415: {"model": ErrorOut, "description": "The body is not application/json"},
}
ANSWER_ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    **JSON_ERROR_RESPONSES,
    409: {"model": ErrorOut, "description": "Nothing has been indexed yet"},
    503: {"model": ErrorOut, "description": "Busy (with Retry-After) or models not loaded"},
    504: {"model": ErrorOut, "description": "The answer ran past the request time limit"},
}


def service(request: Request) -> Service:
    return request.app.state.svc  # type: ignore[no-any-return]


def media_type(request: Request) -> str:
    """The request's content type without parameters, lower case ("" if none)."""
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def is_json(ctype: str) -> bool:
    return ctype == "application/json" or (ctype.startswith("application/") and ctype.endswith("+json"))


def require_json(request: Request) -> None:
    """Dependency: 415 unless the body is declared as JSON (FastAPI would
    otherwise report a body in another type as a confusing 422)."""
    ctype = media_type(request)
    if not is_json(ctype):
        got = repr(ctype) if ctype else "a body without a content type"
        raise UnsupportedMediaTypeError(f"send the body as application/json, not {got}")


def sse(event: str, data: object) -> str:
    """One Server-Sent Event; ``data`` is JSON on one line."""
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"
