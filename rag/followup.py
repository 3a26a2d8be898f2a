"""Follow-up questions made standalone from the conversation, before retrieval.

A turn after the first often leans on the one before: a pronoun ("What did *he*
say…?"), an ellipsis ("And Scale AI?", "What about Japan?") or a bare fragment
("As of when?", "Why?"). ``standalone`` rewrites such a turn into a question that
can be searched and answered on its own, using only generic English: pronouns
take a name from the previous turn (he/she: the last word of the first name of two
or more words in the previous answer or question, as texts name people again; it: the first name the previous answer adds;
plural pronouns rarely point at a name and are left to retrieval), an
ellipsis takes the previous question with its first name replaced, and a fragment
is asked of the previous question. A turn that needs none of this is returned as
asked.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

PERSON = {"he", "she", "him", "his", "her", "hers"}
_PRONOUN = re.compile(r"\b(?:he|she|him|his|her|hers|it|its)\b", re.I)  # plural ones rarely point at a name
# a turn that leans on the one before: a pronoun or a demonstrative, or an opening "and"/"what about"
_LEANS = re.compile(r"^\s*(?:and|also|but|what about|how about|so)\b|\b(?:he|she|him|his|her|hers|it|its|they|"
                    r"them|their|theirs|this|that|these|those)\b", re.I)
_ELLIPSIS = re.compile(r"^\s*(?:and|but|also|what about|how about|and what about|and how about)\s+(.+?)[\s?.!]*$",
                       re.I)
# a capitalised name: one or more capitalised words (with their inner connectors)
_NAME = re.compile(r"\b[A-Z][\w’'&.-]*[\w’']?(?:\s+(?:of\s+|the\s+|and\s+)?[A-Z][\w’'&.-]*[\w’']?)*")
_OPENERS = re.compile(r"^(?:who|whom|whose|what|which|when|where|why|how|is|are|was|were|do|does|did|can|could|"
                      r"will|would|should|has|have|had|may|must|in|on|at|for|as|and|but|also|so)$", re.I)
_WEAK = {"as", "of", "in", "on", "at", "for", "to", "by", "from", "since", "until", "about", "with", "and", "or",
         "when", "where", "why", "how", "what", "which", "who", "whom", "whose", "that", "this", "then", "there",
         "was", "were", "is", "are", "did", "do", "does", "so"}
_SENTENCE_START = re.compile(r"(?:^|[.!?:;]\s+|[\"“(]\s*)$")


@dataclass(frozen=True)
class Turn:
    """One earlier exchange of a conversation."""

    question: str
    answer: str
    standalone: str = ""  # the question as it was searched ("" = as asked)

    @property
    def resolved(self) -> str:
        return self.standalone or self.question


def names(text: str) -> list[str]:
    """Capitalised names in ``text``, skipping a lone capitalised word that only
    starts a sentence ("In", "The", "Which", ...)."""
    out = []
    for m in _NAME.finditer(text):
        span = m.group().rstrip(".")
        words = span.split()
        if _SENTENCE_START.search(text[:m.start()]) and (len(words) == 1 or _OPENERS.match(words[0])
                                                         or words[0] in ("A", "An", "The")):
            if len(words) == 1:
                continue
            span = " ".join(words[1:])  # "Which European" -> "European", "A Meta spokesperson" -> "Meta"
        if span and not _OPENERS.match(span):
            out.append(span)
    return list(dict.fromkeys(out))


def _new_names(text: str, known: str) -> list[str]:
    seen = known.lower()
    return [n for n in names(text) if n.lower() not in seen]


def _antecedent(pronoun: str, previous: Turn) -> str | None:
    """The name a pronoun of the question most likely points to."""
    answer_names = _new_names(previous.answer, previous.resolved)
    question_names = names(previous.resolved)
    if pronoun.lower() in PERSON:
        people = [n for n in answer_names + question_names if len(n.split()) >= 2]
        return people[0].split()[-1] if people else None  # later mentions use the surname, as texts do
    return answer_names[0] if answer_names else None


def _is_fragment(question: str) -> bool:
    """A turn with no word of its own to search for ("As of when?", "Why?")."""
    return all(t in _WEAK for t in question.lower().replace("?", " ").split())


def standalone(question: str, history: Sequence[Turn]) -> str:
    """``question`` made self-contained with the conversation ``history`` (oldest first)."""
    if not history:
        return question
    previous = history[-1]
    before = previous.resolved.strip()
    ellipsis = _ELLIPSIS.match(question)
    if ellipsis:
        rest = ellipsis.group(1)
        mine = names(f"of {rest}")  # not a sentence start: "And Tidewater?" names Tidewater
        theirs = names(before)
        if mine and theirs:
            return re.sub(re.escape(theirs[0]), mine[0], before, count=1)
        return f"{before.rstrip('?')}, and {rest}?"
    if _is_fragment(question):
        return f"{question.rstrip(' ?')}: {before[:1].lower()}{before[1:]}"
    found = _PRONOUN.search(question)
    if found:
        name = _antecedent(found.group(), previous)
        if name:
            word = found.group().lower()
            replacement = f"{name}'s" if word in {"his", "its", "their", "theirs"} else name
            return question[:found.start()] + replacement + question[found.end():]
    return question


def retrieval_query(question: str, history: Sequence[Turn]) -> str:
    """What retrieval searches for: the standalone question, and while it still
    leans on the previous turn (a plural pronoun, "that work"), the previous
    question too (its referents' words)."""
    resolved = standalone(question, history)
    if history and _LEANS.search(resolved):
        return f"{resolved} {history[-1].resolved}"
    return resolved
