"""Sentence splitting and chunking: whole sentences, exact offsets, stable ids."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.ingest.chunking import Chunk, Span, chunk_id, chunk_text, split_sentences

SEEDS = Path(__file__).resolve().parents[2] / "seeds"
SEED_FILES = sorted(SEEDS.glob("*.txt"))

LONG_RUN = " ".join(f"word{i % 10}" for i in range(600))[:3000]  # 3,000 chars, no punctuation

TRICKY = {
    "abbreviations": "Mr. Smith went to Washington. He arrived at 5 p.m. and left early. "
                     "The U.S. Army was there. Dr. Jones met Prof. Lee at St. Paul. It rained.",
    "us_at_end": "He lives in the U.S. The company is big. It grew e.g. by buying rivals.",
    "quotes": 'She said, "Go now." Then she left! Did he follow? Yes. '
              '\u201cReally?\u201d he asked. (It was late.) Done.',
    "newlines": "A heading without a period\nLine two ends here.\nLine three.\n\n\nParagraph two.",
    "crlf": "First line.\r\nSecond line.\r\n\r\nThird paragraph. Still third.\r\n",
    "unicode": "Caf\u00e9 d\u00e9j\u00e0 vu. \u00dcn\u00efc\u00f6d\u00e9 "
               "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8\u3002 Emoji \U0001f600 here. "
               "\u00c9t\u00e9 arrive. End.",
    "leading_trailing_ws": "   \n\t Indented start. Ends with spaces.   \n\n  ",
    "long_run": LONG_RUN,
    "long_run_in_context": "Before it. " + LONG_RUN + ". After it.",
    "long_token": "x" * 3000,
    "numbers": "Version 2.5 shipped in Jan. 2024. Revenue rose 3.4% to $1.2 billion. No. 7 ranked.",
}


def check_offsets(source_text: str, chunks: list[Chunk]) -> None:
    for chunk in chunks:
        assert source_text[chunk.start:chunk.end] == chunk.text
        assert chunk.sentences, "a chunk holds at least one sentence"
        assert chunk.sentences[0].start == chunk.start
        assert chunk.sentences[-1].end == chunk.end
        for sent in chunk.sentences:
            assert source_text[sent.start:sent.end] == sent.text
            assert chunk.start <= sent.start < sent.end <= chunk.end
            assert sent.text == sent.text.strip() and sent.text


def check_coverage(source_text: str, spans: list[Span]) -> None:
    """Spans are ordered, disjoint, and together hold every non-space character."""
    covered = [False] * len(source_text)
    prev_end = 0
    for span in spans:
        assert span.start >= prev_end
        prev_end = span.end
        for i in range(span.start, span.end):
            covered[i] = True
    lost = [c for c, cov in zip(source_text, covered) if not cov and not c.isspace()]
    assert lost == []


@pytest.mark.parametrize("path", SEED_FILES, ids=lambda p: p.name)
def test_seed_chunks_have_exact_offsets_and_lose_nothing(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    chunks = chunk_text(path.name, text)
    assert chunks
    check_offsets(text, chunks)
    sentences = [s for c in chunks for s in c.sentences]
    assert [(s.start, s.end, s.text) for s in sentences] == [(s.start, s.end, s.text) for s in split_sentences(text)]
    check_coverage(text, sentences)
    assert [c.index for c in chunks] == list(range(len(chunks)))
    assert all(c.source == path.name for c in chunks)
    # about 600 characters: only a single over-long sentence may exceed the target
    assert all(len(c.text) <= 600 or len(c.sentences) == 1 for c in chunks)


@pytest.mark.parametrize("target", [100, 250, 600, 2000])
@pytest.mark.parametrize("name", sorted(TRICKY))
def test_tricky_text_offsets_hold_for_chunks_and_sentences(name: str, target: int) -> None:
    text = TRICKY[name]
    chunks = chunk_text("t.txt", text, target_chars=target)
    check_offsets(text, chunks)
    check_coverage(text, [s for c in chunks for s in c.sentences])
    assert all(len(c.text) <= max(target, 1000) for c in chunks)


def sentence_texts(text: str) -> list[str]:
    return [s.text for s in split_sentences(text)]


def test_abbreviations_do_not_end_sentences() -> None:
    assert sentence_texts(TRICKY["abbreviations"]) == [
        "Mr. Smith went to Washington.",
        "He arrived at 5 p.m. and left early.",
        "The U.S. Army was there.",
        "Dr. Jones met Prof. Lee at St. Paul.",
        "It rained.",
    ]


def test_abbreviation_at_the_end_of_a_sentence_before_a_typical_opener() -> None:
    assert sentence_texts(TRICKY["us_at_end"]) == [
        "He lives in the U.S.",
        "The company is big.",
        "It grew e.g. by buying rivals.",
    ]


def test_closing_quotes_and_brackets_stay_with_their_sentence() -> None:
    assert sentence_texts(TRICKY["quotes"]) == [
        'She said, "Go now."',
        "Then she left!",
        "Did he follow?",
        "Yes.",
        "\u201cReally?\u201d he asked.",
        "(It was late.)",
        "Done.",
    ]


def test_line_breaks_split_and_carriage_returns_are_not_part_of_sentences() -> None:
    assert sentence_texts(TRICKY["newlines"]) == [
        "A heading without a period", "Line two ends here.", "Line three.", "Paragraph two."]
    assert sentence_texts(TRICKY["crlf"]) == [
        "First line.", "Second line.", "Third paragraph.", "Still third."]


def test_unicode_offsets_are_character_offsets() -> None:
    text = TRICKY["unicode"]
    spans = split_sentences(text)
    assert [s.text for s in spans][0] == "Caf\u00e9 d\u00e9j\u00e0 vu."
    assert spans[-1].text == "End." and spans[-1].end == len(text)
    assert any("\U0001f600" in s.text for s in spans)


@pytest.mark.parametrize("name", ["long_run", "long_run_in_context", "long_token"])
def test_a_sentence_longer_than_1000_chars_is_cut_into_spans_of_at_most_1000(name: str) -> None:
    text = TRICKY[name]
    spans = split_sentences(text)
    assert all(len(s.text) <= 1000 for s in spans)
    long_spans = [s for s in spans if len(s.text) > 100]
    assert len(long_spans) >= 3  # 3,000 characters cannot fit in fewer
    check_coverage(text, spans)
    for s in spans:
        assert text[s.start:s.end] == s.text
    if name != "long_token":  # where there is whitespace, cuts never split a word
        for s in spans:
            assert s.end == len(text) or not (text[s.end - 1].isalnum() and text[s.end].isalnum())
            assert s.start == 0 or not (text[s.start - 1].isalnum() and text[s.start].isalnum())


@pytest.mark.parametrize("text", ["", " ", "\n\n", " \t\r\n \u00a0 \n"])
def test_empty_or_whitespace_text_has_no_sentences_and_no_chunks(text: str) -> None:
    assert split_sentences(text) == []
    assert chunk_text("t.txt", text) == []


def test_sentences_never_straddle_chunks_and_chunks_respect_the_target() -> None:
    text = " ".join(f"Sentence number {i} says something short." for i in range(60))
    chunks = chunk_text("t.txt", text, target_chars=200)
    assert len(chunks) > 5
    check_offsets(text, chunks)
    assert all(len(c.text) <= 200 for c in chunks)
    # packing is greedy: adding the next chunk's first sentence would pass the target
    for a, b in zip(chunks, chunks[1:]):
        assert b.sentences[0].end - a.start > 200
    assert [s.text for c in chunks for s in c.sentences] == sentence_texts(text)


def test_chunk_ids_are_stable_and_depend_on_source_and_position() -> None:
    text = (SEED_FILES[0]).read_text(encoding="utf-8")
    first = chunk_text("a.txt", text)
    again = chunk_text("a.txt", text)
    assert [c.id for c in first] == [c.id for c in again]
    assert first == again
    ids = [c.id for c in first]
    assert len(set(ids)) == len(ids)
    other = chunk_text("b.txt", text)
    assert not {c.id for c in other} & set(ids)
    sub = chunk_text("sub/a.txt", text)
    assert not {c.id for c in sub} & set(ids)
    assert all(c.id == chunk_id("a.txt", c.start, c.text) for c in first)


def test_chunk_id_changes_with_position_or_text() -> None:
    base = chunk_id("a.txt", 0, "Hello there.")
    assert base == chunk_id("a.txt", 0, "Hello there.")
    assert len({base, chunk_id("a.txt", 1, "Hello there."), chunk_id("a.txt", 0, "Hello there!"),
                chunk_id("b.txt", 0, "Hello there.")}) == 4


def test_editing_one_paragraph_keeps_the_ids_of_earlier_chunks() -> None:
    paras = [" ".join(f"Paragraph {p} sentence {i} is here." for i in range(12)) for p in range(4)]
    text = "\n\n".join(paras)
    edited = text[: text.rindex("Paragraph 3")] + "A new last paragraph."
    before = chunk_text("a.txt", text, target_chars=300)
    after = chunk_text("a.txt", edited, target_chars=300)
    # the last chunk before the edit may absorb the new text; every earlier one is untouched
    unchanged = [c for c in before if c.end <= text.rindex("Paragraph 3") - 2][:-1]
    assert len(unchanged) >= 3
    assert [c.id for c in after[: len(unchanged)]] == [c.id for c in unchanged]
    assert before[-1].id not in {c.id for c in after}


def test_a_piece_with_no_letter_or_digit_is_no_unit() -> None:
    from rag.ingest.chunking import chunk_document, document_units
    from rag.ingest.parsers.markdown import parse_markdown

    doc = parse_markdown("# Setup\n\nRun the installer first.\n\n---\n\n```\n}\n```\n\n"
                         "- ...\n- Then restart the service.\n", "setup.md")
    units = document_units(doc)
    assert [u.text for u in units if "installer" in u.text or "restart" in u.text] == \
        ["Run the installer first.", "Then restart the service."]
    assert all(any(ch.isalnum() for ch in u.text) for u in units)
    assert all(doc.text[u.start:u.end] == u.text for u in units)
    assert chunk_document(doc)  # the document still chunks
