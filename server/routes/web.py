"""The web page at ``/`` (static files, no build step, nothing fetched from elsewhere).

The page and its files are sent with a Content-Security-Policy that lets them load
and call only this origin and keeps other sites from framing the page, and with
``Cache-Control: no-cache`` so that a browser checks for a newer version (a cheap
conditional request) instead of running stale modules after an upgrade."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from starlette.responses import Response
from starlette.types import Scope

router = APIRouter()
_STATIC = Path(__file__).resolve().parents[1] / "static"

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-cache",
}


class _PageFiles(StaticFiles):
    """Static files with the page's headers."""

    def file_response(self, full_path: str | Path, stat_result, scope: Scope,  # noqa: ANN001
                      status_code: int = 200) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers.update(HEADERS)
        return response


@router.get("/", include_in_schema=False)
async def index() -> FileResponse:
    return FileResponse(_STATIC / "index.html", media_type="text/html", headers=HEADERS)


def mount_static(app: FastAPI, folder: Path) -> None:
    app.mount("/static", _PageFiles(directory=folder), name="static")
