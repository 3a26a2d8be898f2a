"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.concurrency import run_in_threadpool

from rag.errors import BackendError, ModelError
from server.routes._deps import service

router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up (never needs the API key)."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request) -> dict[str, object]:
    """Models are loaded, the answering model has decoded once, and the index is
    readable (503 otherwise)."""
    svc = service(request)
    if not svc.ready:
        raise ModelError("models are still loading")
    try:
        chunks = await run_in_threadpool(svc.rag.store.count)
    except Exception as exc:  # noqa: BLE001 - any store failure means not ready
        raise BackendError(f"the index is not readable: {exc}") from exc
    return {"status": "ready", "model": svc.rag.model_name, "chunks": chunks,
            "queue": {"active": svc.gate.active, "waiting": svc.gate.waiting, "max": svc.gate.max_queue,
                      "slots": svc.gate.concurrency}}


@router.get("/metrics", response_class=Response,
            responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}},
                             "description": "Prometheus text format."}})
async def metrics(request: Request) -> Response:
    """Requests by route and status, latency and time-to-first-token histograms, tokens, queue depth."""
    return Response(service(request).metrics.render(), media_type=CONTENT_TYPE_LATEST)
