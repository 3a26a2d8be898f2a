"""Fit the evidence-selection policy on the development suite.

    .venv/bin/python eval/fit_policy.py                 # build the table, fit, write rag/policy.json
    .venv/bin/python eval/fit_policy.py --from-table    # refit from the committed table (seconds)
    .venv/bin/python eval/fit_policy.py --check         # refit from the table; exit 1 unless it equals rag/policy.json
    .venv/bin/python eval/fit_policy.py --answer        # also answer each corpus with the policy fitted
                                                        # on the other five (leave-one-corpus-out, real pipeline)

The table (``eval/policy_table.json.gz``) holds every candidate evidence unit of
every suite question with its signals and labels; it is made by ingesting each
corpus into its own index and retrieving exactly as ``rag ask`` does. The fitting
itself is ``rag.evaluation.fitting``. Leave-one-corpus-out policies are written to
``eval/loco/NAME.json`` (use one with ``RAG_POLICY=eval/loco/NAME.json``).
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from rag.evaluation.dataset import load_dataset  # noqa: E402
from rag.evaluation.fitting import QuestionRows, choose_l2, fit_policy, leave_one_corpus_out, simulate  # noqa: E402
from rag.evaluation.scorer import fact_present  # noqa: E402
from rag.evaluation.suite import corpus_engine, load_suite, open_corpus, run_corpus  # noqa: E402
from rag.selection import FEATURES, POLICY_FILE, SelectionPolicy  # noqa: E402
from rag.text import normalize  # noqa: E402

SUITE = ROOT / "eval" / "suite.json"
TABLE = ROOT / "eval" / "policy_table.json.gz"
LOCO_DIR = ROOT / "eval" / "loco"
log = logging.getLogger("fit_policy")


def build_table(suite: Path, data_root: Path) -> list[dict[str, object]]:
    """Every candidate unit of every question, retrieved exactly as ``rag ask`` does."""
    from rag.selection import candidate_features
    from rag.settings import get_settings

    settings = get_settings(use_llm=False)
    embedder = None
    out: list[dict[str, object]] = []
    for corpus in load_suite(suite):
        t0 = time.perf_counter()
        engine = open_corpus(corpus, data_root, embedder, None, settings)
        embedder = engine.embedder
        items = load_dataset(corpus.questions)
        for item in items:
            question, result = engine.pipeline.retrieve(item.question, settings.top_k)
            rows = candidate_features(question, result)
            out.append({
                "corpus": corpus.name, "id": item.id, "answerable": item.answerable, "n_facts": len(item.answers),
                "parts": question.parts,
                "features": [[round(float(v), 6) for v in f] for _, f in rows],
                "facts": [[i for i, fact in enumerate(item.answers) if fact_present(r.text, fact)] for r, _ in rows],
                "supporting": [r.source in item.supporting for r, _ in rows],
                "texts": [normalize(r.text) for r, _ in rows],
            })
        log.info("%s: %d questions in %.1f s", corpus.name, len(items), time.perf_counter() - t0)
    return out


def to_rows(table: list[dict[str, object]]) -> list[QuestionRows]:
    rows = []
    for q in table:
        feats = np.array(q["features"], dtype=np.float64).reshape(-1, len(FEATURES))
        rows.append(QuestionRows(str(q["corpus"]), str(q["id"]), bool(q["answerable"]), int(q["n_facts"]),
                                 int(q["parts"]), feats, tuple(frozenset(f) for f in q["facts"]),
                                 tuple(bool(s) for s in q["supporting"]), tuple(q["texts"])))
    return rows


def save_table(table: list[dict[str, object]], path: Path) -> None:
    raw = json.dumps({"features": list(FEATURES), "questions": table}, separators=(",", ":")).encode()
    with gzip.GzipFile(path, "wb", mtime=0) as fh:
        fh.write(raw)


def load_table(path: Path) -> list[dict[str, object]]:
    with gzip.open(path, "rb") as fh:
        data = json.loads(fh.read())
    if list(data["features"]) != list(FEATURES):
        raise SystemExit(f"{path} was made with other features; rebuild it (run without --from-table)")
    return list(data["questions"])


def answer_loco(suite: Path, data_root: Path) -> dict[str, float]:
    """Strict of the real pipeline on each corpus with the policy fitted on the others."""
    from rag.settings import get_settings

    out: dict[str, float] = {}
    embedder = generator = None
    for corpus in load_suite(suite):
        settings = get_settings(policy=LOCO_DIR / f"{corpus.name}.json")
        engine = corpus_engine(corpus, data_root, embedder, generator, settings)
        result = run_corpus(corpus, load_dataset(corpus.questions), engine)
        embedder, generator = engine.embedder, engine.generator
        out[corpus.name] = result.metrics.strict
        log.info("leave-one-out answers, %s: strict %.3f", corpus.name, out[corpus.name])
    out["macro"] = float(np.mean(list(out.values())))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--suite", type=Path, default=SUITE)
    ap.add_argument("--from-table", action="store_true", help="refit from the committed table")
    ap.add_argument("--check", action="store_true", help="refit from the table and compare with rag/policy.json")
    ap.add_argument("--answer", action="store_true", help="also run the real pipeline leave-one-corpus-out")
    ap.add_argument("--data-dir", type=Path, help="keep the per-corpus indexes here (default: a temporary folder)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    with tempfile.TemporaryDirectory() as tmp:
        data_root = args.data_dir or Path(tmp)
        if args.from_table or args.check:
            table = load_table(TABLE)
        else:
            table = build_table(args.suite, data_root)
            save_table(table, TABLE)
        rows = to_rows(table)
        l2, by_l2 = choose_l2(rows)
        policy = fit_policy(rows, l2)
        if args.check:
            committed = SelectionPolicy.load(POLICY_FILE)
            same = committed == policy
            print("rag/policy.json " + ("matches the fit" if same else "DIFFERS from the fit"))
            return 0 if same else 1
        policy.save(POLICY_FILE)
        print("penalty chosen:", l2, "leave-one-corpus-out macro by penalty:",
              json.dumps({str(k): round(v, 3) for k, v in by_l2.items()}))
        print("in-sample (simulated extractive strict):",
              json.dumps({k: round(v, 3) for k, v in simulate(rows, policy).items()}))
        LOCO_DIR.mkdir(exist_ok=True)
        loco = leave_one_corpus_out(rows, l2)
        for name, (fold, _) in loco.items():
            fold.save(LOCO_DIR / f"{name}.json")
        sims = {name: round(s, 3) for name, (_, s) in loco.items()}
        sims["macro"] = round(float(np.mean(list(sims.values()))), 3)
        print("leave-one-corpus-out (simulated extractive strict):", json.dumps(sims))
        if args.answer:
            print("leave-one-corpus-out (real answers):",
                  json.dumps({k: round(v, 3) for k, v in answer_loco(args.suite, data_root).items()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
