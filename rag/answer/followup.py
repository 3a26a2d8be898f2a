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

from rag.answer.question import _CODE, _QUOTED, verbatim_terms
from rag.text import tokens

PERSON = {"he", "she", "him", "his", "her", "hers"}
_PRONOUN = re.compile(r"\b(?:he|she|him|his|her|hers|it|its)\b", re.I)  # plural ones rarely point at a name
# a turn that leans on the one before: a pronoun or a demonstrative, or an opening "and"/"what about"
_LEANS = re.compile(r"^\s*(?:and|also|but|what about|how about|so)\b|\b(?:he|she|him|his|her|hers|it|its|they|"
                    r"them|their|theirs|this|that|these|those)\b", re.I)
_PLURAL = re.compile(r"\b(?:they|them|their|theirs|these|those)\b", re.I)  # points back at a set
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


def _new_code(text: str, known: str) -> list[str]:
    """Quoted strings and code tokens of ``text`` that ``known`` does not have ("`maxRedirects`")."""
    seen = known.lower()
    found = [m.group(1) if m.re is _QUOTED else m.group() for p in (_QUOTED, _CODE) for m in p.finditer(text)]
    return [t.strip(" .,;:") for t in dict.fromkeys(found) if len(t) > 2 and t.lower() not in seen]


def _antecedent(pronoun: str, previous: Turn) -> str | None:
    """The name a pronoun of the question most likely points to."""
    answer_names = _new_names(previous.answer, previous.resolved)
    question_names = names(previous.resolved)
    if pronoun.lower() in PERSON:
        people = [n for n in answer_names + question_names if len(n.split()) >= 2]
        return people[0].split()[-1] if people else None  # later mentions use the surname, as texts do
    return (_new_code(previous.answer, previous.resolved) + answer_names or [None])[0]


def _is_fragment(question: str) -> bool:
    """A turn with no word of its own to search for ("As of when?", "Why?")."""
    return all(t in _WEAK for t in question.lower().replace("?", " ").split())


def _align(rest: str, before: str) -> str | None:
    """An ellipsis whose last word the previous question has ("And response
    interceptors?" after "In what order do request interceptors run?"): the previous
    question with the words ending at that word replaced by the ellipsis."""
    words = rest.rstrip(" ?.!").split()
    if not 2 <= len(words) <= 4:
        return None
    head = words[-1].lower()
    found = [m for m in re.finditer(r"[\w'’.-]+", before) if m.group().lower().rstrip(".") == head]
    if len(found) != 1:
        return None
    spans = list(re.finditer(r"[\w'’.-]+", before[:found[0].start()]))
    start = spans[-(len(words) - 1)].start() if len(spans) >= len(words) - 1 else 0
    return before[:start] + " ".join(words) + before[found[0].end():]


def _own_term_before(question: str, end: int) -> bool:
    """Does the question name a thing of its own (a code token, a quoted string, a name
    not opening it) before ``end``?"""
    return any(not t.isdigit() for t in verbatim_terms(question[:end]))


def standalone(question: str, history: Sequence[Turn]) -> str:
    """``question`` made self-contained with the conversation ``history`` (oldest first)."""
    if not history:
        return question
    previous = history[-1]
    before = previous.resolved.strip()
    ellipsis = _ELLIPSIS.match(question)
    if (ellipsis and _OPENERS.match(ellipsis.group(1).split()[0]) and len(ellipsis.group(1).split()) >= 3
            and not _PLURAL.search(ellipsis.group(1))):
        # "And which alliance will it join?": a question of its own after "and", resolved as one
        # ("And which of them …?" picks among what the previous turn named: an ellipsis)
        rest = ellipsis.group(1).rstrip(" ?.!") + "?"
        return standalone(rest[:1].upper() + rest[1:], history)
    if ellipsis:
        rest = ellipsis.group(1)
        mine = names(f"of {rest}")  # not a sentence start: "And Tidewater?" names Tidewater
        theirs = names(before)
        if mine and theirs:
            return re.sub(re.escape(theirs[0]), mine[0], before, count=1)
        aligned = _align(rest, before)
        if aligned:
            return aligned
        return f"{before.rstrip('?')}, and {rest}?"
    if _is_fragment(question):
        return f"{question.rstrip(' ?')}: {before[:1].lower()}{before[1:]}"
    found = _PRONOUN.search(question)
    if found and found.group().lower() not in PERSON and _own_term_before(question, found.start()):
        found = None  # "… a RewriteMap program … before killing it": "it" points inside the question
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


# --- candidate rewrites, for a fitted follow-up policy (rag.followup_policy) ---------------------

ASKED, RULE, JOINED, SWAP = "asked", "rule", "joined", "swap"
REWRITES = (ASKED, RULE, JOINED, SWAP)  # how a rewrite was made
MAX_SWAPS = 3  # referents tried in place of a pronoun or a swapped subject
# a word that points back: a pronoun, or a demonstrative with its noun ("this option", "that command")
_POINTER = re.compile(r"\b(?:(?:this|that|these|those)(?:\s+[a-z][\w-]*)?|it|its|they|them|their|he|she|him|his|her)"
                      r"\b", re.I)


@dataclass(frozen=True)
class Rewrite:
    """One way to read a follow-up: the question to answer and what to search for."""

    text: str
    query: str
    how: str  # one of REWRITES


@dataclass(frozen=True)
class Cues:
    """What the follow-up itself shows (the same for all its rewrites)."""

    leans: bool  # a pronoun or a demonstrative
    opener: bool  # "and …", "what about …"
    fragment: bool  # no word of its own to search for
    own: float  # its content words the previous turn does not have, up to 5, over 5
    terms: bool  # names, numbers or code tokens of its own


def cues(question: str, history: Sequence[Turn]) -> Cues:
    before = history[-1].resolved if history else ""
    seen = set(tokens(f"{before} {history[-1].answer}")) if history else set()
    own = [t for t in dict.fromkeys(tokens(question)) if t not in seen]
    mine = [t for t in verbatim_terms(question) if t.lower() not in before.lower()]
    return Cues(leans=bool(_LEANS.search(question)) and not _ELLIPSIS.match(question),
                opener=bool(_ELLIPSIS.match(question)), fragment=_is_fragment(question),
                own=min(len(own), 5) / 5, terms=bool(mine))


def _referents(previous: Turn) -> list[str]:
    """What a follow-up may point back to: the previous question's own terms and
    names, then those its answer adds."""
    asked = [*verbatim_terms(previous.resolved), *names(previous.resolved)]
    added = [t for t in [*verbatim_terms(previous.answer), *names(previous.answer)]
             if t.lower() not in previous.resolved.lower() and not t.isdigit()]
    out: list[str] = []
    for term in [*asked, *added]:
        if term.lower() not in (o.lower() for o in out) and not _OPENERS.match(term):
            out.append(term)
    return out


def _swaps(question: str, previous: Turn) -> list[str]:
    """Rewrites that put a referent of the previous turn in place of the follow-up's
    pointer word, or (an ellipsis) the follow-up's subject in place of one of the
    previous question's terms."""
    before = previous.resolved.strip()
    out: list[str] = []
    ellipsis = _ELLIPSIS.match(question)
    if ellipsis:
        rest = ellipsis.group(1)
        mine = [*verbatim_terms(rest), *names(f"of {rest}")] or [rest]
        for theirs in _referents(Turn(before, ""))[:MAX_SWAPS]:
            out.append(re.sub(re.escape(theirs), mine[0], before, count=1))
        return out
    found = _POINTER.search(question)
    if not found:
        return out
    word = found.group().split()[0].lower()
    for ref in _referents(previous)[:MAX_SWAPS]:
        replacement = f"{ref}'s" if word in {"its", "their", "his"} else ref
        out.append(question[:found.start()] + replacement + question[found.end():])
    return out


def rewrites(question: str, history: Sequence[Turn]) -> list[Rewrite]:
    """The ways to read ``question`` after ``history``: as asked, by the rules above
    (as ``standalone`` and ``retrieval_query`` make it), the rules' reading searched
    with the previous question, and referent swaps."""
    asked = Rewrite(question, question, ASKED)
    if not history:
        return [asked]
    before = history[-1].resolved.strip()
    rule = standalone(question, history)
    out = [asked]
    ruled = Rewrite(rule, retrieval_query(question, history), RULE)  # what the rules alone search
    if (ruled.text, ruled.query) != (question, question):
        out.append(ruled)
    # the previous question searched along, and said along where the rules changed nothing
    joined = rule if rule != question else f"{question.rstrip()} ({before.rstrip(' ?')})"
    out.append(Rewrite(joined, f"{rule} {before}", JOINED))
    for text in _swaps(question, history[-1]):
        if text not in (r.text for r in out):
            out.append(Rewrite(text, text, SWAP))
    return out
