"""``rag.index.lexical.BM25`` gives bm25s's Lucene BM25 scores (bm25s is the reference,
a dev dependency: the product does not import it, for its SciPy start-up cost)."""

from __future__ import annotations

import random
from pathlib import Path

import bm25s
import numpy as np
import pytest

from rag.index.lexical import BM25, LexicalIndex
from rag.index.store import Record
from rag.text import tokens

ROOT = Path(__file__).resolve().parents[2]


def reference_scores(docs: list[list[int]], n_terms: int, query: list[int]) -> np.ndarray:
    vocab = {str(t): t for t in range(n_terms)}
    model = bm25s.BM25(method="lucene")
    model.index(bm25s.tokenization.Tokenized(ids=docs, vocab=vocab), show_progress=False)
    return model.get_scores(query)


def seed_paragraphs() -> list[list[str]]:
    texts = [p.read_text(encoding="utf-8") for p in sorted((ROOT / "seeds").glob("*.txt"))]
    return [tokens(par) for t in texts for par in t.split("\n") if tokens(par)]


def test_scores_equal_bm25s_on_the_seed_paragraphs() -> None:
    corpus = seed_paragraphs()
    vocab: dict[str, int] = {}
    docs = [[vocab.setdefault(t, len(vocab)) for t in doc] for doc in corpus]
    index = BM25(docs, len(vocab))
    rng = random.Random(7)
    for _ in range(50):
        query = [vocab[t] for t in rng.sample(sorted(vocab), 4)]
        query.append(query[0])  # a repeated term counts twice, as in bm25s
        ours, theirs = index.scores(query), reference_scores(docs, len(vocab), query)
        assert ours.dtype == np.float32
        np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-7)
        assert list(np.argsort(-ours, kind="stable")[:10]) == list(np.argsort(-theirs, kind="stable")[:10])


@pytest.mark.parametrize("seed", range(5))
def test_scores_equal_bm25s_on_random_corpora(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_terms = int(rng.integers(5, 300))
    docs = [list(map(int, rng.integers(0, n_terms, size=int(rng.integers(1, 60))))) for _ in range(int(rng.integers(1, 200)))]
    present = sorted({t for d in docs for t in d})  # bm25s needs every term of its vocabulary in some document
    remap = {t: i for i, t in enumerate(present)}
    docs = [[remap[t] for t in d] for d in docs]
    query = list(map(int, rng.integers(0, len(present), size=6)))
    np.testing.assert_allclose(BM25(docs, len(present)).scores(query),
                               reference_scores(docs, len(present), query), rtol=1e-6, atol=1e-7)


def test_a_term_in_no_document_and_an_empty_query_score_zero() -> None:
    index = BM25([[0, 1], [1, 2]], n_terms=4)
    assert not index.scores([3]).any()
    assert not index.scores([]).any()


def test_lexical_index_ranks_chunks_as_bm25s_would() -> None:
    records = [Record(f"c{i}", " ".join(doc), {"source": f"s{i % 3}", "start": 0, "end": 1})
               for i, doc in enumerate(seed_paragraphs())]
    index = LexicalIndex(records)
    query = "Meta Llama military national security agencies"
    hits = index.search(query, 5)
    vocab = index._vocab
    docs = [[vocab[t] for t in tokens(r.indexed_text)] for r in records]
    expected = reference_scores(docs, len(vocab), [vocab[t] for t in tokens(query) if t in vocab])
    assert [r.id for r, _ in hits] == [records[i].id for i in np.argsort(-expected, kind="stable")[:5]]
    only = index.search(query, 5, sources=frozenset({"s1"}))
    assert only and all(r.source == "s1" for r, _ in only)
