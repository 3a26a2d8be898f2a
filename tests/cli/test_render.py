"""Terminal rendering: what stays on the screen (output replayed in a VT100 emulator), and the source lines."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest
from rich.console import Console
from rich.logging import RichHandler

from rag.errors import RagError
from rag.cli.render import format_source, print_sources, searched_as, stream_answer
from rag.types import Answer, AnswerEvent, Citation, StreamEvent, TokenEvent
from tests.terminal import replay, rows_of

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


def _terminal(width: int, height: int = 24) -> tuple[Console, io.StringIO]:
    buf = io.StringIO()
    return Console(file=buf, force_terminal=True, force_interactive=True, width=width, height=height,
                   soft_wrap=True), buf


def _screen(buf: io.StringIO, width: int, height: int = 24) -> list[str]:
    return replay(buf.getvalue().replace("\n", "\r\n"), height, width)  # a pty turns \n into \r\n


def _tokens(text: str) -> list[StreamEvent]:
    return [TokenEvent(w + " ") for w in text.split()]


WITHDRAWN = "Nick Clegg, the CEO of Meta, who is also 東京の社長, said many things that the evidence does not say"


@pytest.mark.parametrize("width", [17, 20, 33, 80])
def test_a_withdrawn_draft_is_erased_however_it_wraps(width: int) -> None:
    console, buf = _terminal(width)
    final = "Nick Clegg is Meta’s president of global affairs [1]."
    stream_answer(console, [*_tokens(WITHDRAWN), AnswerEvent(_answer(final))])
    assert "CEO" in buf.getvalue()  # it was shown while it streamed
    assert _screen(buf, width) == rows_of(final, width)


def test_a_kept_draft_is_shown_once() -> None:
    console, buf = _terminal(30)
    final = "Meta did it, and it did it well [1]."
    stream_answer(console, [*_tokens("Meta did it, and it did it well."), AnswerEvent(_answer(final))])
    assert _screen(buf, 30) == rows_of(final, 30)


def test_a_draft_taller_than_the_screen_is_erased() -> None:
    console, buf = _terminal(20, height=5)
    stream_answer(console, [*_tokens(WITHDRAWN * 3), AnswerEvent(_answer("Meta did it [1]."))])
    assert _screen(buf, 20, height=5) == ["Meta did it [1]."]


def test_a_draft_is_erased_when_the_stream_fails() -> None:
    console, buf = _terminal(40)

    def events() -> Iterator[StreamEvent]:
        yield from _tokens(WITHDRAWN)
        raise RagError("the model stopped")

    with pytest.raises(RagError):
        stream_answer(console, events())
    assert _screen(buf, 40) == []


def test_a_log_line_during_the_draft_stays_above_it() -> None:
    console, buf = _terminal(40)
    handler = RichHandler(console=Console(file=buf, force_terminal=True, width=40), show_time=False,
                          show_path=False)  # another console on the same terminal, as rag's stderr
    log = logging.getLogger("rag.test_render")

    def events() -> Iterator[StreamEvent]:
        yield from _tokens(WITHDRAWN)
        log.warning("slow model")
        yield AnswerEvent(_answer("Meta did it [1]."))

    logging.getLogger().addHandler(handler)
    try:
        stream_answer(console, events())
    finally:
        logging.getLogger().removeHandler(handler)
    assert _screen(buf, 40) == ["WARNING  slow model", "Meta did it [1]."]
    assert handler.console is not console  # given back


@pytest.mark.parametrize("interactive", [True, False])
def test_the_question_as_searched_is_shown_when_it_differs(interactive: bool) -> None:
    console, buf = _terminal(200)
    console.is_interactive = interactive
    follow_up = Answer("What did he say?", "Clegg said so [1].", False, [CIT],
                       standalone_question="What did Clegg say?")
    stream_answer(console, [AnswerEvent(follow_up)], show_searched_as=True)
    assert _screen(buf, 200) == ["(searched as: What did Clegg say?)", "Clegg said so [1]."]
    console, buf = _terminal(200)
    as_asked = Answer("Who is Clegg?", "Clegg is [1].", False, [CIT], standalone_question="Who is Clegg?")
    stream_answer(console, [AnswerEvent(as_asked)], show_searched_as=True)
    assert _screen(buf, 200) == ["Clegg is [1]."]
    assert searched_as(as_asked) is None and searched_as(follow_up) == "What did Clegg say?"


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


@pytest.mark.parametrize("interactive", [False, True])
def test_nothing_is_printed_before_the_models_have_settled(interactive: bool) -> None:
    """llama-cpp-python points stdout at /dev/null while a model loads (in a thread,
    during ``rag ask``): the answer is printed only once ``settle`` has returned."""
    console, buf = _terminal(80) if interactive else (Console(file=io.StringIO(), width=200), None)
    out = buf if buf is not None else console.file
    seen: list[str] = []
    stream_answer(console, [AnswerEvent(_answer("Meta did it [1]."))], settle=lambda: seen.append(out.getvalue()))
    assert seen and "Meta did it" not in seen[0]  # settled before the answer was printed
    assert "Meta did it [1]." in out.getvalue()


def test_settle_waits_for_a_model_loading_in_a_thread_and_ignores_its_failure(tmp_path) -> None:
    import time

    from rag.engine import Rag
    from rag.settings import Settings
    from rag.threads import Background

    engine = Rag(Settings(data_dir=tmp_path), embedder=None)
    engine.settle()  # nothing loading: returns at once
    done: list[float] = []
    engine._loading_generator = Background(lambda: (time.sleep(0.3), done.append(time.monotonic()))[1], "t")
    engine.settle()
    assert done  # the 0.3 s load had ended when settle returned

    def fails() -> None:
        raise RagError("no model")

    engine._loading_generator = Background(fails, "t")
    engine.settle()  # the failure is for the model's next use to report


def test_a_source_line_names_the_slide_of_a_deck_and_a_page_read_by_ocr() -> None:
    def cited(source: str, page: int | None, ocr: bool = False) -> Citation:
        return Citation(1, source, "c", 0, 5, "Text.", 0.5, section="Results", page=page, ocr=ocr)

    assert format_source(cited("deck/review.pptx", 2)) == "[1] deck/review.pptx, slide 2 — Results"
    assert format_source(cited("scan.pdf", 4, ocr=True)) == "[1] scan.pdf, p. 4 (OCR) — Results"
    assert format_source(cited("guide.pdf", 4)) == "[1] guide.pdf, p. 4 — Results"
    assert format_source(cited("minutes.docx", None)) == "[1] minutes.docx — Results"
