"""Evidence units and chunks with exact character offsets.

A parsed ``Document`` (``rag.ingest.document``) is cut into *units*: the sentences of its
prose blocks, each heading, each code block or table whole (cut at line ends only
past ``_MAX_SENTENCE``), and a definition term joined to the first unit after it
(so an API signature travels with its description). Chunks are runs of whole
units of about ``target_chars`` characters; a heading starts a new one.

Every ``Span`` and ``Chunk`` satisfies ``document.text[start:end] == text``.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

from rag.ingest.document import Block, Document
from rag.ingest.parsers.text import parse_text

# Words after which a period does not end a sentence.
_ABBREVIATIONS = {
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "vs", "etc", "inc", "ltd", "co", "corp", "dept",
    "gen", "col", "lt", "sgt", "capt", "gov", "sen", "rep", "no", "fig", "vol", "approx", "est",
    "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "e.g", "i.e",
    "u.s", "u.k", "u.n", "e.u", "a.m", "p.m", "cf", "al",
}
_BOUNDARY = re.compile(r"[.!?]+[\"'”’)\]]*(?=\s+)")
_MAX_SENTENCE = 1000


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    text: str
    kind: str = "text"  # the block kind it comes from: text, item, meta, code, table (term: joined)
    section: str = ""
    page: int | None = None


@dataclass(frozen=True)
class Chunk:
    id: str
    source: str
    index: int
    start: int
    end: int
    text: str
    sentences: tuple[Span, ...] = field(default_factory=tuple)
    section: str = ""
    page: int | None = None


_NEVER_FINAL = {"mr", "mrs", "ms", "dr", "prof", "sr", "st", "gen", "col", "lt", "sgt", "capt", "gov",
                "sen", "rep", "no", "fig", "vol", "vs", "cf", "e.g", "i.e", "approx"}
_SENTENCE_STARTERS = {"the", "this", "that", "these", "those", "it", "its", "he", "she", "they", "we", "i",
                      "in", "on", "at", "but", "and", "a", "an", "as", "if", "for", "so", "there", "then",
                      "however", "meanwhile", "also", "our", "his", "her", "their", "when", "while", "after"}


def _abbreviation_before(text: str, dot: int) -> str | None:
    """The abbreviation (lower case) that the period at ``dot`` closes, if any."""
    j = dot
    while j > 0 and (text[j - 1].isalnum() or text[j - 1] == "."):
        j -= 1
    word = text[j:dot].lower()
    if not word:
        return None
    if word in _ABBREVIATIONS or (len(word) == 1 and word.isalpha()) or re.fullmatch(r"(?:[a-z]\.)+[a-z]", word):
        return word
    return None


def _period_ends_sentence(text: str, dot: int, after: int) -> bool:
    word = _abbreviation_before(text, dot)
    if word is None:
        return True
    if word in _NEVER_FINAL or len(word) == 1:
        return False
    # "the U.S. Army" vs "in the U.S. The company": split only before a typical sentence opener
    m = re.match(r"\s+[\"'“‘(]*([A-Za-z]+)", text[after:])
    return bool(m) and m.group(1)[0].isupper() and m.group(1).lower() in _SENTENCE_STARTERS


def _next_starts_sentence(text: str, pos: int) -> bool:
    m = re.match(r"\s+([\"'“‘(\[]*)(\S)", text[pos:])
    if not m:
        return True
    ch = m.group(2)
    return ch.isupper() or ch.isdigit() or bool(m.group(1)) or not ch.isalpha()


def _split_long(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Cut a run longer than _MAX_SENTENCE at whitespace so every span stays citable."""
    out: list[tuple[int, int]] = []
    while end - start > _MAX_SENTENCE:
        cut = text.rfind(" ", start, start + _MAX_SENTENCE)
        if cut <= start:
            cut = start + _MAX_SENTENCE
        out.append((start, cut))
        start = cut
        while start < end and text[start].isspace():
            start += 1
    if start < end:
        out.append((start, end))
    return out


def split_sentences(text: str) -> list[Span]:
    """Split ``text`` into sentences with offsets (every line break splits)."""
    spans: list[Span] = []
    for para in re.finditer(r"[^\n]+", text):
        spans += prose_sentences(text, *para.span())
    return spans


def prose_sentences(text: str, start: int, end: int) -> list[Span]:
    """The sentences of ``text[start:end]``; line breaks inside are whitespace."""
    spans: list[Span] = []
    cursor = start
    for m in _BOUNDARY.finditer(text, start, end):
        stop = m.end()
        dot = m.start()
        if m.group().startswith(".") and len(m.group().rstrip("\"'”’)]")) == 1 \
                and not _period_ends_sentence(text, dot, stop):
            continue
        if not _next_starts_sentence(text, stop):
            continue
        spans += _trimmed(text, cursor, stop)
        cursor = stop
    spans += _trimmed(text, cursor, end)
    return spans


def _trimmed(text: str, start: int, end: int) -> list[Span]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if start >= end:
        return []
    return [Span(s, e, text[s:e]) for s, e in _split_long(text, start, end)]


def chunk_id(source: str, start: int, text: str) -> str:
    digest = hashlib.sha256(f"{source}\x00{start}\x00{text}".encode()).hexdigest()
    return digest[:24]


def _line_units(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """A code block or table whole, or cut at line ends into pieces of at most _MAX_SENTENCE."""
    out: list[tuple[int, int]] = []
    while end - start > _MAX_SENTENCE:
        cut = text.rfind("\n", start, start + _MAX_SENTENCE)
        if cut <= start:
            out += _split_long(text, start, start + _MAX_SENTENCE)
            cut = start + _MAX_SENTENCE
        else:
            out.append((start, cut))
        start = cut
        while start < end and text[start].isspace():
            start += 1
    if start < end:
        out.append((start, end))
    return [(s, e) for s, e in out if text[s:e].strip()]


def document_units(doc: Document) -> list[Span]:
    """The units of ``doc`` in order (headings as units of kind ``heading``)."""
    text = doc.text
    blocks = doc.blocks or parse_text(text, doc.source).blocks
    units: list[Span] = []
    term: Block | None = None

    def flush_term() -> None:
        nonlocal term
        if term is not None:
            units.extend(_spans(doc, [(term.start, term.end)], term))
            term = None

    for block in blocks:
        if block.kind == "heading":
            flush_term()
            units.append(Span(block.start, block.end, text[block.start:block.end], "heading",
                              block.section, block.page))
            continue
        if block.kind == "term":
            flush_term()  # two terms in a row: the first stands alone
            term = block
            continue
        if block.kind in ("code", "table"):
            pieces = _line_units(text, block.start, block.end)
        else:
            pieces = [(sp.start, sp.end) for sp in prose_sentences(text, block.start, block.end)]
        if term is not None and pieces and pieces[0][1] - term.start <= _MAX_SENTENCE:
            pieces[0] = (term.start, pieces[0][1])
            term = None
        flush_term()
        units += _spans(doc, pieces, block)
    flush_term()
    return units


_WORD = re.compile(r"\w")


def _spans(doc: Document, pieces: list[tuple[int, int]], block: Block) -> list[Span]:
    """The pieces as units; a piece with no letter or digit (a PDF contents page's
    dot leaders, a rule of dashes, a lone brace) says nothing and is no unit."""
    return [Span(s, e, doc.text[s:e], block.kind, block.section, doc.page_of(s) or block.page)
            for s, e in pieces if _WORD.search(doc.text, s, e)]


def chunk_document(doc: Document, target_chars: int = 600) -> list[Chunk]:
    """Pack whole units into chunks of about ``target_chars`` characters; a heading
    starts a new chunk (so a chunk never runs across a heading)."""
    text = doc.text
    chunks: list[Chunk] = []
    group: list[Span] = []

    def flush() -> None:
        if not group:
            return
        start, end = group[0].start, group[-1].end
        body = text[start:end]
        chunks.append(Chunk(id=chunk_id(doc.source, start, body), source=doc.source, index=len(chunks),
                            start=start, end=end, text=body, sentences=tuple(group),
                            section=group[-1].section, page=group[0].page))
        group.clear()

    for unit in document_units(doc):
        if unit.kind == "heading" and not all(u.kind == "heading" for u in group):
            flush()
        elif group and unit.end - group[0].start > target_chars:
            flush()
        group.append(unit)
    flush()
    return chunks


def chunk_text(source: str, text: str, target_chars: int = 600) -> list[Chunk]:
    """Chunks of plain text (``rag.ingest.parsers.text`` finds its paragraphs and headings)."""
    return chunk_document(parse_text(text, source), target_chars)
