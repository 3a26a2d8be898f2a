"""POST /v1/ask and GET /v1/search over real HTTP, against the real model."""

from __future__ import annotations

import json

import httpx
import pytest

QUESTION = "Who is Meta's president of global affairs?"


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
    assert set(body) == {"question", "answer", "abstained", "citations", "timings", "model"}
    assert body["abstained"] is False and "Clegg" in body["answer"]
    assert body["citations"] and "[1]" in body["answer"]
    c = body["citations"][0]
    assert set(c) == {"marker", "source", "chunk_id", "start", "end", "text", "score"}
    assert set(body["timings"]) == {"retrieval_ms", "ttft_ms", "total_ms"}


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
