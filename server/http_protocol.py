"""uvicorn's h11 protocol with bounds on slow clients ('rag serve').

uvicorn bounds a request's head in bytes (``h11_max_incomplete_event_size``) and
an idle kept-alive connection in time, but not a client that sends its head a
byte at a time, stops half-way through a body, or never reads a response: each
such connection (and for a write, its place in the write queue) is held for
good. Here:

- a request's line and headers must arrive within ``RAG_HEAD_TIMEOUT`` seconds
  of the connection opening or of the previous response ending (408, then the
  connection is closed);
- a client may stall for at most ``RAG_IDLE_TIMEOUT`` seconds while it sends a
  body or while a response waits for it to read (the connection is closed; the
  app sees the client leave, as if it had hung up).

Time the server itself spends (reading paused because the app has not asked for
more of the body yet, or working on an answer) is never counted against the
client.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from rag.settings import get_settings

log = logging.getLogger(__name__)

REQUEST_TIMEOUT_RESPONSE = (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
                            b"content-length: 16\r\nconnection: close\r\n\r\nrequest too slow")


@functools.cache
def _timeouts() -> tuple[float, float]:
    settings = get_settings()
    return settings.head_timeout, settings.idle_timeout


class BoundedH11Protocol(H11Protocol):
    """:class:`H11Protocol` that closes connections of clients too slow to send or read.
    The two bounds come from the settings unless a subclass sets them."""

    head_timeout: float = 0.0
    idle_timeout: float = 0.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        head, idle = _timeouts()
        self.head_timeout, self.idle_timeout = self.head_timeout or head, self.idle_timeout or idle
        self._timer: asyncio.TimerHandle | None = None

    # the request's head: from the connection (or the end of the previous response) to its last header
    def connection_made(self, transport: asyncio.BaseTransport) -> None:  # type: ignore[override]
        super().connection_made(transport)  # type: ignore[arg-type]
        self._arm(self.head_timeout, self._head_too_slow)

    def on_response_complete(self) -> None:
        self._arm(self.head_timeout, self._head_too_slow)
        super().on_response_complete()  # may start a pipelined request at once

    def handle_events(self) -> None:
        cycle = self.cycle
        super().handle_events()
        if self.cycle is not cycle:  # a new request's head has arrived
            self._disarm()
            self._watch_body()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.cycle is not None and not self.cycle.response_complete:
            self._watch_body()

    # a stalled body or a response nobody reads
    def _watch_body(self) -> None:
        if self.conn.their_state is h11.SEND_BODY:
            self._arm(self.idle_timeout, self._client_stalled)
        elif self._timer is not None and not self.flow.write_paused:
            self._disarm()

    def pause_writing(self) -> None:
        super().pause_writing()
        self._arm(self.idle_timeout, self._client_stalled)

    def resume_writing(self) -> None:
        super().resume_writing()
        self._disarm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self, seconds: float, handler: Any) -> None:
        self._disarm()
        self._timer = self.loop.call_later(seconds, handler)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _head_too_slow(self) -> None:
        self._timer = None
        if self.transport.is_closing() or (self.cycle is not None and not self.cycle.response_complete):
            return
        log.warning("closed a connection whose request head took over %.0f s (RAG_HEAD_TIMEOUT)", self.head_timeout)
        self.transport.write(REQUEST_TIMEOUT_RESPONSE)
        self.transport.close()

    def _client_stalled(self) -> None:
        self._timer = None
        if self.transport.is_closing():
            return
        if self.flow.read_paused and not self.flow.write_paused:  # the server is not reading: not the client's fault
            self._arm(self.idle_timeout, self._client_stalled)
            return
        log.warning("closed a connection whose client stalled for %.0f s (RAG_IDLE_TIMEOUT)", self.idle_timeout)
        self.transport.abort()  # close() would wait for the unread response to drain, for good
