"""Markdown -> ``Document``: clean extracted text, with its structure as blocks.

Approach: markdown-it-py (CommonMark plus the GFM table rule) turns the source
into a flat token stream, which is read in order:

* headings (ATX and setext) become ``heading`` blocks and set the section path;
* paragraphs become ``text`` blocks, their inline tokens rendered to plain text:
  emphasis markers and backticks go, link text stays (URLs and reference labels
  go), images give their alt text, soft/hard line breaks become spaces;
* a list item's paragraphs form one ``item`` block (a nested list ends it, each
  nested item is its own block);
* fenced and indented code become ``code`` blocks (content only, line breaks kept);
* tables become ``table`` blocks, one line per row, cells joined by " | ";
* HTML comments become ``meta`` blocks: their "key: value" lines, without the
  ``YAML`` marker, list dashes, indentation and URL-only values (``pr-url: ...``);
  ``key=value`` one-liners (``<!-- introduced_in=v0.10.0 -->``) read "key: value";
  other raw HTML keeps its text only;
* a leading ``---`` front-matter block becomes a ``meta`` block.

Blocks are separated by a blank line in ``text``; whitespace inside prose blocks
is collapsed to single spaces.
"""

from __future__ import annotations

import html
import logging
import re

from markdown_it import MarkdownIt
from markdown_it.token import Token

from rag.ingest.document import Document
from rag.ingest.parsers.builder import BlockWriter, collapse

log = logging.getLogger(__name__)

_COMMENT = re.compile(r"<!--(.*?)(?:-->|\Z)", re.S)
_TAG = re.compile(r"<[^>]*>")
_SCRIPT = re.compile(r"<(script|style)\b.*?(?:</\1\s*>|\Z)", re.S | re.I)
_KEY_VALUE = re.compile(r"^[\w.-]+(?::\s|:$|=\S)")
_BLOCK_SCALAR = re.compile(r":\s+[|>][+-]?$")
_URL_ONLY = re.compile(r"^(?:[\w.-]+:\s*)?<?https?://\S+>?$")
_KEY_EQ = re.compile(r"^([A-Za-z_][\w.-]*)=(\S.*)$")
_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n(?:---|\.\.\.)[ \t]*(?:\r?\n|\Z)", re.S)


def _inline_text(tokens: list[Token] | None) -> str:
    """Plain text of an inline token's children."""
    out: list[str] = []
    for tok in tokens or []:
        if tok.type in ("text", "code_inline", "text_special"):
            out.append(tok.content)
        elif tok.type in ("softbreak", "hardbreak"):
            out.append(" ")
        elif tok.type == "image":
            out.append(_inline_text(tok.children) or tok.content)
        elif tok.type == "html_inline" and re.match(r"<br\b", tok.content, re.I):
            out.append(" ")
    return "".join(out)


def _meta_lines(comment: str) -> list[str]:
    """The "key: value" lines of a metadata comment; YAML scalar lists are joined
    ("added: v14.9.0, v12.19.0") and folded continuation lines rejoined."""
    lines: list[str] = []
    collecting = False  # the last line is "key:" or a list of scalars being joined
    for raw in comment.splitlines():
        line = raw.strip()
        item = line.startswith("- ")
        line = _BLOCK_SCALAR.sub(":", line[2:].strip() if item else line)
        if not line or line in ("YAML", "-") or _URL_ONLY.match(line):
            continue
        match = _KEY_EQ.match(line)
        line = f"{match[1]}: {match[2]}" if match else line
        keyed = bool(_KEY_VALUE.match(line))
        if lines and not keyed and (collecting or not item):
            joined_list = item and not lines[-1].endswith(":")
            lines[-1] += (", " if joined_list else " ") + line
            collecting = collecting and item
            continue
        lines.append(line)
        collecting = line.endswith(":")
    return lines


def _html_text(raw: str) -> str:
    text = _SCRIPT.sub(" ", _COMMENT.sub(" ", raw))
    return collapse(html.unescape(_TAG.sub(" ", text)))


class _Builder(BlockWriter):
    """Collects ``text`` and its blocks while the tokens are read (one per parse)."""

    def __init__(self, md: MarkdownIt) -> None:
        super().__init__()
        self.md = md
        self.items: list[list[str]] = []  # open list items' pending paragraphs
        self.table: list[list[str]] | None = None

    def flush_item(self) -> None:
        if self.items and self.items[-1]:
            self.emit(collapse(" ".join(self.items[-1])), "item")
            self.items[-1] = []

    def prose(self, text: str) -> None:
        if self.items:
            self.items[-1].append(text)
        else:
            self.emit(collapse(text), "text")

    def block(self, text: str, kind: str) -> None:
        self.flush_item()
        self.emit(text, kind)

    def meta(self, raw: str) -> None:
        self.flush_item()
        for comment in _COMMENT.findall(raw):
            lines = [self.plain(line) for line in _meta_lines(comment)]
            if any(_KEY_VALUE.match(line) for line in lines):  # not a lint directive or note
                self.emit("\n".join(lines), "meta")
        rest = _html_text(raw)
        if rest:
            self.prose(rest)

    def plain(self, line: str) -> str:
        """``line``'s inline Markdown (YAML values often hold some) as plain text."""
        tokens = self.md.parseInline(line)
        return _inline_text(tokens[0].children) if tokens else line

    def document(self, source: str) -> Document:
        while self.items:
            self.flush_item()
            self.items.pop()
        return super().document(source)


def _read_table_token(b: _Builder, tok: Token, inline: Token | None) -> None:
    if b.table is None:
        return
    if tok.type == "tr_open":
        b.table.append([])
    elif tok.type in ("th_open", "td_open") and inline is not None and b.table:
        b.table[-1].append(collapse(_inline_text(inline.children)))


def _handle(b: _Builder, tokens: list[Token], i: int) -> int:
    """Read token ``i`` (and the inline token after it, if it consumes it);
    return the index of the next token to read."""
    tok = tokens[i]
    nxt = tokens[i + 1] if i + 1 < len(tokens) and tokens[i + 1].type == "inline" else None
    kind = tok.type
    if b.table is not None and kind != "table_close":
        _read_table_token(b, tok, nxt)
        return i + (2 if nxt is not None else 1)
    if kind == "heading_open" and nxt is not None:
        b.flush_item()
        b.heading(int(tok.tag[1:]), _inline_text(nxt.children))
        return i + 2
    if kind == "paragraph_open" and nxt is not None:
        b.prose(_inline_text(nxt.children))
        return i + 2
    if kind in ("fence", "code_block"):
        b.block(tok.content.replace("\r\n", "\n").rstrip(), "code")
    elif kind == "html_block":
        b.meta(tok.content)
    elif kind == "list_item_open":
        b.flush_item()
        b.items.append([])
    elif kind == "list_item_close":
        b.flush_item()
        b.items.pop()
    elif kind == "table_open":
        b.flush_item()
        b.table = []
    elif kind == "table_close" and b.table is not None:
        rows, b.table = b.table, None
        b.emit("\n".join(" | ".join(r).rstrip() for r in rows if any(r)), "table")
    return i + 1


def _split_front_matter(text: str) -> tuple[list[str], str]:
    """The metadata lines of a leading ``---`` block, and the Markdown after it."""
    match = _FRONT_MATTER.match(text)
    if not match:
        return [], text
    return _meta_lines(match[1]), text[match.end():]


def parse_markdown(text: str, source: str) -> Document:
    """``text`` (Markdown) as a ``Document`` of heading/text/item/code/table/meta
    blocks (see the module docstring)."""
    meta, body = _split_front_matter(text.lstrip("\ufeff"))
    md = MarkdownIt("commonmark").enable("table")
    tokens = md.parse(body)
    builder = _Builder(md)
    title = next((line[6:].strip().strip("\"'") for line in meta if line.startswith("title:")), "")
    if title and not any(t.type == "heading_open" and t.tag == "h1" for t in tokens):
        builder.headings = [(0, title)]  # the front matter's title roots the section path
    builder.emit("\n".join(meta), "meta")
    i = 0
    while i < len(tokens):
        i = _handle(builder, tokens, i)
    doc = builder.document(source)
    log.debug("%s: %d chars, %d blocks", source, len(doc.text), len(doc.blocks))
    return doc
