"""A dataset's source names matched to the index's ids: a folder prefix found
and said in one line, or one error when the sources are not in the index."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rag.errors import NotFoundError
from rag.evaluation.dataset import EvalItem, load_dataset
from rag.evaluation.sources import align_sources
from tests.conftest import DEV, SEEDS

ROOT = Path(__file__).resolve().parents[2]
ITEMS = [EvalItem("q1", "Who?", (("Clegg",),), ("000_a.txt",), True),
         EvalItem("q2", "When?", (("Monday",),), ("001_b.txt", "000_a.txt"), True),
         EvalItem("q3", "Why?", (), (), False)]


def test_names_that_match_are_left_as_they_are() -> None:
    aligned = align_sources(ITEMS, ["000_a.txt", "001_b.txt", "002_c.txt"])
    assert aligned.items == ITEMS and aligned.note == "" and aligned.prefix == ""


def test_names_found_under_one_folder_are_scored_as_those_ids() -> None:
    aligned = align_sources(ITEMS, ["seeds/000_a.txt", "seeds/001_b.txt", "notes/x.md"], "dev.jsonl")
    assert aligned.prefix == "seeds/"
    assert [i.supporting for i in aligned.items] == [("seeds/000_a.txt",), ("seeds/001_b.txt", "seeds/000_a.txt"), ()]
    assert aligned.note == ("dev.jsonl names its sources relative to the corpus folder: scoring them as the "
                            "index's ids under 'seeds/' (2 of 2 sources)")


def test_the_folder_holding_the_most_sources_wins_and_the_rest_are_counted() -> None:
    aligned = align_sources(ITEMS, ["a/b/000_a.txt", "a/b/001_b.txt", "c/000_a.txt"])
    assert aligned.prefix == "a/b/" and "(2 of 2 sources)" in aligned.note
    partial = align_sources(ITEMS, ["deep/docs/000_a.txt"])
    assert partial.prefix == "deep/docs/" and "(1 of 2 sources; 1 are not in the index)" in partial.note
    assert partial.items[1].supporting == ("001_b.txt", "deep/docs/000_a.txt")


def test_sources_in_no_folder_of_the_index_are_one_error_with_an_example_of_each() -> None:
    with pytest.raises(NotFoundError) as info:
        align_sources(ITEMS, ["manual/intro.md", "manual/install.md"], "ds.jsonl")
    assert info.value.message == (
        "none of the 2 sources ds.jsonl cites is in the index: it names, e.g., '000_a.txt', the index holds, "
        "e.g., 'manual/install.md'; ingest the corpus it was written for (with --prefix '' to name sources by "
        "their paths in the folder)")
    assert info.value.exit_code == 1


def test_some_sources_missing_is_said_without_rewriting() -> None:
    aligned = align_sources(ITEMS, ["000_a.txt"])
    assert aligned.items == ITEMS and aligned.note == "1 of the 2 sources the dataset cites are not in the index " \
                                                      "(e.g. '001_b.txt')"


def _rag(*argv: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "rag", *argv], capture_output=True, text=True, cwd=ROOT, env=env,
                          timeout=600)


@pytest.mark.slow
def test_rag_eval_gives_the_same_strict_whether_the_seeds_are_ingested_under_their_folder_or_not(
        tmp_path: Path) -> None:
    """``rag ingest seeds && rag eval eval/dev.jsonl`` as a user types it, against ``--prefix ''``
    (eight of the dev questions, to keep it short; the scores must agree question by question)."""
    subset = tmp_path / "dev8.jsonl"
    subset.write_text("\n".join(json.dumps(i.to_dict()) for i in load_dataset(DEV)[:8]) + "\n")
    reports = {}
    for name, prefix in (("folder", []), ("bare", ["--prefix", ""])):
        data = tmp_path / name
        assert _rag("ingest", str(SEEDS), "--data-dir", str(data), *prefix).returncode == 0
        proc = _rag("eval", str(subset), "--data-dir", str(data), "--json-out", str(tmp_path / f"{name}.json"))
        assert proc.returncode == 0, proc.stderr
        reports[name] = (json.loads((tmp_path / f"{name}.json").read_text()), proc.stderr)
    folder, bare = reports["folder"][0], reports["bare"][0]
    assert "scoring them as the index's ids under 'seeds/' (5 of 5 sources)" in reports["folder"][1]
    assert "scoring them" not in reports["bare"][1]
    assert folder["metrics"]["strict"] == bare["metrics"]["strict"] >= 0.5
    assert [q["strict"] for q in folder["questions"]] == [q["strict"] for q in bare["questions"]]
