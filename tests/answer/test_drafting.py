"""Drafting and verification (rag.answer.drafting): the pure checks a model's draft must pass."""

from __future__ import annotations

from rag.answer.drafting import _may_start_filler, _release, clean_draft, code_terms, key_terms


def test_key_terms_are_names_and_numbers_not_in_the_question() -> None:
    ev = "As of August, the company’s software has been downloaded more than 350 million times."
    keys = key_terms(ev, "How many times was it downloaded?")
    assert "350" in keys and "august" in keys
    assert "download" not in keys


def test_code_terms_are_identifiers_options_and_calls() -> None:
    ev = "Use functools.cmp_to_key() to convert an old-style comparison function."
    assert "functools.cmp_to_key()" in code_terms(ev, "Which helper converts a comparison function?")


def test_clean_draft_strips_filler() -> None:
    assert clean_draft("The answer is: Nick Clegg.") == "Nick Clegg."
    assert clean_draft("  according to the evidence, meta did it ") == "Meta did it"


def test_only_a_possible_filler_prefix_is_held_back() -> None:
    assert _may_start_filler("The ") and _may_start_filler("The answer ")
    assert not _may_start_filler("The answer is: ")  # complete: it is cut, then streaming starts
    assert not _may_start_filler("Meta ") and not _may_start_filler("The US ")
    assert _may_start_filler(" ") and _may_start_filler("Acc") and _may_start_filler("The answer is")
    assert not _may_start_filler(" Nick") and not _may_start_filler("The comp")


def test_the_first_text_streamed_is_an_answer_word() -> None:
    assert _release("The ") is None and _release("The company ") == "The company "
    assert _release("The answer is: ") is None  # only a filler so far: nothing to show, not " "
    assert _release("The answer is: Nick ") == "Nick "
    assert _release("Answer: ") is None and _release("Answer: Meta ") == "Meta "
    assert _release(" Nick") == "Nick"  # after the prefill: streamed at once, without its space
