"""The answer contract shared by the CLI, the HTTP API and the evaluation harness."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Union


@dataclass(frozen=True)
class Citation:
    marker: int
    source: str
    chunk_id: str
    start: int
    end: int
    text: str
    score: float
    section: str = ""  # heading path of the passage ("" where the format has no headings)
    page: int | None = None  # 1-based page (PDF) or slide (PPTX) of the passage's start, else None
    title: str = ""  # the document's title (HTML title, PDF metadata, first heading, else the file name)
    ocr: bool = False  # the passage is on a page read by OCR (a picture of text): its words may be misread


@dataclass
class Timings:
    retrieval_ms: float = 0.0
    ttft_ms: float = 0.0
    total_ms: float = 0.0


@dataclass
class Answer:
    question: str
    answer: str
    abstained: bool
    citations: list[Citation] = field(default_factory=list)
    timings: Timings = field(default_factory=Timings)
    model: str = ""
    standalone_question: str = ""  # the question as searched: a follow-up made self-contained (rag.answer.followup)

    def to_dict(self) -> dict[str, Any]:
        """Exactly the ``rag ask --json`` / ``POST /v1/ask`` object."""
        d = asdict(self)
        d["timings"] = {k: round(v, 2) for k, v in d["timings"].items()}
        for c in d["citations"]:
            c["score"] = round(c["score"], 4)
        return d


@dataclass(frozen=True)
class TokenEvent:
    """A piece of answer text as it is produced."""

    text: str


@dataclass(frozen=True)
class AnswerStarted:
    """The question is searched and the evidence chosen: the answer is being
    written (the first event of every stream)."""

    standalone_question: str


@dataclass(frozen=True)
class FinalText:
    """Answer text that will not change: an answer's text starts with the
    ``FinalText`` of its stream, in order, joined as they are (what a consumer
    that cannot take text back, such as an OpenAI stream, may send at once)."""

    text: str


@dataclass(frozen=True)
class AnswerEvent:
    """The final, verified answer (always the last event of a stream)."""

    answer: Answer


StreamEvent = Union[AnswerStarted, TokenEvent, FinalText, AnswerEvent]
