"""rag: local, private question answering over your documents with cited answers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rag.errors import RagError

if TYPE_CHECKING:
    from rag.settings import Settings, get_settings

__all__ = ["RagError", "Settings", "get_settings"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    """``Settings`` and ``get_settings`` are imported on first use (pydantic-settings
    takes a while), so ``rag --version`` and ``--help`` answer at once."""
    if name in ("Settings", "get_settings"):
        from rag import settings

        return getattr(settings, name)
    raise AttributeError(f"module 'rag' has no attribute {name!r}")
