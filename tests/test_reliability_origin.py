"""No cross-site writes and no DNS rebinding (``server.guard``), on real servers:
Host headers and browser headers sent by hand, then a real page of another origin
in headless Chromium trying the attacks that used to work."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from rag.engine import Rag
from rag.settings import Settings
from server.app import create_app
from server.guard import default_hosts, host_allowed, split_host
from tests.serving import LiveServer
from tests.browser import headless_chromium

DOC = {"source": "notes.txt", "text": "The harbour opens at seven. Ferries leave from pier four."}


@pytest.fixture
def serve(tmp_path: Path, embedder) -> Iterator[Callable[..., str]]:
    """Start a server on a fresh index (extractive answers: no model needed) with settings changed."""
    started: list[LiveServer] = []

    def start(**overrides: object) -> str:
        settings = Settings(data_dir=tmp_path / f"data{len(started)}", use_llm=False, **overrides)
        server = LiveServer(create_app(settings, engine=Rag(settings, embedder=embedder))).__enter__()
        started.append(server)
        return server.url

    yield start
    for server in started:
        server.__exit__(None, None, None)


def sources(url: str) -> list[str]:
    return [d["source"] for d in httpx.get(f"{url}/v1/documents", timeout=30).json()["documents"]]


# --- Host: DNS rebinding ----------------------------------------------------------------------

def test_host_names_and_patterns() -> None:
    assert split_host("127.0.0.1:8000") == "127.0.0.1" and split_host("[::1]:80") == "::1"
    assert split_host("Example.ORG") == "example.org" and split_host("::1") == "::1"
    assert default_hosts("0.0.0.0") == ["localhost", "127.0.0.1", "::1"]
    assert default_hosts("192.168.1.5")[-1] == "192.168.1.5"
    assert host_allowed("api.example.org", ["*.example.org"]) and not host_allowed("example.org.evil", ["*.example.org"])
    assert host_allowed("anything", ["*"]) and not host_allowed("rebind.attacker.example", default_hosts("127.0.0.1"))


def test_a_host_the_server_does_not_answer_to_gets_400(serve) -> None:
    url = serve()
    port = url.rsplit(":", 1)[1]
    for host in ("rebind.attacker.example", f"rebind.attacker.example:{port}", "127.0.0.2"):
        r = httpx.get(f"{url}/v1/documents", headers={"Host": host}, timeout=30)
        assert r.status_code == 400, host
        assert r.json()["error"]["type"] == "invalid_input" and "RAG_ALLOWED_HOSTS" in r.json()["error"]["message"]
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", "localhost"):
        assert httpx.get(f"{url}/v1/documents", headers={"Host": host}, timeout=30).status_code == 200, host


def test_configured_host_names_are_answered(serve) -> None:
    url = serve(allowed_hosts="rag.example.org, *.lan")
    for host in ("rag.example.org", "box.lan:8000"):
        assert httpx.get(f"{url}/healthz", headers={"Host": host}, timeout=30).status_code == 200
    assert httpx.get(f"{url}/healthz", headers={"Host": "evil.example"}, timeout=30).status_code == 400


# --- cross-site writes, headers sent by hand ----------------------------------------------------

def test_writes_a_browser_marks_cross_site_get_403_and_change_nothing(serve) -> None:
    url = serve()
    attempts = [
        {"headers": {"Origin": "http://evil.example"}, "json": DOC},
        {"headers": {"Sec-Fetch-Site": "cross-site"}, "json": DOC},
        {"headers": {"Sec-Fetch-Site": "same-site", "Origin": "http://sub.127.0.0.1"}, "json": DOC},
        {"headers": {"Origin": "null"}, "json": DOC},  # a sandboxed frame or a file:// page
        {"headers": {"Origin": "http://evil.example"}, "files": {"file": ("notes.txt", DOC["text"].encode())}},
        {"headers": {"Origin": "http://evil.example", "Content-Type": "text/plain"}, "content": b'{"source":"x"}'},
    ]
    for attempt in attempts:
        r = httpx.post(f"{url}/v1/documents", timeout=30, **attempt)
        assert r.status_code == 403, attempt
        assert r.json()["error"]["type"] == "forbidden" and "cross-site" in r.json()["error"]["message"]
    assert sources(url) == []
    # the same writes from the server's own page, or from a program (no browser headers), go through
    own = url.replace("http://", "")
    assert httpx.post(f"{url}/v1/documents", json=DOC, timeout=60,
                      headers={"Origin": url, "Sec-Fetch-Site": "same-origin"}).status_code == 200
    assert httpx.post(f"{url}/v1/documents", timeout=60, json={**DOC, "source": "b.txt"}).status_code == 200
    assert sorted(sources(url)) == ["b.txt", "notes.txt"]
    r = httpx.delete(f"{url}/v1/documents/b.txt", headers={"Origin": "http://evil.example"}, timeout=30)
    assert r.status_code == 403 and sorted(sources(url)) == ["b.txt", "notes.txt"]
    assert httpx.delete(f"{url}/v1/documents/b.txt", headers={"Origin": f"http://{own}"}, timeout=30).status_code == 200
    # reads are not writes: a cross-site GET is answered (CORS keeps its response from the page)
    r = httpx.get(f"{url}/v1/documents", headers={"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"})
    assert r.status_code == 200 and "access-control-allow-origin" not in r.headers


def test_configured_origins_may_write_and_get_cors(serve) -> None:
    url = serve(cors_origins="http://app.example.org")
    pre = httpx.options(f"{url}/v1/documents", timeout=30, headers={
        "Origin": "http://app.example.org", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type, authorization"})
    assert pre.status_code == 200 and pre.headers["access-control-allow-origin"] == "http://app.example.org"
    r = httpx.post(f"{url}/v1/documents", json=DOC, timeout=60,
                   headers={"Origin": "http://app.example.org", "Sec-Fetch-Site": "cross-site"})
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "http://app.example.org"
    assert httpx.post(f"{url}/v1/documents", json=DOC, timeout=30,
                      headers={"Origin": "http://evil.example"}).status_code == 403


# --- a real page of another origin in Chromium ---------------------------------------------------

ATTACK = """<!doctype html><title>cute cats</title><script>
const target = "%(target)s";
const done = [];
async function attack() {
  const form = new FormData();
  form.append("file", new Blob(["Meta's president of global affairs is Mallory Attacker."]), "001_seed.txt");
  for (const send of [
    () => fetch(target + "/v1/documents", {method: "POST", mode: "no-cors", body: form}),
    () => fetch(target + "/v1/documents", {method: "POST", mode: "no-cors",
          body: new Blob([JSON.stringify({source: "evil.txt", text: "HACKED by Mallory."})])}),
    () => fetch(target + "/v1/documents", {method: "POST", mode: "no-cors",
          headers: {"content-type": "text/plain"}, body: JSON.stringify({source: "t.txt", text: "HACKED."})}),
    // a DELETE is never "simple": the browser asks first (a CORS preflight), which gets no permission
    () => fetch(target + "/v1/documents/notes.txt", {method: "DELETE"}),
  ]) {
    try { await send(); done.push("sent"); } catch (e) { done.push("error " + e); }
  }
  document.title = "done " + done.join(",");
}
attack();
</script>"""


@pytest.fixture
def attacker_site(tmp_path: Path) -> Iterator[Callable[[str], str]]:
    """A web server for another origin (http://localhost:PORT, while the API is on
    http://127.0.0.1:PORT) that serves a page attacking ``target``."""
    root = tmp_path / "site"
    root.mkdir()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(SimpleHTTPRequestHandler, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()

    def page(target: str) -> str:
        (root / "cats.html").write_text(ATTACK % {"target": target}, encoding="utf-8")
        return f"http://localhost:{httpd.server_address[1]}/cats.html"

    try:
        yield page
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(scope="module")
def driver() -> Iterator[object]:
    with headless_chromium((1280, 860)) as drv:
        yield drv


@pytest.mark.slow
def test_a_page_of_another_origin_cannot_add_replace_or_delete_documents(serve, attacker_site, driver) -> None:
    url = serve()
    assert httpx.post(f"{url}/v1/documents", json=DOC, timeout=60).status_code == 200
    before = httpx.get(f"{url}/metrics", timeout=30).text
    driver.get(attacker_site(url))
    deadline = time.monotonic() + 60
    while not driver.title.startswith("done") and time.monotonic() < deadline:
        time.sleep(0.2)
    sent = driver.title.removeprefix("done ").split(",")
    assert sent[:3] == ["sent", "sent", "sent"] and sent[3].startswith("error")  # three sent, the DELETE stopped
    assert sources(url) == ["notes.txt"]  # and nothing changed
    refused = [line for line in httpx.get(f"{url}/metrics", timeout=30).text.splitlines()
               if line.startswith("rag_http_requests_total") and 'status="403"' in line]
    assert refused and line_total(refused) >= 3 and before.count('status="403"') == 0
    # the server's own page still writes: the same upload from a page of the server's origin
    driver.get(f"{url}/")  # the web page
    status = driver.execute_async_script("""
        const done = arguments[arguments.length - 1];
        fetch("/v1/documents", {method: "POST", headers: {"content-type": "application/json"},
              body: JSON.stringify({source: "own.txt", text: "Written by the server's own page."})})
          .then(r => done(r.status), e => done(String(e)));""")
    assert status == 200 and sorted(sources(url)) == ["notes.txt", "own.txt"]


def line_total(lines: list[str]) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in lines)
