"""The HTTP service: a thin FastAPI layer over ``rag.engine.Rag``.

``create_app(settings)`` builds the app; ``rag serve`` runs it with uvicorn."""

from server.app import create_app

__all__ = ["create_app"]
