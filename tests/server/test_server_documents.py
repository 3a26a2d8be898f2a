"""Document management over HTTP: upload (JSON and multipart, every supported
format, PDF included; 415 for the others), list, delete."""

from __future__ import annotations

import io
from pathlib import Path

import httpx
import pytest

from tests.conftest import SEEDS

DOC = "The Zebra Protocol was signed in Oslo in 1999 by eleven delegations. It regulates migratory birds."
SUPPORTED = ".docx, .epub, .htm, .html, .markdown, .md, .pdf, .pptx, .txt"


def pdf_bytes(pages: list[list[str]]) -> bytes:
    """A real PDF (reportlab): one paragraph of lines per page."""
    canvas = pytest.importorskip("reportlab.pdfgen.canvas")
    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=(612, 792))
    for lines in pages:
        c.setFont("Helvetica", 11)
        y = 700.0
        for line in lines:
            c.drawString(72, y, line)
            y -= 13.5
        c.showPage()
    c.save()
    return buf.getvalue()


def test_json_upload_is_idempotent_and_answerable(fresh_api: str) -> None:
    r = httpx.post(f"{fresh_api}/v1/documents", json={"source": "notes/zebra.txt", "text": DOC}, timeout=60)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "added" and r.json()["chunks"] >= 1
    again = httpx.post(f"{fresh_api}/v1/documents", json={"source": "notes/zebra.txt", "text": DOC}, timeout=60)
    assert again.json()["status"] == "unchanged" and again.json()["total_chunks"] == r.json()["total_chunks"]
    changed = httpx.post(f"{fresh_api}/v1/documents", json={"source": "notes/zebra.txt", "text": DOC + " More."})
    assert changed.json()["status"] == "updated"
    docs = httpx.get(f"{fresh_api}/v1/documents").json()["documents"]
    assert [d["source"] for d in docs] == ["notes/zebra.txt"]
    answer = httpx.post(f"{fresh_api}/v1/ask", json={"question": "Where was the Zebra Protocol signed?"},
                        timeout=60).json()
    assert "Oslo" in answer["answer"] and answer["citations"][0]["source"] == "notes/zebra.txt"


def test_multipart_upload_uses_the_file_name(fresh_api: str) -> None:
    seed = sorted(SEEDS.iterdir())[0]
    with seed.open("rb") as fh:
        r = httpx.post(f"{fresh_api}/v1/documents", files={"file": (seed.name, fh, "text/plain")}, timeout=120)
    assert r.status_code == 200, r.text
    assert r.json()["source"] == seed.name and r.json()["chunks"] > 1
    html = b"<html><body><h1>Title</h1><p>The harbour opened in 1887.</p><script>x=1</script></body></html>"
    r = httpx.post(f"{fresh_api}/v1/documents", files={"file": ("page.html", html, "text/html")},
                   data={"source": "site/page.html"}, timeout=60)
    assert r.json()["source"] == "site/page.html"
    hits = httpx.get(f"{fresh_api}/v1/search", params={"q": "harbour opened"}).json()["results"]
    assert hits[0]["source"] == "site/page.html" and "x=1" not in hits[0]["text"]


def test_delete_removes_every_chunk(fresh_api: str) -> None:
    httpx.post(f"{fresh_api}/v1/documents", json={"source": "a/b.txt", "text": DOC}, timeout=60)
    r = httpx.delete(f"{fresh_api}/v1/documents/a/b.txt")
    assert r.status_code == 200 and r.json() == {"removed": "a/b.txt", "chunks": 1}
    assert httpx.get(f"{fresh_api}/v1/documents").json()["documents"] == []
    missing = httpx.delete(f"{fresh_api}/v1/documents/a/b.txt")
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found"


@pytest.mark.parametrize("source", ["../etc/passwd", "/etc/passwd", "a/../../b", "a\\b", "C:/x", "..", "a//b"])
def test_sources_that_look_like_paths_are_rejected(fresh_api: str, source: str, tmp_path: Path) -> None:
    r = httpx.post(f"{fresh_api}/v1/documents", json={"source": source, "text": DOC}, timeout=30)
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_source"
    assert httpx.get(f"{fresh_api}/v1/documents").json()["documents"] == []


@pytest.mark.parametrize("raw_path", ["/v1/documents/..%2Fsecret", "/v1/documents/%2Fetc%2Fpasswd",
                                      "/v1/documents/a%5Cb"])
def test_delete_with_encoded_traversal_is_rejected(fresh_api: str, raw_path: str) -> None:
    r = httpx.request("DELETE", httpx.URL(fresh_api + raw_path))
    assert r.status_code in (400, 404) and r.json()["error"]["type"] in ("invalid_source", "not_found")


def test_upload_errors(fresh_api: str) -> None:
    r = httpx.post(f"{fresh_api}/v1/documents", content=b"hello", headers={"content-type": "text/plain"})
    assert r.status_code == 415
    r = httpx.post(f"{fresh_api}/v1/documents", json={"source": "x.txt"})
    assert r.status_code == 422 and "text" in r.json()["error"]["message"]
    r = httpx.post(f"{fresh_api}/v1/documents", data={"source": "x.txt"}, files={"other": ("a", b"b")})
    assert r.status_code == 422 and "file" in r.json()["error"]["message"]
    r = httpx.post(f"{fresh_api}/v1/documents", json={"source": "empty.txt", "text": "   "})
    assert r.status_code == 400
    r = httpx.post(f"{fresh_api}/v1/documents", files={"file": ("big.txt", b"a " * 6_000_000)})
    assert r.status_code == 413


def test_a_pdf_upload_gives_a_cited_answer_with_its_page(fresh_api: str) -> None:
    pdf = pdf_bytes([["The harbour office keeps the tide tables and the mooring fees for", "every season."],
                     ["The Varnholm lighthouse was built in 1887 by the engineer Ada Lindqvist.",
                      "Its lamp can be seen from twenty nautical miles."]])
    r = httpx.post(f"{fresh_api}/v1/documents", files={"file": ("varnholm.pdf", pdf, "application/pdf")},
                   data={"source": "reports/varnholm.pdf"}, timeout=120)
    assert r.status_code == 200, r.text
    assert (r.json()["source"], r.json()["status"]) == ("reports/varnholm.pdf", "added") and r.json()["chunks"] >= 1
    answer = httpx.post(f"{fresh_api}/v1/ask", json={"question": "Who built the Varnholm lighthouse?"},
                        timeout=120).json()
    assert answer["abstained"] is False, answer
    cited = answer["citations"][0]
    assert (cited["source"], cited["page"]) == ("reports/varnholm.pdf", 2), cited
    assert "Ada Lindqvist" in cited["text"] and "Lindqvist" in answer["answer"]
    again = httpx.post(f"{fresh_api}/v1/documents", files={"file": ("varnholm.pdf", pdf, "application/pdf")},
                       data={"source": "reports/varnholm.pdf"}, timeout=120)
    assert again.json()["status"] == "unchanged"


def test_markdown_and_html_uploads_are_parsed_by_their_suffix(fresh_api: str) -> None:
    md = b"# Ferries\n\nThe *night ferry* leaves at eleven."
    r = httpx.post(f"{fresh_api}/v1/documents", files={"file": ("ferries.md", md, "text/markdown")}, timeout=60)
    assert r.status_code == 200, r.text
    r = httpx.post(f"{fresh_api}/v1/documents", files={"file": ("port.htm", b"<p>The port opens at six.</p>")},
                   timeout=60)
    assert r.status_code == 200, r.text
    hits = httpx.get(f"{fresh_api}/v1/search", params={"q": "night ferry leaves"}).json()["results"]
    assert hits[0]["source"] == "ferries.md" and "*" not in hits[0]["text"] and "#" not in hits[0]["text"]


@pytest.mark.parametrize(("name", "body"), [("tool.exe", b"MZ\x90\x00\x03"), ("report.odt", b"PK\x03\x04 zip"),
                                            ("notes", b"Plain words without a suffix."),
                                            ("data.csv", b"a,b\n1,2\n")])
def test_an_unsupported_file_type_is_a_415_naming_the_supported_ones(fresh_api: str, name: str,
                                                                     body: bytes) -> None:
    r = httpx.post(f"{fresh_api}/v1/documents", files={"file": (name, body)}, timeout=60)
    assert r.status_code == 415, r.text
    assert r.json()["error"]["type"] == "unsupported_file_type"
    assert name in r.json()["error"]["message"] and f"supported: {SUPPORTED}" in r.json()["error"]["message"]
    # the source field names the type when given
    r = httpx.post(f"{fresh_api}/v1/documents", files={"file": ("ok.txt", b"Fine text.")},
                   data={"source": name}, timeout=60)
    assert r.status_code == 415, r.text
    assert httpx.get(f"{fresh_api}/v1/documents").json()["documents"] == []


def test_json_text_is_named_like_a_text_file(fresh_api: str) -> None:
    r = httpx.post(f"{fresh_api}/v1/documents", json={"source": "tool.exe", "text": DOC}, timeout=60)
    assert r.status_code == 415 and f"supported: {SUPPORTED}" in r.json()["error"]["message"]
    r = httpx.post(f"{fresh_api}/v1/documents", json={"source": "scan.pdf", "text": DOC}, timeout=60)
    assert r.status_code == 415 and "multipart" in r.json()["error"]["message"]
    assert httpx.get(f"{fresh_api}/v1/documents").json()["documents"] == []
    for source in ("notes/zebra", "site/zebra.html", "zebra.markdown"):  # no suffix: plain text
        r = httpx.post(f"{fresh_api}/v1/documents", json={"source": source, "text": DOC}, timeout=60)
        assert r.status_code == 200, r.text


def test_a_damaged_pdf_upload_is_a_400_in_one_line(fresh_api: str) -> None:
    damaged = pdf_bytes([["Cut short."]])[:80]
    r = httpx.post(f"{fresh_api}/v1/documents", files={"file": ("cut.pdf", damaged, "application/pdf")}, timeout=60)
    assert r.status_code == 400, r.text
    assert r.json()["error"] == {"type": "ingest_error", "message": "cannot read cut.pdf: it is not a readable PDF"}


def test_nul_bytes_are_refused_anywhere_in_an_upload(fresh_api: str) -> None:
    text = "A harmless first part. " * 500 + "\x00 then binary."  # past the first 8 KB the loaders sniff
    r = httpx.post(f"{fresh_api}/v1/documents", files={"file": ("late.txt", text.encode())}, timeout=60)
    assert r.status_code == 400 and "NUL" in r.json()["error"]["message"]
    r = httpx.post(f"{fresh_api}/v1/documents", json={"source": "late.txt", "text": text}, timeout=60)
    assert r.status_code == 400 and "NUL" in r.json()["error"]["message"]
    assert httpx.get(f"{fresh_api}/v1/documents", timeout=30).json()["documents"] == []


@pytest.fixture
def held_writes(tmp_path: Path, embedder):
    """A server (queue of 2 writes) whose document writes wait for ``release`` to be set
    (``started`` is set once the first write is under way)."""
    import threading

    from rag.engine import Rag
    from rag.settings import Settings
    from server.app import create_app
    from tests.serving import LiveServer

    settings = Settings(data_dir=tmp_path / "data", use_llm=False, max_write_queue=2)
    engine = Rag(settings, embedder=embedder)
    release, started = threading.Event(), threading.Event()
    ingestor = engine.ingestor
    real = ingestor.ingest_documents
    ingestor.ingest_documents = lambda docs, **kw: (started.set(), release.wait(60), real(docs, **kw))[2]
    with LiveServer(create_app(settings, engine=engine)) as server:
        yield server.url, release, started
        release.set()


def _metric(url: str, name: str) -> float:
    lines = [line for line in httpx.get(f"{url}/metrics", timeout=30).text.splitlines() if line.startswith(name)]
    return sum(float(line.rsplit(" ", 1)[1]) for line in lines)


def test_writes_queue_up_to_the_limit_then_get_503_and_leave_when_their_client_does(held_writes) -> None:
    import socket
    import threading
    import time
    from urllib.parse import urlparse

    url, release, started = held_writes
    results: dict[str, httpx.Response] = {}

    def upload(name: str) -> None:
        results[name] = httpx.post(f"{url}/v1/documents", json={"source": name, "text": f"Text of {name}."},
                                   timeout=120)

    first = threading.Thread(target=upload, args=("first.txt",))
    first.start()
    assert started.wait(30)  # the first write is under way (and held)
    # a client that queues a write and then goes away
    host = urlparse(url)
    body = b'{"source": "gone.txt", "text": "Its client left."}'
    gone = socket.create_connection((host.hostname, host.port))
    gone.sendall(b"POST /v1/documents HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                 b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    waiting = threading.Thread(target=upload, args=("second.txt",))
    waiting.start()
    deadline = time.monotonic() + 30
    while _metric(url, "rag_write_queue_depth") < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _metric(url, "rag_write_queue_depth") == 2
    busy = [httpx.post(f"{url}/v1/documents", json={"source": f"x{i}.txt", "text": "More."}, timeout=30)
            for i in range(3)]
    assert [r.status_code for r in busy] == [503] * 3
    assert all(int(r.headers["retry-after"]) >= 1 and r.json()["error"]["type"] == "busy" for r in busy)
    gone.close()  # the client leaves while its write waits
    time.sleep(0.5)
    release.set()
    first.join(60)
    waiting.join(60)
    assert results["first.txt"].status_code == 200 and results["second.txt"].status_code == 200
    docs = {d["source"] for d in httpx.get(f"{url}/v1/documents", timeout=30).json()["documents"]}
    assert docs == {"first.txt", "second.txt"}  # nothing of the refused writes, nor of the one whose client left
    assert _metric(url, 'rag_writes_total{outcome="refused"}') == 3
    assert _metric(url, 'rag_writes_total{outcome="abandoned"}') == 1
    assert _metric(url, 'rag_writes_total{outcome="done"}') == 2
    assert _metric(url, "rag_write_queue_depth") == 0


def test_an_upload_of_too_many_units_is_refused_before_any_work(fresh_api: str) -> None:
    text = " ".join(f"Sentence {i} is short." for i in range(6000))  # 143 KB: 6,000 units to embed
    r = httpx.post(f"{fresh_api}/v1/documents", files={"file": ("many.txt", text.encode())}, timeout=60)
    assert r.status_code == 413 and "RAG_MAX_UPLOAD_UNITS" in r.json()["error"]["message"]
    assert "6000" in r.json()["error"]["message"]
    assert httpx.get(f"{fresh_api}/v1/documents", timeout=30).json()["documents"] == []
    # 10,000 one-word lines (59 KB) are paragraphs of words, not 10,000 units: taken
    lines = "\n".join(f"word{i}" for i in range(10_000))
    assert httpx.post(f"{fresh_api}/v1/documents", files={"file": ("lines.txt", lines.encode())},
                      timeout=120).status_code == 200


def test_a_write_whose_client_leaves_while_it_runs_stops_and_changes_nothing(tmp_path: Path, embedder) -> None:
    import socket
    import threading
    import time
    from urllib.parse import urlparse

    from rag.engine import Rag
    from rag.ingest.loaders import parse_string
    from rag.settings import Settings
    from server.app import create_app
    from tests.serving import LiveServer
    from tests.ingest.test_ingest import CountingEmbedder

    settings = Settings(data_dir=tmp_path / "data", use_llm=False)
    counting = CountingEmbedder(embedder)
    engine = Rag(settings, embedder=counting)
    old = "The old log has two lines. Nothing else happened."
    engine.ingestor.ingest_documents([parse_string(old, "log.txt")])
    before = engine.store.source_state()["log.txt"]
    started = threading.Event()
    real = engine.ingestor.ingest_documents
    engine.ingestor.ingest_documents = lambda docs, **kw: (started.set(), real(docs, **kw))[1]
    # 2,000 sentences: some seconds of embedding
    new = "\n\n".join(" ".join(f"Entry {p}-{i} records {i * 7 % 13} crates of cargo at dock {p}." for i in range(10))
                      for p in range(200))
    body = ('{"source": "log.txt", "text": "' + new.replace("\n", "\\n") + '"}').encode()
    with LiveServer(create_app(settings, engine=engine)) as server:
        parts = urlparse(server.url)
        counting.texts = 0
        with socket.create_connection((parts.hostname, parts.port)) as sock:
            sock.sendall(b"POST /v1/documents HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                         b"Content-Length: %d\r\n\r\n" % len(body) + body)
            assert started.wait(60)
            time.sleep(0.5)  # the write is under way: embedding
        deadline = time.monotonic() + 60
        while _metric(server.url, 'rag_writes_total{outcome="abandoned"}') < 1:
            assert time.monotonic() < deadline, "the write did not stop"
            time.sleep(0.1)
        embedded = counting.texts
        assert 0 < embedded < 2000  # stopped part-way
        assert _metric(server.url, 'rag_writes_total{outcome="done"}') == 0
        # nothing changed: the old version visible, and nothing of the new one stored
        assert engine.store.source_state()["log.txt"] == before
        r = httpx.get(f"{server.url}/v1/search", params={"q": "crates of cargo at dock", "k": 3}, timeout=60)
        assert all(h["text"] in old for h in r.json()["results"])
        # the same upload from a client that waits is made whole
        r = httpx.post(f"{server.url}/v1/documents", content=body, headers={"Content-Type": "application/json"},
                       timeout=300)
        assert r.status_code == 200 and r.json()["status"] == "updated"
        state = engine.store.source_state()["log.txt"]
        assert list(state.versions) == [state.live] and state.live != before.live


def test_twenty_costly_uploads_meet_a_bounded_queue(held_writes) -> None:
    """The issue's case: 20 costly uploads (1,500 sentences each) at once used to all queue (the queue metric
    at 0). With a write under way and a queue of 2: 2 wait, 18 get 503 at once."""
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    url, release, started = held_writes
    first = threading.Thread(target=lambda: httpx.post(f"{url}/v1/documents",
                                                       json={"source": "first.txt", "text": "First."}, timeout=300))
    first.start()
    assert started.wait(30)
    costly = [" ".join(f"Upload {n} line {i} lists {i % 17} parcels." for i in range(1500)) for n in range(20)]
    peak = 0.0

    def send(n: int) -> httpx.Response:
        return httpx.post(f"{url}/v1/documents", files={"file": (f"costly{n}.txt", costly[n].encode())},
                          timeout=300)

    with ThreadPoolExecutor(20) as pool:
        futures = [pool.submit(send, n) for n in range(20)]
        deadline = time.monotonic() + 120
        while sum(f.done() for f in futures) < 18 and time.monotonic() < deadline:
            peak = max(peak, _metric(url, "rag_write_queue_depth"))
            time.sleep(0.2)
        peak = max(peak, _metric(url, "rag_write_queue_depth"))
        refused = [f.result() for f in futures if f.done()]
        assert len(refused) == 18 and all(r.status_code == 503 and int(r.headers["retry-after"]) >= 1
                                          for r in refused)
        assert peak == 2 and _metric(url, "rag_write_queue_depth") == 2
        release.set()
        results = [f.result() for f in futures]
    first.join(300)
    statuses = sorted(r.status_code for r in results)
    assert statuses == [200] * 2 + [503] * 18
    docs = {d["source"] for d in httpx.get(f"{url}/v1/documents", timeout=30).json()["documents"]}
    assert len(docs) == 3 and "first.txt" in docs
    assert _metric(url, 'rag_writes_total{outcome="refused"}') == 18
    assert _metric(url, 'rag_writes_total{outcome="done"}') == 3
    assert _metric(url, "rag_write_queue_depth") == 0


def test_office_files_and_a_scan_are_uploaded_and_answered_from_the_right_slide_and_page(fresh_api: str) -> None:
    """A Word file, a deck, an EPUB and a scanned PDF over HTTP: each answered with a
    passage from it, from the right slide, page or section; the scan's citation says
    it was read by OCR."""
    from tests.documents import docx_bytes, epub_bytes, pptx_bytes, scanned_pdf_bytes

    files = {"minutes.docx": docx_bytes(), "review.pptx": pptx_bytes(), "history.epub": epub_bytes(),
             "storm.pdf": scanned_pdf_bytes()}
    for name, raw in files.items():
        r = httpx.post(f"{fresh_api}/v1/documents", files={"file": (name, raw)}, timeout=300)
        assert r.status_code == 200 and r.json()["status"] == "added", r.text
        assert r.json()["ocr_pages"] == (2 if name == "storm.pdf" else 0)
    asked = {
        "How much budget did the committee approve for the new pier lights?":
            ("minutes.docx", None, "Decisions", "4,200"),
        "How many passengers did the island ferry carry in the second quarter?":
            ("review.pptx", 2, "Ferry passengers", "48,000"),
        "Who kept the Varnholm light for thirty-one years?":
            ("history.epub", None, "The keepers > Early years", "Lindqvist"),
        "How much did the repairs after the storm cost?": ("storm.pdf", 2, "Storm damage", "9,800"),
    }
    for question, (source, page, section, fact) in asked.items():
        answer = httpx.post(f"{fresh_api}/v1/ask", json={"question": question}, timeout=120).json()
        assert answer["abstained"] is False and fact in answer["answer"], answer
        cited = answer["citations"][0]
        assert (cited["source"], cited["page"], cited["section"], cited["ocr"]) == (
            source, page, section, source.endswith(".pdf")), cited
        assert fact in cited["text"]


def test_damaged_or_textless_office_uploads_are_refused_and_nothing_is_written(fresh_api: str) -> None:
    from tests.documents import docx_bytes, epub_bytes, pictures_only_pptx

    refused = {"broken.docx": (docx_bytes()[:3000], 400, "damaged"),
               "locked.docx": (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 1024, 400, "password-protected"),
               "photos.pptx": (pictures_only_pptx(), 400, "only pictures"),
               "book.epub": (epub_bytes()[:700], 400, "damaged"),
               "sheet.xlsx": (b"PK\x03\x04", 415, ".docx, .epub")}
    for name, (raw, status, words) in refused.items():
        r = httpx.post(f"{fresh_api}/v1/documents", files={"file": (name, raw)}, timeout=60)
        assert r.status_code == status and words in r.json()["error"]["message"], (name, r.text)
    r = httpx.post(f"{fresh_api}/v1/documents", json={"source": "notes.docx", "text": "hello"}, timeout=30)
    assert r.status_code == 415 and "multipart" in r.json()["error"]["message"]
    assert httpx.get(f"{fresh_api}/v1/documents", timeout=30).json()["documents"] == []
