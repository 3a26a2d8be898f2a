"""Indexes made before source ids started with the folder's name: re-ingesting the
same folder moves each unchanged document from its bare id to its new one, with
nothing duplicated or lost (real Chroma, the real embedder)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from rag.engine import Rag
from rag.ingest.id_migration import counted_as, renames, text_hashes, visible_hashes
from rag.ingest.document import Document
from rag.ingest.ingestor import doc_hash
from rag.settings import Settings
from rag.index.store import SourceState


def make_folder(root: Path, name: str, files: dict[str, str]) -> Path:
    folder = root / name
    for rel, text in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text(text, encoding="utf-8")
    return folder


PROJ_A = {"README.md": "# Alpha\n\nThe alpha project ships a lighthouse simulator.",
          "sub/notes.txt": "The ferry to the island leaves at seven every morning.",
          "plain.txt": "The bakery sells rye bread and closes at noon on Sundays."}


@pytest.fixture
def engine(tmp_path: Path, embedder: Any) -> Rag:
    return Rag(Settings(data_dir=tmp_path / "data", use_llm=False), embedder=embedder)


def sources(engine: Rag) -> list[str]:
    return [s for s, _ in engine.ingestor.list_sources()]


def test_re_ingesting_a_folder_after_the_upgrade_moves_its_documents(engine: Rag, tmp_path: Path) -> None:
    proj = make_folder(tmp_path, "projA", PROJ_A)
    old, _ = engine.ingestor.ingest_paths([proj], prefix="")  # what older versions wrote
    assert sources(engine) == ["README.md", "plain.txt", "sub/notes.txt"]
    chunks = old.chunks

    report, _ = engine.ingestor.ingest_paths([proj])
    assert (report.added, report.updated, report.unchanged, report.migrated, report.removed) == (0, 0, 0, 3, 0)
    assert report.chunks == chunks  # nothing duplicated, nothing lost
    assert sources(engine) == ["projA/README.md", "projA/plain.txt", "projA/sub/notes.txt"]
    hits = engine.search("When does the ferry leave?", 3).hits
    assert hits[0].source == "projA/sub/notes.txt" and all("/" in h.source for h in hits)

    again, _ = engine.ingestor.ingest_paths([proj])
    assert (again.added, again.unchanged, again.migrated, again.chunks) == (0, 3, 0, chunks)


def test_a_file_given_by_itself_moves_too(engine: Rag, tmp_path: Path) -> None:
    proj = make_folder(tmp_path, "projA", PROJ_A)
    engine.ingestor.ingest_paths([proj / "README.md"], prefix="")
    report, _ = engine.ingestor.ingest_paths([proj / "README.md"])
    assert (report.added, report.migrated) == (0, 1)
    assert sources(engine) == ["projA/README.md"]


def test_with_prune_moved_documents_are_not_counted_as_removed(engine: Rag, tmp_path: Path) -> None:
    proj = make_folder(tmp_path, "projA", PROJ_A)
    engine.ingestor.ingest_paths([proj], prefix="")
    engine.ingestor.ingest_documents([Document("elsewhere.txt", "Another document about tugs.")])
    report, _ = engine.ingestor.ingest_paths([proj], prune=True)
    assert (report.added, report.migrated, report.removed) == (0, 3, 1)
    assert sources(engine) == ["projA/README.md", "projA/plain.txt", "projA/sub/notes.txt"]


def test_only_the_same_text_moves(engine: Rag, tmp_path: Path) -> None:
    """A bare id whose text differs (another folder's file of that name, or a file
    changed since) is not taken over: it stays, and the new id is added."""
    proj = make_folder(tmp_path, "projA", PROJ_A)
    engine.ingestor.ingest_paths([proj], prefix="")
    other = make_folder(tmp_path, "projB", {"README.md": "# Beta\n\nThe beta project builds tugboats."})
    report, _ = engine.ingestor.ingest_paths([other])
    assert (report.added, report.migrated) == (1, 0)
    assert sources(engine) == ["README.md", "plain.txt", "projB/README.md", "sub/notes.txt"]

    (proj / "plain.txt").write_text("The bakery now also sells croissants.", encoding="utf-8")
    report, _ = engine.ingestor.ingest_paths([proj])
    assert (report.added, report.migrated) == (1, 2)
    assert sources(engine) == ["plain.txt", "projA/README.md", "projA/plain.txt", "projA/sub/notes.txt",
                               "projB/README.md"]


def test_a_move_cut_short_is_finished_by_the_next_run(engine: Rag, tmp_path: Path) -> None:
    """Killed after the new ids were written but before the bare ones were removed:
    the next run removes them and counts them as moved, not as unchanged."""
    proj = make_folder(tmp_path, "projA", PROJ_A)
    engine.ingestor.ingest_paths([proj], prefix="")
    engine.ingestor.ingest_documents([Document(f"projA/{rel}", text) for rel, text in PROJ_A.items()
                                      if rel.endswith(".txt")])
    assert len(sources(engine)) == 5
    report, _ = engine.ingestor.ingest_paths([proj])
    assert (report.added, report.unchanged, report.migrated) == (0, 0, 3)
    assert sources(engine) == ["projA/README.md", "projA/plain.txt", "projA/sub/notes.txt"]


def test_a_bare_prefix_moves_nothing(engine: Rag, tmp_path: Path) -> None:
    proj = make_folder(tmp_path, "projA", PROJ_A)
    engine.ingestor.ingest_paths([proj / "sub"], prefix="")  # 'notes.txt'
    report, _ = engine.ingestor.ingest_paths([proj], prefix="")  # 'sub/notes.txt' is another id, not a move
    assert (report.added, report.migrated) == (3, 0)
    assert sources(engine) == ["README.md", "notes.txt", "plain.txt", "sub/notes.txt"]


# --- the rule itself, on deterministic inputs ------------------------------------------------


def test_text_hashes_cover_every_records_version() -> None:
    hashes = text_hashes("Some text.", doc_hash)
    assert doc_hash("Some text.") in hashes
    assert hashlib.sha256(b"Some text.").hexdigest() in hashes  # version 1: the text alone
    assert hashlib.sha256(b"2\x00Some text.").hexdigest() in hashes


def test_renames_needs_a_visible_bare_id_with_the_same_text() -> None:
    docs = [Document("projA/a.txt", "A."), Document("projA/b.txt", "B."), Document("projA/c.txt", "C.")]
    bare = {"projA/a.txt": "a.txt", "projA/b.txt": "b.txt", "projA/c.txt": "c.txt"}
    old_hash = hashlib.sha256(b"2\x00A.").hexdigest()
    existing = {
        "a.txt": SourceState(None, {old_hash: (1, 1)}),  # an index made before versions, older records version
        "b.txt": SourceState(doc_hash("B, changed."), {doc_hash("B, changed."): (1, 1)}),  # other text
        "c.txt": SourceState("", {doc_hash("C."): (1, 1)}),  # hidden: being removed
    }
    assert renames(docs, bare, existing, doc_hash) == {"a.txt": "projA/a.txt"}
    assert visible_hashes(existing["c.txt"]) == set() and visible_hashes(None) == set()


def test_renames_never_moves_an_id_that_is_itself_given_or_claimed_twice() -> None:
    docs = [Document("one/x.txt", "X."), Document("two/x.txt", "X."), Document("x.txt", "X.")]
    existing = {"x.txt": SourceState(doc_hash("X."), {doc_hash("X."): (1, 1)})}
    assert renames(docs, {"one/x.txt": "x.txt", "two/x.txt": "x.txt"}, existing, doc_hash) == {}
    assert renames(docs[:2], {"one/x.txt": "x.txt", "two/x.txt": "x.txt"}, existing, doc_hash) == {
        "x.txt": "one/x.txt"}


def test_counted_as_says_how_an_ingest_counted_the_new_ids() -> None:
    existing = {"p/b.txt": SourceState(doc_hash("B."), {doc_hash("B."): (1, 1)}),
                "p/c.txt": SourceState(doc_hash("old C."), {doc_hash("old C."): (1, 1)})}
    assert counted_as({"p/a.txt": doc_hash("A."), "p/b.txt": doc_hash("B."), "p/c.txt": doc_hash("C.")},
                      existing) == (1, 1, 1)
