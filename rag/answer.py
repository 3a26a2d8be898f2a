"""The answering pipeline: question -> evidence sentences -> short answer whose
every sentence carries ``[n]`` markers that point at verbatim passages.

Citations are correct by construction: markers are added by the pipeline, never
written by the model (a GBNF grammar forbids brackets), and each names one of the
evidence sentences selected for this question. The model only phrases the answer;
its words are checked against the evidence as they stream (every content word
must come from the evidence or the question) and once more at the end (the names
and numbers of the evidence must all be kept). A draft that fails either check is
replaced by the evidence sentences themselves."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from rag.errors import EmptyQuestionError, IndexEmptyError
from rag.evidence import Decision, Evidence, EvidenceSelector
from rag.generation import ANSWER_GRAMMAR, Generator
from rag.retrieval import HybridRetriever
from rag.text import tokens, words
from rag.types import Answer, AnswerEvent, Citation, StreamEvent, Timings, TokenEvent

log = logging.getLogger(__name__)

ABSTAIN_TEXT = "The documents do not contain an answer to this question."
SYSTEM_PROMPT = ("You answer questions from the evidence only. Reply with one short, complete sentence that "
                 "uses the words of the evidence. Do not add anything that is not in the evidence.")
ANSWER_PREFILL = "The answer is:"
# Lead-ins the model likes to write; cut from a draft, longest first.
_FILLER_STARTS = ("the answer is", "answer", "according to the evidence", "based on the evidence",
                  "the evidence says that", "the evidence states that", "the evidence shows that",
                  "the evidence says", "the evidence states", "the evidence shows")
_FILLER = re.compile(r"^\s*(?:" + "|".join(re.escape(f).replace(r"\ ", r"\s+") for f in _FILLER_STARTS)
                     + r")\s*[:,]?\s*", re.I)
_SCALE = re.compile(r"(?:hundred|thousand|million|billion|trillion|percent|dozen)s?")
_FOLLOWUP = re.compile(r"^\s*(?:and|also|what about|how about|so)\b|\b(?:they|them|their|theirs|it|its|those|"
                       r"these|he|she|his|her|this|that one|which of them)\b", re.I)


@dataclass(frozen=True)
class Turn:
    question: str
    answer: str


def prepare_question(question: str, max_chars: int) -> str:
    q = " ".join(question.split())
    if not q:
        raise EmptyQuestionError("the question is empty")
    if len(q) > max_chars:
        log.warning("question of %d characters truncated to %d", len(q), max_chars)
        q = q[:max_chars].rsplit(" ", 1)[0] or q[:max_chars]
    return q


def retrieval_query(question: str, history: Sequence[Turn]) -> str:
    """Follow-ups ("And which of them host it?") are searched together with the
    previous question, so pronouns find their referents."""
    if history and (_FOLLOWUP.search(question) or len(tokens(question)) <= 2):
        return f"{history[-1].question} {question}"
    return question


def with_marker(sentence: str, markers: Sequence[int]) -> str:
    tag = " ".join(f"[{m}]" for m in markers)
    s = sentence.rstrip()
    m = re.search(r"[.!?]+[\"'”’)]*$", s)
    if m and not re.search(r"[\"'”’)]$", s):
        return f"{s[:m.start()]} {tag}{s[m.start():]}"
    return f"{s} {tag}"


def key_terms(evidence: str, question: str) -> set[str]:
    """Names and numbers of the evidence the question does not already give."""
    q = set(tokens(question))
    keys: set[str] = set()
    ws = words(evidence)
    for i, w in enumerate(ws):
        if (w[:1].isupper() and i > 0) or any(ch.isdigit() for ch in w) or _SCALE.fullmatch(w.lower()):
            keys.update(t for t in tokens(w) if t not in q)
    return keys


def supported_word(word: str, allowed: set[str]) -> bool:
    return all(t in allowed for t in tokens(word))


def verify_draft(draft: str, evidence: str, question: str) -> bool:
    got = set(tokens(draft))
    allowed = set(tokens(evidence)) | set(tokens(question))
    if not got or not got <= allowed:
        return False
    if not key_terms(evidence, question) <= got:
        return False
    return bool(got - set(tokens(question)))


def _may_start_filler(text: str) -> bool:
    """True while ``text`` could still grow into a filler prefix that must be cut
    (so only a first word like "The" or "According" is held back). The last word
    may still grow unless ``text`` ends with a space."""
    ws = [w.strip(":,").lower() for w in text.split()]
    if not ws:
        return True
    n = len(ws)
    for filler in _FILLER_STARTS:
        fw = filler.split()
        if text[-1].isspace():
            if fw[:n] == ws and n < len(fw):
                return True
        elif n <= len(fw) and fw[:n - 1] == ws[:-1] and fw[n - 1].startswith(ws[-1]):
            return True
    return False


def _release(pending: str) -> str | None:
    """The first text to stream from the reply so far, ``pending`` (its last word
    may be incomplete): None while it may still grow into a filler, or is nothing
    but a filler (so the first text streamed is always a word of the answer)."""
    if _may_start_filler(pending):
        return None
    out = clean_draft(pending)
    if not out:
        return None
    return out + (" " if pending[-1].isspace() else "")


def clean_draft(text: str) -> str:
    text = _FILLER.sub("", text.strip()).strip().strip('"“”')
    text = re.sub(r"\s+", " ", text)
    if text and text[0].islower():
        text = text[0].upper() + text[1:]
    return text


def build_messages(question: str, evidence: Sequence[Evidence]) -> list[dict[str, str]]:
    """The system prompt, the evidence and question, and a prefill that starts the
    reply at the answer itself (no lead-in to strip, so its first word can stream)."""
    ev = "\n".join(e.record.text for e in evidence)
    return [{"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": f"Evidence: {ev}\nQuestion: {question}"},
            {"role": "assistant", "content": ANSWER_PREFILL}]


class AnswerPipeline:
    def __init__(self, retriever: HybridRetriever, selector: EvidenceSelector,
                 generator: Callable[[], Generator] | None, model_name: str, max_tokens: int = 64,
                 max_question_chars: int = 1000) -> None:
        self.retriever = retriever
        self.selector = selector
        self._generator = generator
        self.model_name = model_name
        self.max_tokens = max_tokens
        self.max_question_chars = max_question_chars

    def ask(self, question: str, k: int = 5, history: Sequence[Turn] = ()) -> Answer:
        final: Answer | None = None
        for event in self.stream(question, k, history):
            if isinstance(event, AnswerEvent):
                final = event.answer
        assert final is not None
        return final

    def decide(self, question: str, k: int, history: Sequence[Turn] = ()) -> tuple[str, Decision, float]:
        q = prepare_question(question, self.max_question_chars)
        t0 = time.perf_counter()
        result = self.retriever.search(retrieval_query(q, history), k, per_ranker=2)
        if not result.hits and self.retriever.store.count() == 0:  # counted only when nothing was found
            raise IndexEmptyError("the index is empty: add documents first with 'rag ingest PATH'")
        decision = self.selector.decide(result)
        return q, decision, (time.perf_counter() - t0) * 1000

    def stream(self, question: str, k: int = 5, history: Sequence[Turn] = ()) -> Iterator[StreamEvent]:
        t0 = time.perf_counter()
        q, decision, retrieval_ms = self.decide(question, k, history)
        timings = Timings(retrieval_ms=retrieval_ms)
        first: list[float] = []

        def emit(text: str) -> TokenEvent:
            if not first:
                first.append(time.perf_counter())
            return TokenEvent(text)

        if not decision.answerable:
            log.info("abstaining: %s", "; ".join(decision.reasons))
            yield emit(ABSTAIN_TEXT)
            timings.ttft_ms = timings.total_ms = (time.perf_counter() - t0) * 1000
            yield AnswerEvent(Answer(q, ABSTAIN_TEXT, True, [], timings, self.model_name))
            return

        evidence = decision.evidence
        citations = [Citation(i + 1, e.record.source, str(e.record.metadata.get("chunk_id", "")),
                              e.record.start, e.record.end, e.record.text, round(e.score, 4))
                     for i, e in enumerate(evidence)]
        streamed: list[str] = []
        shown = ""
        text = None
        if self._generator is not None:
            for piece in self._draft(q, evidence, streamed):
                shown += piece
                yield emit(piece)
            draft = clean_draft("".join(streamed))
            ev_text = " ".join(e.record.text for e in evidence)
            if streamed and verify_draft(draft, ev_text, q):
                text = with_marker(draft, [c.marker for c in citations])
        if text is None:
            text = " ".join(with_marker(c.text, [c.marker]) for c in citations)
        if not shown:
            yield emit(text)
        elif text.startswith(shown) and len(text) > len(shown):
            yield emit(text[len(shown):])
        # otherwise the consumer shows the final answer in place of the rejected draft
        timings.ttft_ms = ((first[0] if first else time.perf_counter()) - t0) * 1000
        timings.total_ms = (time.perf_counter() - t0) * 1000
        yield AnswerEvent(Answer(q, text, False, citations, timings, self.model_name))

    def _draft(self, question: str, evidence: Sequence[Evidence], streamed: list[str]) -> Iterator[str]:
        """Stream the model's reply as it comes, once it cannot be a filler any
        more; stop at the first complete word the evidence does not support (the
        caller then falls back, and the consumer shows the final answer in place
        of what was streamed)."""
        assert self._generator is not None
        gen = self._generator()
        allowed = set(tokens(" ".join(e.record.text for e in evidence))) | set(tokens(question))
        reply = ""
        buf = ""  # the last word, which may still grow
        held = True  # hold the first words back until a filler prefix can be stripped
        pieces = gen.stream(build_messages(question, evidence), self.max_tokens, ANSWER_GRAMMAR)
        try:
            for piece in pieces:
                reply += piece
                parts = re.split(r"(\s+)", buf + piece)
                complete, buf = "".join(parts[:-1]), parts[-1]
                if held:  # the words of a filler need no support: check what is left once it is cut
                    out = _release(reply)
                    if out is None:
                        continue
                    held = False
                    complete = out[:len(out) - len(buf)]
                else:
                    out = piece
                if not all(supported_word(w, allowed) for w in complete.split()):
                    streamed.clear()
                    return
                streamed.append(out)
                yield out
            last = clean_draft(reply) if held else buf
            if not all(supported_word(w, allowed) for w in last.split()):
                streamed.clear()
                return
            if held:
                streamed[:] = [last]
                if last:
                    yield last
        finally:
            close = getattr(pieces, "close", None)
            if close:
                close()
