"""Scanned PDF pages (pictures of text, made with Pillow) read by Tesseract: text,
headings and pages, the cache, and what happens without Tesseract."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pypdfium2 as pdfium
import pytest

from rag.errors import IngestError
from rag.ingest.ingestor import build_records
from rag.ingest.parsers.ocr import OcrOptions, tesseract_version
from rag.ingest.parsers.pdf import parse_pdf
from tests.documents import scanned_pdf_bytes

pytestmark = pytest.mark.skipif(tesseract_version("tesseract") is None,
                                reason="Tesseract is not installed (bash .ci/setup installs it)")
MISSING = OcrOptions(tesseract="/nonexistent/tesseract")


def text_pdf(lines: list[str]) -> bytes:
    canvas = pytest.importorskip("reportlab.pdfgen.canvas")
    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=(595, 842))
    c.setFont("Helvetica", 11)
    for i, line in enumerate(lines):
        c.drawString(72, 760 - 16 * i, line)
    c.showPage()
    c.save()
    return buf.getvalue()


def joined(*parts: bytes) -> bytes:
    """One PDF with the pages of each, in order (PDFium)."""
    out = pdfium.PdfDocument.new()
    for raw in parts:
        out.import_pages(pdfium.PdfDocument(raw))
    buf = io.BytesIO()
    out.save(buf)
    return buf.getvalue()


def test_pictures_of_text_are_read_with_their_pages_and_headings(tmp_path: Path) -> None:
    doc = parse_pdf(scanned_pdf_bytes(), "scan.pdf", OcrOptions(cache_dir=tmp_path))
    assert doc.ocr_pages == {1, 2}
    assert [(b.kind, b.section, b.page, doc.text[b.start:b.end]) for b in doc.blocks] == [
        ("heading", "Tide report", 1, "Tide report"),
        ("text", "Tide report", 1, "The harbour office keeps the tide tables for every season of the year."),
        ("heading", "Storm damage", 2, "Storm damage"),
        ("text", "Storm damage", 2, "The storm of 12 January broke the outer pier lamp and flooded the fish market."),
        ("text", "Storm damage", 2, "Repairs cost 9,800 euros in total."),
    ]
    chunks, units = build_records(doc, 600)
    for record in chunks + units:
        assert doc.text[record.start:record.end] == record.text
        assert record.metadata["ocr"] is True and record.page == doc.page_of(record.start)


def test_each_page_is_read_once_then_taken_from_the_cache(tmp_path: Path) -> None:
    raw = scanned_pdf_bytes()
    parse_pdf(raw, "scan.pdf", OcrOptions(cache_dir=tmp_path))
    kept = sorted(tmp_path.glob("ocr/*/*.json"))
    assert [p.name.rsplit("-", 1)[1] for p in kept] == ["p0.json", "p1.json"]
    page = json.loads(kept[1].read_text())  # paragraphs > lines [size, words [text, left, top, width, height]]
    assert page[-1][0][1][2][0] == "9,800"
    page[-1][0][1][2][0] = "9,900"
    kept[1].write_text(json.dumps(page))
    again = parse_pdf(raw, "scan.pdf", OcrOptions(cache_dir=tmp_path))
    assert "Repairs cost 9,900 euros" in again.text  # what the cache holds: the page was not read again
    other = parse_pdf(raw, "scan.pdf", OcrOptions(cache_dir=tmp_path, dpi=200))  # another resolution: read
    assert "Repairs cost 9,800 euros" in other.text


def test_text_pages_are_not_ocrd_and_a_mixed_file_reads_only_its_scans() -> None:
    typed = text_pdf(["The harbour master's office opens at eight every weekday morning."])
    assert parse_pdf(typed, "typed.pdf").ocr_pages == frozenset()
    mixed = parse_pdf(joined(typed, scanned_pdf_bytes()), "mixed.pdf")
    assert mixed.ocr_pages == {2, 3}
    assert [b.page for b in mixed.blocks if "opens at eight" in mixed.text[b.start:b.end]] == [1]
    assert [b.page for b in mixed.blocks if "9,800" in mixed.text[b.start:b.end]] == [3]


def test_without_tesseract_a_scan_is_refused_with_how_to_install_it() -> None:
    with pytest.raises(IngestError) as info:
        parse_pdf(scanned_pdf_bytes(), "scan.pdf", MISSING)
    assert "need OCR" in info.value.message and "apt-get install tesseract-ocr" in info.value.message
    assert "\n" not in info.value.message


def test_without_tesseract_a_mostly_typed_file_is_read_without_its_scanned_page() -> None:
    typed = text_pdf(["The harbour master's office opens at eight every weekday morning."])
    more = text_pdf(["The fish market is open on Saturdays from six until noon."])
    warnings: list[str] = []
    doc = parse_pdf(joined(typed, more, scanned_pdf_bytes([["Storm damage", "Repairs cost 9,800 euros."]])),
                    "mixed.pdf", MISSING, warnings)
    assert doc.ocr_pages == frozenset() and "9,800" not in doc.text and "opens at eight" in doc.text
    assert len(warnings) == 1 and "1 of its 3 pages are pictures of text" in warnings[0]
    assert "tesseract-ocr" in warnings[0]


def test_a_language_tesseract_lacks_is_named() -> None:
    with pytest.raises(IngestError, match="OCR language 'qqq' is not installed.*tesseract-ocr-qqq"):
        parse_pdf(scanned_pdf_bytes(), "scan.pdf", OcrOptions(lang="qqq"))


def test_progress_counts_the_pages_read_and_the_cache_answers_at_once(tmp_path: Path) -> None:
    seen: list[tuple[str, int, int]] = []
    options = OcrOptions(cache_dir=tmp_path, progress=lambda *step: seen.append(step))
    raw = scanned_pdf_bytes()  # (Pillow writes the time into each PDF it makes)
    parse_pdf(raw, "scan.pdf", options)
    assert seen[0] == ("scan.pdf", 0, 2) and seen[-1] == ("scan.pdf", 2, 2)
    assert [done for _, done, _ in seen] == sorted(done for _, done, _ in seen)
    seen.clear()
    parse_pdf(raw, "scan.pdf", options)
    assert seen == [("scan.pdf", 2, 2)]  # both pages from the cache
