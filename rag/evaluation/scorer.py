"""Pure scoring: per-question verdicts and aggregate metrics. No I/O, no models.

Matching is a case-insensitive substring test after ``rag.text.normalize``
(whitespace collapsed, curly quotes and dashes unified). A gold *fact* is a list
of aliases; it is present in a text when any alias is.

Per question:

* **correct**: answerable, not abstained, every fact present in the answer text.
* **cited** (citation recall): correct, at least one citation, and every fact
  present in the concatenation of the cited passages' texts.
* **precise** (per citation, citation precision): the citation's source is one of
  ``supporting``, its text is at most ``MAX_CITATION_CHARS`` characters, and it
  contains an alias of some fact.
* **strict**: answerable -> correct and cited and every citation precise;
  unanswerable -> abstained. The headline *answer-citation accuracy* is the
  mean of strict over all questions.
* **on page** (per citation, only for questions with gold ``pages``): the
  citation's ``page`` is one of them. Information only: it does not change strict.
* **fragment**: an answer was given (not abstained) and, citation markers
  removed, it does not end with ``.``, ``!`` or ``?`` (optionally followed by
  closing brackets or quotes). Information only.

On a question that is not strict, a page mismatch and a fragment are listed
among its verdicts (as information, after the reasons it failed).

Aggregates (``None`` where the denominator is empty):

* ``correct``, ``citation_recall``, ``false_abstention_rate``: over answerable questions.
* ``citation_precision``: micro-average, precise citations / all citations, over
  the answerable questions that were answered (not abstained), whatever the
  correctness of the answer. Citations on unanswerable questions have no gold
  to judge and are not counted.
* ``page_accuracy``: citations naming a gold page / citations judged for page
  (``pages_judged``), over the answered answerable questions that have ``pages``.
* ``fragment_rate``: fragments / answers given (all questions not abstained).
* ``verbatim_rate``: answers given that are their cited passages word for word /
  answers given (the rest are the model's own verified phrasing).
* ``abstention_rate``: abstained / unanswerable questions.
* ``retrieval_*_recall_at_k`` (over answerable questions with retrieval results):
  *source*: a supporting source among the top-k; *fact*: every fact present in the
  concatenated top-k texts; the plain one needs both.
* ``mean_answer_words``: words in the answers that were not abstentions
  (citation markers like ``[1]`` are not words).
* latency percentiles (linear interpolation) of ``total_ms`` and ``ttft_ms`` over all questions.
* ``nli_support`` (only with a second judge): entailed / judged answers.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from rag.evaluation.dataset import EvalItem
from rag.text import normalize
from rag.types import Answer, Citation

MAX_CITATION_CHARS = 2000

# Verdict kinds, each explaining one way a question failed.
WRONG_ANSWER = "wrong_answer"
MISSING_FACT = "missing_fact"
MISSING_CITATION = "missing_citation"
UNSUPPORTED_FACT = "unsupported_fact"
IMPRECISE_CITATION = "imprecise_citation"
ABSTAINED_ON_ANSWERABLE = "abstained_on_answerable"
ANSWERED_UNANSWERABLE = "answered_unanswerable"
NLI_NOT_ENTAILED = "nli_not_entailed"
PAGE_MISMATCH = "page_mismatch"  # information only
FRAGMENT = "fragment"  # information only

# Reasons a citation is imprecise.
WRONG_SOURCE = "wrong source"
TOO_LONG = "too long"
NO_GOLD_FACT = "no gold fact"

_MARKER = re.compile(r"\s*\[\d+\]")
_SENTENCE_END = re.compile(r"[.!?][)\]\"'”’]*$")


@dataclass(frozen=True)
class Passage:
    """A retrieved chunk, as far as scoring cares."""

    source: str
    text: str


@dataclass(frozen=True)
class Verdict:
    kind: str
    detail: str


@dataclass(frozen=True)
class CitationVerdict:
    marker: int
    source: str
    chars: int
    precise: bool
    reasons: tuple[str, ...] = ()
    page: int | None = None
    on_page: bool | None = None  # None: the question has no gold pages


@dataclass(frozen=True)
class RetrievalVerdict:
    source_hit: bool
    facts_hit: bool

    @property
    def hit(self) -> bool:
        return self.source_hit and self.facts_hit


@dataclass(frozen=True)
class QuestionScore:
    id: str
    answerable: bool
    abstained: bool
    correct: bool
    cited: bool
    strict: bool
    citations: tuple[CitationVerdict, ...]
    verdicts: tuple[Verdict, ...]
    retrieval: RetrievalVerdict | None
    answer_words: int
    total_ms: float
    ttft_ms: float
    nli_entailed: bool | None = None
    fragment: bool = False
    verbatim: bool = False

    @property
    def failed(self) -> bool:
        return not self.strict

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["retrieval"] = None if self.retrieval is None else {**asdict(self.retrieval), "hit": self.retrieval.hit}
        return d


@dataclass(frozen=True)
class Metrics:
    questions: int
    answerable: int
    unanswerable: int
    strict: float
    correct: float | None
    citation_recall: float | None
    citation_precision: float | None
    citations_judged: int
    abstention_rate: float | None
    false_abstention_rate: float | None
    retrieval_recall_at_k: float | None
    retrieval_source_recall_at_k: float | None
    retrieval_fact_recall_at_k: float | None
    mean_answer_words: float | None
    total_ms_p50: float | None
    total_ms_p95: float | None
    ttft_ms_p50: float | None
    ttft_ms_p95: float | None
    nli_support: float | None = None
    nli_judged: int = 0
    page_accuracy: float | None = None
    pages_judged: int = 0
    fragment_rate: float | None = None
    verbatim_rate: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def contains(text: str, alias: str) -> bool:
    """Case-insensitive substring test after normalisation."""
    return normalize(alias) in normalize(text)


def fact_present(text: str, fact: Sequence[str]) -> bool:
    return any(contains(text, alias) for alias in fact)


def missing_facts(text: str, facts: Sequence[Sequence[str]]) -> list[Sequence[str]]:
    return [fact for fact in facts if not fact_present(text, fact)]


def strip_markers(text: str) -> str:
    """The text without citation markers like ``[1]``."""
    return _MARKER.sub("", text).strip()


def count_words(answer: str) -> int:
    return len(strip_markers(answer).split())


def is_fragment(answer: str) -> bool:
    """Whether the answer, markers removed, does not end a sentence (``.``, ``!``, ``?``,
    optionally followed by closing brackets or quotes)."""
    return not _SENTENCE_END.search(strip_markers(answer))


def is_verbatim(answer: Answer) -> bool:
    """Whether the answer, markers removed, is its cited passages copied word for
    word (rather than phrased by the model)."""
    if answer.abstained or not answer.citations:
        return False
    words = re.findall(r"\w+", normalize(strip_markers(answer.answer)))
    cited = re.findall(r"\w+", normalize(" ".join(c.text for c in answer.citations)))
    return words == cited


def _concat(texts: Sequence[str]) -> str:
    return "\n".join(texts)


def _fact_label(fact: Sequence[str]) -> str:
    return " / ".join(f"'{a}'" for a in fact)


def judge_citation(item: EvalItem, citation: Citation) -> CitationVerdict:
    reasons = []
    if citation.source not in item.supporting:
        reasons.append(WRONG_SOURCE)
    if len(citation.text) > MAX_CITATION_CHARS:
        reasons.append(TOO_LONG)
    if not any(fact_present(citation.text, fact) for fact in item.answers):
        reasons.append(NO_GOLD_FACT)
    on_page = citation.page in item.pages if item.pages else None
    return CitationVerdict(marker=citation.marker, source=citation.source, chars=len(citation.text),
                           precise=not reasons, reasons=tuple(reasons), page=citation.page, on_page=on_page)


def judge_retrieval(item: EvalItem, passages: Sequence[Passage], k: int) -> RetrievalVerdict:
    top = list(passages)[:k]
    return RetrievalVerdict(source_hit=any(p.source in item.supporting for p in top),
                            facts_hit=not missing_facts(_concat([p.text for p in top]), item.answers))


def _citation_detail(cv: CitationVerdict) -> str:
    why = []
    for reason in cv.reasons:
        if reason == WRONG_SOURCE:
            why.append(f"wrong source ({cv.source} is not a supporting source)")
        elif reason == TOO_LONG:
            why.append(f"too long ({cv.chars:,} > {MAX_CITATION_CHARS:,} characters)")
        else:
            why.append("no gold fact in the cited text")
    return f"[{cv.marker}] " + "; ".join(why)


def _page_detail(cv: CitationVerdict, pages: Sequence[int]) -> str:
    cited = "no page" if cv.page is None else f"page {cv.page}"
    gold = ", ".join(str(p) for p in pages)
    return f"[{cv.marker}] cites {cited}; the facts are on page(s) {gold}"


def _information(item: EvalItem, answer: Answer, judged: Sequence[CitationVerdict]) -> list[Verdict]:
    """Page mismatches and an unfinished answer: listed on failing questions, never a failure reason."""
    info = [Verdict(PAGE_MISMATCH, _page_detail(cv, item.pages)) for cv in judged if cv.on_page is False]
    if not answer.abstained and is_fragment(answer.answer):
        info.append(Verdict(FRAGMENT, "the answer ends mid-sentence"))
    return info


def _answerable_verdicts(item: EvalItem, answer: Answer) -> tuple[bool, bool, tuple[CitationVerdict, ...], list[Verdict]]:
    if answer.abstained:
        return False, False, (), [Verdict(ABSTAINED_ON_ANSWERABLE, "abstained on an answerable question")]
    verdicts: list[Verdict] = []
    missing = missing_facts(answer.answer, item.answers)
    correct = not missing
    if len(missing) == len(item.answers):
        verdicts.append(Verdict(WRONG_ANSWER, "no gold fact in the answer (expected "
                                + ", ".join(_fact_label(f) for f in item.answers) + ")"))
    elif missing:
        verdicts.append(Verdict(MISSING_FACT, "missing " + ", ".join(_fact_label(f) for f in missing)))
    cited = False
    if not answer.citations:
        verdicts.append(Verdict(MISSING_CITATION, "the answer has no citation"))
    elif correct:
        unsupported = missing_facts(_concat([c.text for c in answer.citations]), item.answers)
        cited = not unsupported
        if unsupported:
            verdicts.append(Verdict(UNSUPPORTED_FACT, "not in the cited passages: "
                                    + ", ".join(_fact_label(f) for f in unsupported)))
    judged = tuple(judge_citation(item, c) for c in answer.citations)
    verdicts += [Verdict(IMPRECISE_CITATION, _citation_detail(cv)) for cv in judged if not cv.precise]
    return correct, cited, judged, verdicts


def score_question(item: EvalItem, answer: Answer, retrieved: Sequence[Passage] | None = None,
                   k: int | None = None, nli_entailed: bool | None = None) -> QuestionScore:
    """Score one answer. ``retrieved`` (the search results) enables retrieval recall@k."""
    judged: tuple[CitationVerdict, ...] = ()
    if item.answerable:
        correct, cited, judged, verdicts = _answerable_verdicts(item, answer)
        strict = correct and cited and all(cv.precise for cv in judged)
        retrieval = None if retrieved is None else judge_retrieval(item, retrieved, k or len(retrieved))
    else:
        correct = cited = False
        verdicts = [] if answer.abstained else [Verdict(ANSWERED_UNANSWERABLE, "answered an unanswerable question")]
        strict = answer.abstained
        retrieval = None
    if nli_entailed is False:
        verdicts.append(Verdict(NLI_NOT_ENTAILED, "the cited passages do not entail the answer (NLI)"))
    if not strict:
        verdicts += _information(item, answer, judged)
    return QuestionScore(
        id=item.id, answerable=item.answerable, abstained=answer.abstained, correct=correct, cited=cited,
        strict=strict, citations=judged, verdicts=tuple(verdicts), retrieval=retrieval,
        answer_words=0 if answer.abstained else count_words(answer.answer),
        total_ms=float(answer.timings.total_ms), ttft_ms=float(answer.timings.ttft_ms), nli_entailed=nli_entailed,
        fragment=not answer.abstained and is_fragment(answer.answer), verbatim=is_verbatim(answer))


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0..100) by linear interpolation between closest ranks."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def _rate(num: int, den: int) -> float | None:
    return num / den if den else None


def aggregate(scores: Sequence[QuestionScore]) -> Metrics:
    """Aggregate metrics over all scored questions (see the module docstring)."""
    ans = [s for s in scores if s.answerable]
    unans = [s for s in scores if not s.answerable]
    answered = [s for s in ans if not s.abstained]
    judged = [cv for s in answered for cv in s.citations]
    paged = [cv.on_page for cv in judged if cv.on_page is not None]
    given = [s for s in scores if not s.abstained]
    with_retrieval = [s.retrieval for s in ans if s.retrieval is not None]
    words = [s.answer_words for s in given]
    total = [s.total_ms for s in scores]
    ttft = [s.ttft_ms for s in scores]
    nli = [s.nli_entailed for s in scores if s.nli_entailed is not None]
    return Metrics(
        questions=len(scores), answerable=len(ans), unanswerable=len(unans),
        strict=_rate(sum(s.strict for s in scores), len(scores)) or 0.0,
        correct=_rate(sum(s.correct for s in ans), len(ans)),
        citation_recall=_rate(sum(s.cited for s in ans), len(ans)),
        citation_precision=_rate(sum(cv.precise for cv in judged), len(judged)),
        citations_judged=len(judged),
        abstention_rate=_rate(sum(s.abstained for s in unans), len(unans)),
        false_abstention_rate=_rate(sum(s.abstained for s in ans), len(ans)),
        retrieval_recall_at_k=_rate(sum(r.hit for r in with_retrieval), len(with_retrieval)),
        retrieval_source_recall_at_k=_rate(sum(r.source_hit for r in with_retrieval), len(with_retrieval)),
        retrieval_fact_recall_at_k=_rate(sum(r.facts_hit for r in with_retrieval), len(with_retrieval)),
        mean_answer_words=sum(words) / len(words) if words else None,
        total_ms_p50=percentile(total, 50), total_ms_p95=percentile(total, 95),
        ttft_ms_p50=percentile(ttft, 50), ttft_ms_p95=percentile(ttft, 95),
        nli_support=_rate(sum(nli), len(nli)), nli_judged=len(nli),
        page_accuracy=_rate(sum(paged), len(paged)), pages_judged=len(paged),
        fragment_rate=_rate(sum(s.fragment for s in given), len(given)),
        verbatim_rate=_rate(sum(s.verbatim for s in given), len(given)),
    )
