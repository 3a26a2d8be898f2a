"""The terminal shows only what stands: ``rag ask`` and ``rag chat`` run in a real
pseudo-terminal over the seeded index, and the screen a user is left with (replayed
in a VT100 emulator) is compared row by row with what it must hold: the verified
answer once, the sources, no text of a withdrawn draft.

Drafts are made deterministic by a fake OpenAI-compatible LLM server on loopback
(``RAG_LLM_URL``), whose draft for the first question names a "CEO" the evidence
does not support (the pipeline withdraws it) and whose draft for any other question
is the evidence itself (kept). The expected answers come from an engine in this
process built from the same settings; the last tests use the real model."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from rag.cli.chat import HELP, PROMPT
from rag.engine import Rag
from rag.answer.followup import Turn
from rag.settings import Settings
from rag.types import Answer
from tests.serving import LiveServer
from tests.terminal import ROOT, FakeLLM, Terminal, evidence_of, question_of, rag_env, screen_rows

WITHDRAWN_Q = "Who is Meta's president of global affairs?"
# every word up to "CEO" is in the evidence, so it streams; "CEO" is not, so the
# draft stops there and is withdrawn (the evidence is the answer instead)
WITHDRAWN_DRAFT = ["Nick", " Clegg", ",", " Meta's", " president", " of", " global", " affairs", ",",
                   " said", " the", " company", " now", " backed", " the", " United", " States", " and",
                   " the", " CEO", " of", " Meta", "."]
KEPT_Q = "What did Clegg say about Llama?"
FOLLOW_UP = "What did he say about Llama?"


def draft(prompt: str) -> Sequence[str]:
    if question_of(prompt) == WITHDRAWN_Q:
        return WITHDRAWN_DRAFT
    words = evidence_of(prompt).split(" ")  # a copy of the evidence: it verifies
    return [w + " " for w in words[:-1]] + words[-1:]


@pytest.fixture(scope="module")
def fake_llm() -> Iterator[str]:
    """The fake LLM server's base URL (``RAG_LLM_URL``)."""
    with LiveServer(FakeLLM(draft).app) as server:
        yield server.url + "/v1"


@pytest.fixture(scope="module")
def reference(seeded_dir: Path, fake_llm: str) -> Rag:
    """An engine over the seeded index and the fake LLM, made from settings as the
    ``rag`` command makes its own (same embedder), for the answers to expect."""
    engine = Rag(Settings(data_dir=seeded_dir, llm_url=fake_llm))
    engine.load()
    return engine


def ask_screen(answer: Answer, cols: int) -> list[str]:
    """What ``rag ask`` must leave on a terminal ``cols`` wide."""
    lines = [answer.answer]
    if answer.citations:
        lines.append("sources:")
        for c in answer.citations:
            assert c.page is None and not c.section  # the seeds are plain text: the source line is the id
            flat = " ".join(c.text.split())
            lines += [f"  [{c.marker}] {c.source}", "      " + (flat if len(flat) <= 240 else flat[:239] + "…")]
    return screen_rows(lines, cols)


def chat_turn(question: str, answer: Answer) -> list[str]:
    """The lines one ``rag chat`` turn must leave (before wrapping)."""
    lines = [PROMPT + question]
    if answer.standalone_question != answer.question:
        lines.append(f"(searched as: {answer.standalone_question})")
    lines.append(answer.answer)
    if answer.citations:
        lines.append("sources: " + "; ".join(f"[{c.marker}] {c.source}" for c in answer.citations))
    return lines


def run_ask(question: str, env: dict[str, str], cols: int) -> Terminal:
    with Terminal(["ask", question], env=env, cols=cols) as term:
        assert term.finish() == 0, term.raw[-2000:]
    return term


def test_ask_erases_a_withdrawn_draft(seeded_dir: Path, fake_llm: str, reference: Rag) -> None:
    expected = reference.ask(WITHDRAWN_Q)
    assert not expected.answer.startswith("Nick Clegg,") and "CEO" not in expected.answer  # it was withdrawn
    cols = 40  # the draft wraps over three rows, all of which must go
    term = run_ask(WITHDRAWN_Q, rag_env(RAG_DATA_DIR=str(seeded_dir), RAG_LLM_URL=fake_llm), cols)
    assert "CEO" in term.raw  # the draft was on the screen while it streamed...
    screen = term.screen()
    assert screen == ask_screen(expected, cols)  # ...and nothing of it is left
    assert not any("CEO" in row for row in screen)


def test_ask_shows_a_kept_draft_once(seeded_dir: Path, fake_llm: str, reference: Rag) -> None:
    expected = reference.ask(KEPT_Q)
    cols = 60
    term = run_ask(KEPT_Q, rag_env(RAG_DATA_DIR=str(seeded_dir), RAG_LLM_URL=fake_llm), cols)
    assert "\x1b[2m" in term.raw  # streamed dim first
    assert term.screen() == ask_screen(expected, cols)  # then once, verified, with its markers


def test_ask_through_a_pipe_prints_only_the_verified_answer(seeded_dir: Path, fake_llm: str,
                                                            reference: Rag) -> None:
    expected = reference.ask(WITHDRAWN_Q)
    proc = subprocess.run([sys.executable, "-m", "rag", "ask", WITHDRAWN_Q], cwd=ROOT, capture_output=True,
                          text=True, timeout=300,
                          env=rag_env(RAG_DATA_DIR=str(seeded_dir), RAG_LLM_URL=fake_llm))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ask_screen(expected, 100_000)  # no wrapping, no escapes, no draft


def test_chat_erases_withdrawn_drafts_and_says_how_a_follow_up_was_searched(
        seeded_dir: Path, fake_llm: str, reference: Rag) -> None:
    first = reference.ask(WITHDRAWN_Q)
    second = reference.ask(FOLLOW_UP, history=[Turn(WITHDRAWN_Q, first.answer, first.standalone_question)])
    assert second.standalone_question != FOLLOW_UP  # made standalone, so the chat says so
    cols = 60
    with Terminal(["chat"], env=rag_env(RAG_DATA_DIR=str(seeded_dir), RAG_LLM_URL=fake_llm), cols=cols) as term:
        for question in (WITHDRAWN_Q, FOLLOW_UP, "/quit"):
            term.expect_exact(PROMPT)
            term.sendline(question)
        assert term.finish() == 0, term.raw[-2000:]
    assert "CEO" in term.raw
    lines = ["loading models…", f"rag chat — {HELP}", *chat_turn(WITHDRAWN_Q, first), *chat_turn(FOLLOW_UP, second),
             PROMPT + "/quit"]
    screen = term.screen()
    assert screen == screen_rows(lines, cols)
    assert f"(searched as: {second.standalone_question})" in lines
    assert not any("CEO" in row for row in screen)


def test_chat_erases_the_draft_on_ctrl_c(seeded_dir: Path) -> None:
    # the draft stalls after "Nick Clegg" until the chat stops reading it: it is under way when Ctrl-C comes
    with LiveServer(FakeLLM(draft, delay=0.05, stall_after=2).app) as slow:
        env = rag_env(RAG_DATA_DIR=str(seeded_dir), RAG_LLM_URL=slow.url + "/v1")
        with Terminal(["chat"], env=env, cols=60) as term:
            term.expect_exact(PROMPT)
            term.sendline(WITHDRAWN_Q)
            term.expect_exact("Clegg")
            term.child.sendintr()
            term.expect_exact(PROMPT)
            term.sendline("/quit")
            assert term.finish() == 0, term.raw[-2000:]
    lines = ["loading models…", f"rag chat — {HELP}", PROMPT + WITHDRAWN_Q, "(stopped)", PROMPT + "/quit"]
    assert term.screen() == screen_rows(lines, 60), term.raw[-3000:]


@pytest.fixture(scope="module")
def real_reference(seeded_dir: Path, reference: Rag) -> Rag:
    """The same, with the real default model."""
    engine = Rag(Settings(data_dir=seeded_dir), embedder=reference.embedder)
    engine.load()
    return engine


@pytest.mark.slow
def test_ask_with_the_real_model_leaves_only_the_verified_answer(seeded_dir: Path, real_reference: Rag) -> None:
    question = "Which companies is Meta partnering with to bring Llama to government agencies?"
    expected = real_reference.ask(question)
    cols = 60
    term = run_ask(question, rag_env(RAG_DATA_DIR=str(seeded_dir)), cols)
    assert term.screen() == ask_screen(expected, cols)


@pytest.mark.slow
def test_chat_with_the_real_model_leaves_only_the_verified_answers(seeded_dir: Path, real_reference: Rag) -> None:
    turns = [WITHDRAWN_Q, FOLLOW_UP, "When will Meta release Llama 5?"]
    history: list[Turn] = []
    lines = ["loading models…", f"rag chat — {HELP}"]
    for question in turns:
        answer = real_reference.ask(question, history=history)
        history.append(Turn(question, answer.answer, answer.standalone_question))
        lines += chat_turn(question, answer)
    cols = 80
    with Terminal(["chat"], env=rag_env(RAG_DATA_DIR=str(seeded_dir)), cols=cols) as term:
        for question in [*turns, "/quit"]:
            term.expect_exact(PROMPT)
            term.sendline(question)
        assert term.finish() == 0, term.raw[-2000:]
    lines.append(PROMPT + "/quit")
    assert term.screen() == screen_rows(lines, cols)
