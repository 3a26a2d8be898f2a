"""The scaled topology on loopback: a real Chroma server (``chroma run``), a real
OpenAI-compatible LLM server (``python -m llama_cpp.server``) and two ``rag serve``
processes (one of them with ``--workers 2``) sharing them. Documents written
through one worker are seen by every other, also when an update keeps the chunk
count equal; hybrid retrieval gives the same hits embedded and on the server; an
unreachable server is one clear line. Every process started here is stopped (its
whole process group), also when a test fails."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from models.manifest import default_model_path
from rag.engine import Rag
from rag.errors import BackendError
from rag.evaluation.dataset import load_dataset
from rag.index.lexical import LexicalCache
from rag.settings import Settings
from rag.index.store import ChromaStore, Record
from tests.processes import ServerProcess, free_port

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent
DEV = Path(__file__).resolve().parents[1] / "eval" / "dev.jsonl"
TIMEOUT = 150  # seconds per HTTP call: the first answer on a busy 2-core machine can be slow

OBSERVATORY = ("The Larkspur Observatory was opened in 1987 by the astronomer Mirela Voss. "
               "It stands on a ridge above the town of Quillon and houses a two-metre telescope "
               "used for surveys of nearby galaxies. "
               "Visitors can tour the dome on the first Saturday of every month.")
BAKERY = ("The Corner Bakery on Elm Street bakes rye bread every morning at five. "
          "Its owner, Hana Okafor, learned the trade in Lyon.")
QUESTION = "Who opened the Larkspur Observatory?"


@dataclass
class Backends:
    chroma_url: str
    llm_url: str
    model_id: str


@pytest.fixture(scope="module")
def backends(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backends]:
    """A Chroma server and llama-cpp-python's server, started side by side."""
    pytest.importorskip("sse_starlette", reason="needs llama-cpp-python[server] (the dev extra)")
    tmp = tmp_path_factory.mktemp("backends")
    cport, lport = free_port(), free_port()
    chroma = ServerProcess([str(BIN / "chroma"), "run", "--path", str(tmp / "chroma"), "--host", "127.0.0.1",
                            "--port", str(cport)], f"http://127.0.0.1:{cport}/api/v2/heartbeat",
                           tmp / "chroma.log", timeout=60)
    model = str(default_model_path())
    llm = ServerProcess([sys.executable, "-m", "rag.answer.llm_server", "--model", model, "--host", "127.0.0.1",
                         "--port", str(lport), "--n_threads", "1", "--n_ctx", "2048"],
                        f"http://127.0.0.1:{lport}/v1/models", tmp / "llm.log", timeout=120)
    with ExitStack() as stack:
        for proc in (chroma, llm):
            stack.callback(proc.stop)
            proc.start()
        chroma.wait_ready()
        llm.wait_ready()
        yield Backends(f"http://127.0.0.1:{cport}", f"http://127.0.0.1:{lport}/v1", model)


@pytest.fixture(scope="module")
def workers(backends: Backends, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """Two ``rag serve`` processes on the shared servers: A with two workers, B with one."""
    tmp = tmp_path_factory.mktemp("workers")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update(RAG_CHROMA_URL=backends.chroma_url, RAG_LLM_URL=backends.llm_url, RAG_COLLECTION="scale",
               RAG_DATA_DIR=str(tmp / "unused"), RAG_REQUEST_TIMEOUT="120")
    procs = []
    for name, n in (("a", 2), ("b", 1)):
        port = free_port()
        procs.append(ServerProcess(
            [sys.executable, "-m", "rag", "serve", "--port", str(port), "--workers", str(n)],
            f"http://127.0.0.1:{port}/readyz", tmp / f"{name}.log", env=env, cwd=tmp, timeout=180,
            # every worker process has finished loading, not just the first
            ready_when=lambda log, n=n: log.count("Application startup complete") >= n))
    with ExitStack() as stack:
        for proc in procs:
            stack.callback(proc.stop)
            proc.start()
        for proc in procs:
            proc.wait_ready()
        yield tuple(p.ready_url.removesuffix("/readyz") for p in procs)  # type: ignore[misc]


def upload(url: str, source: str, text: str) -> dict[str, Any]:
    r = httpx.post(f"{url}/v1/documents", json={"source": source, "text": text}, timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def ask(url: str, question: str) -> dict[str, Any]:
    r = httpx.post(f"{url}/v1/ask", json={"question": question}, timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def search(url: str, query: str) -> list[dict[str, Any]]:
    r = httpx.get(f"{url}/v1/search", params={"q": query, "k": 5}, timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    return r.json()["results"]  # type: ignore[no-any-return]


def test_workers_share_documents_through_the_chroma_and_llm_servers(workers: tuple[str, str],
                                                                     backends: Backends) -> None:
    a, b = workers
    assert upload(a, "observatory.txt", OBSERVATORY)["status"] == "added"
    before = upload(a, "bakery.txt", BAKERY)

    # asked through the other worker: a cited answer from the LLM server
    answer = ask(b, QUESTION)
    assert not answer["abstained"] and "Mirela Voss" in answer["answer"], answer
    assert answer["citations"][0]["source"] == "observatory.txt"
    assert OBSERVATORY[answer["citations"][0]["start"]:answer["citations"][0]["end"]] == answer["citations"][0]["text"]
    assert answer["model"] == backends.model_id
    for _ in range(4):  # warm the lexical cache of both of A's processes
        assert search(a, "Larkspur Observatory")[0]["source"] == "observatory.txt"

    # an update through A that keeps every chunk count: B must not keep a stale BM25 index
    updated = upload(a, "observatory.txt", OBSERVATORY.replace("Mirela Voss", "Tomas Brenner"))
    assert updated["status"] == "updated"
    assert (updated["chunks"], updated["total_chunks"]) == (1, before["total_chunks"])
    hits = search(b, "Larkspur Observatory opened astronomer")
    assert "Tomas Brenner" in hits[0]["text"] and not any("Mirela Voss" in h["text"] for h in hits), hits
    answer = ask(b, QUESTION)
    assert "Tomas Brenner" in answer["answer"] and "Mirela Voss" not in answer["answer"], answer

    # a delete through B: every process of A stops finding it
    r = httpx.delete(f"{b}/v1/documents/observatory.txt", timeout=TIMEOUT)
    assert r.status_code == 200 and r.json() == {"removed": "observatory.txt", "chunks": 1}
    for _ in range(4):
        listed = httpx.get(f"{a}/v1/documents", timeout=TIMEOUT).json()["documents"]
        assert [(d["source"], d["chunks"]) for d in listed] == [("bakery.txt", 1)]
        assert all(h["source"] == "bakery.txt" for h in search(a, "Larkspur Observatory Tomas Brenner"))
    answer = ask(a, QUESTION)
    assert all(c["source"] != "observatory.txt" for c in answer["citations"]), answer
    assert "Brenner" not in answer["answer"]
    assert ask(a, "Who owns the Corner Bakery?")["citations"][0]["source"] == "bakery.txt"


class MemoEmbedder:
    """Embeds each query once for both engines."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.name, self.dim = inner, inner.name, inner.dim
        self.memo: dict[tuple[str, ...], np.ndarray] = {}

    def embed(self, texts: list[str]) -> np.ndarray:
        key = tuple(texts)
        if key not in self.memo:
            self.memo[key] = self.inner.embed(texts)
        return self.memo[key]  # type: ignore[no-any-return]


def test_hybrid_search_is_the_same_embedded_and_on_a_chroma_server(backends: Backends, seeded_dir: Path,
                                                                  embedder: Any) -> None:
    memo = MemoEmbedder(embedder)
    embedded = Rag(Settings(data_dir=seeded_dir), embedder=memo)  # type: ignore[arg-type]
    remote = Rag(Settings(data_dir=seeded_dir, chroma_url=backends.chroma_url, collection="seeds"),
                 embedder=memo)  # type: ignore[arg-type]
    # the same records and vectors, written through the HTTP client
    snap = embedded.store.snapshot({r.source for r in embedded.store.all_chunks()})
    remote.store.add(snap.chunks, snap.chunk_vectors, snap.sentences, snap.sentence_vectors)
    assert remote.store.count() == embedded.store.count() == len(snap.chunks) > 0

    def key(hits: list[Any]) -> list[tuple[str, float, str]]:
        return [(h.chunk_id, h.score, h.text) for h in hits]

    questions = [item.question for item in load_dataset(DEV)]
    for q in questions:
        mine, theirs = embedded.retriever.search(q, 5, per_ranker=3), remote.retriever.search(q, 5, per_ranker=3)
        assert key(mine.hits) == key(theirs.hits), q
        assert key(mine.extra) == key(theirs.extra), q
        assert [h.dense for h in mine.hits] == pytest.approx([h.dense for h in theirs.hits], abs=1e-5)
    sentences, _ = remote.store.sentences_of([h.chunk_id for h in remote.search(questions[0]).hits])
    assert sentences and all(s.metadata["chunk_id"] for s in sentences)


def test_every_process_sees_the_version_token_of_another_ones_write(backends: Backends, tmp_path: Path) -> None:
    mine = ChromaStore(tmp_path, "tokens", backends.chroma_url)
    other = ChromaStore(tmp_path, "tokens", backends.chroma_url)  # as a second worker would hold it

    def chunk(text: str) -> Record:
        return Record("c1", text, {"source": "a.txt", "start": 0, "end": len(text), "doc_hash": text})

    vec = np.ones((1, 4), dtype=np.float32)
    none = np.zeros((0, 4), dtype=np.float32)
    mine.add([chunk("the ferry leaves at seven")], vec, [], none)
    cache = LexicalCache()
    assert cache.get(other).search("ferry", 5)[0][0].text == "the ferry leaves at seven"
    token = other.version()
    mine.add([chunk("the bakery opens at five")], vec, [], none)  # same count, other text
    assert other.count() == 1 and other.version() != token
    assert [r.text for r, _ in cache.get(other).search("bakery", 5)] == ["the bakery opens at five"]
    mine.delete_ids(["c1"], [])
    assert cache.get(other).search("bakery", 5) == []


def run_rag(args: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    return subprocess.run([sys.executable, "-m", "rag", *args], env={**clean, **env}, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("args", [["list"], ["search", "ferry"], ["serve", "--port", "0"]])
def test_an_unreachable_chroma_server_is_one_clear_line(args: list[str], tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    out = run_rag(args, tmp_path, RAG_CHROMA_URL=url)
    assert out.returncode == 1, out
    assert out.stderr.strip() == (f"error: cannot reach the Chroma server at {url}: "
                                  "Could not connect to a Chroma server. Are you sure it is running?"), out.stderr
    assert "Traceback" not in out.stdout + out.stderr


def test_an_unreachable_llm_server_is_one_clear_line_before_serving(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    out = run_rag(["serve", "--port", "0"], tmp_path, RAG_LLM_URL=url, RAG_DATA_DIR=str(tmp_path / "d"))
    assert out.returncode == 1 and "Traceback" not in out.stderr, out
    assert out.stderr.strip().startswith(f"error: cannot reach the LLM server at {url}"), out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_several_workers_need_a_chroma_server(tmp_path: Path) -> None:
    out = run_rag(["serve", "--workers", "2", "--port", "0"], tmp_path)
    assert out.returncode == 2 and "RAG_CHROMA_URL" in out.stderr and "Traceback" not in out.stderr


def test_a_chroma_store_on_an_unreachable_server_raises_backend_error(tmp_path: Path) -> None:
    with pytest.raises(BackendError, match="cannot reach the Chroma server"):
        ChromaStore(tmp_path, url=f"http://127.0.0.1:{free_port()}")


def test_a_malformed_server_url_is_one_clear_line(tmp_path: Path) -> None:
    out = run_rag(["list"], tmp_path, RAG_CHROMA_URL="localhost:8001")
    assert out.returncode == 2 and "Traceback" not in out.stderr, out
    assert out.stderr.strip().startswith("error: RAG_CHROMA_URL: ") and len(out.stderr.strip().splitlines()) == 1


def test_losing_the_chroma_server_is_a_backend_error(tmp_path: Path) -> None:
    port = free_port()
    with ServerProcess([str(BIN / "chroma"), "run", "--path", str(tmp_path / "chroma"), "--host", "127.0.0.1",
                        "--port", str(port)], f"http://127.0.0.1:{port}/api/v2/heartbeat",
                       tmp_path / "chroma.log", timeout=60) as server:
        store = ChromaStore(tmp_path, url=f"http://127.0.0.1:{port}")
        assert store.count() == 0 and store.version() == ""
        server.stop()
        for read in (store.count, store.version, store.all_chunks):
            with pytest.raises(BackendError, match=f"lost the Chroma server at http://127.0.0.1:{port}"):
                read()
