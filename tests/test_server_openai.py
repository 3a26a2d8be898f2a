"""POST /v1/chat/completions through the official ``openai`` client."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx
import pytest

from rag.errors import RagError
from rag.types import Answer, AnswerEvent, Citation, StreamEvent
from server.errors import error_body
from server.routes.openai_compat import _stream
from server.schemas import ChatCompletionChunk
from tests.serving import failing_events, no_more_events

openai = pytest.importorskip("openai")

LOCATED = Citation(1, "usrguide.pdf", "c1", 837, 1076, "Optional arguments start with -.", 0.9,
                   section="A > B", page=3)


@pytest.fixture(scope="module")
def client(api_url: str):
    with openai.OpenAI(base_url=f"{api_url}/v1", api_key="unused", max_retries=0, timeout=60) as c:
        yield c


def test_completion_carries_markers_and_citations(client) -> None:
    resp = client.chat.completions.create(
        model="anything", messages=[{"role": "user", "content": "Who is Meta's president of global affairs?"}])
    msg = resp.choices[0].message
    assert "Clegg" in msg.content and "[1]" in msg.content
    citations = msg.model_extra["citations"]
    assert citations[0]["marker"] == 1 and "Clegg" in citations[0]["text"]
    assert resp.model_extra["citations"] == citations
    assert all((c["section"], c["page"]) == ("", None) for c in citations)  # the seeds are plain text
    assert resp.choices[0].finish_reason == "stop" and resp.usage.total_tokens > 0


def test_streaming_completion_ends_with_citations(client) -> None:
    stream = client.chat.completions.create(
        model="anything", stream=True, temperature=0.3, max_tokens=50,
        messages=[{"role": "user", "content": "Who is Meta's president of global affairs?"}])
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    final = chunks[-1]
    assert final.choices[0].finish_reason == "stop"
    assert "Clegg" in text and "[1]" in text and final.model_extra["citations"]
    for c in final.model_extra["citations"]:
        assert (c["section"], c["page"]) == ("", None)
    assert len(chunks) > 3
    whole = client.chat.completions.create(
        model="anything", messages=[{"role": "user", "content": "Who is Meta's president of global affairs?"}])
    assert text == whole.choices[0].message.content  # the deltas add up to the verified answer


def test_follow_up_uses_the_history(client) -> None:
    first = "Which companies are partnering with Meta on Llama for national security?"
    a1 = client.chat.completions.create(model="m", messages=[{"role": "user", "content": first}])
    follow = client.chat.completions.create(model="m", messages=[
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": first},
        {"role": "assistant", "content": a1.choices[0].message.content},
        {"role": "user", "content": "And which of them host it on their cloud?"}])
    msg = follow.choices[0].message
    assert msg.model_extra["abstained"] is False and msg.model_extra["citations"]


def test_unanswerable_abstains(client) -> None:
    resp = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "When will Meta release Llama 5?"}])
    assert resp.choices[0].message.model_extra["abstained"] is True
    assert resp.choices[0].message.model_extra["citations"] == []


def test_last_message_must_be_from_the_user(api_url: str) -> None:
    r = httpx.post(f"{api_url}/v1/chat/completions",
                   json={"messages": [{"role": "assistant", "content": "hi"}]}, timeout=30)
    assert r.status_code == 400 and "last message" in r.json()["error"]["message"]
    r = httpx.post(f"{api_url}/v1/chat/completions", json={"messages": []}, timeout=30)
    assert r.status_code == 422 and "messages" in r.json()["error"]["message"]


def test_errors_reach_the_client_as_exceptions(client) -> None:
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "  "}])


def _chunks(first: StreamEvent, rest: AsyncIterator[StreamEvent]) -> list[str]:
    async def collect() -> list[str]:
        return [e async for e in _stream("chatcmpl-x", "m", first, rest)]

    blocks = asyncio.run(collect())
    assert all(b.startswith("data: ") and b.endswith("\n\n") for b in blocks)
    return [b[6:-2] for b in blocks]


def test_a_located_citation_keeps_section_and_page_in_the_stream() -> None:
    answer = Answer("q?", "Use -v [1].", False, [LOCATED])
    chunks = _chunks(AnswerEvent(answer), no_more_events())
    assert chunks[-1] == "[DONE]"
    last = ChatCompletionChunk.model_validate_json(chunks[-2])
    for citations in (last.citations, last.choices[0].delta.citations):
        assert citations is not None
        assert [(c.source, c.page, c.section) for c in citations] == [("usrguide.pdf", 3, "A > B")]


def test_a_stream_error_is_the_one_error_body() -> None:
    chunks = _chunks(AnswerEvent(Answer("q?", "x [1].", False, [LOCATED])), failing_events())
    assert json.loads(chunks[-2]) == error_body(RagError.kind, "the model stopped")
    assert chunks[-1] == "[DONE]"


def test_openapi_documents_section_and_page_on_chat_citations(api_url: str) -> None:
    schemas = httpx.get(f"{api_url}/openapi.json", timeout=30).json()["components"]["schemas"]
    ref = {"$ref": "#/components/schemas/CitationOut"}
    assert schemas["ChatCompletion"]["properties"]["citations"]["items"] == ref
    assert schemas["ChatAnswerMessage"]["properties"]["citations"]["items"] == ref
    props = schemas["CitationOut"]["properties"]
    assert props["section"]["description"] and props["page"]["description"]
