"""``rag ingest``: source ids that start with the folder's name (``--prefix`` to
choose), the move of an older index's bare ids, mixed folders (skipped files
counted, ``--strict`` refusing) and ``rag list`` showing the ids."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest




@pytest.fixture
def projects(tmp_path: Path) -> Path:
    """Two folders that both hold a README.md (different texts) and a sub-folder."""
    for name, fact in (("projA", "The alpha project simulates lighthouses."),
                       ("projB", "The beta project builds tugboats.")):
        (tmp_path / name / "sub").mkdir(parents=True)
        (tmp_path / name / "README.md").write_text(f"# {name}\n\n{fact}", encoding="utf-8")
        (tmp_path / name / "sub" / "x.md").write_text(f"# Notes\n\nNotes of {name}.", encoding="utf-8")
    return tmp_path


def listed(run: Any, data: str) -> list[str]:
    code, out, _ = run("list", "--json", "--data-dir", data)
    assert code == 0
    return [d["source"] for d in json.loads(out)["documents"]]


def test_files_of_the_same_name_in_two_folders_are_both_kept(run: Any, projects: Path, tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    code, out, _ = run("ingest", str(projects / "projA"), "--data-dir", data)
    assert code == 0 and out.startswith("added 2, updated 0")
    code, out, _ = run("ingest", str(projects / "projB"), "--data-dir", data)
    assert code == 0 and out.startswith("added 2, updated 0, unchanged 0, removed 0")  # nothing overwritten
    ids = ["projA/README.md", "projA/sub/x.md", "projB/README.md", "projB/sub/x.md"]
    assert listed(run, data) == ids
    code, out, _ = run("list", "--data-dir", data)
    assert code == 0 and all(i in out for i in ids)

    # re-ingesting is idempotent, and a file given by itself gets the id its folder gave it
    code, out, _ = run("ingest", str(projects / "projA"), str(projects / "projB"), "--json", "--data-dir", data)
    assert (json.loads(out)["unchanged"], json.loads(out)["added"]) == (4, 0)
    code, out, _ = run("ingest", str(projects / "projA" / "README.md"), "--json", "--data-dir", data)
    assert (json.loads(out)["unchanged"], json.loads(out)["added"]) == (1, 0)
    assert listed(run, data) == ids

    code, out, _ = run("ask", "What does the beta project build?", "--no-llm", "--json", "--data-dir", data)
    assert code == 0 and json.loads(out)["citations"][0]["source"] == "projB/README.md"


def test_prefix_names_the_ids(run: Any, projects: Path, tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    run("ingest", str(projects / "projA"), "--prefix", "alpha", "--json", "--data-dir", data)
    run("ingest", str(projects / "projB"), "--prefix", "", "--json", "--data-dir", data)
    assert listed(run, data) == ["README.md", "alpha/README.md", "alpha/sub/x.md", "sub/x.md"]
    code, _, err = run("ingest", str(projects / "projA"), "--prefix", "../up", "--data-dir", data)
    assert code == 2 and "--prefix NAME" in err and "Traceback" not in err


def test_an_index_with_bare_ids_is_moved_to_the_new_ids(run: Any, projects: Path, tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    run("ingest", str(projects / "projA"), "--prefix", "", "--json", "--data-dir", data)  # as older versions did
    assert listed(run, data) == ["README.md", "sub/x.md"]
    code, out, _ = run("ingest", str(projects / "projA"), "--data-dir", data)
    assert code == 0
    assert out.strip() == "added 0, updated 0, unchanged 0, migrated 2, removed 0, skipped 0; 2 chunks in the index"
    assert listed(run, data) == ["projA/README.md", "projA/sub/x.md"]


@pytest.fixture
def mixed(tmp_path: Path) -> Path:
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "good.txt").write_text("The museum opens at nine. Entry is free.", encoding="utf-8")
    (folder / "blob.txt").write_bytes(b"GIF89a\x00\x01binary")
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4\nnot really a pdf\n")
    (folder / "tool.exe").write_bytes(b"MZ\x90\x00")
    return folder


def test_a_mixed_folder_ingests_its_good_files_and_reports_the_skipped(run: Any, mixed: Path, tmp_path: Path,
                                                                       caplog: pytest.LogCaptureFixture) -> None:
    data = str(tmp_path / "data")
    code, out, err = run("ingest", str(mixed), "--json", "--data-dir", data)
    assert code == 0 and "Traceback" not in err
    obj = json.loads(out)
    assert (obj["added"], obj["chunks"]) == (1, 1)
    assert obj["skipped"] == [
        {"source": "mixed/blob.txt", "reason": "looks like a binary file (NUL bytes), not text"},
        {"source": "mixed/broken.pdf", "reason": "cannot read: it is not a readable PDF"},
        {"source": "mixed/tool.exe", "reason": "unsupported file type .exe"}]
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warned == [f"skipped {s['source']}: {s['reason']}" for s in obj["skipped"]]
    assert listed(run, data) == ["mixed/good.txt"]

    code, out, _ = run("ingest", str(mixed), "--data-dir", data)
    assert code == 0
    assert out.strip() == "added 0, updated 0, unchanged 1, removed 0, skipped 3; 1 chunks in the index"


def test_strict_refuses_a_mixed_folder_and_writes_nothing(run: Any, mixed: Path, tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    for argv in (["--strict"], ["--strict", "--json"]):
        code, out, err = run("ingest", str(mixed), *argv, "--data-dir", data)
        assert code == 1 and out == "" and "Traceback" not in err
        assert "strict: nothing written, 3 file(s) would be skipped" in " ".join(err.split())
    assert listed(run, data) == []
    (mixed / "blob.txt").unlink()
    (mixed / "broken.pdf").unlink()
    (mixed / "tool.exe").unlink()
    code, out, _ = run("ingest", str(mixed), "--strict", "--json", "--data-dir", data)
    assert code == 0 and json.loads(out)["added"] == 1
