"""Reports (JSON, Markdown, PNG, tables, comparison) and the ``rag eval`` command
with in-process callables."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import typer
from rich.console import Console

import rag.cli.evaluate
from rag.cli.evaluate import eval_command
from rag.errors import DatasetError, InputError
from rag.evaluation.dataset import EvalItem
from rag.evaluation.report import (
    build_report,
    compare_reports,
    compare_table,
    failures,
    failures_table,
    load_report,
    metrics_table,
    to_markdown,
    write_json,
    write_plot,
)
from rag.evaluation.runner import QuestionRun, score_runs
from rag.evaluation.scorer import Passage, aggregate
from rag.types import Answer, Citation, Timings

ITEMS = [
    EvalItem("q1", "Who gets Llama?", (("Five Eyes",),), ("a.txt",), True),
    EvalItem("q2", "Who is the president?", (("Clegg",),), ("b.txt",), True),
    EvalItem("q3", "When is Llama 5 out?", (), (), False),
]
GOOD = "Meta shares Llama with the Five Eyes. Nick Clegg said so."


def make_answer(text: str, source: str = "a.txt", abstained: bool = False, total_ms: float = 100.0) -> Answer:
    citations = [] if abstained else [Citation(1, source, f"{source}#0", 0, len(GOOD), GOOD, 0.8)]
    return Answer("?", text, abstained, citations, Timings(1.0, total_ms / 10, total_ms), "tiny.gguf")


def make_report(q2_answer: str = "Nobody | knows [1]", q2_source: str = "z.txt") -> dict[str, Any]:
    runs = [
        QuestionRun(ITEMS[0], make_answer("The Five Eyes [1].", total_ms=100), (Passage("a.txt", GOOD),)),
        QuestionRun(ITEMS[1], make_answer(q2_answer, source=q2_source, total_ms=300), (Passage("z.txt", "x"),)),
        QuestionRun(ITEMS[2], make_answer("Not in the documents.", abstained=True, total_ms=200), ()),
    ]
    scores = score_runs(runs, k=5)
    return build_report(runs, scores, aggregate(scores), dataset="ds.jsonl", k=5, backend="in-process")


def render(table: Any) -> str:
    console = Console(record=True, width=200)
    console.print(table)
    return console.export_text()


def test_build_report_holds_metrics_and_per_question_rows() -> None:
    report = make_report()
    assert report["format"] == "rag-eval/1" and report["model"] == "tiny.gguf" and report["k"] == 5
    assert report["metrics"]["strict"] == pytest.approx(2 / 3)
    q1, q2, q3 = report["questions"]
    assert q1["strict"] and q1["verdicts"] == [] and q1["citations"][0]["precise"] is True
    assert q1["retrieved"] == ["a.txt"] and q1["retrieval"]["hit"] is True
    assert not q2["strict"]
    assert [v["kind"] for v in q2["verdicts"]] == ["wrong_answer", "imprecise_citation", "fragment"]
    assert q2["fragment"] is True and q1["fragment"] is False
    assert q1["citations"][0]["on_page"] is None  # no gold pages
    assert q2["citations"][0]["reasons"] == ["wrong source"]
    assert q3["abstained"] and q3["strict"]
    assert [q["id"] for q in failures(report)] == ["q2"]
    assert json.loads(json.dumps(report)) == report


def test_json_round_trip_and_load_report(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "r.json"
    write_json(path, make_report())
    assert load_report(path) == make_report()


def test_load_report_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="report not found"):
        load_report(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(InputError, match="cannot read report"):
        load_report(bad)
    bad.write_text('{"questions": []}', encoding="utf-8")
    with pytest.raises(InputError, match="not an evaluation report"):
        load_report(bad)


def test_tables_render_metrics_and_failures() -> None:
    report = make_report()
    text = render(metrics_table(report))
    assert "answer-citation accuracy (strict)" in text and "66.7%" in text
    assert "retrieval recall@5" in text and "supporting source in top-5" in text
    assert "NLI" not in text  # no second judge ran
    failed = render(failures_table(report))
    assert "q2" in failed and "q1" not in failed
    assert "no gold fact in the answer (expected 'Clegg')" in failed
    assert "[1] wrong source (z.txt is not a supporting source)" in failed


def test_failures_table_does_not_interpret_markup_in_answers() -> None:
    failed = render(failures_table(make_report(q2_answer="[bold]Clegg[/bold] [1]")))
    assert "[bold]Clegg[/bold]" in failed


def test_markdown_report() -> None:
    md = to_markdown(make_report())
    assert md.startswith("# Evaluation of `ds.jsonl`")
    assert "| answer-citation accuracy (strict) | 66.7% | 3 questions |" in md
    assert "| citation precision | 50.0% | 2 citations |" in md
    assert "## Failures (1)" in md and "### q2: Who is the president?" in md
    assert "Nobody \\| knows" in md  # pipes escaped
    assert "- **imprecise_citation**: [1] wrong source" in md
    assert "### q1" not in md


def test_plot_writes_a_png(tmp_path: Path) -> None:
    path = tmp_path / "plots" / "eval.png"
    write_plot(path, make_report())
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 5000


def test_compare_reports() -> None:
    old, new = make_report(), make_report(q2_answer="Nick Clegg [1]", q2_source="b.txt")
    comparison = compare_reports(old, new)
    deltas = {d.key: d for d in comparison.deltas}
    assert deltas["strict"].delta == pytest.approx(1 / 3) and deltas["strict"].better is True
    assert deltas["correct"].old == pytest.approx(0.5) and deltas["correct"].new == pytest.approx(1.0)
    assert deltas["total_ms_p50"].delta == 0 and deltas["total_ms_p50"].better is None
    assert "nli_support" not in deltas
    assert comparison.fixed == ("q2",) and comparison.broken == ()
    back = compare_reports(new, old)
    assert back.broken == ("q2",) and {d.key: d for d in back.deltas}["strict"].better is False
    text = render(compare_table(comparison, "old.json"))
    assert "+33.3 pts" in text and "compared with old.json" in text


# --- the command, in-process ------------------------------------------------------------------


def fake_ask(question: str, k: int) -> dict[str, Any]:
    if "Llama 5" in question:
        return make_answer("Not in the documents.", abstained=True).to_dict()
    if "president" in question:
        return make_answer("Nobody [1]", source="z.txt").to_dict()
    return make_answer("The Five Eyes [1].").to_dict()


def fake_search(question: str, k: int) -> dict[str, Any]:
    return {"query": question, "results": [{"source": "a.txt", "chunk_id": "a#0", "start": 0, "end": 1,
                                            "text": GOOD, "score": 1.0}]}


@pytest.fixture
def dataset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    calls: list[tuple[Any, ...]] = []

    def in_process(k: int | None, data_dir: Path | None, model: Path | None, rerank: Path | None = None) -> Any:
        calls.append((k, data_dir, model))
        return fake_ask, fake_search, lambda: ["a.txt", "z.txt"], None, k or 5

    monkeypatch.setattr(rag.cli.evaluate, "_in_process", in_process)
    monkeypatch.setattr(rag.cli.evaluate, "_test_calls", calls, raising=False)
    path = tmp_path / "ds.jsonl"
    path.write_text("\n".join(json.dumps(i.to_dict()) for i in ITEMS) + "\n", encoding="utf-8")
    return path


def invoke(argv: list[str]) -> int | None:
    app = typer.Typer(add_completion=False)
    app.callback()(lambda: None)
    app.command("eval")(eval_command)
    return app(args=["eval", *argv], standalone_mode=False)


def test_eval_command_writes_every_output(dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    rc = invoke([str(dataset), "-k", "3", "--data-dir", str(tmp_path / "idx"),
                 "--json-out", str(out / "r.json"), "--md-out", str(out / "r.md"), "--plot", str(out / "r.png")])
    assert rc in (None, 0)
    assert rag.cli.evaluate._test_calls == [(3, tmp_path / "idx", None)]  # type: ignore[attr-defined]
    report = json.loads((out / "r.json").read_text(encoding="utf-8"))
    assert report["k"] == 3 and report["backend"] == "in-process" and report["dataset"] == "ds.jsonl"
    assert report["metrics"]["strict"] == pytest.approx(2 / 3)
    assert "## Failures (1)" in (out / "r.md").read_text(encoding="utf-8")
    assert (out / "r.png").read_bytes()[:4] == b"\x89PNG"
    captured = capsys.readouterr()
    assert "answer-citation accuracy" in captured.out and "q2" in captured.out
    assert "wrote" in captured.err


def test_eval_command_min_strict(dataset: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert invoke([str(dataset), "--min-strict", "0.6"]) in (None, 0)
    capsys.readouterr()
    assert invoke([str(dataset), "--min-strict", "0.7"]) == 1
    assert "0.667 is below --min-strict 0.7" in capsys.readouterr().err


def test_eval_command_compare(dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old = tmp_path / "old.json"
    report = make_report(q2_answer="Nick Clegg [1]", q2_source="b.txt")
    write_json(old, report)
    invoke([str(dataset), "--compare", str(old)])
    out = capsys.readouterr().out
    assert "compared with old.json" in out and "-33.3 pts" in out
    assert "newly failing: q2" in out


def test_eval_command_validates_inputs_before_running(dataset: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": 1}\nnot json\n', encoding="utf-8")
    with pytest.raises(DatasetError) as info:
        invoke([str(bad)])
    assert "line 1:" in info.value.message and "line 2: invalid JSON" in info.value.message
    with pytest.raises(InputError, match="report not found"):
        invoke([str(dataset), "--compare", str(tmp_path / "missing.json")])
    assert rag.cli.evaluate._test_calls == []  # type: ignore[attr-defined]


def test_eval_command_nli_without_a_model_is_skipped(dataset: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert invoke([str(dataset), "--nli-model", "./no-such-model"]) in (None, 0)
    err = capsys.readouterr().err
    assert "NLI judge skipped: NLI model folder not found: ./no-such-model" in err


# --- pages and fragments ----------------------------------------------------------------------


def test_page_accuracy_and_fragment_rate_in_the_tables() -> None:
    report = make_report()
    text = render(metrics_table(report))
    assert "answers ending mid-sentence" in text and "50.0%" in text  # "Nobody | knows [1]" of 2 given
    assert "page accuracy" not in text  # no question has gold pages
    pdf = EvalItem("p1", "When?", (("Five Eyes",),), ("a.txt",), True, pages=(4,))
    cited = [Citation(1, "a.txt", "a#0", 0, len(GOOD), GOOD, 0.8, page=4),
             Citation(2, "a.txt", "a#1", 0, len(GOOD), GOOD, 0.8, page=5)]
    runs = [QuestionRun(pdf, Answer("?", "The Five Eyes [1][2].", False, cited, Timings(1, 2, 3), "m"))]
    scores = score_runs(runs, k=5)
    paged = build_report(runs, scores, aggregate(scores), dataset="pdf.jsonl", k=5, backend="in-process")
    assert [c["on_page"] for c in paged["questions"][0]["citations"]] == [True, False]
    assert [c["page"] for c in paged["questions"][0]["citations"]] == [4, 5]
    text = render(metrics_table(paged, title="custom title"))
    assert "custom title" in text
    assert "page accuracy (gold page cited)" in text and "2 citations with gold pages" in text
    assert "| page accuracy (gold page cited) | 50.0% | 2 citations with gold pages |" in to_markdown(paged)


def test_fragment_rate_is_lower_is_better_in_comparisons() -> None:
    old, new = make_report(), make_report(q2_answer="Nick Clegg [1].", q2_source="b.txt")
    deltas = {d.key: d for d in compare_reports(old, new).deltas}
    assert deltas["fragment_rate"].delta == pytest.approx(-0.5) and deltas["fragment_rate"].better is True
    assert "page_accuracy" not in deltas


def test_load_report_refuses_a_suite_report(tmp_path: Path) -> None:
    path = tmp_path / "suite.json"
    path.write_text('{"format": "rag-eval-suite/1", "macro": {}, "corpora": []}', encoding="utf-8")
    with pytest.raises(InputError, match="is a suite report"):
        load_report(path)
