"""What the structured parsers (HTML, Markdown, slides) share: a writer that
appends blocks to the extracted text, keeping offsets, the heading path and,
for formats with pages (slides), the page each block is on."""

from __future__ import annotations

import re

from rag.ingest.document import Block, Document

_WS = re.compile(r"\s+")  # also matches non-breaking spaces (str patterns are Unicode-aware)


def collapse(text: str) -> str:
    """All whitespace runs to one space, ends stripped."""
    return _WS.sub(" ", text).strip()


class BlockWriter:
    """Builds ``Document.text`` block by block: blocks are separated by a blank
    line, a code block keeps the indentation of its first line, and every block
    records its kind, the heading path in force and ``page`` (set by the caller;
    None for formats without pages)."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.pos = 0
        self.blocks: list[Block] = []
        self.headings: list[tuple[int, str]] = []  # (level, title), outermost first
        self.page: int | None = None

    def section(self) -> str:
        return " > ".join(h for _, h in self.headings)

    def emit(self, text: str, kind: str, section: str | None = None) -> None:
        stripped = text.strip()
        if not stripped:
            return
        lead = text[: len(text) - len(text.lstrip())].rsplit("\n", 1)[-1]
        sep = ("\n\n" if self.parts else "") + (lead if kind == "code" else "")
        start = self.pos + len(sep)
        self.parts += [sep, stripped]
        self.pos = start + len(stripped)
        self.blocks.append(Block(start, self.pos, kind, self.section() if section is None else section, self.page))

    def heading(self, level: int, text: str) -> None:
        """A heading block; it replaces the headings of its level and deeper in the path."""
        title = collapse(text)
        if title:
            self.headings = [h for h in self.headings if h[0] < level] + [(level, title)]
            self.emit(title, "heading")

    def document(self, source: str, pages: int = 0, title: str = "") -> Document:
        """The document written; with ``pages``, its ``page_starts`` (a page
        without text starts where the next one does)."""
        starts: list[int] = []
        if pages:
            firsts: dict[int, int] = {}
            for block in self.blocks:
                if block.page is not None:
                    firsts.setdefault(block.page, block.start)
            nxt = self.pos
            starts = [0] * pages
            for page in range(pages, 1, -1):
                nxt = starts[page - 1] = firsts.get(page, nxt)
        return Document(source=source, text="".join(self.parts), blocks=tuple(self.blocks),
                        page_starts=tuple(starts), title=title)
