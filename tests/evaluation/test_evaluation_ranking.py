"""P@1 and P@3 of the evidence ranking (rag.evaluation.ranking), on the real
pipeline over the seeds, and the ranking block of the reports."""

from __future__ import annotations

import pytest

from rag.evaluation.dataset import EvalItem, load_dataset
from rag.evaluation.ranking import Ranking, answering_ranks, macro_ranking, rank_questions, record_selections
from tests.conftest import DEV

CLEGG = EvalItem("c1", "Who is Meta's president of global affairs?", (("Nick Clegg", "Clegg"),),
                 ("001_f4cf3b6594b4ef58.txt",), True)


def test_a_unit_answers_when_it_holds_a_fact_from_a_supporting_source() -> None:
    units = [("Meta said many things.", "001_f4cf3b6594b4ef58.txt"),
             ("Nick Clegg spoke on Monday.", "002_other.txt"),
             ("Nick Clegg, Meta's president of global affairs, wrote a post.", "001_f4cf3b6594b4ef58.txt")]
    assert answering_ranks(CLEGG, units) == [False, False, True]


def test_macro_ranking_averages_the_corpora_that_were_judged() -> None:
    got = macro_ranking([Ranking(1.0, 1.0, 4), Ranking(0.5, 1.0, 2), Ranking(None, None, 0)])
    assert got == Ranking(0.75, 1.0, 6)
    assert macro_ranking([]) == Ranking(None, None, 0)


@pytest.mark.slow
def test_the_pipelines_ranking_on_the_seeds(seeded_engine) -> None:
    items = load_dataset(DEV)
    ranking = rank_questions(seeded_engine, items, 5)
    answerable = [i for i in items if i.answerable]
    assert ranking.judged == len(answerable)
    assert 0.5 <= ranking.p_at_1 <= ranking.p_at_3 <= 1.0  # type: ignore[operator]
    assert rank_questions(seeded_engine, [CLEGG], 5) == Ranking(1.0, 1.0, 1)


@pytest.mark.slow
def test_ranking_reads_the_selections_the_answers_were_given(seeded_engine) -> None:
    items = [i for i in load_dataset(DEV) if i.answerable][:4]
    recorder = record_selections(seeded_engine)
    try:
        for item in items:
            seeded_engine.ask(item.question, k=5)
    finally:
        seeded_engine.pipeline.on_selection = None
    assert set(recorder.selections) == {i.question for i in items}
    calls = []
    seeded_engine.pipeline.on_selection = lambda q, s: calls.append(q)
    try:
        from_answers = rank_questions(seeded_engine, items, 5, recorder.selections)
        assert calls == []  # nothing selected a second time
        afresh = rank_questions(seeded_engine, items, 5)
        assert len(calls) == len(items)
    finally:
        seeded_engine.pipeline.on_selection = None
    assert from_answers == afresh
