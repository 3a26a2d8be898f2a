"""Plain text (rag.ingest.parsers.text): wrapped paragraphs, list items, heading lines."""

from __future__ import annotations

from rag.ingest.chunking import chunk_text
from rag.ingest.parsers.text import parse_text

WRAPPED = "\n".join([
    "  TERMS AND CONDITIONS",
    "",
    "  0. Definitions.",
    "",
    '  "This License" refers to version 3 of the GNU General Public License, and',
    "it applies to every program licensed under it, whoever the licensee may",
    "be, and wherever they are.",
    "  a) The work must carry prominent notices stating that you modified",
    "  it, and giving a relevant date.",
    "",
    "  3. Grant of Patent License. Subject to the terms and conditions of this",
    "License, each Contributor grants a perpetual patent license to You, in",
    "all the countries of the world, for the life of the patents concerned.",
] + ["Filler line that keeps the typical width of this document near seventy."] * 4)


def test_wrapped_lines_are_one_block_and_sentences_run_across_them() -> None:
    doc = parse_text(WRAPPED, "t.txt")
    texts = [" ".join(doc.text[b.start:b.end].split()) for b in doc.blocks]
    assert '"This License" refers to version 3 of the GNU General Public License, and it applies to every ' \
           'program licensed under it, whoever the licensee may be, and wherever they are.' in texts
    sentences = [" ".join(s.text.split()) for c in chunk_text("t.txt", WRAPPED) for s in c.sentences]
    assert any(s.startswith('"This License" refers') and s.endswith("wherever they are.") for s in sentences)


def test_list_items_and_heading_lines_are_their_own_blocks() -> None:
    doc = parse_text(WRAPPED, "t.txt")
    kinds = {" ".join(doc.text[b.start:b.end].split())[:20]: b.kind for b in doc.blocks}
    assert kinds["TERMS AND CONDITIONS"] == "heading" and kinds["0. Definitions."] == "heading"
    assert kinds["a) The work must car"] == "item"
    item = next(b for b in doc.blocks if b.kind == "item")
    assert item.section == "0. Definitions."


def test_a_paragraph_with_a_run_in_numbered_title_starts_its_section() -> None:
    doc = parse_text(WRAPPED, "t.txt")
    grant = next(b for b in doc.blocks if doc.text[b.start:b.end].lstrip().startswith("3. Grant"))
    assert grant.kind == "text" and grant.section == "3. Grant of Patent License."


def test_unwrapped_text_keeps_every_line_break_hard() -> None:
    text = "A first paragraph that runs long without any wrapping at all, as news often does. " * 3
    doc = parse_text(text + "\nSecond paragraph.\nThird.", "n.txt")
    assert len([b for b in doc.blocks if b.kind != "heading"]) == 3
