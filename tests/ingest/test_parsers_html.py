"""rag.ingest.parsers.html: main-content extraction and block structure."""

from __future__ import annotations

import time

import pytest

from rag.ingest.document import Document
from rag.ingest.parsers.html import parse_html
from tests.parsed import blocks_of, check_invariants

PAGE = """<!DOCTYPE html>
<html><head><title>Page Title</title><style>.x { color: red }</style>
<script>var nav = "script text";</script></head>
<body>
<header><a href="/">Site logo</a> <nav><ul><li><a href="/a">Menu one</a></li></ul></nav></header>
<div role="navigation"><a href="/b">Sidebar link</a></div>
<main>
<h1>functools <a class="headerlink" href="#x">&para;</a></h1>
<p>The functools module is for
higher-order functions: functions that act on
or return other functions.</p>
<dl class="py function">
<dt id="functools.cmp_to_key"><span>functools.</span><span>cmp_to_key</span>(<em>func</em>)<a class="headerlink" href="#functools.cmp_to_key">¶</a></dt>
<dd><p>Transform an old-style comparison function to a
<a href="#key">key function</a>.</p>
<pre>sorted(iterable, key=cmp_to_key(locale.strcoll))
# second line
    indented()</pre>
</dd>
</dl>
<h2>Partial objects</h2>
<h3>Attributes</h3>
<p>Deep text&nbsp;here &amp; there.</p>
<h2>Tables and lists</h2>
<table><tr><th>Name</th><th>Value</th></tr><tr><td>a</td><td><code>1</code></td></tr></table>
<ul><li><p>first item</p><p>more of it</p><ul><li>nested item</li></ul></li><li>second item</li></ul>
<div hidden>hidden text</div><span aria-hidden="true">aria hidden text</span>
<form><label>Search form</label></form>
</main>
<footer>Footer text &copy; 2024</footer>
<aside>Aside text</aside>
</body></html>
"""


@pytest.fixture(scope="module")
def page() -> Document:
    return parse_html(PAGE, "page.html")


def test_invariants(page: Document) -> None:
    check_invariants(page)
    assert page.source == "page.html"
    for prev, nxt in zip(page.blocks, page.blocks[1:]):
        assert "\n\n" in page.text[prev.end:nxt.start]


def test_boilerplate_is_dropped(page: Document) -> None:
    for absent in ("script text", "color: red", "Menu one", "Site logo", "Sidebar link",
                   "Footer text", "Aside text", "hidden text", "aria hidden text",
                   "Search form", "¶", "Page Title"):
        assert absent not in page.text


def test_definition_list_term_then_description(page: Document) -> None:
    blocks = blocks_of(page)
    i = next(i for i, b in enumerate(blocks) if b[0] == "term")
    assert blocks[i][1] == "functools.cmp_to_key(func)"
    kind, text, section = blocks[i + 1]
    assert kind == "text"
    assert text == "Transform an old-style comparison function to a key function."
    assert section == "functools > functools.cmp_to_key"
    assert blocks[i][2] == "functools > functools.cmp_to_key"


def test_pre_is_a_code_block_with_line_breaks(page: Document) -> None:
    code = [text for kind, text, _ in blocks_of(page) if kind == "code"]
    assert code == ["sorted(iterable, key=cmp_to_key(locale.strcoll))\n# second line\n"
                    "    indented()"]
    code_block = next(b for b in page.blocks if b.kind == "code")
    assert code_block.section == "functools > functools.cmp_to_key"


def test_source_line_breaks_become_spaces(page: Document) -> None:
    assert ("The functools module is for higher-order functions: functions that act on "
            "or return other functions.") in [t for _, t, _ in blocks_of(page)]


def test_heading_path(page: Document) -> None:
    headings = [(t, s) for k, t, s in blocks_of(page) if k == "heading"]
    assert headings == [
        ("functools", "functools"),
        ("Partial objects", "functools > Partial objects"),
        ("Attributes", "functools > Partial objects > Attributes"),
        ("Tables and lists", "functools > Tables and lists"),
    ]
    deep = next(b for b in blocks_of(page) if b[1].startswith("Deep text"))
    assert deep == ("text", "Deep text here & there.", "functools > Partial objects > Attributes")


def test_table_and_list_items(page: Document) -> None:
    blocks = blocks_of(page)
    assert ("table", "Name | Value\na | 1", "functools > Tables and lists") in blocks
    items = [t for k, t, _ in blocks if k == "item"]
    assert items == ["first item more of it", "nested item", "second item"]


def test_title_is_root_without_h1() -> None:
    doc = parse_html("<html><head><title>My Page</title></head><body><h2>Part</h2>"
                     "<p>Body text.</p></body></html>", "t.html")
    assert blocks_of(doc) == [("heading", "Part", "My Page > Part"),
                            ("text", "Body text.", "My Page > Part")]


def test_consecutive_terms_share_the_description() -> None:
    doc = parse_html("<dl><dt>f(a)</dt><dt>f(a, b)</dt><dd>Calls f.</dd>"
                     "<dt>Other:</dt><dd><p>One.</p><p>Two.</p></dd></dl>", "d.html")
    assert blocks_of(doc) == [("term", "f(a)", "f"), ("term", "f(a, b)", "f"),
                            ("text", "Calls f.", "f"), ("term", "Other:", "Other"),
                            ("text", "One.", "Other"), ("text", "Two.", "Other")]


def test_inline_elements_do_not_break_text() -> None:
    doc = parse_html("<p>Use <code>x</code>, <em>y</em><tt>z</tt> and <kbd>Ctrl</kbd>"
                     "<br>now.</p>", "i.html")
    assert blocks_of(doc) == [("text", "Use x, yz and Ctrl now.", "")]


def test_main_content_prefers_article() -> None:
    doc = parse_html("<body><div>Outside words</div><article><p>Inside.</p></article></body>",
                     "a.html")
    assert doc.text == "Inside."


@pytest.mark.parametrize("markup", [
    "", "   ", "<", "<<<>>>", "\x00\x01", "<p>unclosed <b>bold", "</div></p>stray",
    "<html><body></body></html>", "<script>only()</script>", "<?xml version='1.0' "
    "encoding='UTF-8'?><html><body><p>x</p></body></html>", "<table><tr><td></td></tr></table>",
    "<pre>\n\n</pre>", "<dl><dd>no term</dd><dt></dt></dl>", "\ud800 lone surrogate",
])
def test_malformed_and_empty_inputs(markup: str) -> None:
    doc = parse_html(markup, "m.html")
    check_invariants(doc)


def test_deep_nesting_and_large_input_are_fast() -> None:
    deep = parse_html("<div>" * 3000 + "deep" + "</div>" * 3000, "deep.html")
    check_invariants(deep)
    para = "<p>Some <b>bold</b> words and <a href='#'>a link</a> in a paragraph.</p>\n"
    big = "<html><body>" + para * 40000 + "</body></html>"  # ~3 MB
    start = time.perf_counter()
    doc = parse_html(big, "big.html")
    assert time.perf_counter() - start < 10
    assert len(doc.blocks) == 40000
    check_invariants(doc)


def test_page_header_holding_the_h1_is_kept() -> None:
    doc = parse_html("<body><header><h1>Post title</h1><nav>Menu</nav></header>"
                     "<p>Body.</p><footer>Footer</footer></body>", "h.html")
    assert blocks_of(doc) == [("heading", "Post title", "Post title"),
                            ("text", "Body.", "Post title")]
