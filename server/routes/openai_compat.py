"""The OpenAI-compatible API: ``GET /v1/models`` and ``POST /v1/chat/completions``.

The last user message is the question; earlier user/assistant turns are the
history that resolves follow-ups (each earlier question made standalone in turn,
as ``rag chat`` keeps them). System and developer messages are given to the model
after the pipeline's own prompt (at most MAX_INSTRUCTION_CHARS; tool messages are
accepted and not used); whatever they ask, the answer is verified against the
evidence like any other, so they can change its phrasing, never what it claims. The answer text
carries the ``[n]`` markers; ``citations``, ``abstained``, ``timings`` and
``standalone_question`` travel on the message and the completion (and on the last
stream chunk). ``max_tokens`` caps the content in tokens of the model's
tokenizer: a longer answer is cut after its last whole sentence that fits (after
its last whole word when none does), with ``finish_reason: "length"``; ``usage``
is counted with the same tokenizer.

OpenAI streams are append-only, while the pipeline may withdraw a draft that fails
verification (``POST /v1/ask`` streams say so with their ``citations`` event). So
a stream sends only final text: the role chunk as soon as the evidence is chosen
(``AnswerStarted``), then each part of the answer as the pipeline makes it final
(``FinalText``: a sentence of the model's once it is verified whole, which needs
the whole sentence, as the names and numbers it must keep can come anywhere in
it; the evidence that completes the draft; an abstention at once). So a
one-sentence answer arrives in one piece when its sentence is done. With
``max_tokens`` the text goes out once the answer is complete (the cut is made on
the whole answer). The deltas always add up to the non-streamed content."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse

from rag.ingest.chunking import split_sentences
from rag.errors import InputError, NotFoundError, RagError
from rag.answer.followup import Turn, standalone
from rag.types import Answer, AnswerEvent, FinalText, StreamEvent
from server.errors import rag_error_body
from server.routes._deps import ANSWER_ERROR_RESPONSES, ERROR_RESPONSES, require_json, service
from server.schemas import ChatCompletion, ChatRequest, ErrorOut, ModelList, ModelOut, chat_event_schema
from server.service import Service, reject_control_chars

router = APIRouter(tags=["openai"])
OWNER = "rag-local"


# --- the conversation ----------------------------------------------------------

def conversation(body: ChatRequest) -> tuple[str, list[Turn]]:
    """The question (the last message, the user's) and the earlier user/assistant
    turns, each earlier question made standalone with the turns before it."""
    turns = [m for m in body.messages if m.role in ("user", "assistant")]
    if not turns or turns[-1].role != "user":
        raise InputError("messages: the last message must come from the user")
    history: list[Turn] = []
    pending: str | None = None
    for m in turns[:-1]:
        text = reject_control_chars(m.text(), f"earlier {m.role} message")
        if m.role == "user":
            pending = " ".join(text.split())
        elif pending is not None:
            history.append(Turn(pending, text, " ".join(standalone(pending, history).split())))
            pending = None
    return turns[-1].text(), history


# The longest system/developer text passed to the model: with the evidence it must fit
# the model's context (2,048 tokens by default, about 4 characters each)
MAX_INSTRUCTION_CHARS = 4000


def instructions(body: ChatRequest) -> str:
    """The system and developer messages, for the model (after the pipeline's own
    prompt); 400 when longer than MAX_INSTRUCTION_CHARS."""
    text = "\n".join(reject_control_chars(m.text(), f"{m.role} message") for m in body.messages
                     if m.role in ("system", "developer") and m.text().strip())
    if len(text) > MAX_INSTRUCTION_CHARS:
        raise InputError(f"system and developer messages: {len(text)} characters, at most "
                         f"{MAX_INSTRUCTION_CHARS} are taken")
    return text


# --- max_tokens and usage --------------------------------------------------------

Count = Callable[[str], int]


def _sentence_ends(text: str) -> list[int]:
    """Offsets just past each whole sentence of an answer (a sentence that is only
    markers, "[1].", belongs to the one before it)."""
    spans = split_sentences(text)
    return [s.end for s, after in zip(spans, spans[1:] + [None])
            if after is None or not re.match(r"\[\d+\]", after.text)]


def fit(text: str, limit: int | None, count: Count) -> tuple[str, bool]:
    """``text`` within ``limit`` tokens: whole, or cut after its last whole sentence
    that fits (else its last whole word that fits; "" when not even one does);
    and whether it was cut."""
    if limit is None or count(text) <= limit:
        return text, False
    best = ""
    for end in _sentence_ends(text):
        if count(text[:end]) > limit:
            break
        best = text[:end]
    if not best:
        for word in re.finditer(r"\S+", text):
            if count(text[:word.end()]) > limit:
                break
            best = text[:word.end()]
    return best, True


@dataclass(frozen=True)
class Reply:
    """An answer as this API returns it."""

    content: str
    finish_reason: str  # "stop", or "length" when max_tokens cut it
    usage: dict[str, int]
    extras: dict[str, object]  # citations, abstained, timings, standalone_question


def make_reply(answer: Answer, limit: int | None, count: Count, prompt_tokens: int) -> Reply:
    content, cut = fit(answer.answer, limit, count)
    completion = count(content)
    d = answer.to_dict()
    return Reply(content, "length" if cut else "stop",
                 {"prompt_tokens": prompt_tokens, "completion_tokens": completion,
                  "total_tokens": prompt_tokens + completion},
                 {k: d[k] for k in ("citations", "abstained", "timings", "standalone_question")})


# --- streaming -------------------------------------------------------------------

def _data(obj: object) -> str:
    """One event of an OpenAI stream: ``data:`` and JSON on one line."""
    return f"data: {json.dumps(obj, ensure_ascii=False)}\n\n"


def _chunk(cid: str, created: int, model: str, delta: dict[str, object], finish: str | None = None,
           **extra: object) -> str:
    return _data({"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                  "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra})


async def stream_chunks(cid: str, model: str, first: StreamEvent, rest: AsyncIterator[StreamEvent],
                        reply: Callable[[Answer], Reply], progressive: bool = True) -> AsyncIterator[str]:
    """The chunks of one streamed completion: the role chunk at once, then the
    answer's text as it becomes final (``FinalText``; draft pieces are never sent:
    a draft may still be withdrawn; with ``progressive`` off, all at the end), then a
    last chunk with the finish reason, usage and the extensions, and ``[DONE]``; or
    an error body and ``[DONE]``."""
    created = int(time.time())
    sent = ""
    try:
        yield _chunk(cid, created, model, {"role": "assistant", "content": ""})
        event: StreamEvent | None = first
        while event is not None:
            if isinstance(event, FinalText) and progressive:
                sent += event.text
                yield _chunk(cid, created, model, {"content": event.text})
            elif isinstance(event, AnswerEvent):  # the answer: all of it is final now
                r = reply(event.answer)
                if not r.content.startswith(sent):  # never: the answer starts with its final parts
                    raise RuntimeError("the answer does not start with the text already streamed")
                if r.content[len(sent):]:
                    yield _chunk(cid, created, model, {"content": r.content[len(sent):]})
                yield _chunk(cid, created, model, {"citations": r.extras["citations"]}, r.finish_reason,
                             usage=r.usage, **r.extras)
            event = await anext(rest, None)
    except RagError as exc:
        yield _data(rag_error_body(exc))
    finally:
        await rest.aclose()
    yield "data: [DONE]\n\n"


# --- routes ----------------------------------------------------------------------

def _model(svc: Service) -> dict[str, object]:
    return {"id": svc.rag.model_name, "object": "model", "created": int(svc.started), "owned_by": OWNER}


@router.get("/v1/models", response_model=ModelList, responses=ERROR_RESPONSES)
async def list_models(request: Request) -> object:
    """The one model that answers (chat front-ends list models before they chat)."""
    return {"object": "list", "data": [_model(service(request))]}


@router.get("/v1/models/{model_id:path}", response_model=ModelOut,
            responses={**ERROR_RESPONSES, 404: {"model": ErrorOut, "description": "No such model"}})
async def get_model(model_id: str, request: Request) -> object:
    """The answering model, by the id ``GET /v1/models`` lists."""
    model = _model(service(request))
    if model_id != model["id"]:
        raise NotFoundError(f"no model {model_id!r}: this server answers with {model['id']!r}")
    return model


_CHAT_DOC: dict[int | str, dict[str, object]] = {
    **ANSWER_ERROR_RESPONSES,
    200: {
        "model": ChatCompletion,
        "description": "A ``chat.completion`` object, or with ``stream: true`` a ``text/event-stream`` of "
                       "``chat.completion.chunk`` objects ending with ``data: [DONE]``.",
        "content": {"text/event-stream": {"schema": chat_event_schema()}},
    },
}


@router.post("/v1/chat/completions", responses=_CHAT_DOC, dependencies=[Depends(require_json)])
async def chat_completions(body: ChatRequest, request: Request) -> object:
    """OpenAI-compatible chat: the last user message is the question, earlier turns are history;
    system and developer messages go to the model after the pipeline's own prompt."""
    svc = service(request)
    question, history = conversation(body)
    told = instructions(body)
    svc.check_question(question)
    prompt_tokens = sum(svc.count_tokens(m.text()) for m in body.messages)
    limit = body.token_limit()

    def reply(answer: Answer) -> Reply:
        return make_reply(answer, limit, svc.count_tokens, prompt_tokens)

    cid = f"chatcmpl-{uuid.uuid4().hex[:24]}"
    model = svc.rag.model_name
    if not body.stream:
        r = reply((await svc.answer(question, body.top_k, history, body.sources, told)).answer)
        return {"id": cid, "object": "chat.completion", "created": int(time.time()), "model": model,
                "choices": [{"index": 0, "finish_reason": r.finish_reason,
                             "message": {"role": "assistant", "content": r.content, **r.extras}}],
                "usage": r.usage, **r.extras}
    first, events = await svc.start_stream(question, body.top_k, history, body.sources, told)
    return StreamingResponse(stream_chunks(cid, model, first, events, reply, progressive=limit is None),
                             media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
