"""Sentence-level evidence selection and the answerability decision.

Retrieval gives chunks; answers cite sentences. Each sentence of the retrieved
chunks (plus the nearest sentences from a direct dense query) is scored on three
signals: dense similarity to the question, IDF-weighted coverage of the question's
content words (in the sentence, and in its chunk for context), and the rank of
its chunk. The answerability decision combines independent checks rather than one
similarity threshold:

* coverage: the question's informative words must be found around the evidence;
* named things: capitalised names and numbers the question asks about must occur
  in the evidence (``Llama 5``, ``Security Council``);
* answer type: ``when`` needs a date, ``how many``/``how much`` a number or an
  amount, ``who`` a name, and it must be one the question does not already give.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from rag.lexical import LexicalIndex
from rag.retrieval import SearchResult
from rag.store import Record, VectorStore
from rag.text import STOPWORDS, normalize, tokens

_MONTHS = ("january|february|march|april|may|june|july|august|september|october|november|december|"
           "jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec")
_DATE = re.compile(rf"\b(?:{_MONTHS})\b|\b(?:1[89]|20)\d\d\b|\b(?:monday|tuesday|wednesday|thursday|friday|"
                   r"saturday|sunday|yesterday|today|tomorrow)\b|\b(?:last|next|this)\s+(?:week|month|year)\b|"
                   r"\b\d{1,2}/\d{1,2}/\d{2,4}\b", re.I)
_EXACT_DATE = re.compile(rf"\b(?:{_MONTHS})\.?\s+\d{{1,2}}(?:st|nd|rd|th)?\b|\b\d{{1,2}}(?:st|nd|rd|th)?\s+(?:{_MONTHS})\b|"
                         r"\b(?:1[89]|20)\d\d\b|\b\d{1,2}/\d{1,2}/\d{2,4}\b|\b\d{4}-\d{2}-\d{2}\b", re.I)
_NUMBER = re.compile(r"\d|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|"
                     r"forty|fifty|hundreds?|thousands?|millions?|billions?|trillions?|dozens?|several|half)\b", re.I)
_AMOUNT = re.compile(r"[$€£¥]\s?\d|\b\d[\d,.]*\s*(?:dollars?|euros?|pounds?|usd|eur|million|billion|trillion|%|"
                     r"percent)\b", re.I)
_NAME = re.compile(r"\b[A-Z][a-zA-Z]+(?:[-'’][A-Za-z]+)?\b")

QUESTION_WORDS = {"who", "whom", "whose", "what", "which", "when", "where", "why", "how", "is", "are", "was",
                  "were", "do", "does", "did", "can", "could", "will", "would", "should", "has", "have", "had",
                  "the", "a", "an", "and", "in", "on", "of", "for", "to", "according", "name", "list", "tell"}


@dataclass(frozen=True)
class Evidence:
    record: Record
    chunk_score: float
    score: float
    dense: float
    coverage: float
    context_coverage: float


@dataclass
class Decision:
    answerable: bool
    evidence: list[Evidence]
    reasons: list[str] = field(default_factory=list)


def answer_type(question: str) -> str | None:
    q = normalize(question)
    if re.match(r"^(?:and\s+|so\s+)?(?:when\b|what (?:date|day|year|month|time)\b|on what (?:date|day)\b|"
                r"in what (?:year|month)\b|which (?:date|day|year|month)\b|by when\b)", q):
        return "date"
    if re.search(r"\bhow (?:much|many)\b|\bwhat (?:percentage|share|amount|number|price|sum)\b", q):
        return "amount" if re.search(r"\bhow much\b.*\b(?:pay|paid|paying|cost|worth|spend|price|fund|earn)|"
                                     r"\bwhat (?:amount|price|sum)\b", q) else "number"
    if re.match(r"^(?:and\s+)?(?:who|whom|whose)\b", q):
        return "name"
    return None


def has_type(text: str, kind: str | None, question: str) -> bool:
    """Does ``text`` hold an answer of ``kind`` that the question does not already contain?"""
    if kind is None:
        return True
    qn = normalize(question)
    if kind == "date":
        return any(m.group().lower() not in qn for m in _DATE.finditer(text))
    if kind == "amount":
        return any(m.group().lower() not in qn for m in _AMOUNT.finditer(text))
    if kind == "number":
        return any(m.group().lower() not in qn for m in _NUMBER.finditer(text))
    if kind == "name":
        return any(m.group().lower() not in qn for m in _NAME.finditer(text) if m.start() > 0)
    return True


def is_heading(text: str) -> bool:
    """A title or heading line rather than a sentence: no closing punctuation and
    short, or mostly capitalised words."""
    ws = text.split()
    if not ws:
        return True
    capital = sum(1 for w in ws if w[:1].isupper()) / len(ws)
    closed = text.rstrip()[-1:] in ".!?\"”’)"
    return not closed and (len(ws) <= 8 or capital >= 0.5)


_INJECTION = re.compile(
    r"\b(?:ignore|disregard|forget|override)\b.{0,40}\b(?:instructions?|prompts?|rules|context|everything)\b|"
    r"\b(?:system|assistant|developer)\s*(?:prompt)?\s*:|<\|?(?:im_start|system|assistant)|\[/?inst\]|"
    r"\byou (?:are now|must now|will now|should now|must always)\b|\bfrom now on\b|"
    r"\b(?:always|only)\s+(?:answer|reply|respond|say|output)\b|"
    r"^\s*(?:answer|reply|respond|say|output|print)\b.{0,30}\b(?:with|only|instead)\b|"
    r"\b(?:must|should) be (?:reported|answered|given) as\b|\bnew instructions?\b|"
    r"\bdo not (?:cite|mention|follow)\b|\bjailbreak\b|\bpretend (?:to be|you are)\b",
    re.I)


def looks_like_injection(text: str) -> bool:
    """Sentences that address the model instead of stating facts are never evidence."""
    return bool(_INJECTION.search(text))


def type_bonus(text: str, kind: str | None) -> float:
    """Prefer exact dates for date questions (a weekday is a weaker answer)."""
    if kind == "date" and _EXACT_DATE.search(text):
        return 0.1
    return 0.0


def question_entities(question: str) -> list[str]:
    """Capitalised names and numbers the question mentions (not its first word)."""
    q = question.strip()
    found: list[str] = []
    for m in re.finditer(r"(?:[A-Z][\w’'&.-]*|\d[\w.,]*)(?:\s+(?:of\s+|the\s+)?(?:[A-Z][\w’'&.-]*|\d[\w.,]*))*", q):
        phrase = m.group().strip(" .,'’")
        first = m.start() == 0 or q[:m.start()].strip() == "" or q[:m.start()].rstrip().endswith(("\"", "“"))
        words_ = phrase.split()
        if first:
            while words_ and words_[0].lower() in QUESTION_WORDS:
                words_ = words_[1:]
            if len(words_) == 0 or (len(words_) == 1 and m.start() == 0 and not words_[0][0].isdigit()
                                    and words_[0].lower() in STOPWORDS):
                continue
        if words_:
            found.append(" ".join(words_))
    return found


def _entity_present(entity: str, text_norm: str, text_tokens: set[str]) -> bool:
    ent = normalize(entity).replace(".", "")
    if ent in text_norm.replace(".", ""):
        return True
    ent_tokens = [t for t in tokens(entity)]
    return bool(ent_tokens) and all(t in text_tokens for t in ent_tokens)


class EvidenceSelector:
    def __init__(self, store: VectorStore, min_coverage: float = 0.5, min_support: float = 0.9,
                 max_evidence: int = 1) -> None:
        self.store = store
        self.min_coverage = min_coverage
        self.min_support = min_support
        self.max_evidence = max_evidence

    @staticmethod
    def coverage(q_tokens: list[str], text_tokens: set[str], lex: LexicalIndex) -> float:
        if not q_tokens:
            return 0.0
        weights = [lex.idf(t) for t in q_tokens]
        got = sum(w for t, w in zip(q_tokens, weights) if t in text_tokens)
        return got / sum(weights)

    def candidates(self, result: SearchResult) -> list[Evidence]:
        hits = result.hits + result.extra
        chunk_rank = {h.chunk_id: 1.0 / (i + 1) for i, h in enumerate(hits)}
        records, vectors = self.store.sentences_of(list(chunk_rank))
        by_pos = {(str(r.metadata.get("chunk_id")), int(r.metadata.get("index", 0))): r for r in records}
        q_tokens = list(dict.fromkeys(tokens(result.query)))
        lex = result.lexical
        tok_cache = {r.id: set(tokens(r.text)) for r in records}
        dense = vectors @ result.query_vector if len(records) else np.zeros(0)
        kind = answer_type(result.query)
        out = []
        for rec, d in zip(records, dense):
            if looks_like_injection(rec.text):
                continue
            cid, idx = str(rec.metadata.get("chunk_id")), int(rec.metadata.get("index", 0))
            s_tok = tok_cache[rec.id]
            window = set(s_tok)
            for j in (idx - 1, idx + 1):
                if (cid, j) in by_pos:
                    window |= tok_cache[by_pos[(cid, j)].id]
            cov = self.coverage(q_tokens, s_tok, lex)
            win_cov = self.coverage(q_tokens, window, lex)
            prior = chunk_rank.get(cid, 0.0)
            score = 0.4 * float(d) + 0.25 * cov + 0.3 * win_cov + 0.05 * prior + type_bonus(rec.text, kind)
            if is_heading(rec.text):
                score -= 0.15
            out.append(Evidence(rec, prior, score, float(d), cov, win_cov))
        out.sort(key=lambda e: -e.score)
        return out

    def decide(self, result: SearchResult) -> Decision:
        cands = self.candidates(result)
        if not cands:
            return Decision(False, [], ["nothing retrieved"])
        question = result.query
        kind = answer_type(question)
        typed = [c for c in cands if has_type(c.record.text, kind, question)]
        reasons: list[str] = []
        if not typed:
            return Decision(False, [], [f"no {kind} in the evidence"])
        context = " ".join(h.text for h in result.hits + result.extra)
        ctx_norm, ctx_tokens = normalize(context), set(tokens(context))
        missing = [e for e in question_entities(question) if not _entity_present(e, ctx_norm, ctx_tokens)]
        if missing:
            reasons.append(f"not in the corpus: {', '.join(missing)}")
        # Two signals must agree: the question's informative words are found around
        # the sentence (coverage) and the sentence means something close (dense).
        # Well-covered candidates come first; paraphrases pass on the sum.
        strong = [c for c in typed[:3] if c.context_coverage >= self.min_coverage and
                  c.context_coverage + c.dense >= self.min_support]
        weak = [c for c in typed[:3] if c.context_coverage >= 0.25 and
                c.context_coverage + c.dense >= self.min_support]
        covered = strong or weak
        if not covered:
            reasons.append(f"question terms not covered ({typed[0].context_coverage:.2f}, "
                           f"similarity {typed[0].dense:.2f})")
        if reasons:
            return Decision(False, typed[:1], reasons)
        best = covered[0]
        chosen = [best]
        for c in typed:
            if c is best:
                continue
            if len(chosen) >= self.max_evidence:
                break
            # a second sentence only from the same document, as strong as the first
            if c.score >= best.score - 0.03 and c.coverage >= best.coverage * 0.9 and \
                    c.record.metadata.get("source") == best.record.metadata.get("source"):
                chosen.append(c)
        return Decision(True, chosen, [])
