"""Request and response bodies of the HTTP API (they are also its OpenAPI schema)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from rag.types import Timings


class AskRequest(BaseModel):
    # strict: a JSON body must use the declared types ("stream": 0 is not a boolean)
    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra={"examples": [
        {"question": "Who is Meta's president of global affairs?"},
        {"question": "Who is Meta's president of global affairs?", "top_k": 5, "stream": True},
    ]})

    question: str = Field(..., description="The question (at most RAG_MAX_QUESTION_BYTES bytes).")
    top_k: int | None = Field(None, ge=1, le=50, description="Chunks to retrieve (default RAG_TOP_K).")
    stream: bool = Field(False, description="Answer as Server-Sent Events: token..., citations, done (or error).")
    sources: list[Annotated[str, Field(min_length=1, max_length=512)]] | None = Field(
        None, max_length=100, description="Answer only from these documents: ids or id prefixes as "
                                          "GET /v1/documents lists them (404 for one that matches none).")


class CitationOut(BaseModel):
    """One cited passage (``rag.types.Citation``): what it says and where it is."""

    marker: int = Field(..., description="The n of the [n] markers in the answer that cite this passage.")
    source: str = Field(..., description="The document's source name, as 'rag list' shows it.")
    chunk_id: str = Field(..., description="The indexed chunk the passage comes from.")
    start: int = Field(..., description="Offset of the passage's first character in the document's extracted text.")
    end: int = Field(..., description="Offset just past the passage's last character in the document's extracted text.")
    text: str = Field(..., description="The passage, verbatim.")
    score: float = Field(..., description="Retrieval score of the chunk (higher is more relevant).")
    section: str = Field(..., description="Heading path of the passage, outermost first, joined by ' > ' "
                                          "(e.g. 'functools > functools.lru_cache'); '' where the format "
                                          "has no headings, such as plain text.")
    page: int | None = Field(..., description="1-based page (PDF) or slide (PowerPoint) on which the passage "
                                              "starts; null for formats without pages.")
    title: str = Field(..., description="The document's title: its HTML title or PDF metadata title, else its "
                                        "first heading, else its file name.")
    ocr: bool = Field(False, description="True when the passage is on a scanned page whose text was read by OCR "
                                         "(its words may be misread).")


class AnswerOut(BaseModel):
    """Exactly the ``rag ask --json`` object (``rag.types.Answer``)."""

    question: str
    answer: str = Field(..., description="The answer text with its [n] citation markers.")
    abstained: bool = Field(..., description="True when the documents do not answer the question "
                                             "(then there are no citations).")
    citations: list[CitationOut]
    timings: Timings
    model: str = Field(..., description="The name of the answering model.")
    standalone_question: str = Field(..., description="The question as it was searched: equal to `question`, "
                                                      "or a follow-up made self-contained with the conversation.")


class HitOut(BaseModel):
    """One passage found by hybrid search."""

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
    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra={"examples": [
        {"source": "notes/zebra.txt", "text": "The Zebra Protocol was signed in Oslo in 1999."},
    ]})

    source: str = Field(..., min_length=1, max_length=512,
                        description="A name such as 'notes/q3.md' (never a path: no '..', no leading '/').")
    text: str = Field(..., description="The document's plain text.")


class DocumentOut(BaseModel):
    source: str = Field(..., description="The document's id, as 'rag list' shows it.")
    chunks: int
    title: str = Field(..., description="The document's title (HTML title, PDF metadata, first heading, "
                                        "else the file name).")


class ChunkOut(BaseModel):
    """One indexed chunk: the context of the citations that point at it."""

    chunk_id: str
    source: str
    title: str
    section: str
    page: int | None
    start: int = Field(..., description="Offset of the chunk in the document's extracted text (citations' "
                                        "offsets are in the same text).")
    end: int
    text: str


class DocumentList(BaseModel):
    documents: list[DocumentOut]


class IngestOut(BaseModel):
    source: str
    status: Literal["added", "updated", "unchanged"]
    chunks: int = Field(..., description="Chunks of this document now in the index.")
    total_chunks: int = Field(..., description="Chunks in the whole index.")
    warnings: list[str] = []
    ocr_pages: int = Field(0, description="Pages of the document read by OCR (scanned PDF pages).")


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
    model_config = ConfigDict(strict=True)

    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(strict=True)

    role: Literal["system", "user", "assistant", "tool", "developer"] = Field(
        ..., description="user and assistant messages are the conversation; system, developer and tool "
                         "messages are accepted and not used (answers come from the documents).")
    content: str | list[ContentPart] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return " ".join(p.text or "" for p in self.content if p.type == "text")
        return self.content or ""


class ChatRequest(BaseModel):
    model_config = ConfigDict(strict=True, json_schema_extra={"examples": [
        {"model": "rag", "messages": [{"role": "user", "content": "Who is Meta's president of global affairs?"}]},
        {"model": "rag", "stream": True, "messages": [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "Who is Nick Clegg?"},
            {"role": "assistant", "content": "Meta's president of global affairs [1]."},
            {"role": "user", "content": "What did he write?"}]},
    ]})

    model: str | None = Field(None, description="Accepted for compatibility (any name); the server's model "
                                                "answers and is named in the reply (GET /v1/models).")
    messages: list[ChatMessage] = Field(..., min_length=1, description=(
        "The conversation: the last message must be the user's question; earlier user/assistant turns "
        "resolve follow-ups. System (and developer, tool) messages are accepted and not used."))
    stream: bool = Field(False, description="Stream chat.completion.chunk events; text is sent once verified.")
    max_tokens: int | None = Field(None, ge=1, description=(
        "The most tokens (the model's tokenizer) of answer content: a longer answer is cut after its last "
        "whole sentence that fits (after the last whole word if none does), with finish_reason 'length'."))
    max_completion_tokens: int | None = Field(None, ge=1, description="The newer name of max_tokens "
                                                                      "(the smaller applies when both are given).")
    temperature: float | None = Field(None, ge=0, le=2,
                                      description="Accepted; answers are always decoded greedily (temperature 0).")
    top_k: int | None = Field(None, ge=1, le=50, description="Extension: chunks to retrieve.")
    sources: list[Annotated[str, Field(min_length=1, max_length=512)]] | None = Field(
        None, max_length=100, description="Extension: answer only from these documents (ids or id prefixes as "
                                          "GET /v1/documents lists them; 404 for one that matches none).")

    def token_limit(self) -> int | None:
        limits = [n for n in (self.max_tokens, self.max_completion_tokens) if n is not None]
        return min(limits) if limits else None


class ChatUsage(BaseModel):
    prompt_tokens: int = Field(..., description="Tokens of the request's messages (the model's tokenizer, "
                                                "without chat-template tokens).")
    completion_tokens: int = Field(..., description="Tokens of the returned content.")
    total_tokens: int


_STANDALONE = Field(..., description="The question as it was searched: the last user message, or a "
                                     "follow-up made self-contained with the earlier turns.")
FinishReason = Literal["stop", "length"]


class ChatAnswerMessage(BaseModel):
    role: Literal["assistant"]
    content: str = Field(..., description="The answer with its [n] markers.")
    citations: list[CitationOut]
    abstained: bool
    timings: Timings
    standalone_question: str = _STANDALONE


class ChatChoice(BaseModel):
    index: int
    finish_reason: FinishReason = Field(..., description="'length' when max_tokens cut the answer.")
    message: ChatAnswerMessage


class ChatCompletion(BaseModel):
    """An OpenAI ``chat.completion``; ``citations``, ``abstained``, ``timings`` and
    ``standalone_question`` are extensions."""

    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    choices: list[ChatChoice]
    usage: ChatUsage
    citations: list[CitationOut]
    abstained: bool
    timings: Timings
    standalone_question: str = _STANDALONE


class ChatDelta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None
    citations: list[CitationOut] | None = None


class ChatChunkChoice(BaseModel):
    index: int
    delta: ChatDelta
    finish_reason: FinishReason | None


class ChatCompletionChunk(BaseModel):
    """One streamed ``chat.completion.chunk``; the last one carries usage and the extensions."""

    id: str
    object: Literal["chat.completion.chunk"]
    created: int
    model: str
    choices: list[ChatChunkChoice]
    usage: ChatUsage | None = None
    citations: list[CitationOut] | None = None
    abstained: bool | None = None
    timings: Timings | None = None
    standalone_question: str | None = None


class ModelOut(BaseModel):
    """One model of ``GET /v1/models``: the one that answers."""

    id: str = Field(..., description="The answering model's name (any name is accepted as 'model').")
    object: Literal["model"]
    created: int = Field(..., description="When this server started (Unix time).")
    owned_by: str


class ModelList(BaseModel):
    object: Literal["list"]
    data: list[ModelOut]


# --- Server-Sent Events, described per event for OpenAPI ------------------------

class TokenData(BaseModel):
    text: str


class CitationsData(BaseModel):
    answer: str
    abstained: bool
    citations: list[CitationOut]


def inline_schema(tp: object) -> dict[str, Any]:
    """The JSON schema of a response type with every ``$ref`` replaced by its
    definition, for schemas embedded where ``$defs`` would not resolve."""
    schema = TypeAdapter(tp).json_schema(mode="serialization")
    defs = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return resolve({**defs[node["$ref"].rsplit("/", 1)[-1]],
                                **{k: v for k, v in node.items() if k != "$ref"}})
            return {k: resolve(v) for k, v in node.items()}
        if isinstance(node, list):
            return [resolve(v) for v in node]
        return node

    return resolve(schema)  # type: ignore[no-any-return]


def _json_data(tp: object) -> dict[str, Any]:
    return {"type": "string", "contentMediaType": "application/json", "contentSchema": inline_schema(tp)}


def ask_event_schema() -> dict[str, Any]:
    """One event of a ``POST /v1/ask`` stream: ``token``..., ``citations``, ``done``, or ``error``."""
    events = {"token": TokenData, "citations": CitationsData, "done": AnswerOut, "error": ErrorOut}
    return {"type": "object", "required": ["event", "data"],
            "properties": {"event": {"type": "string", "enum": list(events)}, "data": {"type": "string"}},
            "anyOf": [{"properties": {"event": {"const": name}, "data": _json_data(tp)}}
                      for name, tp in events.items()]}


def chat_event_schema() -> dict[str, Any]:
    """One event of a chat completions stream: a chunk, an error, or ``[DONE]``."""
    return {"type": "object", "required": ["data"],
            "properties": {"data": {"anyOf": [{"const": "[DONE]"},
                                              _json_data(ChatCompletionChunk | ErrorOut)]}}}
