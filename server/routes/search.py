"""``GET /v1/search``: hybrid retrieval without generation."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from server.routes._deps import ERROR_RESPONSES, service
from server.schemas import SearchOut

router = APIRouter(tags=["search"])

# A request line over 64 KiB is refused by uvicorn's HTTP parser as plain text before
# the app sees it; 4,096 characters stay under that even when every one of them is
# a 4-byte character sent as 12 bytes of percent escapes.
MAX_QUERY_CHARS = 4096


@router.get("/v1/search", response_model=SearchOut, responses=ERROR_RESPONSES)
async def search(request: Request,
                 q: Annotated[str, Query(min_length=1, max_length=MAX_QUERY_CHARS, description=(
                     "What to look for (at most RAG_MAX_QUESTION_BYTES bytes as UTF-8)."))],
                 k: Annotated[int | None, Query(ge=1, le=50, description="Results (default RAG_TOP_K).")] = None,
                 ) -> object:
    """Hybrid (dense + BM25) search over the indexed chunks: the ``rag search --json`` object."""
    svc = service(request)
    svc.check_question(q, what="query")
    result = await run_in_threadpool(svc.rag.search, q, k)
    return result.to_dict()
