"""rag: local, private question answering over your documents with cited answers."""

from __future__ import annotations

from rag.errors import RagError
from rag.settings import Settings, get_settings

__all__ = ["RagError", "Settings", "get_settings"]
__version__ = "0.1.0"
