"""``/docs`` (Swagger UI) and ``/redoc`` (ReDoc) served from local files, so the
API documentation works without network access. The assets are the ones the
fastapi-offline package ships (only its static files are used); the pages are
FastAPI's own. Their Content-Security-Policy lets them load nothing from other
hosts (ReDoc would otherwise fetch its vendor's logo from a CDN)."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

router = APIRouter(include_in_schema=False)
ASSETS = "/docs/assets"  # swagger-ui-bundle.js, swagger-ui.css, redoc.standalone.js, favicon.png
# same origin only; inline scripts and styles (the pages' start-up script, styled
# components), data: images and fonts, and ReDoc's search worker from a blob:
CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline' blob:; style-src 'self' 'unsafe-inline'; "
       "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; connect-src 'self'; "
       "object-src 'none'; base-uri 'none'; frame-ancestors 'none'")


def assets_dir() -> Path:
    return Path(str(files("fastapi_offline") / "static"))


def _urls(request: Request) -> tuple[str, str]:
    """The OpenAPI document's URL and the assets' prefix, behind any root path."""
    root = request.scope.get("root_path", "").rstrip("/")
    return root + (request.app.openapi_url or "/openapi.json"), root + ASSETS


def _same_origin(page: HTMLResponse) -> HTMLResponse:
    page.headers["Content-Security-Policy"] = CSP
    page.headers["X-Content-Type-Options"] = "nosniff"
    return page


@router.get("/docs")
async def swagger_ui(request: Request) -> HTMLResponse:
    openapi, assets = _urls(request)
    return _same_origin(get_swagger_ui_html(openapi_url=openapi, title=f"{request.app.title} - Swagger UI",
                                            swagger_js_url=f"{assets}/swagger-ui-bundle.js",
                                            swagger_css_url=f"{assets}/swagger-ui.css",
                                            swagger_favicon_url=f"{assets}/favicon.png"))


@router.get("/redoc")
async def redoc(request: Request) -> HTMLResponse:
    openapi, assets = _urls(request)
    return _same_origin(get_redoc_html(openapi_url=openapi, title=f"{request.app.title} - ReDoc",
                                       redoc_js_url=f"{assets}/redoc.standalone.js",
                                       redoc_favicon_url=f"{assets}/favicon.png", with_google_fonts=False))


def mount_assets(app: FastAPI) -> None:
    app.mount(ASSETS, StaticFiles(directory=assets_dir()), name="docs-assets")
