"""EPUB -> ``Document``, through EbookLib and the HTML parser.

The chapters are the book's spine (its reading order); each chapter's XHTML goes
through ``rag.ingest.parsers.html`` and the chapters are joined in order,
separated by a blank line. A chapter's title is its entry in the table of
contents (else its own first heading): it starts the section path of everything
in the chapter ("Chapter 3 > The harbour"). The navigation document and chapters
without text are left out. An EPUB has no fixed pages: ``page`` stays None.
A book whose chapters are encrypted (DRM) is refused."""

from __future__ import annotations

import dataclasses
import io
import logging
import posixpath
import re
import warnings

from rag.errors import IngestError
from rag.ingest.document import Block, Document
from rag.ingest.parsers.container import damaged, open_container, read_member

log = logging.getLogger(__name__)

_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")


def _toc_titles(entries, out: dict[str, str]) -> dict[str, str]:  # noqa: ANN001 - EbookLib's toc
    """href (without fragment) -> title, the first entry naming each file."""
    for entry in entries:
        if isinstance(entry, tuple):  # (Section, children)
            head, children = entry[0], entry[1]
            _toc_titles([head], out)
            _toc_titles(children, out)
            continue
        href = (getattr(entry, "href", "") or "").split("#", 1)[0]
        title = " ".join((getattr(entry, "title", "") or "").split())
        if href and title:
            out.setdefault(posixpath.normpath(href), title)
    return out


def _under(chapter: str, section: str) -> str:
    """``section`` placed under the chapter's title (unless it starts with it)."""
    if not chapter or section == chapter or section.startswith(chapter + " > "):
        return section or chapter
    return f"{chapter} > {section}" if section else chapter


def parse_epub(data: bytes, source: str) -> Document:
    """Parse an EPUB; IngestError for a damaged, encrypted or unreadable one."""
    import ebooklib
    from ebooklib import epub

    from rag.ingest.parsers.html import parse_html

    with open_container(data, source, "EPUB", ("META-INF/container.xml",)) as zf:
        encryption = read_member(zf, "META-INF/encryption.xml") or b""
    if re.search(rb"URI=\"[^\"]+\.x?html?\"", encryption):
        raise IngestError(f"cannot read {source}: its chapters are encrypted (DRM); "
                          "only books without DRM can be read")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # EbookLib's notices about its own future defaults
            book = epub.read_epub(io.BytesIO(data), {"ignore_ncx": False})
    except Exception as exc:  # noqa: BLE001 - EbookLib fails in many ways on a damaged book: one line
        raise damaged(source, exc) from None
    titles = _toc_titles(book.toc, {})
    meta = book.get_metadata("DC", "title")
    book_title = " ".join(str(meta[0][0]).split()) if meta and meta[0] and meta[0][0] else ""
    parts: list[str] = []
    blocks: list[Block] = []
    pos = 0
    for idref, *_ in book.spine:
        item = book.get_item_with_id(idref)
        if item is None or item.get_type() != ebooklib.ITEM_DOCUMENT or isinstance(item, epub.EpubNav):
            continue
        html = _XML_DECLARATION.sub("", item.get_content().decode("utf-8", errors="replace"), count=1)
        chapter = parse_html(html, item.get_name())
        if not chapter.text.strip():
            continue
        name = titles.get(posixpath.normpath(item.get_name()), "")
        if not name:
            name = next((chapter.text[b.start:b.end] for b in chapter.blocks if b.kind == "heading"), "")
            name = " ".join(name.split())
        shift = pos + 2 * bool(parts)
        blocks += [dataclasses.replace(b, start=b.start + shift, end=b.end + shift,
                                       section=_under(name, b.section)) for b in chapter.blocks]
        parts.append(chapter.text)
        pos = shift + len(chapter.text)
    doc = Document(source, "\n\n".join(parts), tuple(blocks), title=book_title)
    log.debug("%s: %d chapters, %d blocks", source, len(parts), len(blocks))
    return doc
