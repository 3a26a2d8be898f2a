"""POST /v1/chat/completions through the official ``openai`` client."""

from __future__ import annotations

import httpx
import pytest

openai = pytest.importorskip("openai")


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
