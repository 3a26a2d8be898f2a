"""Hostile input over HTTP, and the API key kept out of the logs.

What it proves:

* every hostile request gets a 4xx whose body is ``{"error": {"type", "message"}}``:
  invalid UTF-8 bodies, a 10 MB JSON body (with and without Content-Length),
  100,000-deep JSON, wrong content types, out-of-range ``top_k`` / ``k``, empty,
  whitespace-only and 100 KB questions, NUL bytes in questions and in document
  sources and texts, and path traversal in document names on upload (JSON and
  multipart) and on delete (``../``, absolute paths, ``..%2F``, ``%2e%2e%2f``,
  backslashes, encoded separators, double encoding, full-width slashes, very long
  names, and literal ``..`` segments sent on a raw socket);
* after each of those tests no file appeared outside the server's data directory
  (nothing in its parent, no ``escape`` sentinel next to it or above it), the index
  still holds exactly the one document it started with, and ``/healthz`` answers;
* with ``RAG_API_KEY`` set, requests with the right and a wrong key (plain, streamed
  and OpenAI-compatible, the last through the ``openai`` client) never put the key
  into any log record (root and uvicorn loggers at DEBUG) nor on stdout/stderr.

Bounds: one server for the module over a fresh index with one short document
(plus one over the seeds for the key test); every request has a client time
limit; no retries, no loops beyond the listed cases."""

from __future__ import annotations

import json
import logging
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from rag.engine import Rag
from rag.settings import Settings, get_settings
from server.app import create_app
from tests.serving import LiveServer

KEEP = {"source": "notes/keep.txt", "text": "The Zebra Protocol was signed in Oslo in 1999 by eleven delegations."}
QUESTION = "Who is Meta's president of global affairs?"
JSON_ROUTES = ("/v1/ask", "/v1/chat/completions", "/v1/documents")
TIMEOUT = 60.0


@dataclass(frozen=True)
class Hostile:
    url: str
    root: Path  # holds only the data directory
    data: Path


def _files(folder: Path, skip: Path | None = None) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if skip is None or skip not in (p, *p.parents)}


def _documents(url: str) -> list[dict[str, object]]:
    return httpx.get(f"{url}/v1/documents", timeout=TIMEOUT).json()["documents"]


@pytest.fixture(scope="module")
def hostile_server(tmp_path_factory: pytest.TempPathFactory, embedder, seeded_engine) -> Iterator[Hostile]:
    root = tmp_path_factory.mktemp("hostile")
    settings = Settings(data_dir=root / "data")
    engine = Rag(settings, embedder=embedder)
    engine.__dict__["generator"] = seeded_engine.generator  # share the loaded model
    with LiveServer(create_app(settings, engine=engine)) as server:
        assert httpx.post(f"{server.url}/v1/documents", json=KEEP, timeout=TIMEOUT).status_code == 200
        yield Hostile(server.url, root, settings.data_dir)


@pytest.fixture
def api(hostile_server: Hostile) -> Iterator[str]:
    """The hostile server's URL; afterwards: nothing written outside its data
    directory, the index unchanged, and the process healthy."""
    root, data = hostile_server.root, hostile_server.data
    outside_before = _files(root, skip=data)
    above_before = {p.name for p in root.parent.iterdir()}
    yield hostile_server.url
    assert _files(root, skip=data) == outside_before
    assert {p.name for p in root.parent.iterdir()} == above_before
    for sentinel in (root / "escape", root / "escape.txt", root.parent / "escape", root.parent / "escape.txt"):
        assert not sentinel.exists(), sentinel
    assert httpx.get(f"{hostile_server.url}/healthz", timeout=TIMEOUT).json() == {"status": "ok"}
    assert [(d["source"], d["chunks"]) for d in _documents(hostile_server.url)] == [(KEEP["source"], 1)]


def assert_error(r: httpx.Response, status: int | tuple[int, ...], kind: str | tuple[str, ...] | None = None) -> None:
    """A 4xx with the one error shape, a non-empty message, and the expected status and type."""
    statuses = status if isinstance(status, tuple) else (status,)
    assert r.status_code in statuses, (r.status_code, r.text[:300])
    assert r.headers["content-type"].startswith("application/json"), r.headers["content-type"]
    err = r.json()["error"]
    assert set(err) == {"type", "message"} and isinstance(err["message"], str) and err["message"].strip()
    if kind is not None:
        assert err["type"] in (kind if isinstance(kind, tuple) else (kind,)), err


def post_raw(url: str, path: str, body: bytes, content_type: str | None = "application/json") -> httpx.Response:
    headers = {"content-type": content_type} if content_type else {}
    return httpx.post(url + path, content=body, headers=headers, timeout=TIMEOUT)


def raw_http(url: str, method: str, target: str) -> tuple[int, dict[str, object]]:
    """Send ``target`` byte for byte (httpx would resolve ``..`` segments itself)."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=TIMEOUT) as sock:
        sock.sendall(f"{method} {target} HTTP/1.1\r\nHost: {parts.netloc}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def multipart(*parts: tuple[bytes, bytes], boundary: bytes = b"hostile") -> tuple[bytes, str]:
    """A multipart body built by hand, so names can hold any byte."""
    body = b"".join(b"--" + boundary + b"\r\n" + head + b"\r\n\r\n" + content + b"\r\n" for head, content in parts)
    return body + b"--" + boundary + b"--\r\n", f"multipart/form-data; boundary={boundary.decode()}"


def file_part(filename: bytes, content: bytes = b"Some harmless text about harbours.") -> tuple[bytes, bytes]:
    head = b'Content-Disposition: form-data; name="file"; filename="' + filename + b'"\r\nContent-Type: text/plain'
    return head, content


def field_part(name: bytes, value: bytes) -> tuple[bytes, bytes]:
    return b'Content-Disposition: form-data; name="' + name + b'"', value


def chat(question: str, **extra: object) -> dict[str, object]:
    return {"messages": [{"role": "user", "content": question}], **extra}


# --- bodies -------------------------------------------------------------------

INVALID_UTF8 = {
    "/v1/ask": b'{"question": "Who signed the caf\xe9 protocol?"}',
    "/v1/chat/completions": b'{"messages": [{"role": "user", "content": "caf\xe9 \xff\xfe?"}]}',
    "/v1/documents": b'{"source": "latin1.txt", "text": "caf\xe9 au lait \xc3\x28"}',
}


@pytest.mark.parametrize("path", JSON_ROUTES)
def test_invalid_utf8_json_bodies_get_400(api: str, path: str) -> None:
    assert_error(post_raw(api, path, INVALID_UTF8[path]), 400, "invalid_json")


@pytest.mark.parametrize("path", JSON_ROUTES)
@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_ten_megabyte_json_body_gets_413(api: str, path: str, chunked: bool) -> None:
    body = json.dumps({"source": "big.txt", "text": "word " * (2 * 1024 * 1024 + 10)}).encode()
    assert len(body) > 10 * 1024 * 1024
    content: bytes | Iterator[bytes] = body
    if chunked:  # no Content-Length: the limit is enforced while reading
        content = (body[i:i + 65536] for i in range(0, len(body), 65536))
    r = httpx.post(api + path, content=content, headers={"content-type": "application/json"}, timeout=TIMEOUT)
    assert_error(r, 413, "payload_too_large")


@pytest.mark.parametrize("path", JSON_ROUTES)
@pytest.mark.parametrize("shape", ["lists", "inside-a-field"])
def test_deeply_nested_json_gets_400(api: str, path: str, shape: str) -> None:
    nested = b"[" * 100_000 + b"]" * 100_000
    body = nested if shape == "lists" else b'{"question": ' + nested + b', "source": "x.txt", "text": ' + nested + b"}"
    assert_error(post_raw(api, path, body), 400, "invalid_json")


def test_thousand_digit_integer_gets_400(api: str) -> None:
    body = b'{"question": "Who signed?", "top_k": ' + b"9" * 5000 + b"}"
    assert_error(post_raw(api, "/v1/ask", body), 400, "invalid_json")


CONTENT_TYPES = ("text/plain", "application/xml", "application/x-www-form-urlencoded", "multipart/form-data")
WRONG_TYPES = [(path, ctype) for path in JSON_ROUTES for ctype in CONTENT_TYPES
               if (path, ctype) != ("/v1/documents", "multipart/form-data")]  # multipart is its other type


@pytest.mark.parametrize("path,content_type", WRONG_TYPES)
def test_wrong_content_types_get_415(api: str, path: str, content_type: str) -> None:
    payload = {"question": "Who signed?", **chat("Who signed?"), **KEEP}
    if content_type == "multipart/form-data":
        body, content_type = multipart(field_part(b"question", b"Who signed?"), file_part(b"q.txt"))
    elif content_type == "application/xml":
        body = b"<ask><question>Who signed?</question></ask>"
    else:
        body = json.dumps(payload).encode()
    assert_error(post_raw(api, path, body, content_type), 415, "unsupported_media_type")


@pytest.mark.parametrize("path", ["/v1/ask", "/v1/chat/completions"])
def test_answer_routes_need_a_content_type(api: str, path: str) -> None:
    body = json.dumps({"question": "Who signed?", **chat("Who signed?")}).encode()
    assert_error(post_raw(api, path, body, content_type=None), 415, "unsupported_media_type")


def test_malformed_multipart_gets_400(api: str) -> None:
    body, ctype = multipart(file_part(b"a.txt"))
    assert_error(post_raw(api, "/v1/documents", body[: len(body) // 2] + b"--nonsense", ctype), (400, 422))
    body, ctype = multipart(file_part(b"a.txt"), file_part(b"b.txt"))
    assert_error(post_raw(api, "/v1/documents", body, ctype), 400)


# --- top_k and questions ----------------------------------------------------------

BAD_TOP_K = [-1, 0, 51, 10**30, 2**63, 1.5, "many"]


@pytest.mark.parametrize("top_k", BAD_TOP_K, ids=str)
def test_out_of_range_top_k_gets_422_naming_the_field(api: str, top_k: object) -> None:
    r = httpx.post(f"{api}/v1/ask", json={"question": "Who signed?", "top_k": top_k}, timeout=TIMEOUT)
    assert_error(r, 422, "validation_error")
    assert "top_k" in r.json()["error"]["message"]
    r = httpx.post(f"{api}/v1/chat/completions", json=chat("Who signed?", top_k=top_k), timeout=TIMEOUT)
    assert_error(r, 422, "validation_error")
    r = httpx.get(f"{api}/v1/search", params={"q": "Zebra", "k": str(top_k)}, timeout=TIMEOUT)
    assert_error(r, 422, "validation_error")
    assert "k" in r.json()["error"]["message"]


@pytest.mark.parametrize("question", ["", " ", "\n\t  \r\n"], ids=["empty", "space", "whitespace"])
@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_empty_and_whitespace_questions_get_400(api: str, question: str, stream: bool) -> None:
    r = httpx.post(f"{api}/v1/ask", json={"question": question, "stream": stream}, timeout=TIMEOUT)
    assert_error(r, 400, "empty_question")
    r = httpx.post(f"{api}/v1/chat/completions", json=chat(question, stream=stream), timeout=TIMEOUT)
    assert_error(r, 400, "empty_question")
    r = httpx.get(f"{api}/v1/search", params={"q": question}, timeout=TIMEOUT)
    assert_error(r, (400, 422), ("empty_question", "validation_error"))


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_hundred_kilobyte_questions_get_413(api: str, stream: bool) -> None:
    question = "Who signed the protocol? " * 4200
    assert len(question.encode()) > 100_000
    r = httpx.post(f"{api}/v1/ask", json={"question": question, "stream": stream}, timeout=TIMEOUT)
    assert_error(r, 413, "payload_too_large")
    r = httpx.post(f"{api}/v1/chat/completions", json=chat(question, stream=stream), timeout=TIMEOUT)
    assert_error(r, 413, "payload_too_large")
    # a URL of 100 KB is refused by the HTTP client itself; the route's own limit is 8,192 characters
    r = httpx.get(f"{api}/v1/search", params={"q": question[:9000]}, timeout=TIMEOUT)
    assert_error(r, 422, "validation_error")


@pytest.mark.parametrize("question", ["Who\x00 signed the protocol?", "\x00", "Who signed\x1b[31m?"],
                         ids=["nul-inside", "only-nul", "escape"])
def test_control_characters_in_questions_get_400(api: str, question: str) -> None:
    r = httpx.post(f"{api}/v1/ask", json={"question": question}, timeout=TIMEOUT)
    assert_error(r, 400, "invalid_input")
    r = httpx.post(f"{api}/v1/ask", json={"question": question, "stream": True}, timeout=TIMEOUT)
    assert_error(r, 400, "invalid_input")
    r = httpx.post(f"{api}/v1/chat/completions", json=chat(question), timeout=TIMEOUT)
    assert_error(r, 400, "invalid_input")
    history = {"messages": [{"role": "user", "content": question}, {"role": "assistant", "content": "Oslo."},
                            {"role": "user", "content": "And when?"}]}
    r = httpx.post(f"{api}/v1/chat/completions", json=history, timeout=TIMEOUT)
    assert_error(r, 400, "invalid_input")
    r = httpx.get(f"{api}/v1/search", params={"q": question}, timeout=TIMEOUT)
    assert_error(r, 400, "invalid_input")


# --- documents --------------------------------------------------------------------


def test_nul_bytes_in_document_sources_and_texts_get_400(api: str) -> None:
    r = httpx.post(f"{api}/v1/documents", json={"source": "a\x00b.txt", "text": KEEP["text"]}, timeout=TIMEOUT)
    assert_error(r, 400, "invalid_source")
    r = httpx.post(f"{api}/v1/documents", json={"source": "nul.txt", "text": "Harbours\x00 open."}, timeout=TIMEOUT)
    assert_error(r, 400, "invalid_input")
    for parts in ([file_part(b"a\x00b.txt")],
                  [field_part(b"source", b"a\x00b.txt"), file_part(b"ok.txt")],
                  [file_part(b"binary.txt", b"Harbours\x00\x01\x02 open.")]):
        body, ctype = multipart(*parts)
        assert_error(post_raw(api, "/v1/documents", body, ctype), 400, ("invalid_source", "ingest_error"))


def _traversal_names(root: Path) -> list[str]:
    return ["../escape", "../../escape.txt", "a/../../escape", "..", ".", "./escape", "a//escape", "/escape",
            str(root / "escape"), str(root.parent / "escape.txt"), "..%2Fescape", "..%2fescape", "%2e%2e%2fescape",
            "%2E%2E/escape", "a/%2e%2e/%2e%2e/escape", "..%252Fescape", "%252e%252e%252fescape", "a%2Fb",
            "a%5Cb", "..\\escape", "a\\..\\..\\escape", "\\\\server\\share\\escape", "C:\\escape", "C:/escape",
            "c:escape", "\uff0e\uff0e\uff0fescape", "a\u202eb.txt", "a\x7fb", "x" * 513, "a/" * 300 + "b"]


@pytest.mark.parametrize("how", ["json", "multipart-field", "multipart-filename"])
def test_path_traversal_in_uploaded_names_is_rejected(api: str, hostile_server: Hostile, how: str) -> None:
    for name in _traversal_names(hostile_server.root):
        if how == "json":
            r = httpx.post(f"{api}/v1/documents", json={"source": name, "text": KEEP["text"]}, timeout=TIMEOUT)
        else:
            raw = name.encode()
            parts = [file_part(raw)] if how == "multipart-filename" else [field_part(b"source", raw),
                                                                          file_part(b"ok.txt")]
            body, ctype = multipart(*parts)
            r = post_raw(api, "/v1/documents", body, ctype)
        assert_error(r, (400, 422), ("invalid_source", "validation_error"))


def _encoded_delete_targets(root: Path) -> list[str]:
    absolute = str(root / "escape").replace("/", "%2F")
    return ["..%2Fescape", "..%2fescape", "%2e%2e%2fescape", "%2E%2E/escape", "a%2F..%2F..%2Fescape",
            "..%252Fescape", "%252e%252e%252fescape", "..%5Cescape", "a%5C..%5C..%5Cescape", "%2Fescape",
            absolute, "C:%5Cescape", "C:/escape", "a%00b", "a%2F%2Fb", "%EF%BC%8E%EF%BC%8E%EF%BC%8Fescape",
            "notes%2F..%2Fnotes%2Fkeep.txt"]


def test_path_traversal_in_deleted_names_is_rejected(api: str, hostile_server: Hostile) -> None:
    for target in _encoded_delete_targets(hostile_server.root):
        r = httpx.request("DELETE", httpx.URL(f"{api}/v1/documents/{target}"), timeout=TIMEOUT)
        assert_error(r, 400, "invalid_source")
    r = httpx.delete(f"{api}/v1/documents/{'x' * 5000}", timeout=TIMEOUT)
    assert_error(r, 422, "validation_error")
    # literal dot segments, which an HTTP client would resolve before sending
    for target in ["../../escape", "notes/../notes/keep.txt", "./notes/keep.txt", "notes/./keep.txt",
                   "a/../../../escape"]:
        status, body = raw_http(api, "DELETE", f"/v1/documents/{target}")
        assert status == 400 and body["error"]["type"] == "invalid_source", (target, status, body)


# --- the API key stays out of the logs ------------------------------------------


class _Capture(logging.Handler):
    """Keeps every record, formatted and raw, whatever its level."""

    def __init__(self) -> None:
        super().__init__(logging.NOTSET)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))
        self.lines.append(repr(record.__dict__))


CAPTURED_LOGGERS = ("", "uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi", "server", "rag", "fastapi")


@dataclass(frozen=True)
class KeyServer:
    url: str
    key: str
    logs: _Capture


@pytest.fixture
def key_server(monkeypatch: pytest.MonkeyPatch, seeded_dir: Path, embedder, seeded_engine) -> Iterator[KeyServer]:
    """A server over the seeds with ``RAG_API_KEY`` set, and every log record of
    the root and uvicorn loggers at DEBUG (hooked up once the server runs:
    uvicorn configures its loggers when it starts)."""
    key = f"k3y-{uuid.uuid4().hex}"
    monkeypatch.setenv("RAG_API_KEY", key)
    settings = get_settings(data_dir=seeded_dir)
    assert settings.api_key is not None and settings.api_key.get_secret_value() == key
    engine = Rag(settings, embedder=embedder)
    engine.__dict__["generator"] = seeded_engine.generator
    capture = _Capture()
    with LiveServer(create_app(settings, engine=engine)) as server:
        saved = [(logging.getLogger(n), logging.getLogger(n).level) for n in CAPTURED_LOGGERS]
        for logger, _ in saved:
            logger.setLevel(logging.DEBUG)
            logger.addHandler(capture)
        try:
            yield KeyServer(server.url, key, capture)
        finally:
            for logger, level in saved:
                logger.removeHandler(capture)
                logger.setLevel(level)


def _api_key_traffic(url: str, key: str) -> list[int]:
    openai = pytest.importorskip("openai")
    good, bad = {"Authorization": f"Bearer {key}"}, {"Authorization": f"Bearer {key}x"}
    statuses = []
    with httpx.Client(base_url=url, timeout=TIMEOUT) as http:
        for headers in (good, bad, {"Authorization": key}, {"Authorization": f"Token {key}"}, {}):
            statuses.append(http.post("/v1/ask", json={"question": QUESTION}, headers=headers).status_code)
            with http.stream("POST", "/v1/ask", json={"question": QUESTION, "stream": True}, headers=headers) as r:
                r.read()
                statuses.append(r.status_code)
            statuses.append(http.get("/v1/search", params={"q": "Clegg"}, headers=headers).status_code)
            statuses.append(http.post("/v1/ask", json={"question": "\x00"}, headers=headers).status_code)
    for api_key in (key, key[:-1]):
        with openai.OpenAI(base_url=f"{url}/v1", api_key=api_key, max_retries=0, timeout=TIMEOUT) as client:
            for stream in (False, True):
                try:
                    reply = client.chat.completions.create(
                        model="rag", stream=stream, messages=[{"role": "user", "content": QUESTION}])
                    if stream:
                        list(reply)
                    statuses.append(200)
                except openai.AuthenticationError as exc:
                    statuses.append(exc.status_code)
    return statuses


def test_api_key_never_appears_in_logs(key_server: KeyServer, capfd: pytest.CaptureFixture[str]) -> None:
    key, logs = key_server.key, key_server.logs
    statuses = _api_key_traffic(key_server.url, key)
    assert statuses.count(200) == 3 + 2 and statuses.count(401) == 4 * 4 + 2, statuses
    assert 400 in statuses
    out, err = capfd.readouterr()
    assert any("uvicorn.access" in line for line in logs.lines), "the access log was not captured"
    leaks = [line for line in logs.lines if key in line]
    assert not leaks, leaks[:3]
    assert key not in out and key not in err
