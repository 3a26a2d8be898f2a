"""Sentence splitting and chunking with exact character offsets.

Every ``Span`` satisfies ``source_text[span.start:span.end] == span.text``: chunks
are runs of whole sentences, and sentences never straddle chunk boundaries.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

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


@dataclass(frozen=True)
class Chunk:
    id: str
    source: str
    index: int
    start: int
    end: int
    text: str
    sentences: tuple[Span, ...] = field(default_factory=tuple)


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
    """Split ``text`` into sentences with offsets (paragraph breaks always split)."""
    spans: list[Span] = []
    for para in re.finditer(r"[^\n]+", text):
        p_start, p_end = para.span()
        cursor = p_start
        for m in _BOUNDARY.finditer(text, p_start, p_end):
            end = m.end()
            dot = m.start()
            if m.group().startswith(".") and len(m.group().rstrip("\"'”’)]")) == 1 \
                    and not _period_ends_sentence(text, dot, end):
                continue
            if not _next_starts_sentence(text, end):
                continue
            spans += _trimmed(text, cursor, end)
            cursor = end
        spans += _trimmed(text, cursor, p_end)
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


def chunk_text(source: str, text: str, target_chars: int = 600) -> list[Chunk]:
    """Pack whole sentences into chunks of about ``target_chars`` characters."""
    sentences = split_sentences(text)
    chunks: list[Chunk] = []
    group: list[Span] = []

    def flush() -> None:
        if not group:
            return
        start, end = group[0].start, group[-1].end
        body = text[start:end]
        chunks.append(Chunk(id=chunk_id(source, start, body), source=source, index=len(chunks),
                            start=start, end=end, text=body, sentences=tuple(group)))
        group.clear()

    for sent in sentences:
        if group and sent.end - group[0].start > target_chars:
            flush()
        group.append(sent)
    flush()
    return chunks
