"""HTML -> ``Document``: the main content's text, with its structure as blocks.

Approach (lxml, libxml2's forgiving HTML parser):

1. Parse the markup (malformed input is repaired, character references decoded)
   and pick the main content: ``<main>``, else ``[role=main]``, else a single
   ``<article>``, else ``<body>``.
2. Prune what is not content: navigation, asides, scripts, forms, hidden
   elements, page header/footer outside a sectioning element, anchors that are
   just a symbol (Sphinx/MkDocs "¶" permalinks) and a few generic navigation
   classes emitted by documentation generators (DocBook XSL ``navheader``,
   ``navfooter``, ``toc``; ``breadcrumb``; screen-reader-only text).
3. Walk the tree. Inline elements (``a``, ``code``, ``em``, ``span``...) only add
   text to the current run; block elements end the run, which becomes a block
   with all its whitespace collapsed to single spaces (so sentences are not cut
   at source line breaks). Headings, ``<dt>`` terms, list items, ``<pre>`` code
   (line breaks kept) and tables (one line per row, cells joined by " | ") get
   their own kinds. A ``<dd>``'s blocks have the term (shortened to the part
   before its first "(") appended to their section path.

Blocks are separated by a blank line in ``text``; unknown elements count as
inline so that custom elements never split a sentence.
"""

from __future__ import annotations

import dataclasses
import logging

import lxml.html
from lxml import etree

from rag.ingest.document import Document
from rag.ingest.parsers.builder import BlockWriter, collapse

log = logging.getLogger(__name__)

_DROP_TAGS = frozenset({
    "nav", "aside", "script", "style", "noscript", "template", "svg", "form", "button",
    "input", "select", "textarea", "iframe", "object", "embed", "canvas", "audio", "video",
    "head", "title", "meta", "link", "dialog",
})
_DROP_ROLES = frozenset({"navigation", "banner", "contentinfo", "search"})
# generic navigation class names written by documentation generators and CSS frameworks
_DROP_CLASSES = frozenset({"navheader", "navfooter", "toc", "breadcrumb", "breadcrumbs",
                           "sr-only", "visually-hidden"})
_SECTIONING = frozenset({"article", "section", "main"})
_HEADINGS = {f"h{n}": n for n in range(1, 7)}
# blocks that always end the current run, even inside a list item
_HARD_BLOCKS = frozenset({"ul", "ol", "dl", "menu", "pre", "table", "hr", "li", "dt", "dd",
                          *_HEADINGS})
# blocks that end a paragraph, but are merged into an enclosing list item
_SOFT_BLOCKS = frozenset({
    "p", "div", "section", "article", "main", "body", "html", "header", "footer", "address",
    "blockquote", "center", "details", "summary", "figure", "figcaption", "caption",
    "fieldset", "legend", "hgroup", "listing", "xmp", "plaintext", "tbody", "thead", "tfoot",
    "tr", "td", "th",
})
_CODE_TAGS = frozenset({"pre", "listing", "xmp", "plaintext"})
_MAX_DEPTH = 200  # libxml2 stops at 256 levels; deeper content is read as flat text
_TERM_MAX = 80


def _is_hidden(el: etree._Element) -> bool:
    style = (el.get("style") or "").replace(" ", "").lower()
    return (el.get("hidden") is not None
            or (el.get("aria-hidden") or "").strip().lower() == "true"
            or "display:none" in style or "visibility:hidden" in style)


def _should_drop(el: etree._Element) -> bool:
    tag = el.tag
    if tag in _DROP_TAGS or _is_hidden(el):
        return True
    if (el.get("role") or "").strip().lower() in _DROP_ROLES:
        return True
    if _DROP_CLASSES.intersection((el.get("class") or "").lower().split()):
        return True
    if tag in ("header", "footer"):  # page banner/footer, unless it holds the page's h1
        return not (any(a.tag in _SECTIONING for a in el.iterancestors())
                    or (tag == "header" and next(el.iter("h1"), None) is not None))
    if tag == "a":  # permalink anchors: "¶", "#", "§"...
        label = "".join(el.itertext()).strip()
        return 0 < len(label) <= 2 and not any(c.isalnum() for c in label)
    return False


def _prune(root: etree._Element) -> None:
    """Remove non-content elements (keeping their tails) and mark soft boundaries."""
    doomed = [el for el in root.iter() if isinstance(el.tag, str) and _should_drop(el)]
    for el in doomed:
        if el.getparent() is not None:
            el.drop_tree()
    for br in root.iter("br"):
        br.tail = "\n" + (br.tail or "")
    in_code = {id(d) for pre in root.iter(*_CODE_TAGS) for d in pre.iterdescendants()}
    for el in root.iter():
        if el.tag in _SOFT_BLOCKS or el.tag in _HARD_BLOCKS:
            if id(el) not in in_code:
                # so that flattened text (table cells, headings) keeps words apart
                el.tail = " " + (el.tail or "")


def _text(el: etree._Element) -> str:
    return "".join(t for t in el.itertext() if isinstance(t, str))


def _short_term(term: str) -> str:
    short = term.split("(", 1)[0].strip().rstrip(":").strip() or term
    if len(short) > _TERM_MAX:
        short = short[:_TERM_MAX].rsplit(" ", 1)[0]
    return short


def _main_content(root: etree._Element) -> etree._Element:
    candidates = root.xpath("//main") + root.xpath("//*[@role='main']")
    articles = root.xpath("//article")
    if len(articles) == 1:
        candidates.append(articles[0])
    for el in candidates:
        if collapse(_text(el)):
            return el
    body = root.find("body")
    return body if body is not None else root


class _Builder(BlockWriter):
    """Collects ``text`` and its blocks while the tree is walked (one per parse)."""

    def __init__(self, title: str) -> None:
        super().__init__()
        self.run: list[str] = []
        self.kind = "text"
        self.headings = [(0, title)] if title else []
        self.terms: list[str] = []
        self.pending_terms: list[str] = []

    def section(self) -> str:
        return " > ".join([h for _, h in self.headings] + self.terms)

    def flush(self) -> None:
        if self.run:
            self.emit(collapse("".join(self.run)), self.kind)
            self.run = []

    def heading(self, level: int, text: str) -> None:
        self.flush()
        super().heading(level, text)

    def document(self, source: str) -> Document:
        self.flush()
        return super().document(source)


def _walk_children(b: _Builder, el: etree._Element, depth: int) -> None:
    if el.text:
        b.run.append(el.text)
    for child in el:
        if isinstance(child.tag, str):
            _visit(b, child, depth + 1)
        if child.tail:
            b.run.append(child.tail)


def _visit_list_item(b: _Builder, el: etree._Element, depth: int) -> None:
    b.flush()
    outer, b.kind = b.kind, "item"
    _walk_children(b, el, depth)
    b.flush()
    b.kind = outer


def _visit_dl(b: _Builder, el: etree._Element, depth: int) -> None:
    b.flush()
    saved, b.pending_terms = b.pending_terms, []
    outer, b.kind = b.kind, "text"
    _walk_children(b, el, depth)
    b.flush()
    b.pending_terms, b.kind = saved, outer


def _visit_dt(b: _Builder, el: etree._Element) -> None:
    b.flush()
    term = collapse(_text(el))
    if not term:
        return
    short = _short_term(term)
    if short not in b.pending_terms:
        b.pending_terms.append(short)
    b.emit(term, "term", " > ".join(filter(None, [b.section(), short])))


def _visit_dd(b: _Builder, el: etree._Element, depth: int) -> None:
    b.flush()
    terms, b.pending_terms = b.pending_terms, []
    label = ", ".join(terms)
    if label:
        b.terms.append(label)
    outer, b.kind = b.kind, "text"
    _walk_children(b, el, depth)
    b.flush()
    b.kind = outer
    if label:
        b.terms.pop()


def _visit_table(b: _Builder, el: etree._Element, depth: int) -> None:
    if el.find(".//table") is not None:  # layout table: read it as a container
        _walk_children(b, el, depth)
        return
    b.flush()
    caption = el.find("caption")
    if caption is not None:
        b.emit(collapse(_text(caption)), "text")
    rows = []
    for tr in el.iter("tr"):
        cells = [collapse(_text(c)) for c in tr if c.tag in ("td", "th")]
        if any(cells):
            rows.append(" | ".join(cells).rstrip())
    b.emit("\n".join(rows), "table")


def _visit(b: _Builder, el: etree._Element, depth: int) -> None:
    tag = el.tag
    if depth > _MAX_DEPTH:
        b.run.append(_text(el))
    elif tag in _HEADINGS:
        b.heading(_HEADINGS[tag], _text(el))
    elif tag in _CODE_TAGS:
        b.flush()
        b.emit(_text(el).replace("\r\n", "\n").replace("\xa0", " ").rstrip(), "code")
    elif tag == "table":
        _visit_table(b, el, depth)
    elif tag in ("ul", "ol", "menu"):
        b.flush()
        _walk_children(b, el, depth)
        b.flush()
    elif tag == "li":
        _visit_list_item(b, el, depth)
    elif tag == "dl":
        _visit_dl(b, el, depth)
    elif tag == "dt":
        _visit_dt(b, el)
    elif tag == "dd":
        _visit_dd(b, el, depth)
    elif tag in _SOFT_BLOCKS or tag == "hr":
        if b.kind == "item":  # an item's paragraphs stay part of the item
            b.run.append(" ")
            _walk_children(b, el, depth)
        else:
            b.flush()
            _walk_children(b, el, depth)
            b.flush()
    else:
        _walk_children(b, el, depth)


def _parse_tree(html: str) -> etree._Element | None:
    parser = lxml.html.HTMLParser(encoding="utf-8", remove_comments=True, remove_pis=True)
    try:
        return lxml.html.document_fromstring(
            html.encode("utf-8", errors="replace"), parser=parser)
    except (etree.ParserError, ValueError) as exc:
        log.debug("no HTML content: %s", exc)
        return None


def parse_html(html: str, source: str) -> Document:
    """The main content of ``html`` as a ``Document`` with heading/text/term/item/
    code/table blocks (see the module docstring)."""
    root = _parse_tree(html)
    if root is None:
        return Document(source=source, text="")
    title_el = root.find(".//title")
    title = collapse(_text(title_el)) if title_el is not None else ""
    content = _main_content(root)
    _prune(content)
    has_h1 = next(content.iter("h1"), None) is not None
    builder = _Builder("" if has_h1 else title)
    _visit(builder, content, 0)
    doc = dataclasses.replace(builder.document(source), title=title)
    log.debug("%s: %d chars, %d blocks", source, len(doc.text), len(doc.blocks))
    return doc
