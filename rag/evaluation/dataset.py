"""Loading and validating an evaluation dataset (JSONL, one question per line).

Each line is an object with exactly these fields::

    {"id": "d01", "question": "...", "answers": [["Meta", "Meta Platforms"], ["Llama"]],
     "supporting": ["000_a.txt"], "answerable": true}

``answers`` is a list of gold *facts*; each fact is a list of aliases, any one of
which counts. An answerable question over a PDF may also name the 1-based pages
that hold its facts, ``"pages": [2, 3]``; it is optional. A conversation gives
``"turns": ["first question", ..., "last question"]`` instead of ``"question"``: the
earlier turns are asked first (each answer kept as history, as ``rag chat`` does)
and the last one is scored like any question. The whole file is checked before
anything runs, and every problem is reported with its line number in one
``DatasetError``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.errors import DatasetError
from rag.text import normalize

FIELDS: dict[str, str] = {
    "id": "a non-empty string",
    "question": "a non-empty string",
    "answers": "a list of facts, each a non-empty list of non-empty strings",
    "supporting": "a list of non-empty strings",
    "answerable": "true or false",
}
OPTIONAL: dict[str, str] = {
    "pages": "a non-empty list of positive integers (1-based pages)",
    "turns": "a non-empty list of non-empty strings (a conversation; replaces 'question')",
    "kind": "a non-empty string: the kind of question (what, how, why, list, ...; 'structure' for a pair "
            "made from a document's structure, such as an FAQ's question and its answer)",
    "standalone": "a non-empty string: a conversation's last turn written as a question that stands on its own "
                  "(the rewrite a follow-up should get; training data for follow-up resolution)",
}


@dataclass(frozen=True)
class EvalItem:
    """One validated question of the dataset."""

    id: str
    question: str
    answers: tuple[tuple[str, ...], ...]
    supporting: tuple[str, ...]
    answerable: bool
    pages: tuple[int, ...] = ()
    history: tuple[str, ...] = ()  # a conversation's earlier turns, asked first (oldest first)
    kind: str = ""  # the kind of question, where the dataset says it
    standalone: str = ""  # a conversation's last turn as a question of its own, where the dataset says it

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"id": self.id, "question": self.question, "answers": [list(f) for f in self.answers],
                             "supporting": list(self.supporting), "answerable": self.answerable}
        if self.pages:
            d["pages"] = list(self.pages)
        if self.history:
            d["turns"] = [*self.history, self.question]
        if self.kind:
            d["kind"] = self.kind
        if self.standalone:
            d["standalone"] = self.standalone
        return d


def _nonempty_str(value: object) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _positive_ints(value: object) -> bool:
    return (isinstance(value, list) and bool(value)
            and all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in value))


def _check_types(obj: dict[str, Any]) -> list[str]:
    problems = []
    for name in ("id", "question"):
        if name in obj and not _nonempty_str(obj[name]):
            problems.append(f"'{name}' must be {FIELDS[name]}")
    if "answers" in obj:
        answers = obj["answers"]
        ok = isinstance(answers, list) and all(
            isinstance(fact, list) and fact and all(_nonempty_str(a) and normalize(a) for a in fact)
            for fact in answers)
        if not ok:
            problems.append(f"'answers' must be {FIELDS['answers']}")
    if "supporting" in obj:
        sup = obj["supporting"]
        if not (isinstance(sup, list) and all(_nonempty_str(s) for s in sup)):
            problems.append(f"'supporting' must be {FIELDS['supporting']}")
    if "answerable" in obj and not isinstance(obj["answerable"], bool):
        problems.append(f"'answerable' must be {FIELDS['answerable']}")
    if "pages" in obj and not _positive_ints(obj["pages"]):
        problems.append(f"'pages' must be {OPTIONAL['pages']}")
    if "turns" in obj and not (isinstance(obj["turns"], list) and obj["turns"]
                               and all(_nonempty_str(t) for t in obj["turns"])):
        problems.append(f"'turns' must be {OPTIONAL['turns']}")
    if "kind" in obj and not _nonempty_str(obj["kind"]):
        problems.append(f"'kind' must be {OPTIONAL['kind']}")
    if "standalone" in obj and not _nonempty_str(obj["standalone"]):
        problems.append(f"'standalone' must be {OPTIONAL['standalone']}")
    if "standalone" in obj and "turns" not in obj:
        problems.append("'standalone' belongs to a conversation ('turns')")
    return problems


def _check_consistency(obj: dict[str, Any]) -> list[str]:
    if obj["answerable"]:
        problems = []
        if not obj["answers"]:
            problems.append("answerable question with no answers")
        if not obj["supporting"]:
            problems.append("answerable question with no supporting sources")
        return problems
    problems = []
    if obj["answers"] or obj["supporting"]:
        problems.append("unanswerable question must have empty 'answers' and 'supporting'")
    if "pages" in obj:
        problems.append("unanswerable question must not have 'pages'")
    return problems


def _check_line(text: str) -> tuple[dict[str, Any] | None, list[str]]:
    """The parsed object (``None`` when not a JSON object) and the problems of one line."""
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, [f"invalid JSON ({exc.msg} at column {exc.colno})"]
    if not isinstance(obj, dict):
        return None, [f"expected a JSON object, got {type(obj).__name__}"]
    if "turns" in obj and "question" not in obj:  # a conversation: its last turn is the question
        obj = {**obj, "question": obj["turns"][-1] if isinstance(obj["turns"], list) and obj["turns"] else ""}
    elif "turns" in obj:
        return obj, ["give either 'question' or 'turns', not both"]
    problems = [f"missing field '{f}'" for f in FIELDS if f not in obj]
    problems += [f"unknown field '{f}'" for f in obj if f not in FIELDS and f not in OPTIONAL]
    problems += _check_types(obj)
    if problems:
        return obj, problems
    return obj, _check_consistency(obj)


def parse_dataset(lines: Iterable[str], name: str = "dataset") -> list[EvalItem]:
    """Validate JSONL lines (blank lines are skipped); raise one ``DatasetError`` listing all problems."""
    items: list[EvalItem] = []
    problems: list[str] = []
    seen: dict[str, int] = {}
    for lineno, text in enumerate(lines, 1):
        if not text.strip():
            continue
        obj, line_problems = _check_line(text)
        ident = obj.get("id") if obj is not None else None
        if isinstance(ident, str):
            if ident in seen:
                line_problems.append(f"duplicate id '{ident}' (first on line {seen[ident]})")
            else:
                seen[ident] = lineno
        problems += [f"line {lineno}: {p}" for p in line_problems]
        if obj is None or line_problems:
            continue
        items.append(EvalItem(id=ident, question=obj["question"],
                              answers=tuple(tuple(fact) for fact in obj["answers"]),
                              supporting=tuple(obj["supporting"]), answerable=obj["answerable"],
                              pages=tuple(obj.get("pages", ())), history=tuple(obj.get("turns", ())[:-1]),
                              kind=str(obj.get("kind", "")),
                              standalone=str(obj.get("standalone", ""))))
    if problems:
        listing = "\n  ".join(problems)
        raise DatasetError(f"{name}: {len(problems)} problem(s):\n  {listing}")
    if not items:
        raise DatasetError(f"{name}: the dataset is empty")
    return items


def load_dataset(path: Path) -> list[EvalItem]:
    """Read and validate a JSONL dataset file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DatasetError(f"dataset not found: {path}") from None
    except IsADirectoryError:
        raise DatasetError(f"dataset is a folder, not a JSONL file: {path}") from None
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise DatasetError(f"cannot read dataset {path}: {exc.strerror}") from None
    return parse_dataset(text.splitlines(), name=str(path))
