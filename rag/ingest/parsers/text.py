"""Plain text: paragraphs, hard-wrapped lines and stand-alone heading lines.

The text is kept exactly as read (offsets are offsets into the file). What the
parser decides is where blocks begin and end:

* a blank line always ends a block;
* inside a paragraph, a line break is *soft* (a wrapped line: the sentence goes
  on) when the document is hard-wrapped and the line is nearly full, and *hard*
  otherwise (a new block) — also before a line that starts a list item;
* a stand-alone short line without closing punctuation (or a numbered title such
  as "3. Conveying Verbatim Copies.") is a heading: it names the section of the
  blocks after it; a paragraph that opens with its own numbered title ("3. Grant
  of Patent License. Subject to …") starts a section of that name.

"Hard-wrapped" means that nearly all lines are at most ``WRAP_MAX_WIDTH``
characters; "nearly full" means at least ``FULL_LINE_SHARE`` of the document's
typical width (the 90th percentile of its line lengths).
"""

from __future__ import annotations

import re

from rag.ingest.document import Block, Document

WRAP_MAX_WIDTH = 100  # a document whose long lines are longer was not wrapped by hand
FULL_LINE_SHARE = 0.7  # a line this full (of the typical width) was wrapped mid-sentence
HEADING_MAX_CHARS = 80
HEADING_MAX_WORDS = 10

_LIST_START = re.compile(r"\s*(?:[-*•‣◦+]\s|\(?[0-9]{1,3}[.)]\s|\(?[a-zA-Z][.)]\s|\([ivx]{1,4}\)\s)")
_NUMBERED_TITLE = re.compile(r"\s*(?:[0-9]{1,3}(?:\.[0-9]{1,3})*\.?|[A-Z]\.)\s+[A-Z][^.!?]{0,70}[.:]?\s*$")
_CLOSED = re.compile(r"[.!?:;,\"'”’)\]]\s*$")
# a paragraph that opens with its own numbered title: "3. Grant of Patent License. Subject to …"
_RUN_IN_TITLE = re.compile(r"\s*([0-9]{1,3}(?:\.[0-9]{1,3})*\.\s+[A-Z][^.!?\n]{0,60}\.)\s+\S")


def _lines(text: str) -> list[tuple[int, int]]:
    """(start, end) of every non-blank line, whitespace at both ends excluded."""
    out = []
    for m in re.finditer(r"[^\n]+", text):
        s, e = m.span()
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if s < e:
            out.append((s, e))
    return out


def _typical_width(text: str, lines: list[tuple[int, int]]) -> int | None:
    """The wrap width of a hard-wrapped document, None when lines run long."""
    if len(lines) < 5:
        return None
    widths = sorted(e - text.rfind("\n", 0, s) - 1 for s, e in lines)
    p90 = widths[int(0.9 * (len(widths) - 1))]
    return p90 if p90 <= WRAP_MAX_WIDTH else None


def _is_heading(line: str) -> bool:
    words = line.split()
    if not words or len(line) > HEADING_MAX_CHARS or len(words) > HEADING_MAX_WORDS:
        return False
    if _NUMBERED_TITLE.match(line) or line.isupper():
        return True
    return not _CLOSED.search(line) and line[0].isupper()


def parse_text(text: str, source: str) -> Document:
    lines = _lines(text)
    width = _typical_width(text, lines)
    runs: list[list[tuple[int, int]]] = []
    for i, (s, e) in enumerate(lines):
        if runs:
            ps, pe = runs[-1][-1]
            gap = text[pe:s]
            soft = (gap.count("\n") == 1 and width is not None
                    and (pe - text.rfind("\n", 0, ps) - 1) >= FULL_LINE_SHARE * width
                    and not _LIST_START.match(text[s:e]))
            if soft:
                runs[-1].append((s, e))
                continue
        runs.append([(s, e)])
    blocks: list[Block] = []
    section = ""
    for i, run in enumerate(runs):
        start, end = run[0][0], run[-1][1]
        alone = len(run) == 1
        body = text[start:end]
        nxt = runs[i + 1] if i + 1 < len(runs) else None
        if alone and nxt is not None and _is_heading(body):
            section = " ".join(body.split())
            blocks.append(Block(start, end, "heading", section))
            continue
        run_in = _RUN_IN_TITLE.match(body)
        if run_in and len(run_in.group(1).split()) <= HEADING_MAX_WORDS:
            section = " ".join(run_in.group(1).split())
        kind = "item" if _LIST_START.match(body) and not run_in else "text"
        blocks.append(Block(start, end, kind, section))
    return Document(source, text, tuple(blocks))
