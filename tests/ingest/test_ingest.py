"""Ingestion into real Chroma with the real embedder: idempotent, exact
replacement of changed sources, removal, pruning, and all-or-nothing writes."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rag.engine import Rag
from rag.errors import BackendError, IngestError, InputError, InvalidSourceError, NotFoundError
from rag.ingest.document import Document
from rag.ingest.document import validate_source
from rag.ingest.ingestor import IngestReport, build_records, doc_hash
from rag.ingest.loaders import Skipped, parse_string
from rag.settings import Settings
from rag.index.store import ChromaStore

SEEDS = Path(__file__).resolve().parents[2] / "seeds"
SEED_NAMES = sorted(p.name for p in SEEDS.glob("*.txt"))


class CachedEmbedder:
    """The real embedder, memoised per text so that re-ingesting the same texts in
    many tests costs one real embedding each."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = inner.name
        self.dim = inner.dim
        self.cache: dict[str, np.ndarray] = {}

    def embed(self, texts: list[str]) -> np.ndarray:
        missing = [t for t in dict.fromkeys(texts) if t not in self.cache]
        if missing:
            self.cache.update(zip(missing, self.inner.embed(missing)))
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self.cache[t] for t in texts]).astype(np.float32)


class CountingEmbedder:
    """Counts calls and texts around another embedder."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = inner.name
        self.dim = inner.dim
        self.calls = 0
        self.texts = 0

    def embed(self, texts: list[str]) -> np.ndarray:
        self.calls += 1
        self.texts += len(texts)
        return self.inner.embed(texts)


class FaultyStore(ChromaStore):
    """The real Chroma store, with one write made to fail on demand."""

    def __init__(self, data_dir: Path, fail: str = "", exc: type[BaseException] = RuntimeError) -> None:
        super().__init__(data_dir)
        self.fail = fail  # "", "second_add" or "publish" (the first that makes a document visible)
        self.exc = exc
        self.adds = 0
        self.failed = False

    def _add(self, coll: Any, records: Any, vectors: np.ndarray) -> None:
        self.adds += 1
        if self.fail == "second_add" and self.adds == 2:
            self.fail, self.failed = "", True
            raise self.exc("injected failure in the second write")
        super()._add(coll, records, vectors)

    def publish(self, versions: dict[str, str], titles: dict[str, str] | None = None) -> None:
        if self.fail == "publish" and any(versions.values()):
            self.fail, self.failed = "", True
            raise self.exc("injected failure while publishing")
        super().publish(versions, titles)


@pytest.fixture(scope="module")
def cached(embedder: Any) -> CachedEmbedder:
    return CachedEmbedder(embedder)


@pytest.fixture
def counting(cached: CachedEmbedder) -> CountingEmbedder:
    return CountingEmbedder(cached)


def make_engine(data_dir: Path, embedder: Any, store: Any = None) -> Rag:
    return Rag(Settings(data_dir=data_dir), embedder=embedder, store=store)


def dump(store: ChromaStore) -> dict[str, dict[str, tuple[str, tuple[tuple[str, Any], ...]]]]:
    """Everything in both collections: id -> (document, metadata)."""
    out = {}
    for name, coll in (("chunks", store._chunks), ("sentences", store._sentences)):
        res = coll.get(include=["documents", "metadatas"])
        out[name] = {i: (d, tuple(sorted(m.items()))) for i, d, m in
                     zip(res["ids"], res["documents"], res["metadatas"])}
    return out


def vectors(store: ChromaStore) -> dict[str, dict[str, np.ndarray]]:
    out = {}
    for name, coll in (("chunks", store._chunks), ("sentences", store._sentences)):
        res = coll.get(include=["embeddings"])
        out[name] = {i: np.asarray(e, dtype=np.float32) for i, e in zip(res["ids"], res["embeddings"])}
    return out


def assert_same_vectors(a: dict[str, dict[str, np.ndarray]], b: dict[str, dict[str, np.ndarray]],
                        exact: bool = False) -> None:
    for kind in ("chunks", "sentences"):
        assert set(a[kind]) == set(b[kind])
        for i, vec in a[kind].items():
            if exact:
                assert np.array_equal(vec, b[kind][i]), i
            else:
                np.testing.assert_allclose(vec, b[kind][i], rtol=0, atol=1e-6)


def ids_by_source(snapshot: dict[str, dict[str, Any]], kind: str = "chunks") -> dict[str, set[str]]:
    out: dict[str, set[str]] = defaultdict(set)
    for i, (_, meta) in snapshot[kind].items():
        out[dict(meta)["source"]].add(i)
    return dict(out)


def expected_ids(source: str, text: str) -> tuple[set[str], set[str]]:
    chunks, sentences = build_records(parse_string(text, source), 600)
    return {c.id for c in chunks}, {s.id for s in sentences}


def check_consistent(store: ChromaStore, files: dict[str, str]) -> None:
    """The index holds exactly the chunks and sentences of ``files`` (source -> text)."""
    snap = dump(store)
    chunks_of, sentences_of = ids_by_source(snap, "chunks"), ids_by_source(snap, "sentences")
    assert set(chunks_of) == set(files) == set(sentences_of)
    for source, text in files.items():
        chunk_ids, sentence_ids = expected_ids(source, text)
        assert chunks_of[source] == chunk_ids, source
        assert sentences_of[source] == sentence_ids, source
    parsed = {source: parse_string(text, source).text for source, text in files.items()}
    for cid, (doc, meta) in snap["chunks"].items():
        m = dict(meta)
        assert parsed[m["source"]][m["start"]:m["end"]] == doc
        assert m["doc_hash"] == doc_hash(parsed[m["source"]])
    for sid, (doc, meta) in snap["sentences"].items():
        m = dict(meta)
        assert m["chunk_id"] in snap["chunks"], f"orphan sentence {sid}"
        assert parsed[m["source"]][m["start"]:m["end"]] == doc


def corpus_files(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): p.read_text(encoding="utf-8")
            for p in sorted(folder.rglob("*.txt"))}


def test_ingesting_twice_reports_unchanged_and_embeds_nothing(tmp_path: Path, corpus: Path,
                                                              counting: CountingEmbedder) -> None:
    engine = make_engine(tmp_path / "data", counting)
    report, warnings = engine.ingestor.ingest_paths([corpus], prefix="")
    files = corpus_files(corpus)
    n_chunks = sum(len(expected_ids(s, t)[0]) for s, t in files.items())
    n_sentences = sum(len(expected_ids(s, t)[1]) for s, t in files.items())
    assert report == IngestReport(added=5, updated=0, unchanged=0, removed=0, chunks=n_chunks)
    assert warnings == []
    records = [build_records(parse_string(t, s), 600) for s, t in files.items()]
    texts = {r.indexed_text for chunks, _ in records for r in chunks} | {r.text for _, sents in records for r in sents}
    assert counting.texts == len(texts) < n_chunks + n_sentences  # each distinct text embedded once
    check_consistent(engine.store, files)
    before = dump(engine.store)
    vectors_before = vectors(engine.store)

    counting.calls = counting.texts = 0
    again, _ = engine.ingestor.ingest_paths([corpus], prefix="")
    assert again.to_dict() == {"added": 0, "updated": 0, "unchanged": 5, "migrated": 0, "removed": 0, "skipped": [],
                               "chunks": n_chunks, "ocr_pages": 0}
    assert (counting.calls, counting.texts) == (0, 0)
    assert dump(engine.store) == before
    assert_same_vectors(vectors(engine.store), vectors_before, exact=True)

    # a new process on the same index sees the same state
    reopened = make_engine(tmp_path / "data", counting)
    third, _ = reopened.ingestor.ingest_paths([corpus], prefix="")
    assert (third.unchanged, third.added, counting.calls) == (5, 0, 0)
    assert reopened.ingestor.list_sources() == sorted((s, len(expected_ids(s, t)[0])) for s, t in files.items())


def test_progress_is_reported_up_to_every_record(tmp_path: Path, corpus: Path,
                                                counting: CountingEmbedder) -> None:
    seen: list[tuple[int, int]] = []
    engine = make_engine(tmp_path / "data", counting)
    engine.ingestor.ingest_paths([corpus / SEED_NAMES[0]], progress=lambda d, t: seen.append((d, t)), prefix="")
    chunks, sentences = expected_ids(SEED_NAMES[0], (corpus / SEED_NAMES[0]).read_text(encoding="utf-8"))
    assert seen and seen[-1] == (len(chunks) + len(sentences),) * 2
    assert 0 < counting.texts <= len(chunks) + len(sentences)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_a_changed_file_replaces_exactly_its_old_chunks(tmp_path: Path, corpus: Path,
                                                        counting: CountingEmbedder) -> None:
    engine = make_engine(tmp_path / "data", counting)
    engine.ingestor.ingest_paths([corpus], prefix="")
    before = dump(engine.store)
    old_chunks = ids_by_source(before)

    target = SEED_NAMES[2]  # the longest seed: shrinking it leaves fewer chunks
    old_text = (corpus / target).read_text(encoding="utf-8")
    new_text = old_text[: len(old_text) // 3].rstrip() + "\n\nThe quokka parade starts at noon on Tuesday."
    (corpus / target).write_text(new_text, encoding="utf-8")
    counting.calls = counting.texts = 0

    report, _ = engine.ingestor.ingest_paths([corpus], prefix="")
    assert (report.added, report.updated, report.unchanged, report.removed) == (0, 1, 4, 0)

    after = dump(engine.store)
    new_chunks = ids_by_source(after)
    files = corpus_files(corpus)
    check_consistent(engine.store, files)
    chunk_ids, sentence_ids = expected_ids(target, new_text)
    assert new_chunks[target] == chunk_ids
    assert len(chunk_ids) < len(old_chunks[target])
    for other in SEED_NAMES:
        if other != target:
            assert new_chunks[other] == old_chunks[other]
            for kind in ("chunks", "sentences"):
                assert {i: v for i, v in after[kind].items() if dict(v[1])["source"] == other} == \
                       {i: v for i, v in before[kind].items() if dict(v[1])["source"] == other}
    assert report.chunks == len(after["chunks"]) == sum(len(v) for v in new_chunks.values())
    # only what was not stored before is embedded (chunks and sentences of the new text)
    assert 0 < counting.texts <= len(chunk_ids) + len(sentence_ids)
    # retrieval sees the new text, not the old
    hits = engine.search("quokka parade", 3).hits
    assert hits[0].source == target and "quokka parade" in hits[0].text
    assert all(h.chunk_id in after["chunks"] for h in engine.search(old_text[-200:], 10).hits)


def test_remove_and_list_sources(tmp_path: Path, corpus: Path, counting: CountingEmbedder) -> None:
    engine = make_engine(tmp_path / "data", counting)
    assert engine.ingestor.list_sources() == []
    engine.ingestor.ingest_paths([corpus], prefix="")
    files = corpus_files(corpus)
    listed = engine.ingestor.list_sources()
    assert listed == sorted((s, len(expected_ids(s, t)[0])) for s, t in files.items())

    gone = SEED_NAMES[1]
    assert engine.ingestor.remove(gone) == dict(listed)[gone]
    assert [s for s, _ in engine.ingestor.list_sources()] == [s for s in SEED_NAMES if s != gone]
    check_consistent(engine.store, {s: t for s, t in files.items() if s != gone})
    assert all(h.source != gone for h in engine.search("Meta Llama national security", 20).hits)

    with pytest.raises(NotFoundError, match=gone):
        engine.ingestor.remove(gone)
    with pytest.raises(NotFoundError, match="nosuch"):
        engine.ingestor.remove("nosuch")


def test_prune_removes_only_sources_not_given(tmp_path: Path, corpus: Path, counting: CountingEmbedder) -> None:
    engine = make_engine(tmp_path / "data", counting)
    engine.ingestor.ingest_paths([corpus], prefix="")
    files = corpus_files(corpus)

    without, _ = engine.ingestor.ingest_paths([corpus / SEED_NAMES[0]], prefix="")
    assert (without.unchanged, without.removed) == (1, 0)
    assert len(engine.ingestor.list_sources()) == 5

    keep = SEED_NAMES[:2]
    (corpus / keep[1]).write_text(files[keep[1]] + "\nAn added closing line.", encoding="utf-8")
    pruned, _ = engine.ingestor.ingest_paths([corpus / keep[0], corpus / keep[1]], prune=True, prefix="")
    assert pruned.to_dict() == {"added": 0, "updated": 1, "unchanged": 1, "migrated": 0, "removed": 3,
                                "skipped": [], "chunks": engine.store.count(), "ocr_pages": 0}
    assert [s for s, _ in engine.ingestor.list_sources()] == keep
    check_consistent(engine.store, {keep[0]: files[keep[0]],
                                    keep[1]: (corpus / keep[1]).read_text(encoding="utf-8")})


@pytest.mark.parametrize("source", ["a.txt", "sub/a.txt", "deep/er/b.md", "a b.txt", "x..y.txt",
                                    "\u00fcn\u00efc\u00f6d\u00e9.txt", "a" * 512])
def test_validate_source_accepts_relative_names(source: str) -> None:
    assert validate_source(source) == source


@pytest.mark.parametrize("source", ["", "..", "../a.txt", "a/../b.txt", "sub/..", ".", "./a.txt",
                                    "/etc/passwd", "/a.txt", "a\\b.txt", "..\\a.txt", "a\x00b.txt",
                                    "a\nb.txt", "a\tb.txt", "a\x1fb", "C:/x.txt", "a//b.txt", "a/",
                                    "a" * 513])
def test_validate_source_rejects_unsafe_names(source: str) -> None:
    with pytest.raises(InvalidSourceError) as info:
        validate_source(source)
    assert isinstance(info.value, InputError)


def test_ingesting_an_invalid_source_writes_and_embeds_nothing(tmp_path: Path, counting: CountingEmbedder) -> None:
    engine = make_engine(tmp_path / "data", counting)
    with pytest.raises(InvalidSourceError):
        engine.ingestor.ingest_documents([Document("ok.txt", "Fine text."), Document("../evil.txt", "Bad.")])
    assert engine.store.count() == 0
    assert counting.calls == 0


def change_corpus(corpus: Path) -> None:
    """Shrink one seed, edit another, add a new file."""
    a, b = corpus / SEED_NAMES[2], corpus / SEED_NAMES[3]
    a.write_text(a.read_text(encoding="utf-8")[:800], encoding="utf-8")
    text = b.read_text(encoding="utf-8")
    b.write_text(text[:300] + " An inserted sentence about harbour cranes. " + text[300:], encoding="utf-8")
    (corpus / "new").mkdir()
    (corpus / "new" / "extra.md").write_text("# Extra\n\nA brand new document about lighthouses.", encoding="utf-8")


def visible_state(engine: Rag) -> tuple[list[tuple[str, int]], dict[str, str]]:
    """What searches can see: the listed documents and every visible chunk."""
    return engine.ingestor.list_sources(), {r.id: r.text for r in engine.store.all_chunks()}


def _disk_full(message: str) -> OSError:
    return OSError(28, f"No space left on device ({message})")


@pytest.mark.parametrize("exc", [RuntimeError, KeyboardInterrupt, _disk_full])
@pytest.mark.parametrize("fail", ["publish", "second_add"])
def test_a_failure_while_writing_leaves_what_searches_see_as_before(
        tmp_path: Path, corpus: Path, counting: CountingEmbedder, fail: str, exc: Any) -> None:
    store = FaultyStore(tmp_path / "data", exc=exc)
    engine = make_engine(tmp_path / "data", counting, store=store)
    engine.ingestor.ingest_paths([corpus], prefix="")
    before = visible_state(engine)
    stored = store._chunks.count() + store._sentences.count()
    engine.search("Meta Llama", 5)  # builds the lexical cache

    change_corpus(corpus)
    engine.ingestor.batch_records = 40  # several batches
    store.fail = fail
    store.adds = 0
    # inside a write the index refuses (a full disk...) it is one BackendError saying what to do
    expected = BackendError if fail == "second_add" and exc is not KeyboardInterrupt else \
        OSError if exc is _disk_full else exc
    with pytest.raises(expected, match="injected") as raised:
        engine.ingestor.ingest_paths([corpus], prefix="")
    if expected is BackendError:
        assert "unchanged" in raised.value.message and "run the command again" in raised.value.message
    assert store.failed
    assert store._chunks.count() + store._sentences.count() > stored  # finished batches are stored ...
    assert visible_state(engine) == before  # ... and invisible
    assert {h.chunk_id for h in engine.search("harbour cranes lighthouses", 10).hits} <= set(before[1])

    # the same command succeeds once the fault is gone, embedding only what was not stored
    embedded = counting.texts
    counting.texts = 0
    report, _ = engine.ingestor.ingest_paths([corpus], prefix="")
    assert (report.added, report.updated, report.unchanged) == (1, 2, 3)
    assert counting.texts < embedded
    check_consistent(store, {**corpus_files(corpus), "new/extra.md": (corpus / "new" / "extra.md").read_text()})


def test_a_binary_file_among_good_ones_is_skipped_and_strict_writes_nothing(tmp_path: Path, corpus: Path,
                                                                            counting: CountingEmbedder) -> None:
    engine = make_engine(tmp_path / "data", counting)
    engine.ingestor.ingest_paths([corpus], prefix="")
    before = dump(engine.store)
    vectors_before = vectors(engine.store)

    change_corpus(corpus)
    (corpus / "zz_binary.txt").write_bytes(b"GIF89a\x00\x01\x00\x01binary")
    counting.calls = 0
    with pytest.raises(IngestError, match=r"strict: nothing written, 1 file\(s\) would be skipped: "
                                          r"zz_binary.txt \(looks like a binary file"):
        engine.ingestor.ingest_paths([corpus], prune=True, prefix="", strict=True)
    assert counting.calls == 0
    assert dump(engine.store) == before
    assert_same_vectors(vectors(engine.store), vectors_before, exact=True)

    fresh = make_engine(tmp_path / "fresh", counting)
    with pytest.raises(IngestError, match="strict"):
        fresh.ingestor.ingest_paths([corpus], prefix="", strict=True)
    assert fresh.store.count() == 0 and fresh.ingestor.list_sources() == []

    report, _ = engine.ingestor.ingest_paths([corpus], prune=True, prefix="")
    assert (report.added, report.updated, report.unchanged, report.removed) == (1, 2, 3, 0)
    assert report.skipped == [Skipped("zz_binary.txt", "looks like a binary file (NUL bytes), not text")]
    good = {s: t for s, t in corpus_files(corpus).items() if s != "zz_binary.txt"}
    check_consistent(engine.store, {**good, "new/extra.md": (corpus / "new" / "extra.md").read_text()})


def test_an_empty_file_is_skipped_and_not_indexed(tmp_path: Path, counting: CountingEmbedder) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "empty.txt").write_text("  \n", encoding="utf-8")
    (docs / "full.txt").write_text("The lighthouse keeper logs every ship.", encoding="utf-8")
    engine = make_engine(tmp_path / "data", counting)
    report, warnings = engine.ingestor.ingest_paths([docs], prefix="")
    assert (report.added, report.chunks) == (1, 1)
    assert report.skipped == [Skipped("empty.txt", "no text (empty)")] and warnings == []
    assert engine.ingestor.list_sources() == [("full.txt", 1)]


def test_on_change_runs_after_every_write(tmp_path: Path, corpus: Path, counting: CountingEmbedder) -> None:
    engine = make_engine(tmp_path / "data", counting)
    generation: Callable[[], int] = lambda: engine.lexical.generation  # noqa: E731
    start = generation()
    engine.ingestor.ingest_paths([corpus / SEED_NAMES[4]], prefix="")
    assert generation() == start + 1
    engine.ingestor.ingest_paths([corpus / SEED_NAMES[4]], prefix="")
    assert generation() == start + 1  # nothing written, nothing to invalidate
    engine.ingestor.remove(SEED_NAMES[4])
    assert generation() == start + 2


@pytest.mark.parametrize("cut", ["half_of_the_sentences", "sentences_only", "half_of_the_chunks"])
def test_the_remains_of_an_interrupted_write_are_repaired(tmp_path: Path, corpus: Path, embedder: Any,
                                                          cut: str) -> None:
    """What a kill -9 in the middle of ``store.add`` leaves behind (part of a
    document's records) is rewritten by the next ingest, never kept as 'unchanged'."""
    from rag.ingest.ingestor import build_records

    engine = make_engine(tmp_path / "data", embedder)
    path = corpus / SEED_NAMES[0]
    doc = Document(SEED_NAMES[0], path.read_text(encoding="utf-8"))
    chunks, sentences = build_records(doc, 600)
    dim = embedder.dim
    keep_s = sentences[: len(sentences) // 2] if cut == "half_of_the_sentences" else sentences
    keep_c = chunks[: len(chunks) // 2] if cut == "half_of_the_chunks" else []
    engine.store.add(keep_c, np.zeros((len(keep_c), dim), np.float32) + 0.1,
                     keep_s, np.zeros((len(keep_s), dim), np.float32) + 0.1)
    report, _ = engine.ingestor.ingest_paths([path], prefix="")
    assert report.unchanged == 0 and report.added + report.updated == 1
    check_consistent(engine.store, {SEED_NAMES[0]: doc.text})
    again, _ = engine.ingestor.ingest_paths([path], prefix="")
    assert again.unchanged == 1


def test_orphan_sentences_of_a_removed_document_stay_removable(tmp_path: Path, corpus: Path, embedder: Any) -> None:
    from rag.ingest.ingestor import build_records

    engine = make_engine(tmp_path / "data", embedder)
    doc = Document("gone.txt", (corpus / SEED_NAMES[1]).read_text(encoding="utf-8"))
    _, sentences = build_records(doc, 600)
    engine.store.add([], np.zeros((0, embedder.dim), np.float32),
                     sentences, np.zeros((len(sentences), embedder.dim), np.float32) + 0.1)
    assert engine.ingestor.list_sources() == []  # no chunks: not listed
    engine.ingestor.remove("gone.txt")  # but found and cleaned up
    assert engine.store.source_state() == {}
