"""``rag doctor``: a damaged index is one clear line everywhere, found by the
check, and made again from the recorded folders and the kept uploads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from rag.ingest import originals
from rag.engine import Rag
from rag.settings import Settings
from server.app import create_app
from tests.articles import write_articles
from tests.conftest import SEEDS
from tests.serving import LiveServer

ROOT = Path(__file__).resolve().parents[2]
UPLOAD = {"source": "notes/harbour.md", "text": "# Harbour\n\nThe harbour of Port Elsworth opens at seven."}


def rag(*argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "rag", *argv], capture_output=True, text=True, env=env,
                          cwd=cwd or ROOT, timeout=600)


def damage(data: Path) -> None:
    """Bytes of the index's SQLite file overwritten, as a bad disk or a killed copy would leave it."""
    path = data / "chroma" / "chroma.sqlite3"
    raw = bytearray(path.read_bytes())
    for i in range(4096, len(raw), 997):
        raw[i] ^= 0x5A
    path.write_bytes(bytes(raw))


def test_uploads_are_kept_as_files_and_deleted_with_their_document(tmp_path: Path, embedder) -> None:
    settings = Settings(data_dir=tmp_path / "data", use_llm=False)
    with LiveServer(create_app(settings, engine=Rag(settings, embedder=embedder))) as server:
        assert httpx.post(f"{server.url}/v1/documents", json=UPLOAD, timeout=60).status_code == 200
        files = {"file": ("plain.txt", b"Plain text sent as a file.")}
        assert httpx.post(f"{server.url}/v1/documents", files=files, timeout=60).status_code == 200
        kept = dict(originals.uploads(settings.data_dir))
        assert set(kept) == {"notes/harbour.md", "plain.txt"}
        assert kept["notes/harbour.md"].read_text() == UPLOAD["text"]
        assert kept["plain.txt"].read_bytes() == b"Plain text sent as a file."
        bad = httpx.post(f"{server.url}/v1/documents", json={"source": "notes/harbour.md", "text": "x\x00y"})
        assert bad.status_code == 400 and kept["notes/harbour.md"].read_text() == UPLOAD["text"]  # untouched
        assert httpx.delete(f"{server.url}/v1/documents/plain.txt", timeout=60).status_code == 200
        assert [s for s, _ in originals.uploads(settings.data_dir)] == ["notes/harbour.md"]


def test_any_source_name_is_kept_inside_the_uploads_folder(tmp_path: Path) -> None:
    names = ["../x.txt", "/etc/passwd", "a/../../b.txt", "0" * 600 + ".txt", "Ünïcode/名前.md", "CON", "a\\b"]
    for i, name in enumerate(names):
        originals.save_upload(tmp_path, name, f"text {i}".encode())
        assert originals.upload_path(tmp_path, name).parent == tmp_path / originals.UPLOADS
    kept = dict(originals.uploads(tmp_path))
    assert sorted(kept) == sorted(names) and kept["CON"].read_bytes() == b"text 5"
    originals.remove_upload(tmp_path, "../x.txt")
    assert "../x.txt" not in dict(originals.uploads(tmp_path))
    originals.record_ingested(tmp_path, [Path("seeds")], None)
    originals.record_ingested(tmp_path, [Path("seeds"), Path("docs")], "d")
    assert [(Path(i.path).name, i.prefix) for i in originals.ingested(tmp_path)] == [
        ("seeds", None), ("seeds", "d"), ("docs", "d")]
    (tmp_path / originals.INGESTED).write_text("{not json")
    assert originals.ingested(tmp_path) == []


@pytest.mark.slow
def test_a_damaged_index_is_one_line_everywhere_and_rag_doctor_rebuilds_it(tmp_path: Path, embedder) -> None:
    data = tmp_path / "data"
    assert rag("ingest", str(SEEDS), "--data-dir", str(data)).returncode == 0
    settings = Settings(data_dir=data, use_llm=False)
    with LiveServer(create_app(settings, engine=Rag(settings, embedder=embedder))) as server:
        assert httpx.post(f"{server.url}/v1/documents", json=UPLOAD, timeout=60).status_code == 200
    healthy = rag("doctor", "--data-dir", str(data), "--json")
    assert healthy.returncode == 0, healthy.stderr
    report = json.loads(healthy.stdout)
    assert report["ok"] and any("6 documents" in n for n in report["notes"])
    before = json.loads(rag("search", "When does the harbour open?", "--json", "--data-dir", str(data)).stdout)

    damage(data)
    for argv in (["search", "harbour"], ["ask", "When does the harbour open?", "--no-llm"], ["list"],
                 ["ingest", str(SEEDS)], ["serve", "--port", "0"]):
        proc = rag(*argv, "--data-dir", str(data))
        assert proc.returncode != 0, argv
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in proc.stderr, (argv, proc.stderr)
        assert lines[0].startswith("error: cannot open the Chroma collections") and "rag doctor" in lines[0]
    check = rag("doctor", "--data-dir", str(data))
    assert check.returncode == 1 and "problem:" in check.stderr and "--rebuild" in check.stderr

    rebuilt = rag("doctor", "--rebuild", "--data-dir", str(data), "--json")
    assert rebuilt.returncode == 0, rebuilt.stderr
    report = json.loads(rebuilt.stdout)
    assert report["ok"] and report["rebuilt"]["folders"] == 1 and report["rebuilt"]["uploads"] == 1
    assert Path(report["rebuilt"]["moved_to"]).is_dir()  # the damaged index is kept aside
    after = json.loads(rag("search", "When does the harbour open?", "--json", "--data-dir", str(data)).stdout)
    assert [(h["source"], h["text"]) for h in after["results"]] == [(h["source"], h["text"]) for h in before["results"]]
    listed = json.loads(rag("list", "--json", "--data-dir", str(data)).stdout)["documents"]
    assert {d["source"] for d in listed} == {f"seeds/{p.name}" for p in SEEDS.glob("*.txt")} | {"notes/harbour.md"}


@pytest.mark.slow
def test_an_emptied_vector_index_file_is_one_line_everywhere_and_rag_doctor_rebuilds_it(tmp_path: Path) -> None:
    """The issue's state after a full disk: Chroma's id map of a vector index
    (``index_metadata.pickle``) left empty, every command failing until it was deleted
    by hand. It appears once a collection holds about a thousand records."""
    data, docs = tmp_path / "data", write_articles(tmp_path / "articles", 70)  # 1,120 sentences
    assert rag("ingest", str(docs), "--data-dir", str(data)).returncode == 0
    query = ("search", "Who logs tanker 3 at station 5?", "--json", "--data-dir", str(data))
    before = json.loads(rag(*query).stdout)["results"]
    maps = list((data / "chroma").glob("*/index_metadata.pickle"))
    assert maps, "no persisted vector index: the corpus is too small"
    for path in maps:
        path.write_bytes(b"")
    for argv in (["list"], ["ask", "Who logs tanker 3 at station 5?", "--no-llm"], ["ingest", str(docs)]):
        proc = rag(*argv, "--data-dir", str(data))
        assert proc.returncode != 0, argv
        said = " ".join(proc.stderr.split())  # one message (the terminal may wrap it)
        assert said.startswith("error: the index in") and "rag doctor --rebuild" in said, (argv, proc.stderr)
        assert "Traceback" not in proc.stderr and "│" not in proc.stderr
    check = rag("doctor", "--data-dir", str(data))
    assert check.returncode == 1 and "pickle" in check.stderr and "--rebuild" in check.stderr
    assert rag("doctor", "--rebuild", "--data-dir", str(data)).returncode == 0
    listed = json.loads(rag("list", "--json", "--data-dir", str(data)).stdout)["documents"]
    assert len(listed) == 70
    after = json.loads(rag(*query).stdout)["results"]
    assert after and [(h["source"], h["text"]) for h in after] == [(h["source"], h["text"]) for h in before]


def test_rebuild_reads_office_files_and_scans_again_without_ocring_twice(tmp_path: Path, embedder) -> None:
    """A deck and a scan ingested from a folder, a Word file and an EPUB uploaded:
    ``rag doctor --rebuild`` makes all four again, the scan's pages from the OCR cache."""
    from rag.ingest.parsers.ocr import tesseract_version
    from tests.documents import docx_bytes, epub_bytes, pptx_bytes, scanned_pdf_bytes

    if tesseract_version("tesseract") is None:
        pytest.skip("Tesseract is not installed (bash .ci/setup installs it)")
    data, folder = tmp_path / "data", tmp_path / "office"
    folder.mkdir()
    (folder / "review.pptx").write_bytes(pptx_bytes())
    (folder / "scan.pdf").write_bytes(scanned_pdf_bytes())
    assert rag("ingest", str(folder), "--data-dir", str(data)).returncode == 0
    settings = Settings(data_dir=data, use_llm=False)
    with LiveServer(create_app(settings, engine=Rag(settings, embedder=embedder))) as server:
        for name, raw in (("minutes.docx", docx_bytes()), ("history.epub", epub_bytes())):
            assert httpx.post(f"{server.url}/v1/documents", files={"file": (name, raw)}, timeout=60).status_code == 200
    kept = {p: p.stat().st_mtime_ns for p in (Path(os.environ["RAG_CACHE_DIR"]) / "ocr").glob("*/*.json")}
    listed = json.loads(rag("list", "--json", "--data-dir", str(data)).stdout)["documents"]

    damage(data)
    rebuilt = rag("doctor", "--rebuild", "--data-dir", str(data), "--json")
    assert rebuilt.returncode == 0, rebuilt.stderr
    report = json.loads(rebuilt.stdout)["rebuilt"]
    assert (report["folders"], report["uploads"], report["failed"]) == (1, 2, [])
    assert json.loads(rag("list", "--json", "--data-dir", str(data)).stdout)["documents"] == listed
    assert len(listed) == 4 and len(kept) >= 2
    assert {p: p.stat().st_mtime_ns for p in kept} == kept  # the scan's pages were not read again
    hit = json.loads(rag("search", "storm repairs cost", "--json", "--data-dir", str(data)).stdout)["results"][0]
    assert hit["source"] == "office/scan.pdf" and "9,800" in hit["text"]


def test_doctor_says_whether_scanned_pages_can_be_read(tmp_path: Path) -> None:
    from rag.cli.doctor import ocr_note
    from rag.ingest.parsers.ocr import tesseract_version

    missing = ocr_note(Settings(data_dir=tmp_path, ocr_tesseract=str(tmp_path / "no-tesseract")))
    assert missing.startswith("scanned PDF pages cannot be read (no Tesseract)") and "apt-get install" in missing
    if tesseract_version("tesseract") is None:
        pytest.skip("Tesseract is not installed (bash .ci/setup installs it)")
    assert ocr_note(Settings(data_dir=tmp_path)).startswith("scanned PDF pages are read by OCR: Tesseract ")
    assert "tesseract-ocr-qqq" in ocr_note(Settings(data_dir=tmp_path, ocr_lang="qqq"))
