"""rag.ingest.parsers.markdown: clean text and block structure from Markdown."""

from __future__ import annotations

import pytest

from rag.ingest.document import Document
from rag.ingest.parsers.markdown import parse_markdown
from tests.parsed import blocks_of, check_invariants

NODE_DOC = """# Path

<!--introduced_in=v0.10.0-->

The `node:path` module provides utilities for working with file and directory
paths. See [the guide](https://example.org/guide) and [`path.sep`][].

## `path.basename(path[, suffix])`

<!-- YAML
added: v20.17.0
changes:
  - version: v6.0.0
    pr-url: https://github.com/nodejs/node/pull/5348
    description: Passing a non-string as the `path` argument will throw now.
-->

* `path` {string}
* `suffix` {string} An optional
  suffix to remove

```js
path.basename('/foo/bar/baz/asdf/quux.html');
// Returns: 'quux.html'
```

<!-- eslint-skip -->

Deeper section
--------------

### Third level

Text *with* **emphasis** and ![alt text](img.png).

## Back to two

> A quoted
> paragraph.

    indented code
      keeps indentation

| Name | Value |
|------|-------|
| `a`  | 1     |

<div align="center"><b>Raw</b> HTML &amp; text</div>

[`path.sep`]: #pathsep
"""


@pytest.fixture(scope="module")
def doc() -> Document:
    return parse_markdown(NODE_DOC, "path.md")


def test_invariants(doc: Document) -> None:
    check_invariants(doc)
    for prev, nxt in zip(doc.blocks, doc.blocks[1:]):
        assert "\n\n" in doc.text[prev.end:nxt.start]


def test_no_markup_left(doc: Document) -> None:
    for absent in ("#", "`", "**", "](", "https://", "<!--", "-->", "YAML", "pr-url",
                   "eslint-skip", "<div", "```", "|---"):
        assert absent not in doc.text, absent


def test_paragraph_soft_breaks_and_links(doc: Document) -> None:
    assert ("text", "The node:path module provides utilities for working with file and "
            "directory paths. See the guide and path.sep.", "Path") in blocks_of(doc)


def test_yaml_comment_is_a_meta_block(doc: Document) -> None:
    metas = [(t, s) for k, t, s in blocks_of(doc) if k == "meta"]
    assert metas[0] == ("introduced_in: v0.10.0", "Path")
    text, section = metas[1]
    assert section == "Path > path.basename(path[, suffix])"
    assert text.splitlines() == [
        "added: v20.17.0", "changes:", "version: v6.0.0",
        "description: Passing a non-string as the path argument will throw now."]
    assert len(metas) == 2  # the lint directive is not metadata


def test_meta_lists_are_joined() -> None:
    doc = parse_markdown("<!-- YAML\nadded:\n  - v14.9.0\n  - v12.19.0\n-->\n", "m.md")
    assert blocks_of(doc) == [("meta", "added: v14.9.0, v12.19.0", "")]


def test_list_items(doc: Document) -> None:
    items = [t for k, t, _ in blocks_of(doc) if k == "item"]
    assert items == ["path {string}", "suffix {string} An optional suffix to remove"]


def test_fenced_and_indented_code(doc: Document) -> None:
    code = [t for k, t, _ in blocks_of(doc) if k == "code"]
    assert code == ["path.basename('/foo/bar/baz/asdf/quux.html');\n// Returns: 'quux.html'",
                    "indented code\n  keeps indentation"]


def test_heading_paths_atx_and_setext(doc: Document) -> None:
    headings = [(t, s) for k, t, s in blocks_of(doc) if k == "heading"]
    assert headings == [
        ("Path", "Path"),
        ("path.basename(path[, suffix])", "Path > path.basename(path[, suffix])"),
        ("Deeper section", "Path > Deeper section"),
        ("Third level", "Path > Deeper section > Third level"),
        ("Back to two", "Path > Back to two"),
    ]


def test_inline_markup_and_images(doc: Document) -> None:
    assert ("text", "Text with emphasis and alt text.",
            "Path > Deeper section > Third level") in blocks_of(doc)


def test_blockquote_table_and_raw_html(doc: Document) -> None:
    blocks = blocks_of(doc)
    assert ("text", "A quoted paragraph.", "Path > Back to two") in blocks
    assert ("table", "Name | Value\na | 1", "Path > Back to two") in blocks
    assert ("text", "Raw HTML & text", "Path > Back to two") in blocks


def test_nested_list_items_are_separate() -> None:
    doc = parse_markdown("- one\n\n  more of one\n  - nested\n- two\n", "l.md")
    assert blocks_of(doc) == [("item", "one more of one", ""), ("item", "nested", ""),
                            ("item", "two", "")]


def test_front_matter_is_meta_and_title_roots_path() -> None:
    doc = parse_markdown("---\ntitle: Guide\nauthor: me\n---\n## Intro\n\nHello.\n", "f.md")
    assert blocks_of(doc) == [("meta", "title: Guide\nauthor: me", "Guide"),
                            ("heading", "Intro", "Guide > Intro"),
                            ("text", "Hello.", "Guide > Intro")]


@pytest.mark.parametrize("source", [
    "", "   \n\n", "#", "```\nunclosed fence", "<!-- unclosed comment", "<!---->",
    "* \n* \n", "| a |\n|---|\n", "[x]: http://only-a-definition", "> ", "\ufeff# BOM",
    "<script>alert(1)</script>\n", "- - - nested", "\x00\x01 binary-ish",
])
def test_degenerate_inputs(source: str) -> None:
    doc = parse_markdown(source, "d.md")
    check_invariants(doc)
    assert "alert(1)" not in doc.text
