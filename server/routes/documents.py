"""Document management: upload (a file, or JSON text), list, delete. Sources are
names, never paths; nothing is read from or written to the file system."""

from __future__ import annotations

import re
import threading
import unicodedata
from pathlib import Path, PurePosixPath
from typing import Annotated
from urllib.parse import unquote

from fastapi import APIRouter, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from rag.ingest.chunking import chunk_document
from rag.errors import InputError, InvalidSourceError, NotFoundError, PayloadTooLargeError, UnsupportedFormatError
from rag.ingest import originals
from rag.ingest.document import validate_source
from rag.ingest.ingestor import Ingestor, IngestReport
from rag.ingest.document import Document
from rag.ingest.loaders import (
    BINARY_SUFFIXES,
    HTML_SUFFIXES,
    SUPPORTED_LIST,
    TEXT_SUFFIXES,
    check_supported,
    parse_document,
    parse_string,
)
from rag.ingest.parsers.ocr import OcrOptions
from server.errors import ClientGoneError, UnsupportedMediaTypeError
from server.routes._deps import ERROR_RESPONSES, JSON_ERROR_RESPONSES, is_json, media_type, service
from server.schemas import ChunkOut, DeleteOut, DocumentIn, DocumentList, ErrorOut, IngestOut

router = APIRouter(tags=["documents"])

# '/', '\\', '.' and control characters written as percent escapes: a name holding
# them means something else to whoever decodes it once more (a URL, a client)
_ENCODED = re.compile(r"%(2f|5c|2e|[01][0-9a-f]|7f)", re.IGNORECASE)
# invisible characters that make a name look like another (bidirectional overrides)
# and line separators
_DECEPTIVE = re.compile("[\u2028\u2029\u202a-\u202e\u2066-\u2069]")

_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": DocumentIn.model_json_schema()},
            "multipart/form-data": {"schema": {
                "type": "object", "required": ["file"],
                "properties": {
                    "file": {"type": "string", "format": "binary", "description": (
                        f"{SUPPORTED_LIST}; the file name is the source, and its suffix the type")},
                    "source": {"type": "string", "description": (
                        "Source name to use instead of the file name (its suffix is then the type).")},
                }}},
        },
    },
}


def checked_source(name: str) -> str:
    """``validate_source`` plus what only matters over HTTP: the name must stay a
    safe name however often it is percent-decoded or Unicode-normalised (no
    ``..%2F``, ``%2e%2e``, full-width slashes), and holds no control or
    direction-changing characters."""
    validate_source(name)
    if any(unicodedata.category(c) == "Cc" for c in name) or _DECEPTIVE.search(name):
        raise InvalidSourceError(f"invalid document source {name!r}: control or invisible formatting characters")
    decoded = name
    for _ in range(4):  # %25 nests encodings; four rounds is more than any client applies
        if _ENCODED.search(decoded):
            raise InvalidSourceError(f"invalid document source {name!r}: percent-encoded '/', '\\', '.' "
                                     "or control characters")
        decoded, before = unquote(decoded), decoded
        if decoded == before:
            break
    plain = unicodedata.normalize("NFKC", decoded)
    if plain != name:
        try:
            validate_source(plain)
        except InvalidSourceError:
            raise InvalidSourceError(f"invalid document source {name!r}: it reads as {plain!r} once "
                                     "percent-decoded or Unicode-normalised") from None
    return name


def _file_name(upload: UploadFile) -> str:
    """The uploaded file's name. The multipart parser cuts Windows paths
    (``C:\\dir\\a.txt``, ``\\\\host\\share\\a.txt``) down to their last part, so the
    header as sent is checked: names with backslashes are refused, as everywhere."""
    if "\\" in upload.headers.get("content-disposition", ""):
        raise InvalidSourceError("invalid file name: it holds backslashes (a Windows path?); "
                                 "send a plain name, or a 'source' field")
    return upload.filename or ""


def _check_text_type(source: str) -> None:
    """JSON carries text: a source named like a text, Markdown or HTML file, or
    without a suffix (plain text); 415 otherwise."""
    suffix = PurePosixPath(source).suffix.lower()
    if suffix in BINARY_SUFFIXES:
        raise UnsupportedFormatError(f"{source}: send a {suffix} file as a multipart file upload, not as JSON text")
    if suffix and suffix not in TEXT_SUFFIXES | HTML_SUFFIXES:
        check_supported(source)


async def _read_document(request: Request, ocr: OcrOptions) -> tuple[Document, list[str], bytes]:
    """The uploaded document, parsed (in a worker thread) by the suffix of its source
    name (scanned PDF pages read as ``ocr`` says), its warnings, and the bytes that
    were sent (the text's UTF-8 for JSON)."""
    ctype = media_type(request)
    warnings: list[str] = []
    if ctype == "multipart/form-data":
        async with request.form(max_files=1, max_fields=4) as form:
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise RequestValidationError([{"loc": ("body", "file"), "msg": "Field required",
                                               "type": "missing"}])
            name = form.get("source")
            source = checked_source(name if isinstance(name, str) and name else _file_name(upload))
            check_supported(source)
            raw = await upload.read()
        return await run_in_threadpool(parse_document, raw, source, warnings, None, ocr), warnings, raw
    if is_json(ctype) or not ctype:
        try:
            doc = DocumentIn.model_validate_json(await request.body())
        except ValidationError as exc:
            raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]) from None
        source = checked_source(doc.source)
        _check_text_type(source)
        return await run_in_threadpool(parse_string, doc.text, source), warnings, doc.text.encode("utf-8")
    raise UnsupportedMediaTypeError(f"send application/json or multipart/form-data, not {ctype!r}")


def count_units(doc: Document, chunk_chars: int) -> int:
    """The evidence units ``doc`` would be stored as (the ingestor's own chunking)."""
    return sum(len(chunk.sentences) for chunk in chunk_document(doc, chunk_chars))


def _keep_and_ingest(data_dir: Path, ingestor: Ingestor, doc: Document, raw: bytes,
                     stop: threading.Event) -> IngestReport:
    """Ingest ``doc`` and keep the bytes that were sent in the data folder
    (``rag.ingest.originals``: what ``rag doctor --rebuild`` makes the index from again);
    if the ingest fails, the copy it replaced is put back. Once ``stop`` is set (the
    client has gone) the ingest ends at its next step, and what it had stored of the
    new version is dropped: the index is as before."""
    def stop_if_gone(done: int, total: int) -> None:
        if stop.is_set():
            raise ClientGoneError(f"the client went away while {doc.source!r} was written "
                                  f"({done} of {total} parts done): stopped, nothing changed")

    path = originals.upload_path(data_dir, doc.source)
    previous = path.read_bytes() if path.is_file() else None
    originals.save_upload(data_dir, doc.source, raw)
    try:
        return ingestor.ingest_documents([doc], progress=stop_if_gone)
    except BaseException as exc:
        if previous is None:
            originals.remove_upload(data_dir, doc.source)
        else:
            originals.save_upload(data_dir, doc.source, previous)
        if isinstance(exc, ClientGoneError):
            ingestor.discard_unfinished([doc.source])
        raise


def _remove_with_copy(data_dir: Path, ingestor: Ingestor, source: str, stop: threading.Event) -> int:
    """Remove ``source`` and its kept copy (quick, one step: ``stop`` is not looked at)."""
    n = ingestor.remove(source)
    originals.remove_upload(data_dir, source)
    return n


_WRITE_BUSY: dict[int | str, dict[str, object]] = {
    503: {"model": ErrorOut, "description": "Too many document writes waiting (RAG_MAX_WRITE_QUEUE), with Retry-After"}}


@router.post("/v1/documents", response_model=IngestOut, openapi_extra=_UPLOAD_BODY,
             responses={**JSON_ERROR_RESPONSES, 415: {"model": ErrorOut, "description": (
                 "The body is neither JSON nor multipart/form-data, or the document's type (the suffix of its "
                 f"name) is not one of {SUPPORTED_LIST}")}, **_WRITE_BUSY})
async def add_document(request: Request) -> object:
    """Add or update one document (idempotent: unchanged text is not embedded again)."""
    svc = service(request)
    doc, warnings, raw = await _read_document(request, svc.rag.ingestor.ocr)
    # JSON or a file, anywhere in it (the bytes sent: a parser may drop them), a PDF's or
    # an office file's text: NUL bytes mean binary data
    if "\x00" in doc.text or (b"\x00" in raw and PurePosixPath(doc.source).suffix.lower() not in BINARY_SUFFIXES):
        raise InputError(f"document {doc.source!r}: the text contains NUL bytes (binary data?)")
    if not doc.text.strip():
        raise InputError(f"document {doc.source!r} has no text")
    units = await run_in_threadpool(count_units, doc, svc.settings.chunk_chars)
    if units > svc.settings.max_upload_units:  # each is embedded: the write's cost is bounded by this
        raise PayloadTooLargeError(f"document {doc.source!r} has {units} sentences, list items or table rows; "
                                   f"an upload may have at most {svc.settings.max_upload_units} "
                                   "(RAG_MAX_UPLOAD_UNITS; 'rag ingest' takes any size)")
    ingestor = svc.rag.ingestor
    report = await svc.write(_keep_and_ingest, Path(svc.settings.data_dir), ingestor, doc, raw, request=request)
    status = "added" if report.added else "updated" if report.updated else "unchanged"
    chunks = dict(ingestor.list_sources()).get(doc.source, 0)
    return IngestOut(source=doc.source, status=status, chunks=chunks, total_chunks=report.chunks,
                     warnings=warnings, ocr_pages=report.ocr_pages)


@router.get("/v1/documents", response_model=DocumentList, responses=ERROR_RESPONSES)
async def list_documents(request: Request) -> object:
    """Indexed sources with their chunk counts."""
    docs = await run_in_threadpool(service(request).rag.ingestor.documents)
    return {"documents": [{"source": d.source, "chunks": d.chunks, "title": d.title} for d in docs]}


@router.get("/v1/chunks/{chunk_id}", response_model=ChunkOut,
            responses={**ERROR_RESPONSES, 404: {"model": ErrorOut, "description": "No such chunk"}})
async def get_chunk(chunk_id: Annotated[str, PathParam(max_length=128, description=(
                        "A citation's chunk_id."))], request: Request) -> object:
    """The whole chunk a citation comes from, to show the passage in its context."""
    record = await run_in_threadpool(service(request).rag.store.chunk, chunk_id)
    if record is None:
        raise NotFoundError(f"no chunk {chunk_id!r} in the index")
    return {"chunk_id": record.id, "source": record.source, "title": record.title, "section": record.section,
            "page": record.page, "start": record.start, "end": record.end, "text": record.text}


@router.delete("/v1/documents/{source:path}", response_model=DeleteOut,
               responses={**ERROR_RESPONSES, 404: {"model": ErrorOut, "description": "No such document"},
                          **_WRITE_BUSY})
async def delete_document(source: Annotated[str, PathParam(max_length=512, description=(
                              "The document's source name, e.g. notes/q3.md (URL-encoded)."))],
                          request: Request) -> object:
    """Remove one document and all its chunks."""
    svc = service(request)
    checked_source(source)
    n = await svc.write(_remove_with_copy, Path(svc.settings.data_dir), svc.rag.ingestor, source, request=request)
    return {"removed": source, "chunks": n}
