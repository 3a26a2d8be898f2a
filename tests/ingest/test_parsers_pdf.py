"""The layout-aware PDF parser: pages, paragraphs, hyphenation, headers, headings, code."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from rag.ingest.document import Document
from rag.errors import IngestError
from rag.ingest.parsers.pdf import parse_pdf

canvas_mod = pytest.importorskip("reportlab.pdfgen.canvas")

HEADER = "ACME Harbour Report - Confidential"
LEFT, BODY, LEAD = 72, 11, 13.5  # left margin, body font size, line spacing


class Page:
    """Writes lines top-down on a reportlab canvas page."""

    def __init__(self, c, number: int) -> None:
        self.c, self.y = c, 700.0
        c.setFont("Helvetica", 9)
        c.drawString(LEFT, 760, HEADER)  # running header
        c.drawCentredString(306, 40, str(number))  # bare page number

    def heading(self, text: str, size: float = 16) -> None:
        self.y -= size
        self.c.setFont("Helvetica-Bold", size)
        self.c.drawString(LEFT, self.y, text)
        self.y -= 0.6 * size

    def para(self, *lines: str, x: float = LEFT, font: str = "Helvetica", gap: bool = True) -> None:
        self.c.setFont(font, BODY)
        for line in lines:
            indent = len(line) - len(line.lstrip(" "))
            self.c.drawString(x + indent * 0.6 * BODY, self.y, line.lstrip(" "))
            self.y -= LEAD
        if gap:
            self.y -= 8


def build(pages) -> bytes:
    buf = io.BytesIO()
    c = canvas_mod.Canvas(buf, pagesize=(612, 792))
    for number, fill in enumerate(pages, 1):
        fill(Page(c, number))
        c.showPage()
    c.save()
    return buf.getvalue()


def page_one(p: Page) -> None:
    p.heading("1 Introduction")
    p.para("The harbour opened in 1852 and, after a long quarrel over the docu-",
           "ment that granted its charter, it grew quickly. The harbour opened in",
           "1852 and serves ferries to the islands every day of the year.")
    p.para("A second paragraph starts after a gap. It mentions the Anglo-",
           "saxon settlement and an x86-",
           "based ticket machine.")
    p.para("Ticket-free travel is rare: the ticket-",
           "free days are in May, and every ticket is checked on board.")
    p.para("def fares(zone):", "    if zone > 2:", "        return 5", "    return 3", font="Courier")


def page_two(p: Page) -> None:
    p.heading("1.1 The lighthouse", size=13)
    p.para("The lighthouse was rebuilt in 1907 after a storm.")
    p.para("• Ferries leave every hour.", gap=False)
    p.para("• Cargo ships dock at the north pier.")
    p.para("This paragraph runs past the end of the page, and the ferry")


def page_three(p: Page) -> None:
    p.para("company kept its timetable unchanged for forty years.")
    p.heading("2 Trade")
    p.para("Fish and timber were the main exports.")


@pytest.fixture(scope="module")
def doc() -> Document:
    return parse_pdf(build([page_one, page_two, page_three]), "harbour.pdf")


def block_of(doc: Document, needle: str):
    at = doc.text.index(needle)
    return next(b for b in doc.blocks if b.start <= at < b.end)


def test_page_numbers_and_offsets_agree(doc: Document) -> None:
    assert len(doc.page_starts) == 3
    assert doc.page_starts[0] == 0
    assert list(doc.page_starts) == sorted(set(doc.page_starts))  # strictly increasing
    assert doc.page_of(doc.text.index("The lighthouse was rebuilt in 1907")) == 2
    assert doc.page_of(doc.text.index("Fish and timber")) == 3
    assert doc.page_of(doc.text.index("The harbour opened")) == 1
    for block in doc.blocks:
        assert block.page == doc.page_of(block.start)


def test_blocks_are_ordered_non_empty_and_separated(doc: Document) -> None:
    assert doc.blocks
    for block in doc.blocks:
        assert doc.text[block.start:block.end].strip()
        assert doc.text[block.start:block.end] == doc.text[block.start:block.end].strip()
    for a, b in zip(doc.blocks, doc.blocks[1:]):
        assert doc.text[a.end:b.start] == "\n\n"
    assert doc.blocks[0].start == 0 and doc.blocks[-1].end == len(doc.text)


def test_hyphenated_words_are_rejoined_by_the_documented_rule(doc: Document) -> None:
    assert "the document that granted" in doc.text
    assert "docu-" not in doc.text
    assert "Anglo-saxon settlement" in doc.text  # capitalised first part: the hyphen stays
    assert "x86-based ticket machine" in doc.text  # a digit in the first part: the hyphen stays
    assert "the ticket-free days" in doc.text  # the document writes "ticket-free" elsewhere


def test_a_line_break_inside_a_sentence_does_not_split_it(doc: Document) -> None:
    sentence = "The harbour opened in 1852 and serves ferries to the islands every day of the year."
    assert sentence in doc.text
    block = block_of(doc, sentence)
    assert block.kind == "text"
    assert "\n" not in doc.text[block.start:block.end]
    assert block_of(doc, "A second paragraph") is not block  # the gap makes a new paragraph


def test_running_header_and_page_numbers_are_dropped(doc: Document) -> None:
    assert "ACME" not in doc.text and "Confidential" not in doc.text
    assert all(doc.text[b.start:b.end] not in {"1", "2", "3"} for b in doc.blocks)


def test_headings_build_the_section_path(doc: Document) -> None:
    headings = [(doc.text[b.start:b.end], b.section) for b in doc.blocks if b.kind == "heading"]
    assert headings == [("1 Introduction", "1 Introduction"),
                        ("1.1 The lighthouse", "1 Introduction > 1.1 The lighthouse"),
                        ("2 Trade", "2 Trade")]
    assert block_of(doc, "The lighthouse was rebuilt").section == "1 Introduction > 1.1 The lighthouse"
    assert block_of(doc, "Fish and timber").section == "2 Trade"


def test_monospaced_lines_are_a_code_block_with_breaks_and_indentation(doc: Document) -> None:
    block = block_of(doc, "def fares")
    assert block.kind == "code"
    assert doc.text[block.start:block.end] == "def fares(zone):\n    if zone > 2:\n        return 5\n    return 3"


def test_bullets_are_items(doc: Document) -> None:
    assert block_of(doc, "Ferries leave").kind == "item"
    assert block_of(doc, "Cargo ships").kind == "item"
    assert block_of(doc, "Ferries leave") is not block_of(doc, "Cargo ships")


def test_a_paragraph_continued_on_the_next_page_is_one_block(doc: Document) -> None:
    sentence = "the ferry company kept its timetable unchanged for forty years."
    assert sentence in doc.text
    block = block_of(doc, sentence)
    assert block.page == 2
    assert doc.page_of(doc.text.index("company kept")) == 3
    assert doc.page_starts[2] == doc.text.index("company kept")


def test_a_new_paragraph_on_the_next_page_is_a_new_block() -> None:
    def first(p: Page) -> None:
        p.para("The first page ends with a whole sentence.")

    def second(p: Page) -> None:
        p.para("The second page starts a new paragraph.")

    doc = parse_pdf(build([first, second]), "two.pdf")
    assert [(doc.text[b.start:b.end], b.page) for b in doc.blocks] == [
        ("The first page ends with a whole sentence.", 1), ("The second page starts a new paragraph.", 2)]


def test_a_pdf_without_text_gives_an_empty_document() -> None:
    buf = io.BytesIO()
    c = canvas_mod.Canvas(buf)
    c.rect(72, 72, 200, 200)  # a drawing, no text
    c.showPage()
    c.save()
    doc = parse_pdf(buf.getvalue(), "blank.pdf")
    assert doc.text == "" and doc.blocks == () and doc.page_starts == (0,)


@pytest.mark.parametrize("data", [b"", b"not a pdf at all", b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog"])
def test_a_corrupt_pdf_raises_ingest_error(data: bytes) -> None:
    with pytest.raises(IngestError) as info:
        parse_pdf(data, "broken.pdf")
    assert "broken.pdf" in info.value.message and "\n" not in info.value.message


def test_an_encrypted_pdf_raises_ingest_error() -> None:
    buf = io.BytesIO()
    c = canvas_mod.Canvas(buf, encrypt="secret")
    c.drawString(72, 700, "Hidden text.")
    c.showPage()
    c.save()
    with pytest.raises(IngestError, match="encrypted"):
        parse_pdf(buf.getvalue(), "locked.pdf")


USRGUIDE = Path(__file__).resolve().parents[2] / "eval" / "corpora" / "latex-usrguide" / "usrguide.pdf"


@pytest.mark.skipif(not USRGUIDE.exists(), reason="the latex-usrguide corpus is not checked out")
def test_the_latex_guide_keeps_its_facts_on_their_pages() -> None:
    doc = parse_pdf(USRGUIDE.read_bytes(), "usrguide.pdf")
    assert len(doc.page_starts) == 21
    for fact, page in [("-NoValue-", 3), ("\\BooleanTrue", 3), ("478", 20), ("right to left", 10),
                       ("\\DeclareCaseChangeEquivalent", 21), ("released in 1994", 2)]:
        assert doc.page_of(doc.text.index(fact)) == page, fact
    assert "widely-usable concepts" in doc.text and "appli- cation" not in doc.text
    code = next(b for b in doc.blocks if doc.text[b.start:b.end].startswith("\\NewDocumentCommand\\foo{sm}"))
    assert code.kind == "code" and "\n    \\IfBooleanTF {#1}%\n" in doc.text[code.start:code.end]
    assert not any(doc.text[b.start:b.end].isdigit() for b in doc.blocks)  # page numbers dropped
    for block in doc.blocks:
        assert block.page == doc.page_of(block.start)


def test_an_indented_first_line_starts_a_new_paragraph() -> None:
    def page(p: Page) -> None:
        p.para("    The first paragraph is indented like a book and runs on over",
               "a second line that is about as long as the first one is, and",
               "a third line too, all at the same spacing as every other line.",
               "    The second paragraph starts with an indent of its own here.", gap=False)

    doc = parse_pdf(build([page]), "book.pdf")  # (one page: its header is not a running one)
    texts = [doc.text[b.start:b.end] for b in doc.blocks]
    assert texts[-2].startswith("The first paragraph") and texts[-2].endswith("as every other line.")
    assert texts[-1] == "The second paragraph starts with an indent of its own here."


def test_numbered_headings_atop_the_pages_of_a_short_pdf_are_kept() -> None:
    """Headings "1 ..." atop page 1 and "2 ..." atop page 2 look like folios (number
    minus page index constant); set like headings, they are not dropped as such."""
    buf = io.BytesIO()
    c = canvas_mod.Canvas(buf, pagesize=(612, 792))
    for number, (title, body) in enumerate([("Introduction", "The harbour opened in 1852 and grew quickly."),
                                            ("Methods", "Ferries were counted every day of the year.")], 1):
        c.setFont("Helvetica-Bold", 16)
        c.drawString(LEFT, 750, f"{number} {title}")
        c.setFont("Helvetica", BODY)
        c.drawString(LEFT, 720, body)
        c.showPage()
    c.save()
    doc = parse_pdf(buf.getvalue(), "short.pdf")
    assert "1 Introduction" in doc.text and "2 Methods" in doc.text
    assert block_of(doc, "Ferries were counted").section == "2 Methods"
