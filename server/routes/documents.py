"""Document management: upload (a file, or JSON text), list, delete. Sources are
names, never paths; nothing is read from or written to the file system."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from rag.errors import InputError
from rag.ingest import validate_source
from rag.loaders import Document, text_from_bytes
from server.routes._deps import service
from server.schemas import DeleteOut, DocumentIn, DocumentList, IngestOut

router = APIRouter(tags=["documents"])

_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": DocumentIn.model_json_schema()},
            "multipart/form-data": {"schema": {
                "type": "object", "required": ["file"],
                "properties": {
                    "file": {"type": "string", "format": "binary",
                             "description": ".txt, .md, .html or .pdf; the file name is the source"},
                    "source": {"type": "string", "description": "Source name to use instead of the file name."},
                }}},
        },
    },
}


class UnsupportedMediaType(InputError):
    http_status = 415
    kind = "unsupported_media_type"


async def _read_document(request: Request) -> tuple[Document, list[str]]:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    warnings: list[str] = []
    if ctype == "multipart/form-data":
        async with request.form(max_files=1, max_fields=4) as form:
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise RequestValidationError([{"loc": ("body", "file"), "msg": "Field required",
                                               "type": "missing"}])
            name = form.get("source")
            source = validate_source(name if isinstance(name, str) and name else upload.filename or "")
            raw = await upload.read()
        return Document(source, text_from_bytes(raw, source, warnings)), warnings
    if ctype in ("application/json", ""):
        try:
            doc = DocumentIn.model_validate_json(await request.body())
        except ValidationError as exc:
            raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]) from None
        return Document(validate_source(doc.source), doc.text), warnings
    raise UnsupportedMediaType(f"send application/json or multipart/form-data, not {ctype!r}")


@router.post("/v1/documents", response_model=IngestOut, openapi_extra=_UPLOAD_BODY)
async def add_document(request: Request) -> object:
    """Add or update one document (idempotent: unchanged text is not embedded again)."""
    svc = service(request)
    doc, warnings = await _read_document(request)
    if not doc.text.strip():
        raise InputError(f"document {doc.source!r} has no text")
    ingestor = svc.rag.ingestor
    report = await svc.write(ingestor.ingest_documents, [doc])
    status = "added" if report.added else "updated" if report.updated else "unchanged"
    chunks = dict(ingestor.list_sources()).get(doc.source, 0)
    return IngestOut(source=doc.source, status=status, chunks=chunks, total_chunks=report.chunks,
                     warnings=warnings)


@router.get("/v1/documents", response_model=DocumentList)
async def list_documents(request: Request) -> object:
    """Indexed sources with their chunk counts."""
    from starlette.concurrency import run_in_threadpool

    rows = await run_in_threadpool(service(request).rag.ingestor.list_sources)
    return {"documents": [{"source": s, "chunks": n} for s, n in rows]}


@router.delete("/v1/documents/{source:path}", response_model=DeleteOut)
async def delete_document(source: str, request: Request) -> object:
    """Remove one document and all its chunks."""
    svc = service(request)
    validate_source(source)
    n = await svc.write(svc.rag.ingestor.remove, source)
    return {"removed": source, "chunks": n}
