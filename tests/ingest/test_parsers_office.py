"""Word, PowerPoint and EPUB files (made with python-docx, python-pptx and EbookLib):
structure, sections, slides as pages, citations that are verbatim, bad files refused."""

from __future__ import annotations

import io
import zipfile

import pytest

from rag.errors import IngestError
from rag.ingest.chunking import chunk_document
from rag.ingest.document import Document
from rag.ingest.ingestor import build_records
from rag.ingest.parsers.container import OLE_MAGIC
from rag.ingest.parsers.ebook import parse_epub
from rag.ingest.parsers.slides import parse_pptx
from rag.ingest.parsers.word import parse_docx
from tests.documents import (MINUTES_FACTS, SLIDES, docx_bytes, epub_bytes, pictures_only_pptx, pptx_bytes)


def blocks(doc: Document) -> list[tuple[str, str, int | None, str]]:
    return [(b.kind, b.section, b.page, doc.text[b.start:b.end]) for b in doc.blocks]


def without(raw: bytes, part: str) -> bytes:
    """The same zip without one part."""
    src, out = zipfile.ZipFile(io.BytesIO(raw)), io.BytesIO()
    with zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            if info.filename != part:
                dst.writestr(info, src.read(info))
    return out.getvalue()


def verbatim(doc: Document) -> None:
    """Every chunk and unit record is the document's text at its offsets, with the
    block's section and page."""
    chunks, units = build_records(doc, 600)
    assert chunks and units
    for record in chunks + units:
        assert doc.text[record.start:record.end] == record.text
    pages = {b.page for b in doc.blocks}
    assert {r.page for r in units} <= pages


def test_word_headings_lists_and_tables_are_kept_as_structure() -> None:
    doc = parse_docx(docx_bytes(), "minutes.docx")
    assert doc.title == doc.display_title == "Harbour committee minutes"
    assert blocks(doc) == [
        ("heading", "Harbour committee minutes", None, "Harbour committee minutes"),
        ("heading", "Decisions", None, "Decisions"),
        ("text", "Decisions", None, " ".join(MINUTES_FACTS)),
        ("item", "Decisions", None, "The old lamps are recycled."),
        ("item", "Decisions", None, "The ferry timetable stays as it is."),
        ("heading", "Decisions > Open questions", None, "Open questions"),
        ("item", "Decisions > Open questions", None, "Who repaints the slipway?"),
        ("heading", "Mooring fees", None, "Mooring fees"),
        ("table", "Mooring fees", None, "Boat length | Fee per night\nUnder 8 m | 12 euros\n8 m and over | 20 euros"),
    ]
    verbatim(doc)
    units = [u for chunk in chunk_document(doc) for u in chunk.sentences]
    assert [(u.text, u.section) for u in units if u.kind == "text"] == [(f, "Decisions") for f in MINUTES_FACTS]


def test_each_slide_is_a_page_under_its_title_with_its_notes() -> None:
    doc = parse_pptx(pptx_bytes(title="Q2 review"), "review.pptx")
    assert doc.title == "Q2 review"
    assert blocks(doc) == [
        ("heading", "Quarterly review", 1, "Quarterly review"),
        ("text", "Quarterly review", 1, SLIDES[0][1][0]),  # the title slide's subtitle
        ("heading", "Ferry passengers", 2, "Ferry passengers"),
        ("item", "Ferry passengers", 2, SLIDES[1][1][0]),
        ("item", "Ferry passengers", 2, SLIDES[1][1][1]),
        ("text", "Ferry passengers", 2, SLIDES[1][2]),  # speaker notes
        ("heading", "Harbour works", 3, "Harbour works"),
        ("item", "Harbour works", 3, SLIDES[2][1][0]),
        ("text", "Harbour works", 3, SLIDES[2][2]),
    ]
    assert all(doc.page_of(b.start) == b.page for b in doc.blocks)
    verbatim(doc)


def test_a_slide_without_text_starts_where_the_next_one_does() -> None:
    doc = parse_pptx(pptx_bytes([("Start", ["One line."], None), ("", [""], None), ("End", ["Last."], None)]),
                     "gap.pptx")
    third = next(b for b in doc.blocks if b.page == 3)
    assert doc.page_starts[1] == doc.page_starts[2] == third.start
    assert doc.page_of(third.start) == 3


def test_epub_chapters_in_reading_order_under_their_titles() -> None:
    doc = parse_epub(epub_bytes(), "varnholm.epub")
    assert doc.title == "A history of Varnholm"
    assert blocks(doc) == [
        ("heading", "The lighthouse", None, "The lighthouse"),
        ("text", "The lighthouse", None, "The Varnholm lighthouse was built in 1887. "
                                         "Its lamp can be seen from twenty nautical miles."),
        ("heading", "The keepers", None, "The keepers"),
        ("heading", "The keepers > Early years", None, "Early years"),
        ("text", "The keepers > Early years", None, "Ada Lindqvist kept the light for thirty-one years."),
        ("item", "The keepers > Early years", None, "She logged every storm."),
        ("item", "The keepers > Early years", None, "She trained two assistants."),
    ]  # the navigation document (first in the spine) is left out
    verbatim(doc)


def test_a_chapter_without_its_own_heading_takes_its_title_from_the_table_of_contents() -> None:
    doc = parse_epub(epub_bytes([("Prologue", "<p>The sea was calm that night.</p>")]), "b.epub")
    assert blocks(doc) == [("text", "Prologue", None, "The sea was calm that night.")]


ENCRYPTED = OLE_MAGIC + bytes(1024)


@pytest.mark.parametrize("parse, raw, words", [
    (parse_docx, docx_bytes()[:3000], "damaged (not a complete Word file"),
    (parse_docx, without(docx_bytes(), "word/document.xml"), "word/document.xml is missing"),
    (parse_docx, ENCRYPTED, "password-protected"),
    (parse_docx, b"just some text", "damaged"),
    (parse_pptx, pptx_bytes()[:-200], "damaged (not a complete PowerPoint file"),
    (parse_pptx, without(pptx_bytes(), "ppt/slides/slide2.xml"), "damaged"),
    (parse_pptx, ENCRYPTED, "password-protected"),
    (parse_pptx, pictures_only_pptx(), "only pictures"),
    (parse_epub, epub_bytes()[:600], "damaged (not a complete EPUB file"),
    (parse_epub, without(epub_bytes(), "EPUB/chap_1.xhtml"), "damaged"),
], ids=["docx-truncated", "docx-no-body", "docx-encrypted", "docx-not-zip", "pptx-truncated", "pptx-no-slide",
        "pptx-encrypted", "pptx-pictures", "epub-truncated", "epub-no-chapter"])
def test_bad_files_are_refused_with_one_line(parse, raw: bytes, words: str) -> None:  # noqa: ANN001
    with pytest.raises(IngestError) as info:
        parse(raw, "x/file")
    message = info.value.message
    assert message.startswith("cannot read x/file: ") and words in message and "\n" not in message, message


def test_a_drm_protected_epub_is_refused() -> None:
    raw, out = epub_bytes(), io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(raw)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            dst.writestr(info, src.read(info))
        dst.writestr("META-INF/encryption.xml", '<encryption xmlns="urn:oasis:names:tc:opendocument:xmlns:container">'
                     '<EncryptedData><CipherData><CipherReference URI="EPUB/chap_1.xhtml"/></CipherData>'
                     '</EncryptedData></encryption>')
    with pytest.raises(IngestError, match="encrypted \\(DRM\\)"):
        parse_epub(out.getvalue(), "locked.epub")


def test_a_zip_bomb_is_refused_before_it_is_unpacked(monkeypatch: pytest.MonkeyPatch) -> None:
    import rag.ingest.parsers.container as container

    monkeypatch.setattr(container, "MAX_UNPACKED", 1000)  # the real limit is 1 GiB: too slow to build here
    with pytest.raises(IngestError, match="would unpack to more than"):
        parse_docx(docx_bytes(), "big.docx")


def test_a_slide_table_and_grouped_text_boxes_are_read_in_place() -> None:
    """A table (a row a line, cells joined by " | ") and two text boxes in a group,
    read top to bottom; the slide-number placeholder is left out."""
    from pptx import Presentation
    from pptx.util import Inches

    deck = Presentation()
    slide = deck.slides.add_slide(deck.slide_layouts[5])  # title only
    slide.shapes.title.text = "Fees"
    rows = [("Boat", "Fee"), ("Under 8 m", "12 euros")]
    table = slide.shapes.add_table(2, 2, Inches(1), Inches(4), Inches(6), Inches(1)).table
    for r, row in enumerate(rows):
        for c, text in enumerate(row):
            table.cell(r, c).text = text
    group = slide.shapes.add_group_shape()
    group.shapes.add_textbox(Inches(1), Inches(2.5), Inches(6), Inches(0.5)).text_frame.text = "Paid at the office."
    group.shapes.add_textbox(Inches(1), Inches(1.5), Inches(6), Inches(0.5)).text_frame.text = "Fees per night."
    buf = io.BytesIO()
    deck.save(buf)
    doc = parse_pptx(buf.getvalue(), "fees.pptx")
    assert blocks(doc) == [("heading", "Fees", 1, "Fees"), ("text", "Fees", 1, "Fees per night."),
                           ("text", "Fees", 1, "Paid at the office."),
                           ("table", "Fees", 1, "Boat | Fee\nUnder 8 m | 12 euros")]
    verbatim(doc)
