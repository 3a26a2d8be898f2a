"""Validate follow-up resolution (``rag.answer.followup``) on the training conversations.

    .venv/bin/python eval/validate_followup.py             # the readings table (kept), then the report
    .venv/bin/python eval/validate_followup.py --readings  # the readings again, on the kept earlier answers
    .venv/bin/python eval/validate_followup.py --refit     # the report from the kept table
    .venv/bin/python eval/validate_followup.py --answers   # also strict of every last turn, answered in full
    .venv/bin/python eval/validate_followup.py --check     # the committed report is what the kept table gives

The training conversations are ``eval/train/conversations-NAME.jsonl`` (the format
of ``eval/README.md``, with ``kind`` and ``standalone``), over the training corpus
``eval/train/corpora/NAME``; nothing of the development suite is read.

1. The table (``eval/train/followup_table.json.gz``): for each conversation, its
   earlier turns are answered in turn by the default pipeline (the answers kept as
   history, as ``rag chat`` does), then every reading of its last turn
   (``rag.answer.followup.rewrites``: as asked, by the rules, searched with the previous
   question, a referent of the previous turn swapped in) is retrieved and selected;
   a reading succeeds when its best unit holds a gold fact from a supporting source.
   The gold ``standalone`` question is selected too: the ceiling of any rewriting.
2. The report (``eval/train/followup_report.json``), per corpus and macro over the
   answerable last turns: how often the rules' reading (what the product does),
   the question as asked, the gold rewrite and the best reading succeed, and a
   fitted choice among the readings (``FEATURES``: how each was made, crossed with
   what the follow-up shows, and selection's confidence in its best unit; a
   conditional logit whose targets are the succeeding readings nearest the gold
   rewrite), leave-one-corpus-out, with how often it keeps a topic switch as asked.
   The rules stay the product's resolution while no fitted choice beats them here.
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from rag.evaluation.fitting import conditional_logit  # noqa: E402
from rag.answer.followup import ASKED, REWRITES, RULE, Cues, Rewrite  # noqa: E402

TRAIN = ROOT / "eval" / "train"
TABLE = TRAIN / "followup_table.json.gz"
REPORT = TRAIN / "followup_report.json"
DATA = TRAIN / ".index"  # the corpora's indexes (build_table.py keeps them there too)
L2_GRID = (0.01, 0.1, 1.0)
CUES = ("base", "leans", "opener", "fragment", "own", "terms")
# a column per (way of reading, cue), "asked" being the reference, then selection's confidence
FEATURES = tuple(f"{how}.{cue}" for how in REWRITES if how != ASKED for cue in CUES) + ("confidence",)
log = logging.getLogger("validate_followup")


def features(rewrite: Rewrite, cue: Cues, confidence: float) -> np.ndarray:
    """The row of one reading: its way's cue columns (zero for the question as asked), and
    the probability selection gives its best unit."""
    row = np.zeros(len(FEATURES))
    if rewrite.how != ASKED:
        values = (1.0, float(cue.leans), float(cue.opener), float(cue.fragment), cue.own, float(cue.terms))
        for name, value in zip(CUES, values):
            row[FEATURES.index(f"{rewrite.how}.{name}")] = value
    row[-1] = confidence
    return row


def conversation_files() -> list[tuple[str, Path]]:
    return [(p.stem.removeprefix("conversations-"), p) for p in sorted(TRAIN.glob("conversations-*.jsonl"))]


def _first_answers(item, selection) -> bool:  # noqa: ANN001
    """Does the unit selection ranks first hold a gold fact from a supporting source?"""
    from rag.evaluation.ranking import answering_ranks

    return any(answering_ranks(item, [(c.record.text, c.record.source) for c in selection.candidates[:1]]))


def rules_reading(row: dict[str, object]) -> int:
    """The reading the product answers: the rules' one, or the question as asked where they change nothing."""
    hows = row["hows"]
    return hows.index(RULE) if RULE in hows else 0  # type: ignore[attr-defined,union-attr]


def build_table(only: Sequence[str] = (), kept: Sequence[dict[str, object]] = ()) -> list[dict[str, object]]:
    """Every training conversation's readings (see the module's docstring); ``kept``: a
    table whose earlier turns' answers are used instead of answering them again."""
    from rag.evaluation.dataset import load_dataset
    from rag.evaluation.suite import Corpus, open_corpus, shared_models
    from rag.answer.followup import Turn, cues
    from rag.settings import get_settings

    settings = get_settings(ranker=False, rerank_model=None)
    embedder, generator = shared_models(settings)
    table: list[dict[str, object]] = []
    answered = {(str(r["corpus"]), str(r["id"])): r["history"] for r in kept}
    files = [(n, p) for n, p in conversation_files() if not only or n in only]
    t0 = time.perf_counter()
    for done, (name, path) in enumerate(files, 1):
        engine = open_corpus(Corpus(name, TRAIN / "corpora" / name, path), DATA, embedder, generator, settings)
        pipeline = engine.pipeline
        k = settings.top_k
        for item in load_dataset(path):
            history: list[Turn] = []
            if (name, item.id) in answered:
                history = [Turn(*t) for t in answered[(name, item.id)]]
            for turn in item.history[len(history):]:
                answer = engine.ask(turn, k=k, history=history)
                history.append(Turn(turn, answer.answer, answer.standalone_question))
            read = pipeline.readings(item.question, k, history)
            cue = cues(item.question, history)
            row: dict[str, object] = {
                "corpus": name, "id": item.id, "answerable": item.answerable, "kind": item.kind,
                "hows": [r.how for r, _, _ in read], "texts": [r.text for r, _, _ in read],
                "features": [[round(float(v), 6) for v in features(r, cue, s.candidates[0].probability if s.candidates else 0.0)]
                             for r, _, s in read],
                "history": [[t.question, t.answer, t.standalone] for t in history]}
            if item.answerable:
                row["first"] = [_first_answers(item, s) for _, _, s in read]
                _, gold, _ = pipeline.decide(item.standalone or item.question, k)
                row["gold_first"] = _first_answers(item, gold)
            table.append(row)
        spent = time.perf_counter() - t0
        log.info("%s: %d conversations (%d of %d corpora, %.0f s, about %.0f s left)", name,
                 sum(1 for r in table if r["corpus"] == name), done, len(files), spent,
                 spent / done * (len(files) - done))
    return table


def save_table(table: list[dict[str, object]], path: Path = TABLE) -> None:
    with gzip.GzipFile(path, "wb", mtime=0) as fh:
        fh.write(json.dumps({"features": list(FEATURES), "conversations": table}, separators=(",", ":")).encode())


def load_table(path: Path = TABLE, check_features: bool = True) -> list[dict[str, object]]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        data = json.load(fh)
    if check_features and data["features"] != list(FEATURES):
        raise SystemExit(f"{path} was made with other features: make it again (without --check)")
    return list(data["conversations"])


def overlap(text: str, gold: str) -> float:
    """Token F1 of a reading's text and the gold standalone question (stemmed content words)."""
    from rag.text import tokens

    a, b = set(tokens(text)), set(tokens(gold))
    common = len(a & b)
    return 0.0 if not common else 2 * common / (len(a) + len(b))


def gold_standalone() -> dict[tuple[str, str], str]:
    from rag.evaluation.dataset import load_dataset

    return {(name, item.id): item.standalone or item.question
            for name, path in conversation_files() for item in load_dataset(path)}


def targets(row: dict[str, object], gold: str) -> np.ndarray:
    """The readings to prefer: among those whose best unit answers (all, when none does or
    the last turn is unanswerable), the ones nearest the gold standalone question."""
    near = np.array([overlap(t, gold) for t in row["texts"]])  # type: ignore[attr-defined]
    first = np.array(row.get("first") or [False] * len(near), dtype=bool)  # type: ignore[arg-type]
    pool = first if first.any() else np.ones(len(near), dtype=bool)
    best = near[pool].max()
    return (pool & (near >= best - 1e-9)).astype(np.float64)


def _groups(table: Sequence[dict[str, object]]) -> list[tuple[np.ndarray, np.ndarray]]:
    gold = gold_standalone()
    return [(np.array(r["features"], dtype=np.float64), targets(r, gold[(str(r["corpus"]), str(r["id"]))]))
            for r in table if len(r["features"]) > 1]  # type: ignore[arg-type]


def fit(table: Sequence[dict[str, object]], l2: float) -> np.ndarray:
    """The fitted choice's weights (one per FEATURES column)."""
    return conditional_logit(_groups(table), l2, len(FEATURES))


def choice(weights: np.ndarray, row: dict[str, object]) -> int:
    return int(np.argmax(np.array(row["features"], dtype=np.float64) @ weights))


def macro(values: dict[str, list[bool]]) -> dict[str, float]:
    out = {c: round(float(np.mean(v)), 4) for c, v in sorted(values.items()) if v}
    out["macro"] = round(float(np.mean(list(out.values()))), 4) if out else 0.0
    return out


def loco_choices(table: Sequence[dict[str, object]], l2: float) -> dict[tuple[str, str], int]:
    """For each conversation: the reading chosen by the choice fitted without its corpus."""
    out: dict[tuple[str, str], int] = {}
    for corpus in sorted({str(r["corpus"]) for r in table}):
        weights = fit([r for r in table if r["corpus"] != corpus], l2)
        out |= {(corpus, str(r["id"])): choice(weights, r) for r in table if r["corpus"] == corpus}
    return out


def by_corpus(table: Sequence[dict[str, object]], key) -> dict[str, list[bool]]:  # noqa: ANN001
    out: dict[str, list[bool]] = {}
    for r in table:
        if r["answerable"]:
            out.setdefault(str(r["corpus"]), []).append(bool(key(r)))
    return out


def kept_switches(table: Sequence[dict[str, object]], kept) -> float | None:  # noqa: ANN001
    switches = [r for r in table if r["kind"] == "switch"]
    return round(float(np.mean([bool(kept(r)) for r in switches])), 4) if switches else None


def report_of(table: Sequence[dict[str, object]]) -> dict[str, object]:
    choices = {l2: loco_choices(table, l2) for l2 in L2_GRID}
    by_l2 = {l2: macro(by_corpus(table, lambda r, c=c: r["first"][c[(r["corpus"], r["id"])]]))
             for l2, c in choices.items()}
    l2 = max(L2_GRID, key=lambda v: (by_l2[v]["macro"], v))  # ties: the stronger penalty
    at = lambda r: choices[l2][(str(r["corpus"]), str(r["id"]))]  # noqa: E731
    return {
        "conversations": len(table), "answerable": sum(1 for r in table if r["answerable"]),
        "corpora": len({r["corpus"] for r in table}),
        "first": {
            "rules": macro(by_corpus(table, lambda r: r["first"][rules_reading(r)])),
            "asked": macro(by_corpus(table, lambda r: r["first"][0])),
            "fitted_choice_loco": by_l2[l2],
            "best_reading": macro(by_corpus(table, lambda r: any(r["first"]))),
            "gold_rewrite": macro(by_corpus(table, lambda r: r["gold_first"]))},
        "switch_kept": {
            "rules": kept_switches(table, lambda r: r["texts"][rules_reading(r)] == r["texts"][0]),
            "fitted_choice_loco": kept_switches(table, lambda r: r["hows"][at(r)] == ASKED)},
        "fitted_choice": {"l2": l2, "loco_first_by_l2": {str(k): v["macro"] for k, v in by_l2.items()},
                          "weights": {f: round(float(w), 4) for f, w in zip(FEATURES, fit(table, l2))}},
    }


def answer_strict(table: Sequence[dict[str, object]]) -> dict[str, list[bool]]:
    """Per corpus: is each last turn strictly correct, answered in full by the default
    pipeline (the rules' reading, the generator drafting, the answer verified) after
    the table's earlier turns?"""
    from rag.evaluation.dataset import load_dataset
    from rag.evaluation.scorer import score_question
    from rag.evaluation.suite import Corpus, open_corpus, shared_models
    from rag.answer.followup import Turn
    from rag.settings import get_settings

    settings = get_settings(ranker=False, rerank_model=None)
    embedder, generator = shared_models(settings)
    rows = {(r["corpus"], r["id"]): r for r in table}
    out: dict[str, list[bool]] = {}
    for name, path in conversation_files():
        if not any(c == name for c, _ in rows):
            continue
        engine = open_corpus(Corpus(name, TRAIN / "corpora" / name, path), DATA, embedder, generator, settings)
        for item in load_dataset(path):
            history = [Turn(*t) for t in rows[(name, item.id)]["history"]]  # type: ignore[attr-defined]
            answer = engine.ask(item.question, k=settings.top_k, history=history)
            out.setdefault(name, []).append(score_question(item, answer, None, settings.top_k).strict)
        log.info("%s: strict %.2f", name, float(np.mean(out[name])))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="the committed report is what the kept table gives")
    parser.add_argument("--only", nargs="*", default=(), help="make the table of these corpora only (a try)")
    parser.add_argument("--refit", action="store_true", help="the report from the kept table (not made again)")
    parser.add_argument("--readings", action="store_true",
                        help="make the table again with the kept table's earlier answers (only the readings)")
    parser.add_argument("--answers", action="store_true",
                        help="add strict of every last turn answered in full (all conversations, unanswerable too)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.check:
        committed = json.loads(REPORT.read_text(encoding="utf-8"))
        fresh = report_of(load_table())
        same = all(committed.get(k) == v for k, v in fresh.items())
        print(f"{REPORT.name} " + ("is what the kept table gives" if same else "DIFFERS from what the kept table gives"))
        return 0 if same else 1
    if args.answers:
        report = json.loads(REPORT.read_text(encoding="utf-8"))
        report["strict"] = macro(answer_strict(load_table()))
        REPORT.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
        print(f"strict of the last turns (the rules): {report['strict']['macro']:.3f}")
        return 0
    if args.refit:
        table = load_table()
    else:
        table = build_table(args.only, load_table(check_features=False) if args.readings else ())
        save_table(table)
    report = report_of(table)
    old = json.loads(REPORT.read_text(encoding="utf-8")) if REPORT.is_file() else {}
    if "strict" in old and args.refit:
        report["strict"] = old["strict"]  # the answers did not change
    REPORT.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    print(json.dumps({"first": {k: v["macro"] for k, v in report["first"].items()},  # type: ignore[attr-defined]
                      "switch_kept": report["switch_kept"]}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
