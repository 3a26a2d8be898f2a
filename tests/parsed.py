"""Checks shared by the parser tests: what every parsed Document must satisfy."""

from __future__ import annotations

from rag.ingest.document import BLOCK_KINDS, Document


def blocks_of(doc: Document) -> list[tuple[str, str, str]]:
    """(kind, text, section) of every block."""
    return [(b.kind, doc.text[b.start:b.end], b.section) for b in doc.blocks]


def check_invariants(doc: Document) -> None:
    """Blocks are known kinds, non-empty and stripped, ordered, disjoint and inside the text."""
    last_end = 0
    for b in doc.blocks:
        span = doc.text[b.start:b.end]
        assert b.kind in BLOCK_KINDS
        assert span and span == span.strip(), (b, span)
        assert last_end <= b.start < b.end <= len(doc.text)
        last_end = b.end
