"""The vector store: Chroma, embedded (``PersistentClient``) or a server
(``HttpClient`` when ``RAG_CHROMA_URL`` is set). Three collections: ``<name>_chunks``
(retrieval units), ``<name>_sentences`` (evidence units, each pointing at its
chunk) and ``<name>_meta`` (one record: the store's version token). We always pass
our own vectors; Chroma never embeds anything itself.

The version token is a fresh random string written after every write, by whichever
process wrote. Caches derived from the store (the BM25 index) key on it, so every
process that shares a Chroma server, and every restarted one, notices every change,
also one that keeps the number of chunks equal.

Versions and visibility: every record carries the hash of its document's text
(``doc_hash``, part of its id too), and ``<name>_meta`` holds one *live* record per
source naming the hash whose records searches may return (``""``: none). A new
version of a document is written in batches beside the old one, invisible, and
becomes visible at once when its live record is switched (one upsert); only then
are the old version's records deleted. So a search never sees half a document, and
a write that is killed leaves the previous version visible and the finished part of
the new one stored, for the next run to continue from. A source with no live record
(an index made before versions existed) shows all its records."""

from __future__ import annotations

import functools
import logging
import threading
import uuid
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar
from urllib.parse import urlparse

import numpy as np

from rag.errors import BackendError

if TYPE_CHECKING:
    from rag.index.chroma_direct import DirectReader

log = logging.getLogger(__name__)

VERSION_ID = "version"
LIVE = "live"  # the ``kind`` of the meta records that name each source's visible version
# chunk metadata, set at ingest (rag.ingest.ingestor.build_records), of a chunk made mostly of orders to a model
# ("passage"), or of any chunk of a document made mostly of them ("document"): see rag.ingest.injection
ADDRESSES_MODEL = "addresses_model"
F = TypeVar("F", bound=Callable[..., Any])

# Free disk space an embedded index needs to take a write safely. Chroma rewrites its
# vector index files when it persists them; when the disk fills at that moment they
# can be left empty, and the index unreadable until rebuilt (seen on a small tmpfs:
# docs/reliability.md). So a write is refused, before anything is written, unless the
# disk has room for the records, twice over, and the margin. A record takes about
# 5.2 KB in an index of 1,710 chunks and sentences with 384-dimension vectors
# (2026-12-03; SQLite keeps each vector until the vector index is persisted, and
# the text with its full-text index): estimated as the index's own bytes per record,
# at least the vector twice plus SPACE_PER_RECORD_TEXT.
SPACE_PER_RECORD_TEXT = 3 * 1024  # bytes of text, metadata and full-text index per record, beyond its vectors
SPACE_SAFETY = 2.0  # room asked for, as a multiple of the estimate
SPACE_MARGIN = 16 * 2**20  # bytes always kept free: SQLite's journal, Chroma's rewritten id maps


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
    def ocr(self) -> bool:
        """Whether the record is on a page that was read by OCR."""
        return bool(self.metadata.get("ocr"))

    @property
    def addresses_model(self) -> str:
        """"passage" or "document" when the chunk takes no place among search hits (ADDRESSES_MODEL), else ""."""
        return str(self.metadata.get(ADDRESSES_MODEL) or "")

    @property
    def title(self) -> str:
        """The document's title (records made before titles: its file name)."""
        return str(self.metadata.get("title") or self.source.rsplit("/", 1)[-1])

    @property
    def indexed_text(self) -> str:
        """What retrieval embeds and indexes: the text under its section path, so
        a passage deep in a section is still found by the section's words."""
        return f"{self.section}:\n{self.text}" if self.section else self.text


@dataclass(frozen=True)
class SourceState:
    """What the index holds for one source: the visible version (``live``: its
    document hash; ``""`` none; None for a source of an index made before versions,
    whose records are all visible) and, per stored version, its chunk and sentence
    counts (more than one version while a write is under way or was interrupted)."""

    live: str | None
    versions: dict[str, tuple[int, int]]
    title: str = ""  # the visible version's document title ("" if not recorded)

    @property
    def visible(self) -> tuple[int, int]:
        """Chunks and sentences that searches see."""
        if self.live is None:
            return (sum(c for c, _ in self.versions.values()), sum(s for _, s in self.versions.values()))
        return self.versions.get(self.live, (0, 0)) if self.live else (0, 0)

    @property
    def chunks(self) -> int:
        return self.visible[0]

    @property
    def sentences(self) -> int:
        return self.visible[1]


def visible(meta: dict[str, Any], live: dict[str, str]) -> bool:
    """Whether a record (by its metadata) belongs to its source's visible version."""
    source = str(meta.get("source"))
    return source not in live or (live[source] != "" and live[source] == meta.get("doc_hash"))


def visible_where(live: dict[str, str]) -> dict[str, Any] | None:
    """A Chroma filter that keeps (at least) the visible records; ``visible``
    decides exactly (a filter on hashes alone lets through a staged record of one
    source whose text equals another's visible one)."""
    if not live:
        return None
    hashes = sorted({h for h in live.values() if h})
    unmanaged: dict[str, Any] = {"source": {"$nin": sorted(live)}}
    if not hashes:
        return unmanaged
    return {"$or": [{"doc_hash": {"$in": hashes}}, unmanaged]}


@dataclass(frozen=True)
class Snapshot:
    """Everything stored for some sources: enough to restore them exactly."""

    chunks: list[Record]
    chunk_vectors: np.ndarray
    sentences: list[Record]
    sentence_vectors: np.ndarray


class VectorStore(Protocol):
    def count(self) -> int: ...
    def check_space(self, records: int, dim: int, partway: bool = False) -> None: ...
    def version(self) -> str: ...
    def live(self) -> dict[str, str]: ...
    def source_state(self) -> dict[str, SourceState]: ...
    def stored_ids(self, source: str, doc_hash: str) -> set[str]: ...
    def add(self, chunks: Sequence[Record], chunk_vectors: np.ndarray,
            sentences: Sequence[Record], sentence_vectors: np.ndarray) -> None: ...
    def publish(self, versions: dict[str, str], titles: dict[str, str] | None = None) -> None: ...
    def unpublish(self, sources: Iterable[str]) -> None: ...
    def delete_other_versions(self, versions: dict[str, str]) -> None: ...
    def delete_sources(self, sources: Iterable[str]) -> None: ...
    def delete_ids(self, chunk_ids: Sequence[str], sentence_ids: Sequence[str]) -> None: ...
    def snapshot(self, sources: Iterable[str]) -> Snapshot: ...
    def query_chunks(self, vector: np.ndarray, n: int,
                     sources: frozenset[str] | None = None) -> list[tuple[Record, float]]: ...
    def all_chunks(self) -> list[Record]: ...
    def chunk(self, chunk_id: str) -> Record | None: ...
    def sentences_of(self, chunk_ids: Sequence[str]) -> tuple[list[Record], np.ndarray]: ...
    def writer_lock(self) -> AbstractContextManager[None]: ...


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


def _close_client(client: Any) -> None:
    close = getattr(client, "close", None)  # chromadb >= 1.1
    if close is not None:
        try:
            close()
        except Exception as exc:  # noqa: BLE001 - closing must not fail a shutdown
            log.debug("closing the Chroma client: %s", exc)


def chroma_message(exc: BaseException) -> str:
    """An error's own message: chromadb's errors have a ``message()`` method."""
    message = getattr(exc, "message", None)
    return str((message() if callable(message) else message) or exc)


def _remote(method: F) -> F:
    """Turn a lost connection to a Chroma server, or an error of Chroma's reading an
    embedded index it cannot read (a vector index file left empty...), into a one-line
    ``BackendError`` that names the way out."""

    @functools.wraps(method)
    def wrapper(self: "ChromaStore", *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except BackendError:
            raise
        except Exception as exc:
            if not self.url:  # embedded: no connection to lose (httpx is not imported)
                if type(exc).__module__.startswith("chromadb"):  # raised by Chroma's engine, not by our code
                    raise BackendError(f"the index in {self.data_dir} cannot be read ({chroma_message(exc)}); "
                                       "'rag doctor' checks it and 'rag doctor --rebuild' makes it again") from exc
                raise
            import httpx

            if isinstance(exc, (httpx.TransportError, ConnectionError)):
                raise BackendError(f"lost the Chroma server at {self.url}: {exc or type(exc).__name__}") from exc
            raise

    return wrapper  # type: ignore[return-value]


class ChromaStore:
    """A ``VectorStore`` on Chroma. An embedded index is read through Chroma's
    engine directly (``rag.index.chroma_direct``: no ``chromadb`` import on the question
    path) and written through ``chromadb``'s client, opened on the first write."""

    def __init__(self, data_dir: Path, name: str = "rag", url: str | None = None) -> None:
        self.url = url
        self.data_dir = Path(data_dir)
        self.name = name
        self._known = ""  # the version token this process last wrote or saw on opening
        # held by this process's writes, from their first change to noting their new token
        self._local_write = threading.RLock()
        self._direct = not url  # reads go through rag.index.chroma_direct (until it proves unusable)
        self._reader_token = ""  # the version token when the read handles were opened
        self._reader_empty = False  # the read handles were opened before the collections existed
        self._client: Any = None  # chromadb's client: for writes, and for every read of a server
        self._open()

    def _open(self) -> None:
        try:
            self._open_reader()
            self._known = self.version()
        except BackendError:
            raise
        except Exception as exc:
            raise BackendError(f"cannot open the Chroma collections: {exc} (see 'rag doctor')") from exc

    def _open_reader(self) -> None:
        """(Re)open the read handles ``_chunks``, ``_sentences`` and ``_meta``."""
        from rag.index.chroma_direct import DirectUnavailable, EmptyCollection, open_reader

        if self._direct:
            try:
                reader = self._writers_reader() or open_reader(self.data_dir / "chroma")
            except DirectUnavailable as exc:
                log.warning("%s; reading through chromadb", exc)
                self._direct = False
            else:
                names = (f"{self.name}_chunks", f"{self.name}_sentences", f"{self.name}_meta")
                colls = [reader.collection(n) if reader else EmptyCollection() for n in names]
                self._chunks, self._sentences, self._meta = colls
                self._reader_empty = any(isinstance(c, EmptyCollection) for c in colls)
                self._reader_token = self.version()
                return
        self._writer()
        self._chunks, self._sentences, self._meta = self._wchunks, self._wsentences, self._wmeta

    def _writers_reader(self) -> DirectReader | None:
        """A reader on the engine of this process's open writer, if there is one: it
        sees every write of the writer as it happens. Opening a reader of its own after
        each write loads the vector index again each time, and memory is not all given
        back when an engine is dropped: one process writing in a loop grew by about
        0.7 MB a write that way (200 writes: 317 to 454 MB)."""
        from rag.index.chroma_direct import DirectReader

        bindings = getattr(getattr(self._client, "_server", None), "bindings", None)
        return DirectReader(bindings) if bindings is not None else None

    def _writer(self) -> tuple[Any, Any, Any]:
        """chromadb's collections (chunks, sentences, meta), opened on first use."""
        if self._client is None:
            try:
                client = _client(self.data_dir, self.url)
                meta = {"hnsw:space": "cosine"}
                self._wchunks = client.get_or_create_collection(f"{self.name}_chunks", metadata=meta,
                                                                embedding_function=None)
                self._wsentences = client.get_or_create_collection(f"{self.name}_sentences", metadata=meta,
                                                                   embedding_function=None)
                self._wmeta = client.get_or_create_collection(f"{self.name}_meta", embedding_function=None)
                self._batch = max(1, min(int(client.get_max_batch_size()), 4000))
            except BackendError:
                raise
            except Exception as exc:
                raise BackendError(f"cannot open the Chroma collections: {exc} (see 'rag doctor')") from exc
            self._client = client
            # chromadb keeps each embedded index's system (its open files) for the whole
            # process unless every client of it is closed: close ours with the store
            self._closing = weakref.finalize(self, _close_client, client)
        return self._wchunks, self._wsentences, self._wmeta

    def close(self) -> None:
        """Release the index's files (also done when the store is garbage-collected)."""
        closing = getattr(self, "_closing", None)
        if closing is not None:
            closing()
        self._client = None
        self._chunks = self._sentences = self._meta = None

    def _reopen(self) -> None:
        """Open the embedded index afresh. Chroma keeps the vector index of an
        embedded store in memory, per process, and does not see what another process
        writes (its searches then miss new records or fail on deleted ones); the
        metadata it reads from SQLite is always current. Dropping this process's
        cached Chroma system makes the next client load the index from disk. Chroma's
        engine keeps a few MB of every engine a process has opened, so this is done
        only for another process's writes (see ``_fresh``)."""
        if self._client is not None:
            from chromadb.api.shared_system_client import SharedSystemClient

            ident = getattr(self._client, "_identifier", None)
            if ident is not None:  # not stopped: other handles in this process keep working until they reopen too
                SharedSystemClient._identifier_to_system.pop(ident, None)
                SharedSystemClient._identifier_to_refcount.pop(ident, None)
            self._closing.detach()  # closing the old client would release the new system of the same path
            self._client = None
        log.info("the index changed in another process: reopening it")
        self._open()

    def _fresh(self) -> None:
        """Reopen the embedded index when another process has written to it, and
        the read handles when this process has written since they were opened."""
        if self.url:
            return
        token = self.version()
        if token != self._known:
            # a write of this process may have stored its token and not yet noted it:
            # once no write runs here, a token still unknown is another process's
            with self._local_write:
                token = self.version()
                if token != self._known:
                    self._reopen()
                    return
        if self._direct and token != self._reader_token:
            self._open_reader()

    def writer_lock(self) -> AbstractContextManager[None]:
        """Writers of one embedded index take turns, across processes (a Chroma
        server serialises its own writes)."""
        if self.url:
            return nullcontext()
        return writer_lock(self.data_dir)

    def check_space(self, records: int, dim: int, partway: bool = False) -> None:
        """Refuse (``BackendError``, before anything is written) a write of ``records``
        records of ``dim``-dimension vectors that the disk of an embedded index has no
        room for (see SPACE_SAFETY); a Chroma server looks after its own disk.
        ``partway``: the write is the next batch of a run that has stored some already."""
        if self.url or records <= 0:
            return
        import shutil

        folder = self.data_dir / "chroma"
        stored = self.count_records()
        measured = (sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / stored
                    if stored >= 500 and folder.is_dir() else 0)
        per_record = max(dim * 4 * 2 + SPACE_PER_RECORD_TEXT, measured)
        needed = records * per_record * SPACE_SAFETY + SPACE_MARGIN
        free = shutil.disk_usage(folder if folder.is_dir() else self.data_dir).free
        if free < needed:
            then = ("the documents finished before are searchable, nothing more was written: free some space "
                    "and run the command again (it goes on from what was stored)" if partway else
                    "nothing was changed: free some space and run the command again")
            raise BackendError(f"not enough free disk space for the index in {self.data_dir}: writing {records} "
                               f"records needs about {needed / 2**20:.0f} MB free, {free / 2**20:.0f} MB are; "
                               + then)

    # --- reading -------------------------------------------------------------
    def count_records(self) -> int:
        """Chunks and sentences stored, of every version."""
        self._fresh()
        return int(self._chunks.count()) + int(self._sentences.count())

    @_remote
    def count(self) -> int:
        """Chunks that searches see (``/readyz`` calls this: it reopens an index
        that another process has changed, and fails on one it cannot read)."""
        self._fresh()
        if not self.live():
            return int(self._chunks.count())
        return sum(st.chunks for st in self.source_state().values())

    @_remote
    def version(self) -> str:
        """The version token: changes with every write, in any process ("" before the first)."""
        docs = self._meta.get(ids=[VERSION_ID], include=["documents"])["documents"]
        return str(docs[0]) if docs else ""

    @_remote
    def live(self) -> dict[str, str]:
        """Each managed source's visible version (its document hash; "" for none)."""
        return {s: h for s, (h, _) in self._live_records().items()}

    def _live_records(self) -> dict[str, tuple[str, str]]:
        """source -> (visible document hash, title) from the live records."""
        res = self._meta.get(where={"kind": LIVE}, include=["metadatas"])
        return {str(m["source"]): (str(m["doc_hash"]), str(m.get("title") or "")) for m in res["metadatas"] if m}

    @_remote
    def source_state(self) -> dict[str, SourceState]:
        """Every source found in either collection or the live records (orphans of
        an interrupted write included)."""
        live = self._live_records()
        counts: dict[str, dict[str, list[int]]] = {}
        for slot, coll in enumerate((self._chunks, self._sentences)):
            for page in self._pages(coll, ["metadatas"]):
                for meta in page["metadatas"]:
                    per = counts.setdefault(str(meta["source"]), {})
                    per.setdefault(str(meta["doc_hash"]), [0, 0])[slot] += 1
        return {s: SourceState(live[s][0] if s in live else None,
                               {h: (c[0], c[1]) for h, c in counts.get(s, {}).items()},
                               live[s][1] if s in live else "")
                for s in set(counts) | set(live)}

    @_remote
    def stored_ids(self, source: str, doc_hash: str) -> set[str]:
        """The ids of the chunks and sentences stored for one version of a source."""
        where = {"$and": [{"source": source}, {"doc_hash": doc_hash}]}
        return {i for coll in (self._chunks, self._sentences) for i in coll.get(where=where, include=[])["ids"]}

    @staticmethod
    def _pages(coll: Any, include: list[str], page: int = 5000,
               where: dict[str, Any] | None = None) -> Iterable[dict[str, Any]]:
        """``coll.get`` results, ``page`` records at a time."""
        offset = 0
        while True:
            res = coll.get(include=include, limit=page, offset=offset, where=where)
            if res["ids"]:
                yield res
            if len(res["ids"]) < page:
                return
            offset += page

    @_remote
    def all_chunks(self) -> list[Record]:
        """Every visible chunk."""
        live = self.live()
        return [Record(i, d or "", dict(m or {}))
                for res in self._pages(self._chunks, ["documents", "metadatas"], where=visible_where(live))
                for i, d, m in zip(res["ids"], res["documents"], res["metadatas"]) if visible(m or {}, live)]

    @_remote
    def query_chunks(self, vector: np.ndarray, n: int,
                     sources: frozenset[str] | None = None) -> list[tuple[Record, float]]:
        """The ``n`` visible chunks nearest to ``vector`` (only of ``sources``, when
        given), with their cosine similarity."""
        self._fresh()
        live = self.live()
        where = visible_where(live)
        if sources is not None:
            only: dict[str, Any] = {"source": {"$in": sorted(sources)}}
            where = {"$and": [where, only]} if where else only

        def query() -> dict[str, Any]:
            # Chroma returns fewer than n (none for an empty collection) without an error
            return self._chunks.query(query_embeddings=[vector.tolist()], n_results=n, where=where,
                                      include=["documents", "metadatas", "distances"])

        try:
            res = query()
        except Exception as exc:  # noqa: BLE001 - e.g. "Error finding id": deleted by another process just now
            if self.url:
                raise
            log.info("search failed (%s): reopening the index and searching again", exc)
            self._reopen()
            res = query()
        return [(Record(i, d or "", dict(m or {})), 1.0 - float(dist)) for i, d, m, dist in
                zip(res["ids"][0], res["documents"][0], res["metadatas"][0], res["distances"][0])
                if visible(m or {}, live)]

    @_remote
    def chunk(self, chunk_id: str) -> Record | None:
        """One visible chunk by id (None if there is none)."""
        res = self._chunks.get(ids=[chunk_id], include=["documents", "metadatas"])
        if not res["ids"] or not visible(res["metadatas"][0] or {}, self.live()):
            return None
        return Record(res["ids"][0], res["documents"][0] or "", dict(res["metadatas"][0] or {}))

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
        too: it may have changed something. A write the index refuses (a full disk,
        a file it cannot write) is one ``BackendError``: what was visible before
        still is (a new version only shows once published, see the module)."""
        with self._local_write:  # see _fresh
            try:
                yield
            except BaseException as exc:
                try:
                    self._bump()
                except Exception:  # noqa: BLE001 - the original error matters more
                    log.warning("could not update the store version after a failed write")
                if isinstance(exc, Exception) and not isinstance(exc, BackendError):
                    raise BackendError(f"the index could not be written ({exc}); what searches saw before is "
                                       "unchanged; fix the cause (free disk space?) and run the command again: "
                                       "it goes on from what was written") from exc
                raise
            self._bump()

    def _bump(self) -> None:
        token = uuid.uuid4().hex
        self._writer()[2].upsert(ids=[VERSION_ID], documents=[token], embeddings=[[1.0]])
        self._known = token
        if self._direct and self._reader_empty:  # the collections exist now: read them
            self._open_reader()

    @_remote
    def add(self, chunks: Sequence[Record], chunk_vectors: np.ndarray,
            sentences: Sequence[Record], sentence_vectors: np.ndarray) -> None:
        with self._writing():
            # sentences first: a chunk is only useful to retrieval once its evidence exists
            w_chunks, w_sentences, _ = self._writer()
            self._add(w_sentences, sentences, sentence_vectors)
            self._add(w_chunks, chunks, chunk_vectors)

    @_remote
    def publish(self, versions: dict[str, str], titles: dict[str, str] | None = None) -> None:
        """Make these versions (source -> document hash; "" for none) the visible
        ones, in one write, with their documents' titles."""
        if not versions:
            return
        items = sorted(versions.items())
        titles = titles or {}
        with self._writing():
            w_meta = self._writer()[2]
            for i in range(0, len(items), self._batch):
                part = items[i:i + self._batch]
                w_meta.upsert(ids=[f"{LIVE}:{s}" for s, _ in part], documents=[h for _, h in part],
                                  metadatas=[{"kind": LIVE, "source": s, "doc_hash": h, "title": titles.get(s, "")}
                                             for s, h in part],
                                  embeddings=[[1.0]] * len(part))

    @_remote
    def unpublish(self, sources: Iterable[str]) -> None:
        """Forget the live records of sources that no longer have any record."""
        ids = [f"{LIVE}:{s}" for s in sources]
        if ids:
            with self._writing():
                self._writer()[2].delete(ids=ids)

    @_remote
    def delete_other_versions(self, versions: dict[str, str]) -> None:
        """Delete every record of these sources that is not of the given version."""
        if not versions:
            return
        with self._writing():
            for source, h in sorted(versions.items()):
                where = {"$and": [{"source": source}, {"doc_hash": {"$ne": h}}]}
                for coll in self._writer()[:2]:
                    coll.delete(where=where)

    @_remote
    def delete_sources(self, sources: Iterable[str]) -> None:
        srcs = list(sources)
        if srcs:  # chunks first: a source stays visible (and removable) until its last record is gone
            with self._writing():
                w_chunks, w_sentences, _ = self._writer()
                w_chunks.delete(where={"source": {"$in": srcs}})
                w_sentences.delete(where={"source": {"$in": srcs}})

    @_remote
    def delete_ids(self, chunk_ids: Sequence[str], sentence_ids: Sequence[str]) -> None:
        if not chunk_ids and not sentence_ids:
            return
        with self._writing():
            for coll, ids in zip(self._writer()[:2], (chunk_ids, sentence_ids)):
                for i in range(0, len(ids), self._batch):
                    coll.delete(ids=list(ids[i:i + self._batch]))


LOCK_FILE = "write.lock"


@contextmanager
def writer_lock(data_dir: Path) -> Iterator[None]:
    """Hold the index's writer lock (an OS file lock in the data folder), waiting
    for another process that holds it, and saying so."""
    from filelock import FileLock, Timeout

    data_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(data_dir / LOCK_FILE))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        log.warning("another process is writing to the index in %s: waiting for it to finish", data_dir)
        lock.acquire()
    try:
        yield
    finally:
        lock.release()
