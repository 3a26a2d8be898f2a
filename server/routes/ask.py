"""``POST /v1/ask``: one answer as JSON, or streamed as Server-Sent Events."""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse

from rag.errors import RagError
from rag.types import AnswerEvent, StreamEvent, TokenEvent
from server.errors import rag_error_body
from server.routes._deps import ANSWER_ERROR_RESPONSES, require_json, service, sse
from server.schemas import AnswerOut, AskRequest, ask_event_schema

router = APIRouter(tags=["answers"])

_STREAM_DOC: dict[int | str, dict[str, object]] = {
    **ANSWER_ERROR_RESPONSES,
    200: {
        "description": "The answer (``rag ask --json``), or with ``stream: true`` a ``text/event-stream`` of "
                       "``token`` {text}, then ``citations`` {answer, abstained, citations}, then ``done`` "
                       "(the whole answer object with timings); ``error`` {error} if it fails midway.",
        "content": {"text/event-stream": {"schema": ask_event_schema()}},
    },
}


async def _events(first: StreamEvent, rest: AsyncIterator[StreamEvent]) -> AsyncIterator[str]:
    try:
        event: StreamEvent | None = first
        while event is not None:
            if isinstance(event, TokenEvent):
                yield sse("token", {"text": event.text})
            elif isinstance(event, AnswerEvent):
                d = event.answer.to_dict()
                yield sse("citations", {"answer": d["answer"], "abstained": d["abstained"],
                                        "citations": d["citations"]})
                yield sse("done", d)
            event = await anext(rest, None)
    except RagError as exc:
        yield sse("error", rag_error_body(exc))
    finally:
        await rest.aclose()


@router.post("/v1/ask", response_model=AnswerOut, responses=_STREAM_DOC, dependencies=[Depends(require_json)])
async def ask(body: AskRequest, request: Request) -> object:
    """Answer a question from the indexed documents; every sentence cites verbatim passages."""
    svc = service(request)
    question = svc.check_question(body.question)
    if not body.stream:
        final = await svc.answer(question, body.top_k, sources=body.sources)
        return final.answer.to_dict()
    first, events = await svc.start_stream(question, body.top_k, sources=body.sources)
    return StreamingResponse(_events(first, events), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
