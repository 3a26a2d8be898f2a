"""Answers restricted to chosen documents (``sources``), titles in citations and
in the document list, and a citation's chunk as its context — in the library and
over HTTP."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from rag.engine import Rag
from rag.errors import NotFoundError
from rag.settings import Settings

HARBOUR = ("<html><head><title>Harbour guide</title></head><body><h1>Opening hours</h1>"
           "<p>The harbour office opens at seven every weekday. The ferry to Skerry leaves at nine.</p>"
           "</body></html>")
MUSEUM = "# Museum notes\n\nThe maritime museum opens at ten every weekday. Entry is free on Sundays.\n"
QUESTION = "When does it open every weekday?"


@pytest.fixture
def two_docs(tmp_path: Path, embedder: Any) -> Rag:
    folder = tmp_path / "town"
    folder.mkdir()
    (folder / "harbour.html").write_text(HARBOUR, encoding="utf-8")
    (folder / "museum.md").write_text(MUSEUM, encoding="utf-8")
    engine = Rag(Settings(data_dir=tmp_path / "data", use_llm=False), embedder=embedder)
    engine.ingestor.ingest_paths([folder])
    return engine


def test_sources_restrict_search_and_answers(two_docs: Rag) -> None:
    assert {h.source for h in two_docs.search(QUESTION, 5).hits} == {"town/harbour.html", "town/museum.md"}
    assert {h.source for h in two_docs.search(QUESTION, 5, sources=["town/museum"]).hits} == {"town/museum.md"}
    answer = two_docs.ask(QUESTION, sources=["town/harbour.html"])
    assert answer.citations and {c.source for c in answer.citations} == {"town/harbour.html"}
    assert answer.citations[0].title == "Harbour guide"
    with pytest.raises(NotFoundError, match="nowhere"):
        two_docs.ask(QUESTION, sources=["nowhere/"])


def test_documents_are_listed_with_their_titles(two_docs: Rag) -> None:
    assert [(d.source, d.title) for d in two_docs.ingestor.documents()] == [
        ("town/harbour.html", "Harbour guide"), ("town/museum.md", "Museum notes")]


def test_http_sources_titles_and_chunk_context(two_docs: Rag) -> None:
    from server.app import create_app
    from tests.serving import LiveServer

    with LiveServer(create_app(two_docs.settings, engine=two_docs)) as server:
        docs = httpx.get(f"{server.url}/v1/documents", timeout=30).json()["documents"]
        assert {d["source"]: d["title"] for d in docs} == {"town/harbour.html": "Harbour guide",
                                                          "town/museum.md": "Museum notes"}
        r = httpx.post(f"{server.url}/v1/ask", json={"question": QUESTION, "sources": ["town/museum.md"]},
                       timeout=120)
        assert r.status_code == 200, r.text
        [cited] = r.json()["citations"][:1]
        assert (cited["source"], cited["title"]) == ("town/museum.md", "Museum notes")
        chunk = httpx.get(f"{server.url}/v1/chunks/{cited['chunk_id']}", timeout=30).json()
        assert chunk["source"] == "town/museum.md" and chunk["start"] <= cited["start"] < cited["end"] <= chunk["end"]
        assert chunk["text"][cited["start"] - chunk["start"]:cited["end"] - chunk["start"]] == cited["text"]
        missing = httpx.post(f"{server.url}/v1/ask", json={"question": QUESTION, "sources": ["elsewhere"]},
                             timeout=60)
        assert missing.status_code == 404 and "elsewhere" in missing.json()["error"]["message"]
        assert httpx.get(f"{server.url}/v1/chunks/no-such-chunk", timeout=30).status_code == 404


def test_cli_source_option(two_docs: Rag, monkeypatch: pytest.MonkeyPatch,
                           capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from rag.cli import main as cli

    monkeypatch.setattr(cli, "_engine", lambda settings: two_docs)

    def run(*argv: str) -> tuple[int, str, str]:
        with pytest.raises(SystemExit) as info:
            cli.main(list(argv))
        captured = capsys.readouterr()
        return int(info.value.code or 0), captured.out, captured.err

    code, out, _ = run("search", QUESTION, "--source", "town/museum.md", "--json")
    assert code == 0 and {h["source"] for h in json.loads(out)["results"]} == {"town/museum.md"}
    code, out, _ = run("ask", QUESTION, "--no-llm", "-s", "town/harbour", "--json")
    assert code == 0 and {c["source"] for c in json.loads(out)["citations"]} == {"town/harbour.html"}
    code, out, err = run("ask", QUESTION, "--no-llm", "--source", "elsewhere")
    assert code != 0 and out == "" and err.count("\n") == 1 and "elsewhere" in err


def test_chat_completions_take_sources(two_docs: Rag) -> None:
    from server.app import create_app
    from tests.serving import LiveServer

    with LiveServer(create_app(two_docs.settings, engine=two_docs)) as server:
        body = {"model": "rag", "messages": [{"role": "user", "content": QUESTION}], "sources": ["town/harbour"]}
        r = httpx.post(f"{server.url}/v1/chat/completions", json=body, timeout=120)
        assert r.status_code == 200, r.text
        assert {c["source"] for c in r.json()["citations"]} == {"town/harbour.html"}
        r = httpx.post(f"{server.url}/v1/chat/completions", json={**body, "sources": ["nowhere"]}, timeout=60)
        assert r.status_code == 404
