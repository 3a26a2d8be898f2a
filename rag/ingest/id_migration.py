"""Moving documents of older indexes to the source ids of today's rule.

Older versions named a file by its path relative to the folder given
(``README.md``); today the folder's name starts the id (``projA/README.md``; see
``rag.ingest.loaders``). When a document about to be ingested under a prefixed id has its
bare id in the index with the same text, the bare id is replaced by the new one
(``IngestReport.migrated``), so re-ingesting a folder after the upgrade neither
duplicates nor loses a document. "The same text" is the same document hash under
the current records version or an earlier one (``EARLIER_RECORDS_VERSIONS``)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence

from rag.ingest.document import Document
from rag.index.store import SourceState

# The document hashes earlier code stored: version 1 hashed the text alone,
# later ones f"{version}\x00{text}" (``rag.ingest.ingestor.doc_hash``).
EARLIER_RECORDS_VERSIONS = ("1", "2", "3")


def text_hashes(text: str, doc_hash: Callable[[str], str]) -> set[str]:
    """Every document hash that ``text`` has had: today's and those of earlier records versions."""
    hashes = {doc_hash(text)}
    for version in EARLIER_RECORDS_VERSIONS:
        data = text if version == "1" else f"{version}\x00{text}"
        hashes.add(hashlib.sha256(data.encode("utf-8")).hexdigest())
    return hashes


def visible_hashes(state: SourceState | None) -> set[str]:
    """The document hashes of what searches see of a source (empty: nothing)."""
    if state is None or not state.chunks:
        return set()
    if state.live is None:  # an index made before versions: every stored record is visible
        return set(state.versions)
    return {state.live}


def renames(docs: Sequence[Document], bare: Mapping[str, str], existing: Mapping[str, SourceState],
            doc_hash: Callable[[str], str]) -> dict[str, str]:
    """old (bare) id -> new id, for each document whose bare id the index shows with
    the same text; a bare id that is itself among ``docs`` is never moved."""
    given = {d.source for d in docs}
    moves: dict[str, str] = {}
    for doc in docs:
        old = bare.get(doc.source)
        if old is None or old in given or old in moves:
            continue
        if visible_hashes(existing.get(old)) & text_hashes(doc.text, doc_hash):
            moves[old] = doc.source
    return moves


def counted_as(new_hashes: Mapping[str, str], existing: Mapping[str, SourceState]) -> tuple[int, int, int]:
    """How an ingest counted the documents of these new ids (id -> today's document
    hash), given what the index showed before: (added, updated, unchanged)."""
    added = updated = unchanged = 0
    for new, h in new_hashes.items():
        seen = visible_hashes(existing.get(new))
        if not seen:
            added += 1
        elif h in seen:
            unchanged += 1
        else:
            updated += 1
    return added, updated, unchanged
