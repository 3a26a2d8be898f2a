"""Small text utilities shared by retrieval, answering and evaluation."""

from __future__ import annotations

import functools
import re
import unicodedata

STOPWORDS = frozenset("""
a about above after again against all also am an and any are aren as at be because been before being below
between both but by can could did do does doing don down during each few for from further had has have having
he her here hers herself him himself his how i if in into is it its itself just me more most my myself no nor
not of off on once only or other our ours ourselves out over own same she should so some such than that the
their theirs them themselves then there these they this those through to too under until up very was we were
what when where which while who whom why will with would you your yours yourself yourselves ll ve re s t d m
does did do done say said says tell told according whose many much
""".split())

_WORD = re.compile(r"[A-Za-z0-9]+(?:['’][A-Za-z]+)?")


def normalize(text: str) -> str:
    """Case-fold, unify quotes and dashes, collapse whitespace (for matching)."""
    text = unicodedata.normalize("NFKC", text)
    text = text.replace("’", "'").replace("‘", "'").replace("“", '"').replace("”", '"')
    text = text.replace("–", "-").replace("—", "-")
    return re.sub(r"\s+", " ", text).strip().lower()


@functools.lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """A deliberately light suffix stripper: plural and verb endings, so that
    "named"/"name", "owning"/"own", "announced"/"announces" meet."""
    w = word
    if len(w) > 4 and w.endswith("ies"):
        w = w[:-3] + "y"
    elif len(w) > 4 and w.endswith("es") and (w[-3] in "sxz" or w[-4:-2] in ("ch", "sh")):
        w = w[:-2]
    elif len(w) > 3 and w.endswith("s") and not w.endswith(("ss", "us", "is")):
        w = w[:-1]
    for suffix in ("ing", "ed"):
        if w.endswith(suffix) and len(w) - len(suffix) >= 3:
            w = w[: -len(suffix)]
            if len(w) > 3 and w[-1] == w[-2] and w[-1] not in "lsz":
                w = w[:-1]
            break
    if len(w) > 3 and w.endswith("e"):
        w = w[:-1]
    return w


def words(text: str) -> list[str]:
    return _WORD.findall(text)


def tokens(text: str) -> list[str]:
    """Lower-cased, stemmed content tokens (stopwords removed)."""
    return list(_tokens(text))


@functools.lru_cache(maxsize=8192)  # the same evidence sentences are scored again and again
def _tokens(text: str) -> tuple[str, ...]:
    out = []
    lower = text.lower()
    for w in words(normalize(text)):
        w = w.replace("'", "")
        if w.endswith("s") and w[:-1] + "'s" in lower:
            w = w[:-1]
        if w not in STOPWORDS and len(w) > 1 or w.isdigit():
            out.append(stem(w))
    return tuple(out)
