"""Start-up latency of the command line: wall-clock time of whole ``rag`` processes,
next to a bare Python process that loads the same GGUF with llama-cpp-python and
answers the same prompt, measured in the same run.

Run: .venv/bin/python bench/startup.py [--repeats 5]

``seeds/`` is ingested into a temporary index first (``rag ingest``), and every
command runs once untimed, so file caches are warm (and Python's compiled
modules are cached, as for any user: the processes run without
PYTHONDONTWRITEBYTECODE). Then each round runs, one
after another: ``rag ask QUESTION``, ``rag search QUESTION``, ``rag --version``
and the reference, a ``python -c`` process that imports llama_cpp, loads the model
with the options ``rag`` uses (weight repacking included) and completes the exact prompt tokens ``rag ask``
sends for QUESTION (chat template and prefill; no grammar). QUESTION is the first
question of ``eval/dev.jsonl`` that the pipeline answers with the model. Reported:
the median, min and max over rounds of each command's wall time, and the ratio
of its median to the reference's. Each process's stdout is checked (an answer,
search hits, the version).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SCRIPT = Path(sys.executable).with_name("rag")  # the installed console script, as users run it
RAG = [str(SCRIPT)] if SCRIPT.is_file() else [sys.executable, "-m", "rag"]

REFERENCE = """
import json, sys
from rag.answer.llama_model import load_llama  # llama_cpp.Llama, with the repacking choice rag makes
spec = json.loads(sys.argv[1])
llm = load_llama(spec["model"], spec["repack"], **spec["options"])
out = llm.create_completion(spec["tokens"], max_tokens=spec["max_tokens"], temperature=0.0)
print(out["choices"][0]["text"])
"""


def answered_prompt(data_dir: Path) -> tuple[str, dict[str, object]]:
    """The first dev question the pipeline answers with the model, and the reference's
    spec: the model, its ``Llama`` options and the prompt tokens ``rag ask`` sends."""
    from rag.answer.drafting import build_messages
    from rag.engine import Rag
    from rag.answer.generation import ChatTemplate, llama_options
    from rag.answer.llama_model import load_llama, repack_here
    from rag.settings import Settings

    settings = Settings(data_dir=data_dir)
    engine = Rag(settings)
    options = llama_options(settings.ctx, settings.n_threads, settings.n_gpu_layers)
    repack = repack_here(settings.llm_repack).repack
    llm = load_llama(settings.model_path, repack, **options)
    template = ChatTemplate(llm)
    for line in (ROOT / "eval" / "dev.jsonl").read_text(encoding="utf-8").splitlines():
        question = json.loads(line)["question"]
        _, decision, _ = engine.pipeline.decide(question, settings.top_k)
        if decision.answerable:
            messages = build_messages(question, [unit.record.text for unit in decision.evidence])
            return question, {"model": str(settings.model_path), "options": options, "repack": repack,
                              "tokens": template.tokens(messages), "max_tokens": settings.max_answer_tokens}
    raise SystemExit("no dev question is answered with the model")


# Python as users run it: compiled modules are cached (written by the warm-up run)
# even where the environment says not to write them.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def timed(argv: list[str], expect: str) -> float:
    """Wall seconds of one process; it must succeed and print ``expect``."""
    t0 = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, env=ENV)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0 or expect not in proc.stdout:
        raise SystemExit(f"{argv[:4]} failed ({proc.returncode}): {proc.stdout[-300:]} {proc.stderr[-1000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()
    from rag import __version__

    with tempfile.TemporaryDirectory(prefix="rag-bench-startup-") as tmp:
        data = Path(tmp) / "data"
        subprocess.run([*RAG, "ingest", str(ROOT / "seeds"), "--data-dir", str(data)], check=True,
                       capture_output=True, cwd=ROOT)
        question, spec = answered_prompt(data)
        commands = {
            "rag ask": ([*RAG, "ask", question, "--data-dir", str(data)], "sources:"),
            "rag search": ([*RAG, "search", question, "--data-dir", str(data)], "1. "),
            "rag --version": ([*RAG, "--version"], __version__),
            "reference: bare llama-cpp-python": ([sys.executable, "-c", REFERENCE, json.dumps(spec)], ""),
        }
        for argv, expect in commands.values():  # warm file caches (and the embedder's export)
            timed(argv, expect)
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.repeats):
            for name, (argv, expect) in commands.items():
                times[name].append(timed(argv, expect))
    reference = statistics.median(times["reference: bare llama-cpp-python"])
    rows = [{"command": name, "median_s": round(statistics.median(t), 3), "min_s": round(min(t), 3),
             "max_s": round(max(t), 3), "ratio_to_reference": round(statistics.median(t) / reference, 2)}
            for name, t in times.items()]
    print(f"question: {question}")
    print(f"{'command':36s} {'median s':>9s} {'min s':>7s} {'max s':>7s} {'ratio':>6s}")
    for r in rows:
        print(f"{r['command']:36s} {r['median_s']:9.3f} {r['min_s']:7.3f} {r['max_s']:7.3f} "
              f"{r['ratio_to_reference']:6.2f}")
    if args.json_out:
        args.json_out.write_text(json.dumps({"question": question, "repeats": args.repeats, "rows": rows},
                                            indent=2))


if __name__ == "__main__":
    main()
