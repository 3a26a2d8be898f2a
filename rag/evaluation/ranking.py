"""How well the evidence is ranked: for each answerable question, is the unit that
selection ranks first (or one of its first three) a unit that holds a gold fact,
from a supporting source? P@1 is what the answer's first citation rests on.

Measured in process only (the HTTP API does not show the ranking), on the
question as asked; a conversation's turns are not ranked."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from rag.evaluation.dataset import EvalItem
from rag.evaluation.scorer import fact_present

if TYPE_CHECKING:
    from rag.engine import Rag
    from rag.answer.selection import Selection

DEPTHS = (1, 3)


@dataclass(frozen=True)
class Ranking:
    """P@1 and P@3 of the answering unit over ``judged`` answerable questions."""

    p_at_1: float | None
    p_at_3: float | None
    judged: int

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def answering_ranks(item: EvalItem, texts_and_sources: Sequence[tuple[str, str]]) -> list[bool]:
    """For candidates best first: does each hold a gold fact from a supporting source?"""
    return [source in item.supporting and any(fact_present(text, fact) for fact in item.answers)
            for text, source in texts_and_sources]


class SelectionRecorder:
    """Keeps the selection the answer pipeline made for each question it answered
    (install with ``record_selections``), so ranking them selects nothing again."""

    def __init__(self) -> None:
        self.selections: dict[str, "Selection"] = {}

    def __call__(self, question: str, selection: "Selection") -> None:
        self.selections[question] = selection


def record_selections(engine: "Rag") -> SelectionRecorder:
    """A recorder installed on the engine's answer pipeline."""
    recorder = SelectionRecorder()
    engine.pipeline.on_selection = recorder
    return recorder


def rank_questions(engine: "Rag", items: Sequence[EvalItem], k: int,
                   recorded: Mapping[str, "Selection"] | None = None) -> Ranking:
    """P@1/P@3 of the engine's evidence ranking on the answerable questions of ``items``;
    ``recorded``: selections already made for these questions (the others are made here)."""
    hits = {d: 0 for d in DEPTHS}
    judged = 0
    for item in items:
        if not item.answerable or item.history:
            continue
        selection = (recorded or {}).get(item.question)
        if selection is None:
            _, selection, _ = engine.pipeline.decide(item.question, k)
        ok = answering_ranks(item, [(c.record.text, c.record.source) for c in selection.candidates])
        judged += 1
        for d in DEPTHS:
            hits[d] += any(ok[:d])
    if not judged:
        return Ranking(None, None, 0)
    return Ranking(hits[1] / judged, hits[3] / judged, judged)


def macro_ranking(rankings: Sequence[Ranking]) -> Ranking:
    """The mean over the corpora where questions were judged."""
    judged = [r for r in rankings if r.judged]
    if not judged:
        return Ranking(None, None, 0)
    return Ranking(sum(r.p_at_1 or 0.0 for r in judged) / len(judged),
                   sum(r.p_at_3 or 0.0 for r in judged) / len(judged), sum(r.judged for r in judged))
