"""The parsed document: its text plus the structure a parser found in it.

A parser (``rag.ingest.parsers``) turns a file into a ``Document``: ``text`` is what every
chunk, sentence and citation offset refers to (``text[start:end] == span``), and
``blocks`` say what each stretch of it is. Blocks are in order, do not overlap,
and lie inside ``text``; text between blocks (separators) belongs to none.

Block kinds:

* ``heading``: a heading line (never evidence; it names the section of what follows);
* ``text``: prose; line breaks inside it are soft (not sentence ends);
* ``term``: a definition-list term, e.g. an API signature; it is kept with the
  first sentence of the block that follows it;
* ``item``: one list item (prose);
* ``code``: a code block, kept whole (cut at line ends only when too long);
* ``table``: a table, kept whole (cut at row ends only when too long);
* ``meta``: metadata shown with the text (e.g. "Added in: v20.17.0"), prose.

A document with no blocks is plain prose: blank lines separate paragraphs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rag.errors import InvalidSourceError

BLOCK_KINDS = frozenset({"heading", "text", "term", "item", "code", "table", "meta"})
PROSE_KINDS = frozenset({"text", "item", "meta"})


@dataclass(frozen=True)
class Block:
    start: int
    end: int
    kind: str
    section: str = ""  # heading path, outermost first: "functools > functools.lru_cache"
    page: int | None = None  # 1-based page (PDF) or slide (PPTX), None where the format has no pages


@dataclass(frozen=True)
class Document:
    source: str
    text: str
    blocks: tuple[Block, ...] = field(default=(), compare=False)
    # page_starts[i] = offset in text where page i + 1 begins (PDF pages, PPTX slides)
    page_starts: tuple[int, ...] = field(default=(), compare=False)
    title: str = field(default="", compare=False)  # the format's own title: HTML <title>, PDF metadata
    ocr_pages: frozenset[int] = field(default=frozenset(), compare=False)  # 1-based pages read by OCR

    @property
    def display_title(self) -> str:
        """What people call the document: its own title, else its first heading,
        else the file name."""
        if self.title.strip():
            return " ".join(self.title.split())
        for block in self.blocks:
            if block.kind == "heading":
                return " ".join(self.text[block.start:block.end].split())
        return self.source.rsplit("/", 1)[-1]

    def page_of(self, offset: int) -> int | None:
        """The 1-based page holding ``offset`` (None without pages)."""
        if not self.page_starts:
            return None
        lo, hi = 0, len(self.page_starts) - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.page_starts[mid] <= offset:
                lo = mid
            else:
                hi = mid - 1
        return lo + 1


def validate_source(source: str) -> str:
    """Sources are names, never paths that could escape: no '..', no absolute
    paths, no backslashes, no control characters."""
    if not source or len(source) > 512:
        raise InvalidSourceError("document source must be 1 to 512 characters")
    if any(ord(c) < 32 for c in source) or "\\" in source:
        raise InvalidSourceError(f"invalid document source {source!r}: control characters or backslashes")
    parts = source.split("/")
    if source.startswith("/") or any(p in ("", ".", "..") for p in parts) or ":" in parts[0]:
        raise InvalidSourceError(f"invalid document source {source!r}: must be a relative name without '..'")
    return source
