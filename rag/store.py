"""The vector store: Chroma, embedded (``PersistentClient``) or a server
(``HttpClient`` when ``RAG_CHROMA_URL`` is set). Three collections: ``<name>_chunks``
(retrieval units), ``<name>_sentences`` (evidence units, each pointing at its
chunk) and ``<name>_meta`` (one record: the store's version token). We always pass
our own vectors; Chroma never embeds anything itself.

The version token is a fresh random string written after every write, by whichever
process wrote. Caches derived from the store (the BM25 index) key on it, so every
process that shares a Chroma server, and every restarted one, notices every change,
also one that keeps the number of chunks equal."""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar
from urllib.parse import urlparse

import numpy as np

from rag.errors import BackendError

log = logging.getLogger(__name__)

VERSION_ID = "version"
F = TypeVar("F", bound=Callable[..., Any])


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

    @property
    def section(self) -> str:
        return str(self.metadata.get("section", ""))

    @property
    def page(self) -> int | None:
        page = self.metadata.get("page")
        return int(page) if page is not None else None

    @property
    def indexed_text(self) -> str:
        """What retrieval embeds and indexes: the text under its section path, so
        a passage deep in a section is still found by the section's words."""
        return f"{self.section}:\n{self.text}" if self.section else self.text


@dataclass(frozen=True)
class SourceState:
    """What the index holds for one source: the document hashes its records carry
    (one, unless a write was interrupted), and its chunk and sentence counts."""

    hashes: frozenset[str]
    chunks: int
    sentences: int


@dataclass(frozen=True)
class Snapshot:
    """Everything stored for some sources: enough to restore them exactly."""

    chunks: list[Record]
    chunk_vectors: np.ndarray
    sentences: list[Record]
    sentence_vectors: np.ndarray


class VectorStore(Protocol):
    def count(self) -> int: ...
    def version(self) -> str: ...
    def source_state(self) -> dict[str, SourceState]: ...
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


def _remote(method: F) -> F:
    """Turn a lost connection to a Chroma server into a one-line ``BackendError``."""

    @functools.wraps(method)
    def wrapper(self: "ChromaStore", *args: Any, **kwargs: Any) -> Any:
        import httpx

        try:
            return method(self, *args, **kwargs)
        except (httpx.TransportError, ConnectionError) as exc:
            raise BackendError(f"lost the Chroma server at {self.url}: {exc or type(exc).__name__}") from exc

    return wrapper  # type: ignore[return-value]


class ChromaStore:
    """A ``VectorStore`` on Chroma."""

    def __init__(self, data_dir: Path, name: str = "rag", url: str | None = None) -> None:
        self.url = url
        self._client = _client(data_dir, url)
        meta = {"hnsw:space": "cosine"}
        try:
            self._chunks = self._client.get_or_create_collection(f"{name}_chunks", metadata=meta,
                                                                 embedding_function=None)
            self._sentences = self._client.get_or_create_collection(f"{name}_sentences", metadata=meta,
                                                                    embedding_function=None)
            self._meta = self._client.get_or_create_collection(f"{name}_meta", embedding_function=None)
            self._batch = max(1, min(int(self._client.get_max_batch_size()), 4000))
        except Exception as exc:
            raise BackendError(f"cannot open the Chroma collections: {exc}") from exc

    # --- reading -------------------------------------------------------------
    @_remote
    def count(self) -> int:
        return int(self._chunks.count())

    @_remote
    def version(self) -> str:
        """The version token: changes with every write, in any process ("" before the first)."""
        docs = self._meta.get(ids=[VERSION_ID], include=["documents"])["documents"]
        return str(docs[0]) if docs else ""

    @_remote
    def source_state(self) -> dict[str, SourceState]:
        """Every source found in either collection (orphans of an interrupted write included)."""
        hashes: dict[str, set[str]] = {}
        counts: dict[str, list[int]] = {}
        for slot, coll in enumerate((self._chunks, self._sentences)):
            for page in self._pages(coll, ["metadatas"]):
                for meta in page["metadatas"]:
                    src = str(meta["source"])
                    hashes.setdefault(src, set()).add(str(meta["doc_hash"]))
                    counts.setdefault(src, [0, 0])[slot] += 1
        return {s: SourceState(frozenset(hashes[s]), *counts[s]) for s in counts}

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

    @_remote
    def all_chunks(self) -> list[Record]:
        return [Record(i, d or "", dict(m or {}))
                for res in self._pages(self._chunks, ["documents", "metadatas"])
                for i, d, m in zip(res["ids"], res["documents"], res["metadatas"])]

    def _query(self, coll: Any, vector: np.ndarray, n: int) -> list[tuple[Record, float]]:
        # Chroma returns fewer than n (none for an empty collection) without an error
        res = coll.query(query_embeddings=[vector.tolist()], n_results=n,
                         include=["documents", "metadatas", "distances"])
        return [(Record(i, d or "", dict(m or {})), 1.0 - float(dist)) for i, d, m, dist in
                zip(res["ids"][0], res["documents"][0], res["metadatas"][0], res["distances"][0])]

    @_remote
    def query_chunks(self, vector: np.ndarray, n: int) -> list[tuple[Record, float]]:
        return self._query(self._chunks, vector, n)

    @_remote
    def sentences_of(self, chunk_ids: Sequence[str]) -> tuple[list[Record], np.ndarray]:
        if not chunk_ids:
            return [], np.zeros((0, 0), dtype=np.float32)
        res = self._sentences.get(where={"chunk_id": {"$in": list(chunk_ids)}},
                                  include=["documents", "metadatas", "embeddings"])
        records = [Record(i, d or "", dict(m or {})) for i, d, m in
                   zip(res["ids"], res["documents"], res["metadatas"])]
        vectors = np.asarray(res["embeddings"], dtype=np.float32) if records else np.zeros((0, 0), np.float32)
        return records, vectors

    @_remote
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

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """Write a new version token after the writes inside (after the data, so a
        reader that sees the new token also sees the data). A failed write bumps it
        too: it may have changed something."""
        try:
            yield
        except BaseException:
            try:
                self._bump()
            except Exception:  # noqa: BLE001 - the original error matters more
                log.warning("could not update the store version after a failed write")
            raise
        self._bump()

    def _bump(self) -> None:
        self._meta.upsert(ids=[VERSION_ID], documents=[uuid.uuid4().hex], embeddings=[[1.0]])

    @_remote
    def add(self, chunks: Sequence[Record], chunk_vectors: np.ndarray,
            sentences: Sequence[Record], sentence_vectors: np.ndarray) -> None:
        with self._writing():
            # sentences first: a chunk is only visible to retrieval once its evidence exists
            self._add(self._sentences, sentences, sentence_vectors)
            self._add(self._chunks, chunks, chunk_vectors)

    @_remote
    def delete_sources(self, sources: Iterable[str]) -> None:
        srcs = list(sources)
        if srcs:  # chunks first: a source stays visible (and removable) until its last record is gone
            with self._writing():
                self._chunks.delete(where={"source": {"$in": srcs}})
                self._sentences.delete(where={"source": {"$in": srcs}})

    @_remote
    def delete_ids(self, chunk_ids: Sequence[str], sentence_ids: Sequence[str]) -> None:
        if not chunk_ids and not sentence_ids:
            return
        with self._writing():
            for coll, ids in ((self._chunks, chunk_ids), (self._sentences, sentence_ids)):
                for i in range(0, len(ids), self._batch):
                    coll.delete(ids=list(ids[i:i + self._batch]))
