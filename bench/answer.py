"""Answer latency benchmark: the full pipeline versus raw llama.cpp answering the
same final prompt, side by side in the same run.

Run: .venv/bin/python bench/answer.py [--repeats 4]

For every dev question the pipeline runs end to end (retrieval, evidence
selection, grammar-constrained generation, verification). Then, for the questions
it answered with the model, a second llama.cpp instance (raw llama-cpp-python,
same model, same ``Llama`` options, the same answer constraint) answers the exact
messages the pipeline sent, right after (or, every other repeat, right before)
the pipeline's own answer, so both meet the same machine state. Reported: medians
over repeats of p50 end-to-end and time to first token, and the ratio
pipeline/raw (the pipeline's own overhead).

The learned ranker's cost, in the same run: every repeat also answers all the
questions once with the learned ranker on (``RAG_RANKER=true``) and once with it
off (the signals-only policy, the default; same index, embedder and model),
in two passes whose order alternates by repeat (answering a question right after
the other pipeline answered it would find its prompt in llama.cpp's cache), and
times the retrieval and selection stage (``AnswerPipeline.decide``) of both.
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

from rag.answer.drafting import build_messages  # noqa: E402
from bench.common import dev_questions, seeded_engine  # noqa: E402
from rag.engine import Rag  # noqa: E402
from rag.answer.generation import ANSWER_GRAMMAR, ChatTemplate, llama_options  # noqa: E402
from rag.answer.llama_model import load_llama, repack_here  # noqa: E402
from rag.answer.greedy_grammar import GreedyGrammar  # noqa: E402
from rag.types import TokenEvent  # noqa: E402


def raw_call(llm, template: ChatTemplate, messages, max_tokens: int,
             ttfts: list[float], totals: list[float]) -> None:
    """The same prompt tokens (chat template and prefill), with ANSWER_GRAMMAR
    applied as the pipeline's generator applies it; appends its TTFT and total (ms)."""
    t0 = time.perf_counter()
    ttft = None
    with GreedyGrammar(llm, ANSWER_GRAMMAR) as grammar:
        for chunk in llm.create_completion(template.tokens(messages), temperature=0.0, max_tokens=max_tokens,
                                           stream=True, logits_processor=grammar.processor()):
            if ttft is None and chunk["choices"][0]["text"]:
                ttft = time.perf_counter() - t0
    total = time.perf_counter() - t0
    ttfts.append((ttft or total) * 1000)
    totals.append(total * 1000)


def timed(engine: Rag, question: str) -> float:
    """Milliseconds ``engine`` takes to answer ``question`` (streamed to the end)."""
    t0 = time.perf_counter()
    for _ in engine.ask_stream(question):
        pass
    return (time.perf_counter() - t0) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()
    questions = dev_questions(ROOT)
    with tempfile.TemporaryDirectory() as tmp:
        engine = seeded_engine(ROOT, Path(tmp))
        settings = engine.settings
        flipped = Rag(settings.model_copy(update={"ranker": not settings.ranker}), embedder=engine.embedder,
                      store=engine.store, generator=engine.generator)  # the learned ranker on if it is off, or off
        raw = load_llama(settings.model_path, repack_here(settings.llm_repack).repack,
                         **llama_options(settings.ctx, settings.n_threads, settings.n_gpu_layers))
        template = ChatTemplate(raw)
        prompts = {}
        for q in questions:  # the exact messages the pipeline sends
            _, decision, _ = engine.pipeline.decide(q, settings.top_k)
            if decision.answerable:
                prompts[q] = build_messages(q, [unit.record.text for unit in decision.evidence])
        engine.ask(questions[0])
        flipped.ask(questions[0])
        raw_call(raw, template, prompts[next(iter(prompts))], settings.max_answer_tokens, [], [])  # warm both
        runs = []
        for repeat in range(args.repeats):
            pipe_total, pipe_ttft, pipe_total_llm, pipe_ttft_llm = [], [], [], []
            raw_total, raw_ttft = [], []
            for q in questions:
                # raw llama.cpp answers each prompt right next to the pipeline (which one
                # goes first alternates by repeat), so both see the same machine state
                if q in prompts and repeat % 2:
                    raw_call(raw, template, prompts[q], settings.max_answer_tokens, raw_ttft, raw_total)
                t0 = time.perf_counter()
                first = None
                for ev in engine.ask_stream(q):
                    if first is None and isinstance(ev, TokenEvent):
                        first = time.perf_counter()
                total = (time.perf_counter() - t0) * 1000
                ttft = ((first or time.perf_counter()) - t0) * 1000
                pipe_total.append(total)
                pipe_ttft.append(ttft)
                if q in prompts:
                    pipe_total_llm.append(total)
                    pipe_ttft_llm.append(ttft)
                    if not repeat % 2:
                        raw_call(raw, template, prompts[q], settings.max_answer_tokens, raw_ttft, raw_total)
            runs.append({
                "pipeline_p50_ms": statistics.median(pipe_total), "pipeline_ttft_p50_ms": statistics.median(pipe_ttft),
                "pipeline_answered_p50_ms": statistics.median(pipe_total_llm),
                "pipeline_answered_ttft_p50_ms": statistics.median(pipe_ttft_llm),
                "raw_p50_ms": statistics.median(raw_total), "raw_ttft_p50_ms": statistics.median(raw_ttft),
            })
            passes = {"ranker_on": engine if settings.ranker else flipped,
                      "ranker_off": flipped if settings.ranker else engine}
            for name in (list(passes) if repeat % 2 == 0 else list(reversed(passes))):
                runs[-1][f"{name}_p50_ms"] = statistics.median(timed(passes[name], q) for q in questions)
                runs[-1][f"{name}_selection_p50_ms"] = statistics.median(
                    passes[name].pipeline.decide(q, settings.top_k)[2] for q in questions)
    result = {k: round(statistics.median(r[k] for r in runs), 1) for k in runs[0]}
    result["overhead_ratio_total"] = round(result["pipeline_answered_p50_ms"] / result["raw_p50_ms"], 2)
    result["overhead_ratio_ttft"] = round(result["pipeline_answered_ttft_p50_ms"] / result["raw_ttft_p50_ms"], 2)
    result["ranker_added_p50_ms"] = round(result["ranker_on_p50_ms"] - result["ranker_off_p50_ms"], 1)
    result["ranker_added_selection_p50_ms"] = round(result["ranker_on_selection_p50_ms"]
                                                    - result["ranker_off_selection_p50_ms"], 1)
    result["questions"] = len(questions)
    result["answered_with_model"] = len(prompts)
    result["repeats"] = args.repeats
    result["repack"] = repack_here(settings.llm_repack).describe()
    print(json.dumps(result, indent=2))
    if args.json_out:
        args.json_out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
