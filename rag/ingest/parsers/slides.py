"""PowerPoint (``.pptx``) -> ``Document``, through python-pptx.

Each slide is a page: its number is the ``page`` of every block on it. The
slide's title (its title placeholder) is a ``heading`` and the section of the
slide's text; a slide without one has no section. The other shapes are read
top to bottom, left to right (groups opened): paragraphs of a body or content
placeholder, and indented paragraphs anywhere, are list ``item`` blocks, other
text boxes ``text``, tables ``table`` (one line per row, cells joined by " | ").
The speaker notes are ``text`` of their slide. Date, footer and slide-number
placeholders, pictures and charts hold no text of the slide's own and are left out.
A deck whose slides hold only pictures is refused (there is no text to cite)."""

from __future__ import annotations

import io
import logging

from rag.errors import IngestError
from rag.ingest.document import Document
from rag.ingest.parsers.builder import BlockWriter, collapse
from rag.ingest.parsers.container import damaged, office_title, open_container

log = logging.getLogger(__name__)


def _kinds():  # noqa: ANN202 - python-pptx's enums, imported on first use
    from pptx.enum.shapes import MSO_SHAPE_TYPE, PP_PLACEHOLDER

    titles = {PP_PLACEHOLDER.TITLE, PP_PLACEHOLDER.CENTER_TITLE, PP_PLACEHOLDER.VERTICAL_TITLE}
    chrome = {PP_PLACEHOLDER.DATE, PP_PLACEHOLDER.FOOTER, PP_PLACEHOLDER.SLIDE_NUMBER, PP_PLACEHOLDER.HEADER}
    bullets = {PP_PLACEHOLDER.BODY, PP_PLACEHOLDER.OBJECT, PP_PLACEHOLDER.VERTICAL_BODY,
               PP_PLACEHOLDER.VERTICAL_OBJECT}
    return MSO_SHAPE_TYPE, titles, chrome, bullets


def _placeholder(shape) -> object | None:  # noqa: ANN001 - a python-pptx shape
    if not shape.is_placeholder:
        return None
    try:
        return shape.placeholder_format.type
    except ValueError:
        return None


def _ordered(shapes) -> list:  # noqa: ANN001 - python-pptx shapes
    """Top to bottom, then left to right; groups opened in place."""
    group = _kinds()[0].GROUP
    out = []
    for shape in sorted(shapes, key=lambda s: (s.top or 0, s.left or 0)):
        if shape.shape_type == group:
            out += _ordered(shape.shapes)
        else:
            out.append(shape)
    return out


def _paragraph_text(paragraph) -> str:  # noqa: ANN001
    return collapse(paragraph.text.replace("\v", " "))


def _write_shape(writer: BlockWriter, shape, bullets_here: bool) -> None:  # noqa: ANN001
    if getattr(shape, "has_table", False) and shape.has_table:
        rows = [" | ".join(collapse(cell.text) for cell in row.cells) for row in shape.table.rows]
        writer.emit("\n".join(r for r in rows if r.strip(" |")), "table")
    elif getattr(shape, "has_text_frame", False) and shape.has_text_frame:
        for paragraph in shape.text_frame.paragraphs:
            kind = "item" if bullets_here or paragraph.level > 0 else "text"
            writer.emit(_paragraph_text(paragraph), kind)


def parse_pptx(data: bytes, source: str) -> Document:
    """Parse a PowerPoint file; IngestError for a damaged, encrypted or
    unreadable one, or one whose slides hold no text."""
    from pptx import Presentation

    with open_container(data, source, "PowerPoint", ("[Content_Types].xml", "ppt/presentation.xml")) as zf:
        title = office_title(zf)
    try:
        deck = Presentation(io.BytesIO(data))
        slides = list(deck.slides)
    except Exception as exc:  # noqa: BLE001 - python-pptx fails in many ways on a damaged part: one line
        raise damaged(source, exc) from None
    shape_types, titles, chrome, bullets = _kinds()
    writer = BlockWriter()
    pictures = 0
    for number, slide in enumerate(slides, 1):
        writer.page = number
        writer.headings = []
        shapes = _ordered(slide.shapes)
        heads = [s for s in shapes if _placeholder(s) in titles and s.has_text_frame]
        if heads:
            writer.heading(1, heads[0].text_frame.text.replace("\v", " "))
        for shape in shapes:
            kind = _placeholder(shape)
            if shape in heads[:1] or kind in chrome:
                continue
            pictures += shape.shape_type == shape_types.PICTURE
            _write_shape(writer, shape, kind in bullets)
        if slide.has_notes_slide and slide.notes_slide.notes_text_frame is not None:
            for paragraph in slide.notes_slide.notes_text_frame.paragraphs:
                writer.emit(_paragraph_text(paragraph), "text")
    doc = writer.document(source, pages=len(slides), title=title)
    if slides and not doc.text.strip() and pictures:
        raise IngestError(f"cannot read {source}: its slides hold only pictures, no text to cite "
                          f"(text in pictures is not read)")
    log.debug("%s: %d slides, %d blocks", source, len(slides), len(doc.blocks))
    return doc
