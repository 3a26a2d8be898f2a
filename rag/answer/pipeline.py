"""The answering pipeline, a straight line of stages that hand typed objects on:

1. ``rag.answer.question.analyse``: the question -> ``Question`` (once);
2. ``HybridRetriever.retrieve``: -> ``SearchResult`` (chunks and their evidence units);
3. ``rag.answer.selection.select``: -> ``Selection`` (a pure function of the question, the
   retrieved material and the fitted ``SelectionPolicy``): abstain, or the units to cite;
4. ``rag.answer.drafting``: the model phrases the answer, a word at a time checked
   against the evidence;
5. ``Composer``: the answer, a sentence at a time: the draft's sentences that
   hold, then the cited units that carry what the draft left out (all of them when
   no draft sentence holds); every sentence with ``[n]`` markers naming verbatim
   passages. A sentence is final as soon as it is kept (``FinalText``).

Citations are correct by construction: markers are added here, never written by
the model, and each names one of the selected units."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from rag.ingest.chunking import Span, split_sentences
from rag.answer.drafting import WHOLE, Drafter, clean_draft, code_terms, key_terms
from rag.errors import EmptyQuestionError, IndexEmptyError
from rag.answer.followup import Rewrite, Turn, retrieval_query, rewrites, standalone
from rag.answer.generation import Generator
from rag.answer.question import Question, analyse
from rag.answer.retrieval import HybridRetriever, SearchResult
from rag.answer.selection import Candidate, Selection, SelectionPolicy, UnitRanker, select
from rag.text import tokens
from rag.types import Answer, AnswerEvent, AnswerStarted, Citation, FinalText, StreamEvent, Timings, TokenEvent

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
                    round(unit.probability, 4), r.section, r.page, r.title, r.ocr)


class Composer:
    """The answer's text from the model's draft, a sentence at a time, so that what
    is final is known before the draft ends (an OpenAI stream cannot take text back).

    A draft sentence is kept when it is whole, every word of it is the evidence's or
    the question's (``Drafter`` stops at the first that is not), it says something
    beyond the question, it keeps every name, number and code token of the units it
    draws on (those it shares words with beyond the question; all units if none),
    and every sentence before it was kept. It is final once the next sentence has
    begun (or, the last one, once the draft has ended); it cites the units it draws
    on, and the last kept sentence also every unit the draft covers that no
    sentence drew on. Then the evidence completes the answer: each unit with a name,
    number or code token that no kept sentence has is added as sentences of its
    own, citing itself; with no kept sentence, every unit is (the answer is then the
    evidence itself)."""

    def __init__(self, question: str, citations: Sequence[Citation]) -> None:
        self.question = question
        self.citations = list(citations)
        self._asked = set(tokens(question))
        self._words = [set(tokens(c.text)) for c in self.citations]
        self._allowed = self._asked.union(*self._words)
        self._kept: list[str] = []  # the kept draft sentences, without markers
        self._cited: set[int] = set()  # markers the kept sentences carry
        self._last: tuple[str, list[int]] | None = None  # the last kept sentence, held until the draft ends
        self._closed = False  # no later draft sentence is kept
        self._finished = False
        self.parts: list[str] = []  # the final parts of the text, in order

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def feed(self, draft: str, ended: bool = False) -> list[str]:
        """The draft so far (``ended``: all of it) -> the parts that became final."""
        new: list[str] = []
        if not self._closed:
            sentences = [span.text.strip() for span in split_sentences(clean_draft(draft))]
            if sentences[:len(self._kept)] != self._kept:  # the split moved: keep what is final, no more
                self._closed, sentences = True, []
            for sentence in sentences[len(self._kept):len(sentences) if ended else -1]:
                markers = self._draws_on(sentence)
                if markers is None:
                    self._closed = True
                    break
                if self._last:  # it was not the last sentence after all
                    new.append(self._add(with_marker(*self._last)))
                self._kept.append(sentence)
                self._cited.update(markers)
                self._last = (sentence, markers)
        return new + (self.finish() if ended else [])

    def finish(self) -> list[str]:
        """The end of the draft: the last kept sentence, then the units that complete
        the answer (see the class). Nothing is added after this."""
        if self._finished:
            return []
        self._closed = self._finished = True
        said = " ".join(self._kept)
        got = set(tokens(said))
        missing = [c for c in self.citations if not self._kept or key_terms(c.text, self.question) - got
                   or any(term not in said for term in code_terms(c.text, self.question))]
        new = []
        if self._last:
            sentence, markers = self._last
            added = {c.marker for c in missing}
            covered = {c.marker for c in self.citations} - self._cited - added
            new.append(self._add(with_marker(sentence, sorted(set(markers) | covered))))
        return new + [self._add(as_sentence(c.text, [c.marker])) for c in missing]

    def _draws_on(self, sentence: str) -> list[int] | None:
        """The markers of the units ``sentence`` draws on; None if it is not kept."""
        got = set(tokens(sentence))
        own = got - self._asked
        if not WHOLE.search(sentence) or not got <= self._allowed or not own:
            return None
        units = [c for c, words in zip(self.citations, self._words) if own & words] or self.citations
        for c in units:
            if key_terms(c.text, self.question) - got or \
                    any(term not in sentence for term in code_terms(c.text, self.question)):
                return None
        return [c.marker for c in units]

    def _add(self, part: str) -> str:
        text = f" {part}" if self.parts else part
        self.parts.append(text)
        return text


class AnswerPipeline:
    def __init__(self, retriever: HybridRetriever, policy: SelectionPolicy,
                 generator: Callable[[], Generator] | None, model_name: str, max_tokens: int = 64,
                 max_question_chars: int = 1000,
                 readers: Callable[[], Mapping[str, UnitRanker]] | None = None) -> None:
        """``generator``/``readers`` (the policy's stages' readers of units, by signal):
        called when first needed (they load models)."""
        self.retriever = retriever
        self.policy = policy
        self._readers = readers
        self._generator = generator
        self.model_name = model_name
        self.max_tokens = max_tokens
        self.max_question_chars = max_question_chars
        # Called with each standalone question (no history) and its selection: how the
        # evaluation reads the evidence ranking without selecting a second time.
        self.on_selection: Callable[[str, Selection], None] | None = None

    def ask(self, question: str, k: int = 5, history: Sequence[Turn] = (),
            sources: frozenset[str] | None = None, instructions: str = "") -> Answer:
        final: Answer | None = None
        for event in self.stream(question, k, history, sources, instructions):
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
        return analysed, self._search(analysed, k, sources)

    def _search(self, analysed: Question, k: int, sources: frozenset[str] | None) -> SearchResult:
        result = self.retriever.retrieve(analysed.query, k, statement=analysed.statement, sources=sources)
        if not result.hits and self.retriever.store.count() == 0:  # counted only when nothing was found
            raise IndexEmptyError("the index is empty: add documents first with 'rag ingest PATH'")
        return result

    def _select(self, analysed: Question, result: SearchResult) -> Selection:
        return select(analysed, result, self.policy, self._readers() if self._readers else None)

    def readings(self, question: str, k: int, history: Sequence[Turn],
                 sources: frozenset[str] | None = None) -> list[tuple[Rewrite, Question, Selection]]:
        """Stages 1-3 for each way of reading a follow-up (``rag.answer.followup.rewrites``): how
        ``eval/validate_followup.py`` compares the rules' reading with the others."""
        out = []
        for rewrite in rewrites(prepare_question(question, self.max_question_chars), history):
            analysed = analyse(rewrite.text, rewrite.query)
            out.append((rewrite, analysed, self._select(analysed, self._search(analysed, k, sources))))
        return out

    def decide(self, question: str, k: int, history: Sequence[Turn] = (),
               sources: frozenset[str] | None = None) -> tuple[str, Selection, float]:
        """Stages 1-3: the question as searched (a follow-up made standalone), the
        selection, and their time (ms)."""
        t0 = time.perf_counter()
        analysed, result = self.retrieve(question, k, history, sources)
        selection = self._select(analysed, result)
        if self.on_selection is not None and not history:
            self.on_selection(question, selection)
        return analysed.text, selection, (time.perf_counter() - t0) * 1000

    def stream(self, question: str, k: int = 5, history: Sequence[Turn] = (),
               sources: frozenset[str] | None = None, instructions: str = "") -> Iterator[StreamEvent]:
        """The answer's events (see ``rag.types``). ``instructions``: the caller's own
        instructions for the model (an OpenAI client's system messages), given to it
        after the pipeline's; the answer is verified all the same."""
        t0 = time.perf_counter()
        asked = prepare_question(question, self.max_question_chars)  # (warns once if truncated)
        q, selection, retrieval_ms = self.decide(asked, k, history, sources)
        timings = Timings(retrieval_ms=retrieval_ms)
        yield AnswerStarted(q)
        first: list[float] = []

        def emit(text: str) -> TokenEvent:
            if not first:
                first.append(time.perf_counter())
            return TokenEvent(text)

        if not selection.answerable:
            log.info("abstaining: %s", "; ".join(selection.reasons))
            yield emit(ABSTAIN_TEXT)
            yield FinalText(ABSTAIN_TEXT)
            timings.ttft_ms = timings.total_ms = (time.perf_counter() - t0) * 1000
            yield AnswerEvent(Answer(asked, ABSTAIN_TEXT, True, [], timings, self.model_name, q))
            return

        citations = [citation(i + 1, unit) for i, unit in enumerate(selection.evidence)]
        composer = Composer(q, citations)
        streamed: list[str] = []
        shown = ""
        if self._generator is not None:
            units = [c.text for c in citations]
            for piece in Drafter(self._generator(), self.max_tokens).stream(q, units, streamed,
                                                                              instructions):
                shown += piece
                yield emit(piece)
                for part in composer.feed(shown):
                    yield FinalText(part)
            if streamed:  # emptied when the draft stopped at a word the evidence does not hold
                for part in composer.feed(shown, ended=True):
                    yield FinalText(part)
        for part in composer.finish():
            yield FinalText(part)
        text = composer.text
        if not shown:
            yield emit(text)
        elif text.startswith(shown) and len(text) > len(shown):
            yield emit(text[len(shown):])
        # otherwise the consumer shows the final answer in place of the rejected draft
        timings.ttft_ms = ((first[0] if first else time.perf_counter()) - t0) * 1000
        timings.total_ms = (time.perf_counter() - t0) * 1000
        yield AnswerEvent(Answer(asked, text, False, citations, timings, self.model_name, q))
