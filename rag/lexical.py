"""The lexical side of hybrid retrieval: BM25 (bm25s) over chunk texts.

Where it lives: nowhere on disk. It is rebuilt from the vector store's own
contents (the store is the single source of truth) whenever the store's version
token changes. The token is stored in the store itself and rewritten by every
write, whichever process made it, so every API worker sharing one Chroma server,
and every restarted worker, sees the same lexical index as the dense one."""

from __future__ import annotations

import logging
import math
import threading
from collections import Counter
from collections.abc import Sequence
from typing import Protocol

import numpy as np

from rag.store import Record
from rag.text import tokens


class LexicalIndex:
    def __init__(self, records: Sequence[Record]) -> None:
        import bm25s

        logging.getLogger("bm25s").setLevel(logging.WARNING)  # bm25s sets DEBUG on import

        self.records = list(records)
        corpus = [tokens(r.indexed_text) for r in self.records]
        self.df: Counter[str] = Counter()
        for toks in corpus:
            self.df.update(set(toks))
        self.n_docs = len(corpus)
        self._bm25 = None
        if self.records:
            vocab: dict[str, int] = {}
            ids = [[vocab.setdefault(t, len(vocab)) for t in toks] for toks in corpus]
            self._vocab = vocab
            self._bm25 = bm25s.BM25()
            self._bm25.index(bm25s.tokenization.Tokenized(ids=ids, vocab=vocab), show_progress=False)

    def idf(self, token: str) -> float:
        """Smoothed inverse document frequency; unseen tokens get the maximum."""
        return math.log(1.0 + (self.n_docs + 1) / (self.df.get(token, 0) + 0.5))

    def search(self, query: str, n: int, sources: frozenset[str] | None = None) -> list[tuple[Record, float]]:
        """The ``n`` best chunks by BM25 (only of ``sources``, when given)."""
        if self._bm25 is None:
            return []
        q = [t for t in tokens(query) if t in self._vocab]
        if not q:
            return []
        scores = self._bm25.get_scores(q)
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
                self._index = LexicalIndex(store.all_chunks())
                self._key = key
            return self._index
