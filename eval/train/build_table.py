"""Build the training table: every candidate evidence unit of every training
question, retrieved exactly as ``rag ask`` retrieves it, with its selection
signals and its labels.

    .venv/bin/python eval/train/build_table.py [--suite eval/train/suite.json] [--out eval/train/table.json.gz]

Each corpus is ingested into its own index under ``--data`` (kept between runs:
unchanged files are not embedded again). For each question the table holds its
text and facts, and for each candidate unit: the text and section the ranker
reads, the signals of ``rag.answer.selection.FEATURES``, which gold facts it contains
and whether it comes from a supporting source. ``eval/train/train.py`` trains
the ranker and fits the selection policy on it.
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from rag.evaluation.dataset import load_dataset  # noqa: E402
from rag.evaluation.scorer import fact_present  # noqa: E402
from rag.evaluation.suite import Corpus, load_suite, open_corpus  # noqa: E402
from rag.text import normalize  # noqa: E402

SUITE = ROOT / "eval" / "train" / "suite.json"
TABLE = ROOT / "eval" / "train" / "table.json.gz"
DATA = ROOT / "eval" / "train" / ".index"
log = logging.getLogger("build_table")


def corpus_rows(corpus: Corpus, engine, k: int) -> list[dict[str, object]]:  # noqa: ANN001 - rag.engine.Rag
    from rag.answer.selection import candidate_features

    rows = []
    for item in load_dataset(corpus.questions):
        question, result = engine.pipeline.retrieve(item.question, k)
        cands = candidate_features(question, result)
        rows.append({
            "corpus": corpus.name, "id": item.id, "question": item.question, "kind": item.kind,
            "answerable": item.answerable, "n_facts": len(item.answers), "parts": question.parts,
            "candidates": [{
                "text": r.text, "section": r.section, "source": r.source,
                "features": [round(float(v), 6) for v in f],
                "facts": [i for i, fact in enumerate(item.answers) if fact_present(r.text, fact)],
                "supporting": r.source in item.supporting,
                "norm": normalize(r.text),
            } for r, f in cands],
        })
    return rows


def build(suite: Path, data: Path, only: list[str] | None = None) -> list[dict[str, object]]:
    from rag.answer.selection import FEATURES
    from rag.settings import get_settings

    settings = get_settings(use_llm=False)
    embedder = None
    table: list[dict[str, object]] = []
    for corpus in load_suite(suite):
        if only and corpus.name not in only:
            continue
        t0 = time.perf_counter()
        engine = open_corpus(corpus, data, embedder, None, settings)
        embedder = engine.embedder
        rows = corpus_rows(corpus, engine, settings.top_k)
        table += rows
        engine.close()
        log.info("%s: %d questions, %d candidates in %.1f s", corpus.name, len(rows),
                 sum(len(r["candidates"]) for r in rows), time.perf_counter() - t0)  # type: ignore[arg-type]
    assert all(len(c["features"]) == len(FEATURES) for r in table for c in r["candidates"])  # type: ignore[union-attr]
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", type=Path, default=SUITE)
    parser.add_argument("--out", type=Path, default=TABLE)
    parser.add_argument("--data", type=Path, default=DATA, help="where each corpus's index is kept")
    parser.add_argument("--only", nargs="*", help="only these corpora")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from rag.answer.selection import FEATURES

    table = build(args.suite, args.data, args.only)
    with gzip.open(args.out, "wt", encoding="utf-8") as fh:
        json.dump({"features": list(FEATURES), "questions": table}, fh)
    log.info("wrote %s: %d questions", args.out, len(table))


if __name__ == "__main__":
    main()
