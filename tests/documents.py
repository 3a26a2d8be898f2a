"""Real office files for the tests, made with the libraries that read them (or,
for a scan, with Pillow): a Word file, a slide deck, an EPUB and a PDF whose
pages are pictures of text."""

from __future__ import annotations

import io

MINUTES_FACTS = ("The committee approved a budget of 4,200 euros for the new pier lights.",
                 "Maria Okafor will order the lamps from the supplier in Bergen before March.")


def articles_docx(articles: list[tuple[str, list[str]]]) -> bytes:
    """A Word file: each (title, paragraphs) a "Heading 1" and its paragraphs."""
    from docx import Document

    doc = Document()
    for title, paragraphs in articles:
        doc.add_heading(title, level=1)
        for paragraph in paragraphs:
            doc.add_paragraph(paragraph)
    buf = io.BytesIO()
    doc.save(buf)
    return buf.getvalue()


def docx_bytes(title: str = "Harbour committee minutes") -> bytes:
    """A Word file with a title, headings, a bulleted list, a numbered list and a table."""
    from docx import Document

    doc = Document()
    doc.core_properties.title = title
    doc.add_heading("Harbour committee minutes", level=0)  # the "Title" style
    doc.add_heading("Decisions", level=1)
    doc.add_paragraph(" ".join(MINUTES_FACTS))
    doc.add_paragraph("The old lamps are recycled.", style="List Bullet")
    doc.add_paragraph("The ferry timetable stays as it is.", style="List Bullet")
    doc.add_heading("Open questions", level=2)
    doc.add_paragraph("Who repaints the slipway?", style="List Number")
    doc.add_heading("Mooring fees", level=1)
    table = doc.add_table(rows=3, cols=2)
    for row, (a, b) in zip(table.rows, [("Boat length", "Fee per night"), ("Under 8 m", "12 euros"),
                                        ("8 m and over", "20 euros")]):
        row.cells[0].text, row.cells[1].text = a, b
    buf = io.BytesIO()
    doc.save(buf)
    return buf.getvalue()


SLIDES = [
    ("Quarterly review", ["Ferry traffic grew in every month of the quarter."], None),
    ("Ferry passengers", ["The island ferry carried 48,000 passengers in the second quarter.",
                          "Most of them travelled on weekends."],
     "Mention that the count comes from the ticket machines."),
    ("Harbour works", ["The new breakwater will be finished in October 2027."],
     "The contractor is Nordvik Marine."),
]


def pptx_bytes(slides=SLIDES, title: str = "") -> bytes:  # noqa: ANN001 - (title, bullets, notes) per slide
    """A deck: a title slide, then title-and-content slides with speaker notes."""
    from pptx import Presentation

    deck = Presentation()
    if title:
        deck.core_properties.title = title
    for i, (head, bullets, notes) in enumerate(slides):
        slide = deck.slides.add_slide(deck.slide_layouts[0 if i == 0 else 1])
        slide.shapes.title.text = head
        body = slide.placeholders[1]
        body.text_frame.text = bullets[0]
        for line in bullets[1:]:
            body.text_frame.add_paragraph().text = line
        if notes:
            slide.notes_slide.notes_text_frame.text = notes
    buf = io.BytesIO()
    deck.save(buf)
    return buf.getvalue()


def pictures_only_pptx() -> bytes:
    """A deck whose one slide holds only a picture."""
    from PIL import Image
    from pptx import Presentation
    from pptx.util import Inches

    png = io.BytesIO()
    Image.new("RGB", (40, 30), "navy").save(png, "PNG")
    png.seek(0)
    deck = Presentation()
    slide = deck.slides.add_slide(deck.slide_layouts[6])  # blank
    slide.shapes.add_picture(png, Inches(1), Inches(1))
    buf = io.BytesIO()
    deck.save(buf)
    return buf.getvalue()


CHAPTERS = [
    ("The lighthouse", "<h1>The lighthouse</h1><p>The Varnholm lighthouse was built in 1887. "
                       "Its lamp can be seen from twenty nautical miles.</p>"),
    ("The keepers", "<h1>The keepers</h1><h2>Early years</h2><p>Ada Lindqvist kept the light for "
                    "thirty-one years.</p><ul><li>She logged every storm.</li><li>She trained two "
                    "assistants.</li></ul>"),
]


def epub_bytes(chapters=CHAPTERS, title: str = "A history of Varnholm") -> bytes:  # noqa: ANN001
    """An EPUB 3 with a table of contents and one XHTML file per chapter."""
    from ebooklib import epub

    book = epub.EpubBook()
    book.set_identifier("varnholm-history")
    book.set_title(title)
    book.set_language("en")
    items = []
    for i, (name, body) in enumerate(chapters, 1):
        item = epub.EpubHtml(title=name, file_name=f"chap_{i}.xhtml", lang="en")
        item.content = f"<html><body>{body}</body></html>"
        book.add_item(item)
        items.append(item)
    book.toc = items
    book.add_item(epub.EpubNcx())
    book.add_item(epub.EpubNav())
    book.spine = ["nav", *items]
    buf = io.BytesIO()
    epub.write_epub(buf, book)
    return buf.getvalue()


SCANNED_PAGES = [
    ["Tide report", "",
     "The harbour office keeps the tide tables for",
     "every season of the year."],
    ["Storm damage", "",
     "The storm of 12 January broke the outer",
     "pier lamp and flooded the fish market.",
     "", "Repairs cost 9,800 euros in total."],
]


def scanned_pdf_bytes(pages=SCANNED_PAGES, dpi: int = 150) -> bytes:  # noqa: ANN001 - lines per page
    """A PDF whose pages are only pictures (no text layer): each line drawn on a
    white A4 page; a page's first line is drawn larger, as a heading."""
    from PIL import Image, ImageDraw, ImageFont

    body, head = ImageFont.load_default(size=dpi * 14 // 72), ImageFont.load_default(size=dpi * 22 // 72)
    images = []
    for lines in pages:
        img = Image.new("L", (dpi * 827 // 100, dpi * 1169 // 100), 255)
        draw = ImageDraw.Draw(img)
        y = dpi
        for n, line in enumerate(lines):
            font = head if n == 0 else body
            draw.text((dpi, y), line, font=font, fill=0)
            y += int(font.size * 1.5)
        images.append(img)
    buf = io.BytesIO()
    images[0].save(buf, "PDF", resolution=dpi, save_all=True, append_images=images[1:])
    return buf.getvalue()
