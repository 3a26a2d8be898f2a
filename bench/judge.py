"""What the accurate mode's judge (``rag.answer.llm_judge``) adds to an answer: for each
dev question over the seeds, the time the judge takes to read the units the
default pipeline ranks best (as many as the accurate mode's judge stage reads), next to
the default pipeline's own answer time for the same question, in the same run.

Run: .venv/bin/python bench/judge.py [--model Qwen2.5-Coder-1.5B-Instruct.Q4_K_M.gguf] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import dev_questions, seeded_engine  # noqa: E402
from rag.answer.llm_judge import LlmJudge  # noqa: E402
from rag.answer.ranker import passage  # noqa: E402
from rag.answer.selection import JUDGE, JUDGED_POLICY_FILE, SelectionPolicy  # noqa: E402

MODEL = ROOT / "models" / "Qwen2.5-Coder-1.5B-Instruct.Q4_K_M.gguf"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=MODEL, help="the rerank model (a GGUF instruction model)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()
    reads = next(s.reads for s in SelectionPolicy.load(JUDGED_POLICY_FILE).stages if s.signal == JUDGE)
    questions = dev_questions(ROOT)
    with tempfile.TemporaryDirectory() as tmp:
        engine = seeded_engine(ROOT, Path(tmp))
        settings = engine.settings
        judge = LlmJudge(args.model, n_threads=settings.n_threads, repack=settings.llm_repack)
        units = {}
        for q in questions:
            _, decision, _ = engine.pipeline.decide(q, settings.top_k)
            units[q] = [passage(c.record.section, c.record.text) for c in decision.candidates[:reads]]
        engine.ask(questions[0])
        judge.scores(questions[0], units[questions[0]])  # warm both
        runs = []
        for _ in range(args.repeats):
            pipe, judged = [], []
            for q in questions:
                t0 = time.perf_counter()
                engine.ask(q)
                pipe.append((time.perf_counter() - t0) * 1000)
                t0 = time.perf_counter()
                judge.scores(q, units[q])
                judged.append((time.perf_counter() - t0) * 1000)
            runs.append({"pipeline_p50_ms": statistics.median(pipe), "judge_p50_ms": statistics.median(judged)})
    result = {k: round(statistics.median(r[k] for r in runs), 1) for k in runs[0]}
    result["accurate_mode_p50_ms"] = round(result["pipeline_p50_ms"] + result["judge_p50_ms"], 1)
    result["ratio_to_pipeline"] = round(result["accurate_mode_p50_ms"] / result["pipeline_p50_ms"], 2)
    result.update(questions=len(questions), units_a_question=reads, repeats=args.repeats,
                  model=args.model.name)
    print(json.dumps(result, indent=2))
    if args.json_out:
        args.json_out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
