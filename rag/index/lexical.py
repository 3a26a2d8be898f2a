"""The lexical side of hybrid retrieval: BM25 over chunk texts.

Where it lives: nowhere on disk. It is rebuilt from the vector store's own
contents (the store is the single source of truth) whenever the store's version
token changes. The token is stored in the store itself and rewritten by every
write, whichever process made it, so every API worker sharing one Chroma server,
and every restarted worker, sees the same lexical index as the dense one."""

from __future__ import annotations

import math
import threading
from collections import Counter
from collections.abc import Sequence
from typing import Protocol

import numpy as np

from rag.index.store import Record
from rag.text import tokens


K1 = 1.5  # BM25 term-frequency saturation (Lucene's and bm25s's default)
B = 0.75  # BM25 document-length normalisation (Lucene's and bm25s's default)


class BM25:
    """Okapi BM25 in Lucene's variant, the scores of ``bm25s.BM25(method="lucene")``
    (``tests/index/test_lexical.py`` checks them against bm25s). Written out with NumPy
    because bm25s imports SciPy, about 0.25 s of every question's start-up here.
    Each term's postings (documents and their precomputed scores) are kept in one
    array, sorted by term, as bm25s's eager index does."""

    def __init__(self, docs: Sequence[Sequence[int]], n_terms: int, k1: float = K1, b: float = B) -> None:
        self.n_docs = len(docs)
        lengths = np.array([len(d) for d in docs], dtype=np.float64)
        avg = float(lengths.mean()) if self.n_docs else 0.0
        doc_of: list[int] = []
        term_of: list[int] = []
        tf_of: list[int] = []
        for i, doc in enumerate(docs):
            counts = Counter(doc)
            doc_of.extend([i] * len(counts))
            term_of.extend(counts.keys())
            tf_of.extend(counts.values())
        terms = np.array(term_of, dtype=np.int64)
        df = np.bincount(terms, minlength=n_terms)
        idf = np.log(1.0 + (self.n_docs - df + 0.5) / (df + 0.5)).astype(np.float32)
        tf = np.array(tf_of, dtype=np.float32)
        norm = k1 * ((1.0 - b) + b * lengths[np.array(doc_of, dtype=np.int64)] / avg) if avg else 0.0
        scores = (idf[terms] * (tf / (norm + tf))).astype(np.float32)
        order = np.argsort(terms, kind="stable")
        self._docs = np.array(doc_of, dtype=np.int64)[order]
        self._scores = scores[order]
        self._start = np.concatenate([[0], np.cumsum(df)])

    def scores(self, query_terms: Sequence[int]) -> np.ndarray:
        """Each document's score for the query's terms (a repeated term counts again)."""
        total = np.zeros(self.n_docs, dtype=np.float32)
        for t in query_terms:
            lo, hi = self._start[t], self._start[t + 1]
            total[self._docs[lo:hi]] += self._scores[lo:hi]  # a term's documents are distinct
        return total


class LexicalIndex:
    def __init__(self, records: Sequence[Record]) -> None:
        self.records = list(records)
        corpus = [tokens(r.indexed_text) for r in self.records]
        self.df: Counter[str] = Counter()
        for toks in corpus:
            self.df.update(set(toks))
        self.n_docs = len(corpus)
        self._bm25: BM25 | None = None
        self._vocab: dict[str, int] = {}
        if self.records:
            ids = [[self._vocab.setdefault(t, len(self._vocab)) for t in toks] for toks in corpus]
            self._bm25 = BM25(ids, len(self._vocab))

    def idf(self, token: str) -> float:
        """Smoothed inverse document frequency; unseen tokens get the maximum."""
        return math.log(1.0 + (self.n_docs + 1) / (self.df.get(token, 0) + 0.5))

    def search(self, query: str, n: int, sources: frozenset[str] | None = None) -> list[tuple[Record, float]]:
        """The ``n`` best chunks by BM25 (only of ``sources``, when given)."""
        if self._bm25 is None:
            return []
        q = [self._vocab[t] for t in tokens(query) if t in self._vocab]
        if not q:
            return []
        scores = self._bm25.scores(q)
        if sources is not None:
            scores = np.where([r.source in sources for r in self.records], scores, 0.0)
        k = min(n, len(self.records))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top])]
        return [(self.records[i], float(scores[i])) for i in top if scores[i] > 0]


class ChunkSource(Protocol):
    """The part of a ``VectorStore`` the cache needs."""

    def version(self) -> str: ...
    def all_chunks(self) -> list[Record]: ...


class LexicalCache:
    """Holds the current ``LexicalIndex``; rebuilds it when the store's version
    token (any process's writes) or this process's write generation changes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: tuple[str, int] | None = None
        self._index: LexicalIndex | None = None
        self.generation = 0

    def invalidate(self) -> None:
        with self._lock:
            self.generation += 1

    def get(self, store: ChunkSource) -> LexicalIndex:
        # the token is read before the chunks: a write that lands in between only
        # causes one more rebuild on the next query, never a stale index
        version = store.version()
        with self._lock:
            key = (version, self.generation)
            if self._index is None or key != self._key:
                # a hostile document's passages (rag.index.store.ADDRESSES_MODEL) neither match nor weigh words
                self._index = LexicalIndex([r for r in store.all_chunks() if r.addresses_model != "document"])
                self._key = key
            return self._index
