"""Hybrid retrieval: dense (Chroma, cosine) and lexical (BM25) rankings of chunks,
fused by reciprocal rank fusion."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np

from rag.index.embeddings import Embedder
from rag.index.lexical import LexicalCache, LexicalIndex
from rag.index.store import Record, VectorStore

RRF_K = 60


@dataclass(frozen=True)
class SearchHit:
    source: str
    chunk_id: str
    start: int
    end: int
    text: str
    score: float
    dense: float = 0.0

    def to_dict(self) -> dict[str, object]:
        d = asdict(self)
        d.pop("dense")
        return d


@dataclass
class SearchResult:
    query: str
    hits: list[SearchHit]
    query_vector: np.ndarray
    lexical: LexicalIndex
    retrieval_ms: float
    extra: list[SearchHit] = field(default_factory=list)  # each ranker's best, beyond the fused top-k
    sentences: list[Record] = field(default_factory=list)  # the evidence units of hits + extra
    sentence_vectors: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    statement_vector: np.ndarray | None = None  # the question put as a statement (see rag.answer.question)

    def to_dict(self) -> dict[str, object]:
        return {"query": self.query, "results": [h.to_dict() for h in self.hits]}


def rrf(rankings: list[list[str]], k: int = RRF_K) -> dict[str, float]:
    scores: dict[str, float] = {}
    for ranking in rankings:
        for rank, key in enumerate(ranking):
            scores[key] = scores.get(key, 0.0) + 1.0 / (k + rank + 1)
    return scores


def admitted_top(search: Callable[[int], list[tuple[Record, float]]], n: int) -> list[tuple[Record, float]]:
    """The best ``n`` hits of ``search`` (asked for its best m) that may take a place among
    search hits: passages that mostly address the model, and every passage of a document
    that mostly does (rag.index.store.ADDRESSES_MODEL, marked at ingest), take none, and the
    places they would have taken go to the next passages, as if they were not there."""
    asked = n
    while True:
        found = search(asked)
        kept = [(r, s) for r, s in found if not r.addresses_model]
        if len(kept) >= n or len(found) < asked:  # enough, or nothing more to find
            return kept[:n]
        asked += max(n - len(kept), asked)  # at least double: a hostile document may hold many passages


class HybridRetriever:
    def __init__(self, store: VectorStore, embedder: Embedder, lexical: LexicalCache | None = None) -> None:
        self.store = store
        self.embedder = embedder
        self.lexical = lexical or LexicalCache()

    def search(self, query: str, k: int = 5, candidates: int | None = None, per_ranker: int = 0,
               sources: frozenset[str] | None = None) -> SearchResult:
        """Fused top-``k``; with ``per_ranker`` > 0 also each ranker's own top
        ``per_ranker`` (in ``extra``), so that a strong lexical-only or dense-only
        match is not lost to fusion. ``sources``: only chunks of these documents."""
        t0 = time.perf_counter()
        n = candidates or max(4 * k, 20)
        # lexical first: in a fresh process the embedder's session is still loading
        # in a thread meanwhile (see rag.index.onnx_embedder), and BM25 needs no vector
        lexical = self.lexical.get(self.store)
        sparse = admitted_top(lambda m: lexical.search(query, m, sources), n)
        vector = self.embedder.embed([query])[0]
        dense = admitted_top(lambda m: self.store.query_chunks(vector, m, sources), n)
        records: dict[str, Record] = {r.id: r for r, _ in dense}
        records.update({r.id: r for r, _ in sparse})
        dense_score = {r.id: s for r, s in dense}
        fused = rrf([[r.id for r, _ in dense], [r.id for r, _ in sparse]])
        order = sorted(fused, key=lambda i: (-fused[i], -dense_score.get(i, 0.0)))[:k]

        def hit(i: str) -> SearchHit:
            r = records[i]
            return SearchHit(source=r.source, chunk_id=i, start=r.start, end=r.end, text=r.text,
                             score=round(fused[i] * RRF_K / 2, 4), dense=dense_score.get(i, 0.0))

        extra_ids = [r.id for r, _ in sparse[:per_ranker]] + [r.id for r, _ in dense[:per_ranker]]
        extra = [hit(i) for i in dict.fromkeys(extra_ids) if i not in order]
        return SearchResult(query, [hit(i) for i in order], vector, lexical,
                            (time.perf_counter() - t0) * 1000, extra)

    def retrieve(self, query: str, k: int = 5, per_ranker: int = 2, statement: str | None = None,
                 sources: frozenset[str] | None = None) -> SearchResult:
        """``search`` plus the evidence units (sentences) of every chunk found and
        their vectors, in one trip: evidence selection needs nothing else. A
        ``statement`` (the question put as a statement) is embedded too."""
        t0 = time.perf_counter()
        result = self.search(query, k, per_ranker=per_ranker, sources=sources)
        result.statement_vector = (self.embedder.embed([statement])[0] if statement and statement != query
                                   else result.query_vector)
        ids = [h.chunk_id for h in result.hits + result.extra]
        result.sentences, result.sentence_vectors = self.store.sentences_of(ids)
        result.retrieval_ms = (time.perf_counter() - t0) * 1000
        return result
