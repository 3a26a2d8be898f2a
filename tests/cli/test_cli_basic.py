"""The ``rag`` command line: JSON outputs, and user mistakes answered with one
clear line on stderr and an exit code, never a traceback.

In-process tests call ``rag.cli.main.main`` with the session's embedder injected; the
subprocess tests run the installed ``rag`` script (all at once, to keep them fast)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest


SEEDS = Path(__file__).resolve().parents[2] / "seeds"
REPORT_KEYS = ["added", "updated", "unchanged", "migrated", "removed", "skipped", "chunks", "ocr_pages"]



@pytest.fixture
def docs(tmp_path: Path) -> Path:
    d = tmp_path / "docs"
    (d / "sub").mkdir(parents=True)
    (d / "a.txt").write_text("The lighthouse on the cape was built in 1852. It is painted red.", encoding="utf-8")
    (d / "sub" / "b.md").write_text("# Ferries\n\nThe ferry to the island leaves at seven.", encoding="utf-8")
    return d


def test_ingest_json_prints_exactly_the_report(run: Any, docs: Path, tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    code, out, err = run("ingest", str(docs), "--json", "--data-dir", data)
    assert code == 0
    assert out.count("\n") == 1
    obj = json.loads(out)
    assert list(obj) == REPORT_KEYS
    assert obj == {"added": 2, "updated": 0, "unchanged": 0, "migrated": 0, "removed": 0, "skipped": [], "chunks": 2,
                   "ocr_pages": 0}

    code, out, _ = run("ingest", str(docs), "--json", "--data-dir", data)
    assert code == 0 and json.loads(out) == {"added": 0, "updated": 0, "unchanged": 2, "migrated": 0, "removed": 0,
                                             "skipped": [], "chunks": 2, "ocr_pages": 0}

    code, out, _ = run("ingest", str(docs / "a.txt"), "--prune", "--json", "--data-dir", data)
    assert code == 0 and json.loads(out) == {"added": 0, "updated": 0, "unchanged": 1, "migrated": 0, "removed": 1,
                                             "skipped": [], "chunks": 1, "ocr_pages": 0}


def test_ingest_prints_a_summary_line(run: Any, docs: Path, tmp_path: Path) -> None:
    code, out, _ = run("ingest", str(docs), "--data-dir", str(tmp_path / "data"))
    assert code == 0
    assert out.strip() == "added 2, updated 0, unchanged 0, removed 0, skipped 0; 2 chunks in the index"


def test_list_remove_and_search_json(run: Any, docs: Path, tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    code, out, _ = run("list", "--json", "--data-dir", data)
    assert code == 0 and json.loads(out) == {"documents": []}
    run("ingest", str(docs), "--json", "--data-dir", data)
    code, out, _ = run("list", "--json", "--data-dir", data)
    assert json.loads(out) == {"documents": [{"source": "docs/a.txt", "chunks": 1},
                                             {"source": "docs/sub/b.md", "chunks": 1}]}

    code, out, _ = run("search", "When does the ferry leave?", "-k", "1", "--json", "--data-dir", data)
    assert code == 0
    obj = json.loads(out)
    assert obj["query"] == "When does the ferry leave?"
    assert [r["source"] for r in obj["results"]] == ["docs/sub/b.md"]
    assert set(obj["results"][0]) == {"source", "chunk_id", "start", "end", "text", "score"}
    from rag.ingest.loaders import parse_string  # offsets refer to the rendered Markdown text

    rendered = parse_string((docs / "sub" / "b.md").read_text(), "docs/sub/b.md").text
    assert obj["results"][0]["text"] == rendered[obj["results"][0]["start"]:obj["results"][0]["end"]]

    code, out, _ = run("remove", "docs/sub/b.md", "--json", "--data-dir", data)
    assert code == 0 and json.loads(out) == {"removed": "docs/sub/b.md", "chunks": 1}
    code, out, _ = run("list", "--json", "--data-dir", data)
    assert json.loads(out) == {"documents": [{"source": "docs/a.txt", "chunks": 1}]}


def test_ask_json_citations_say_where_the_passage_is(run: Any, docs: Path, tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    run("ingest", str(docs / "a.txt"), "--json", "--data-dir", data)
    code, out, err = run("ask", "When was the lighthouse built?", "--no-llm", "--json", "--data-dir", data)
    assert code == 0, err
    obj = json.loads(out)
    assert obj["abstained"] is False and obj["citations"]
    for c in obj["citations"]:
        assert set(c) == {"marker", "source", "chunk_id", "start", "end", "text", "score", "section", "page", "title",
                          "ocr"}
        assert (c["source"], c["section"], c["page"]) == ("docs/a.txt", "", None)  # plain text: no headings, no pages
    assert '"section": "", "page": null' in out


def test_ask_prints_each_source_after_the_answer(run: Any, docs: Path, tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    run("ingest", str(docs / "a.txt"), "--json", "--data-dir", data)
    code, out, err = run("ask", "When was the lighthouse built?", "--no-llm", "--data-dir", data)
    assert code == 0, err
    lines = out.splitlines()
    assert "1852" in lines[0] and "[1]" in lines[0]
    assert lines[1] == "sources:"
    assert lines[2] == "  [1] docs/a.txt"  # the source id only: a .txt has no page or section, offsets are not shown
    assert "The lighthouse on the cape was built in 1852." in lines[3]


@pytest.mark.parametrize(("case", "expected_code", "phrase"), [
    ("missing", 2, "no such file or directory"),
    ("unsupported", 2, "no supported files"),
    ("binary", 1, "binary"),
    ("unsupported_file", 1, "unsupported file type .csv; supported: .docx, .epub, .htm, .html, .markdown, .md, .pdf, "
                            ".pptx, .txt"),
    ("remove", 1, "nosuch"),
    ("empty_query", 2, "empty"),
    ("k0", 2, "top-k"),
    ("k51", 2, "top-k"),
])
def test_user_mistakes_get_an_error_and_an_exit_code(run: Any, tmp_path: Path, case: str,
                                                     expected_code: int, phrase: str) -> None:
    argv = case_argv(case, tmp_path)
    code, out, err = run(*argv, "--data-dir", str(tmp_path / "data"))
    assert code == expected_code
    assert out == ""
    assert phrase in " ".join(err.split()).replace("\n", "")
    assert "Traceback" not in err


def case_argv(case: str, tmp: Path) -> list[str]:
    if case == "missing":
        return ["ingest", str(tmp / "missing.txt")]
    if case == "unsupported":
        (tmp / "csvs").mkdir()
        (tmp / "csvs" / "t.csv").write_text("a,b\n", encoding="utf-8")
        return ["ingest", str(tmp / "csvs")]
    if case == "binary":
        (tmp / "blob.txt").write_bytes(b"\x00\x01\x02binary\x00")
        return ["ingest", str(tmp / "blob.txt")]
    if case == "unsupported_file":
        (tmp / "t.csv").write_text("a,b\n", encoding="utf-8")
        return ["ingest", str(tmp / "t.csv")]
    if case == "remove":
        return ["remove", "nosuch"]
    if case == "empty_query":
        return ["search", ""]
    if case == "k0":
        return ["search", "anything", "-k", "0"]
    if case == "k51":
        return ["search", "anything", "-k", "51"]
    if case == "ingest_ok":
        (tmp / "ok").mkdir()
        (tmp / "ok" / "note.txt").write_text("The museum opens at nine. Entry is free.", encoding="utf-8")
        return ["ingest", str(tmp / "ok"), "--json"]
    if case == "ingest_mixed":
        (tmp / "mixed").mkdir()
        (tmp / "mixed" / "note.txt").write_text("The museum opens at nine. Entry is free.", encoding="utf-8")
        (tmp / "mixed" / "blob.txt").write_bytes(b"GIF89a\x00\x01binary")
        (tmp / "mixed" / "broken.pdf").write_bytes(b"%PDF-1.4\nnot really a pdf\n")
        (tmp / "mixed" / "sheet.xlsx").write_bytes(b"PK\x03\x04")
        return ["ingest", str(tmp / "mixed"), "--json"]
    raise AssertionError(case)


SUBPROCESS_CASES = {
    # case: (exit code, a phrase the one error line must hold)
    "missing": (2, "no such file or directory"),
    "unsupported": (2, "no supported files"),
    "binary": (1, "binary"),
    "unsupported_file": (1, "unsupported file type .csv"),
    "remove": (1, "no document 'nosuch'"),
    "empty_query": (2, "empty"),
    "k0": (2, "top-k"),
}


@pytest.fixture(scope="module")
def subprocess_results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, subprocess.CompletedProcess[str]]:
    """Every case run through the installed ``rag`` script, concurrently."""
    rag = Path(sys.executable).with_name("rag")
    command = [str(rag)] if rag.exists() else [sys.executable, "-m", "rag"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", ANONYMIZED_TELEMETRY="False")
    procs = {}
    for case in [*SUBPROCESS_CASES, "ingest_ok", "ingest_mixed"]:
        tmp = tmp_path_factory.mktemp(f"cli-{case}")
        argv = [*command, *case_argv(case, tmp), "--data-dir", str(tmp / "data")]
        procs[case] = (argv, subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                              text=True, env=env, cwd=tmp))
    results = {}
    for case, (argv, proc) in procs.items():
        out, err = proc.communicate(timeout=300)
        results[case] = subprocess.CompletedProcess(argv, proc.returncode, out, err)
    return results


@pytest.mark.parametrize("case", list(SUBPROCESS_CASES))
def test_the_rag_script_reports_mistakes_in_one_line_without_a_traceback(
        subprocess_results: dict[str, subprocess.CompletedProcess[str]], case: str) -> None:
    expected_code, phrase = SUBPROCESS_CASES[case]
    proc = subprocess_results[case]
    assert "Traceback" not in proc.stderr
    assert proc.returncode == expected_code, proc.stderr
    assert proc.stdout == ""
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    error_lines = [line for line in lines if line.lower().startswith("error")]
    assert len(error_lines) == 1, proc.stderr
    assert phrase in error_lines[0], proc.stderr
    if case != "k0":  # a usage error may also print click's usage lines
        assert lines == error_lines, proc.stderr


def test_the_rag_script_ingest_json_stdout_is_only_the_report(
        subprocess_results: dict[str, subprocess.CompletedProcess[str]]) -> None:
    proc = subprocess_results["ingest_ok"]
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stdout.count("\n") == 1
    obj = json.loads(proc.stdout)
    assert list(obj) == REPORT_KEYS
    assert obj == {"added": 1, "updated": 0, "unchanged": 0, "migrated": 0, "removed": 0, "skipped": [], "chunks": 1,
                   "ocr_pages": 0}


def test_the_rag_script_ingests_a_mixed_folder_with_one_warning_per_skipped_file(
        subprocess_results: dict[str, subprocess.CompletedProcess[str]]) -> None:
    proc = subprocess_results["ingest_mixed"]
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    obj = json.loads(proc.stdout)
    assert (obj["added"], obj["chunks"]) == (1, 1)
    assert [s["source"] for s in obj["skipped"]] == ["mixed/blob.txt", "mixed/broken.pdf", "mixed/sheet.xlsx"]
    assert all(set(s) == {"source", "reason"} for s in obj["skipped"])
    assert [line.split()[0] for line in proc.stderr.splitlines() if line[:1].strip()] == ["WARNING"] * 3, proc.stderr
    flat = " ".join(proc.stderr.split())  # the log handler wraps long lines at the terminal's width
    for skipped in obj["skipped"]:
        assert f"skipped {skipped['source']}: {skipped['reason']}" in flat, proc.stderr
