"""``rag doctor``: check an index, and make it again from what it was made from
(``rag.ingest.originals``) when it is damaged."""

from __future__ import annotations

import logging
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from rag.ingest import originals

if TYPE_CHECKING:
    from rag.settings import Settings

log = logging.getLogger(__name__)

CHROMA = "chroma"  # the embedded index's folder in the data folder (rag.index.store)
SQLITE = "chroma.sqlite3"


@dataclass
class Health:
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, object]:
        return {"ok": self.ok, "problems": self.problems, "notes": self.notes}


@dataclass
class Rebuilt:
    moved_to: str | None
    folders: int
    uploads: int
    chunks: int
    missing: list[str] = field(default_factory=list)  # recorded folders that are gone
    failed: list[str] = field(default_factory=list)  # kept uploads that could not be read again

    def to_dict(self) -> dict[str, object]:
        return {"moved_to": self.moved_to, "folders": self.folders, "uploads": self.uploads, "chunks": self.chunks,
                "missing": self.missing, "failed": self.failed}


def _sqlite_problem(path: Path) -> str | None:
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
        try:
            rows = con.execute("PRAGMA quick_check").fetchall()
        finally:
            con.close()
    except sqlite3.Error as exc:
        return f"{path} cannot be read: {exc}"
    if rows != [("ok",)]:
        return f"{path} is damaged: " + "; ".join(str(r[0]) for r in rows[:3])
    return None


def check(settings: "Settings") -> Health:
    """What is wrong with the index in ``settings.data_dir`` (nothing when there is none yet)."""
    from rag.index.store import ChromaStore, chroma_message

    data = Path(settings.data_dir)
    health = Health()
    sqlite_file = data / CHROMA / SQLITE
    if settings.chroma_url:
        health.notes.append(f"the index is on the Chroma server at {settings.chroma_url}")
    elif not sqlite_file.is_file():
        health.notes.append(f"no index in {data} yet")
        return health
    elif problem := _sqlite_problem(sqlite_file):
        health.problems.append(problem)
    if health.ok:
        try:
            store = ChromaStore(data, settings.collection, settings.chroma_url)
            states = store.source_state()
            health.notes.append(f"{len(states)} documents, {store.count()} chunks searchable")
            for name, coll in (("chunks", store._chunks), ("sentences", store._sentences)):
                sample = coll.get(limit=1, include=["embeddings"])
                if sample["ids"]:
                    coll.query([list(sample["embeddings"][0])], n_results=3, include=["distances"])
                    health.notes.append(f"the vector index of the {name} answers")
            half = sorted(s for s, st in states.items() if len(st.versions) > 1 or (st.live and st.live not in st.versions))
            if half:
                health.notes.append(f"{len(half)} documents hold the remains of an interrupted write (the next "
                                    f"'rag ingest' of them repairs it): {', '.join(half[:5])}")
            store.close()
        except Exception as exc:  # noqa: BLE001 - any failure to read is the finding
            health.problems.append(f"the index cannot be read: {chroma_message(exc)}")
    kept = originals.uploads(data)
    folders = originals.ingested(data)
    gone = [f.path for f in folders if not Path(f.path).exists()]
    health.notes.append(f"kept for a rebuild: {len(folders)} ingested folders or files"
                        + (f" ({len(gone)} no longer there)" if gone else "") + f", {len(kept)} uploads")
    health.notes.append(ocr_note(settings))
    return health


def ocr_note(settings: "Settings") -> str:
    """Whether scanned PDF pages can be read (Tesseract and the language asked for)."""
    from rag.ingest.parsers.ocr import INSTALL_HINT, OcrOptions, language_hint, missing_language, tesseract_version

    version = tesseract_version(settings.ocr_tesseract)
    if version is None:
        return f"scanned PDF pages cannot be read (no Tesseract): {INSTALL_HINT}"
    lang = missing_language(OcrOptions(lang=settings.ocr_lang, tesseract=settings.ocr_tesseract))
    if lang is not None:
        return f"scanned PDF pages cannot be read: {language_hint(lang)}"
    return f"scanned PDF pages are read by OCR: Tesseract {version} ({settings.ocr_lang})"


def check_model(settings: "Settings") -> Health:
    """Whether the answering model works: the model in this process is loaded and
    decoded in a child process (``rag.answer.model_check``: a crash there is one line); an
    LLM server (``RAG_LLM_URL``) is asked for one token."""
    from rag.errors import RagError
    from rag.answer.model_check import run_check

    health = Health()
    if not settings.use_llm:
        health.notes.append("the model is not used (RAG_USE_LLM=false): answers are extractive")
    elif settings.llm_url:
        from rag.engine import Rag

        try:
            took = Rag(settings).decode_once()
            health.notes.append(f"the LLM server at {settings.llm_url} answers (one token in {took:.2f} s)")
        except RagError as exc:
            health.problems.append(exc.message)
    else:
        result = run_check(settings)
        (health.notes if result.ok else health.problems).append(result.summary)
    _check_ranker(settings, health)
    return health


def _check_ranker(settings: "Settings", health: Health) -> None:
    """The learned ranker's files match their hashes, and it scores a pair."""
    import time

    from rag.errors import RagError

    if not settings.ranker:
        health.notes.append("the learned ranker is off (RAG_RANKER=false, the default): evidence is ranked by "
                            "the signals alone")
        return
    from rag.answer.ranker import default_files, load_ranker

    try:
        t0 = time.perf_counter()
        ranker = load_ranker(default_files())
        ranker.scores("Does it work?", ["It works."])
        health.notes.append(f"the learned ranker's files match their sha256 and it scores "
                            f"({time.perf_counter() - t0:.2f} s to load and score a pair)")
    except RagError as exc:
        health.problems.append(exc.message)


def rebuild(settings: "Settings", engine_factory=None) -> Rebuilt:  # noqa: ANN001 - Callable[[Settings], Rag]
    """Move the embedded index aside (``chroma.damaged-<time>``) and make it again:
    every recorded ``rag ingest`` path (with its prefix) and every kept upload."""
    from rag.engine import Rag
    from rag.errors import RagError
    from rag.ingest.loaders import parse_document

    if settings.chroma_url:
        raise RagError("rebuild works on the embedded index; a Chroma server keeps its own data")
    data = Path(settings.data_dir)
    moved = None
    if (data / CHROMA).exists():
        target = data / f"{CHROMA}.damaged-{time.strftime('%Y%m%d-%H%M%S')}"
        (data / CHROMA).rename(target)
        moved = str(target)
        log.warning("moved the old index to %s", target)
    engine = (engine_factory or Rag)(settings)
    result = Rebuilt(moved, 0, 0, 0)
    for entry in originals.ingested(data):
        if not Path(entry.path).exists():
            result.missing.append(entry.path)
            continue
        engine.ingestor.ingest_paths([Path(entry.path)], prefix=entry.prefix)
        result.folders += 1
    docs = []
    for source, path in originals.uploads(data):
        try:
            raw = path.read_bytes()
            docs.append(parse_document(raw, source, [], ocr=engine.ingestor.ocr))
        except (OSError, RagError) as exc:
            result.failed.append(f"{source}: {getattr(exc, 'message', None) or exc}")
    if docs:
        engine.ingestor.ingest_documents(docs)
        result.uploads = len(docs)
    result.chunks = engine.store.count()
    engine.close()
    return result
