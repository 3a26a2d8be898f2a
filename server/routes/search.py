"""``GET /v1/search``: hybrid retrieval without generation."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from server.routes._deps import service
from server.schemas import SearchOut

router = APIRouter(tags=["search"])


@router.get("/v1/search", response_model=SearchOut)
async def search(request: Request,
                 q: Annotated[str, Query(min_length=1, max_length=8192, description="What to look for.")],
                 k: Annotated[int | None, Query(ge=1, le=50, description="Results (default RAG_TOP_K).")] = None,
                 ) -> object:
    """Hybrid (dense + BM25) search over the indexed chunks: the ``rag search --json`` object."""
    svc = service(request)
    result = await run_in_threadpool(svc.rag.search, q, k)
    return result.to_dict()
