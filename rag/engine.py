"""``Rag``: the parts wired together from one ``Settings``. The CLI and the HTTP
server are thin layers over this object. Heavy parts (embedder, LLM) load lazily,
once, on first use (the server forces them in its lifespan)."""

from __future__ import annotations

import logging
import threading
from functools import cached_property
from pathlib import Path

from rag.embeddings import Embedder, SentenceTransformerEmbedder
from rag.ingest import Ingestor
from rag.lexical import LexicalCache
from rag.retrieval import HybridRetriever, SearchResult
from rag.settings import Settings
from rag.store import ChromaStore, VectorStore

log = logging.getLogger(__name__)


class Rag:
    def __init__(self, settings: Settings, embedder: Embedder | None = None,
                 store: VectorStore | None = None) -> None:
        self.settings = settings
        self._embedder = embedder
        self._store = store
        self._lock = threading.Lock()
        self.lexical = LexicalCache()

    @property
    def embedder(self) -> Embedder:
        with self._lock:
            if self._embedder is None:
                log.info("loading embedder %s", self.settings.embed_model)
                self._embedder = SentenceTransformerEmbedder(self.settings.embed_model)
            return self._embedder

    @property
    def store(self) -> VectorStore:
        with self._lock:
            if self._store is None:
                self._store = ChromaStore(Path(self.settings.data_dir), self.settings.collection,
                                          self.settings.chroma_url)
            return self._store

    @cached_property
    def retriever(self) -> HybridRetriever:
        return HybridRetriever(self.store, self.embedder, self.lexical)

    @cached_property
    def ingestor(self) -> Ingestor:
        return Ingestor(self.store, self.embedder, self.settings.chunk_chars, on_change=self.lexical.invalidate)

    def search(self, query: str, k: int | None = None) -> SearchResult:
        from rag.errors import EmptyQuestionError

        if not query.strip():
            raise EmptyQuestionError("the query is empty")
        return self.retriever.search(query.strip(), k or self.settings.top_k)
