"""Have the accurate mode's judge (``rag.answer.llm_judge``: a larger instruction model)
score the units the ranked policy ranks best, for some training questions: what
``eval/fit_policy.py --judged`` fits ``rag/answer/policy_judged.json`` on.

    .venv/bin/python eval/train/label_judge.py [--model M.gguf] [--per-corpus 10]

For the first ``--per-corpus`` questions of each training corpus (in a fixed,
seeded order; answerable or not), the ``JUDGE_READS`` candidates that
``rag/answer/policy.json`` ranks best, with the ranker's cross-fitted scores
(``eval/train/ranker_scores.json.gz``), are judged. Slow (about 1 s a unit on 2
cores) and resumable: each question's scores are appended to
``eval/train/judge_scores.jsonl`` as soon as they are made, and questions already
there are skipped.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "eval"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from fit_policy import JUDGE_READS, SCORES, load_scores, load_table, to_rows  # noqa: E402
from rag.answer.ranker import passage  # noqa: E402
from rag.answer.selection import POLICY_FILE, SelectionPolicy  # noqa: E402

OUT = ROOT / "eval" / "train" / "judge_scores.jsonl"
MODEL = ROOT / "models" / "Qwen2.5-Coder-1.5B-Instruct.Q4_K_M.gguf"
PER_CORPUS = 10
SEED = 0
log = logging.getLogger("label_judge")


def chosen_questions(table: list[dict[str, object]], per_corpus: int) -> list[dict[str, object]]:
    by_corpus: dict[str, list[dict[str, object]]] = {}
    for q in table:
        by_corpus.setdefault(str(q["corpus"]), []).append(q)
    rng = random.Random(SEED)
    return [q for name in sorted(by_corpus) for q in rng.sample(by_corpus[name], min(per_corpus, len(by_corpus[name])))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=MODEL)
    parser.add_argument("--per-corpus", type=int, default=PER_CORPUS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from rag.answer.llm_judge import LlmJudge

    table = load_table()
    _, scores = load_scores(SCORES)
    policy = SelectionPolicy.load(POLICY_FILE)
    done = {json.loads(line)["key"] for line in OUT.read_text().splitlines()} if OUT.is_file() else set()
    todo = [q for q in chosen_questions(table, args.per_corpus) if f"{q['corpus']}/{q['id']}" not in done]
    log.info("%d questions to judge (%d already judged)", len(todo), len(done))
    judge = LlmJudge(args.model)
    w = np.array(list(policy.weights.values()), dtype=np.float64)
    fill = policy.stages[0].fill  # the ranker's score of the units it does not read (ranker_fill of the scores)
    t0 = time.perf_counter()
    for n, q in enumerate(todo, 1):
        key = f"{q['corpus']}/{q['id']}"
        row = to_rows([q], ({key: scores[key]}, fill))[0]
        col: list[float | None] = [None] * len(row.texts)
        if len(row.texts):
            s = row.features @ w
            read = np.lexsort((np.arange(len(s)), -s))[:JUDGE_READS]
            cands = q["candidates"]
            got = judge.scores(str(q["question"]), [passage(cands[i]["section"], cands[i]["text"]) for i in read])  # type: ignore[index]
            for i, v in zip(read, got):
                col[int(i)] = round(float(v), 4)
        with OUT.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps({"key": key, "scores": col}) + "\n")
        spent = time.perf_counter() - t0
        log.info("%d/%d %s, %.0f s, about %.0f s left", n, len(todo), key, spent, spent / n * (len(todo) - n))


if __name__ == "__main__":
    main()
