"""Question analysis (rag.answer.question): the typed object every later stage reads."""

from __future__ import annotations

import pytest

from rag.answer.question import CHOICE, DATE, NAME, NUMBER, OTHER, POLAR, REASON, analyse, answer_kind, count_parts


@pytest.mark.parametrize("question,kind", [
    ("When will Meta release Llama 5?", DATE),
    ("In what year did it first come out?", DATE),
    ("How many soldiers use Llama?", NUMBER),
    ("How often are the archives refreshed?", NUMBER),
    ("Who is the chief executive of Anduril?", NAME),
    ("Why can't the command be copied?", REASON),
    ("Which company announced it?", CHOICE),
    ("Is the model open source?", POLAR),
    ("Explain the policy.", OTHER),
])
def test_answer_kind(question: str, kind: str) -> None:
    assert answer_kind(question) == kind


def test_parts_count_conjoined_asks() -> None:
    assert count_parts("What is the default size?") == 1
    assert count_parts("What is the default, and what does it recommend instead?") == 2
    assert count_parts("Which two activities are excluded?") == 2
    assert count_parts("In which direction does it work, and what does it fall back on?") == 2


def test_verbatim_terms_and_content_words() -> None:
    q = analyse('Which option of path.resolve() or "--listfiles" does Lockheed Martin use with \\cmd?')
    assert {"path.resolve()", "--listfiles", "Lockheed Martin", "\\cmd"} <= set(q.terms)
    assert "option" in q.content and "which" not in q.content
    assert q.query == q.text  # no history: the question itself is searched
    assert analyse("And him?", "Who is Clegg? And him?").query == "Who is Clegg? And him?"
