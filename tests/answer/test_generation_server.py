"""``OpenAIServerGenerator`` against a fake OpenAI-compatible server (an httpx
transport, no network): what it sends, how it reads the stream, its errors, and
that citations stay verified on our side whatever the server writes."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from rag.engine import Rag
from rag.errors import BackendError
from rag.answer.generation import ANSWER_GRAMMAR, OpenAIServerGenerator
from rag.settings import Settings

URL = "http://llm.test:8080/v1"
MESSAGES = [{"role": "user", "content": "Who is Nick Clegg?"}]


def sse(*pieces: str, done: bool = True) -> bytes:
    lines = [json.dumps({"choices": [{"index": 0, "delta": {"role": "assistant"}}]})]
    lines += [json.dumps({"choices": [{"index": 0, "delta": {"content": p}}]}) for p in pieces]
    if done:
        lines.append("[DONE]")
    return "".join(f"data: {line}\n\n" for line in lines).encode()


class FakeServer:
    """Records the requests; answers ``/models`` and ``/chat/completions``."""

    def __init__(self, reply: Callable[[dict[str, Any]], httpx.Response],
                 models: httpx.Response | None = None) -> None:
        self.reply = reply
        self.models = models or httpx.Response(200, json={"object": "list", "data": [{"id": "served-model"}]})
        self.bodies: list[dict[str, Any]] = []
        self.paths: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path)
        if request.url.path.endswith("/models"):
            return self.models
        body = json.loads(request.content)
        self.bodies.append(body)
        return self.reply(body)


def streaming(*pieces: str, done: bool = True) -> Callable[[dict[str, Any]], httpx.Response]:
    return lambda _: httpx.Response(200, content=sse(*pieces, done=done),
                                    headers={"content-type": "text/event-stream"})


def generator(server: FakeServer, model: str | None = None) -> OpenAIServerGenerator:
    return OpenAIServerGenerator(URL, model, transport=httpx.MockTransport(server))


def test_streams_the_pieces_and_passes_the_grammar_through() -> None:
    server = FakeServer(streaming("Nick", " Clegg", " leads", ""))
    gen = generator(server)
    assert gen.name == "served-model"  # asked the server once
    assert list(gen.stream(MESSAGES, 32, ANSWER_GRAMMAR)) == ["Nick", " Clegg", " leads"]
    assert gen.tokens_generated == 3
    body = server.bodies[0]
    assert body["grammar"] == ANSWER_GRAMMAR and body["model"] == "served-model"
    assert body["messages"] == MESSAGES and body["stream"] is True
    assert body["temperature"] == 0.0 and body["max_tokens"] == 32
    assert server.paths == ["/v1/models", "/v1/chat/completions"]


def test_a_configured_model_name_is_sent_as_is_and_no_grammar_means_none() -> None:
    server = FakeServer(streaming("ok"))
    gen = generator(server, model="meta-llama/Llama-3.1-8B-Instruct")
    assert list(gen.stream(MESSAGES, 8)) == ["ok"]
    assert server.bodies[0]["model"] == "meta-llama/Llama-3.1-8B-Instruct" and "grammar" not in server.bodies[0]
    assert server.paths == ["/v1/chat/completions"]


def test_a_prefill_is_not_sent() -> None:
    server = FakeServer(streaming("Nick"))
    gen = generator(server, model="m")
    assert list(gen.stream([*MESSAGES, {"role": "assistant", "content": "The answer is:"}], 8)) == ["Nick"]
    assert server.bodies[0]["messages"] == MESSAGES


def test_a_server_that_lists_no_models_gets_a_default_name() -> None:
    gen = generator(FakeServer(streaming("ok"), models=httpx.Response(404, text="not found")))
    assert gen.name == "default"


def test_a_stream_without_done_just_ends() -> None:
    assert list(generator(FakeServer(streaming("a", "b", done=False))).stream(MESSAGES, 8)) == ["a", "b"]


@pytest.mark.parametrize(("reply", "message"), [
    (lambda _: httpx.Response(500, text="model crashed"), "answered 500: model crashed"),
    (lambda _: httpx.Response(200, content=b'data: {"error": {"message": "out of memory"}}\n\n'), "out of memory"),
    (lambda _: httpx.Response(200, content=b"data: <html>\n\n"), "other than JSON"),
])
def test_server_failures_are_backend_errors(reply: Callable[[dict[str, Any]], httpx.Response],
                                            message: str) -> None:
    gen = generator(FakeServer(reply), model="m")
    with pytest.raises(BackendError, match=message):
        list(gen.stream(MESSAGES, 8))


def test_an_unreachable_server_is_a_backend_error_naming_it() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(BackendError, match=r"cannot reach the LLM server at http://llm.test:8080/v1"):
        OpenAIServerGenerator(URL, transport=httpx.MockTransport(refuse))
    gen = OpenAIServerGenerator(URL, "m", transport=httpx.MockTransport(refuse))
    with pytest.raises(BackendError, match="connection refused"):
        list(gen.stream(MESSAGES, 8))


@pytest.mark.slow
@pytest.mark.parametrize("pieces", [
    ("Nick Clegg [7] is the president [2].",),  # markers of its own (a server that ignores the grammar)
    ("Bob", " Smith", " runs", " Meta", " secretly", "."),  # words the evidence does not support
])
def test_citations_stay_verified_whatever_the_server_writes(seeded_dir: Path, embedder: Any,
                                                            pieces: tuple[str, ...]) -> None:
    settings = Settings(data_dir=seeded_dir, llm_url=URL)
    engine = Rag(settings, embedder=embedder)
    engine.__dict__["generator"] = generator(FakeServer(streaming(*pieces)))
    answer = engine.ask("Who is Meta's president of global affairs?")
    assert not answer.abstained and answer.citations and answer.model == "served-model"
    assert "Bob" not in answer.answer and "[7]" not in answer.answer
    markers = {int(m) for m in re.findall(r"\[(\d+)\]", answer.answer)}
    assert markers and markers <= {c.marker for c in answer.citations}
    seeds = Path(__file__).resolve().parents[2] / "seeds"
    for c in answer.citations:
        assert (seeds / c.source).read_text(encoding="utf-8")[c.start:c.end] == c.text
    assert "Clegg" in answer.answer
