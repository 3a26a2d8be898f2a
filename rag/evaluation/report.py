"""Presenting an evaluation: the JSON report (the one structure everything else
reads), rich tables, Markdown, a PNG plot and the comparison with an older report."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rich.table import Table
from rich.text import Text

from rag.errors import InputError
from rag.evaluation.runner import QuestionRun
from rag.evaluation.scorer import Metrics, QuestionScore

REPORT_FORMAT = "rag-eval/1"

# (key in metrics, label, kind): kind is "rate" (0..1), "ms" or "num".
METRICS: tuple[tuple[str, str, str], ...] = (
    ("strict", "answer-citation accuracy (strict)", "rate"),
    ("correct", "correct", "rate"),
    ("citation_recall", "citation recall", "rate"),
    ("citation_precision", "citation precision", "rate"),
    ("abstention_rate", "abstention rate", "rate"),
    ("false_abstention_rate", "false-abstention rate", "rate"),
    ("retrieval_recall_at_k", "retrieval recall@k", "rate"),
    ("retrieval_source_recall_at_k", "  supporting source in top-k", "rate"),
    ("retrieval_fact_recall_at_k", "  all gold facts in top-k", "rate"),
    ("page_accuracy", "page accuracy (gold page cited)", "rate"),
    ("nli_support", "NLI support (second judge)", "rate"),
    ("mean_answer_words", "mean answer length (words)", "num"),
    ("fragment_rate", "answers ending mid-sentence", "rate"),
    ("verbatim_rate", "answers copied from the citations", "rate"),
    ("total_ms_p50", "latency total p50 (ms)", "ms"),
    ("total_ms_p95", "latency total p95 (ms)", "ms"),
    ("ttft_ms_p50", "time to first token p50 (ms)", "ms"),
    ("ttft_ms_p95", "time to first token p95 (ms)", "ms"),
)
LOWER_IS_BETTER = frozenset({"false_abstention_rate", "mean_answer_words", "fragment_rate", "total_ms_p50",
                             "total_ms_p95", "ttft_ms_p50", "ttft_ms_p95"})
# Shown only when something was judged for them (the count in metrics).
OPTIONAL_METRICS = {"nli_support": "nli_judged", "page_accuracy": "pages_judged"}


def build_report(runs: Sequence[QuestionRun], scores: Sequence[QuestionScore], metrics: Metrics, *,
                 dataset: str, k: int, backend: str) -> dict[str, Any]:
    """The ``--json-out`` object: metadata, all metrics and one row per question."""
    questions = []
    for run, score in zip(runs, scores):
        verdict_by_marker = {cv.marker: cv for cv in score.citations}
        citations = []
        for c in run.answer.citations:
            row = asdict(c)
            cv = verdict_by_marker.get(c.marker)
            row["precise"] = None if cv is None else cv.precise
            row["reasons"] = [] if cv is None else list(cv.reasons)
            row["on_page"] = None if cv is None else cv.on_page
            citations.append(row)
        questions.append({
            "id": run.item.id, "question": run.item.question, "answerable": run.item.answerable,
            "answer": run.answer.answer, "abstained": run.answer.abstained, "citations": citations,
            "timings": asdict(run.answer.timings),
            "retrieved": None if run.retrieved is None else [p.source for p in run.retrieved],
            "correct": score.correct, "cited": score.cited, "strict": score.strict,
            "retrieval": score.to_dict()["retrieval"], "nli_entailed": score.nli_entailed,
            "fragment": score.fragment,
            "verdicts": [asdict(v) for v in score.verdicts],
        })
    model = next((r.answer.model for r in runs if r.answer.model), "")
    return {"format": REPORT_FORMAT, "dataset": dataset, "k": k, "backend": backend, "model": model,
            "metrics": metrics.to_dict(), "questions": questions}


def format_value(value: float | None, kind: str) -> str:
    if value is None:
        return "n/a"
    if kind == "rate":
        return f"{value:.1%}"
    if kind == "ms":
        return f"{value:,.0f}"
    return f"{value:.1f}"


def _label(label: str, k: int) -> str:
    return label.replace("@k", f"@{k}").replace("top-k", f"top-{k}")


def _basis(key: str, m: dict[str, Any]) -> str:
    if key == "strict" or key.startswith(("total_ms", "ttft_ms")):
        return f"{m['questions']} questions"
    if key == "citation_precision":
        return f"{m['citations_judged']} citations"
    if key == "abstention_rate":
        return f"{m['unanswerable']} unanswerable"
    if key == "nli_support":
        return f"{m.get('nli_judged', 0)} judged answers"
    if key == "page_accuracy":
        return f"{m.get('pages_judged', 0)} citations with gold pages"
    if key in ("mean_answer_words", "fragment_rate", "verbatim_rate"):
        return "answers given"
    return f"{m['answerable']} answerable"


def _metric_rows(report: dict[str, Any]) -> list[tuple[str, str, str]]:
    m = report["metrics"]
    rows = []
    for key, label, kind in METRICS:
        if key in OPTIONAL_METRICS and not m.get(OPTIONAL_METRICS[key]):
            continue
        rows.append((_label(label, report["k"]), format_value(m.get(key), kind), _basis(key, m)))
    return rows


def metrics_table(report: dict[str, Any], title: str | None = None) -> Table:
    table = Table("metric", "value", "over", title=title or f"evaluation of {report['dataset']} (k={report['k']})")
    table.columns[1].justify = "right"
    for label, value, basis in _metric_rows(report):
        table.add_row(label, value, basis)
    return table


def failures(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The question rows that are not strictly correct."""
    return [q for q in report["questions"] if not q["strict"]]


def _short(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def failures_table(report: dict[str, Any], limit: int = 50) -> Table:
    rows = failures(report)
    table = Table("id", "question", "answer", "what went wrong",
                  title=f"{len(rows)} failing question(s)" + (f", first {limit}" if len(rows) > limit else ""))
    for q in rows[:limit]:
        answer = "(abstained)" if q["abstained"] else _short(q["answer"], 80)
        table.add_row(Text(q["id"]), Text(_short(q["question"], 60)), Text(answer),
                      Text("\n".join(v["detail"] for v in q["verdicts"])))
    return table


def _md_cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def to_markdown(report: dict[str, Any]) -> str:
    m = report["metrics"]
    lines = [f"# Evaluation of `{report['dataset']}`", "",
             f"k = {report['k']} · backend: {report['backend']} · model: {report['model'] or 'n/a'} · "
             f"{m['questions']} questions ({m['answerable']} answerable, {m['unanswerable']} unanswerable)", "",
             "| metric | value | over |", "| --- | ---: | --- |"]
    lines += [f"| {_md_cell(label)} | {value} | {basis} |" for label, value, basis in _metric_rows(report)]
    rows = failures(report)
    lines += ["", f"## Failures ({len(rows)})", ""]
    if not rows:
        lines.append("None: every question is strictly correct.")
    for q in rows:
        answer = "*(abstained)*" if q["abstained"] else f"“{_md_cell(q['answer'])}”"
        lines += [f"### {q['id']}: {_md_cell(q['question'])}", "", f"- answer: {answer}"]
        lines += [f"- **{v['kind']}**: {_md_cell(v['detail'])}" for v in q["verdicts"]]
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def write_text(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror or exc}") from None


def write_json(path: Path, report: dict[str, Any]) -> None:
    write_text(path, json.dumps(report, ensure_ascii=False, indent=2) + "\n")


def write_plot(path: Path, report: dict[str, Any]) -> None:
    """A PNG: rate metrics as bars, and the latency distribution (total and TTFT)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    m = report["metrics"]
    rates = [(_label(label, report["k"]).strip(), m[key]) for key, label, kind in METRICS
             if kind == "rate" and m.get(key) is not None]
    fig = Figure(figsize=(11, 4.5), layout="constrained")
    FigureCanvasAgg(fig)
    bars, hist = fig.subplots(1, 2, width_ratios=[3, 2])
    names = [name for name, _ in rates][::-1]
    values = [value for _, value in rates][::-1]
    bars.barh(names, values, color="#4c72b0")
    bars.set_xlim(0, 1)
    bars.set_title(f"{report['dataset']} (k={report['k']})")
    for y, value in enumerate(values):
        bars.text(min(value + 0.01, 0.9), y, f"{value:.0%}", va="center", fontsize=8)
    total = [q["timings"]["total_ms"] for q in report["questions"]]
    ttft = [q["timings"]["ttft_ms"] for q in report["questions"]]
    hist.hist([total, ttft], bins=min(20, max(5, len(total) // 2)), label=["total", "first token"])
    hist.set_xlabel("ms")
    hist.set_ylabel("questions")
    hist.set_title("latency")
    hist.legend()
    save_png(fig, path)


def save_png(fig: Any, path: Path) -> None:
    """Write a matplotlib figure as PNG (``InputError`` when the path is not writable)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, format="png", dpi=100)
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror or exc}") from None


def read_json_report(path: Path) -> Any:
    """The parsed JSON of an earlier report (``InputError`` when missing or unreadable)."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"report not found: {path}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"cannot read report {path}: {exc}") from None


def load_report(path: Path) -> dict[str, Any]:
    """Read an earlier ``--json-out`` report (for ``--compare``)."""
    report = read_json_report(path)
    if isinstance(report, dict) and str(report.get("format", "")).startswith("rag-eval-suite/"):
        raise InputError(f"{path} is a suite report: compare it with a run of a suite")
    if not isinstance(report, dict) or not isinstance(report.get("metrics"), dict):
        raise InputError(f"{path} is not an evaluation report (no 'metrics' object)")
    return report


@dataclass(frozen=True)
class MetricDelta:
    key: str
    label: str
    kind: str
    old: float | None
    new: float | None

    @property
    def delta(self) -> float | None:
        return None if self.old is None or self.new is None else self.new - self.old

    @property
    def better(self) -> bool | None:
        d = self.delta
        if d is None or d == 0:
            return None
        return (d < 0) if self.key in LOWER_IS_BETTER else (d > 0)


@dataclass(frozen=True)
class Comparison:
    deltas: tuple[MetricDelta, ...]
    fixed: tuple[str, ...]
    broken: tuple[str, ...]


def _num(value: object) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def compare_reports(old: dict[str, Any], new: dict[str, Any]) -> Comparison:
    """Metric deltas (new - old) and the questions that changed strict verdict."""
    deltas = tuple(MetricDelta(key, _label(label, new.get("k", 0)).strip(), kind,
                               _num(old["metrics"].get(key)), _num(new["metrics"].get(key)))
                   for key, label, kind in METRICS
                   if old["metrics"].get(key) is not None or new["metrics"].get(key) is not None)
    before = {q.get("id"): bool(q.get("strict")) for q in old.get("questions", []) if isinstance(q, dict)}
    fixed, broken = [], []
    for q in new.get("questions", []):
        was = before.get(q["id"])
        if was is False and q["strict"]:
            fixed.append(q["id"])
        elif was is True and not q["strict"]:
            broken.append(q["id"])
    return Comparison(deltas=deltas, fixed=tuple(fixed), broken=tuple(broken))


def format_delta(d: MetricDelta) -> str:
    if d.delta is None:
        return "n/a"
    if d.kind == "rate":
        return f"{d.delta * 100:+.1f} pts"
    if d.kind == "ms":
        return f"{d.delta:+,.0f}"
    return f"{d.delta:+.1f}"


def compare_table(comparison: Comparison, old_name: str) -> Table:
    table = Table("metric", "before", "now", "change", title=f"compared with {old_name}")
    for col in table.columns[1:]:
        col.justify = "right"
    for d in comparison.deltas:
        style = {True: "green", False: "red", None: ""}[d.better]
        change = format_delta(d)
        table.add_row(d.label, format_value(d.old, d.kind), format_value(d.new, d.kind),
                      f"[{style}]{change}[/{style}]" if style else change)
    return table
