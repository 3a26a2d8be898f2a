"""Evidence selection (rag.selection): signals, the fitted policy and its decisions,
on real retrieval over a small real index."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rag.question import analyse
from rag.selection import FEATURES, Candidate, SelectionPolicy, choose, select
from rag.store import Record

def test_the_shipped_policy_has_every_feature_and_sane_thresholds() -> None:
    policy = SelectionPolicy.load()
    assert set(policy.weights) == set(FEATURES)
    assert 0 < policy.answer_threshold < 1 and 0 < policy.more_threshold < 1
    assert 1 <= policy.max_units <= 3 and policy.fitted["by"] == "eval/fit_policy.py"


def _cand(i: int, p: float, text: str, source: str = "a.txt") -> Candidate:
    return Candidate(Record(f"c{i}", text, {"source": source, "start": i * 10, "end": i * 10 + 5}),
                     np.zeros(len(FEATURES)), p)


def _policy(**kw: float) -> SelectionPolicy:
    base = dict(weights={f: 0.0 for f in FEATURES}, bias=0.0, answer_threshold=0.5, more_threshold=0.4,
                more_ratio=0.5, max_units=3, extra_units=0)
    base.update(kw)
    return SelectionPolicy(**base)  # type: ignore[arg-type]


def test_choose_abstains_below_the_threshold_and_cites_the_best_above() -> None:
    q = analyse("What is the default size?")
    low = choose(q, [_cand(1, 0.3, "One."), _cand(2, 0.2, "Two.")], _policy())
    assert not low.answerable and low.evidence == [] and "0.30" in low.reasons[0]
    high = choose(q, [_cand(1, 0.9, "One."), _cand(2, 0.8, "Two.")], _policy())
    assert [c.record.id for c in high.evidence] == ["c1"]  # one part asked: one unit


def test_a_question_with_two_parts_gets_two_units_in_document_order() -> None:
    q = analyse("What is the default, and what does it recommend instead?")
    sel = choose(q, [_cand(5, 0.9, "Later."), _cand(2, 0.7, "Earlier."), _cand(3, 0.6, "Third.")], _policy())
    assert [c.record.id for c in sel.evidence] == ["c2", "c5"]
    # a unit that repeats a chosen one is skipped
    sel = choose(q, [_cand(5, 0.9, "Same text."), _cand(2, 0.8, "Same text."), _cand(3, 0.7, "Other.")], _policy())
    assert [c.record.id for c in sel.evidence] == ["c3", "c5"]


@pytest.mark.slow
def test_selection_on_real_retrieval_finds_the_sentence(tmp_path: Path, embedder) -> None:
    from rag.engine import Rag
    from rag.settings import Settings

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "ferry.txt").write_text(
        "The harbour has two piers. The ferry to the island leaves at seven every morning.\n\n"
        "Tickets are sold at the kiosk. The kiosk opens at six.\n", encoding="utf-8")
    (docs / "bakery.txt").write_text("The bakery sells rye bread. It closes at noon on Sundays.\n",
                                     encoding="utf-8")
    engine = Rag(Settings(data_dir=tmp_path / "data", use_llm=False), embedder=embedder)
    engine.ingestor.ingest_paths([docs])
    question = analyse("When does the ferry to the island leave?")
    result = engine.retriever.retrieve(question.query, 5)
    sel = select(question, result, SelectionPolicy.load())
    assert sel.candidates, "every unit of the retrieved chunks is scored"
    assert all(0.0 <= c.probability <= 1.0 for c in sel.candidates)
    assert "ferry" in sel.candidates[0].record.text
    assert sel.answerable and "seven" in sel.evidence[0].record.text
