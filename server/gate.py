"""Admission control for the model, and the bridge that runs the (synchronous)
answer pipeline in a worker thread while the event loop streams.

``Gate`` lets ``concurrency`` answers run at once (1 for in-process llama.cpp;
``RAG_LLM_CONCURRENCY`` with an LLM server that has parallel slots) and
``max_queue`` more wait;
the next one is refused at once with ``BusyError`` (HTTP 503 + Retry-After)
instead of piling up. A slot is held until the worker thread has really stopped
using the model, even when the client went away."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from rag.errors import BusyError, RequestTimeoutError

T = TypeVar("T")
_END = object()


class Gate:
    def __init__(self, concurrency: int = 1, max_queue: int = 16, retry_after: float = 2.0) -> None:
        self.concurrency = concurrency
        self.max_queue = max_queue
        self.retry_after = retry_after
        self.waiting = 0
        self.active = 0
        self._sem = asyncio.Semaphore(concurrency)
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="rag-answer")

    async def acquire(self, deadline: float) -> None:
        """Wait for a slot until ``deadline`` (``time.monotonic()``); refuse when the queue is full."""
        if self.active >= self.concurrency and self.waiting >= self.max_queue:
            raise BusyError(f"the server is busy ({self.waiting} requests waiting); retry shortly",
                            retry_after=self.retry_after)
        self.waiting += 1
        try:
            await asyncio.wait_for(self._sem.acquire(), max(0.0, deadline - time.monotonic()))
        except asyncio.TimeoutError:
            raise BusyError("timed out waiting for the model; retry shortly", retry_after=self.retry_after) from None
        finally:
            self.waiting -= 1
        self.active += 1

    def release(self) -> None:
        self.active -= 1
        self._sem.release()

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    async def stream(self, make: Callable[[], Iterator[T]], deadline: float) -> AsyncIterator[T]:
        """Run ``make()`` in a worker thread (after taking a slot) and yield its items.

        Closing this async iterator early (client disconnect) or passing ``deadline``
        stops the worker between two items; the worker then closes the sync
        iterator, which stops generation, and only then gives the slot back."""
        await self.acquire(deadline)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[object, BaseException | None]] = asyncio.Queue()
        stop = threading.Event()

        def put(item: object, exc: BaseException | None = None) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, (item, exc))

        def work() -> None:
            try:
                it = make()
                try:
                    for item in it:
                        if stop.is_set():
                            break
                        put(item)
                finally:
                    close = getattr(it, "close", None)
                    if close:
                        close()
            except BaseException as exc:  # noqa: BLE001 - handed to the event loop
                put(_END, exc)
            else:
                put(_END)
            finally:
                try:
                    loop.call_soon_threadsafe(self.release)
                except RuntimeError:  # the event loop is already closed (shutdown)
                    pass

        try:
            loop.run_in_executor(self._pool, work)
        except BaseException:
            self.release()
            raise
        try:
            while True:
                remaining = deadline - time.monotonic()
                try:
                    item, exc = await asyncio.wait_for(queue.get(), max(0.0, remaining))
                except asyncio.TimeoutError:
                    raise RequestTimeoutError("the answer took longer than the request time limit") from None
                if exc is not None:
                    raise exc
                if item is _END:
                    return
                yield item  # type: ignore[misc]
        finally:
            stop.set()
