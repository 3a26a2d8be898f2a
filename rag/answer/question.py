"""The question, analysed once into a typed object every later stage reads.

What is found here is generic English question form, not the wording of any
corpus: the expected kind of answer (from the interrogative), the content words
(stemmed, stopwords removed), the terms the question names verbatim (quoted
strings, code-like tokens, capitalised names and numbers; selection measures how
many of them are missing around each unit), how many things it asks, and the
question put as a statement.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rag.text import STOPWORDS, normalize, tokens

# answer kinds: the form of the expected answer
DATE, NUMBER, NAME, REASON, CHOICE, OTHER, POLAR = "date", "number", "name", "reason", "choice", "other", "polar"
KINDS = (DATE, NUMBER, NAME, REASON, CHOICE, OTHER, POLAR)

_DATE_Q = re.compile(r"\b(?:when|what (?:date|day|year|month|time)|(?:in|on|from|since|until|by) (?:what|which) "
                     r"(?:date|day|year|month|release|version)|which (?:date|day|year|month))\b")
_NUMBER_Q = re.compile(r"\b(?:how (?:many|much|long|often|far|large|big|old|frequently)|what (?:percentage|share|"
                       r"amount|number|size|length|value|limit|maximum|minimum|price|sum)|which (?:number|value))\b")
_NAME_Q = re.compile(r"^(?:\W*\w+\W+){0,3}?(?:who|whom|whose)\b")
_REASON_Q = re.compile(r"\b(?:why|for what reason|what (?:reason|purpose))\b")
_CHOICE_Q = re.compile(r"\b(?:which|what)\b")
_POLAR_Q = re.compile(r"^(?:is|are|was|were|do|does|did|can|could|will|would|should|has|have|had|may|must)\b")

_QUOTED = re.compile(r"[\"“'‘`]([^\"”'’`]{2,60})[\"”'’`]")
# identifiers and API names: dotted or called or with underscores/backslashes, or mixed case
_CODE = re.compile(r"(?<![\w\\])(?:\\[A-Za-z@]+|[A-Za-z_][\w]*(?:\.[A-Za-z_]\w*)+(?:\(\))?|[A-Za-z_]\w*\(\)|"
                   r"[a-z]+_[a-z_0-9]+|--?[a-z][\w-]+|[a-z]+[A-Z]\w*)")
_NAME = re.compile(r"(?<!^)(?<![.?!]\s)\b[A-Z][\w’'&-]*(?:\s+[A-Z][\w’'&-]*)*")
_NUMBER = re.compile(r"\b\d[\d,.:]*\b")


@dataclass(frozen=True)
class Question:
    text: str  # the question as asked (whitespace normalised)
    query: str  # what retrieval searches for (a follow-up with its context)
    kind: str  # one of KINDS
    content: tuple[str, ...]  # stemmed content tokens, in order, no repeats
    terms: tuple[str, ...]  # names, numbers, quoted strings and code tokens the question gives verbatim
    parts: int  # how many things the question asks for (1 + conjoined asks)
    statement: str = ""  # the question without its interrogative opening: what an answer would state

    @property
    def norm(self) -> str:
        return normalize(self.text)


def answer_kind(text: str) -> str:
    q = normalize(text)
    if _REASON_Q.search(q):
        return REASON
    if _DATE_Q.search(q):
        return DATE
    if _NUMBER_Q.search(q):
        return NUMBER
    if _NAME_Q.search(q):
        return NAME
    if _POLAR_Q.match(q):
        return POLAR
    if _CHOICE_Q.search(q):
        return CHOICE
    return OTHER


def verbatim_terms(text: str) -> tuple[str, ...]:
    """Names, numbers, quoted strings and code-like tokens the question gives."""
    found: list[str] = []
    for pattern in (_QUOTED, _CODE, _NUMBER):
        for m in pattern.finditer(text):
            found.append((m.group(1) if m.re is _QUOTED else m.group()).strip(" .,;:?"))
    for m in _NAME.finditer(text.strip()):
        words = [w for w in m.group().split() if w.lower() not in STOPWORDS]
        if words:
            found.append(" ".join(words))
    out: list[str] = []
    for term in found:
        if len(term) > 1 and term not in out:
            out.append(term)
    return tuple(out)


def count_parts(text: str) -> int:
    """1 + the conjoined asks: ", and what …", "and which …", "which two …"."""
    q = normalize(text)
    parts = 1 + len(re.findall(r"(?:,|\band\b|;)\s*(?:what|which|who|whom|where|when|why|how|in what|on what|"
                               r"from which|for how)\b", q))
    m = re.search(r"\b(?:which|what|the) (two|three|four)\b|\b(two|three|four) [a-z]+s\b", q)
    if m:
        parts = max(parts, {"two": 2, "three": 3, "four": 4}[m.group(1) or m.group(2)])
    return min(parts, 4)


_OPENING = re.compile(r"^(?:(?:and|so|but|also|then)\s+)?(?:(?:in|on|at|from|for|to|by|with|of|under|since|until)\s+)?"
                      r"(?:what|which|who|whom|whose|when|where|why|how)(?:\s+(?:many|much|long|often|far|"
                      r"frequently|large|big|old|kind|sort|type))?(?P<noun>(?:\s+[\w-]+){0,2}?)\s+"
                      r"(?:is|are|was|were|do|does|did|can|could|will|would|should|has|have|had|may|must|might)\b\s*",
                      re.I)


def statement_of(text: str) -> str:
    """The question as the start of a statement: "How often are the archives
    updated?" -> "the archives updated", "Which kernel is it based on?" -> "it
    based on kernel"; unchanged when no opening is recognised."""
    m = _OPENING.match(text.strip())
    if not m:
        return text
    body = text.strip()[m.end():].rstrip(" ?")
    noun = m.group("noun").strip()
    return f"{body} {noun}".strip() if body else text


def analyse(text: str, query: str | None = None) -> Question:
    text = " ".join(text.split())
    return Question(text=text, query=query or text, kind=answer_kind(text),
                    content=tuple(dict.fromkeys(tokens(text))), terms=verbatim_terms(text),
                    parts=count_parts(text), statement=statement_of(text))
