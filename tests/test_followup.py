"""Follow-up turns made standalone (rag.followup), on made-up conversations."""

from __future__ import annotations

from rag.followup import Turn, names, retrieval_query, standalone

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
