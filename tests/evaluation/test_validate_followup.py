"""Follow-up resolution on the real pipeline over the seeds (readings, topic switches),
and the validation script on the training conversations (eval/validate_followup.py)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from rag.answer.followup import ASKED, RULE, SWAP, Cues, Rewrite, Turn

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "eval" / "validate_followup.py"
LEANS = Cues(leans=True, opener=False, fragment=False, own=0.2, terms=False)


def _script():  # noqa: ANN202 - the script as a module
    spec = importlib.util.spec_from_file_location("validate_followup", SCRIPT)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def test_the_question_as_asked_is_the_reference_row() -> None:
    script = _script()
    row = script.features(Rewrite("q", "q", ASKED), LEANS, 0.4)
    assert list(row[:-1]) == [0.0] * (len(script.FEATURES) - 1) and row[-1] == 0.4
    swap = dict(zip(script.FEATURES, script.features(Rewrite("q2", "q2", SWAP), LEANS, 0.7)))
    assert swap["swap.base"] == 1.0 and swap["swap.leans"] == 1.0 and swap["swap.own"] == pytest.approx(0.2)
    assert swap["joined.base"] == 0.0 and swap["confidence"] == 0.7


def test_targets_are_the_succeeding_readings_nearest_the_gold_rewrite() -> None:
    script = _script()
    row = {"texts": ["What is its default?", "What is maxRedirects's default?", "What is If's default?"],
           "first": [False, True, True]}
    assert list(script.targets(row, "What is the default value of maxRedirects?")) == [0.0, 1.0, 0.0]
    row["first"] = [False, False, False]  # none succeeds: the nearest of all
    assert list(script.targets(row, "What is the default value of maxRedirects?")) == [0.0, 1.0, 0.0]


def test_the_committed_report_is_what_the_committed_table_gives() -> None:
    done = subprocess.run([sys.executable, str(SCRIPT), "--check"], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "is what the kept table gives" in done.stdout


FIRST = "Who is Meta's president of global affairs?"
SWITCHES = ["How many times had Meta's AI software been downloaded?",
            "Which intelligence alliance will Meta share Llama with?",
            "Does Oracle host Llama on its cloud?",  # "its" after a name of the question's own
            "When did Meta make Llama available to US government agencies?"]


@pytest.mark.slow
def test_topic_switches_pass_through_unchanged(seeded_engine) -> None:
    first = seeded_engine.ask(FIRST, k=5)
    history = [Turn(FIRST, first.answer, first.standalone_question)]
    for question in SWITCHES:
        answer = seeded_engine.ask(question, k=5, history=history)
        assert answer.standalone_question == question, answer.standalone_question


@pytest.mark.slow
def test_a_follow_up_is_answered_as_the_rules_read_it(seeded_engine) -> None:
    follow_up = "What did he say the US government could use the technology for?"
    first = seeded_engine.ask(FIRST, k=5)
    history = [Turn(FIRST, first.answer, first.standalone_question)]
    read = seeded_engine.pipeline.readings(follow_up, 5, history)
    assert read[0][0] == Rewrite(follow_up, follow_up, ASKED)
    rules = [r for r, _, _ in read if r.how == RULE]
    assert len(rules) == 1 and "Clegg" in rules[0].text
    answer = seeded_engine.ask(follow_up, k=5, history=history)
    assert answer.standalone_question == rules[0].text
