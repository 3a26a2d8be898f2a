"""``POST /v1/chat/completions``, OpenAI-compatible. The answer text carries the
``[n]`` markers; citations travel as ``citations`` on the message (and on the
last stream chunk), next to ``abstained``. Earlier user/assistant turns are the
history used to resolve follow-up questions.

OpenAI streams are append-only, while the pipeline may replace a draft that fails
verification (``POST /v1/ask`` streams say so with their ``citations`` event). So
this route streams only verified text: the deltas are the final answer, sent as
soon as it is known, and they always add up to the non-streamed content."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import AsyncIterator

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse

from rag.answer import Turn
from rag.errors import InputError, RagError
from rag.types import Answer, AnswerEvent, StreamEvent
from server.errors import rag_error_body
from server.routes._deps import ANSWER_ERROR_RESPONSES, require_json, service
from server.schemas import ChatCompletion, ChatRequest, chat_event_schema
from server.service import reject_control_chars

router = APIRouter(tags=["openai"])


def _conversation(body: ChatRequest) -> tuple[str, list[Turn]]:
    turns = [m for m in body.messages if m.role in ("user", "assistant")]
    if not turns or turns[-1].role != "user":
        raise InputError("messages: the last message must come from the user")
    history: list[Turn] = []
    pending: str | None = None
    for m in turns[:-1]:
        text = reject_control_chars(m.text(), f"earlier {m.role} message")
        if m.role == "user":
            pending = text
        elif pending is not None:
            history.append(Turn(pending, text))
            pending = None
    return turns[-1].text(), history


def _usage(answer: Answer) -> dict[str, int]:
    q, a = len(answer.question.split()), len(answer.answer.split())
    return {"prompt_tokens": q, "completion_tokens": a, "total_tokens": q + a}


def _extras(answer: Answer) -> dict[str, object]:
    d = answer.to_dict()
    return {"citations": d["citations"], "abstained": d["abstained"], "timings": d["timings"]}


def _data(obj: object) -> str:
    """One event of an OpenAI stream: ``data:`` and JSON on one line."""
    return f"data: {json.dumps(obj, ensure_ascii=False)}\n\n"


def _chunk(cid: str, created: int, model: str, delta: dict[str, object], finish: str | None = None,
           **extra: object) -> str:
    return _data({"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                  "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra})


async def _stream(cid: str, model: str, first: StreamEvent, rest: AsyncIterator[StreamEvent]) -> AsyncIterator[str]:
    created = int(time.time())
    try:
        yield _chunk(cid, created, model, {"role": "assistant", "content": ""})
        event: StreamEvent | None = first
        while event is not None:
            if isinstance(event, AnswerEvent):
                a = event.answer
                for piece in re.findall(r"\S+\s*", a.answer):
                    yield _chunk(cid, created, model, {"content": piece})
                extras = _extras(a)
                yield _chunk(cid, created, model, {"citations": extras["citations"]}, "stop",
                             usage=_usage(a), **extras)
            event = await anext(rest, None)
    except RagError as exc:
        yield _data(rag_error_body(exc))
    finally:
        await rest.aclose()
    yield "data: [DONE]\n\n"


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
    """OpenAI-compatible chat: the last user message is the question, earlier turns are history."""
    svc = service(request)
    question, history = _conversation(body)
    svc.check_question(question)
    cid = f"chatcmpl-{uuid.uuid4().hex[:24]}"
    model = svc.rag.model_name
    if not body.stream:
        a = (await svc.answer(question, body.top_k, history)).answer
        return {"id": cid, "object": "chat.completion", "created": int(time.time()), "model": model,
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": a.answer, **_extras(a)}}],
                "usage": _usage(a), **_extras(a)}
    first, events = await svc.start_stream(question, body.top_k, history)
    return StreamingResponse(_stream(cid, model, first, events), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache"})
