"""The generation gate: bounded queue, slots held until the worker stops, early close."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import pytest

from rag.errors import BusyError, RequestTimeoutError
from server.gate import Gate


class Counting:
    """An endless iterator that records how far it got and whether it was closed."""

    def __init__(self, delay: float = 0.01) -> None:
        self.produced = 0
        self.closed = threading.Event()
        self.delay = delay

    def __call__(self) -> Iterator[int]:
        try:
            while True:
                time.sleep(self.delay)
                self.produced += 1
                yield self.produced
        finally:
            self.closed.set()


def run(coro):  # noqa: ANN001, ANN201
    return asyncio.run(coro)


def test_closing_the_stream_stops_the_worker_and_frees_the_slot() -> None:
    source = Counting()

    async def main() -> list[int]:
        gate = Gate(max_queue=0)
        got = []
        stream = gate.stream(source, time.monotonic() + 10)
        async for item in stream:
            got.append(item)
            if len(got) == 3:
                break
        await stream.aclose()
        for _ in range(200):
            if gate.active == 0:
                break
            await asyncio.sleep(0.01)
        assert gate.active == 0 and gate.waiting == 0
        gate.shutdown()
        return got

    assert run(main()) == [1, 2, 3]
    assert source.closed.wait(2)
    stopped_at = source.produced
    time.sleep(0.1)
    assert source.produced == stopped_at <= 5


def test_full_queue_is_refused_at_once() -> None:
    async def main() -> None:
        gate = Gate(max_queue=1, retry_after=3)
        blocker = threading.Event()

        def slow() -> Iterator[int]:
            blocker.wait(5)
            yield 1

        first = gate.stream(slow, time.monotonic() + 10)
        task1 = asyncio.create_task(anext(first))
        await asyncio.sleep(0.05)  # first holds the slot
        second = gate.stream(slow, time.monotonic() + 10)
        task2 = asyncio.create_task(anext(second))
        await asyncio.sleep(0.05)  # second waits in the queue
        assert (gate.active, gate.waiting) == (1, 1)
        with pytest.raises(BusyError) as info:
            await anext(gate.stream(slow, time.monotonic() + 10))
        assert info.value.retry_after == 3
        blocker.set()
        assert await task1 == 1 and await task2 == 1
        await first.aclose()
        await second.aclose()
        gate.shutdown()

    run(main())


def test_deadline_while_generating_is_a_timeout() -> None:
    async def main() -> None:
        gate = Gate()
        with pytest.raises(RequestTimeoutError):
            async for _ in gate.stream(Counting(delay=0.5), time.monotonic() + 0.2):
                pass
        gate.shutdown()

    run(main())


def test_worker_errors_reach_the_consumer() -> None:
    def broken() -> Iterator[int]:
        yield 1
        raise ValueError("boom")

    async def main() -> list[int]:
        gate = Gate()
        got = []
        with pytest.raises(ValueError, match="boom"):
            async for item in gate.stream(broken, time.monotonic() + 5):
                got.append(item)
        gate.shutdown()
        return got

    assert run(main()) == [1]
