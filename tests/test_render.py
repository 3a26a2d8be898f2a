from __future__ import annotations

import io

from rich.console import Console

from rag.render import format_source, print_sources, stream_answer
from rag.types import Answer, AnswerEvent, Citation, TokenEvent

CIT = Citation(1, "a.txt", "c1", 0, 12, "Meta did it.", 0.9)


def _answer(text: str) -> Answer:
    return Answer("q?", text, False, [CIT])


def test_pipe_gets_only_the_final_answer() -> None:
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=False, width=200)
    events = [TokenEvent("Meta did "), TokenEvent("nothing"), AnswerEvent(_answer("Meta did it [1]."))]
    final = stream_answer(console, events)
    assert final.answer == "Meta did it [1]."
    assert buf.getvalue() == "Meta did it [1].\n"


def test_terminal_streams_and_replaces_a_rejected_draft() -> None:
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=True, color_system=None, width=200)
    stream_answer(console, [TokenEvent("Meta did "), TokenEvent("nothing"), AnswerEvent(_answer("Meta did it [1]."))])
    out = buf.getvalue()
    assert out.startswith("Meta did nothing")
    assert out.rstrip().endswith("\x1b[KMeta did it [1].")


def test_terminal_stream_that_matches_is_not_repeated() -> None:
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=True, color_system=None, width=200)
    stream_answer(console, [TokenEvent("Meta did it [1]."), AnswerEvent(_answer("Meta did it [1]."))])
    assert buf.getvalue().count("Meta did it") == 1


def test_a_source_says_its_page_and_section() -> None:
    c = Citation(2, "usrguide.pdf", "c7", 837, 1076, "Optional arguments start with -.", 0.5,
                 section="A > B", page=3)
    assert format_source(c) == "[2] usrguide.pdf, p. 3 — A > B"


def test_a_source_shows_only_what_is_known() -> None:
    assert format_source(CIT) == "[1] a.txt"  # plain text: no page, no section, no offsets
    assert format_source(Citation(1, "a.md", "c1", 0, 5, "x", 0.5, section="Intro")) == "[1] a.md — Intro"
    assert format_source(Citation(1, "a.pdf", "c1", 0, 5, "x", 0.5, page=1)) == "[1] a.pdf, p. 1"


def test_sources_are_printed_with_where_they_are() -> None:
    buf = io.StringIO()
    located = Citation(2, "usrguide.pdf", "c7", 837, 1076, "Optional arguments start with -.", 0.5,
                       section="A > B", page=3)
    print_sources(Console(file=buf, width=200), [CIT, located])
    lines = buf.getvalue().splitlines()
    assert lines == ["  [1] a.txt", "      Meta did it.",
                     "  [2] usrguide.pdf, p. 3 — A > B", "      Optional arguments start with -."]
