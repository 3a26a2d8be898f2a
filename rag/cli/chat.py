"""``rag chat``: an interactive session in the terminal. Streams each answer as it
is produced (``rag.cli.render``: a draft the pipeline withdraws is erased), keeps the
conversation so follow-ups work, says how a follow-up was searched when it was made
standalone ("(searched as: …)"), shows sources after each answer. Commands:
/sources, /reset, /quit (or Ctrl-D)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from rich.console import Console

from rag.answer.pipeline import Turn
from rag.errors import InputError, RagError
from rag.cli.render import print_sources, source_location, stream_answer
from rag.types import Answer

if TYPE_CHECKING:
    from rag.engine import Rag

log = logging.getLogger(__name__)

HELP = "Ask a question. Commands: /sources (sources of the last answer), /reset (forget the conversation), /quit."
PROMPT = "you> "
MAX_HISTORY = 6


class ChatSession:
    def __init__(self, engine: "Rag", console: Console, sources: list[str] | None = None) -> None:
        self.engine = engine
        self.console = console
        self.sources = sources or None  # answer only from these document ids or id prefixes
        self.history: list[Turn] = []
        self.last: Answer | None = None

    def run(self) -> None:
        self.console.print("[dim]loading models…[/dim]")
        self.engine.load()
        self.console.print(f"[bold]rag chat[/bold] — {HELP}")
        while True:
            try:
                line = input(PROMPT)
            except EOFError:
                self.console.print()
                return
            except KeyboardInterrupt:
                self.console.print()
                return
            line = line.strip()
            if not line:
                continue
            if line.startswith("/"):
                if not self.command(line):
                    return
                continue
            try:
                self.answer(line)
            except InputError as exc:
                self.console.print(f"[red]error:[/red] {exc.message}", highlight=False)
            except RagError as exc:
                self.console.print(f"[red]error:[/red] {exc.message}", highlight=False)
            except KeyboardInterrupt:
                self.console.print("[dim](stopped)[/dim]")  # the draft is already erased

    def command(self, line: str) -> bool:
        cmd = line.split()[0].lower()
        if cmd in ("/quit", "/exit", "/q"):
            return False
        if cmd == "/reset":
            self.history.clear()
            self.last = None
            self.console.print("[dim]conversation reset[/dim]")
        elif cmd == "/sources":
            self.show_sources()
        elif cmd == "/help":
            self.console.print(HELP)
        else:
            self.console.print(f"unknown command {cmd}; {HELP}", highlight=False)
        return True

    def show_sources(self) -> None:
        if not self.last or not self.last.citations:
            self.console.print("[dim]no sources yet[/dim]")
            return
        print_sources(self.console, self.last.citations)

    def answer(self, question: str) -> None:
        events = self.engine.ask_stream(question, history=self.history[-MAX_HISTORY:], sources=self.sources)
        final = stream_answer(self.console, events, show_searched_as=True)
        self.last = final
        self.history.append(Turn(question, final.answer, final.standalone_question))
        if final.citations:
            sources = "; ".join(f"[{c.marker}] {source_location(c)}" for c in final.citations)
            self.console.print(f"sources: {sources}", markup=False, highlight=False, style="dim")
