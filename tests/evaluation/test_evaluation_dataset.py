"""Loading and validating evaluation datasets: every problem, with its line number."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag.errors import DatasetError, InputError
from rag.evaluation.dataset import EvalItem, load_dataset, parse_dataset

DEV = Path(__file__).resolve().parents[2] / "eval" / "dev.jsonl"


def row(**overrides: object) -> str:
    obj = {"id": "q1", "question": "Who?", "answers": [["Meta"]], "supporting": ["a.txt"], "answerable": True}
    obj.update(overrides)
    return json.dumps({k: v for k, v in obj.items() if v is not ...})


def problems_of(lines: list[str]) -> str:
    with pytest.raises(DatasetError) as info:
        parse_dataset(lines, name="t.jsonl")
    return info.value.message


def test_the_shipped_dev_set_is_valid() -> None:
    items = load_dataset(DEV)
    assert len(items) == 27
    assert len({i.id for i in items}) == 27
    assert sum(i.answerable for i in items) == 22
    d04 = next(i for i in items if i.id == "d04")
    assert d04.answers == (("warfare",), ("nuclear",))
    assert all(i.supporting for i in items if i.answerable)


def test_valid_lines_become_items_and_blank_lines_are_skipped() -> None:
    items = parse_dataset([row(), "", "   ", row(id="q2", answers=[], supporting=[], answerable=False)])
    assert items == [EvalItem("q1", "Who?", (("Meta",),), ("a.txt",), True), EvalItem("q2", "Who?", (), (), False)]
    assert items[0].to_dict() == json.loads(row())


def test_every_problem_is_reported_with_its_line_number() -> None:
    lines = [
        row(),                                   # 1 ok
        '{"id": "q2", "question": ',             # 2 invalid JSON
        row(id="q3", color="red"),               # 3 unknown field
        row(id="q4", answerable="yes"),          # 4 wrong type
        row(),                                   # 5 duplicate id q1
        row(id="q6", answers=[]),                # 6 answerable without answers
        row(id="q7", question=...),              # 7 missing field
        "[1, 2]",                                # 8 not an object
        "",                                      # 9 blank: fine
        row(id="q10", answers=["Meta"]),         # 10 answers not a list of lists
    ]
    msg = problems_of(lines)
    assert msg.startswith("t.jsonl: 8 problem(s):")
    assert "line 2: invalid JSON" in msg
    assert "line 3: unknown field 'color'" in msg
    assert "line 4: 'answerable' must be true or false" in msg
    assert "line 5: duplicate id 'q1' (first on line 1)" in msg
    assert "line 6: answerable question with no answers" in msg
    assert "line 7: missing field 'question'" in msg
    assert "line 8: expected a JSON object, got list" in msg
    assert "line 10: 'answers' must be" in msg
    assert "line 1:" not in msg and "line 9:" not in msg


@pytest.mark.parametrize(("overrides", "expected"), [
    ({"id": ""}, "'id' must be a non-empty string"),
    ({"id": 7}, "'id' must be a non-empty string"),
    ({"question": "   "}, "'question' must be a non-empty string"),
    ({"answers": [[]]}, "'answers' must be"),
    ({"answers": [["Meta", ""]]}, "'answers' must be"),
    ({"answers": "Meta"}, "'answers' must be"),
    ({"supporting": "a.txt"}, "'supporting' must be"),
    ({"supporting": [1]}, "'supporting' must be"),
    ({"answerable": 1}, "'answerable' must be true or false"),
    ({"supporting": []}, "answerable question with no supporting sources"),
    ({"answerable": False}, "unanswerable question must have empty 'answers' and 'supporting'"),
])
def test_field_problems(overrides: dict[str, object], expected: str) -> None:
    assert f"line 1: {expected}" in problems_of([row(**overrides)])


def test_duplicate_id_is_caught_even_when_the_first_copy_has_other_problems() -> None:
    msg = problems_of([row(answerable="no"), row()])
    assert "line 2: duplicate id 'q1' (first on line 1)" in msg


def test_several_problems_on_one_line_are_all_listed() -> None:
    msg = problems_of([row(id=3, extra=1, supporting=...)])
    assert "line 1: missing field 'supporting'" in msg
    assert "line 1: unknown field 'extra'" in msg
    assert "line 1: 'id' must be" in msg
    assert "3 problem(s)" in msg


def test_empty_dataset(tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_text("\n\n", encoding="utf-8")
    with pytest.raises(DatasetError, match="the dataset is empty"):
        load_dataset(path)


def test_missing_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="dataset not found") as info:
        load_dataset(tmp_path / "nope.jsonl")
    assert isinstance(info.value, InputError) and info.value.exit_code == 2


def test_folder_and_binary_file(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="is a folder"):
        load_dataset(tmp_path)
    binary = tmp_path / "b.jsonl"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(DatasetError, match="not UTF-8"):
        load_dataset(binary)


def test_load_reports_the_file_name_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(row() + "\n{oops\n", encoding="utf-8")
    with pytest.raises(DatasetError, match=r"bad\.jsonl: 1 problem\(s\):\n  line 2: invalid JSON"):
        load_dataset(path)


# --- the optional 'pages' field ---------------------------------------------------------------


def test_pages_are_read_and_written_back() -> None:
    items = parse_dataset([row(pages=[2, 3]), row(id="q2")])
    assert items[0].pages == (2, 3) and items[1].pages == ()
    assert items[0].to_dict() == json.loads(row(pages=[2, 3]))
    assert "pages" not in items[1].to_dict()


@pytest.mark.parametrize("pages", [[], [0], [-1], [1.5], ["2"], [True], 2, None])
def test_pages_must_be_a_non_empty_list_of_positive_integers(pages: object) -> None:
    msg = problems_of([row(pages=pages)])
    assert "line 1: 'pages' must be a non-empty list of positive integers (1-based pages)" in msg


def test_pages_only_on_answerable_questions() -> None:
    msg = problems_of([row(), row(id="q2", answers=[], supporting=[], answerable=False, pages=[1])])
    assert msg.startswith("t.jsonl: 1 problem(s):")
    assert "line 2: unanswerable question must not have 'pages'" in msg


def test_the_shipped_pdf_questions_have_pages() -> None:
    items = load_dataset(DEV.parent / "corpora" / "latex-usrguide.jsonl")
    assert all(i.pages for i in items if i.answerable)
    assert not any(i.pages for i in items if not i.answerable)


def test_a_conversation_gives_turns_instead_of_a_question() -> None:
    line = json.dumps({"id": "c1", "turns": ["Who runs the ferry?", "When does it leave?"],
                       "answers": [["seven"]], "supporting": ["a.txt"], "answerable": True})
    [item] = parse_dataset([line])
    assert (item.question, item.history) == ("When does it leave?", ("Who runs the ferry?",))
    assert item.to_dict()["turns"] == ["Who runs the ferry?", "When does it leave?"]
    both = json.dumps({"id": "c2", "question": "q?", "turns": ["q?"], "answers": [], "supporting": [],
                       "answerable": False})
    with pytest.raises(DatasetError, match="either 'question' or 'turns'"):
        parse_dataset([both])
    with pytest.raises(DatasetError, match="'turns' must be"):
        parse_dataset([json.dumps({"id": "c3", "turns": [], "answers": [], "supporting": [], "answerable": False})])


def test_the_shipped_conversations_are_valid() -> None:
    items = load_dataset(Path(__file__).resolve().parents[2] / "eval" / "conversations.jsonl")
    assert len(items) >= 8 and all(item.history for item in items)


def test_a_question_may_say_its_kind_and_it_is_kept() -> None:
    line = {"id": "t1", "question": "What is X?", "answers": [["x"]], "supporting": ["a.md"], "answerable": True,
            "kind": "what"}
    items = parse_dataset([json.dumps(line)])
    assert items[0].kind == "what" and items[0].to_dict()["kind"] == "what"
    with pytest.raises(DatasetError, match="'kind' must be a non-empty string"):
        parse_dataset([json.dumps({**line, "kind": ""})])
