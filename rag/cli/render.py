"""Terminal rendering shared by ``rag ask`` and ``rag chat``.

The screen shows only what stands. On an interactive terminal a spinner runs
while the question is searched, then the model's draft streams in dim type: it is
provisional, the pipeline may still withdraw it. When the final, verified answer
arrives the draft is erased (rich's ``Live`` wraps the draft itself at the
terminal's width and crops it to the screen's height, so it knows every row it
drew) and the verified answer is printed once, in normal type. Log lines that come
meanwhile are printed above the draft. On anything else (a pipe, a file, a dumb
terminal) only the verified answer is printed, once."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, nullcontext

from rich.console import Console
from rich.live import Live
from rich.logging import RichHandler
from rich.spinner import Spinner
from rich.text import Text

from rag.types import Answer, AnswerEvent, Citation, StreamEvent, TokenEvent

WAITING = "answering…"


def _draft(text: str) -> Text:
    # wrapped by rich (not the terminal) even on a soft-wrapping console, so that
    # Live counts the rows it has to erase
    return Text(text, style="dim", no_wrap=False, overflow="fold")


@contextmanager
def _logs_above(console: Console) -> Iterator[None]:
    """While a draft is live on ``console``, log records that a rich handler would
    write to the same terminal through another console (``rag``'s stderr) are
    printed through ``console`` instead: above the draft, which is redrawn below
    them, so that no line breaks the rows the draft will erase."""
    moved = [h for h in logging.getLogger().handlers
             if isinstance(h, RichHandler) and h.console is not console and h.console.is_terminal]
    saved = [h.console for h in moved]
    for handler in moved:
        handler.console = console
    try:
        yield
    finally:
        for handler, own in zip(moved, saved):
            handler.console = own


@contextmanager
def _live_draft(console: Console) -> Iterator[Callable[[str], None]]:
    """A spinner until the first piece of the draft, then the draft in dim type as
    it grows (``show(piece)``); erased on leaving, also when the stream fails or is
    interrupted."""
    draft: list[str] = []
    waiting = Spinner("dots", Text(WAITING, style="dim"), style="dim")
    with _logs_above(console), Live(waiting, console=console, transient=True, auto_refresh=True,
                                    refresh_per_second=10, vertical_overflow="crop") as live:

        def show(piece: str) -> None:
            draft.append(piece)
            live.update(_draft("".join(draft)), refresh=True)

        try:
            yield show
        finally:
            # Live draws its renderable once more when it stops, uncropped: make that
            # nothing, so that a draft taller than the screen cannot scroll away unerased
            live.update(Text(""), refresh=False)


def searched_as(answer: Answer) -> str | None:
    """The question as it was searched when that is not what was asked (a
    follow-up made standalone), else None."""
    standalone = " ".join(answer.standalone_question.split())
    return standalone if standalone and standalone != " ".join(answer.question.split()) else None


def stream_answer(console: Console, events: Iterable[StreamEvent], *, show_searched_as: bool = False,
                  settle: Callable[[], None] | None = None) -> Answer:
    """Show an answer stream and return its final answer. Only the verified answer
    stays on the screen, printed once (see the module's docstring); with
    ``show_searched_as``, a dim line before it gives the standalone question when
    it differs from what was asked. ``settle`` is called before the answer is
    printed (``Rag.settle``: no model may be loading then)."""
    final: Answer | None = None
    with _live_draft(console) if console.is_interactive else nullcontext(None) as show:
        for event in events:
            if isinstance(event, TokenEvent):
                if show is not None and event.text:
                    show(event.text)
            elif isinstance(event, AnswerEvent):
                final = event.answer
    if final is None:
        raise RuntimeError("answer stream ended without an answer")
    if settle is not None:
        settle()
    note = searched_as(final) if show_searched_as else None
    if note:
        console.print(f"(searched as: {note})", style="dim", highlight=False, markup=False)
    console.print(final.answer, highlight=False, markup=False)
    return final


def source_location(c: Citation) -> str:
    """Where a passage is, as far as it is known: ``usrguide.pdf, p. 3``,
    ``review.pptx, slide 2``, ``scan.pdf, p. 4 (OCR)``."""
    if c.page is None:
        return c.source
    where = "slide" if c.source.lower().endswith(".pptx") else "p."
    return f"{c.source}, {where} {c.page}" + (" (OCR)" if c.ocr else "")


def format_source(c: Citation) -> str:
    """One source line: ``[1] usrguide.pdf, p. 3 — 2.1 Arguments > Optional arguments``
    (the page and the section path only where known)."""
    line = f"[{c.marker}] {source_location(c)}"
    return f"{line} — {c.section}" if c.section else line


def print_sources(console: Console, citations: Sequence[Citation], max_chars: int | None = None) -> None:
    for c in citations:
        flat = " ".join(c.text.split())  # the passage as one paragraph (its line breaks are layout)
        text = flat if max_chars is None or len(flat) <= max_chars else flat[: max_chars - 1] + "…"
        console.print(f"  {format_source(c)}", markup=False, highlight=False, style="bold")
        console.print(f"      {text}", highlight=False, markup=False, style="dim")
