"""A real uvicorn server on a free loopback port, in a thread, for tests.
Always stopped on exit, also when the test fails."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any

import uvicorn
from fastapi import FastAPI

from rag.errors import RagError
from rag.types import StreamEvent


class LiveServer:
    def __init__(self, app: FastAPI, startup_timeout: float = 120.0, **config: Any) -> None:
        self.app = app
        self.config = config  # more uvicorn.Config arguments
        self.startup_timeout = startup_timeout
        self.url = ""
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> "LiveServer":
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        config = uvicorn.Config(self.app, host="127.0.0.1", port=port, log_level="warning", lifespan="on",
                                **self.config)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + self.startup_timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.__exit__(None, None, None)
                raise RuntimeError("the test server did not start")
            time.sleep(0.05)
        self.url = f"http://127.0.0.1:{port}"
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=30)


async def no_more_events() -> AsyncIterator[StreamEvent]:
    """An answer stream that ends after its first event (the rest is empty)."""
    return
    yield  # an async generator without events


async def failing_events() -> AsyncIterator[StreamEvent]:
    """An answer stream whose rest fails, as a model that stops would."""
    raise RagError("the model stopped")
    yield
