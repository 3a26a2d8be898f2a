"""Fit the evidence-selection policies on the training suite (``eval/train/``).

    .venv/bin/python eval/fit_policy.py --signals   # rag/answer/policy_signals.json: the signals alone
    .venv/bin/python eval/fit_policy.py             # rag/answer/policy.json: the signals and the learned ranker's score
    .venv/bin/python eval/fit_policy.py --judged    # rag/answer/policy_judged.json: and a rerank model's judgement
    .venv/bin/python eval/fit_policy.py --check     # refit each at its committed penalty; exit 1 unless equal

Inputs: ``eval/train/table.json.gz`` (every candidate unit of every training
question with its signals and labels: ``eval/train/build_table.py``) and, for the
ranked policy, ``eval/train/ranker_scores.json.gz`` (the ranker's cross-fitted
scores: ``eval/train/train_ranker.py``). The fitting itself is
``rag.evaluation.fitting``; the penalty is chosen by leave-one-corpus-out strict.
Each fit writes its leave-one-corpus-out figures (P@1 of the answering unit and
the simulated strict of extractive answers, per corpus) to
``eval/train/fit_report.json``. The development suite is never read here.
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rag.evaluation.fitting import (  # noqa: E402
    QuestionRows,
    choose_l2,
    fit_policy,
    leave_one_corpus_out,
    p_at_1,
    simulate,
)
from rag.answer.selection import (  # noqa: E402
    FEATURES,
    JUDGE,
    JUDGED_POLICY_FILE,
    POLICY_FILE,
    RANKER,
    SIGNALS_POLICY_FILE,
    SelectionPolicy,
    Stage,
)

TABLE = ROOT / "eval" / "train" / "table.json.gz"
SCORES = ROOT / "eval" / "train" / "ranker_scores.json.gz"
JUDGE_SCORES = ROOT / "eval" / "train" / "judge_scores.jsonl"
JUDGE_READS = 5  # units the accurate mode's judge reads: the best by the ranked policy
REPORT = ROOT / "eval" / "train" / "fit_report.json"
log = logging.getLogger("fit_policy")


def load_table(path: Path = TABLE) -> list[dict[str, object]]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        data = json.load(fh)
    if list(data["features"]) != list(FEATURES):
        raise SystemExit(f"{path} was made with other signals; make it again with eval/train/build_table.py")
    return list(data["questions"])


def load_scores(path: Path = SCORES) -> tuple[int, dict[str, list[float | None]]]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        data = json.load(fh)
    return int(data["ranker_top"]), data["scores"]


def ranker_fill(scores: "Scores") -> float:
    """The score given to the units the ranker does not read: below every score it gave."""
    read = [s for col in scores.values() for s in col if s is not None]
    return float(np.floor(min(read))) - 1.0 if read else 0.0


Scores = dict[str, list[float | None]]  # question (corpus/id) -> a reader's score of each candidate, None: not read


def to_rows(table: list[dict[str, object]], *stage_scores: tuple[Scores, float]) -> list[QuestionRows]:
    """The fitting's rows; each of ``stage_scores`` (a stage's scores and its fill) adds a column."""
    rows = []
    for q in table:
        cands = q["candidates"]
        feats = np.array([c["features"] for c in cands], dtype=np.float64).reshape(-1, len(FEATURES))  # type: ignore[union-attr]
        for scores, fill in stage_scores:
            col = scores[f"{q['corpus']}/{q['id']}"]
            feats = np.hstack([feats, np.array([[fill if s is None else s] for s in col],
                                               dtype=np.float64).reshape(-1, 1)])
        rows.append(QuestionRows(str(q["corpus"]), str(q["id"]), bool(q["answerable"]), int(q["n_facts"]),  # type: ignore[arg-type]
                                 int(q["parts"]), feats, tuple(frozenset(c["facts"]) for c in cands),  # type: ignore[arg-type, union-attr]
                                 tuple(bool(c["supporting"]) for c in cands), tuple(str(c["norm"]) for c in cands)))  # type: ignore[union-attr]
    return rows


def fit(rows: list[QuestionRows], name: str, stages: tuple[Stage, ...] = (),
        l2: float | None = None) -> tuple[SelectionPolicy, dict]:
    """The policy, and its figures: leave-one-corpus-out P@1 and strict, in-sample
    strict. With ``l2`` given (``--check``) only the policy, fitted at that penalty."""
    note = {"suite": "eval/train/suite.json", "questions_fitted": len(rows)}
    if l2 is not None:
        return fit_policy(rows, l2, note, stages), {}
    l2, by_l2 = choose_l2(rows, stages)
    policy = fit_policy(rows, l2, note, stages)
    loco = leave_one_corpus_out(rows, l2, stages)
    strict = {c: s for c, (_, s) in loco.items()}
    p1 = {c: p_at_1([r for r in rows if r.corpus == c], pol)[c] for c, (pol, _) in loco.items()}
    figures = {"policy": name, "l2": l2, "loco_strict_by_l2": {str(k): round(v, 4) for k, v in by_l2.items()},
               "loco_p_at_1": {**{c: round(v, 4) for c, v in p1.items()}, "macro": round(float(np.mean(list(p1.values()))), 4)},
               "loco_strict": {**{c: round(v, 4) for c, v in strict.items()},
                               "macro": round(float(np.mean(list(strict.values()))), 4)},
               "in_sample_p_at_1": round(p_at_1(rows, policy)["macro"], 4),
               "in_sample_strict": round(simulate(rows, policy)["macro"], 4)}
    return policy, figures


def signals_policy(table: list[dict[str, object]], l2: float | None = None) -> tuple[SelectionPolicy, dict]:
    return fit(to_rows(table), "signals", l2=l2)


def ranked_policy(table: list[dict[str, object]], signals: SelectionPolicy,
                  scores_file: Path = SCORES, l2: float | None = None) -> tuple[SelectionPolicy, dict]:
    top, scores = load_scores(scores_file)
    fill = ranker_fill(scores)
    stage = Stage(RANKER, top, {f: signals.weights[f] for f in FEATURES}, fill)
    return fit(to_rows(table, (scores, fill)), "ranked", (stage,), l2)


def judged_policy(table: list[dict[str, object]], ranked: SelectionPolicy,
                  l2: float | None = None) -> tuple[SelectionPolicy, dict]:
    """The accurate mode's policy, on the questions the judge scored (eval/train/label_judge.py)."""
    judged: Scores = {}
    for line in JUDGE_SCORES.read_text(encoding="utf-8").splitlines():
        obj = json.loads(line)
        judged[obj["key"]] = obj["scores"]
    _, scores = load_scores()
    fill = ranker_fill(judged)
    stage = Stage(JUDGE, JUDGE_READS, dict(ranked.weights), fill)
    questions = [q for q in table if f"{q['corpus']}/{q['id']}" in judged]
    return fit(to_rows(questions, (scores, ranked.stages[0].fill), (judged, fill)), "judged",
               (*ranked.stages, stage), l2)


def write_report(figures: dict) -> None:
    report = json.loads(REPORT.read_text(encoding="utf-8")) if REPORT.is_file() else {}
    report[figures["policy"]] = figures
    REPORT.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--signals", action="store_true", help="fit rag/answer/policy_signals.json (the signals alone)")
    ap.add_argument("--judged", action="store_true", help="fit rag/answer/policy_judged.json (the accurate mode)")
    ap.add_argument("--check", action="store_true", help="refit the policies and compare with the committed ones")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    table = load_table()
    if args.check:  # each refitted at its committed penalty (choosing it by leave-one-corpus-out takes minutes)
        def l2_of(path: Path) -> float:
            return float(SelectionPolicy.load(path).fitted["l2"])  # type: ignore[arg-type]

        signals, _ = signals_policy(table, l2_of(SIGNALS_POLICY_FILE))
        ranked, _ = ranked_policy(table, signals, l2=l2_of(POLICY_FILE))
        fits = {SIGNALS_POLICY_FILE: signals, POLICY_FILE: ranked}
        if JUDGED_POLICY_FILE.is_file():
            fits[JUDGED_POLICY_FILE] = judged_policy(table, ranked, l2_of(JUDGED_POLICY_FILE))[0]
        same = [fitted == SelectionPolicy.load(path) for path, fitted in fits.items()]
        for path, ok in zip(fits, same):
            print(f"{path.name} " + ("matches the fit" if ok else "DIFFERS from the fit"))
        return 0 if all(same) else 1
    if args.judged:
        policy, figures = judged_policy(table, SelectionPolicy.load(POLICY_FILE))
        policy.save(JUDGED_POLICY_FILE)
    elif args.signals:
        policy, figures = signals_policy(table)
        policy.save(SIGNALS_POLICY_FILE)
    else:
        policy, figures = ranked_policy(table, SelectionPolicy.load(SIGNALS_POLICY_FILE))
        policy.save(POLICY_FILE)
    write_report(figures)
    print(json.dumps({k: v for k, v in figures.items() if k not in ("loco_p_at_1", "loco_strict")}))
    print("leave-one-corpus-out macro: P@1", figures["loco_p_at_1"]["macro"], "strict", figures["loco_strict"]["macro"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
