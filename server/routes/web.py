"""The web page at ``/`` (static files, no build step, nothing fetched from elsewhere)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

router = APIRouter()
_STATIC = Path(__file__).resolve().parents[1] / "static"


@router.get("/", include_in_schema=False)
async def index() -> FileResponse:
    return FileResponse(_STATIC / "index.html", media_type="text/html")


def mount_static(app: FastAPI, folder: Path) -> None:
    app.mount("/static", StaticFiles(directory=folder), name="static")
