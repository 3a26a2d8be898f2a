"""Suites: the manifest, the suite report (tables, Markdown, PNG, comparison), the
``rag eval SUITE.json`` command with a stand-in runner, and one end-to-end run of
a tiny two-corpus suite on the real default models."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
from rich.console import Console

import rag.cli.evaluate
from rag.cli import main as cli
from rag.cli.evaluate import eval_command
from rag.errors import DatasetError, InputError
from rag.evaluation.dataset import EvalItem
from rag.evaluation.runner import QuestionRun, score_runs
from rag.evaluation.scorer import aggregate
from rag.evaluation.suite import (
    Corpus,
    CorpusResult,
    is_suite,
    load_questions,
    load_suite,
    macro_metrics,
    open_corpus,
    suite_data_root,
)
from rag.evaluation.suite_report import (
    MACRO,
    build_suite_report,
    compare_macros,
    compare_suites,
    compare_suites_table,
    load_suite_report,
    summary_table,
    to_suite_markdown,
    write_suite_json,
    write_suite_plot,
)
from rag.ingest.ingestor import IngestReport
from rag.types import Answer, Citation, Timings

ROOT = Path(__file__).resolve().parents[2]


def render(table: Any) -> str:
    console = Console(record=True, width=250)
    console.print(table)
    return console.export_text()


# --- the manifest -----------------------------------------------------------------------------


def question(ident: str, text: str, answers: list[list[str]] | None = None, source: str = "",
             **extra: Any) -> str:
    answerable = answers is not None
    return json.dumps({"id": ident, "question": text, "answers": answers or [],
                       "supporting": [source] if answerable else [], "answerable": answerable, **extra})


@pytest.fixture
def layout(tmp_path: Path) -> Path:
    """A folder with two corpora (documents and questions); the manifest is written by each test."""
    for name in ("alpha", "beta"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "a.txt").write_text("Some text.", encoding="utf-8")
        (tmp_path / f"{name}.jsonl").write_text(question("q1", "Who?", [["x"]], "a.txt") + "\n", encoding="utf-8")
    return tmp_path


def manifest(folder: Path, obj: object, name: str = "suite.json") -> Path:
    path = folder / name
    path.write_text(json.dumps(obj), encoding="utf-8")
    return path


def entry(name: str, documents: str | None = None, questions: str | None = None) -> dict[str, str]:
    return {"name": name, "documents": documents or name, "questions": questions or f"{name}.jsonl"}


def test_load_suite_resolves_paths_relative_to_the_manifest(layout: Path) -> None:
    (layout / "sub").mkdir()
    path = manifest(layout / "sub", {"description": "two", "corpora": [
        entry("alpha", "../alpha", "../alpha.jsonl"), entry("beta", "../beta", "../beta.jsonl")]})
    corpora = load_suite(path)
    assert corpora == [Corpus("alpha", layout / "sub" / "../alpha", layout / "sub" / "../alpha.jsonl"),
                       Corpus("beta", layout / "sub" / "../beta", layout / "sub" / "../beta.jsonl")]
    assert [len(items) for items in load_questions(corpora).values()] == [1, 1]


def test_the_shipped_suite_is_valid() -> None:
    corpora = load_suite(ROOT / "eval" / "suite.json")
    assert [c.name for c in corpora][:1] == ["news"] and len(corpora) == 6
    assert all(len(items) >= 20 for items in load_questions(corpora).values())


@pytest.mark.parametrize(("obj", "expected"), [
    ([1, 2], "expected a JSON object with 'corpora', got list"),
    ({"description": "x"}, "missing 'corpora'"),
    ({"corpora": []}, "'corpora' must be a non-empty list"),
    ({"corpora": [entry("alpha"), "beta"]}, "corpus 2: expected an object, got str"),
    ({"corpora": [{"name": "alpha", "documents": "alpha"}]}, "corpus 1 ('alpha'): missing 'questions'"),
    ({"corpora": [{**entry("alpha"), "weight": 2}]}, "corpus 1 ('alpha'): unknown key 'weight'"),
    ({"corpora": [entry("alpha")], "extra": 1}, "unknown key 'extra'"),
    ({"corpora": [{**entry("alpha"), "documents": ""}]}, "corpus 1 ('alpha'): 'documents' must be a non-empty string"),
    ({"corpora": [entry("alpha", "nowhere")]}, "corpus 1 ('alpha'): documents folder not found: nowhere"),
    ({"corpora": [entry("alpha", "alpha.jsonl")]}, "documents folder not found: alpha.jsonl"),
    ({"corpora": [entry("alpha", questions="none.jsonl")]}, "corpus 1 ('alpha'): questions file not found: none.jsonl"),
    ({"corpora": [entry("alpha", questions="alpha")]}, "questions file not found: alpha"),
    ({"corpora": [entry("alpha"), entry("beta"), entry("alpha")]}, "corpus 3 ('alpha'): duplicate name (first is corpus 1)"),
    ({"corpora": [entry("../up", "alpha", "alpha.jsonl")]}, "name '../up' must be letters, digits"),
])
def test_manifest_problems_are_named_with_the_file(layout: Path, obj: object, expected: str) -> None:
    path = manifest(layout, obj, name="my-suite.json")
    with pytest.raises(DatasetError) as info:
        load_suite(path)
    assert str(path) in info.value.message and expected in info.value.message
    assert info.value.exit_code == 2


def test_every_manifest_problem_is_listed_at_once(layout: Path) -> None:
    path = manifest(layout, {"corpora": [entry("alpha", "gone"), {"name": "beta"}, entry("alpha")]})
    with pytest.raises(DatasetError) as info:
        load_suite(path)
    msg = info.value.message
    assert msg.startswith(f"{path}: 4 problem(s):")
    assert "corpus 1 ('alpha'): documents folder not found: gone" in msg
    assert "corpus 2 ('beta'): missing 'documents'" in msg and "corpus 2 ('beta'): missing 'questions'" in msg
    assert "corpus 3 ('alpha'): duplicate name (first is corpus 1)" in msg


def test_unreadable_manifests(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="suite manifest not found: .*nope.json"):
        load_suite(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"corpora": [', encoding="utf-8")
    with pytest.raises(DatasetError, match=r"bad\.json: invalid JSON \(.* at line 1, column 14\)"):
        load_suite(bad)
    folder = tmp_path / "dir.json"
    folder.mkdir()
    with pytest.raises(DatasetError, match="is a folder"):
        load_suite(folder)


def test_a_bad_dataset_in_a_suite_names_its_file(layout: Path) -> None:
    (layout / "beta.jsonl").write_text("{oops\n", encoding="utf-8")
    corpora = load_suite(manifest(layout, {"corpora": [entry("alpha"), entry("beta")]}))
    with pytest.raises(DatasetError, match=r"beta\.jsonl: 1 problem\(s\):\n  line 1: invalid JSON"):
        load_questions(corpora)


def test_is_suite() -> None:
    assert is_suite(Path("eval/suite.json")) and is_suite(Path("S.JSON"))
    assert not is_suite(Path("eval/dev.jsonl")) and not is_suite(Path("questions.txt"))


def test_suite_data_root_is_temporary_unless_given(tmp_path: Path) -> None:
    with suite_data_root(None) as root:
        assert root.is_dir()
        (root / "news").mkdir()
    assert not root.exists()
    with suite_data_root(tmp_path / "keep") as root:
        (root / "news").mkdir()
    assert (tmp_path / "keep" / "news").is_dir()


# --- the suite report, on hand-made results ---------------------------------------------------

GOOD = "Meta shares Llama with the Five Eyes."


def corpus_result(name: str, answers: list[str], pages: tuple[int, ...] = ()) -> CorpusResult:
    """A result whose first len(answers) questions are answerable (``[1]`` cites GOOD), then one unanswerable."""
    items = [EvalItem(f"{name}{i}", "Who gets Llama?", (("Five Eyes",),), ("a.txt",), True, pages)
             for i in range(len(answers))] + [EvalItem(f"{name}-none", "When is Llama 5 out?", (), (), False)]
    cited = [Citation(1, "a.txt", "a#0", 0, len(GOOD), GOOD, 0.9, page=pages[0] if pages else None)]
    runs = [QuestionRun(item, Answer("?", text, False, cited, Timings(1, 10, 100 * (i + 1)), "tiny.gguf"), ())
            for i, (item, text) in enumerate(zip(items, answers))]
    runs.append(QuestionRun(items[-1], Answer("?", "Not in the documents.", True, [], Timings(1, 5, 50), "tiny.gguf")))
    scores = score_runs(runs, k=5)
    return CorpusResult(Corpus(name, Path(name), Path(f"{name}.jsonl")), IngestReport(added=2, chunks=7), runs,
                        scores, aggregate(scores), "tiny.gguf")


def two_corpora() -> list[CorpusResult]:
    return [corpus_result("alpha", ["The Five Eyes [1].", "Nobody [1]", "The Five Eyes [1]."]),
            corpus_result("beta", ["The Five Eyes [1].", "The Five Eyes [1]."], pages=(3,))]


def test_macro_metrics_average_over_corpora_and_sum_counts() -> None:
    results = two_corpora()
    macro = macro_metrics([r.metrics for r in results])
    assert macro["corpora"] == 2 and macro["questions"] == 7 and macro["answerable"] == 5
    assert macro["strict"] == pytest.approx((3 / 4 + 1) / 2)
    assert macro["page_accuracy"] == 1.0 and macro["pages_judged"] == 2  # beta only
    assert macro["nli_support"] is None


def test_build_suite_report_holds_each_corpus_report() -> None:
    report = build_suite_report(two_corpora(), suite="s.json", k=5, backend="in-process")
    assert report["format"] == "rag-eval-suite/1" and report["model"] == "tiny.gguf"
    assert [c["corpus"] for c in report["corpora"]] == ["alpha", "beta"]
    alpha = report["corpora"][0]
    assert alpha["format"] == "rag-eval/1" and alpha["dataset"] == "alpha (alpha.jsonl)"
    assert alpha["ingest"]["added"] == 2 and len(alpha["questions"]) == 4
    assert alpha["metrics"]["strict"] == pytest.approx(3 / 4)
    assert json.loads(json.dumps(report)) == report


def test_summary_table_has_a_row_per_corpus_and_the_macro_average() -> None:
    report = build_suite_report(two_corpora(), suite="s.json", k=5, backend="in-process")
    text = render(summary_table(report))
    lines = {line.split("│")[1].strip(): line for line in text.splitlines() if line.count("│") > 3}
    assert list(lines) == ["alpha", "beta", MACRO]
    assert "75.0%" in lines["alpha"] and "100.0%" in lines["beta"] and "87.5%" in lines[MACRO]
    header = next(line for line in text.splitlines() if "corpus" in line and "┃" in line)
    assert "page acc." in header and "retr. recall@5" in header
    assert "n/a" in lines["alpha"]  # alpha has no gold pages
    no_pages = build_suite_report([two_corpora()[0]], suite="s.json", k=5, backend="in-process")
    assert "page acc." not in render(summary_table(no_pages))


def test_suite_markdown_has_the_summary_then_each_corpus() -> None:
    md = to_suite_markdown(build_suite_report(two_corpora(), suite="s.json", k=5, backend="in-process"))
    assert md.startswith("# Evaluation of the suite `s.json`")
    assert f"| **{MACRO}** | **7** | **87.5%** |" in md
    assert md.index("| alpha | 4 | 75.0% |") < md.index("## Evaluation of `alpha (alpha.jsonl)`") \
        < md.index("## Evaluation of `beta (beta.jsonl)`")
    assert "### Failures (1)" in md and "#### alpha1: Who gets Llama?" in md


def test_the_report_carries_the_ranking_block_per_corpus_and_macro() -> None:
    from dataclasses import replace

    from rag.evaluation.ranking import Ranking

    alpha, beta = two_corpora()
    results = [replace(alpha, ranking=Ranking(0.5, 1.0, 4)), replace(beta, ranking=Ranking(1.0, 1.0, 2))]
    report = build_suite_report(results, suite="s.json", k=5, backend="in-process")
    assert report["corpora"][0]["ranking"] == {"p_at_1": 0.5, "p_at_3": 1.0, "judged": 4}
    assert report["ranking"] == {"p_at_1": 0.75, "p_at_3": 1.0, "judged": 6}
    header = next(line for line in render(summary_table(report)).splitlines() if "corpus" in line and "┃" in line)
    assert "P@1" in header and "P@3" in header
    assert "P@1" in to_suite_markdown(report)
    plain = build_suite_report(two_corpora(), suite="s.json", k=5, backend="in-process")  # e.g. over --url
    assert "ranking" not in plain and "P@1" not in render(summary_table(plain))


def test_suite_plot_and_json_round_trip(tmp_path: Path) -> None:
    report = build_suite_report(two_corpora(), suite="s.json", k=5, backend="in-process")
    write_suite_plot(tmp_path / "p" / "suite.png", report)
    assert (tmp_path / "p" / "suite.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    write_suite_json(tmp_path / "r.json", report)
    assert load_suite_report(tmp_path / "r.json") == report


def test_compare_suites_per_corpus_and_macro(tmp_path: Path) -> None:
    new = build_suite_report(two_corpora(), suite="s.json", k=5, backend="in-process")
    old = build_suite_report([corpus_result("alpha", ["Nobody [1]", "Nobody [1]", "The Five Eyes [1]."]),
                              corpus_result("gamma", ["The Five Eyes [1]."])], suite="s.json", k=5, backend="x")
    rows = {r.corpus: r for r in compare_suites(old, new)}
    assert list(rows) == ["alpha", "beta", "gamma", MACRO]
    assert rows["alpha"].delta == pytest.approx(0.25)
    assert rows["beta"].old is None and rows["gamma"].new is None and rows["beta"].delta is None
    assert rows[MACRO].delta == pytest.approx(0.875 - (0.5 + 1) / 2)
    text = render(compare_suites_table(list(rows.values()), "old.json"))
    assert "compared with old.json" in text and "+25.0 pts" in text
    macro = {d.key: d for d in compare_macros(old, new).deltas}
    assert macro["strict"].delta == pytest.approx(rows[MACRO].delta) and "page_accuracy" in macro
    single = tmp_path / "single.json"
    single.write_text(json.dumps(new["corpora"][0]), encoding="utf-8")
    with pytest.raises(InputError, match="is not a suite report"):
        load_suite_report(single)


# --- the command, with a stand-in runner ------------------------------------------------------


def invoke(argv: list[str]) -> int | None:
    app = typer.Typer(add_completion=False)
    app.callback()(lambda: None)
    app.command("eval")(eval_command)
    return app(args=["eval", *argv], standalone_mode=False)


@pytest.fixture
def stand_in(layout: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """``rag.cli.evaluate.run_suite`` replaced by one that returns two_corpora() and records its call."""
    seen: dict[str, Any] = {}

    def run_suite(corpora: Any, questions: Any, settings: Any, root: Path, **kwargs: Any) -> list[CorpusResult]:
        seen.update(corpora=[c.name for c in corpora], root=root, k=settings.top_k, root_existed=root.is_dir())
        return two_corpora()

    monkeypatch.setattr(rag.cli.evaluate, "run_suite", run_suite)
    seen["manifest"] = manifest(layout, {"corpora": [entry("alpha"), entry("beta")]})
    return seen


def test_suite_command_prints_tables_and_writes_outputs(stand_in: dict[str, Any], tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    rc = invoke([str(stand_in["manifest"]), "-k", "3", "--json-out", str(out / "s.json"), "--md-out",
                 str(out / "s.md"), "--plot", str(out / "s.png"), "--min-strict", "0.75"])
    assert rc in (None, 0)
    assert stand_in["corpora"] == ["alpha", "beta"] and stand_in["k"] == 3 and stand_in["root_existed"]
    assert not stand_in["root"].exists()  # the temporary index folder is gone
    report = json.loads((out / "s.json").read_text(encoding="utf-8"))
    assert report["format"] == "rag-eval-suite/1" and [c["corpus"] for c in report["corpora"]] == ["alpha", "beta"]
    assert (out / "s.md").read_text(encoding="utf-8").startswith("# Evaluation of the suite `suite.json`")
    assert (out / "s.png").read_bytes()[:4] == b"\x89PNG"
    captured = capsys.readouterr()
    assert "corpus alpha (alpha.jsonl, k=3)" in captured.out and MACRO in captured.out
    assert "87.5%" in captured.out  # the summary is not cut to the 80 columns of a pipe
    assert "alpha: 1 failing: alpha1" in captured.out and "beta: no failures" in captured.out
    assert "alpha: added 2, updated 0, unchanged 0, removed 0, skipped 0; 7 chunks" in captured.err


def test_suite_command_min_strict_names_each_corpus_below(stand_in: dict[str, Any], tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert invoke([str(stand_in["manifest"]), "--min-strict", "0.8", "--data-dir", str(tmp_path / "idx")]) == 1
    err = capsys.readouterr().err
    assert "corpus alpha: strict answer-citation accuracy 0.750 is below --min-strict 0.8" in err
    assert "corpus beta" not in err
    assert stand_in["root"] == tmp_path / "idx" and stand_in["root"].is_dir()  # kept


def test_suite_command_compares_with_a_suite_report_only(stand_in: dict[str, Any], tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    old = tmp_path / "old.json"
    write_suite_json(old, build_suite_report([corpus_result("alpha", ["Nobody [1]"])], suite="s.json", k=5,
                                             backend="in-process"))
    invoke([str(stand_in["manifest"]), "--compare", str(old)])
    out = capsys.readouterr().out
    assert "compared with old.json" in out and f"compared with old.json ({MACRO})" in out
    assert "answer-citation accuracy (strict)" in out.split(f"({MACRO})")[-1]
    single = tmp_path / "single.json"
    single.write_text(json.dumps(json.loads(old.read_text())["corpora"][0]), encoding="utf-8")
    stand_in.pop("corpora", None)
    with pytest.raises(InputError, match="is not a suite report"):
        invoke([str(stand_in["manifest"]), "--compare", str(single)])
    assert "corpora" not in stand_in  # refused before running


def test_suite_with_url_is_refused_with_one_line_and_exit_2(stand_in: dict[str, Any],
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["eval", str(stand_in["manifest"]), "--url", "http://127.0.0.1:1"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.strip() == ("error: a suite is evaluated in process: each corpus needs its own index; "
                           "--url evaluates one dataset against the server's index")
    assert "corpora" not in stand_in


# --- real models ------------------------------------------------------------------------------

DOCS = {
    "harbour": {
        "lighthouse.txt": "The Greywick lighthouse was built in 1852 by the engineer Alys Penhallow. "
                          "Its lamp is painted red and can be seen from eighteen miles away.",
        "ferry.txt": "The ferry to Morrow Island leaves the harbour at seven in the morning. "
                     "The crossing takes forty minutes and the boat is called the Saltmarsh.",
    },
    "orchard": {
        "apples.txt": "The Tallow orchard grows a pear variety called Amber Drop. "
                      "The harvest festival is held every October in the village of Kestle.",
        "bees.txt": "The orchard keeps twelve beehives. The beekeeper, Tomas Rell, sells the honey at the market.",
    },
}
QUESTIONS = {
    "harbour": [
        question("h1", "Who built the Greywick lighthouse?", [["Penhallow"]], "lighthouse.txt"),
        # no document names it: this question cannot be strictly correct, so the corpus is below 1.0
        question("h2", "What is the name of the lighthouse keeper's dog?", [["Biscuit-Zanzibar-7781"]],
                 "lighthouse.txt"),
        question("h3", "What is the price of a ferry ticket to the moon?"),
    ],
    "orchard": [
        question("o1", "How many beehives does the orchard keep?", [["twelve", "12"]], "bees.txt"),
        question("o2", "In which month is the harvest festival held?", [["October"]], "apples.txt"),
        question("o3", "Who is the mayor of Kestle?"),
    ],
}


@pytest.fixture
def tiny_suite(tmp_path: Path) -> Path:
    suite = tmp_path / "suite"
    corpora = []
    for name, files in DOCS.items():
        for file, text in files.items():
            (suite / "corpora" / name).mkdir(parents=True, exist_ok=True)
            (suite / "corpora" / name / file).write_text(text + "\n", encoding="utf-8")
        (suite / f"{name}.jsonl").write_text("\n".join(QUESTIONS[name]) + "\n", encoding="utf-8")
        corpora.append({"name": name, "documents": f"corpora/{name}", "questions": f"{name}.jsonl"})
    return manifest(suite, {"description": "tiny", "corpora": corpora})


def rag_eval(*argv: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "250"}
    return subprocess.run([sys.executable, "-m", "rag", "eval", *argv], capture_output=True, text=True,
                          timeout=900, env=env)


@pytest.mark.slow
def test_a_tiny_suite_end_to_end(tiny_suite: Path, tmp_path: Path) -> None:
    data, report_path = tmp_path / "indexes", tmp_path / "out" / "suite.json"
    first = rag_eval(str(tiny_suite), "--data-dir", str(data), "--json-out", str(report_path),
                     "--md-out", str(tmp_path / "out" / "suite.md"), "--min-strict", "0.9")
    report = json.loads(report_path.read_text(encoding="utf-8"))
    assert [c["corpus"] for c in report["corpora"]] == ["harbour", "orchard"]
    assert [c["metrics"]["questions"] for c in report["corpora"]] == [3, 3]
    strict = {c["corpus"]: c["metrics"]["strict"] for c in report["corpora"]}
    assert strict["harbour"] <= 2 / 3  # h2 cannot be strict
    assert report["macro"]["strict"] == pytest.approx(sum(strict.values()) / 2)
    # below 0.9: exit 1, naming harbour and (only if it is below too) orchard
    assert first.returncode == 1, first.stderr
    assert f"corpus harbour: strict answer-citation accuracy {strict['harbour']:.3f} is below" in first.stderr
    assert ("corpus orchard: strict" in first.stderr) == (strict["orchard"] < 0.9)
    assert "corpus harbour (harbour.jsonl, k=5)" in first.stdout and "corpus orchard (orchard.jsonl" in first.stdout
    assert MACRO in first.stdout and "answer-citation accuracy (strict)" in first.stdout
    assert "harbour: added 2, updated 0, unchanged 0, removed 0" in first.stderr
    assert (data / "harbour").is_dir() and (data / "orchard").is_dir()
    assert "## Evaluation of `orchard (orchard.jsonl)`" in (tmp_path / "out" / "suite.md").read_text()

    # again on the kept indexes: nothing to embed; a reachable bar passes; the comparison is printed
    second = rag_eval(str(tiny_suite), "--data-dir", str(data), "--min-strict", "0", "--compare", str(report_path))
    assert second.returncode == 0, second.stderr
    assert "harbour: added 0, updated 0, unchanged 2, removed 0" in second.stderr
    assert "orchard: added 0, updated 0, unchanged 2, removed 0" in second.stderr
    assert "compared with suite.json" in second.stdout and "below" not in second.stderr


@pytest.mark.slow
def test_open_corpus_gives_an_ingested_engine(tiny_suite: Path, tmp_path: Path, embedder: Any) -> None:
    from rag.settings import Settings

    corpus = load_suite(tiny_suite)[1]
    engine = open_corpus(corpus, tmp_path / "root", embedder, None, Settings(use_llm=False))
    assert engine.settings.data_dir == tmp_path / "root" / "orchard"
    assert sorted(s for s, _ in engine.ingestor.list_sources()) == ["apples.txt", "bees.txt"]
    assert engine.search("beehives", 1).hits[0].source == "bees.txt"
