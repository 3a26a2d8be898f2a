"""``rag eval``: run an evaluation dataset (or a suite of corpora) and report answer/citation metrics.

Registered in ``rag.cli.main`` with ``app.command("eval")(eval_command)``; errors are
``rag.errors`` exceptions, which ``rag.cli.main.main`` turns into one line and an exit code."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from rag.errors import InputError, ModelError
from rag.evaluation.dataset import load_dataset
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
    write_text,
)
from rag.evaluation.runner import (
    AskFn,
    HttpBackend,
    NliJudge,
    SearchFn,
    chat_turns,
    load_nli_judge,
    nli_judgements,
    run_questions,
    score_runs,
)
from rag.evaluation.dataset import EvalItem
from rag.evaluation.ranking import Ranking, rank_questions, record_selections
from rag.evaluation.scorer import aggregate
from rag.evaluation.sources import align_sources
from rag.evaluation.suite import is_suite, load_questions, load_suite, run_suite, suite_data_root
from rag.evaluation.suite_report import (
    MACRO,
    SuiteProgressBars,
    below,
    build_suite_report,
    compare_macros,
    compare_suites,
    compare_suites_table,
    corpus_title,
    failing_line,
    ingest_line,
    load_suite_report,
    summary_table,
    write_suite_json,
    write_suite_markdown,
    write_suite_plot,
)
from rag.settings import get_settings

out = Console(soft_wrap=True)
err = Console(stderr=True)

DEFAULT_NLI_MODEL = "cross-encoder/nli-deberta-v3-xsmall"
SUITE_WITH_URL = ("a suite is evaluated in process: each corpus needs its own index; "
                  "--url evaluates one dataset against the server's index")


RankFn = Callable[[Sequence[EvalItem]], Ranking]


def _in_process(k: int | None, data_dir: Path | None, model: Path | None,
                rerank_model: Path | None = None) -> tuple[AskFn, SearchFn, Callable[[], list[str]], RankFn | None, int]:
    """``ask``/``search``/``sources``/``rank`` callables over an in-process engine, and the effective k."""
    from rag.engine import Rag

    settings = get_settings(top_k=k, data_dir=data_dir, model_path=model, rerank_model=rerank_model)
    engine = Rag(settings)
    recorder = record_selections(engine)
    return ((lambda q, kk, history=(): engine.ask(q, k=kk, history=chat_turns(history)).to_dict()),
            (lambda q, kk: engine.search(q, kk).to_dict()),
            (lambda: [d.source for d in engine.ingestor.documents()]),
            (lambda items: rank_questions(engine, items, settings.top_k, recorder.selections)), settings.top_k)


def _nli_judge(nli: bool, nli_model: str | None) -> NliJudge | None:
    if not (nli or nli_model):
        return None
    try:
        return load_nli_judge(nli_model or DEFAULT_NLI_MODEL)
    except ModelError as exc:
        err.print(f"NLI judge skipped: {exc.message}", highlight=False, markup=False)
        return None


Writer = Callable[[Path, dict[str, Any]], None]


def _write_outputs(report: dict[str, Any], outputs: Sequence[tuple[Path | None, Writer]]) -> None:
    for path, write in outputs:
        if path is not None:
            write(path, report)
            err.print(f"wrote {path}", highlight=False, markup=False)


def _eval_suite(manifest: Path, *, json_out: Path | None, md_out: Path | None, plot: Path | None,
                min_strict: float | None, compare: Path | None, k: int | None, data_dir: Path | None,
                model: Path | None, nli: bool, nli_model: str | None, rerank_model: Path | None = None) -> None:
    """Every corpus of the suite in its own index (under ``data_dir``, else a temporary folder)."""
    corpora = load_suite(manifest)
    questions = load_questions(corpora)
    old = load_suite_report(compare) if compare else None
    judge = _nli_judge(nli, nli_model)
    settings = get_settings(top_k=k, model_path=model, rerank_model=rerank_model)
    with suite_data_root(data_dir) as root:
        err.print(f"loading the models, then {len(corpora)} corpora", highlight=False, markup=False)
        with SuiteProgressBars(err) as bars:
            results = run_suite(corpora, questions, settings, root, progress=bars, judge=judge)
    report = build_suite_report(results, suite=manifest.name, k=settings.top_k, backend="in-process")
    for corpus in report["corpora"]:
        err.print(ingest_line(corpus), highlight=False, markup=False)
        out.print(metrics_table(corpus, title=corpus_title(corpus)))
        out.print(failing_line(corpus), highlight=False, markup=False)
    out.print(summary_table(report))
    _write_outputs(report, ((json_out, write_suite_json), (md_out, write_suite_markdown), (plot, write_suite_plot)))
    if old is not None and compare is not None:
        out.print(compare_suites_table(compare_suites(old, report), compare.name))
        out.print(compare_table(compare_macros(old, report), f"{compare.name} ({MACRO})"))
    low = below(report, min_strict) if min_strict is not None else []
    for name, strict in low:
        err.print(f"corpus {name}: strict answer-citation accuracy {strict:.3f} is below --min-strict {min_strict:g}",
                  highlight=False, markup=False)
    if low:
        raise typer.Exit(1)


def eval_command(
    dataset: Annotated[Path, typer.Argument(help=(
        "JSONL dataset (one {id, question, answers, supporting, answerable[, pages]} per line), run against the "
        "current index; or a suite manifest (.json), each corpus ingested into its own index."))],
    json_out: Annotated[Optional[Path], typer.Option("--json-out", help="Write all metrics and per-question rows as JSON.")] = None,
    md_out: Annotated[Optional[Path], typer.Option("--md-out", help="Write a Markdown report.")] = None,
    plot: Annotated[Optional[Path], typer.Option("--plot", help="Write a PNG chart of the metrics and latencies.")] = None,
    url: Annotated[Optional[str], typer.Option("--url", help="Evaluate a running server (http://HOST:PORT) instead of in-process.")] = None,
    min_strict: Annotated[Optional[float], typer.Option("--min-strict", min=0.0, max=1.0, help="Exit 1 when strict accuracy is below this (0..1); for a suite, in any corpus.")] = None,
    compare: Annotated[Optional[Path], typer.Option("--compare", help="Print metric changes against an earlier --json-out report (of the same kind: dataset or suite).")] = None,
    k: Annotated[Optional[int], typer.Option("-k", "--top-k", min=1, max=50, help="Chunks retrieved per question [env RAG_TOP_K; default 5].")] = None,
    data_dir: Annotated[Optional[Path], typer.Option("--data-dir", help="Index folder (in-process) [env RAG_DATA_DIR; default ./data]; for a suite, the folder holding one index per corpus, DIR/NAME, kept [default: a temporary folder].")] = None,
    model: Annotated[Optional[Path], typer.Option("--model", help="GGUF model file (in-process) [env RAG_MODEL_PATH].")] = None,
    rerank_model: Annotated[Optional[Path], typer.Option("--rerank-model", help="The accurate mode's judge, a GGUF instruction model (in-process) [env RAG_RERANK_MODEL].")] = None,
    nli: Annotated[bool, typer.Option("--nli", help="Also judge citation support with an NLI cross-encoder (offline).")] = False,
    nli_model: Annotated[Optional[str], typer.Option("--nli-model", help=f"Local CrossEncoder folder for --nli [default {DEFAULT_NLI_MODEL}, if cached].")] = None,
) -> None:
    """Evaluate answers and citations on a dataset or a suite (answer-citation accuracy and more)."""
    if is_suite(dataset):
        if url:
            raise InputError(SUITE_WITH_URL)
        _eval_suite(dataset, json_out=json_out, md_out=md_out, plot=plot, min_strict=min_strict, compare=compare,
                    k=k, data_dir=data_dir, model=model, nli=nli, nli_model=nli_model, rerank_model=rerank_model)
        return
    items = load_dataset(dataset)
    old = load_report(compare) if compare else None
    if url and not url.startswith(("http://", "https://")):
        raise InputError(f"--url must start with http:// or https://, got {url!r}")
    judge = _nli_judge(nli, nli_model)
    with contextlib.ExitStack() as stack:
        if url:
            settings = get_settings(top_k=k)
            key = settings.api_key.get_secret_value() if settings.api_key else None
            server = stack.enter_context(HttpBackend(url, api_key=key))
            ask, search, sources, top_k = server.ask, server.search, server.sources, settings.top_k
            rank: RankFn | None = None
        else:
            ask, search, sources, rank, top_k = _in_process(k, data_dir, model, rerank_model)
        aligned = align_sources(items, sources(), dataset.name)
        if aligned.note:
            err.print(aligned.note, highlight=False, markup=False, soft_wrap=True)
        items = aligned.items
        with Progress(TextColumn("[bold]evaluating"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=err, transient=True) as bar:
            task = bar.add_task("eval", total=len(items))
            runs = run_questions(items, ask, search, top_k,
                                 progress=lambda done, total: bar.update(task, completed=done, total=total))
            ranking = rank(items) if rank else None
    scores = score_runs(runs, top_k, nli_judgements(runs, judge) if judge else None)
    metrics = aggregate(scores)
    report = build_report(runs, scores, metrics, dataset=dataset.name, k=top_k, backend=url or "in-process")
    if ranking is not None:
        report["ranking"] = ranking.to_dict()
    out.print(metrics_table(report))
    if ranking is not None and ranking.judged:
        out.print(f"evidence ranking: P@1 {ranking.p_at_1:.1%}, P@3 {ranking.p_at_3:.1%} "
                  f"({ranking.judged} answerable questions)", highlight=False)
    out.print(failures_table(report) if failures(report) else "no failures: every question is strictly correct")
    _write_outputs(report, ((json_out, write_json), (md_out, lambda p, r: write_text(p, to_markdown(r))),
                            (plot, write_plot)))
    if old is not None and compare is not None:
        comparison = compare_reports(old, report)
        out.print(compare_table(comparison, compare.name))
        out.print(f"newly passing: {', '.join(comparison.fixed) or 'none'}; "
                  f"newly failing: {', '.join(comparison.broken) or 'none'}", highlight=False)
    if min_strict is not None and metrics.strict < min_strict:
        err.print(f"strict answer-citation accuracy {metrics.strict:.3f} is below --min-strict {min_strict:g}",
                  highlight=False, markup=False)
        raise typer.Exit(1)
