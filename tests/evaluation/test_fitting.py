"""The policy fit (rag.evaluation.fitting, eval/fit_policy.py): deterministic, and
the committed policies are exactly what the script fits from the committed
training table and ranker scores."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rag.evaluation.fitting import QuestionRows, fit_policy, simulate, strict_of
from rag.answer.selection import FEATURES, RANKER, Stage

ROOT = Path(__file__).resolve().parents[2]


def _row(corpus: str, qid: str, answerable: bool, good: float) -> QuestionRows:
    """Two candidates; the first holds the fact when answerable, and its 'dense' is ``good``."""
    feats = np.zeros((2, len(FEATURES)))
    feats[0, FEATURES.index("dense")] = good
    feats[1, FEATURES.index("dense")] = 0.1
    facts = (frozenset({0}), frozenset()) if answerable else (frozenset(), frozenset())
    return QuestionRows(corpus, qid, answerable, 1 if answerable else 0, 1, feats, facts, (True, True),
                        (f"{qid} a", f"{qid} b"))


def test_strict_needs_every_fact_and_a_fact_in_every_citation() -> None:
    row = _row("c", "q", True, 0.9)
    assert strict_of(row, [0]) and not strict_of(row, [1]) and not strict_of(row, [0, 1])
    assert not strict_of(row, [])
    assert strict_of(_row("c", "u", False, 0.9), [])


def test_the_fit_separates_a_clear_signal_and_is_deterministic() -> None:
    rows = [_row(c, f"{c}{i}", i % 3 != 0, 0.9 if i % 3 else 0.3) for c in ("x", "y") for i in range(12)]
    first, second = fit_policy(rows, 1.0), fit_policy(rows, 1.0)
    assert first == second
    assert first.weights["dense"] > 0
    assert simulate(rows, first)["macro"] == 1.0


def test_a_stages_column_is_weighed_under_its_signals_name() -> None:
    rows = []
    for c in ("x", "y"):
        for i in range(12):
            row = _row(c, f"{c}{i}", True, 0.5)
            score = np.array([[2.0], [-1.0]]) if i % 2 else np.array([[-1.0], [2.0]])
            facts = row.facts if i % 2 else row.facts[::-1]
            rows.append(QuestionRows(c, row.id, True, 1, 1, np.hstack([row.features, score]), facts,
                                     row.supporting, row.texts))
    stage = Stage(RANKER, 2, {f: 0.0 for f in FEATURES}, -2.0)
    policy = fit_policy(rows, 1.0, stages=(stage,))
    assert list(policy.weights) == [*FEATURES, RANKER] and policy.stages == (stage,)
    assert policy.weights[RANKER] > 0 and simulate(rows, policy)["macro"] == 1.0


@pytest.mark.slow
def test_the_committed_policies_are_what_the_script_fits() -> None:
    done = subprocess.run([sys.executable, str(ROOT / "eval" / "fit_policy.py"), "--check"], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "matches the fit" in done.stdout
