"""The scorer on hand-made answers: one case per verdict, plus the tricky ones."""

from __future__ import annotations

import pytest

from rag.evaluation.dataset import EvalItem
from rag.evaluation.scorer import (
    ABSTAINED_ON_ANSWERABLE,
    ANSWERED_UNANSWERABLE,
    FRAGMENT,
    IMPRECISE_CITATION,
    MAX_CITATION_CHARS,
    MISSING_CITATION,
    MISSING_FACT,
    NLI_NOT_ENTAILED,
    NO_GOLD_FACT,
    PAGE_MISMATCH,
    TOO_LONG,
    UNSUPPORTED_FACT,
    WRONG_ANSWER,
    WRONG_SOURCE,
    Passage,
    aggregate,
    contains,
    count_words,
    is_fragment,
    percentile,
    score_question,
)
from rag.types import Answer, Citation, Timings

ITEM = EvalItem(id="q1", question="Who gets Llama?", answers=(("Five Eyes",), ("Llama", "LLaMA model")),
                supporting=("a.txt", "b.txt"), answerable=True)
NOPE = EvalItem(id="q2", question="When is Llama 5 out?", answers=(), supporting=(), answerable=False)
GOOD_TEXT = "Meta will share Llama with members of the Five Eyes alliance."


def cite(text: str = GOOD_TEXT, source: str = "a.txt", marker: int = 1) -> Citation:
    return Citation(marker=marker, source=source, chunk_id=f"{source}#0", start=0, end=len(text), text=text,
                    score=0.5)


def answer(text: str, citations: list[Citation] | None = None, abstained: bool = False,
           total_ms: float = 100.0, ttft_ms: float = 10.0) -> Answer:
    return Answer(question="?", answer=text, abstained=abstained, citations=citations or [],
                  timings=Timings(retrieval_ms=1.0, ttft_ms=ttft_ms, total_ms=total_ms), model="m")


def kinds(score) -> list[str]:  # noqa: ANN001
    return [v.kind for v in score.verdicts]


def test_fully_correct_answer_is_strict_with_no_verdicts() -> None:
    s = score_question(ITEM, answer("Llama goes to the Five Eyes [1].", [cite()]))
    assert (s.correct, s.cited, s.strict) == (True, True, True)
    assert s.verdicts == ()
    assert [c.precise for c in s.citations] == [True]


def test_correct_answer_citing_the_wrong_source_is_not_strict() -> None:
    s = score_question(ITEM, answer("Llama goes to the Five Eyes [1].", [cite(source="c.txt")]))
    assert s.correct and s.cited  # the cited text itself holds the facts
    assert not s.strict
    assert s.citations[0].reasons == (WRONG_SOURCE,)
    assert kinds(s) == [IMPRECISE_CITATION]
    assert "[1]" in s.verdicts[0].detail and "wrong source" in s.verdicts[0].detail
    assert "c.txt" in s.verdicts[0].detail


def test_citation_longer_than_the_limit_is_imprecise_but_the_limit_itself_is_fine() -> None:
    at_limit = GOOD_TEXT + "x" * (MAX_CITATION_CHARS - len(GOOD_TEXT))
    assert len(at_limit) == MAX_CITATION_CHARS
    ok = score_question(ITEM, answer("Llama, Five Eyes [1]", [cite(at_limit)]))
    assert ok.strict
    too_long = at_limit + "x"
    s = score_question(ITEM, answer("Llama, Five Eyes [1]", [cite(too_long)]))
    assert s.correct and s.cited and not s.strict
    assert s.citations[0].reasons == (TOO_LONG,)
    assert s.citations[0].chars == MAX_CITATION_CHARS + 1
    assert "too long" in s.verdicts[0].detail and "2,001" in s.verdicts[0].detail


def test_citation_without_any_gold_fact_is_imprecise() -> None:
    s = score_question(ITEM, answer("Llama, Five Eyes [1][2].", [cite(), cite("Unrelated weather report.", marker=2)]))
    assert s.correct and s.cited and not s.strict
    assert [c.precise for c in s.citations] == [True, False]
    assert s.citations[1].reasons == (NO_GOLD_FACT,)
    assert kinds(s) == [IMPRECISE_CITATION]
    assert s.verdicts[0].detail.startswith("[2]")


def test_citation_can_fail_for_several_reasons_at_once() -> None:
    s = score_question(ITEM, answer("Llama, Five Eyes [1][2]", [cite(), cite("z" * 2500, source="x.txt", marker=2)]))
    assert s.citations[1].reasons == (WRONG_SOURCE, TOO_LONG, NO_GOLD_FACT)


def test_abstention_on_an_answerable_question() -> None:
    s = score_question(ITEM, answer("I don't know.", abstained=True))
    assert (s.correct, s.cited, s.strict) == (False, False, False)
    assert kinds(s) == [ABSTAINED_ON_ANSWERABLE]
    assert s.answer_words == 0


def test_abstention_is_judged_by_the_flag_not_the_text() -> None:
    s = score_question(ITEM, answer("Llama and Five Eyes", [cite()], abstained=True))
    assert not s.correct and kinds(s) == [ABSTAINED_ON_ANSWERABLE]


def test_unanswerable_question_answered_and_abstained() -> None:
    answered = score_question(NOPE, answer("Next year [1].", [cite()]))
    assert not answered.strict and kinds(answered) == [ANSWERED_UNANSWERABLE]
    assert answered.citations == ()  # no gold to judge citations against
    abstained = score_question(NOPE, answer("The documents do not say.", abstained=True))
    assert abstained.strict and abstained.verdicts == ()
    assert not abstained.correct  # "correct" is only about answerable questions


def test_missing_fact_names_the_missing_one() -> None:
    s = score_question(ITEM, answer("The Five Eyes [1].", [cite()]))
    assert not s.correct and not s.strict
    assert kinds(s) == [MISSING_FACT]
    assert "'Llama'" in s.verdicts[0].detail and "Five Eyes" not in s.verdicts[0].detail


def test_no_fact_at_all_is_a_wrong_answer() -> None:
    s = score_question(ITEM, answer("NATO [1].", [cite()]))
    assert kinds(s) == [WRONG_ANSWER]
    assert "Five Eyes" in s.verdicts[0].detail


def test_missing_citation() -> None:
    s = score_question(ITEM, answer("Llama goes to the Five Eyes."))
    assert s.correct and not s.cited and not s.strict
    assert kinds(s) == [MISSING_CITATION]


def test_fact_not_in_the_cited_passages_fails_citation_recall() -> None:
    s = score_question(ITEM, answer("Llama goes to the Five Eyes [1].", [cite("The Five Eyes alliance.")]))
    assert s.correct and not s.cited and not s.strict
    assert s.citations[0].precise  # it does hold one gold fact
    assert kinds(s) == [UNSUPPORTED_FACT]
    assert "'Llama'" in s.verdicts[0].detail


def test_citation_recall_uses_the_concatenation_of_cited_passages() -> None:
    s = score_question(ITEM, answer("Llama goes to the Five Eyes [1][2].",
                                    [cite("The Five Eyes alliance."), cite("Meta's Llama model.", "b.txt", 2)]))
    assert s.cited and s.strict


@pytest.mark.parametrize(("alias", "text"), [
    ("Five Eyes", "the five   eyes\nalliance"),
    ("Five Eyes", "FIVE EYES"),
    ("Meta's president", "Meta\u2019s President"),
    ("Meta\u2019s president", "meta's president"),
    ("\u201cAI Factory\u201d", 'its "AI factory"'),
    ("long-term", "long\u2013term"),
])
def test_alias_matching_normalises_case_whitespace_and_quotes(alias: str, text: str) -> None:
    assert contains(text, alias)


def test_alias_matching_is_a_substring_test_and_not_fuzzy() -> None:
    assert contains("vulnerabilities", "vulnerabilit")
    assert not contains("Five-Eyes", "Five Eyes")
    item = EvalItem("q", "?", (("Meta\u2019s president",),), ("a.txt",), True)
    s = score_question(item, answer("It is META'S  president Nick Clegg [1]",
                                    [cite("Meta's President of global affairs")]))
    assert s.strict


def test_any_alias_of_a_fact_counts() -> None:
    s = score_question(ITEM, answer("the llama model and Five Eyes [1]", [cite("LLaMA Model; five eyes")]))
    assert s.correct and s.strict


def test_retrieval_recall_needs_source_and_facts_within_k() -> None:
    passages = [Passage("c.txt", "Five Eyes"), Passage("a.txt", "nothing"), Passage("d.txt", "Llama")]
    s = score_question(ITEM, answer("x", abstained=True), passages, k=2)
    assert s.retrieval is not None
    assert s.retrieval.source_hit and not s.retrieval.facts_hit and not s.retrieval.hit
    s3 = score_question(ITEM, answer("x", abstained=True), passages, k=3)
    assert s3.retrieval is not None and s3.retrieval.hit
    wrong = score_question(ITEM, answer("x", abstained=True), [Passage("c.txt", "Llama Five Eyes")], k=5)
    assert wrong.retrieval is not None and wrong.retrieval.facts_hit and not wrong.retrieval.source_hit
    assert score_question(ITEM, answer("x", abstained=True)).retrieval is None
    assert score_question(NOPE, answer("x", abstained=True), passages, k=3).retrieval is None


def test_nli_verdict_is_reported_but_does_not_change_strict() -> None:
    s = score_question(ITEM, answer("Llama goes to the Five Eyes [1].", [cite()]), nli_entailed=False)
    assert s.strict and kinds(s) == [NLI_NOT_ENTAILED]
    assert score_question(ITEM, answer("Llama, Five Eyes [1]", [cite()]), nli_entailed=True).verdicts == ()


def test_count_words_ignores_citation_markers() -> None:
    assert count_words("Meta [1] shares Llama[2].") == 3
    assert count_words("") == 0


def test_percentile_interpolates() -> None:
    assert percentile([40, 10, 30, 20], 50) == pytest.approx(25)
    assert percentile([10, 20, 30, 40], 95) == pytest.approx(38.5)
    assert percentile([7], 95) == 7
    assert percentile([], 50) is None


def test_aggregate_on_a_hand_made_mix() -> None:
    scores = [
        # strict: 1 precise citation
        score_question(ITEM, answer("Llama goes to the Five Eyes [1].", [cite()], total_ms=100, ttft_ms=10),
                       [Passage("a.txt", GOOD_TEXT)], k=5),
        # correct and cited, but one of its 2 citations has the wrong source
        score_question(ITEM, answer("Llama, Five Eyes [1][2]", [cite(), cite(source="z.txt", marker=2)],
                                    total_ms=200, ttft_ms=20), [Passage("z.txt", GOOD_TEXT)], k=5),
        # abstained on answerable
        score_question(ITEM, answer("unknown", abstained=True, total_ms=300, ttft_ms=30),
                       [Passage("a.txt", "nothing useful")], k=5),
        # wrong answer with 1 citation without gold fact
        score_question(ITEM, answer("NATO [1]", [cite("NATO is big.")], total_ms=400, ttft_ms=40), [], k=5),
        # unanswerable: one abstained, one answered
        score_question(NOPE, answer("no idea", abstained=True, total_ms=500, ttft_ms=50)),
        score_question(NOPE, answer("In 2026.", [cite()], total_ms=600, ttft_ms=60)),
    ]
    m = aggregate(scores)
    assert (m.questions, m.answerable, m.unanswerable) == (6, 4, 2)
    assert m.strict == pytest.approx(2 / 6)
    assert m.correct == pytest.approx(2 / 4)
    assert m.citation_recall == pytest.approx(2 / 4)
    # answered answerable: 1 + 2 + 1 citations, of which 1 + 1 + 0 precise
    assert m.citations_judged == 4
    assert m.citation_precision == pytest.approx(2 / 4)
    assert m.abstention_rate == pytest.approx(1 / 2)
    assert m.false_abstention_rate == pytest.approx(1 / 4)
    assert m.retrieval_source_recall_at_k == pytest.approx(2 / 4)
    assert m.retrieval_fact_recall_at_k == pytest.approx(2 / 4)
    assert m.retrieval_recall_at_k == pytest.approx(1 / 4)
    # words over the 4 non-abstained answers: 6, 3, 1, 2
    assert m.mean_answer_words == pytest.approx(12 / 4)
    assert m.total_ms_p50 == pytest.approx(350)
    assert m.total_ms_p95 == pytest.approx(575)
    assert m.ttft_ms_p50 == pytest.approx(35)
    assert m.nli_support is None and m.nli_judged == 0


def test_aggregate_leaves_empty_denominators_undefined() -> None:
    m = aggregate([score_question(NOPE, answer("x", abstained=True))])
    assert m.strict == 1.0
    assert m.correct is None and m.citation_precision is None and m.false_abstention_rate is None
    assert m.retrieval_recall_at_k is None and m.mean_answer_words is None
    assert m.abstention_rate == 1.0
    assert m.to_dict()["citation_precision"] is None


def test_aggregate_nli_support() -> None:
    good = answer("Llama, Five Eyes [1]", [cite()])
    m = aggregate([score_question(ITEM, good, nli_entailed=True), score_question(ITEM, good, nli_entailed=False),
                   score_question(ITEM, good)])
    assert m.nli_judged == 2 and m.nli_support == pytest.approx(0.5)


# --- pages and fragments (information only) ---------------------------------------------------

PDF = EvalItem(id="p1", question="When?", answers=(("1994",),), supporting=("guide.pdf",), answerable=True,
               pages=(2, 3))


def on_page(page: int | None, text: str = "It came out in 1994.", marker: int = 1) -> Citation:
    return Citation(marker=marker, source="guide.pdf", chunk_id="guide.pdf#0", start=0, end=len(text), text=text,
                    score=0.5, page=page)


def test_citations_are_judged_for_page_only_when_the_question_has_pages() -> None:
    s = score_question(PDF, answer("In 1994 [1][2][3].", [on_page(2), on_page(7, marker=2), on_page(None, marker=3)]))
    assert [(c.page, c.on_page) for c in s.citations] == [(2, True), (7, False), (None, False)]
    plain = score_question(ITEM, answer("Llama goes to the Five Eyes [1].", [cite()]))
    assert plain.citations[0].on_page is None


def test_page_mismatch_does_not_change_strict_and_is_listed_only_on_failures() -> None:
    s = score_question(PDF, answer("In 1994 [1].", [on_page(9)]))
    assert s.strict and s.verdicts == ()
    failing = score_question(PDF, answer("In 1994 [1][2].", [on_page(9), on_page(3, "Nothing here.", marker=2)]))
    assert not failing.strict
    assert kinds(failing) == [IMPRECISE_CITATION, PAGE_MISMATCH]
    assert failing.verdicts[-1].detail == "[1] cites page 9; the facts are on page(s) 2, 3"
    no_page = score_question(PDF, answer("In 1995 [1].", [on_page(None)]))
    assert "[1] cites no page; the facts are on page(s) 2, 3" in [v.detail for v in no_page.verdicts]


@pytest.mark.parametrize(("text", "fragment"), [
    ("Llama goes to the Five Eyes [1].", False),
    ("Llama goes to the Five Eyes. [1]", False),
    ("Is it Llama? [1]", False),
    ("It is Llama! [1]", False),
    ('He said "Llama." [1]', False),
    ("(It is Llama.) [1]", False),
    ("It is Llama.\u201d [1]", False),
    ("Llama goes to the Five [1]", True),
    ("Llama goes to the Five Eyes, and [1]", True),
    ("It is Llama: [1]", True),
    ("It is Llama; [1]", True),
    ("It is Llama) [1]", True),
    ("", True),
])
def test_is_fragment(text: str, fragment: bool) -> None:
    assert is_fragment(text) is fragment


def test_fragment_is_information_only() -> None:
    s = score_question(ITEM, answer("Llama goes to the Five Eyes [1]", [cite()]))
    assert s.strict and s.fragment and s.verdicts == ()
    failing = score_question(ITEM, answer("Llama goes to the [1]", [cite()]))
    assert failing.fragment and kinds(failing) == [MISSING_FACT, FRAGMENT]
    assert not score_question(ITEM, answer("unknown", abstained=True)).fragment


def test_aggregate_page_accuracy_and_fragment_rate() -> None:
    scores = [
        score_question(PDF, answer("In 1994 [1][2].", [on_page(2), on_page(5, marker=2)])),  # 1 of 2 on page
        score_question(PDF, answer("In 1994 [1]", [on_page(3)])),  # on page; a fragment
        score_question(PDF, answer("unknown", abstained=True)),  # abstained: not judged
        score_question(ITEM, answer("Llama goes to the Five Eyes [1].", [cite()])),  # no pages: not judged
        score_question(NOPE, answer("In 2026 [1]", [cite()])),  # answered unanswerable: a fragment, not judged
        score_question(NOPE, answer("no idea", abstained=True)),
    ]
    m = aggregate(scores)
    assert m.pages_judged == 3 and m.page_accuracy == pytest.approx(2 / 3)
    assert m.fragment_rate == pytest.approx(2 / 4)  # 4 answers given
    none = aggregate([score_question(ITEM, answer("x", abstained=True))])
    assert none.page_accuracy is None and none.pages_judged == 0 and none.fragment_rate is None


def test_an_answer_copied_from_its_citations_is_verbatim_and_a_phrased_one_is_not() -> None:
    from rag.evaluation.scorer import is_verbatim
    from rag.types import Answer, Citation

    cite = Citation(1, "a.txt", "c", 0, 30, "The archives are updated\ntwice every day.", 1.0)
    assert is_verbatim(Answer("q", "The archives are updated twice every day [1].", False, [cite]))
    assert not is_verbatim(Answer("q", "They are updated twice a day [1].", False, [cite]))
    assert not is_verbatim(Answer("q", "No answer.", True, []))
