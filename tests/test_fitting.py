"""The policy fit (rag.evaluation.fitting, eval/fit_policy.py): deterministic, and
the committed rag/policy.json is exactly what the script fits from the committed table."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from rag.evaluation.fitting import QuestionRows, fit_policy, simulate, strict_of
from rag.selection import FEATURES

ROOT = Path(__file__).resolve().parents[1]


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


def test_the_committed_policy_is_what_the_script_fits() -> None:
    done = subprocess.run([sys.executable, str(ROOT / "eval" / "fit_policy.py"), "--check"], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "matches the fit" in done.stdout
