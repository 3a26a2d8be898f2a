"""Operations: health, readiness, metrics, docs, auth, body limits, the busy queue,
time limits, client disconnects, and ``rag serve`` as a real process."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from rag.engine import Rag
from rag.settings import Settings
from server.app import create_app
from tests.serving import LiveServer

QUESTION = "Who is Meta's president of global affairs?"


@pytest.fixture
def server_with(seeded_dir: Path, embedder, seeded_engine):
    """Start a server over the seeds with some settings changed."""
    started: list[LiveServer] = []

    def start(generator: object = None, **overrides: object) -> str:
        settings = Settings(data_dir=seeded_dir, **overrides)
        engine = Rag(settings, embedder=embedder)
        engine.__dict__["generator"] = generator or seeded_engine.generator  # share the loaded model
        server = LiveServer(create_app(settings, engine=engine)).__enter__()
        started.append(server)
        return server.url

    yield start
    for s in started:
        s.__exit__(None, None, None)


def test_health_and_readiness(api_url: str) -> None:
    assert httpx.get(f"{api_url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{api_url}/readyz").json()
    assert ready["status"] == "ready" and ready["chunks"] > 0 and ready["model"].endswith(".gguf")


def test_ready_only_once_the_model_has_decoded(seeded_dir: Path, embedder) -> None:
    """The lifespan loads the model in this process and has it generate a token
    before the server answers at all, /readyz included."""
    settings = Settings(data_dir=seeded_dir)
    engine = Rag(settings, embedder=embedder)
    with LiveServer(create_app(settings, engine=engine)) as server:
        assert engine.generator.tokens_generated == 1  # nothing was asked yet: the start-up decode
        assert httpx.get(f"{server.url}/readyz").json()["status"] == "ready"


def test_metrics_count_requests_latency_ttft_tokens_and_queue(api_url: str) -> None:
    httpx.post(f"{api_url}/v1/ask", json={"question": QUESTION}, timeout=60)
    httpx.get(f"{api_url}/v1/nope")
    r = httpx.get(f"{api_url}/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert re.search(r'rag_http_requests_total\{method="POST",route="/v1/ask",status="200"\} [1-9]', text)
    assert re.search(r'rag_http_requests_total\{method="GET",route="unmatched",status="404"\} [1-9]', text)
    assert re.search(r'rag_http_request_duration_seconds_count\{route="/v1/ask"\} [1-9]', text)
    assert re.search(r"rag_answer_ttft_seconds_count [1-9]", text)
    assert re.search(r"rag_tokens_generated_total [1-9]", text)
    assert re.search(r"rag_queue_depth 0", text)


def test_openapi_docs_are_served(api_url: str) -> None:
    assert "swagger" in httpx.get(f"{api_url}/docs").text.lower()
    spec = httpx.get(f"{api_url}/openapi.json").json()
    assert {"/v1/ask", "/v1/chat/completions", "/v1/search", "/v1/documents"} <= set(spec["paths"])


def test_api_key_guards_every_route_but_the_public_ones(server_with) -> None:
    url = server_with(api_key="s3cret-key")
    guarded = [("GET", "/readyz", None), ("GET", "/metrics", None), ("GET", "/v1/documents", None),
               ("GET", "/v1/search?q=Clegg", None), ("DELETE", "/v1/documents/x.txt", None),
               ("POST", "/v1/ask", {"question": QUESTION}),
               ("POST", "/v1/ask", {"question": QUESTION, "stream": True}),
               ("POST", "/v1/chat/completions", {"messages": [{"role": "user", "content": QUESTION}]}),
               ("POST", "/v1/chat/completions", {"messages": [{"role": "user", "content": QUESTION}], "stream": True}),
               ("POST", "/v1/documents", {"source": "a.txt", "text": "hello"})]
    for method, path, body in guarded:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret-key"}):
            r = httpx.request(method, url + path, json=body, headers=headers, timeout=30)
            assert r.status_code == 401, (method, path, headers)
            assert r.json()["error"]["type"] == "unauthorized" and r.headers["www-authenticate"] == "Bearer"
    assert httpx.get(f"{url}/healthz").status_code == 200
    ok = httpx.post(f"{url}/v1/ask", json={"question": QUESTION}, timeout=60,
                    headers={"Authorization": "Bearer s3cret-key"})
    assert ok.status_code == 200 and "Clegg" in ok.json()["answer"]
    assert httpx.get(f"{url}/readyz", headers={"Authorization": "Bearer s3cret-key"}).status_code == 200
    # the page and the API's description stay public; the schema asks for the key where it is needed
    for path in ("/", "/docs", "/redoc", "/docs/assets/swagger-ui-bundle.js"):
        assert httpx.get(url + path).status_code == 200, path
    spec = httpx.get(f"{url}/openapi.json").json()
    assert spec["components"]["securitySchemes"]["bearer"] == {
        "type": "http", "scheme": "bearer", "description": "the server's RAG_API_KEY"}
    assert spec["paths"]["/v1/ask"]["post"]["security"] == [{"bearer": []}]
    assert spec["paths"]["/v1/chat/completions"]["post"]["security"] == [{"bearer": []}]
    assert "security" not in spec["paths"]["/healthz"]["get"]


def test_oversized_bodies_get_413(server_with) -> None:
    url = server_with(max_body_bytes=4096)
    big = {"question": "a " * 5000}
    r = httpx.post(f"{url}/v1/ask", json=big, timeout=30)
    assert r.status_code == 413 and r.json()["error"]["type"] == "payload_too_large"

    def chunked() -> Iterator[bytes]:  # no Content-Length: counted while reading
        yield b'{"question": "'
        for _ in range(10):
            yield b"a" * 1000
        yield b'"}'

    r = httpx.post(f"{url}/v1/ask", content=chunked(), headers={"content-type": "application/json"}, timeout=30)
    assert r.status_code == 413


class HeldGenerator:
    """The real generator, but each answer waits until the test lets it go (the
    server's start-up decode, the first call, goes through)."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.go = threading.Event()
        self.calls = 0

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def stream(self, *args: object, **kwargs: object) -> Iterator[str]:
        self.calls += 1
        if self.calls > 1 and not self.go.wait(60):
            raise AssertionError("the test never released the held answer")
        yield from self.inner.stream(*args, **kwargs)


def test_full_queue_answers_503_with_retry_after(server_with, seeded_engine) -> None:
    held = HeldGenerator(seeded_engine.generator)
    url = server_with(generator=held, max_queue=0)
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(httpx.post, f"{url}/v1/ask", json={"question": QUESTION}, timeout=60)
        deadline = time.monotonic() + 30
        while httpx.get(f"{url}/readyz").json()["queue"]["active"] < 1:  # the first answer holds the slot
            assert time.monotonic() < deadline and not first.done(), "the first answer never took the slot"
            time.sleep(0.02)
        busy = [httpx.post(f"{url}/v1/ask", json={"question": QUESTION}, timeout=30) for _ in range(3)]
        held.go.set()
        assert first.result().status_code == 200 and "Clegg" in first.result().json()["answer"]
    for r in busy:
        assert r.status_code == 503, r.text
        assert r.json()["error"]["type"] == "busy" and int(r.headers["retry-after"]) >= 1
    after = httpx.post(f"{url}/v1/ask", json={"question": QUESTION}, timeout=60)  # the slot was given back
    assert after.status_code == 200


def test_request_time_limit_gives_504(server_with) -> None:
    url = server_with(request_timeout=0.05)
    r = httpx.post(f"{url}/v1/ask", json={"question": QUESTION}, timeout=30)
    assert r.status_code in (503, 504), r.text
    assert r.json()["error"]["type"] in ("timeout", "busy")


def test_disconnect_mid_stream_frees_the_model(api_url: str) -> None:
    with httpx.stream("POST", f"{api_url}/v1/ask", json={"question": QUESTION, "stream": True}, timeout=60) as r:
        next(r.iter_lines())  # the first event arrived; now hang up
    deadline = time.monotonic() + 10
    while httpx.get(f"{api_url}/readyz").json()["queue"]["active"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert httpx.get(f"{api_url}/readyz").json()["queue"]["active"] == 0
    assert httpx.post(f"{api_url}/v1/ask", json={"question": QUESTION}, timeout=60).status_code == 200


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_rag_serve_runs_the_app_as_a_process(seeded_dir: Path, tmp_path: Path) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env["RAG_HEAD_TIMEOUT"] = "2"
    proc = subprocess.Popen([sys.executable, "-m", "rag", "serve", "--port", str(port), "--data-dir", str(seeded_dir)],
                            env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "rag serve did not become ready"
            time.sleep(0.3)
        assert "Clegg" in httpx.post(f"{url}/v1/ask", json={"question": QUESTION}, timeout=60).json()["answer"]
        assert httpx.get(url + "/").headers["content-type"].startswith("text/html")
        # a request head over the limit is refused before it is read whole (it used to be a 200)
        try:
            status = httpx.get(f"{url}/healthz", headers={"X-Big": "a" * (2 << 20)}, timeout=30).status_code
        except httpx.TransportError:  # closed while the client was still sending
            status = None
        assert status in (400, 431, None)
        assert httpx.get(f"{url}/healthz", headers={"X-Fine": "a" * 8000}, timeout=30).status_code == 200
        # a connection that sends no request is closed with a 408 (server.http_protocol; RAG_HEAD_TIMEOUT)
        t0 = time.monotonic()
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            said = sock.recv(4096)
        assert said.startswith(b"HTTP/1.1 408 ") and 1.5 < time.monotonic() - t0 < 10
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.returncode in (0, -signal.SIGINT, 130)


def test_serve_help_names_its_options() -> None:
    out = subprocess.run([sys.executable, "-m", "rag", "serve", "--help"], capture_output=True, text=True, check=True)
    assert "--host" in out.stdout and "--port" in out.stdout
