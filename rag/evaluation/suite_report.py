"""Presenting a suite run: the JSON report (one ``rag-eval/1`` report per corpus
plus the macro-average), the summary table, Markdown, a PNG, the comparison with
an older suite report, and the per-corpus progress bars."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from types import TracebackType
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task, TaskID, TextColumn
from rich.table import Table
from rich.text import Text

from rag.errors import InputError
from rag.evaluation.report import (
    Comparison,
    build_report,
    compare_reports,
    failures,
    format_value,
    read_json_report,
    save_png,
    to_markdown,
    write_text,
)
from rag.evaluation.ranking import macro_ranking
from rag.evaluation.suite import CorpusResult, macro_metrics

SUITE_FORMAT = "rag-eval-suite/1"
MACRO = "macro-average"

# (key in metrics, column header, kind) of the summary table, one row per corpus.
SUMMARY: tuple[tuple[str, str, str], ...] = (
    ("strict", "strict", "rate"),
    ("correct", "correct", "rate"),
    ("citation_recall", "cit. recall", "rate"),
    ("citation_precision", "cit. precision", "rate"),
    ("abstention_rate", "abstention", "rate"),
    ("false_abstention_rate", "false abst.", "rate"),
    ("retrieval_recall_at_k", "retr. recall@k", "rate"),
    ("mean_answer_words", "words", "num"),
    ("fragment_rate", "fragments", "rate"),
    ("verbatim_rate", "verbatim", "rate"),
    ("page_accuracy", "page acc.", "rate"),
    ("total_ms_p50", "p50 ms", "ms"),
)
PLOTTED = (("strict", "strict"), ("correct", "correct"), ("retrieval_recall_at_k", "retrieval recall@k"))


# --- the report -------------------------------------------------------------------------------


def corpus_report(result: CorpusResult, k: int, backend: str) -> dict[str, Any]:
    """The single-dataset report of one corpus, with its name and ingestion counts."""
    c = result.corpus
    report = build_report(result.runs, result.scores, result.metrics, dataset=f"{c.name} ({c.questions.name})",
                          k=k, backend=backend)
    report["model"] = report["model"] or result.model
    if result.ranking is not None:
        report["ranking"] = result.ranking.to_dict()
    return {"corpus": c.name, "questions_file": c.questions.name, "ingest": result.ingest.to_dict(), **report}


def build_suite_report(results: Sequence[CorpusResult], *, suite: str, k: int, backend: str) -> dict[str, Any]:
    """The ``--json-out`` object of a suite: per-corpus reports and the macro-average of their metrics."""
    corpora = [corpus_report(r, k, backend) for r in results]
    model = next((c["model"] for c in corpora if c["model"]), "")
    out = {"format": SUITE_FORMAT, "suite": suite, "k": k, "backend": backend, "model": model,
           "macro": macro_metrics([r.metrics for r in results]), "corpora": corpora}
    rankings = [r.ranking for r in results if r.ranking is not None]
    if rankings:
        out["ranking"] = macro_ranking(rankings).to_dict()
    return out


def below(report: dict[str, Any], min_strict: float) -> list[tuple[str, float]]:
    """The corpora whose strict accuracy is below ``min_strict``, with it."""
    return [(c["corpus"], c["metrics"]["strict"]) for c in report["corpora"] if c["metrics"]["strict"] < min_strict]


# --- tables and Markdown ----------------------------------------------------------------------


RANKING = (("p_at_1", "P@1"), ("p_at_3", "P@3"))  # columns from each corpus's "ranking" block


def _ranking_cells(block: dict[str, Any] | None) -> list[str]:
    return [format_value((block or {}).get(key), "rate") for key, _ in RANKING]


def _columns(report: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The summary columns, without page accuracy when no corpus has gold pages."""
    k = report["k"]
    return [(key, header.replace("@k", f"@{k}"), kind) for key, header, kind in SUMMARY
            if key != "page_accuracy" or report["macro"].get("pages_judged")]


def summary_rows(report: dict[str, Any]) -> list[list[str]]:
    """One row per corpus and the macro-average row: name, questions, then the SUMMARY values."""
    columns = _columns(report)
    ranked = "ranking" in report
    rows = [[c["corpus"], str(c["metrics"]["questions"])] + [format_value(c["metrics"].get(key), kind)
                                                              for key, _, kind in columns]
            + (_ranking_cells(c.get("ranking")) if ranked else [])
            for c in report["corpora"]]
    m = report["macro"]
    rows.append([MACRO, str(m["questions"])] + [format_value(m.get(key), kind) for key, _, kind in columns]
                + (_ranking_cells(report["ranking"]) if ranked else []))
    return rows


def summary_headers(report: dict[str, Any]) -> list[str]:
    return (["corpus", "questions"] + [header for _, header, _ in _columns(report)]
            + ([header for _, header in RANKING] if "ranking" in report else []))


def summary_table(report: dict[str, Any]) -> Table:
    table = Table(*summary_headers(report), title=f"suite {report['suite']} (k={report['k']}): "
                                                  f"{len(report['corpora'])} corpora")
    for col in table.columns[1:]:
        col.justify = "right"
    rows = summary_rows(report)
    for row in rows[:-1]:
        table.add_row(*(Text(cell) for cell in row))
    table.add_row(*(Text(cell, style="bold") for cell in rows[-1]), end_section=True)
    table.width = Console(width=1000).measure(table).maximum  # whole numbers even on a narrow terminal
    return table


def corpus_title(corpus: dict[str, Any]) -> str:
    return f"corpus {corpus['corpus']} ({corpus['questions_file']}, k={corpus['k']})"


def failing_line(corpus: dict[str, Any]) -> str:
    rows = failures(corpus)
    if not rows:
        return f"{corpus['corpus']}: no failures"
    return f"{corpus['corpus']}: {len(rows)} failing: {', '.join(q['id'] for q in rows)}"


def ingest_line(corpus: dict[str, Any]) -> str:
    """``name: added 2, ..., removed 0, skipped 0; 7 chunks`` (and the pages read by OCR, if any)."""
    i = corpus["ingest"]
    ocr = f"; {i['ocr_pages']} page(s) read by OCR" if i.get("ocr_pages") else ""
    return (f"{corpus['corpus']}: added {i['added']}, updated {i['updated']}, unchanged {i['unchanged']}, "
            f"removed {i['removed']}, skipped {len(i.get('skipped') or [])}; {i['chunks']} chunks{ocr}")


def _md_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def _demote(markdown: str) -> str:
    """Every heading one level down (a corpus's report becomes a section)."""
    return "\n".join("#" + line if line.startswith("#") else line for line in markdown.splitlines())


def to_suite_markdown(report: dict[str, Any]) -> str:
    """The summary table, then each corpus's report as a section."""
    headers = summary_headers(report)
    m = report["macro"]
    lines = [f"# Evaluation of the suite `{report['suite']}`", "",
             f"k = {report['k']} · backend: {report['backend']} · model: {report['model'] or 'n/a'} · "
             f"{m['corpora']} corpora, {m['questions']} questions", "",
             _md_row(headers), "| --- | " + " | ".join("---:" for _ in headers[1:]) + " |"]
    for row in summary_rows(report):
        lines.append(_md_row([f"**{c}**" for c in row] if row[0] == MACRO else row))
    lines += ["", f"The {MACRO} is the mean over corpora of each metric (over the corpora where it is defined).", ""]
    for corpus in report["corpora"]:
        lines += [_demote(to_markdown(corpus)), ""]
    return "\n".join(lines).rstrip() + "\n"


def write_suite_json(path: Path, report: dict[str, Any]) -> None:
    write_text(path, json.dumps(report, ensure_ascii=False, indent=2) + "\n")


def write_suite_markdown(path: Path, report: dict[str, Any]) -> None:
    write_text(path, to_suite_markdown(report))


def write_suite_plot(path: Path, report: dict[str, Any]) -> None:
    """A PNG: one group of bars per corpus (and the macro-average) for strict, correct and retrieval recall."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    groups = [(c["corpus"], c["metrics"]) for c in report["corpora"]] + [(MACRO, report["macro"])]
    fig = Figure(figsize=(max(6.0, 1.4 * len(groups) + 2), 4.5), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    width = 0.8 / len(PLOTTED)
    for i, (key, label) in enumerate(PLOTTED):
        xs = [g + (i - (len(PLOTTED) - 1) / 2) * width for g in range(len(groups))]
        values = [m.get(key) or 0.0 for _, m in groups]
        ax.bar(xs, values, width, label=label.replace("@k", f"@{report['k']}"))
        for x, value in zip(xs, values):
            ax.text(x, value + 0.01, f"{value:.0%}", ha="center", fontsize=7)
    ax.set_xticks(range(len(groups)), [name for name, _ in groups], rotation=20, ha="right")
    ax.set_ylim(0, 1.25)
    ax.set_yticks([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    ax.set_title(f"suite {report['suite']} (k={report['k']})")
    ax.legend(loc="upper center", ncol=len(PLOTTED), fontsize=8)
    save_png(fig, path)


# --- comparison -------------------------------------------------------------------------------


def load_suite_report(path: Path) -> dict[str, Any]:
    """Read an earlier suite ``--json-out`` report (for ``--compare``)."""
    report = read_json_report(path)
    if not isinstance(report, dict) or report.get("format") != SUITE_FORMAT:
        raise InputError(f"{path} is not a suite report ({SUITE_FORMAT}): a suite compares with a suite report")
    if not isinstance(report.get("macro"), dict) or not isinstance(report.get("corpora"), list):
        raise InputError(f"{path} is not a suite report (no 'macro' object or 'corpora' list)")
    return report


@dataclass(frozen=True)
class StrictDelta:
    corpus: str
    old: float | None
    new: float | None

    @property
    def delta(self) -> float | None:
        return None if self.old is None or self.new is None else self.new - self.old


def _strict_by_corpus(report: dict[str, Any]) -> dict[str, float]:
    out = {}
    for c in report["corpora"]:
        strict = c.get("metrics", {}).get("strict") if isinstance(c, dict) else None
        if isinstance(strict, (int, float)) and not isinstance(strict, bool):
            out[str(c.get("corpus"))] = float(strict)
    return out


def compare_suites(old: dict[str, Any], new: dict[str, Any]) -> list[StrictDelta]:
    """Strict accuracy per corpus (the new run's corpora, then those only the old one had) and the macro row."""
    before, now = _strict_by_corpus(old), _strict_by_corpus(new)
    names = list(now) + [name for name in before if name not in now]
    rows = [StrictDelta(name, before.get(name), now.get(name)) for name in names]
    rows.append(StrictDelta(MACRO, old["macro"].get("strict"), new["macro"].get("strict")))
    return rows


def compare_macros(old: dict[str, Any], new: dict[str, Any]) -> Comparison:
    """Every macro-averaged metric, new - old (as ``compare_reports`` does for one dataset)."""
    return compare_reports({"metrics": old["macro"]}, {"metrics": new["macro"], "k": new["k"]})


def compare_suites_table(rows: Sequence[StrictDelta], old_name: str) -> Table:
    table = Table("corpus", "strict before", "strict now", "change", title=f"compared with {old_name}")
    for col in table.columns[1:]:
        col.justify = "right"
    for row in rows:
        d = row.delta
        change = "n/a" if d is None else f"{d * 100:+.1f} pts"
        style = "" if not d else ("green" if d > 0 else "red")
        table.add_row(Text(row.corpus, style="bold" if row.corpus == MACRO else ""),
                      format_value(row.old, "rate"), format_value(row.new, "rate"), Text(change, style=style))
    return table


# --- progress ---------------------------------------------------------------------------------


class _CorpusElapsed(ProgressColumn):
    """Time since the corpus started (ingestion and questions together), frozen when it is done."""

    def render(self, task: Task) -> Text:
        end = task.fields.get("ended") or time.monotonic()
        return Text(str(timedelta(seconds=int(end - task.fields["started"]))), style="progress.elapsed")


class SuiteProgressBars:
    """One bar per corpus on ``console``: ingesting, then asking; usable as ``SuiteProgress``."""

    PHASES = {"ingest": "ingesting", "ask": "asking", "done": "done"}

    def __init__(self, console: Console) -> None:
        self.progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 _CorpusElapsed(), console=console)
        self.tasks: dict[str, TaskID] = {}

    def __enter__(self) -> SuiteProgressBars:
        self.progress.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.progress.stop()

    def __call__(self, corpus: str, phase: str, done: int, total: int) -> None:
        if corpus not in self.tasks:
            self.tasks[corpus] = self.progress.add_task(corpus, total=None, started=time.monotonic(), ended=None)
        fields: dict[str, Any] = {"ended": time.monotonic()} if phase == "done" else {}
        self.progress.update(self.tasks[corpus], description=f"{corpus}: {self.PHASES.get(phase, phase)}",
                             completed=done, total=total or None, **fields)
