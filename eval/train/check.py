"""Check the training suite's questions against their documents.

    .venv/bin/python eval/train/check.py                  # every corpus of eval/train/suite.json
    .venv/bin/python eval/train/check.py NAME [NAME ...]  # some corpora (as named in the suite)
    .venv/bin/python eval/train/check.py --questions F.jsonl --documents DIR   # one file, before it joins the suite
    .venv/bin/python eval/train/check.py --units DIR      # print a corpus's evidence units, as citations hold them

Each document is parsed and cut into evidence units exactly as ``rag ingest`` does
(``rag.ingest.loaders``, ``rag.ingest.chunking``). A question passes when:

* the line is valid (``rag.evaluation.dataset``: fields, types, unique ids);
* answerable: every supporting source is a file of the corpus, and every gold fact
  has an alias that stands inside one evidence unit of a supporting source (so a
  citation can hold it: a fact split over two sentences, or only in a heading, can
  never be cited); for a PDF, ``pages`` is given and each fact stands in a unit on
  one of those pages;
* unanswerable: ``answers`` and ``supporting`` are empty.

It also reports what the suite's rules ask of each file: about one question in six
unanswerable, about a quarter of the answerable ones with two or more facts, and
(``kind`` field) the question kinds. Exit 1 when any question fails.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from rag.ingest.chunking import document_units  # noqa: E402
from rag.errors import RagError  # noqa: E402
from rag.evaluation.dataset import EvalItem, load_dataset  # noqa: E402
from rag.evaluation.scorer import fact_present  # noqa: E402
from rag.ingest.loaders import read_file  # noqa: E402

SUITE = Path(__file__).with_name("suite.json")


@dataclass(frozen=True)
class Unit:
    text: str
    page: int | None


def corpus_units(folder: Path) -> dict[str, list[Unit]]:
    """Every document of ``folder`` (by its path relative to the folder) as evidence units."""
    out = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        source = path.relative_to(folder).as_posix()
        doc = read_file(path, source, [])
        out[source] = [Unit(u.text, u.page) for u in document_units(doc) if u.kind != "heading"]
    return out


def check_item(item: EvalItem, units: dict[str, list[Unit]]) -> list[str]:
    if not item.answerable:
        return []
    problems = [f"supporting source {s!r} is not a file of the corpus" for s in item.supporting if s not in units]
    if problems:
        return problems
    pdf = any(s.lower().endswith(".pdf") for s in item.supporting)
    if pdf and not item.pages:
        problems.append("a PDF question needs 'pages'")
    for fact in item.answers:
        where = [u for s in item.supporting for u in units[s] if fact_present(u.text, fact)]
        if not where:
            problems.append(f"no alias of fact {list(fact)} stands inside one evidence unit of the supporting sources")
        elif pdf and item.pages and not any(u.page in item.pages for u in where):
            pages = sorted({u.page for u in where if u.page})
            problems.append(f"fact {list(fact)} is on page(s) {pages}, not on {list(item.pages)}")
    return problems


def check_file(questions: Path, documents: Path) -> tuple[int, int, list[str], dict[str, object]]:
    """(questions, failing, problem lines, summary) of one question file."""
    try:
        items = load_dataset(questions)
    except RagError as exc:
        return 0, 1, [exc.message], {}
    raw = [json.loads(line) for line in questions.read_text(encoding="utf-8").splitlines() if line.strip()]
    units = corpus_units(documents)
    lines, failing = [], 0
    for item in items:
        problems = check_item(item, units)
        if problems:
            failing += 1
            lines += [f"{questions.name}: {item.id}: {p}" for p in problems]
    answerable = [i for i in items if i.answerable]
    summary = {"questions": len(items), "answerable": len(answerable),
               "unanswerable_share": round(1 - len(answerable) / len(items), 3) if items else 0.0,
               "multi_fact_share": round(sum(len(i.answers) > 1 for i in answerable) / len(answerable), 3)
               if answerable else 0.0,
               "kinds": dict(Counter(str(r.get("kind", "?")) for r in raw).most_common())}
    return len(items), failing, lines, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="corpora of the suite to check (default: all)")
    parser.add_argument("--questions", type=Path, help="a question file to check instead of the suite")
    parser.add_argument("--documents", type=Path, help="its corpus folder")
    parser.add_argument("--units", type=Path, metavar="DIR", help="print the evidence units of a corpus folder")
    args = parser.parse_args()
    if args.units:
        for source, units in corpus_units(args.units).items():
            for u in units:
                where = f"{source} p.{u.page}" if u.page else source
                print(f"[{where}] {' '.join(u.text.split())}")
        return
    if args.questions:
        if not args.documents:
            raise SystemExit("--questions needs --documents")
        targets = [(args.questions.stem, args.questions, args.documents)]
    else:
        suite = json.loads(SUITE.read_text(encoding="utf-8"))
        targets = [(c["name"], SUITE.parent / c["questions"], SUITE.parent / c["documents"])
                   for c in suite["corpora"] if not args.names or c["name"] in args.names]
    total = bad = 0
    for name, questions, documents in targets:
        n, failing, lines, summary = check_file(questions, documents)
        total, bad = total + n, bad + failing
        for line in lines:
            print(line)
        print(f"{name}: {n} questions, {failing} failing; {json.dumps(summary)}")
    print(f"all: {total} questions, {bad} failing")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
