"""The answering pipeline, a straight line of stages that hand typed objects on:

1. ``rag.question.analyse``: the question -> ``Question`` (once);
2. ``HybridRetriever.retrieve``: -> ``SearchResult`` (chunks and their evidence units);
3. ``rag.selection.select``: -> ``Selection`` (a pure function of the question, the
   retrieved material and the fitted ``SelectionPolicy``): abstain, or the units to cite;
4. ``rag.drafting``: the model phrases the answer; the draft is verified;
5. here: the answer, every sentence with ``[n]`` markers naming verbatim passages
   (the verified draft, or else the cited units themselves).

Citations are correct by construction: markers are added here, never written by
the model, and each names one of the selected units."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from rag.chunking import Span, split_sentences
from rag.drafting import Drafter, clean_draft, verify_draft
from rag.errors import EmptyQuestionError, IndexEmptyError
from rag.followup import Turn, retrieval_query, standalone
from rag.generation import Generator
from rag.question import Question, analyse
from rag.retrieval import HybridRetriever, SearchResult
from rag.selection import Candidate, Selection, SelectionPolicy, select
from rag.text import tokens
from rag.types import Answer, AnswerEvent, Citation, StreamEvent, Timings, TokenEvent

log = logging.getLogger(__name__)

ABSTAIN_TEXT = "The documents do not contain an answer to this question."

def prepare_question(question: str, max_chars: int) -> str:
    q = " ".join(question.split())
    if not q:
        raise EmptyQuestionError("the question is empty")
    if len(q) > max_chars:
        log.warning("question of %d characters truncated to %d", len(q), max_chars)
        q = q[:max_chars].rsplit(" ", 1)[0] or q[:max_chars]
    return q


def with_marker(sentence: str, markers: Sequence[int]) -> str:
    tag = " ".join(f"[{m}]" for m in markers)
    s = sentence.rstrip()
    m = re.search(r"[.!?]+[\"'”’)]*$", s)
    if m and not re.search(r"[\"'”’)]$", s):
        return f"{s[:m.start()]} {tag}{s[m.start():]}"
    return f"{s} {tag}"


def as_sentence(unit: str, markers: Sequence[int]) -> str:
    """A cited unit as whole sentences of the answer: whitespace collapsed, each
    sentence with the markers before its final punctuation (a unit without any,
    such as a code line, is closed with a period after the markers)."""
    flat = " ".join(unit.split())
    out = []
    for sentence in split_sentences(flat) or [Span(0, len(flat), flat)]:
        text = with_marker(sentence.text, markers)
        out.append(text if re.search(r"[.!?][\"'”’)\]]*$", text) else text + ".")
    return " ".join(out)


def citation(marker: int, unit: Candidate) -> Citation:
    r = unit.record
    return Citation(marker, r.source, str(r.metadata.get("chunk_id", "")), r.start, r.end, r.text,
                    round(unit.probability, 4), r.section, r.page, r.title)


class AnswerPipeline:
    def __init__(self, retriever: HybridRetriever, policy: SelectionPolicy,
                 generator: Callable[[], Generator] | None, model_name: str, max_tokens: int = 64,
                 max_question_chars: int = 1000) -> None:
        self.retriever = retriever
        self.policy = policy
        self._generator = generator
        self.model_name = model_name
        self.max_tokens = max_tokens
        self.max_question_chars = max_question_chars

    def ask(self, question: str, k: int = 5, history: Sequence[Turn] = (),
            sources: frozenset[str] | None = None) -> Answer:
        final: Answer | None = None
        for event in self.stream(question, k, history, sources):
            if isinstance(event, AnswerEvent):
                final = event.answer
        assert final is not None
        return final

    def retrieve(self, question: str, k: int, history: Sequence[Turn] = (),
                 sources: frozenset[str] | None = None) -> tuple[Question, SearchResult]:
        """Stages 1-2: the analysed question and what retrieval found for it (also
        what ``eval/fit_policy.py`` fits the policy on); ``sources``: only these documents."""
        q = prepare_question(question, self.max_question_chars)
        analysed = analyse(standalone(q, history), retrieval_query(q, history))
        result = self.retriever.retrieve(analysed.query, k, statement=analysed.statement, sources=sources)
        if not result.hits and self.retriever.store.count() == 0:  # counted only when nothing was found
            raise IndexEmptyError("the index is empty: add documents first with 'rag ingest PATH'")
        return analysed, result

    def decide(self, question: str, k: int, history: Sequence[Turn] = (),
               sources: frozenset[str] | None = None) -> tuple[str, Selection, float]:
        """Stages 1-3: the question as searched (a follow-up made standalone), the
        selection, and their time (ms)."""
        t0 = time.perf_counter()
        analysed, result = self.retrieve(question, k, history, sources)
        selection = select(analysed, result, self.policy)
        return analysed.text, selection, (time.perf_counter() - t0) * 1000

    def stream(self, question: str, k: int = 5, history: Sequence[Turn] = (),
               sources: frozenset[str] | None = None) -> Iterator[StreamEvent]:
        t0 = time.perf_counter()
        asked = prepare_question(question, self.max_question_chars)  # (warns once if truncated)
        q, selection, retrieval_ms = self.decide(asked, k, history, sources)
        timings = Timings(retrieval_ms=retrieval_ms)
        first: list[float] = []

        def emit(text: str) -> TokenEvent:
            if not first:
                first.append(time.perf_counter())
            return TokenEvent(text)

        if not selection.answerable:
            log.info("abstaining: %s", "; ".join(selection.reasons))
            yield emit(ABSTAIN_TEXT)
            timings.ttft_ms = timings.total_ms = (time.perf_counter() - t0) * 1000
            yield AnswerEvent(Answer(asked, ABSTAIN_TEXT, True, [], timings, self.model_name, q))
            return

        citations = [citation(i + 1, unit) for i, unit in enumerate(selection.evidence)]
        streamed: list[str] = []
        shown = ""
        text = None
        if self._generator is not None:
            units = [c.text for c in citations]
            for piece in Drafter(self._generator(), self.max_tokens).stream(q, units, streamed):
                shown += piece
                yield emit(piece)
            draft = clean_draft("".join(streamed))
            if streamed and verify_draft(draft, " ".join(units), q):
                text = with_marker(draft, [c.marker for c in citations])
        if text is None:
            text = " ".join(as_sentence(c.text, [c.marker]) for c in citations)
        if not shown:
            yield emit(text)
        elif text.startswith(shown) and len(text) > len(shown):
            yield emit(text[len(shown):])
        # otherwise the consumer shows the final answer in place of the rejected draft
        timings.ttft_ms = ((first[0] if first else time.perf_counter()) - t0) * 1000
        timings.total_ms = (time.perf_counter() - t0) * 1000
        yield AnswerEvent(Answer(asked, text, False, citations, timings, self.model_name, q))
