"""``rag ingest`` and ``rag ask`` over Word, PowerPoint, EPUB and scanned PDF files:
a mixed folder (bad files skipped, OCR'd pages counted), each format answered from
the right slide, page or section, and a scan without Tesseract."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rag.ingest.parsers.ocr import tesseract_version
from tests.documents import docx_bytes, epub_bytes, pictures_only_pptx, pptx_bytes, scanned_pdf_bytes

needs_tesseract = pytest.mark.skipif(tesseract_version("tesseract") is None,
                                     reason="Tesseract is not installed (bash .ci/setup installs it)")



@pytest.fixture
def office(tmp_path: Path) -> Path:
    folder = tmp_path / "office"
    folder.mkdir()
    (folder / "minutes.docx").write_bytes(docx_bytes())
    (folder / "review.pptx").write_bytes(pptx_bytes())
    (folder / "history.epub").write_bytes(epub_bytes())
    (folder / "scan.pdf").write_bytes(scanned_pdf_bytes())
    (folder / "broken.docx").write_bytes(docx_bytes()[:2500])
    (folder / "photos.pptx").write_bytes(pictures_only_pptx())
    return folder


@needs_tesseract
def test_a_mixed_folder_is_ingested_and_each_format_answered_from_the_right_place(
        run: Any, office: Path, tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    code, out, err = run("ingest", str(office), "--json", "--data-dir", data)
    assert code == 0, err
    report = json.loads(out)
    assert (report["added"], report["ocr_pages"]) == (4, 2)
    reasons = {s["source"]: s["reason"] for s in report["skipped"]}
    assert list(reasons) == ["office/broken.docx", "office/photos.pptx"]
    assert "damaged" in reasons["office/broken.docx"] and "only pictures" in reasons["office/photos.pptx"]
    code, out, err = run("ingest", str(office), "--data-dir", data)
    assert code == 0 and "unchanged 4" in out and "skipped 2" in out and "2 page(s) read by OCR" in out, out

    asked = {
        "How much budget did the committee approve for the new pier lights?":
            ("office/minutes.docx", None, "Decisions", False, "4,200"),
        "How many passengers did the island ferry carry in the second quarter?":
            ("office/review.pptx", 2, "Ferry passengers", False, "48,000"),
        "Who kept the Varnholm light for thirty-one years?":
            ("office/history.epub", None, "The keepers > Early years", False, "Lindqvist"),
        "How much did the repairs after the storm cost?":
            ("office/scan.pdf", 2, "Storm damage", True, "9,800"),
    }
    for question, (source, page, section, ocr, fact) in asked.items():
        code, out, err = run("ask", question, "--json", "--data-dir", data)
        assert code == 0, err
        answer = json.loads(out)
        assert not answer["abstained"] and fact in answer["answer"], answer
        c = answer["citations"][0]
        assert (c["source"], c["page"], c["section"], c["ocr"]) == (source, page, section, ocr), c
        assert fact in c["text"]
    code, out, _ = run("ask", "How much did the repairs after the storm cost?", "--data-dir", data)
    assert code == 0 and "office/scan.pdf, p. 2 (OCR) — Storm damage" in out, out
    code, out, _ = run("ask", "How many passengers did the island ferry carry in the second quarter?",
                       "--data-dir", data)
    assert "office/review.pptx, slide 2 — Ferry passengers" in out, out


def test_without_tesseract_a_scan_is_refused_alone_and_skipped_in_a_folder(
        run: Any, office: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_OCR_TESSERACT", str(tmp_path / "no-such-tesseract"))
    data = str(tmp_path / "data")
    code, out, err = run("ingest", str(office / "scan.pdf"), "--data-dir", data)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 1 and out == "" and len(lines) == 1, err
    assert "need OCR" in lines[0] and "apt-get install tesseract-ocr" in lines[0]
    code, out, err = run("ingest", str(office), "--json", "--data-dir", data)
    report = json.loads(out)
    assert code == 0 and report["added"] == 3 and report["ocr_pages"] == 0
    assert "need OCR" in {s["source"]: s["reason"] for s in report["skipped"]}["office/scan.pdf"]
