"""The vector store: Chroma, embedded (``PersistentClient``) or a server
(``HttpClient`` when ``RAG_CHROMA_URL`` is set). Two collections: ``<name>_chunks``
(retrieval units) and ``<name>_sentences`` (evidence units, each pointing at its
chunk). We always pass our own vectors; Chroma never embeds anything itself."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

import numpy as np

from rag.errors import BackendError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Record:
    """One stored unit (a chunk or a sentence) with its metadata."""

    id: str
    text: str
    metadata: dict[str, Any]

    @property
    def source(self) -> str:
        return str(self.metadata["source"])

    @property
    def start(self) -> int:
        return int(self.metadata["start"])

    @property
    def end(self) -> int:
        return int(self.metadata["end"])


@dataclass(frozen=True)
class Snapshot:
    """Everything stored for some sources: enough to restore them exactly."""

    chunks: list[Record]
    chunk_vectors: np.ndarray
    sentences: list[Record]
    sentence_vectors: np.ndarray


class VectorStore(Protocol):
    def count(self) -> int: ...
    def source_hashes(self) -> dict[str, tuple[str, int]]: ...
    def add(self, chunks: Sequence[Record], chunk_vectors: np.ndarray,
            sentences: Sequence[Record], sentence_vectors: np.ndarray) -> None: ...
    def delete_sources(self, sources: Iterable[str]) -> None: ...
    def delete_ids(self, chunk_ids: Sequence[str], sentence_ids: Sequence[str]) -> None: ...
    def snapshot(self, sources: Iterable[str]) -> Snapshot: ...
    def query_chunks(self, vector: np.ndarray, n: int) -> list[tuple[Record, float]]: ...
    def all_chunks(self) -> list[Record]: ...
    def sentences_of(self, chunk_ids: Sequence[str]) -> tuple[list[Record], np.ndarray]: ...


def _client(data_dir: Path, url: str | None) -> Any:
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
    if url:
        parsed = urlparse(url)
        try:
            return chromadb.HttpClient(host=parsed.hostname or "127.0.0.1", port=parsed.port or 8000,
                                       ssl=parsed.scheme == "https", settings=chroma_settings)
        except Exception as exc:  # chromadb raises plain ValueError/ConnectionError here
            raise BackendError(f"cannot reach the Chroma server at {url}: {exc}") from exc
    data_dir.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(data_dir / "chroma"), settings=chroma_settings)


class ChromaStore:
    """A ``VectorStore`` on Chroma."""

    def __init__(self, data_dir: Path, name: str = "rag", url: str | None = None) -> None:
        self._client = _client(data_dir, url)
        meta = {"hnsw:space": "cosine"}
        try:
            self._chunks = self._client.get_or_create_collection(f"{name}_chunks", metadata=meta,
                                                                 embedding_function=None)
            self._sentences = self._client.get_or_create_collection(f"{name}_sentences", metadata=meta,
                                                                    embedding_function=None)
        except Exception as exc:
            raise BackendError(f"cannot open the Chroma collections: {exc}") from exc
        self._batch = max(1, min(int(self._client.get_max_batch_size()), 4000))

    # --- reading -------------------------------------------------------------
    def count(self) -> int:
        return int(self._chunks.count())

    def source_hashes(self) -> dict[str, tuple[str, int]]:
        """source -> (document hash, number of chunks)."""
        out: dict[str, tuple[str, int]] = {}
        for page in self._pages(self._chunks, ["metadatas"]):
            for meta in page["metadatas"]:
                src = str(meta["source"])
                h, n = out.get(src, (str(meta["doc_hash"]), 0))
                out[src] = (h, n + 1)
        return out

    @staticmethod
    def _pages(coll: Any, include: list[str], page: int = 5000) -> Iterable[dict[str, Any]]:
        """``coll.get`` results, ``page`` records at a time."""
        offset = 0
        while True:
            res = coll.get(include=include, limit=page, offset=offset)
            if res["ids"]:
                yield res
            if len(res["ids"]) < page:
                return
            offset += page

    def all_chunks(self) -> list[Record]:
        return [Record(i, d or "", dict(m or {}))
                for res in self._pages(self._chunks, ["documents", "metadatas"])
                for i, d, m in zip(res["ids"], res["documents"], res["metadatas"])]

    def _query(self, coll: Any, vector: np.ndarray, n: int) -> list[tuple[Record, float]]:
        total = coll.count()
        if total == 0:
            return []
        res = coll.query(query_embeddings=[vector.tolist()], n_results=min(n, total),
                         include=["documents", "metadatas", "distances"])
        return [(Record(i, d or "", dict(m or {})), 1.0 - float(dist)) for i, d, m, dist in
                zip(res["ids"][0], res["documents"][0], res["metadatas"][0], res["distances"][0])]

    def query_chunks(self, vector: np.ndarray, n: int) -> list[tuple[Record, float]]:
        return self._query(self._chunks, vector, n)

    def sentences_of(self, chunk_ids: Sequence[str]) -> tuple[list[Record], np.ndarray]:
        if not chunk_ids:
            return [], np.zeros((0, 0), dtype=np.float32)
        res = self._sentences.get(where={"chunk_id": {"$in": list(chunk_ids)}},
                                  include=["documents", "metadatas", "embeddings"])
        records = [Record(i, d or "", dict(m or {})) for i, d, m in
                   zip(res["ids"], res["documents"], res["metadatas"])]
        vectors = np.asarray(res["embeddings"], dtype=np.float32) if records else np.zeros((0, 0), np.float32)
        return records, vectors

    def snapshot(self, sources: Iterable[str]) -> Snapshot:
        srcs = list(sources)
        if not srcs:
            empty = np.zeros((0, 0), dtype=np.float32)
            return Snapshot([], empty, [], empty)
        where = {"source": {"$in": srcs}}
        parts = []
        for coll in (self._chunks, self._sentences):
            res = coll.get(where=where, include=["documents", "metadatas", "embeddings"])
            recs = [Record(i, d or "", dict(m or {})) for i, d, m in
                    zip(res["ids"], res["documents"], res["metadatas"])]
            vecs = np.asarray(res["embeddings"], dtype=np.float32) if recs else np.zeros((0, 0), np.float32)
            parts += [recs, vecs]
        return Snapshot(*parts)

    # --- writing -------------------------------------------------------------
    def _add(self, coll: Any, records: Sequence[Record], vectors: np.ndarray) -> None:
        for i in range(0, len(records), self._batch):
            part = records[i:i + self._batch]
            coll.upsert(ids=[r.id for r in part], documents=[r.text for r in part],
                        metadatas=[r.metadata for r in part],
                        embeddings=vectors[i:i + self._batch].tolist())

    def add(self, chunks: Sequence[Record], chunk_vectors: np.ndarray,
            sentences: Sequence[Record], sentence_vectors: np.ndarray) -> None:
        # sentences first: a chunk is only visible to retrieval once its evidence exists
        self._add(self._sentences, sentences, sentence_vectors)
        self._add(self._chunks, chunks, chunk_vectors)

    def delete_sources(self, sources: Iterable[str]) -> None:
        srcs = list(sources)
        if srcs:
            self._chunks.delete(where={"source": {"$in": srcs}})
            self._sentences.delete(where={"source": {"$in": srcs}})

    def delete_ids(self, chunk_ids: Sequence[str], sentence_ids: Sequence[str]) -> None:
        for coll, ids in ((self._chunks, chunk_ids), (self._sentences, sentence_ids)):
            for i in range(0, len(ids), self._batch):
                coll.delete(ids=list(ids[i:i + self._batch]))
