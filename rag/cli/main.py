"""The ``rag`` command line: a thin layer over ``rag.engine.Rag``.

Errors from ``rag.errors`` become one line on stderr and their exit code; no
tracebacks for user mistakes."""

from __future__ import annotations

import json
import logging
import os
import sys
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import click
import typer
from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                           TimeRemainingColumn)
from rich.table import Table

from rag.errors import RagError

if TYPE_CHECKING:
    from rag.settings import Settings

# Imports here are what every command needs; the rest (settings, models, Chroma) is
# imported by the command that uses it, so --help and --version answer at once and
# questions never import torch (see bench/startup.py).

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  help="Local question answering over your documents, with cited answers.")
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

DataDirOpt = Annotated[Optional[Path], typer.Option("--data-dir", help="Index folder [env RAG_DATA_DIR; default ./data].")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of text.")]
TopKOpt = Annotated[Optional[int], typer.Option("-k", "--top-k", min=1, max=50, help="Chunks to retrieve [env RAG_TOP_K; default 5].")]
ModelOpt = Annotated[Optional[Path], typer.Option("--model", help="GGUF model file [env RAG_MODEL_PATH; default: the embedded SmolLM2].")]
RerankOpt = Annotated[Optional[Path], typer.Option("--rerank-model", help=(
    "The accurate mode: a GGUF instruction model that judges the best few units (about 1 s a unit on 2 cores) "
    "[env RAG_RERANK_MODEL; default: none]."))]
SourceOpt = Annotated[Optional[list[str]], typer.Option("--source", "-s", metavar="ID", help=(
    "Only from this document: an id or id prefix as 'rag list' shows it (repeatable)."))]


def _settings(**overrides: object) -> Settings:
    from rag.settings import get_settings

    return get_settings(**overrides)


def _engine(settings: Settings):  # noqa: ANN202 - avoids importing heavy modules for --help
    from rag.engine import Rag

    return Rag(settings)


def _print_json(obj: object) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def _version(value: bool) -> None:
    if value:
        from rag import __version__

        out.print(f"rag {__version__}", highlight=False)
        raise typer.Exit()


def _validation_error() -> type[BaseException]:
    """pydantic's ValidationError (a bad RAG_* variable) once settings were read; pydantic
    is not imported before that."""
    pydantic = sys.modules.get("pydantic")
    return getattr(pydantic, "ValidationError", None) or _NeverRaised


class _NeverRaised(Exception):
    pass


@app.callback()
def _root(verbose: Annotated[bool, typer.Option("-v", "--verbose", help="Debug logging.")] = False,
          version: Annotated[bool, typer.Option("--version", is_eager=True, callback=_version,
                                                help="Print the version and exit.")] = False) -> None:
    from rich.logging import RichHandler

    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, format="%(message)s",
                        handlers=[RichHandler(console=err, show_time=False, show_path=False)])
    for noisy in ("chromadb", "httpx", "sentence_transformers", "urllib3", "transformers"):
        logging.getLogger(noisy).setLevel(logging.WARNING if not verbose else logging.INFO)


@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help=(
        "Files or folders (recursive): .txt .md .markdown .html .htm .pdf .docx .pptx .epub "
        "(scanned PDF pages are read by OCR, with Tesseract)"))],
    prune: Annotated[bool, typer.Option("--prune", help="Also remove indexed sources not among these files.")] = False,
    prefix: Annotated[Optional[str], typer.Option("--prefix", metavar="NAME", help=(
        "Start source ids with NAME instead of the folder's name; --prefix '' gives paths relative to the "
        "folder."))] = None,
    strict: Annotated[bool, typer.Option("--strict", help=(
        "Refuse (exit 1, nothing written) when any file would be skipped."))] = False,
    data_dir: DataDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Add or update documents in the index (unchanged files are skipped).

    Source ids start with the name of the folder given: 'rag ingest projA' names
    projA/README.md and projA/sub/x.md, and 'rag ingest projA/README.md' names it
    projA/README.md too. Files in folders that are unsupported, unreadable, binary,
    damaged, encrypted, empty or fail to parse are skipped, one warning each, and
    counted; a file named here that cannot be read is an error. Scanned PDF pages
    are read by OCR (Tesseract; RAG_OCR_LANG), each page once: the result is kept
    in the cache folder. The paths are recorded in the data folder, for
    'rag doctor --rebuild'."""
    from rag.ingest.originals import record_ingested

    settings = _settings(data_dir=data_dir)
    engine = _engine(settings)
    if as_json:
        report, _ = engine.ingestor.ingest_paths(paths, prune=prune, prefix=prefix, strict=strict)
        record_ingested(Path(settings.data_dir), paths, prefix)
        _print_json(report.to_dict())
        return
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("left"), TimeRemainingColumn(),
                  console=err, transient=True) as bar:
        ocr_tasks: dict[str, object] = {}

        def ocr_progress(source: str, done: int, total: int) -> None:
            if source not in ocr_tasks:
                ocr_tasks[source] = bar.add_task(f"OCR {source.rsplit('/', 1)[-1]} (pages)", total=total)
            bar.update(ocr_tasks[source], completed=done, total=total)  # type: ignore[arg-type]

        embedding: list[object] = []  # its bar appears once embedding starts (after any OCR)

        def progress(done: int, total: int) -> None:
            if not embedding:
                embedding.append(bar.add_task("embedding", total=total))
            bar.update(embedding[0], completed=done, total=total)  # type: ignore[arg-type]

        report, _ = engine.ingestor.ingest_paths(paths, prune=prune, prefix=prefix, strict=strict,
                                                 ocr_progress=ocr_progress, progress=progress)
    record_ingested(Path(settings.data_dir), paths, prefix)
    r = report
    migrated = f", migrated {r.migrated}" if r.migrated else ""
    ocr = f"; {r.ocr_pages} page(s) read by OCR" if r.ocr_pages else ""
    out.print(f"added {r.added}, updated {r.updated}, unchanged {r.unchanged}{migrated}, removed {r.removed}, "
              f"skipped {len(r.skipped)}; {r.chunks} chunks in the index{ocr}")


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="What to look for.")],
    k: TopKOpt = None,
    source: SourceOpt = None,
    data_dir: DataDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Hybrid (dense + BM25) search over the indexed chunks."""
    engine = _engine(_settings(data_dir=data_dir, top_k=k))
    result = engine.search(query, k, sources=source)
    if as_json:
        _print_json(result.to_dict())
        return
    if not result.hits:
        out.print("no results (is the index empty? run 'rag ingest PATH')")
    for i, hit in enumerate(result.hits, 1):
        out.print(f"[bold]{i}. {hit.source}[/bold] [{hit.start}:{hit.end}] score {hit.score:.3f}")
        out.print(f"   {hit.text[:300]}{'…' if len(hit.text) > 300 else ''}", highlight=False)


@app.command("list")
def list_(data_dir: DataDirOpt = None, as_json: JsonOpt = False) -> None:
    """List indexed sources (the ids 'rag remove' takes) with their chunk counts."""
    engine = _engine(_settings(data_dir=data_dir))
    rows = engine.ingestor.list_sources()
    if as_json:
        _print_json({"documents": [{"source": s, "chunks": n} for s, n in rows]})
        return
    table = Table("source", "chunks")
    for s, n in rows:
        table.add_row(s, str(n))
    out.print(table if rows else "the index is empty")


@app.command()
def remove(
    source: Annotated[str, typer.Argument(help="Source name as shown by 'rag list'.")],
    data_dir: DataDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Remove one document (all its chunks) from the index."""
    engine = _engine(_settings(data_dir=data_dir))
    n = engine.ingestor.remove(source)
    if as_json:
        _print_json({"removed": source, "chunks": n})
    else:
        out.print(f"removed {source} ({n} chunks)")


class DoctorPart(str, Enum):
    index = "index"
    model = "model"


@app.command()
def doctor(
    rebuild: Annotated[bool, typer.Option("--rebuild", help=(
        "Move the index aside (chroma.damaged-<time> in the data folder) and make it again from the folders "
        "'rag ingest' was given and the uploads kept in the data folder."))] = False,
    only: Annotated[Optional[DoctorPart], typer.Option("--only", help="Check only the index, or only the model.")] = None,
    model: ModelOpt = None,
    data_dir: DataDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Check the index and the model (exit 1 on a problem), or make the index again with --rebuild.

    The model is loaded and decodes a few tokens in a child process, so that a
    crash inside llama.cpp is reported in one line with what to change."""
    from rag.cli import doctor as doc

    settings = _settings(data_dir=data_dir, model_path=model)
    rebuilt = doc.rebuild(settings, _engine) if rebuild else None
    health = doc.check(settings) if only is not DoctorPart.model else doc.Health()
    model_health = doc.check_model(settings) if only is not DoctorPart.index else None
    ok = health.ok and (model_health is None or model_health.ok)
    if as_json:
        _print_json({**health.to_dict(), "ok": ok, **({"model": model_health.to_dict()} if model_health else {}),
                     **({"rebuilt": rebuilt.to_dict()} if rebuilt else {})})
    else:
        if rebuilt:
            moved = f"the old index is in {rebuilt.moved_to}; " if rebuilt.moved_to else ""
            out.print(f"rebuilt: {moved}{rebuilt.folders} ingested folders or files and {rebuilt.uploads} uploads "
                      f"read again, {rebuilt.chunks} chunks", highlight=False)
            for path in rebuilt.missing:
                err.print(f"warning: {path} (given to 'rag ingest') is no longer there", highlight=False)
            for failure in rebuilt.failed:
                err.print(f"warning: a kept upload could not be read: {failure}", highlight=False)
        for note in health.notes:
            out.print(note, highlight=False, markup=False)
        for problem in health.problems:
            err.print(f"problem: {problem}", highlight=False, markup=False)
        if not health.ok:
            err.print("make the index again with 'rag doctor --rebuild' (the old one is kept aside)", highlight=False)
        for note in model_health.notes if model_health else ():
            out.print(f"model: {note}", highlight=False, markup=False)
        for problem in model_health.problems if model_health else ():
            err.print(f"problem: {problem}", highlight=False, markup=False)
    if not ok:
        raise typer.Exit(1)


def _register_eval(argv: list[str]) -> None:
    """Add ``rag eval`` unless another command runs: its module imports the whole
    evaluation package (and the engine), which no other command needs."""
    first = next((a for a in argv if not a.startswith("-")), None)
    if first in (None, "eval") and "--version" not in argv and \
            not any(c.name == "eval" for c in app.registered_commands):
        from rag.cli.evaluate import eval_command

        app.command("eval")(eval_command)


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="The question.")],
    k: TopKOpt = None,
    model: ModelOpt = None,
    rerank_model: RerankOpt = None,
    data_dir: DataDirOpt = None,
    no_llm: Annotated[bool, typer.Option("--no-llm", help="Answer with the evidence sentences only.")] = False,
    source: SourceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Answer a question from the indexed documents, with cited sources."""
    from rag.cli.render import print_sources, stream_answer

    settings = _settings(data_dir=data_dir, top_k=k, model_path=model, rerank_model=rerank_model,
                         use_llm=False if no_llm else None)
    engine = _engine(settings)
    engine.load(wait=False)  # the LLM loads (and reads the fixed start of the prompt) while the question is searched
    if as_json:
        result = engine.ask(question, sources=source)
        engine.settle()  # nothing printed while a model loads (see Rag.settle)
        _print_json(result.to_dict())
        return
    answer = stream_answer(out, engine.ask_stream(question, sources=source), settle=engine.settle)
    if answer.citations:
        out.print("sources:", style="dim")
        print_sources(out, answer.citations, max_chars=240)


@app.command()
def chat(
    k: TopKOpt = None,
    model: ModelOpt = None,
    rerank_model: RerankOpt = None,
    source: SourceOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Interactive questions in the terminal (/sources, /reset, /quit, Ctrl-D)."""
    from rag.cli.chat import ChatSession

    settings = _settings(data_dir=data_dir, top_k=k, model_path=model, rerank_model=rerank_model)
    engine = _engine(settings)
    engine.resolve_sources(source)  # an unknown document is one clear line before any model loads
    ChatSession(engine, out, sources=source).run()


MAX_REQUEST_HEAD_BYTES = 64 * 1024  # request line and headers of one HTTP request ('rag serve')


@app.command()
def serve(
    host: Annotated[Optional[str], typer.Option("--host", help="Address to listen on [env RAG_HOST; default 127.0.0.1].")] = None,
    port: Annotated[Optional[int], typer.Option("--port", min=0, max=65535, help="Port [env RAG_PORT; default 8000].")] = None,
    workers: Annotated[int, typer.Option("--workers", min=1, max=64, help=(
        "Worker processes, each with its own embedder (and LLM unless RAG_LLM_URL is set); "
        "more than 1 needs a Chroma server (RAG_CHROMA_URL)."))] = 1,
    model: ModelOpt = None,
    rerank_model: RerankOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Run the HTTP API and the web page (uvicorn)."""
    import uvicorn

    settings = _settings(data_dir=data_dir, model_path=model, rerank_model=rerank_model, host=host, port=port)
    # the app factory reads RAG_* in every worker: hand the flags on through the environment
    for name, value in (("RAG_DATA_DIR", data_dir), ("RAG_MODEL_PATH", model), ("RAG_RERANK_MODEL", rerank_model)):
        if value is not None:
            os.environ[name] = str(Path(value).resolve())
    if workers > 1 and not settings.chroma_url:
        raise typer.BadParameter("several workers cannot share the embedded index: start a Chroma server "
                                 "and set RAG_CHROMA_URL (see docs/deployment.md)", param_hint="--workers")
    _engine(settings).check_backends()  # one clear line if a server is unreachable, before any worker starts
    err.print(f"serving on http://{settings.host}:{settings.port} (Ctrl-C to stop)", highlight=False)
    uvicorn.run("server.app:app_from_env", factory=True, host=settings.host, port=settings.port,
                workers=workers, log_level="info", timeout_graceful_shutdown=5,
                limit_concurrency=settings.max_connections,
                # h11, whose parser bounds a request's head in bytes (httptools took a 200 MB header),
                # with bounds in time on slow clients (RAG_HEAD_TIMEOUT, RAG_IDLE_TIMEOUT)
                http="server.http_protocol:BoundedH11Protocol", h11_max_incomplete_event_size=MAX_REQUEST_HEAD_BYTES)


def main(argv: list[str] | None = None) -> None:
    try:
        _register_eval(sys.argv[1:] if argv is None else argv)
        rv = app(args=argv, standalone_mode=False)
    except (click.exceptions.Exit, typer.Exit) as exc:
        raise SystemExit(exc.exit_code) from None
    except (click.ClickException, typer.TyperException) as exc:
        show = getattr(exc, "show", None)
        if show:
            show()
        else:
            err.print(f"error: {exc.format_message()}", highlight=False, markup=False)
        raise SystemExit(exc.exit_code) from None
    except (click.exceptions.Abort, typer.Abort):
        err.print("aborted")
        raise SystemExit(130) from None
    except RagError as exc:
        err.print(f"error: {exc.message}", highlight=False, markup=False)
        raise SystemExit(exc.exit_code) from None
    except _validation_error() as exc:  # a bad RAG_* variable
        for e in exc.errors():
            name = "RAG_" + "_".join(str(p) for p in e["loc"]).upper()
            err.print(f"error: {name}: {e['msg']}", highlight=False, markup=False)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        err.print("interrupted")
        raise SystemExit(130) from None
    except OSError as exc:  # the machine's trouble (a full disk, a file that went away), not a bug
        err.print(f"error: {exc}", highlight=False, markup=False)
        raise SystemExit(1) from None
    raise SystemExit(rv if isinstance(rv, int) else 0)


# Commands that only read: their process may end without tearing the interpreter
# down (unloading ONNX Runtime, SciPy and Chroma's engine takes about 0.2 s here).
# So does any command that failed: a model still loading in a thread when the error
# came would abort the teardown ("terminate called without an active exception",
# exit 134, seen after a refused 'rag ingest'); what a write stored is in Chroma's
# SQLite log already, as after a kill.
READ_ONLY = frozenset({"ask", "search", "list"})


def run() -> None:
    """The ``rag`` console script (and ``python -m rag``): ``main``, and after a
    read-only command or an error, output flushed, a quick exit (``os._exit``; see
    READ_ONLY)."""
    try:
        main()
    except SystemExit as exc:
        first = next((a for a in sys.argv[1:] if not a.startswith("-")), None)
        failed = isinstance(exc.code, int) and exc.code != 0
        if (first in READ_ONLY and (exc.code is None or isinstance(exc.code, int))) or failed:
            logging.shutdown()
            for stream in (sys.stdout, sys.stderr):
                try:
                    stream.flush()
                except (OSError, ValueError):
                    pass
            os._exit(exc.code or 0)
        raise
