"""What a user sees: ``rag`` driven through a real pseudo-terminal (pexpect), its
whole output replayed into a VT100 emulator (pyte), and the screen read back row by
row. Also a fake OpenAI-compatible LLM server on loopback whose drafts a test
chooses, for answers whose draft is withdrawn (or kept) deterministically."""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from types import TracebackType

import pexpect
import pyte
from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse
from wcwidth import wcwidth  # how many cells pyte gives a character (installed with pyte)

ROOT = Path(__file__).resolve().parents[1]


def rag_env(**extra: str) -> dict[str, str]:
    """The environment of a ``rag`` process under test: no RAG_* of the caller's
    but RAG_CACHE_DIR (set by conftest), offline, and no COLUMNS/LINES (rich would
    take them over the terminal's real size)."""
    env = {k: v for k, v in os.environ.items()
           if (not k.startswith("RAG_") or k == "RAG_CACHE_DIR") and k not in ("COLUMNS", "LINES")}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", ANONYMIZED_TELEMETRY="False", TERM="xterm")
    env.update(extra)
    return env


def rows_of(line: str, cols: int) -> list[str]:
    """The screen rows one printed line fills when the terminal wraps it at ``cols``
    cells (trailing spaces dropped, as ``Terminal.screen`` drops them)."""
    rows, row, used = [], "", 0
    for ch in line:
        width = max(wcwidth(ch), 0)
        if used + width > cols:
            rows.append(row)
            row, used = "", 0
        row += ch
        used += width
    rows.append(row)
    return [r.rstrip() for r in rows]


def screen_rows(lines: Sequence[str], cols: int) -> list[str]:
    """The rows of ``lines`` printed one after another on a terminal ``cols`` wide."""
    return [row for line in lines for row in rows_of(line, cols)]


def replay(output: str, rows: int, cols: int) -> list[str]:
    """The screen after ``output`` (as a terminal received it), row by row, trailing
    spaces and trailing empty rows dropped."""
    screen = pyte.Screen(cols, rows)
    pyte.Stream(screen).feed(output)
    shown = [line.rstrip() for line in screen.display]
    while shown and not shown[-1]:
        shown.pop()
    return shown


class Terminal:
    """``with Terminal(["ask", "Q?"], env=...) as t:`` runs ``python -m rag ask "Q?"``
    in a pseudo-terminal ``rows`` x ``cols``; ``t.screen()`` is what it shows. The
    process is always stopped on exit."""

    def __init__(self, args: Sequence[str], *, env: dict[str, str], rows: int = 120, cols: int = 60,
                 timeout: float = 180.0) -> None:
        self.rows, self.cols = rows, cols
        self.output = io.StringIO()
        self.child = pexpect.spawn(sys.executable, ["-m", "rag", *args], cwd=str(ROOT), env=env,
                                   encoding="utf-8", timeout=timeout, dimensions=(rows, cols),
                                   use_poll=True,  # poll: select() fails on fds over 1023 in long runs
                                   # Ctrl-C as at a terminal, whatever the test process inherited
                                   preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        self.child.logfile_read = self.output

    def expect_exact(self, text: str) -> None:
        self.child.expect_exact(text)

    def sendline(self, text: str) -> None:
        self.child.sendline(text)

    def finish(self) -> int:
        """Wait for the process to end; its exit status."""
        self.child.expect(pexpect.EOF)
        self.child.close()
        return int(self.child.exitstatus if self.child.exitstatus is not None else -1)

    @property
    def raw(self) -> str:
        """Everything the process wrote to the terminal, escape sequences included."""
        return self.output.getvalue()

    def screen(self) -> list[str]:
        return replay(self.raw, self.rows, self.cols)

    def __enter__(self) -> "Terminal":
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.child.close(force=True)


def sse(piece: str) -> str:
    return f"data: {json.dumps({'choices': [{'index': 0, 'delta': {'content': piece}}]})}\n\n"


def evidence_of(prompt: str) -> str:
    """The evidence in a drafting prompt (``rag.answer.drafting.build_messages``), one line."""
    body = prompt.split("Evidence: ", 1)[1].rsplit("\nQuestion: ", 1)[0]
    return " ".join(body.split())


def question_of(prompt: str) -> str:
    return prompt.rsplit("\nQuestion: ", 1)[1].strip()


class FakeLLM:
    """An OpenAI-compatible chat-completions server (serve ``app`` with
    ``tests.serving.LiveServer``) whose reply to a drafting prompt is
    ``draft(prompt)``, streamed piece by piece ``delay`` seconds apart."""

    def __init__(self, draft: Callable[[str], Sequence[str]], delay: float = 0.03,
                 stall_after: int | None = None) -> None:
        self.draft = draft
        self.delay = delay
        self.stall_after = stall_after  # pieces sent before the stream stalls (until its client leaves)
        self.prompts: list[str] = []
        self.app = FastAPI()
        self.app.get("/v1/models")(self._models)
        self.app.post("/v1/chat/completions")(self._complete)

    async def _models(self) -> dict[str, object]:
        return {"object": "list", "data": [{"id": "fake-drafter"}]}

    async def _complete(self, request: Request) -> StreamingResponse:
        body = await request.json()
        prompt = str(body["messages"][-1]["content"])
        self.prompts.append(prompt)
        pieces = list(self.draft(prompt))

        async def events() -> AsyncIterator[str]:
            for i, piece in enumerate(pieces):
                if i == self.stall_after:
                    await asyncio.sleep(3600)
                yield sse(piece)
                await asyncio.sleep(self.delay)
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")
