"""Helpers shared by the benchmark scripts."""

from __future__ import annotations

import socket
import statistics
import time
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(values: list[float], p: float) -> float:
    """The ``p``-th percentile (0-100), nearest rank."""
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def query_latency(engine: Any, embedder: Any, queries: list[str], repeats: int,
                  warm_up: str | None = None) -> dict[str, float]:
    """Median over ``repeats`` of p50/p95 ``engine.search`` latency (ms), next to the
    reference measured in the same loop: embedding the query alone."""
    engine.search(warm_up or queries[0], 5)  # builds the BM25 index once
    p50s, p95s, refs = [], [], []
    for _ in range(repeats):
        lat, ref = [], []
        for q in queries:
            t0 = time.perf_counter()
            embedder.embed([q])
            ref.append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            engine.search(q, 5)
            lat.append((time.perf_counter() - t0) * 1000)
        p50s.append(statistics.median(lat))
        p95s.append(percentile(lat, 95))
        refs.append(statistics.median(ref))
    p50, ref50 = statistics.median(p50s), statistics.median(refs)
    return {"p50_ms": round(p50, 1), "p95_ms": round(statistics.median(p95s), 1),
            "embed_only_p50_ms": round(ref50, 1), "ratio_to_embed": round(p50 / ref50, 2)}


def dev_questions(root: Any) -> list[str]:
    """The questions of the dev suite's news corpus (``eval/dev.jsonl``), in order."""
    import json

    return [json.loads(line)["question"] for line in (root / "eval" / "dev.jsonl").read_text().splitlines()]


def seeded_engine(root: Any, data_dir: Any) -> Any:
    """An engine on the default settings over a fresh index of ``seeds/`` in ``data_dir``, models loaded."""
    from rag.engine import Rag
    from rag.settings import Settings

    engine = Rag(Settings(data_dir=data_dir))
    engine.ingestor.ingest_paths([root / "seeds"], prefix="")
    engine.load()
    return engine
