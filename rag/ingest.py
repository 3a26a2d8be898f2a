"""Idempotent, crash-safe ingestion of documents into the store.

Per source we keep the sha256 of its text (in every record's metadata). A source is
unchanged only when every record of it carries that hash and its chunk and sentence
counts are exactly what the chunker produces (ids are content hashes, so equal
counts mean equal sets); anything else, e.g. the remains of a write that was
killed half-way, is rewritten. Re-ingesting an unchanged source embeds nothing; a
changed source has exactly its old records replaced.

Documents are embedded and written in batches (a document is never split): an
error undoes the batch being written, so no document is ever half there, and
batches already written stay, so re-running an interrupted ingest only does the
work that is left."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from rag.chunking import chunk_document
from rag.embeddings import Embedder
from rag.errors import InvalidSourceError, NotFoundError
from rag.document import Document
from rag.loaders import load_paths
from rag.store import Record, SourceState, VectorStore

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]  # (done, total)


@dataclass
class IngestReport:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    chunks: int = 0

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


# Bumped whenever parsing or chunking changes what a document's records are, so
# that re-ingesting an unchanged file rewrites records made by older code.
RECORDS_VERSION = "3"


def doc_hash(text: str) -> str:
    return hashlib.sha256(f"{RECORDS_VERSION}\x00{text}".encode("utf-8")).hexdigest()


def _where(section: str, page: int | None) -> dict[str, object]:
    """Metadata naming where a record is (Chroma metadata values cannot be None)."""
    out: dict[str, object] = {"section": section}
    if page is not None:
        out["page"] = page
    return out


def validate_source(source: str) -> str:
    """Sources are names, never paths that could escape: no '..', no absolute
    paths, no backslashes, no control characters."""
    if not source or len(source) > 512:
        raise InvalidSourceError("document source must be 1 to 512 characters")
    if any(ord(c) < 32 for c in source) or "\\" in source:
        raise InvalidSourceError(f"invalid document source {source!r}: control characters or backslashes")
    parts = source.split("/")
    if source.startswith("/") or any(p in ("", ".", "..") for p in parts) or ":" in parts[0]:
        raise InvalidSourceError(f"invalid document source {source!r}: must be a relative name without '..'")
    return source


def build_records(doc: Document, target_chars: int) -> tuple[list[Record], list[Record]]:
    h = doc_hash(doc.text)
    chunks, sentences = [], []
    for chunk in chunk_document(doc, target_chars):
        chunks.append(Record(chunk.id, chunk.text, {"source": doc.source, "start": chunk.start,
                                                    "end": chunk.end, "doc_hash": h, "index": chunk.index,
                                                    **_where(chunk.section, chunk.page)}))
        for j, sent in enumerate(chunk.sentences):
            sentences.append(Record(f"{chunk.id}:{j}", sent.text,
                                    {"source": doc.source, "start": sent.start, "end": sent.end,
                                     "doc_hash": h, "chunk_id": chunk.id, "index": j, "kind": sent.kind,
                                     **_where(sent.section, sent.page)}))
    return chunks, sentences


class Ingestor:
    def __init__(self, store: VectorStore, embedder: Embedder | Callable[[], Embedder], chunk_chars: int = 600,
                 on_change: Callable[[], None] | None = None, batch_records: int = 2048) -> None:
        self.store = store
        self.batch_records = batch_records
        self._embedder = embedder
        self.chunk_chars = chunk_chars
        self.on_change = on_change or (lambda: None)

    @property
    def embedder(self) -> Embedder:
        """Loaded on first use, so bad input is reported before any model loads."""
        if not isinstance(self._embedder, Embedder) and callable(self._embedder):
            self._embedder = self._embedder()
        return self._embedder  # type: ignore[return-value]

    def ingest_paths(self, paths: Sequence[Path], prune: bool = False,
                     progress: Progress | None = None) -> tuple[IngestReport, list[str]]:
        loaded = load_paths(list(paths))
        for w in loaded.warnings:
            log.warning("%s", w)
        return self.ingest_documents(loaded.documents, prune=prune, progress=progress), loaded.warnings

    def ingest_documents(self, docs: Sequence[Document], prune: bool = False,
                         progress: Progress | None = None) -> IngestReport:
        for doc in docs:
            validate_source(doc.source)
        existing = self.store.source_state()
        report = IngestReport()
        todo: list[tuple[str, list[Record], list[Record]]] = []
        for doc in docs:
            chunks, sentences = build_records(doc, self.chunk_chars)
            state = existing.get(doc.source)
            if state is not None and _complete(state, doc_hash(doc.text), chunks, sentences):
                report.unchanged += 1
                continue
            todo.append((doc.source, chunks, sentences))
            if state is not None and state.chunks:
                report.updated += 1
            else:
                report.added += 1
        given = {d.source for d in docs}
        removed = sorted(s for s in existing if s not in given) if prune else []
        report.removed = len(removed)

        batches = [([r for _, c, _ in b for r in c], [r for _, _, s in b for r in s], [src for src, _, _ in b])
                   for b in _batches(todo, self.batch_records)]
        total = sum(len(_distinct(c, s)) for c, s, _ in batches)
        done = 0
        for chunks, sentences, sources in batches:
            chunk_vecs, sent_vecs = self._embed(chunks, sentences, done, total, progress)
            self._commit(sources, chunks, chunk_vecs, sentences, sent_vecs)
            done += len(_distinct(chunks, sentences))
        if removed:
            self.store.delete_sources(removed)
            self.on_change()
        report.chunks = self.store.count()
        return report

    def _embed(self, chunks: list[Record], sentences: list[Record], done: int, total: int,
               progress: Progress | None) -> tuple[np.ndarray, np.ndarray]:
        """Embed every distinct text once: chunks under their section path
        (``Record.indexed_text``), sentences as they are; a chunk without a section
        that is one sentence shares that sentence's vector."""
        texts = [r.indexed_text for r in chunks] + [r.text for r in sentences]
        unique = _distinct(chunks, sentences)
        parts: list[np.ndarray] = []
        step = 64
        for i in range(0, len(unique), step):
            parts.append(self.embedder.embed(unique[i:i + step]))
            if progress:
                progress(done + min(i + step, len(unique)), total)
        if not parts:
            empty = np.zeros((0, self.embedder.dim), dtype=np.float32)
            return empty, empty
        table = np.concatenate(parts)
        row = {t: i for i, t in enumerate(unique)}
        vecs = table[[row[t] for t in texts]]
        return vecs[: len(chunks)], vecs[len(chunks):]

    def _commit(self, sources: list[str], chunks: list[Record], chunk_vecs: np.ndarray,
                sentences: list[Record], sent_vecs: np.ndarray) -> None:
        before = self.store.snapshot(sources)
        new_chunk_ids = {r.id for r in chunks}
        new_sent_ids = {r.id for r in sentences}
        try:
            self.store.add(chunks, chunk_vecs, sentences, sent_vecs)
            self.store.delete_ids([r.id for r in before.chunks if r.id not in new_chunk_ids],
                                  [r.id for r in before.sentences if r.id not in new_sent_ids])
        except BaseException:
            log.error("ingest failed while writing; restoring the index")
            old_chunk_ids = {r.id for r in before.chunks}
            old_sent_ids = {r.id for r in before.sentences}
            self.store.delete_ids([i for i in new_chunk_ids if i not in old_chunk_ids],
                                  [i for i in new_sent_ids if i not in old_sent_ids])
            self.store.add(before.chunks, before.chunk_vectors, before.sentences, before.sentence_vectors)
            raise
        finally:
            self.on_change()

    def remove(self, source: str) -> int:
        existing = self.store.source_state()
        if source not in existing:
            raise NotFoundError(f"no document {source!r} in the index (see 'rag list')")
        self.store.delete_sources([source])
        self.on_change()
        return existing[source].chunks

    def list_sources(self) -> list[tuple[str, int]]:
        return sorted((s, st.chunks) for s, st in self.store.source_state().items() if st.chunks)


def _distinct(chunks: list[Record], sentences: list[Record]) -> list[str]:
    """The distinct texts to embed: chunks under their sections, sentences as they are."""
    return list(dict.fromkeys([r.indexed_text for r in chunks] + [r.text for r in sentences]))


def _complete(state: SourceState, h: str, chunks: list[Record], sentences: list[Record]) -> bool:
    return state.hashes == {h} and state.chunks == len(chunks) and state.sentences == len(sentences)


def _batches(todo: list[tuple[str, list[Record], list[Record]]],
             size: int) -> list[list[tuple[str, list[Record], list[Record]]]]:
    """Group whole documents into batches of about ``size`` records."""
    out: list[list[tuple[str, list[Record], list[Record]]]] = []
    current: list[tuple[str, list[Record], list[Record]]] = []
    n = 0
    for item in todo:
        if current and n + len(item[1]) + len(item[2]) > size:
            out.append(current)
            current, n = [], 0
        current.append(item)
        n += len(item[1]) + len(item[2])
    if current:
        out.append(current)
    return out
