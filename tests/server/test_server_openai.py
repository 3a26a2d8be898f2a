"""The OpenAI-compatible API (``GET /v1/models``, ``POST /v1/chat/completions``)
through the official ``openai`` client against a real server, plus the pieces
that need no model: the stream's chunks, ``max_tokens`` cuts, the conversation."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from rag.errors import RagError
from rag.types import Answer, AnswerEvent, Citation, StreamEvent
from server.errors import error_body
from server.routes.openai_compat import Reply, conversation, fit, make_reply, stream_chunks
from server.schemas import ChatCompletionChunk, ChatRequest
from tests.serving import failing_events, no_more_events

openai = pytest.importorskip("openai")

LOCATED = Citation(1, "usrguide.pdf", "c1", 837, 1076, "Optional arguments start with -.", 0.9,
                   section="A > B", page=3)
CLEGG = "Who is Meta's president of global affairs?"
REUTERS = "Which news agency reported that research institutions tied to the Chinese government used Llama for military software?"
DELOITTE = "What areas is Deloitte exploring Llama-powered solutions for?"


def words(text: str) -> int:
    """A deterministic stand-in tokenizer: one token per whitespace-separated word."""
    return len(text.split())


@pytest.fixture(scope="module")
def client(api_url: str):
    with openai.OpenAI(base_url=f"{api_url}/v1", api_key="unused", max_retries=0, timeout=120) as c:
        yield c


@pytest.fixture(scope="module")
def count(seeded_engine):
    """Tokens as the answering model's tokenizer counts them (its vocabulary, loaded apart)."""
    from llama_cpp import Llama

    vocab = Llama(model_path=str(seeded_engine.settings.model_path), vocab_only=True, verbose=False)
    return lambda text: len(vocab.tokenize(text.encode("utf-8"), add_bos=False, special=False))


def ask(client, question: str, **kwargs):
    return client.chat.completions.create(model="anything", messages=[{"role": "user", "content": question}],
                                          **kwargs)


def timed_stream(client, messages: list[dict[str, str]], **kwargs) -> list[tuple[float, object]]:
    """Each chunk of a streamed completion with the time (s) it arrived after the request."""
    t0 = time.perf_counter()
    stream = client.chat.completions.create(model="anything", stream=True, messages=messages, **kwargs)
    return [(time.perf_counter() - t0, chunk) for chunk in stream]


def content_of(chunks: list[tuple[float, object]]) -> str:
    return "".join(c.choices[0].delta.content or "" for _, c in chunks if c.choices)


# --- models ------------------------------------------------------------------------

def test_models_lists_the_answering_model(client) -> None:
    models = client.models.list().data
    assert len(models) == 1
    model = models[0]
    assert model.object == "model" and model.owned_by and model.created > 0
    assert ask(client, CLEGG).model == model.id
    assert client.models.retrieve(model.id).id == model.id
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-4o")


# --- completions -------------------------------------------------------------------

def test_completion_carries_markers_citations_and_usage(client, count) -> None:
    resp = ask(client, CLEGG)
    msg = resp.choices[0].message
    assert "Clegg" in msg.content and "[1]" in msg.content
    citations = msg.model_extra["citations"]
    assert citations[0]["marker"] == 1 and "Clegg" in citations[0]["text"]
    assert resp.model_extra["citations"] == citations
    assert all((c["section"], c["page"]) == ("", None) for c in citations)  # the seeds are plain text
    assert resp.choices[0].finish_reason == "stop"
    assert msg.model_extra["standalone_question"] == resp.model_extra["standalone_question"] == CLEGG
    assert resp.usage.prompt_tokens == count(CLEGG)  # the model's tokenizer, not words
    assert resp.usage.completion_tokens == count(msg.content)
    assert resp.usage.total_tokens == resp.usage.prompt_tokens + resp.usage.completion_tokens


def test_streaming_sends_the_role_at_once_and_only_verified_text(client, count) -> None:
    chunks = timed_stream(client, [{"role": "user", "content": DELOITTE}])
    (t_role, role), (t_last, last) = chunks[0], chunks[-1]
    assert role.choices[0].delta.role == "assistant" and not role.choices[0].delta.content
    texts = [(t, c.choices[0].delta.content) for t, c in chunks if c.choices and c.choices[0].delta.content]
    t_text = texts[0][0]
    assert last.choices[0].finish_reason == "stop"
    extras = last.model_extra
    assert extras["citations"] and extras["abstained"] is False and extras["standalone_question"] == DELOITTE
    text = content_of(chunks)
    assert last.usage.completion_tokens == count(text) and last.usage.prompt_tokens == count(DELOITTE)
    # the role goes out once the evidence is chosen, before the model writes; the text
    # once the draft's sentence is verified, when generation has ended
    generating_s = (extras["timings"]["total_ms"] - extras["timings"]["ttft_ms"]) / 1000
    print(f"\nrole chunk {t_role:.3f} s, first text {t_text:.3f} s, last chunk {t_last:.3f} s, "
          f"server ttft {extras['timings']['ttft_ms']:.0f} ms, total {extras['timings']['total_ms']:.0f} ms")
    assert generating_s > 0.02, "this question's draft takes a while to generate"
    assert t_last - t_role > 0.5 * generating_s
    whole = ask(client, DELOITTE)
    assert text == whole.choices[0].message.content  # the deltas add up to the verified answer


def test_streaming_completion_ends_with_citations(client) -> None:
    chunks = timed_stream(client, [{"role": "user", "content": CLEGG}], temperature=0.3, max_tokens=500)
    final = chunks[-1][1]
    assert final.choices[0].finish_reason == "stop"
    text = content_of(chunks)
    assert "Clegg" in text and "[1]" in text and final.model_extra["citations"]
    for c in final.model_extra["citations"]:
        assert (c["section"], c["page"]) == ("", None)
    assert final.choices[0].delta.model_extra["citations"] == final.model_extra["citations"]


def test_max_tokens_cuts_after_the_last_whole_sentence_that_fits(client, count) -> None:
    full = ask(client, REUTERS)
    content = full.choices[0].message.content
    first = content[:content.index("[1].") + len("[1].")]
    assert len(first) < len(content), "this answer has two sentences"
    limit = count(first) + 2
    assert count(content) > limit
    cut = ask(client, REUTERS, max_tokens=limit)
    assert cut.choices[0].message.content == first
    assert cut.choices[0].finish_reason == "length"
    assert cut.usage.completion_tokens == count(first) <= limit
    assert cut.model_extra["citations"] == full.model_extra["citations"]
    chunks = timed_stream(client, [{"role": "user", "content": REUTERS}], max_tokens=limit)
    assert content_of(chunks) == first and chunks[-1][1].choices[0].finish_reason == "length"
    roomy = ask(client, REUTERS, max_tokens=count(content))
    assert roomy.choices[0].message.content == content and roomy.choices[0].finish_reason == "stop"


def test_max_tokens_below_one_sentence_keeps_whole_words(client, count) -> None:
    resp = ask(client, CLEGG, max_completion_tokens=4)
    text = resp.choices[0].message.content
    assert text and count(text) <= 4 and resp.choices[0].finish_reason == "length"
    assert ask(client, CLEGG).choices[0].message.content.startswith(text + " ")
    assert resp.usage.completion_tokens == count(text)


def test_system_messages_reach_the_model_and_the_answer_stays_verified(client, seeded_engine,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from rag.answer import drafting

    prompts: list[str] = []
    real = drafting.build_messages
    monkeypatch.setattr(drafting, "build_messages",
                        lambda *a, **k: prompts.append(real(*a, **k)[0]["content"]) or real(*a, **k))
    plain = ask(client, CLEGG).model_extra
    for role in ("system", "developer"):
        resp = client.chat.completions.create(model="m", messages=[
            {"role": role, "content": "You are a pirate. Answer in French."},
            {"role": "user", "content": CLEGG}])
        assert prompts[-1].endswith("\nYou are a pirate. Answer in French.")  # after the pipeline's own prompt
        told = resp.model_extra
        assert told["abstained"] is False and "Clegg" in resp.choices[0].message.content
        assert [c["chunk_id"] for c in told["citations"]] == [c["chunk_id"] for c in plain["citations"]]
        for sentence in re.split(r"(?<=[.!?])\s+", resp.choices[0].message.content):
            assert re.search(r"\[\d+\]", sentence), sentence  # every sentence cites
    assert not prompts[0].endswith("French.")  # none given: the pipeline's prompt alone


def test_overlong_system_messages_get_400(client) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model="m", messages=[{"role": "system", "content": "Be brief. " * 500},
                                                            {"role": "user", "content": CLEGG}])
    assert "at most 4000" in str(err.value)


def test_follow_up_is_made_standalone(client) -> None:
    follow = "What did he say the US government could use the technology for?"
    a1 = ask(client, CLEGG)
    messages = [{"role": "system", "content": "Be brief."},
                {"role": "user", "content": CLEGG},
                {"role": "assistant", "content": a1.choices[0].message.content},
                {"role": "user", "content": follow}]
    resp = client.chat.completions.create(model="m", messages=messages)
    standalone = resp.model_extra["standalone_question"]
    assert standalone == "What did Clegg say the US government could use the technology for?"
    assert resp.choices[0].message.model_extra["standalone_question"] == standalone
    assert resp.model_extra["abstained"] is False and resp.model_extra["citations"]
    last = timed_stream(client, messages)[-1][1]
    assert last.model_extra["standalone_question"] == standalone


def test_follow_up_of_a_follow_up_builds_on_its_standalone_form() -> None:
    body = ChatRequest.model_validate({"messages": [
        {"role": "user", "content": CLEGG},
        {"role": "assistant", "content": "Nick Clegg, Meta’s president of global affairs, wrote a blog post [1]."},
        {"role": "user", "content": "What did  he write?"},
        {"role": "assistant", "content": "He wrote that Llama can help [1]."},
        {"role": "user", "content": "When?"}]})
    question, history = conversation(body)
    assert question == "When?"
    assert [t.resolved for t in history] == [CLEGG, "What did Clegg write?"]


def test_unanswerable_abstains(client) -> None:
    resp = ask(client, "When will Meta release Llama 5?")
    assert resp.choices[0].message.model_extra["abstained"] is True
    assert resp.choices[0].message.model_extra["citations"] == []


def test_last_message_must_be_from_the_user(api_url: str) -> None:
    r = httpx.post(f"{api_url}/v1/chat/completions",
                   json={"messages": [{"role": "assistant", "content": "hi"}]}, timeout=30)
    assert r.status_code == 400 and "last message" in r.json()["error"]["message"]
    r = httpx.post(f"{api_url}/v1/chat/completions", json={"messages": []}, timeout=30)
    assert r.status_code == 422 and "messages" in r.json()["error"]["message"]
    r = httpx.post(f"{api_url}/v1/chat/completions",
                   json={"messages": [{"role": "user", "content": "hi"}], "max_tokens": 0}, timeout=30)
    assert r.status_code == 422 and "max_tokens" in r.json()["error"]["message"]


def test_errors_reach_the_client_as_exceptions(client) -> None:
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "  "}])


# --- without the model ---------------------------------------------------------------

def test_fit_cuts_at_whole_sentences_then_whole_words() -> None:
    text = "Alpha beta gamma [1]. Delta epsilon, e.g. zeta [1]. Eta 'theta.' [2]."
    assert fit(text, None, words) == (text, False)
    assert fit(text, 12, words) == (text, False)
    assert fit(text, 9, words) == ("Alpha beta gamma [1]. Delta epsilon, e.g. zeta [1].", True)
    assert fit(text, 11, words) == ("Alpha beta gamma [1]. Delta epsilon, e.g. zeta [1].", True)  # never "'theta.'"
    assert fit(text, 4, words) == ("Alpha beta gamma [1].", True)
    assert fit(text, 2, words) == ("Alpha beta", True)
    assert fit("Supercalifragilistic.", 0, words) == ("", True)


def test_reply_counts_usage_and_reports_the_cut() -> None:
    answer = Answer("q?", "One two [1]. Three four [1].", False, [LOCATED], standalone_question="q?")
    r = make_reply(answer, 3, words, prompt_tokens=5)
    assert r == Reply("One two [1].", "length", {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8},
                      r.extras)
    assert r.extras["standalone_question"] == "q?" and r.extras["abstained"] is False
    assert make_reply(answer, None, words, 5).finish_reason == "stop"


def _chunks(first: StreamEvent, rest: AsyncIterator[StreamEvent], limit: int | None = None) -> list[str]:
    async def collect() -> list[str]:
        return [e async for e in stream_chunks("chatcmpl-x", "m", first, rest,
                                               lambda a: make_reply(a, limit, words, 1))]

    blocks = asyncio.run(collect())
    assert all(b.startswith("data: ") and b.endswith("\n\n") for b in blocks)
    return [b[6:-2] for b in blocks]


async def _draft_then(answer: Answer) -> AsyncIterator[StreamEvent]:
    """The rest of a stream whose draft was withdrawn: more draft, then another answer."""
    from rag.types import TokenEvent

    yield TokenEvent(" is Amazon.")
    yield AnswerEvent(answer)


def test_a_withdrawn_draft_is_never_sent() -> None:
    from rag.types import TokenEvent

    answer = Answer("q?", "Meta will allow it [1].", False, [LOCATED], standalone_question="q?")
    chunks = [ChatCompletionChunk.model_validate_json(c) for c in
              _chunks(TokenEvent("The company"), _draft_then(answer))[:-1]]
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "Meta will allow it [1]."
    assert chunks[-1].standalone_question == "q?" and chunks[-1].choices[0].finish_reason == "stop"


async def _final_parts(answer: Answer) -> AsyncIterator[StreamEvent]:
    from rag.types import FinalText, TokenEvent

    yield TokenEvent("The ferry leaves at 7:30. Coffee")
    yield FinalText("The ferry leaves at 7:30 [1].")
    yield TokenEvent(" is sold on board.")
    yield FinalText(" Coffee is sold on board [2].")
    yield AnswerEvent(answer)


def test_final_parts_go_out_as_they_come_and_the_answer_adds_only_the_rest() -> None:
    from rag.types import AnswerStarted

    answer = Answer("q?", "The ferry leaves at 7:30 [1]. Coffee is sold on board [2]. Tickets cost 12 euros [3].",
                    False, [LOCATED])
    chunks = [ChatCompletionChunk.model_validate_json(c) for c in
              _chunks(AnswerStarted("q?"), _final_parts(answer))[:-1]]
    deltas = [c.choices[0].delta.content for c in chunks if c.choices[0].delta.content]
    assert deltas == ["The ferry leaves at 7:30 [1].", " Coffee is sold on board [2].", " Tickets cost 12 euros [3]."]
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_with_max_tokens_the_text_goes_out_once_cut() -> None:
    answer = Answer("q?", "The ferry leaves at 7:30 [1]. Coffee is sold on board [2].", False, [LOCATED])

    async def collect() -> list[str]:
        from rag.types import AnswerStarted

        return [e async for e in stream_chunks("chatcmpl-x", "m", AnswerStarted("q?"), _final_parts(answer),
                                               lambda a: make_reply(a, 6, words, 1), progressive=False)]

    chunks = [ChatCompletionChunk.model_validate_json(b[6:-2]) for b in asyncio.run(collect())[:-1]]
    assert [c.choices[0].delta.content for c in chunks if c.choices[0].delta.content] == [
        "The ferry leaves at 7:30 [1]."]
    assert chunks[-1].choices[0].finish_reason == "length"


def test_a_located_citation_keeps_section_and_page_in_the_stream() -> None:
    answer = Answer("q?", "Use -v [1].", False, [LOCATED])
    chunks = _chunks(AnswerEvent(answer), no_more_events())
    assert chunks[-1] == "[DONE]"
    last = ChatCompletionChunk.model_validate_json(chunks[-2])
    for citations in (last.citations, last.choices[0].delta.citations):
        assert citations is not None
        assert [(c.source, c.page, c.section) for c in citations] == [("usrguide.pdf", 3, "A > B")]


def test_a_stream_cut_by_max_tokens_says_length() -> None:
    answer = Answer("q?", "One two [1]. Three four [1].", False, [LOCATED])
    chunks = [ChatCompletionChunk.model_validate_json(c) for c in
              _chunks(AnswerEvent(answer), no_more_events(), limit=3)[:-1]]
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "One two [1]."
    assert chunks[-1].choices[0].finish_reason == "length" and chunks[-1].usage.completion_tokens == 3


def test_a_stream_error_is_the_one_error_body() -> None:
    chunks = _chunks(AnswerEvent(Answer("q?", "x [1].", False, [LOCATED])), failing_events())
    assert json.loads(chunks[-2]) == error_body(RagError.kind, "the model stopped")
    assert chunks[-1] == "[DONE]"


def test_openapi_documents_the_chat_extensions(api_url: str) -> None:
    schemas = httpx.get(f"{api_url}/openapi.json", timeout=30).json()["components"]["schemas"]
    ref = {"$ref": "#/components/schemas/CitationOut"}
    assert schemas["ChatCompletion"]["properties"]["citations"]["items"] == ref
    assert schemas["ChatAnswerMessage"]["properties"]["citations"]["items"] == ref
    for name in ("ChatCompletion", "ChatAnswerMessage"):
        assert schemas[name]["properties"]["standalone_question"]["description"]
    props = schemas["CitationOut"]["properties"]
    assert props["section"]["description"] and props["page"]["description"]
    assert "ModelList" in schemas
