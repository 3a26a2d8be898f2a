"""``rag.ingest.injection``: sentences that address the model are found through the usual
disguises (tests/hostile.py), and sentences about instructions, systems and answers
that state facts are not."""

from __future__ import annotations

import pytest

from rag.ingest.injection import looks_like_injection, plain
from tests.hostile import ENGLISH, HOSTILE, ORDINARY, OTHER_LANGUAGES, TRICKS


@pytest.mark.parametrize("text", HOSTILE)
def test_a_sentence_that_addresses_the_model_is_found(text: str) -> None:
    assert looks_like_injection(text), plain(text)


@pytest.mark.parametrize("text", ORDINARY)
def test_a_sentence_that_states_facts_is_not(text: str) -> None:
    assert not looks_like_injection(text)


def test_the_set_is_broad() -> None:
    assert len(ENGLISH) >= 20 and len(OTHER_LANGUAGES) >= 10 and len(TRICKS) >= 20


def test_disguises_are_read_through() -> None:
    assert plain("Ig\u200bnore") == "Ignore"  # a zero-width space
    assert plain("рrеvіоus") == "previous"  # Cyrillic letters that look Latin
    assert plain("ＩＧＮＯＲＥ") == "IGNORE"  # full-width letters
    assert plain("I g n o r e  all") == "Ignore  all"  # spelled out
    assert plain("Игнорируй") == "Ignorirui"  # a whole word of another script is transliterated (marks dropped)


@pytest.mark.parametrize("text", HOSTILE)
def test_a_sentence_that_addresses_the_model_is_found_after_a_lead_in(text: str) -> None:
    """As a hostile document would aim it: after words of the question."""
    aimed = f"Regarding how many of the most recent calls the cache will hold: {text}"
    assert looks_like_injection(aimed), plain(aimed)
