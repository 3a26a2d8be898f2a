"""A made-up corpus of any size for the tests that need many records: short
articles of 16 sentences (about 20 records each: 16 sentences, 3-4 chunks)."""

from __future__ import annotations

from pathlib import Path


def write_articles(folder: Path, articles: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(articles):
        sentences = [f"Article {i} notes that the lighthouse keeper of station {i} logs tanker {j} in a green "
                     f"ledger at {j % 24} o'clock." for j in range(16)]
        (folder / f"article{i:02}.txt").write_text(" ".join(sentences), encoding="utf-8")
    return folder
