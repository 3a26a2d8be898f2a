"""``rag.index.chroma_direct`` reads an embedded index exactly as ``chromadb``'s own
client does (same engine, same files), and ``ChromaStore`` reads through it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import chromadb
import numpy as np
import pytest

from rag.index.chroma_direct import DirectCollection, EmptyCollection, open_reader
from rag.ingest.loaders import Document
from rag.engine import Rag
from rag.settings import Settings
from rag.index.store import ChromaStore

NAMES = ("rag_chunks", "rag_sentences", "rag_meta")


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory, embedder: Any) -> Path:
    data = tmp_path_factory.mktemp("direct")
    engine = Rag(Settings(data_dir=data), embedder=embedder)
    engine.ingestor.ingest_documents([
        Document("a.txt", "The ferry leaves at seven. It is always on time. Tickets are sold on board."),
        Document("b.txt", "The bakery sells bread. Its rye loaf is baked at dawn."),
        Document("c.txt", "The museum opens at ten on Sundays. Entry is free for children.")])
    return data


def both(data: Path, name: str) -> tuple[DirectCollection, Any]:
    reader = open_reader(data / "chroma")
    assert reader is not None
    direct = reader.collection(name)
    assert isinstance(direct, DirectCollection)
    client = chromadb.PersistentClient(path=str(data / "chroma"),
                                       settings=chromadb.config.Settings(anonymized_telemetry=False))
    return direct, client.get_collection(name)


@pytest.mark.parametrize("name", NAMES)
def test_get_and_count_equal_chromadbs(index: Path, name: str) -> None:
    direct, official = both(index, name)
    assert direct.count() == official.count() > 0
    include = ["documents", "metadatas", "embeddings"]
    ours, theirs = direct.get(include=include), official.get(include=include)
    assert ours["ids"] == theirs["ids"]
    assert ours["documents"] == theirs["documents"] and ours["metadatas"] == theirs["metadatas"]
    np.testing.assert_array_equal(np.asarray(ours["embeddings"]), np.asarray(theirs["embeddings"]))
    if name != "rag_meta":
        where = {"source": {"$in": ["b.txt", "c.txt"]}}
        assert direct.get(where=where, limit=2, offset=1, include=[])["ids"] == \
            official.get(where=where, limit=2, offset=1, include=[])["ids"]


@pytest.mark.parametrize("name", NAMES[:2])
def test_query_equals_chromadbs(index: Path, name: str, embedder: Any) -> None:
    direct, official = both(index, name)
    vector = embedder.embed(["When does the ferry leave?"])[0].tolist()
    for where in (None, {"source": {"$nin": ["a.txt"]}}):
        ours = direct.query([vector], n_results=4, where=where, include=["documents", "metadatas", "distances"])
        theirs = official.query(query_embeddings=[vector], n_results=4, where=where,
                                include=["documents", "metadatas", "distances"])
        assert ours["ids"] == theirs["ids"] and ours["documents"] == theirs["documents"]
        np.testing.assert_allclose(ours["distances"], theirs["distances"], rtol=1e-6)


def test_no_index_yet_reads_as_empty_and_creates_nothing(tmp_path: Path) -> None:
    assert open_reader(tmp_path / "chroma") is None
    store = ChromaStore(tmp_path / "data")
    assert store.count() == 0 and store.version() == "" and store.all_chunks() == []
    assert not (tmp_path / "data" / "chroma").exists()
    assert isinstance(EmptyCollection().query([[0.0]], 3)["ids"], list)


def test_the_question_path_never_imports_chromadbs_client(tmp_path: Path, index: Path) -> None:
    import subprocess
    import sys

    code = ("import sys; from rag.index.store import ChromaStore; s = ChromaStore(sys.argv[1]); "
            "import numpy as np; v = np.ones(384, np.float32) / 384 ** .5; "
            "assert s.query_chunks(v, 3) and s.all_chunks() and s.version(); "
            "assert 'chromadb' not in sys.modules, 'chromadb imported'")
    proc = subprocess.run([sys.executable, "-c", code, str(index)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_a_write_in_the_same_process_is_read_at_once(tmp_path: Path, embedder: Any) -> None:
    engine = Rag(Settings(data_dir=tmp_path / "data"), embedder=embedder)
    assert engine.search("ferry").hits == []  # read handles opened on no index at all
    engine.ingestor.ingest_documents([Document("a.txt", "The ferry leaves at seven.")])
    assert [h.source for h in engine.search("When does the ferry leave?").hits] == ["a.txt"]
    engine.ingestor.ingest_documents([Document("b.txt", "The bakery sells rye bread.")])
    assert "b.txt" in {h.source for h in engine.search("Who sells rye bread?").hits}
    engine.ingestor.remove("a.txt")
    assert {h.source for h in engine.search("When does the ferry leave?").hits} == {"b.txt"}


def test_after_a_write_reads_go_through_the_writers_engine(tmp_path: Path, embedder: Any) -> None:
    # one engine per process once it writes: opening a reader of its own after each
    # write loaded the vector index again each time (~0.7 MB a write that Chroma kept)
    engine = Rag(Settings(data_dir=tmp_path / "data"), embedder=embedder)
    store = engine.store
    assert isinstance(store, ChromaStore)
    for i in range(3):
        engine.ingestor.ingest_documents([Document("a.txt", f"The ferry leaves at {i + 7}.")])
        assert engine.search("When does the ferry leave?").hits[0].text == f"The ferry leaves at {i + 7}."
        writer = store._client._server.bindings
        assert all(c._b is writer for c in (store._chunks, store._sentences, store._meta))


def test_reads_during_this_processs_writes_never_reopen_the_index(tmp_path: Path, embedder: Any,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # a read between a write's storing its version token and noting it took the token
    # for another process's and reloaded the whole index (4 times in 90 s of a soak,
    # a few MB each that Chroma's engine never gives back)
    import threading

    engine = Rag(Settings(data_dir=tmp_path / "data"), embedder=embedder)
    engine.ingestor.ingest_documents([Document("a.txt", "The ferry leaves at seven.")])
    store = engine.store
    assert isinstance(store, ChromaStore)
    reopened: list[str] = []
    real_reopen = ChromaStore._reopen
    monkeypatch.setattr(ChromaStore, "_reopen",
                        lambda self: (reopened.append(threading.current_thread().name), real_reopen(self)))
    done = threading.Event()
    reads = [0]

    def read() -> None:
        while not done.is_set():
            store.count()
            reads[0] += 1

    readers = [threading.Thread(target=read, name=f"reader{i}") for i in range(3)]
    for t in readers:
        t.start()
    try:
        for i in range(40):
            engine.ingestor.ingest_documents([Document("b.txt", f"The bakery opens at {i}.")])
    finally:
        done.set()
        for t in readers:
            t.join()
    assert reads[0] > 40 and reopened == []
    # another process's write is still noticed: the index is reopened once
    other = ChromaStore(tmp_path / "data")
    other.delete_sources(["b.txt"])
    store.count()
    assert reopened == ["MainThread"]
    assert {h.source for h in engine.search("When does the bakery open?").hits} == {"a.txt"}


def test_engines_that_are_closed_or_dropped_release_the_index_files(tmp_path: Path, embedder: Any) -> None:
    import gc
    import os

    def open_files() -> int:
        return len(os.listdir("/proc/self/fd"))

    def cycle(i: int, close: bool) -> None:
        engine = Rag(Settings(data_dir=tmp_path / f"data{i}"), embedder=embedder)
        engine.ingestor.ingest_documents([Document("a.txt", "The ferry leaves at seven.")])
        assert engine.search("When does the ferry leave?").hits
        if close:
            engine.close()

    cycle(0, True)  # the first opens what every later one shares (thread pools, the engine's runtime)
    gc.collect()
    before = open_files()
    for i in range(1, 7):
        cycle(i, close=i % 2 == 0)
        gc.collect()
    assert open_files() <= before + 2  # before, each index written to kept about 20 files open
