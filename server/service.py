"""What the routes share: the engine, the generation gate, metrics, and the
write lock. Routes stay thin; everything that blocks runs in a thread."""

from __future__ import annotations

import asyncio
import logging
import math
import re
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from starlette.concurrency import run_in_threadpool

from rag.answer import Turn
from rag.engine import Rag
from rag.errors import EmptyQuestionError, InputError, PayloadTooLargeError
from rag.settings import Settings
from rag.types import AnswerEvent, StreamEvent
from server.gate import Gate
from server.metrics import Metrics

log = logging.getLogger(__name__)

# C0 controls but tab, line feed and carriage return, and DEL: never part of a question
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def reject_control_chars(text: str, what: str) -> str:
    """``text`` unchanged, or ``InputError`` (400) if it holds NUL bytes or other control characters."""
    if _CONTROL.search(text):
        raise InputError(f"the {what} contains control characters (such as NUL bytes)")
    return text


@dataclass
class Service:
    rag: Rag
    settings: Settings
    gate: Gate
    metrics: Metrics
    ready: bool = False
    write_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    started: float = field(default_factory=time.time)
    _counter: Callable[[str], int] | None = field(default=None, repr=False)
    _counter_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def check_question(self, question: str, what: str = "question") -> str:
        """413 if too long, 400 if empty or holding control characters."""
        if len(question.encode("utf-8", "surrogatepass")) > self.settings.max_question_bytes:
            raise PayloadTooLargeError(f"the {what} is longer than {self.settings.max_question_bytes} bytes")
        if not question.strip():
            raise EmptyQuestionError(f"the {what} is empty")
        return reject_control_chars(question, what)

    async def answer_events(self, question: str, top_k: int | None, history: Sequence[Turn] = (),
                            sources: Sequence[str] | None = None,
                            instructions: str = "") -> AsyncIterator[StreamEvent]:
        """The pipeline's events, produced in a worker thread behind the gate
        (``sources``: answer only from these document ids or id prefixes;
        ``instructions``: the client's own, for the model)."""
        deadline = time.monotonic() + self.settings.request_timeout
        events = self.gate.stream(lambda: self.rag.ask_stream(question, top_k, history, sources, instructions),
                                  deadline)
        try:
            async for event in events:
                if isinstance(event, AnswerEvent):
                    a = event.answer
                    self.metrics.ttft.observe(a.timings.ttft_ms / 1000)
                    self.metrics.answers.labels("abstained" if a.abstained else "answered").inc()
                yield event
        finally:
            await events.aclose()

    async def start_stream(self, question: str, top_k: int | None, history: Sequence[Turn] = (),
                           sources: Sequence[str] | None = None,
                           instructions: str = "") -> tuple[StreamEvent, AsyncIterator[StreamEvent]]:
        """The first event and the rest: errors before the first event (busy, empty
        index, ...) raise here, so they become plain JSON errors, not a stream."""
        events = self.answer_events(question, top_k, history, sources, instructions)
        try:
            return await anext(events), events
        except BaseException:
            await events.aclose()
            raise

    async def answer(self, question: str, top_k: int | None, history: Sequence[Turn] = (),
                     sources: Sequence[str] | None = None, instructions: str = "") -> AnswerEvent:
        final: AnswerEvent | None = None
        async for event in self.answer_events(question, top_k, history, sources, instructions):
            if isinstance(event, AnswerEvent):
                final = event
        assert final is not None, "the pipeline always ends with an AnswerEvent"
        return final

    async def write(self, fn, *args):  # noqa: ANN001, ANN201 - any blocking index write
        """Index writes one at a time (reads go on meanwhile)."""
        async with self.write_lock:
            return await run_in_threadpool(fn, *args)

    def count_tokens(self, text: str) -> int:
        """``text``'s length in tokens of the answering model's tokenizer (for
        ``usage`` and ``max_tokens``): the loaded llama.cpp model's, else that of the
        GGUF file at ``RAG_MODEL_PATH`` (its vocabulary only, loaded once; with
        ``RAG_USE_LLM=false``); with an LLM server (``RAG_LLM_URL``), or without the
        file, an estimate of one token per 4 bytes."""
        if self._counter is None:
            with self._counter_lock:
                if self._counter is None:
                    self._counter = self._make_counter()
        return self._counter(text) if text else 0

    def _make_counter(self) -> Callable[[str], int]:
        gen = self.rag.__dict__.get("generator")  # only once loaded
        count = getattr(gen, "count_tokens", None)
        if callable(count):
            return count  # type: ignore[no-any-return]
        path = Path(self.settings.model_path).expanduser()
        if not self.settings.llm_url and path.is_file():
            try:
                from llama_cpp import Llama

                vocab = Llama(model_path=str(path), vocab_only=True, verbose=False)
                return lambda text: len(vocab.tokenize(text.encode("utf-8"), add_bos=False, special=False))
            except (ImportError, ValueError, RuntimeError) as exc:
                log.warning("cannot read the tokenizer of %s (%s): token counts are estimated", path, exc)
        return lambda text: math.ceil(len(text.encode("utf-8")) / 4)

    def tokens_generated(self) -> int:
        gen = self.rag.__dict__.get("generator")  # only once loaded
        return int(getattr(gen, "tokens_generated", 0))
