"""Suites: several corpora, each with its own documents and questions, each
ingested into its own index and asked only its own questions. The embedder and
the LLM are loaded once and shared by every corpus.

The manifest is a JSON file; paths are relative to it::

    {"description": "...",
     "corpora": [{"name": "news", "documents": "../seeds", "questions": "dev.jsonl"}, ...]}

Typical use::

    corpora = load_suite(Path("eval/suite.json"))
    with suite_data_root(None) as root:
        results = run_suite(corpora, load_questions(corpora), get_settings(), root)
    macro = macro_metrics([r.metrics for r in results])

``open_corpus`` gives one corpus's ingested engine, for scripts that reuse it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rag.errors import DatasetError
from rag.evaluation.dataset import EvalItem, load_dataset
from rag.evaluation.ranking import Ranking, rank_questions, record_selections
from rag.evaluation.runner import History, NliJudge, QuestionRun, chat_turns, nli_judgements, run_questions, score_runs
from rag.evaluation.scorer import Metrics, QuestionScore, aggregate
from rag.settings import Settings

if TYPE_CHECKING:
    from rag.index.embeddings import Embedder
    from rag.engine import Rag
    from rag.answer.generation import Generator
    from rag.ingest.ingestor import IngestReport

log = logging.getLogger(__name__)

SUITE_SUFFIX = ".json"
CORPUS_KEYS = ("name", "documents", "questions")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,59}$")
# Metrics fields that are counts: summed, not averaged, across corpora.
COUNTS = frozenset({"questions", "answerable", "unanswerable", "citations_judged", "nli_judged", "pages_judged"})

SuiteProgress = Callable[[str, str, int, int], None]
"""``progress(corpus, phase, done, total)``; phase is ``"ingest"``, ``"ask"`` or ``"done"``."""


@dataclass(frozen=True)
class Corpus:
    """One corpus of a suite: its documents folder and its questions (JSONL)."""

    name: str
    documents: Path
    questions: Path


@dataclass(frozen=True)
class CorpusResult:
    """What evaluating one corpus gave."""

    corpus: Corpus
    ingest: IngestReport
    runs: list[QuestionRun]
    scores: list[QuestionScore]
    metrics: Metrics
    model: str
    ranking: Ranking | None = None  # P@1/P@3 of the evidence ranking (rag.evaluation.ranking)


def is_suite(path: Path) -> bool:
    """A ``.json`` file is a suite manifest; anything else is read as a JSONL dataset."""
    return Path(path).suffix.lower() == SUITE_SUFFIX


# --- the manifest -----------------------------------------------------------------------------


def _read_manifest(path: Path) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DatasetError(f"suite manifest not found: {path}") from None
    except IsADirectoryError:
        raise DatasetError(f"suite manifest is a folder, not a JSON file: {path}") from None
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{path}: invalid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None
    except OSError as exc:
        raise DatasetError(f"cannot read suite manifest {path}: {exc.strerror}") from None


def _entry_problems(entry: object, base: Path) -> list[str]:
    """The problems of one ``corpora`` entry (keys, types, name, paths)."""
    if not isinstance(entry, dict):
        return [f"expected an object, got {type(entry).__name__}"]
    problems = [f"missing '{key}'" for key in CORPUS_KEYS if key not in entry]
    problems += [f"unknown key '{key}'" for key in entry if key not in CORPUS_KEYS]
    problems += [f"'{key}' must be a non-empty string" for key in CORPUS_KEYS
                 if key in entry and not (isinstance(entry[key], str) and entry[key].strip())]
    if problems:
        return problems
    if not _NAME.match(entry["name"]):
        problems.append(f"name '{entry['name']}' must be letters, digits, '.', '_' or '-' "
                        "(at most 60, starting with a letter or digit): it names the corpus's index folder")
    documents, questions = base / entry["documents"], base / entry["questions"]
    if not documents.is_dir():
        problems.append(f"documents folder not found: {entry['documents']}")
    if not questions.is_file():
        problems.append(f"questions file not found: {entry['questions']}")
    return problems


def _label(index: int, entry: object) -> str:
    name = entry.get("name") if isinstance(entry, dict) else None
    return f"corpus {index}" + (f" ('{name}')" if isinstance(name, str) and name else "")


def parse_suite(obj: object, base: Path, name: str = "suite") -> list[Corpus]:
    """Validate a parsed manifest (paths relative to ``base``); one ``DatasetError`` lists every problem."""
    if not isinstance(obj, dict):
        raise DatasetError(f"{name}: expected a JSON object with 'corpora', got {type(obj).__name__}")
    corpora = obj.get("corpora")
    if not isinstance(corpora, list) or not corpora:
        what = "missing 'corpora'" if "corpora" not in obj else "'corpora' must be a non-empty list"
        raise DatasetError(f"{name}: {what} (a list of {{name, documents, questions}} objects)")
    problems: list[str] = [f"unknown key '{key}'" for key in obj if key not in ("corpora", "description")]
    seen: dict[str, int] = {}
    for index, entry in enumerate(corpora, 1):
        problems += [f"{_label(index, entry)}: {p}" for p in _entry_problems(entry, base)]
        ident = entry.get("name") if isinstance(entry, dict) else None
        if isinstance(ident, str) and ident in seen:
            problems.append(f"{_label(index, entry)}: duplicate name (first is corpus {seen[ident]})")
        elif isinstance(ident, str):
            seen[ident] = index
    if problems:
        listing = "\n  ".join(problems)
        raise DatasetError(f"{name}: {len(problems)} problem(s):\n  {listing}")
    return [Corpus(e["name"], base / e["documents"], base / e["questions"]) for e in corpora]


def load_suite(path: Path) -> list[Corpus]:
    """Read and validate a suite manifest (``DatasetError`` naming the file and every problem)."""
    path = Path(path)
    return parse_suite(_read_manifest(path), path.parent, name=str(path))


def load_questions(corpora: Sequence[Corpus]) -> dict[str, list[EvalItem]]:
    """Every corpus's questions, all validated before anything runs."""
    return {c.name: load_dataset(c.questions) for c in corpora}


# --- indexes and engines ----------------------------------------------------------------------


@contextlib.contextmanager
def suite_data_root(data_dir: Path | None) -> Iterator[Path]:
    """The folder that holds one index per corpus: ``data_dir`` (kept), or a fresh
    temporary folder deleted afterwards."""
    if data_dir is not None:
        Path(data_dir).mkdir(parents=True, exist_ok=True)
        yield Path(data_dir)
        return
    with tempfile.TemporaryDirectory(prefix="rag-eval-suite-", ignore_cleanup_errors=True) as tmp:
        yield Path(tmp)


def corpus_settings(settings: Settings, data_root: Path, corpus: Corpus) -> Settings:
    """``settings`` with the corpus's own embedded index, ``data_root/NAME``."""
    return settings.model_copy(update={"data_dir": Path(data_root) / corpus.name, "chroma_url": None})


def shared_models(settings: Settings) -> tuple[Embedder, Generator | None]:
    """Load the embedder and (unless ``use_llm`` is off) the LLM once, to share between corpora."""
    from rag.engine import Rag

    loader = Rag(settings)
    return loader.embedder, (loader.generator if settings.use_llm else None)


def corpus_engine(corpus: Corpus, data_root: Path, embedder: Embedder | None, generator: Generator | None,
                  settings: Settings) -> Rag:
    """An engine over the corpus's own index (not ingested yet), sharing the loaded models."""
    from rag.engine import Rag

    return Rag(corpus_settings(settings, data_root, corpus), embedder=embedder, generator=generator)


def ingest_corpus(engine: Rag, corpus: Corpus, progress: Callable[[int, int], None] | None = None) -> IngestReport:
    """Bring the corpus's index in line with its folder (unchanged files are skipped, gone ones removed).
    Sources keep bare ids (paths relative to the folder, ``prefix=""``): datasets name them so."""
    report, _ = engine.ingestor.ingest_paths([corpus.documents], prune=True, progress=progress, prefix="")
    log.info("%s: %s", corpus.name, report.to_dict())
    return report


def open_corpus(corpus: Corpus, data_root: Path, embedder: Embedder | None, generator: Generator | None,
                settings: Settings | None = None) -> Rag:
    """The in-process engine over ``data_root/NAME`` with the corpus ingested (for scripts).

    ``embedder``/``generator``: loaded models to share (``None``: loaded from ``settings`` on
    first use); ``settings``: the base settings [default: from the environment]."""
    from rag.settings import get_settings

    engine = corpus_engine(corpus, data_root, embedder, generator, settings or get_settings())
    ingest_corpus(engine, corpus)
    return engine


# --- running ----------------------------------------------------------------------------------


def _phase(progress: SuiteProgress | None, name: str, phase: str) -> Callable[[int, int], None] | None:
    if progress is None:
        return None
    return lambda done, total: progress(name, phase, done, total)


def run_corpus(corpus: Corpus, items: Sequence[EvalItem], engine: Rag, *, progress: SuiteProgress | None = None,
               judge: NliJudge | None = None) -> CorpusResult:
    """Ingest one corpus into its engine's index and ask it its questions."""
    k = engine.settings.top_k
    if progress:
        progress(corpus.name, "ingest", 0, 0)
    report = ingest_corpus(engine, corpus, _phase(progress, corpus.name, "ingest"))
    recorder = record_selections(engine)

    def ask(q: str, kk: int, history: History = ()) -> dict[str, object]:
        return engine.ask(q, k=kk, history=chat_turns(history)).to_dict()

    runs = run_questions(items, ask, lambda q, kk: engine.search(q, kk).to_dict(), k,
                         progress=_phase(progress, corpus.name, "ask"))
    scores = score_runs(runs, k, nli_judgements(runs, judge) if judge else None)
    ranking = rank_questions(engine, items, k, recorder.selections)
    if progress:
        progress(corpus.name, "done", len(items), len(items))
    return CorpusResult(corpus, report, runs, scores, aggregate(scores), engine.model_name, ranking)


def run_suite(corpora: Sequence[Corpus], questions: Mapping[str, Sequence[EvalItem]], settings: Settings,
              data_root: Path, *, progress: SuiteProgress | None = None,
              judge: NliJudge | None = None) -> list[CorpusResult]:
    """Every corpus in turn, each in ``data_root/NAME``, with the models loaded once."""
    embedder, generator = shared_models(settings)
    results = []
    for corpus in corpora:
        engine = corpus_engine(corpus, data_root, embedder, generator, settings)
        results.append(run_corpus(corpus, questions[corpus.name], engine, progress=progress, judge=judge))
    return results


def macro_metrics(metrics: Sequence[Metrics]) -> dict[str, Any]:
    """Counts summed; every other metric averaged over the corpora where it is defined
    (``None`` where it is defined for none); ``corpora``: how many."""
    macro: dict[str, Any] = {"corpora": len(metrics)}
    for f in fields(Metrics):
        values = [getattr(m, f.name) for m in metrics]
        if f.name in COUNTS:
            macro[f.name] = sum(values)
            continue
        defined = [v for v in values if v is not None]
        macro[f.name] = sum(defined) / len(defined) if defined else None
    return macro
