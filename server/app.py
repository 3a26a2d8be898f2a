"""The FastAPI application factory. Models load once, in the lifespan."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.concurrency import run_in_threadpool

from rag.engine import Rag
from rag.settings import Settings, get_settings
from server import errors
from server.gate import Gate
from server.metrics import Metrics
from server.guard import RequestOriginMiddleware, default_hosts
from server.middleware import AuthMiddleware, BodyLimitMiddleware, MetricsMiddleware
from server.routes import ask, docs, documents, health, openai_compat, search, web
from server.schemas import ErrorOut
from server.service import Service

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"


def create_app(settings: Settings | None = None, engine: Rag | None = None) -> FastAPI:
    """Build the app. ``engine`` lets a caller share already-loaded parts (tests)."""
    settings = settings or get_settings()
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    gate = Gate(concurrency=generation_slots(settings), max_queue=settings.max_queue)
    holder: dict[str, Service] = {}
    metrics = Metrics(queue_depth=lambda: gate.waiting,
                      tokens=lambda: holder["svc"].tokens_generated() if "svc" in holder else 0,
                      write_queue=lambda: holder["svc"].writes_waiting if "svc" in holder else 0)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        rag = engine or Rag(settings)
        svc = Service(rag, settings, gate, metrics)
        holder["svc"] = app.state.svc = svc
        log.info("loading models")
        await run_in_threadpool(rag.load)
        took = await run_in_threadpool(rag.decode_once)  # ready only once the model has decoded
        svc.ready = True
        log.info("ready: %s (first token in %.2f s)", rag.model_name, took)
        try:
            yield
        finally:
            svc.ready = False
            gate.shutdown()
            if engine is None:  # an engine handed in belongs to the caller
                rag.close()

    # /docs and /redoc come from server.routes.docs, with local assets (no CDN)
    app = FastAPI(title="rag", version="0.1.0", lifespan=lifespan, docs_url=None, redoc_url=None,
                  summary="Local question answering over your documents, with cited answers.",
                  responses={
                      "4XX": {"model": ErrorOut, "description": "Client error"},
                      "5XX": {"model": ErrorOut, "description": "Server error"},
                  })
    if settings.api_key:
        declare_bearer_auth(app)
    errors.install(app)
    for module in (ask, openai_compat, search, documents, health, web, docs):
        app.include_router(module.router)
    web.mount_static(app, STATIC)
    docs.mount_assets(app)
    # outermost first: metrics see every response, auth runs before body reading
    app.add_middleware(BodyLimitMiddleware, max_body=settings.max_body_bytes, max_upload=settings.max_upload_bytes)
    app.add_middleware(AuthMiddleware, api_key=settings.api_key.get_secret_value() if settings.api_key else None)
    # the Host and a browser's writes are checked before the key (server.guard)
    app.add_middleware(RequestOriginMiddleware, allowed_hosts=default_hosts(settings.host) + settings.host_names,
                       allowed_origins=settings.origins)
    if settings.origins:  # CORS stays closed unless origins are configured
        app.add_middleware(CORSMiddleware, allow_origins=settings.origins, allow_methods=["*"],
                           allow_headers=["*"], max_age=600)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return app


def declare_bearer_auth(app: FastAPI) -> None:
    """Declare ``Authorization: Bearer <key>`` in the API's schema (every operation
    but the public ones), so that ``/docs`` offers "Authorize" and clients
    generated from the schema send the key."""
    from server.middleware import AuthMiddleware

    plain = app.openapi
    declared: list[bool] = []

    def schema() -> dict[str, object]:
        spec = plain()  # made once, then cached on the app
        if not declared:
            spec.setdefault("components", {})["securitySchemes"] = {
                "bearer": {"type": "http", "scheme": "bearer", "description": "the server's RAG_API_KEY"}}
            for path, operations in spec.get("paths", {}).items():
                if not AuthMiddleware.public(path):
                    for operation in operations.values():
                        operation["security"] = [{"bearer": []}]
            declared.append(True)
        return spec

    app.openapi = schema  # type: ignore[method-assign]


def generation_slots(settings: Settings) -> int:
    """Answers this worker generates at once: ``RAG_LLM_CONCURRENCY`` with an LLM
    server; 1 with in-process llama.cpp, which is not thread-safe."""
    if settings.llm_concurrency > 1 and settings.use_llm and not settings.llm_url:
        log.warning("RAG_LLM_CONCURRENCY=%d needs an LLM server (RAG_LLM_URL); in-process llama.cpp "
                    "answers one at a time", settings.llm_concurrency)
        return 1
    return settings.llm_concurrency


def app_from_env() -> FastAPI:
    """Factory for uvicorn (``rag serve``): settings come from ``RAG_*`` variables."""
    return create_app(get_settings())
