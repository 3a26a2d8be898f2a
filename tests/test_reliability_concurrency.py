"""Concurrent reads and writes over HTTP keep the index and every citation consistent.

Against a real server over a fresh index with the seeds uploaded through the API,
8 client threads ask questions (plain, streamed and OpenAI-compatible answers, and
searches; seed questions and questions about the changing documents) while one
writer thread uploads new documents, re-uploads changed and unchanged versions of
them and of one seed, and deletes them, all through the HTTP API.

What it proves:

* no 5xx at any time (503 busy is allowed for answers), no transport errors, and
  every write reports what the chunker predicts (status and chunk count);
* afterwards no lost or duplicated chunks: the index (read through
  ``GET /v1/documents`` and through the engine's store: chunk ids, sentence counts,
  document hashes, chunk texts) holds exactly what ``build_records`` produces for
  the final set of documents;
* every citation and search hit ever returned names a chunk that the chunker
  produces for some uploaded version of its source, and its text is exactly
  ``version_text[start:end]`` for that version.

Bounds: ``RELIABILITY_CONCURRENCY_SECONDS`` of traffic (default 60), 8 askers and
1 writer; every request has a client time limit; threads are joined with a time
limit; the server is always stopped. The counts are printed (``-s``) for the record."""

from __future__ import annotations

import json
import os
import random
import re
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from rag.engine import Rag
from rag.ingest.ingestor import build_records, doc_hash
from rag.ingest.loaders import Document
from rag.settings import Settings
from server.app import create_app
from tests.conftest import DEV, SEEDS
from tests.serving import LiveServer

SECONDS = float(os.environ.get("RELIABILITY_CONCURRENCY_SECONDS", "60"))
ASKERS = 8
CHUNK_CHARS = 600
TIMEOUT = 180.0
LIVE = [f"live/doc{i}.txt" for i in range(3)]
CHANGING_SEED = "001_f4cf3b6594b4ef58.txt"
LIVE_QUESTIONS = ["Where was the Zebra Protocol signed?", "How many delegations signed the Zebra Protocol?",
                  "Which birds does the Zebra Protocol regulate?", "When was the harbour of Varnholm opened?"]
pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Cited:
    """A passage the server returned: a citation or a search hit."""

    route: str
    source: str
    chunk_id: str
    start: int
    end: int
    text: str


@dataclass
class AskerLog:
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    cited: list[Cited] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


@dataclass
class WriterLog:
    versions: dict[str, list[str]] = field(default_factory=dict)  # every text ever uploaded, per source
    final: dict[str, str] = field(default_factory=dict)  # what the index should hold now
    ops: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)

    def upload(self, http: httpx.Client, source: str, text: str) -> None:
        chunks, _ = build_records(Document(source, text), CHUNK_CHARS)
        old = self.final.get(source)
        want = "unchanged" if old == text else "updated" if old is not None else "added"
        self.versions.setdefault(source, []).append(text)
        r = http.post("/v1/documents", json={"source": source, "text": text})
        if r.status_code != 200 or r.json()["status"] != want or r.json()["chunks"] != len(chunks):
            self.failures.append(f"upload {source}: {r.status_code} {r.text[:200]} (want {want}, {len(chunks)})")
        self.final[source] = text
        self.ops[f"upload_{want}"] += 1

    def delete(self, http: httpx.Client, source: str) -> None:
        r = http.delete(f"/v1/documents/{source}")
        chunks, _ = build_records(Document(source, self.final[source]), CHUNK_CHARS)
        if r.status_code != 200 or r.json() != {"removed": source, "chunks": len(chunks)}:
            self.failures.append(f"delete {source}: {r.status_code} {r.text[:200]}")
        del self.final[source]
        self.ops["delete"] += 1


def _seed_sentences() -> list[str]:
    text = " ".join(p.read_text(encoding="utf-8") for p in sorted(SEEDS.iterdir()))
    return [s for s in re.split(r"(?<=[.!?])\s+", text) if 40 < len(s) < 250]


def _live_text(n: int, rng: random.Random, pool: list[str]) -> str:
    """A few chunks: facts the live questions ask about, between seed sentences."""
    facts = [f"The Zebra Protocol was signed in Oslo in {1900 + n % 99} by {n % 17 + 2} delegations.",
             f"It regulates migratory birds such as the arctic tern, revision {n}.",
             f"The harbour of Varnholm opened in {1800 + n % 199} after a storm."]
    body = rng.sample(pool, 6)
    return " ".join(facts[:1] + body[:2] + facts[1:2] + body[2:4] + facts[2:] + body[4:])


def _questions() -> list[str]:
    rows = [json.loads(line) for line in DEV.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [r["question"] for r in rows][:12] + LIVE_QUESTIONS


def _passages(route: str, items: list[dict[str, object]]) -> list[Cited]:
    return [Cited(route, str(c["source"]), str(c["chunk_id"]), int(c["start"]), int(c["end"]), str(c["text"]))
            for c in items]


def _sse_done(r: httpx.Response) -> dict[str, object] | None:
    name, done = None, None
    for line in r.iter_lines():
        if line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:") and name == "done":
            done = json.loads(line[5:])
    return done


def _one_request(http: httpx.Client, mode: str, question: str, log: AskerLog) -> None:
    if mode == "stream":
        with http.stream("POST", "/v1/ask", json={"question": question, "stream": True}) as r:
            log.statuses[(mode, r.status_code)] += 1
            if r.status_code == 200:
                done = _sse_done(r)
                if done is None:
                    log.failures.append(f"stream without a done event: {question!r}")
                else:
                    log.cited += _passages(mode, done["citations"])
            else:
                r.read()
        return
    if mode == "ask":
        r = http.post("/v1/ask", json={"question": question})
        items = lambda: r.json()["citations"]  # noqa: E731
    elif mode == "chat":
        r = http.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": question}]})
        items = lambda: r.json()["choices"][0]["message"]["citations"]  # noqa: E731
    else:
        r = http.get("/v1/search", params={"q": question, "k": 5})
        items = lambda: r.json()["results"]  # noqa: E731
    log.statuses[(mode, r.status_code)] += 1
    if r.status_code == 200:
        log.cited += _passages(mode, items())


def _asker(url: str, n: int, deadline: float) -> AskerLog:
    log = AskerLog()
    questions = _questions()
    modes = ["ask", "stream", "search", "chat"]
    i = n
    with httpx.Client(base_url=url, timeout=TIMEOUT) as http:
        while time.monotonic() < deadline:
            try:
                _one_request(http, modes[i % len(modes)], questions[(i * 7 + n) % len(questions)], log)
            except httpx.TransportError as exc:
                log.failures.append(f"transport error: {exc!r}")
            i += 1
    return log


def _writer(url: str, deadline: float, log: WriterLog) -> WriterLog:
    rng = random.Random(7)
    pool = _seed_sentences()
    seed_text = (SEEDS / CHANGING_SEED).read_text(encoding="utf-8")
    n = 0
    with httpx.Client(base_url=url, timeout=TIMEOUT) as http:
        while time.monotonic() < deadline:
            source = LIVE[n % len(LIVE)]
            try:
                step = (n // len(LIVE)) % 4
                if step in (0, 1):  # new, then changed
                    log.upload(http, source, _live_text(n, rng, pool))
                elif step == 2:  # the same text again: nothing to do
                    log.upload(http, source, log.final[source])
                else:
                    log.delete(http, source)
                if n % 5 == 0:  # a seed changes and comes back
                    revised = seed_text + f" Revision {n} of this article was published later."
                    log.upload(http, CHANGING_SEED, revised if n % 10 == 0 else seed_text)
            except httpx.TransportError as exc:
                log.failures.append(f"transport error: {exc!r}")
            n += 1
    return log


@pytest.fixture
def server(tmp_path: Path, embedder, seeded_engine) -> Iterator[tuple[str, Rag]]:
    settings = Settings(data_dir=tmp_path / "data", request_timeout=120, chunk_chars=CHUNK_CHARS)
    engine = Rag(settings, embedder=embedder)
    engine.__dict__["generator"] = seeded_engine.generator  # share the loaded model
    with LiveServer(create_app(settings, engine=engine)) as live:
        yield live.url, engine


def _check_index(url: str, engine: Rag, final: dict[str, str]) -> None:
    expected = {s: build_records(Document(s, t), CHUNK_CHARS) for s, t in final.items()}
    listed = httpx.get(f"{url}/v1/documents", timeout=TIMEOUT).json()["documents"]
    assert {d["source"]: d["chunks"] for d in listed} == {s: len(c) for s, (c, _) in expected.items()}

    stored = engine.store.all_chunks()
    ids = [r.id for r in stored]
    assert len(ids) == len(set(ids)), "duplicated chunk ids"
    assert set(ids) == {r.id for c, _ in expected.values() for r in c}, "lost or leftover chunks"
    for r in stored:
        assert final[r.source][r.start:r.end] == r.text, r.id
    state = engine.store.source_state()
    assert set(state) == set(final), "records of a deleted source remain"
    for s, (c, sentences) in expected.items():
        assert (state[s].live, state[s].versions) == (doc_hash(final[s]), {doc_hash(final[s]): (len(c), len(sentences))})
    snap = engine.store.snapshot(list(state))
    assert {r.id for r in snap.sentences} == {r.id for _, sents in expected.values() for r in sents}


def _check_citations(cited: list[Cited], versions: dict[str, list[str]]) -> None:
    chunk_versions: dict[tuple[str, str], list[str]] = {}
    for source, texts in versions.items():
        for text in dict.fromkeys(texts):
            for r in build_records(Document(source, text), CHUNK_CHARS)[0]:
                chunk_versions.setdefault((source, r.id), []).append(text)
    bad = [c for c in cited
           if not any(v[c.start:c.end] == c.text for v in chunk_versions.get((c.source, c.chunk_id), []))]
    assert not bad, bad[:3]


def test_concurrent_asks_and_writes_keep_index_and_citations_consistent(server: tuple[str, Rag]) -> None:
    url, engine = server
    writes = WriterLog()
    with httpx.Client(base_url=url, timeout=TIMEOUT) as http:
        for path in sorted(SEEDS.iterdir()):
            writes.upload(http, path.name, path.read_text(encoding="utf-8"))
    assert not writes.failures, writes.failures

    t0 = time.monotonic()
    deadline = t0 + SECONDS
    with ThreadPoolExecutor(max_workers=ASKERS + 1, thread_name_prefix="client") as pool:
        writer = pool.submit(_writer, url, deadline, writes)
        askers = [pool.submit(_asker, url, n, deadline) for n in range(ASKERS)]
        logs = [f.result(timeout=SECONDS + 2 * TIMEOUT) for f in askers]
        writer.result(timeout=SECONDS + 2 * TIMEOUT)
    elapsed = time.monotonic() - t0

    statuses: Counter[tuple[str, int]] = sum((log.statuses for log in logs), Counter())
    cited = [c for log in logs for c in log.cited]
    summary = {"seconds": round(elapsed, 1), "requests": {f"{m} {s}": n for (m, s), n in sorted(statuses.items())},
               "busy_503": sum(n for (_, s), n in statuses.items() if s == 503),
               "writes": dict(writes.ops), "passages_checked": len(cited),
               "passages_of_changing_documents": sum(c.source in (*LIVE, CHANGING_SEED) for c in cited)}
    print("\nconcurrency:", json.dumps(summary))

    assert not [f for log in logs for f in log.failures], [f for log in logs for f in log.failures][:5]
    assert not writes.failures, writes.failures[:5]
    allowed = {200, 503}
    assert all(s in allowed for (_, s), _ in statuses.items()), statuses
    assert all(s == 200 for (m, s) in statuses if m == "search"), statuses
    assert statuses[("ask", 200)] and statuses[("stream", 200)] and statuses[("chat", 200)], statuses
    seeds = len(list(SEEDS.iterdir()))
    assert writes.ops["delete"] and writes.ops["upload_updated"] and writes.ops["upload_added"] > seeds
    assert summary["passages_of_changing_documents"], "no answer cited a document while it changed"
    _check_index(url, engine, writes.final)
    _check_citations(cited, writes.versions)

