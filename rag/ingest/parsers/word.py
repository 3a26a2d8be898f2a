"""Word (``.docx``) -> ``Document``, through mammoth and the HTML parser.

mammoth reads the document's paragraphs, runs, lists, tables, footnotes and
endnotes and writes them as semantic HTML by their styles: "Heading 1"-"Heading 6"
(and "Title") become ``<h1>``-``<h6>``, numbered and bulleted paragraphs ``<ol>``/
``<ul>`` items, tables ``<table>``. ``rag.ingest.parsers.html`` then gives the same
blocks and heading paths as for a web page (list items ``item``, tables ``table``).
Images are left out (no text). A Word file has no fixed pages: ``page`` stays None.
The title is the file's own (``docProps/core.xml``), else its first heading."""

from __future__ import annotations

import dataclasses
import io
import logging

from rag.ingest.document import Document
from rag.ingest.parsers.container import damaged, office_title, open_container

log = logging.getLogger(__name__)

# what mammoth's default style map leaves as plain paragraphs but is a heading
_STYLE_MAP = """
p[style-name='Title'] => h1:fresh
p[style-name='Subtitle'] => p:fresh
"""
def parse_docx(data: bytes, source: str) -> Document:
    """Parse a Word file; IngestError for a damaged, encrypted or unreadable one."""
    import mammoth

    from rag.ingest.parsers.html import parse_html

    with open_container(data, source, "Word", ("[Content_Types].xml", "word/document.xml")) as zf:
        title = office_title(zf)
    try:
        result = mammoth.convert_to_html(io.BytesIO(data), style_map=_STYLE_MAP,
                                         convert_image=mammoth.images.img_element(lambda image: {}))
    except Exception as exc:  # noqa: BLE001 - mammoth fails in many ways on a damaged part: one line
        raise damaged(source, exc) from None
    for message in result.messages:
        log.debug("%s: %s", source, message.message)
    doc = parse_html(f"<html><body>{result.value}</body></html>", source)
    return dataclasses.replace(doc, title=title)
