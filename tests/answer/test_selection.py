"""Evidence selection (rag.answer.selection): signals, the fitted policy and its decisions,
on real retrieval over a small real index."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rag.answer.question import analyse
from rag.answer.selection import (
    FEATURES,
    POLICY_FILE,
    RANKER,
    SIGNALS_POLICY_FILE,
    Candidate,
    SelectionPolicy,
    Stage,
    choose,
    select,
    with_stages,
)
from rag.index.store import Record


@pytest.mark.parametrize("path", [SIGNALS_POLICY_FILE, POLICY_FILE])
def test_the_shipped_policies_weigh_every_column_and_have_sane_thresholds(path: Path) -> None:
    policy = SelectionPolicy.load(path)
    assert list(policy.weights) == list(policy.columns)
    assert 0 < policy.answer_threshold < 1 and 0 < policy.more_threshold < 1
    assert 1 <= policy.max_units <= 3 and policy.fitted["by"] == "eval/fit_policy.py"
    assert policy.fitted["suite"] == "eval/train/suite.json"  # fitted on the training suite, never the dev one


def test_the_default_policy_has_the_learned_ranker_read_the_best_units_by_the_signals() -> None:
    signals, ranked = SelectionPolicy.load(SIGNALS_POLICY_FILE), SelectionPolicy.load(POLICY_FILE)
    assert not signals.stages and ranked.uses(RANKER)
    (stage,) = ranked.stages
    assert stage.reads >= 4 and stage.order == signals.weights
    assert ranked.weights[RANKER] > 0


class _Reader:
    """Scores a passage by its length; remembers what it read."""

    def __init__(self) -> None:
        self.read: list[str] = []

    def scores(self, question: str, passages: list[str]) -> np.ndarray:
        self.read += passages
        return np.array([float(len(p)) for p in passages])


def test_a_stage_reads_only_the_units_the_columns_before_it_rank_best() -> None:
    rows = [(Record(f"u{i}", "x" * (i + 1), {"source": "a.txt", "start": i, "end": i + 1}),
             np.eye(len(FEATURES))[0] * d) for i, d in enumerate([0.1, 0.9, 0.5, 0.7])]
    stage = Stage(RANKER, 2, {f: (1.0 if f == FEATURES[0] else 0.0) for f in FEATURES}, -5.0)
    policy = _policy(stages=(stage,), weights={**{f: 0.0 for f in FEATURES}, RANKER: 1.0})  # type: ignore[arg-type]
    reader = _Reader()
    x = with_stages(analyse("Which one?"), rows, policy, {RANKER: reader})
    assert x.shape == (4, len(FEATURES) + 1)
    assert reader.read == ["xx", "xxxx"]  # the two best by the first column, best first
    assert x[:, -1].tolist() == [-5.0, 2.0, -5.0, 4.0]
    with pytest.raises(ValueError, match="no reader"):
        with_stages(analyse("Which one?"), rows, policy, {})


def _cand(i: int, p: float, text: str, source: str = "a.txt") -> Candidate:
    return Candidate(Record(f"c{i}", text, {"source": source, "start": i * 10, "end": i * 10 + 5}),
                     np.zeros(len(FEATURES)), p)


def _policy(**kw: object) -> SelectionPolicy:
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
    sel = select(question, result, SelectionPolicy.load(engine.policy_file()), engine.readers())
    assert sel.candidates, "every unit of the retrieved chunks is scored"
    assert all(0.0 <= c.probability <= 1.0 for c in sel.candidates)
    assert "ferry" in sel.candidates[0].record.text
    assert sel.answerable and "seven" in sel.evidence[0].record.text
