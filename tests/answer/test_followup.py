"""Follow-up turns made standalone (rag.answer.followup), on made-up conversations."""

from __future__ import annotations

from rag.answer.followup import ASKED, JOINED, RULE, SWAP, Rewrite, Turn, cues, names, retrieval_query, rewrites, standalone

BRIDGE = Turn("Who designed the Halden bridge?",
              "The bridge was designed by Ingrid Solberg, the city's chief engineer, in 1931 [1].")
FERRY = Turn("What does Nordline run on the fjord?", "Nordline runs two electric ferries on the fjord [1].")
TREATY = Turn("Which treaty did the delegates sign in Bergen?",
              "The delegates signed the Coastal Waters Accord after a week of talks [1].")


def test_names_skip_words_that_only_open_a_sentence() -> None:
    assert names("The bridge was designed by Ingrid Solberg in 1931.") == ["Ingrid Solberg"]
    assert names("Which European ports joined?") == ["European"]
    assert names("A Nordline spokesperson said so.") == ["Nordline"]


def test_a_person_pronoun_takes_the_name_the_previous_answer_gave() -> None:
    assert standalone("What else did she design?", [BRIDGE]) == "What else did Solberg design?"
    assert standalone("When did he retire?", [Turn("Who founded Nordline?", "Nordline was founded by "
                                                  "Arne Dahl in 1990 [1].")]) == "When did Dahl retire?"


def test_it_takes_the_name_the_previous_answer_added() -> None:
    assert standalone("Which countries ratified it?", [TREATY]) == "Which countries ratified Coastal Waters Accord?"


def test_an_ellipsis_swaps_the_name_of_the_previous_question() -> None:
    assert standalone("And Fjordlink?", [FERRY]) == "What does Fjordlink run on the fjord?"
    assert standalone("What about Stavanger?", [TREATY]) == "Which treaty did the delegates sign in Stavanger?"
    # nothing to swap: asked together with the previous question
    assert standalone("And the older ones?", [FERRY]) == "What does Nordline run on the fjord, and the older ones?"


def test_a_fragment_is_asked_of_the_previous_question() -> None:
    assert standalone("As of when?", [FERRY]) == "As of when: what does Nordline run on the fjord?"
    assert standalone("Why?", [TREATY]).startswith("Why: which treaty")


def test_a_self_contained_turn_is_left_alone() -> None:
    question = "How long is the Halden bridge?"
    assert standalone(question, [BRIDGE]) == question == retrieval_query(question, [BRIDGE])
    assert standalone("What else did she design?", []) == "What else did she design?"


def test_retrieval_adds_the_previous_question_while_the_turn_still_leans_on_it() -> None:
    assert retrieval_query("How much do they cost?", [FERRY]) == \
        "How much do they cost? What does Nordline run on the fjord?"
    resolved = retrieval_query("What else did she design?", [BRIDGE])
    assert resolved == "What else did Solberg design?"  # resolved: searched alone
    # an earlier turn's own standalone form is what the next one builds on
    chained = [Turn("And Fjordlink?", "Fjordlink runs a hydrofoil [1].", "What does Fjordlink run on the fjord?")]
    assert standalone("And Tidewater?", chained) == "What does Tidewater run on the fjord?"


# --- readings of a follow-up, for the fitted choice (rag.followup_policy) ---

CONFIG = Turn("What does git config --add do?", "It adds a new line to the option without altering any "
              "existing values [1].")
TIMEOUT = Turn("How can an idle shell log itself out?", "Set the TMOUT variable to a number of seconds [1].")


def test_a_first_question_has_one_reading_as_asked() -> None:
    assert rewrites("What does git config --add do?", []) == [
        Rewrite("What does git config --add do?", "What does git config --add do?", ASKED)]


def test_readings_put_a_referent_of_the_previous_turn_in_place_of_the_pointer() -> None:
    got = rewrites("Does that variable affect the read builtin?", [TIMEOUT])
    assert got[0].how == ASKED and got[0].text == "Does that variable affect the read builtin?"
    assert Rewrite("Does TMOUT affect the read builtin?", "Does TMOUT affect the read builtin?", SWAP) in got
    joined = [r for r in got if r.how == JOINED]
    assert len(joined) == 1 and joined[0].query.endswith("How can an idle shell log itself out?")


def test_an_ellipsis_reads_as_the_previous_question_with_its_subject_swapped() -> None:
    got = rewrites("And --unset?", [CONFIG])
    assert Rewrite("What does git config --unset do?", "What does git config --unset do?", SWAP) in got
    assert any(r.how == RULE for r in got)


def test_cues_tell_a_pointer_an_opening_and_words_of_its_own() -> None:
    lean = cues("What is its default?", [CONFIG])
    assert lean.leans and not lean.opener and not lean.terms
    assert cues("And --unset?", [CONFIG]).opener and cues("And --unset?", [CONFIG]).terms
    switch = cues("Which OpenSSL command converts a PEM certificate into DER format?", [CONFIG])
    assert not switch.leans and not switch.opener and switch.own == 1.0


def test_a_question_of_its_own_after_and_is_not_an_ellipsis() -> None:
    agencies = Turn("Which companies did Meta say would offer Llama to agencies?", "Oracle and Scale AI did [1].")
    got = standalone("And which intelligence alliance will Meta share Llama with?", [agencies])
    assert got == "Which intelligence alliance will Meta share Llama with?"
    assert standalone("And Scale AI?", [agencies]).startswith("Which companies did Scale AI say")
