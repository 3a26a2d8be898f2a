"""Request and response bodies of the HTTP API (they are also its OpenAPI schema)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class AskRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: str = Field(..., description="The question (at most RAG_MAX_QUESTION_BYTES bytes).")
    top_k: int | None = Field(None, ge=1, le=50, description="Chunks to retrieve (default RAG_TOP_K).")
    stream: bool = Field(False, description="Answer as Server-Sent Events: token..., citations, done (or error).")


class HitOut(BaseModel):
    """One passage found by hybrid search (the answer object is ``rag.types.Answer``)."""

    source: str
    chunk_id: str
    start: int
    end: int
    text: str
    score: float


class SearchOut(BaseModel):
    """Exactly the ``rag search --json`` object."""

    query: str
    results: list[HitOut]


class DocumentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: str = Field(..., min_length=1, max_length=512,
                        description="A name such as 'notes/q3.md' (never a path: no '..', no leading '/').")
    text: str = Field(..., description="The document's plain text.")


class DocumentOut(BaseModel):
    source: str
    chunks: int


class DocumentList(BaseModel):
    documents: list[DocumentOut]


class IngestOut(BaseModel):
    source: str
    status: Literal["added", "updated", "unchanged"]
    chunks: int = Field(..., description="Chunks of this document now in the index.")
    total_chunks: int = Field(..., description="Chunks in the whole index.")
    warnings: list[str] = []


class DeleteOut(BaseModel):
    removed: str
    chunks: int


class ErrorBody(BaseModel):
    type: str
    message: str


class ErrorOut(BaseModel):
    error: ErrorBody


# --- OpenAI-compatible chat completions ---------------------------------------

class ContentPart(BaseModel):
    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: str | list[ContentPart] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return " ".join(p.text or "" for p in self.content if p.type == "text")
        return self.content or ""


class ChatRequest(BaseModel):
    model: str | None = Field(None, description="Accepted for compatibility; the server's model answers.")
    messages: list[ChatMessage] = Field(..., min_length=1)
    stream: bool = False
    max_tokens: int | None = Field(None, ge=1, le=4096,
                                   description="Accepted; answers are short and capped by RAG_MAX_ANSWER_TOKENS.")
    temperature: float | None = Field(None, ge=0, le=2,
                                      description="Accepted; answers are always decoded greedily (temperature 0).")
    top_k: int | None = Field(None, ge=1, le=50, description="Extension: chunks to retrieve.")
