"""server.http_protocol: clients too slow to send a request or read a response are
cut off in time, over real sockets to a real uvicorn (bounds of 1 s here)."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import Response, StreamingResponse
from starlette.requests import ClientDisconnect

from server.http_protocol import BoundedH11Protocol
from tests.serving import LiveServer

BOUND = 1.0
Fast = type("Fast", (BoundedH11Protocol,), {"head_timeout": BOUND, "idle_timeout": BOUND})


class Errors(logging.Handler):
    """Log records at ERROR or with a traceback, from uvicorn and the app."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR or record.exc_info:
            self.records.append(record)


@pytest.fixture
def errors() -> Iterator[Errors]:
    handler = Errors()
    names = ("uvicorn.error", "uvicorn", "server", "rag")
    for name in names:
        logging.getLogger(name).addHandler(handler)
    yield handler
    for name in names:
        logging.getLogger(name).removeHandler(handler)


@pytest.fixture
def app_server() -> Iterator[tuple[str, list[str]]]:
    events: list[str] = []
    app = FastAPI()

    @app.post("/echo")
    async def echo(request: Request) -> Any:
        try:
            return {"bytes": len(await request.body())}
        except ClientDisconnect:  # what the app sees when a stalled client is cut off
            events.append("left")
            return Response(status_code=400)

    @app.get("/slow")
    async def slow() -> dict[str, bool]:
        await asyncio.sleep(2.5 * BOUND)  # the server taking its time is not the client's fault
        return {"ok": True}

    @app.get("/big")
    async def big() -> StreamingResponse:
        async def chunks() -> Any:
            try:
                for _ in range(4096):  # 256 MB: more than the sockets' buffers hold
                    yield b"x" * 65536
                    await asyncio.sleep(0)  # as a real producer (the model) awaits between parts
                events.append("sent")
            except BaseException:
                events.append("stopped")
                raise

        return StreamingResponse(chunks(), media_type="application/octet-stream")

    with LiveServer(app, http=Fast) as server:
        yield server.url, events


def connect(url: str) -> socket.socket:
    parts = urlparse(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=10 * BOUND)
    return sock


def read_all(sock: socket.socket) -> bytes:
    out = b""
    try:
        while chunk := sock.recv(65536):
            out += chunk
    except ConnectionResetError:
        pass
    return out


def test_a_connection_that_sends_nothing_gets_408_and_is_closed(app_server: tuple[str, list[str]]) -> None:
    url, _ = app_server
    t0 = time.monotonic()
    with connect(url) as sock:
        answer = read_all(sock)
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert BOUND * 0.9 <= time.monotonic() - t0 < BOUND * 4


def test_a_head_sent_a_byte_at_a_time_is_cut_off_at_the_bound(app_server: tuple[str, list[str]]) -> None:
    url, _ = app_server
    head = b"GET /slow HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"".join(b"X-%d: y\r\n" % i for i in range(40)) + b"\r\n"
    t0 = time.monotonic()
    with connect(url) as sock:
        closed = False
        for i in range(len(head)):  # a byte every 50 ms: 2,000+ ms for the whole head
            try:
                sock.sendall(head[i:i + 1])
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            time.sleep(0.05)
            if time.monotonic() - t0 > 6 * BOUND:
                break
        answer = read_all(sock)
    assert closed or answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    assert time.monotonic() - t0 < BOUND * 4
    # meanwhile and after, others are answered, a slow answer included (2.5 bounds of server time)
    assert httpx.get(f"{url}/slow", timeout=30).json() == {"ok": True}


def test_a_body_that_stalls_is_cut_off_but_a_slow_steady_one_is_taken(app_server: tuple[str, list[str]],
                                                                       errors: Errors) -> None:
    url, events = app_server
    with connect(url) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\n"
                     b"Content-Length: 1000\r\n\r\n" + b"a" * 100)
        t0 = time.monotonic()
        answer = read_all(sock)  # then nothing more is sent
    assert b"200 OK" not in answer
    assert BOUND * 0.9 <= time.monotonic() - t0 < BOUND * 4
    deadline = time.monotonic() + 10
    while not events and time.monotonic() < deadline:  # the app's side of it, in the server's thread
        time.sleep(0.05)
    assert events == ["left"]
    # 30 pieces, one every half bound: three times the bound in all, never stalled for one
    with connect(url) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\n"
                     b"Content-Length: 300\r\nConnection: close\r\n\r\n")
        for _ in range(6):
            time.sleep(BOUND / 2)
            sock.sendall(b"b" * 50)
        answer = read_all(sock)
    assert answer.startswith(b"HTTP/1.1 200 ") and answer.endswith(b'{"bytes":300}')
    assert not errors.records, [r.getMessage() for r in errors.records]


def test_a_response_nobody_reads_is_stopped(app_server: tuple[str, list[str]]) -> None:
    url, events = app_server
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    parts = urlparse(url)
    sock.connect((parts.hostname, parts.port))
    with sock:
        sock.sendall(b"GET /big HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        deadline = time.monotonic() + 20 * BOUND
        while not events and time.monotonic() < deadline:  # the client reads nothing
            time.sleep(0.1)
        assert events == ["stopped"]  # not "sent": the server gave up on the client
        sock.settimeout(10)
        assert len(read_all(sock)) < 256 * 2**20  # what the buffers held, then the end
    assert httpx.get(f"{url}/slow", timeout=30).status_code == 200


def test_a_stalled_upload_to_the_real_app_is_cut_off_and_stores_nothing(tmp_path: Path, embedder: Any, errors: Errors) -> None:
    from rag.engine import Rag
    from rag.settings import Settings
    from server.app import create_app

    settings = Settings(data_dir=tmp_path / "data", use_llm=False, max_write_queue=0)
    with LiveServer(create_app(settings, engine=Rag(settings, embedder=embedder)), http=Fast) as server:
        body = (b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"half.txt\"\r\n"
                b"Content-Type: text/plain\r\n\r\nHalf of a document that never")
        with connect(server.url) as sock:
            sock.sendall(b"POST /v1/documents HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                         b"Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 5000\r\n\r\n" + body)
            t0 = time.monotonic()
            answer = read_all(sock)
        assert b"200 OK" not in answer and time.monotonic() - t0 < BOUND * 4
        # nothing of it was stored, and the next upload is made
        r = httpx.post(f"{server.url}/v1/documents", files={"file": ("whole.txt", b"A whole document.")},
                       timeout=60)
        assert r.status_code == 200, r.text
        docs = httpx.get(f"{server.url}/v1/documents", timeout=30).json()["documents"]
        assert [d["source"] for d in docs] == ["whole.txt"]
    assert not errors.records, [r.getMessage() for r in errors.records]
