"""Terminal rendering shared by ``rag ask`` and ``rag chat``."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from rich.console import Console

from rag.types import Answer, AnswerEvent, Citation, StreamEvent, TokenEvent


def stream_answer(console: Console, events: Iterable[StreamEvent]) -> Answer:
    """Print tokens as they come; if the final, verified answer differs from what
    was streamed (a rejected draft), print it in place of the draft. When the
    output is not a terminal (a pipe, a file), print only the final answer."""
    live = console.is_terminal
    streamed = ""
    final: Answer | None = None
    for event in events:
        if isinstance(event, TokenEvent):
            if live:
                streamed += event.text
                console.print(event.text, end="", highlight=False, markup=False)
        elif isinstance(event, AnswerEvent):
            final = event.answer
    if final is None:
        raise RuntimeError("answer stream ended without an answer")
    if streamed.strip() == final.answer.strip():
        console.print()
    else:
        console.print(("\r\033[K" if streamed else "") + final.answer, highlight=False, markup=False)
    return final


def source_location(c: Citation) -> str:
    """Where a passage is, as far as it is known: ``usrguide.pdf, p. 3``."""
    return c.source if c.page is None else f"{c.source}, p. {c.page}"


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
