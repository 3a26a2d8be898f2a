"""POST /v1/ask and GET /v1/search over real HTTP, against the real model."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from rag.errors import RagError
from rag.types import Answer, AnswerEvent, Citation, StreamEvent
from server.errors import error_body
from server.routes.ask import _events
from server.schemas import AnswerOut, CitationOut
from tests.serving import failing_events, no_more_events

QUESTION = "Who is Meta's president of global affairs?"
CITATION_KEYS = {"marker", "source", "chunk_id", "start", "end", "text", "score", "section", "page", "title", "ocr"}
LOCATED = Citation(1, "usrguide.pdf", "c1", 837, 1076, "Optional arguments start with -.", 0.91234,
                   section="A > B", page=3)
SERVER = Path(__file__).resolve().parents[2] / "server"


def sse_events(response: httpx.Response) -> list[tuple[str, dict]]:
    events, name = [], None
    for line in response.iter_lines():
        if line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            events.append((name, json.loads(line[5:])))
    return events


def test_ask_returns_the_cli_json_contract(api_url: str) -> None:
    r = httpx.post(f"{api_url}/v1/ask", json={"question": QUESTION}, timeout=60)
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"question", "answer", "abstained", "citations", "timings", "model", "standalone_question"}
    assert body["abstained"] is False and "Clegg" in body["answer"]
    assert body["citations"] and "[1]" in body["answer"]
    for c in body["citations"]:
        assert set(c) == CITATION_KEYS
        assert c["source"].endswith(".txt") and c["section"] == "" and c["page"] is None  # plain text
    assert set(body["timings"]) == {"retrieval_ms", "ttft_ms", "total_ms"}
    assert '"section":"","page":null' in r.text.replace(" ", "")


def test_ask_stream_sends_tokens_then_citations_then_done(api_url: str) -> None:
    with httpx.stream("POST", f"{api_url}/v1/ask", json={"question": QUESTION, "stream": True}, timeout=60) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        events = sse_events(r)
    names = [n for n, _ in events]
    assert names[0] == "token" and names[-2:] == ["citations", "done"]
    assert set(names[:-2]) == {"token"}
    citations, done = events[-2][1], events[-1][1]
    assert done["answer"] == citations["answer"] and "Clegg" in done["answer"]
    assert citations["citations"] == done["citations"] and done["timings"]["total_ms"] > 0
    assert all(set(c) == CITATION_KEYS and (c["section"], c["page"]) == ("", None) for c in done["citations"])


def _stream_events(first: StreamEvent, rest: AsyncIterator[StreamEvent]) -> list[tuple[str, dict]]:
    async def collect() -> list[str]:
        return [e async for e in _events(first, rest)]

    out = []
    for block in asyncio.run(collect()):
        match = re.fullmatch(r"event: (\w+)\ndata: (.*)\n\n", block, re.S)
        assert match, block
        out.append((match[1], json.loads(match[2])))
    return out


def test_a_located_citation_keeps_its_section_and_page_in_json_and_stream() -> None:
    answer = Answer("q?", "Use -v [1].", False, [LOCATED])
    body = AnswerOut.model_validate(answer.to_dict()).model_dump(mode="json")  # the route's response model
    assert body == answer.to_dict()
    assert (body["citations"][0]["section"], body["citations"][0]["page"]) == ("A > B", 3)
    events = dict(_stream_events(AnswerEvent(answer), no_more_events()))
    for name in ("citations", "done"):
        assert events[name]["citations"] == body["citations"], name


def test_a_stream_error_is_the_one_error_body() -> None:
    answer = Answer("q?", "Use -v [1].", False, [LOCATED])
    events = _stream_events(AnswerEvent(answer), failing_events())
    assert events[-1] == ("error", error_body(RagError.kind, "the model stopped"))


def test_error_bodies_are_built_in_one_place() -> None:
    builders = [str(p.relative_to(SERVER)) for p in SERVER.rglob("*.py")
                if re.search(r"""["']error["']\s*:\s*\{""", p.read_text(encoding="utf-8"))]
    assert builders == ["errors.py"]


def test_response_models_match_the_answer_contract() -> None:
    assert list(CitationOut.model_fields) == [f.name for f in dataclasses.fields(Citation)]
    assert list(AnswerOut.model_fields) == [f.name for f in dataclasses.fields(Answer)]


def test_openapi_describes_section_and_page(api_url: str) -> None:
    spec = httpx.get(f"{api_url}/openapi.json", timeout=30).json()
    schemas = spec["components"]["schemas"]
    props = schemas["CitationOut"]["properties"]
    assert set(props) == CITATION_KEYS
    assert all(p.get("description") for p in props.values())
    assert "heading path" in props["section"]["description"].lower() and props["section"]["type"] == "string"
    assert "page" in props["page"]["description"]
    assert {t.get("type") for t in props["page"]["anyOf"]} == {"integer", "null"}
    assert schemas["AnswerOut"]["properties"]["citations"]["items"] == {"$ref": "#/components/schemas/CitationOut"}
    ok = spec["paths"]["/v1/ask"]["post"]["responses"]["200"]["content"]
    assert ok["application/json"]["schema"] == {"$ref": "#/components/schemas/AnswerOut"}
    streamed = {e["properties"]["event"]["const"]: e["properties"]["data"]["contentSchema"]
                for e in ok["text/event-stream"]["schema"]["anyOf"]}
    for name in ("citations", "done"):
        cited = streamed[name]["properties"]["citations"]["items"]["properties"]
        assert cited["section"]["description"] == props["section"]["description"], name
        assert cited["page"]["description"] == props["page"]["description"], name


def test_unanswerable_question_abstains_without_citations(api_url: str) -> None:
    body = httpx.post(f"{api_url}/v1/ask", json={"question": "When will Meta release Llama 5?"}, timeout=60).json()
    assert body["abstained"] is True and body["citations"] == []


@pytest.mark.parametrize("payload,status,kind", [
    ({"question": "   "}, 400, "empty_question"),
    ({"question": "x" * 9000}, 413, "payload_too_large"),
    ({}, 422, "validation_error"),
    ({"question": "hi", "top_k": 0}, 422, "validation_error"),
    ({"question": "hi", "top_k": 10_000}, 422, "validation_error"),
    ({"question": 5}, 422, "validation_error"),
])
def test_bad_questions_get_json_errors(api_url: str, payload: dict, status: int, kind: str) -> None:
    r = httpx.post(f"{api_url}/v1/ask", json=payload, timeout=30)
    assert r.status_code == status
    err = r.json()["error"]
    assert err["type"] == kind and err["message"]


def test_validation_errors_name_the_field(api_url: str) -> None:
    r = httpx.post(f"{api_url}/v1/ask", json={"question": "hi", "top_k": -3}, timeout=30)
    assert r.status_code == 422 and "top_k" in r.json()["error"]["message"]
    r = httpx.post(f"{api_url}/v1/ask", json={"top_k": 3}, timeout=30)
    assert "question" in r.json()["error"]["message"]


def test_invalid_json_is_a_400(api_url: str) -> None:
    r = httpx.post(f"{api_url}/v1/ask", content=b'{"question": ', headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_json"


def test_stream_errors_before_the_first_event_are_plain_json(api_url: str) -> None:
    r = httpx.post(f"{api_url}/v1/ask", json={"question": "", "stream": True}, timeout=30)
    assert r.status_code == 400 and r.headers["content-type"].startswith("application/json")


def test_search_returns_the_cli_json_contract(api_url: str) -> None:
    r = httpx.get(f"{api_url}/v1/search", params={"q": "Nick Clegg", "k": 3}, timeout=30)
    assert r.status_code == 200
    body = r.json()
    assert body["query"] == "Nick Clegg" and len(body["results"]) == 3
    assert any("Clegg" in h["text"] for h in body["results"])
    assert httpx.get(f"{api_url}/v1/search", params={"q": "x", "k": 0}).status_code == 422
    assert httpx.get(f"{api_url}/v1/search").status_code == 422


def test_unknown_route_is_a_json_404(api_url: str) -> None:
    r = httpx.get(f"{api_url}/v1/nope")
    assert r.status_code == 404 and r.json()["error"]["type"] == "not_found"


def test_empty_index_is_a_409(fresh_api: str) -> None:
    r = httpx.post(f"{fresh_api}/v1/ask", json={"question": "Who is Nick Clegg?"}, timeout=30)
    assert r.status_code == 409 and r.json()["error"]["type"] == "index_empty"
