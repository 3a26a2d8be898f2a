"""``rag chat`` driven through a real pseudo-terminal (pexpect)."""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import pexpect
import pytest
from rich.console import Console

from rag.cli.chat import ChatSession
from rag.answer.followup import Turn
from rag.types import Answer, AnswerEvent, Citation, StreamEvent, TokenEvent

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_chat_session_in_a_terminal(seeded_dir: Path) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "RAG_DATA_DIR": str(seeded_dir), "TERM": "xterm",
           "COLUMNS": "200", "NO_COLOR": "1"}
    child = pexpect.spawn(sys.executable, ["-m", "rag", "chat"], cwd=str(ROOT), env=env,
                          encoding="utf-8", timeout=120, dimensions=(50, 200), use_poll=True)
    try:
        child.expect_exact("you> ")
        child.sendline("Which companies is Meta partnering with to bring Llama to government agencies?")
        child.expect(r"\[1\]")
        child.expect_exact("sources:")
        child.expect_exact("you> ")

        child.sendline("And which of them host it on their secure cloud?")
        child.expect(r"(Azure|Amazon Web Services)")
        child.expect_exact("you> ")

        child.sendline("/sources")
        # a plain-text source has no page and no section: the line ends with the file name
        child.expect(r"\[1\] \S+\.txt(\x1b\[[0-9;]*m)*\r?\n")
        child.expect_exact("you> ")

        child.sendline("When will Meta release Llama 5?")
        child.expect_exact("do not contain an answer")
        child.expect_exact("you> ")

        child.sendline("/reset")
        child.expect_exact("conversation reset")
        child.expect_exact("you> ")
        child.sendline("/sources")
        child.expect_exact("no sources yet")
        child.expect_exact("you> ")

        child.sendline("/quit")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0


@pytest.mark.slow
def test_chat_ends_on_ctrl_d(seeded_dir: Path) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "RAG_DATA_DIR": str(seeded_dir), "NO_COLOR": "1"}
    child = pexpect.spawn(sys.executable, ["-m", "rag", "chat"], cwd=str(ROOT), env=env,
                          encoding="utf-8", timeout=120, use_poll=True)
    try:
        child.expect_exact("you> ")
        child.sendeof()
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0


def test_sources_command_shows_page_and_section(fresh_engine) -> None:
    buf = io.StringIO()
    session = ChatSession(fresh_engine, Console(file=buf, width=200))
    session.last = Answer("q?", "Use -v [1]. See also [2].", False, [
        Citation(1, "usrguide.pdf", "c1", 837, 1076, "Optional arguments start with -.", 0.9,
                 section="A > B", page=3),
        Citation(2, "notes.txt", "c2", 0, 20, "Verbose mode is -v.", 0.8)])
    assert session.command("/sources") is True
    lines = buf.getvalue().splitlines()
    assert "  [1] usrguide.pdf, p. 3 — A > B" in lines
    assert "  [2] notes.txt" in lines


class ScriptedEngine:
    """Streams the given answers in turn (a withdrawn draft first), recording the
    history each question came with."""

    def __init__(self, answers: list[Answer]) -> None:
        self.answers = answers
        self.histories: list[list[Turn]] = []

    def ask_stream(self, question: str, k: int | None = None, history: Sequence[Turn] = (),
                   **_: object) -> Iterator[StreamEvent]:
        self.histories.append(list(history))
        yield TokenEvent("Nick Clegg, the CEO")
        yield AnswerEvent(self.answers.pop(0))


def test_a_follow_up_says_how_it_was_searched() -> None:
    cit = Citation(1, "news.txt", "c1", 0, 40, "Nick Clegg, Meta’s president of global affairs, said so.", 0.9)
    first = Answer("Who is Meta's president of global affairs?", "Nick Clegg [1].", False, [cit],
                   standalone_question="Who is Meta's president of global affairs?")
    second = Answer("What did he say?", "Clegg said so [1].", False, [cit], standalone_question="What did Clegg say?")
    engine = ScriptedEngine([first, second])
    buf = io.StringIO()
    session = ChatSession(engine, Console(file=buf, width=200))  # type: ignore[arg-type]
    session.answer(first.question)
    session.answer(second.question)
    assert buf.getvalue().splitlines() == [
        "Nick Clegg [1].", "sources: [1] news.txt",
        "(searched as: What did Clegg say?)", "Clegg said so [1].", "sources: [1] news.txt"]
    assert engine.histories[1] == [Turn(first.question, first.answer, first.standalone_question)]
    assert [t.resolved for t in session.history] == [first.question, "What did Clegg say?"]
