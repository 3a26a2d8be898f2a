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
from starlette.requests import Request

from rag.answer.pipeline import Turn
from rag.engine import Rag
from rag.errors import BusyError, EmptyQuestionError, InputError, PayloadTooLargeError
from rag.settings import Settings
from rag.types import AnswerEvent, StreamEvent
from server.errors import ClientGoneError
from server.gate import Gate
from server.metrics import Metrics

log = logging.getLogger(__name__)
WRITE_CLIENT_POLL_S = 0.25  # how often a running write checks that its client is still there

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
    writes_waiting: int = 0  # writes queued behind the one in progress
    _write_s: float = 0.0  # a running mean of recent write times (for Retry-After)
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

    async def write(self, fn, *args, request: Request | None = None):  # noqa: ANN001, ANN201 - any index write
        """Index writes one at a time (reads go on meanwhile). At most
        ``max_write_queue`` wait for their turn; more get 503 with Retry-After at
        once. A write whose client has gone away by its turn is not made; one whose
        client goes away while it runs is told so: ``fn`` is called as
        ``fn(*args, stop)`` and should end early (ClientGoneError) once the
        ``threading.Event`` ``stop`` is set."""
        if self.write_lock.locked() and self.writes_waiting >= self.settings.max_write_queue:
            self.metrics.writes.labels("refused").inc()
            raise BusyError(f"the server is busy writing ({self.writes_waiting} writes waiting); retry shortly",
                            retry_after=self.write_retry_after())
        self.writes_waiting += 1
        try:
            await self.write_lock.acquire()
        finally:
            self.writes_waiting -= 1
        stop = threading.Event()
        watcher = asyncio.create_task(self._watch_client(request, stop)) if request is not None else None
        try:
            if request is not None and await request.is_disconnected():
                raise ClientGoneError("the client went away before its write began")
            t0 = time.perf_counter()
            result = await run_in_threadpool(fn, *args, stop)
            self._write_s = 0.7 * self._write_s + 0.3 * (time.perf_counter() - t0) if self._write_s else \
                time.perf_counter() - t0
            self.metrics.writes.labels("done").inc()
            return result
        except ClientGoneError:
            self.metrics.writes.labels("abandoned").inc()
            raise
        finally:
            if watcher is not None:
                watcher.cancel()
            self.write_lock.release()

    @staticmethod
    async def _watch_client(request: Request, stop: threading.Event) -> None:
        """Set ``stop`` once the client of a running write has gone away."""
        while not stop.is_set():
            if await request.is_disconnected():
                log.info("%s %s: the client went away during its write: stopping it", request.method,
                         request.url.path)
                stop.set()
                return
            await asyncio.sleep(WRITE_CLIENT_POLL_S)

    def write_retry_after(self) -> float:
        """Seconds until the write queue has likely moved on (the recent write time, at least 1)."""
        return max(1.0, self._write_s * (self.writes_waiting + 1))

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
