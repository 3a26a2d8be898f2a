"""Small helpers shared by the routers."""

from __future__ import annotations

import json

from fastapi import Request

from server.service import Service


def service(request: Request) -> Service:
    return request.app.state.svc  # type: ignore[no-any-return]


def sse(event: str, data: object) -> str:
    """One Server-Sent Event; ``data`` is JSON on one line."""
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"
