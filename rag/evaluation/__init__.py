"""The evaluation harness: dataset loading, running, scoring and reporting.

Typical use::

    items = load_dataset(Path("eval/dev.jsonl"))
    runs = run_questions(items, ask, search, k=5)
    scores = score_runs(runs, k=5)
    metrics = aggregate(scores)
"""

from __future__ import annotations

from rag.evaluation.dataset import EvalItem, load_dataset, parse_dataset
from rag.evaluation.report import (
    build_report,
    compare_reports,
    load_report,
    to_markdown,
    write_json,
    write_plot,
)
from rag.evaluation.runner import (
    HttpBackend,
    QuestionRun,
    answer_from_dict,
    load_nli_judge,
    nli_judgements,
    passages_from_search,
    run_questions,
    score_runs,
)
from rag.evaluation.scorer import (
    MAX_CITATION_CHARS,
    Metrics,
    Passage,
    QuestionScore,
    Verdict,
    aggregate,
    score_question,
)

__all__ = [
    "MAX_CITATION_CHARS",
    "EvalItem",
    "HttpBackend",
    "Metrics",
    "Passage",
    "QuestionRun",
    "QuestionScore",
    "Verdict",
    "aggregate",
    "answer_from_dict",
    "build_report",
    "compare_reports",
    "load_dataset",
    "load_nli_judge",
    "load_report",
    "nli_judgements",
    "parse_dataset",
    "passages_from_search",
    "run_questions",
    "score_question",
    "score_runs",
    "to_markdown",
    "write_json",
    "write_plot",
]
