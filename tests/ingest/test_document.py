"""What a document is called (rag.ingest.document.Document.display_title), per format."""

from __future__ import annotations

import io

import pytest

from rag.ingest.loaders import parse_document, parse_string


def test_html_uses_its_title_element() -> None:
    doc = parse_string("<html><head><title> Ferry   timetable </title></head><body><h1>Summer</h1>"
                       "<p>The ferry leaves at six.</p></body></html>", "port/ferries.html")
    assert doc.display_title == "Ferry timetable"


def test_markdown_uses_its_first_heading_and_text_its_file_name() -> None:
    assert parse_string("Intro line.\n\n# Harbour rules\n\nNo swimming.", "docs/rules.md").display_title == \
        "Harbour rules"
    assert parse_string("No headings here. Just text.", "notes/today.txt").display_title == "today.txt"


def test_pdf_uses_its_metadata_title_else_its_first_heading() -> None:
    canvas_mod = pytest.importorskip("reportlab.pdfgen.canvas")

    def pdf(title: str | None) -> bytes:
        buf = io.BytesIO()
        c = canvas_mod.Canvas(buf)
        if title:
            c.setTitle(title)
        c.setFont("Helvetica-Bold", 18)
        c.drawString(72, 700, "Lighthouse Survey")
        c.setFont("Helvetica", 11)
        c.drawString(72, 660, "The Varnholm lighthouse was built in 1887 by the engineer Ada Lindqvist.")
        c.drawString(72, 646, "Its lamp can be seen from twenty nautical miles on a clear night.")
        c.showPage()
        c.save()
        return buf.getvalue()

    assert parse_document(pdf("Coastal Report 2024"), "r.pdf", []).display_title == "Coastal Report 2024"
    # reportlab's default title "untitled" is a placeholder: the first heading names the document
    assert parse_document(pdf(None), "reports/r.pdf", []).display_title == "Lighthouse Survey"
    assert parse_document(pdf("Microsoft Word - draft3.docx"), "r.pdf", []).display_title == "Lighthouse Survey"
