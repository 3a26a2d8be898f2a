"""Ingestion seen from other processes: a big file's ingest killed half-way and
resumed, with searches during the write never seeing half a document; and
``rag ingest``/``rag remove`` in one process while a server answers from the same
index in another."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from rag.engine import Rag
from rag.ingest.ingestor import build_records, doc_hash
from rag.ingest.loaders import parse_string
from rag.settings import Settings
from tests.ingest.test_ingest import CountingEmbedder

BIN = Path(sys.executable).parent
WORDS = ("amber", "basalt", "cedar", "delta", "ember", "fjord", "granite", "harbor", "indigo", "juniper",
         "kelp", "lagoon", "meadow", "nectar", "onyx", "pine", "quartz", "reef", "slate", "tundra")


def big_text(sentences: int, seed: int) -> str:
    """Distinct plain sentences, a paragraph every ten."""
    out = []
    for i in range(sentences):
        a, b, c = (WORDS[(i * k + seed) % len(WORDS)] for k in (1, 3, 7))
        out.append(f"Record {seed}-{i} says the {a} survey found {i % 97} {b} samples near the {c} station.")
        if i % 10 == 9:
            out.append("\n\n")
    return " ".join(out).replace(" \n\n ", "\n\n")


def rag_cmd(*args: str) -> list[str]:
    return [str(BIN / "rag"), *args]


def visible_versions(engine: Rag, source: str) -> tuple[set[str], int]:
    """The document hashes and the number of the chunks of ``source`` that searches can see."""
    chunks = [r for r in engine.store.all_chunks() if r.source == source]
    return {str(r.metadata["doc_hash"]) for r in chunks}, len(chunks)


@pytest.mark.slow
def test_a_killed_big_ingest_keeps_the_old_version_visible_and_resumes(tmp_path: Path, embedder: Any) -> None:
    docs = tmp_path / "big"
    docs.mkdir()
    path = docs / "log.txt"
    old, new = big_text(40, seed=1), big_text(1500, seed=2)
    path.write_text(old, encoding="utf-8")
    data = tmp_path / "data"
    engine = Rag(Settings(data_dir=data), embedder=embedder)
    engine.ingestor.ingest_paths([path])
    [(source, old_chunks)] = engine.ingestor.list_sources()
    old_version = ({doc_hash(parse_string(old, source).text)}, old_chunks)
    assert visible_versions(engine, source) == old_version

    path.write_text(new, encoding="utf-8")
    chunks, sentences = build_records(parse_string(new, source), engine.settings.chunk_chars)
    total = len(chunks) + len(sentences)
    log = tmp_path / "ingest.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(rag_cmd("-v", "ingest", str(path), "--data-dir", str(data)), stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    seen: list[tuple[set[str], int]] = []
    try:
        deadline = time.monotonic() + 300
        while "stored 1024 of" not in log.read_text(errors="replace"):  # two batches of 512 stored
            assert proc.poll() is None, log.read_text(errors="replace")[-3000:]
            assert time.monotonic() < deadline, "no progress"
            seen.append(visible_versions(engine, source))
            time.sleep(0.2)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert seen and all(v == old_version for v in seen)  # during the write: the old version, whole
    assert visible_versions(engine, source) == old_version  # after the kill too
    stored = engine.store.source_state()[source].versions[doc_hash(parse_string(new, source).text)]
    assert sum(stored) >= 1024

    counting = CountingEmbedder(embedder)
    resumed = Rag(Settings(data_dir=data), embedder=counting)
    report, _ = resumed.ingestor.ingest_paths([path])
    assert (report.added, report.updated) == (0, 1)
    assert counting.texts <= total - 1024  # only what the killed run had not stored
    state = resumed.store.source_state()[source]
    assert state.live == doc_hash(parse_string(new, source).text)
    assert state.versions == {state.live: (len(chunks), len(sentences))}  # the old version is gone
    assert visible_versions(resumed, source) == ({state.live}, len(chunks))


def _search(url: str, q: str) -> tuple[int, list[str]]:
    r = httpx.get(f"{url}/v1/search", params={"q": q, "k": 5}, timeout=60)
    return r.status_code, [h["text"] for h in r.json().get("results", [])] if r.status_code == 200 else []


@pytest.mark.slow
def test_a_running_server_sees_cli_ingest_and_remove_without_errors(tmp_path: Path, embedder: Any,
                                                                     corpus: Path) -> None:
    from server.app import create_app
    from tests.serving import LiveServer

    data = tmp_path / "data"
    settings = Settings(data_dir=data)
    engine = Rag(settings, embedder=embedder)
    engine.ingestor.ingest_paths([corpus])
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "keeper.txt").write_text("The lighthouse keeper of Skerry Point logs every passing tanker in a "
                                      "green ledger.", encoding="utf-8")
    query = "Who logs passing tankers in a green ledger?"
    statuses: list[int] = []
    stop = threading.Event()
    with LiveServer(create_app(settings, engine=engine)) as server:
        assert httpx.get(f"{server.url}/readyz", timeout=30).status_code == 200
        assert not any("green ledger" in t for t in _search(server.url, query)[1])

        def hammer() -> None:  # searches all the time, also while the other process writes
            while not stop.is_set():
                statuses.append(_search(server.url, "Meta Llama military use")[0])

        thread = threading.Thread(target=hammer, daemon=True)
        thread.start()
        try:
            done = subprocess.run(rag_cmd("ingest", str(notes), "--data-dir", str(data), "--json"),
                                  capture_output=True, text=True, timeout=300)
            assert done.returncode == 0, done.stderr
            assert json.loads(done.stdout)["added"] == 1
            deadline = time.monotonic() + 3
            while not any("green ledger" in t for t in _search(server.url, query)[1]):
                assert time.monotonic() < deadline, "the server did not see the new document"
                time.sleep(0.2)
            # its dense index too (not only BM25, which reads the shared SQLite file)
            dense = engine.store.query_chunks(embedder.embed([query])[0], 3)
            assert any("green ledger" in r.text for r, _ in dense)

            listed = subprocess.run(rag_cmd("list", "--data-dir", str(data), "--json"), capture_output=True,
                                    text=True, timeout=120)
            [new_id] = [d["source"] for d in json.loads(listed.stdout)["documents"] if "keeper" in d["source"]]
            gone = subprocess.run(rag_cmd("remove", new_id, "--data-dir", str(data)), capture_output=True,
                                  text=True, timeout=120)
            assert gone.returncode == 0, gone.stderr
            deadline = time.monotonic() + 3
            while any("green ledger" in t for t in _search(server.url, query)[1]):
                assert time.monotonic() < deadline, "the server still finds the removed document"
                time.sleep(0.2)
            ask = httpx.post(f"{server.url}/v1/ask", json={"question": query}, timeout=120)
            assert ask.status_code == 200
            assert not any("keeper" in c["source"] for c in ask.json()["citations"])
        finally:
            stop.set()
            thread.join(timeout=60)
        assert httpx.get(f"{server.url}/readyz", timeout=30).status_code == 200
    assert statuses and set(statuses) == {200}


@pytest.mark.slow
def test_two_ingests_at_once_take_turns_and_leave_one_version_of_a_shared_source(tmp_path: Path) -> None:
    """Two ``rag ingest`` processes started together on an empty data folder, both
    with a ``same.txt`` (different texts) under the same id: both succeed in one
    line each, the second waiting for the first; the index then holds every other
    file and exactly one version of ``same.txt``, whole."""
    data = tmp_path / "data"
    folders = []
    for name, text in (("a", "The ferry leaves at seven. It returns at noon."),
                       ("b", "The museum opens at ten. Entry is free on Sundays. Guided tours start at eleven.")):
        folder = tmp_path / name / "docs"
        folder.mkdir(parents=True)
        (folder / "same.txt").write_text(text, encoding="utf-8")
        (folder / f"only_{name}.txt").write_text(f"Only folder {name} has this file about {name}.", encoding="utf-8")
        folders.append(folder)
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    procs = [subprocess.Popen([str(BIN / "rag"), "ingest", str(folder), "--data-dir", str(data), "--json"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for folder in folders]
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err for _, err in outs]
    for _, err in outs:  # nothing, or the one warning that it waits for the other
        said = "".join(err.split())  # (the log handler wraps lines, long paths too)
        waits = f"WARNING another process is writing to the index in {data}: waiting for it to finish"
        assert said in ("", "".join(waits.split())), err
    engine = Rag(Settings(data_dir=data), embedder=None)
    state = engine.store.source_state()
    assert set(state) == {"docs/same.txt", "docs/only_a.txt", "docs/only_b.txt"}
    same = state["docs/same.txt"]
    assert len(same.versions) == 1 and same.live in same.versions  # one version, the visible one
    texts = {doc_hash(folder.joinpath("same.txt").read_text(encoding="utf-8")) for folder in folders}
    assert same.live in texts
    chunks = [r for r in engine.store.all_chunks() if r.source == "docs/same.txt"]
    assert chunks and len({r.metadata["doc_hash"] for r in chunks}) == 1
