"""Idempotent, crash-safe ingestion of documents into the store.

Every record carries the sha256 of its document's text (``doc_hash``, also part of
its id). A source is unchanged when its visible version has that hash and exactly
the chunk and sentence counts the chunker produces; re-ingesting it embeds nothing.

A new or changed document is written beside its old version, invisible, in batches
of about ``batch_records`` records (batches cross document boundaries, and a big
document spans many, so memory is bounded by the batch). When its last record is
stored it is published (it becomes the visible version at once) and the old
version's records are deleted (see ``rag.index.store``). Searches therefore never see
half a document; a write that fails or is killed leaves the previous version
visible and the batches already stored kept, and the next run embeds only what is
left. Writers of one index take turns (``VectorStore.writer_lock``)."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rag.ingest.chunking import chunk_document
from rag.index.embeddings import Embedder
from rag.errors import IngestError, NotFoundError
from rag.ingest.document import Document, validate_source
from rag.ingest.id_migration import counted_as, renames
from rag.ingest.loaders import Skipped, load_paths
from rag.ingest.parsers.ocr import OcrOptions, OcrProgress
from rag.index.store import ADDRESSES_MODEL, Record, SourceState, VectorStore

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]  # (done, total)


@dataclass
class IngestReport:
    """What one ingest did. ``migrated``: documents of an older index moved from
    their bare id to today's (see ``rag.ingest.id_migration``); ``skipped``: files found in
    folders that were not ingested, each with its reason."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    migrated: int = 0
    removed: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    chunks: int = 0
    ocr_pages: int = 0  # pages of the documents given that were read by OCR (an unchanged file's from the cache)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# Bumped whenever parsing or chunking changes what a document's records are, so
# that re-ingesting an unchanged file rewrites records made by older code.
RECORDS_VERSION = "3"


def doc_hash(text: str) -> str:
    return hashlib.sha256(f"{RECORDS_VERSION}\x00{text}".encode("utf-8")).hexdigest()


def _where(section: str, page: int | None, ocr_pages: frozenset[int] = frozenset()) -> dict[str, object]:
    """Metadata naming where a record is (Chroma metadata values cannot be None);
    ``ocr`` marks a record on a page read by OCR."""
    out: dict[str, object] = {"section": section}
    if page is not None:
        out["page"] = page
        if page in ocr_pages:
            out["ocr"] = True
    return out


def build_records(doc: Document, target_chars: int) -> tuple[list[Record], list[Record]]:
    """The chunk and sentence records of a document. Ids carry the document's hash:
    two versions of a document never share a record (see ``rag.index.store``)."""
    h = doc_hash(doc.text)
    chunks, sentences = [], []
    for chunk in chunk_document(doc, target_chars):
        cid = f"{chunk.id}-{h[:12]}"
        chunks.append(Record(cid, chunk.text, {"source": doc.source, "start": chunk.start,
                                               "end": chunk.end, "doc_hash": h, "index": chunk.index,
                                               "title": doc.display_title, **_where(chunk.section, chunk.page, doc.ocr_pages)}))
        for j, sent in enumerate(chunk.sentences):
            sentences.append(Record(f"{cid}:{j}", sent.text,
                                    {"source": doc.source, "start": sent.start, "end": sent.end,
                                     "doc_hash": h, "chunk_id": cid, "index": j, "kind": sent.kind,
                                     "title": doc.display_title, **_where(sent.section, sent.page, doc.ocr_pages)}))
    mark_addresses_model(chunks, sentences)
    return chunks, sentences


def mark_addresses_model(chunks: list[Record], sentences: list[Record]) -> None:
    """Mark (ADDRESSES_MODEL) the chunks that take no place among search hits: every
    chunk of a document most of whose units address the model (``rag.ingest.injection``),
    and each chunk most of whose own units do. Done once here, not at every query."""
    from rag.ingest.injection import looks_like_injection

    flagged = [looks_like_injection(r.text) for r in sentences]
    per_chunk: dict[str, list[bool]] = {}
    for record, flag in zip(sentences, flagged):
        per_chunk.setdefault(str(record.metadata["chunk_id"]), []).append(flag)
    whole = bool(flagged) and sum(flagged) * 2 > len(flagged)
    for chunk in chunks:
        own = per_chunk.get(chunk.id, [])
        if whole:
            chunk.metadata[ADDRESSES_MODEL] = "document"
        elif own and sum(own) * 2 > len(own):
            chunk.metadata[ADDRESSES_MODEL] = "passage"


@dataclass(frozen=True, order=True)
class DocumentInfo:
    source: str
    chunks: int
    title: str  # the document's title, else its file name


@dataclass
class _Pending:
    """One document to write: its version and the records not stored yet."""

    source: str
    doc_hash: str
    chunks: list[Record]
    sentences: list[Record]
    title: str = ""

    @property
    def size(self) -> int:
        return len(self.chunks) + len(self.sentences)


class Ingestor:
    def __init__(self, store: VectorStore, embedder: Embedder | Callable[[], Embedder], chunk_chars: int = 600,
                 on_change: Callable[[], None] | None = None, batch_records: int = 512,
                 ocr: OcrOptions | None = None) -> None:
        self.store = store
        self.ocr = ocr or OcrOptions()
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

    def ingest_paths(self, paths: Sequence[Path], prune: bool = False, progress: Progress | None = None,
                     prefix: str | None = None, strict: bool = False,
                     ocr_progress: OcrProgress | None = None) -> tuple[IngestReport, list[str]]:
        """Ingest files and folders under the source ids of ``rag.ingest.loaders.load_paths``
        (the folder's name first; ``prefix`` instead of it, ``""`` for bare paths).
        Files found in folders that cannot be ingested are skipped, one warning each,
        and listed in the report; with ``strict`` any of them is an IngestError and
        nothing is written. A document that an older index holds under its bare id
        with the same text moves to its new id (``migrated``). ``ocr_progress`` is
        told the pages of each scanned PDF as they are read."""
        ocr = dataclasses.replace(self.ocr, progress=ocr_progress) if ocr_progress else self.ocr
        loaded = load_paths(list(paths), prefix=prefix, ocr=ocr)
        for w in loaded.warnings:
            log.warning("%s", w)
        for s in loaded.skipped:
            log.warning("skipped %s: %s", s.source, s.reason)
        if strict and loaded.skipped:
            shown = "; ".join(f"{s.source} ({s.reason})" for s in loaded.skipped[:5])
            more = f"; and {len(loaded.skipped) - 5} more" if len(loaded.skipped) > 5 else ""
            raise IngestError(f"strict: nothing written, {len(loaded.skipped)} file(s) would be skipped: "
                              f"{shown}{more}")
        before = self.store.source_state() if loaded.bare else {}
        moves = renames(loaded.documents, loaded.bare, before, doc_hash)
        report = self.ingest_documents(loaded.documents, prune=prune, progress=progress)
        report.skipped = list(loaded.skipped)
        if moves:
            if prune:  # the prune removed the old ids, and counted them as removed
                moved = moves
                report.removed -= len(moves)
            else:
                with self.store.writer_lock():  # checked again: another writer may have changed them
                    now = self.store.source_state()
                    moved = {old: new for old, new in renames(loaded.documents, loaded.bare, now, doc_hash).items()
                             if old in moves and now.get(new) is not None and now[new].chunks}
                    if moved:
                        self._remove(sorted(moved))
                        self.on_change()
            texts = {d.source: d.text for d in loaded.documents}
            added, updated, unchanged = counted_as({new: doc_hash(texts[new]) for new in moved.values()}, before)
            report.added -= added
            report.updated -= updated
            report.unchanged -= unchanged
            report.migrated = len(moved)
            report.chunks = self.store.count()
            log.info("moved %d document(s) from their bare ids to today's", len(moved))
        return report, loaded.warnings

    def ingest_documents(self, docs: Sequence[Document], prune: bool = False,
                         progress: Progress | None = None) -> IngestReport:
        """Write new and changed documents, a batch of about ``batch_records``
        records at a time (batches cross document boundaries, and a big document
        spans many). A document becomes visible, or replaces its old version, only
        once all its records are stored; an interrupted run leaves what it finished
        stored, and the next run embeds only the rest."""
        for doc in docs:
            validate_source(doc.source)
        with self.store.writer_lock():
            report, pending, cleanup = self._plan(docs)
            report.ocr_pages = sum(len(d.ocr_pages) for d in docs)
            given = {d.source for d in docs}
            existing = self.store.source_state()
            removed = sorted(s for s, st in existing.items() if s not in given and st.chunks) if prune else []
            report.removed = len(removed)
            if to_write := sum(p.size for p in pending):  # room on the disk for it all before anything is
                self.store.check_space(to_write, self.embedder.dim)  # written (then again for each batch)
            # sources with nothing visible yet get an empty live record first, so that
            # their records stay hidden until complete (an old index's source keeps its version)
            self.store.publish({p.source: _legacy_version(existing.get(p.source)) for p in pending
                                if existing.get(p.source) is None or existing[p.source].live is None})
            self._write(pending, progress)
            if cleanup:  # complete versions whose old records an interrupted run left behind
                self.store.delete_other_versions(cleanup)
            if removed:
                self._remove(removed)
                self.on_change()
        report.chunks = self.store.count()
        return report

    def _plan(self, docs: Sequence[Document]) -> tuple[IngestReport, list[_Pending], dict[str, str]]:
        existing = self.store.source_state()
        report = IngestReport()
        pending: list[_Pending] = []
        cleanup: dict[str, str] = {}
        for doc in docs:
            chunks, sentences = build_records(doc, self.chunk_chars)
            h = doc_hash(doc.text)
            state = existing.get(doc.source)
            if state is not None and state.live == h and state.versions.get(h) == (len(chunks), len(sentences)):
                report.unchanged += 1
                if len(state.versions) > 1:
                    cleanup[doc.source] = h
                continue
            stored = self.store.stored_ids(doc.source, h) if state is not None and h in state.versions else set()
            pending.append(_Pending(doc.source, h, [r for r in chunks if r.id not in stored],
                                    [r for r in sentences if r.id not in stored], doc.display_title))
            if state is not None and state.chunks:
                report.updated += 1
            else:
                report.added += 1
        return report, pending, cleanup

    def _write(self, pending: list[_Pending], progress: Progress | None) -> None:
        """Embed and store the pending records in batches; publish each document
        (and delete its old version) in the batch that completes it."""
        total = sum(p.size for p in pending)
        done = 0
        chunks: list[Record] = []
        sentences: list[Record] = []
        completed: dict[str, str] = {}
        titles = {p.source: p.title for p in pending}
        if progress and total:
            progress(0, total)
        for p in pending:
            queue = [(r, False) for r in p.sentences] + [(r, True) for r in p.chunks]
            for pos, (record, is_chunk) in enumerate(queue, 1):
                (chunks if is_chunk else sentences).append(record)
                if pos == len(queue):
                    completed[p.source] = p.doc_hash
                if len(chunks) + len(sentences) >= self.batch_records:
                    done = self._flush(chunks, sentences, completed, titles, done, total, progress)
            if not queue:
                completed[p.source] = p.doc_hash
        self._flush(chunks, sentences, completed, titles, done, total, progress)

    def _flush(self, chunks: list[Record], sentences: list[Record], completed: dict[str, str],
               titles: dict[str, str], done: int, total: int, progress: Progress | None) -> int:
        """Store one batch, then publish the documents it completes; empties the lists."""
        if chunks or sentences:
            chunk_vecs, sent_vecs = self._embed(chunks, sentences, done, total, progress)
            self.store.check_space(len(chunks) + len(sentences), self.embedder.dim, partway=True)
            self.store.add(chunks, chunk_vecs, sentences, sent_vecs)
            done += len(chunks) + len(sentences)
            log.debug("stored %d of %d records", done, total)
            if progress:
                progress(done, total)
        if completed:
            self.store.publish(completed, {s: titles.get(s, "") for s in completed})
            self.store.delete_other_versions(completed)
            self.on_change()
        chunks.clear()
        sentences.clear()
        completed.clear()
        return done

    def _embed(self, chunks: list[Record], sentences: list[Record], done: int, total: int,
               progress: Progress | None) -> tuple[np.ndarray, np.ndarray]:
        """Embed every distinct text once: chunks under their section path
        (``Record.indexed_text``), sentences as they are; a chunk without a section
        that is one sentence shares that sentence's vector. Texts go to the embedder
        shortest first across the whole batch (little padding), through its
        document path (``rag.index.embeddings.embed_documents``)."""
        from rag.index.embeddings import embed_documents

        texts = [r.indexed_text for r in chunks] + [r.text for r in sentences]
        unique = _distinct(chunks, sentences)
        if not unique:
            empty = np.zeros((0, self.embedder.dim), dtype=np.float32)
            return empty, empty
        order = sorted(range(len(unique)), key=lambda i: len(unique[i]))
        table = np.empty((len(unique), self.embedder.dim), dtype=np.float32)
        step = 64
        for i in range(0, len(order), step):
            rows = order[i:i + step]
            table[rows] = embed_documents(self.embedder, [unique[j] for j in rows])
            if progress:
                progress(done + min(i + step, len(unique)), total)
        row = {t: i for i, t in enumerate(unique)}
        vecs = table[[row[t] for t in texts]]
        return vecs[: len(chunks)], vecs[len(chunks):]

    def remove(self, source: str) -> int:
        with self.store.writer_lock():
            existing = self.store.source_state()
            state = existing.get(source)
            if state is None:
                raise NotFoundError(f"no document {source!r} in the index (see 'rag list')")
            self._remove([source])
            self.on_change()
        return state.chunks

    def _remove(self, sources: list[str]) -> None:
        """Hide the sources at once (empty live records), then delete their records
        and live records."""
        self.store.publish({s: "" for s in sources})
        self.store.delete_sources(sources)
        self.store.unpublish(sources)

    def discard_unfinished(self, sources: Sequence[str]) -> None:
        """Drop what an interrupted write stored of these sources' unfinished versions
        (the visible version of each stays as it was; a source never made visible
        goes). The next ingest would have resumed them; this is for a write nobody
        will retry (its client has gone)."""
        with self.store.writer_lock():
            state = self.store.source_state()
            keep = {s: st.live for s in sources if (st := state.get(s)) is not None and st.live is not None}
            self.store.delete_other_versions(keep)
            self.store.unpublish([s for s, live in keep.items() if live == ""])

    def list_sources(self) -> list[tuple[str, int]]:
        return [(d.source, d.chunks) for d in self.documents()]

    def documents(self) -> list[DocumentInfo]:
        """The searchable documents, by source id."""
        return sorted(DocumentInfo(s, st.chunks, st.title or s.rsplit("/", 1)[-1])
                      for s, st in self.store.source_state().items() if st.chunks)


def _legacy_version(state: SourceState | None) -> str:
    """The version to keep visible for a source that has no live record yet: the
    one version an index made before versions holds, else none."""
    if state is not None and len(state.versions) == 1:
        return next(iter(state.versions))
    return ""


def _distinct(chunks: list[Record], sentences: list[Record]) -> list[str]:
    """The distinct texts to embed: chunks under their sections, sentences as they are."""
    return list(dict.fromkeys([r.indexed_text for r in chunks] + [r.text for r in sentences]))
