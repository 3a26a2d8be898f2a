"""``/docs`` (Swagger UI) and ``/redoc`` work offline: their pages load only
same-origin assets, which the server has, and Swagger UI and ReDoc render the API
in headless Chromium with every host but the server's unreachable."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from urllib.parse import urljoin, urlsplit

import httpx
import pytest

from tests.browser import headless_chromium

# every URL a page names: attributes, and the quoted 'url' Swagger UI is started with
_URL = re.compile(r"""(?:\b(?:src|href|spec-url)=["']|\burl:\s*["'])([^"']+)""")
_TYPES = {".js": ("text/javascript", "application/javascript"), ".css": ("text/css",), ".png": ("image/png",),
          ".json": ("application/json",)}
WAIT_S = 60


def _referenced(html: str) -> list[str]:
    return _URL.findall(html)


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_reference_only_local_assets(api_url: str, page: str) -> None:
    r = httpx.get(api_url + page, timeout=30)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert not re.search(r"(?:https?:)?//", r.text), "the page names another host"
    assert "default-src 'self'" in r.headers["content-security-policy"]
    urls = _referenced(r.text)
    assert any(u.endswith(".js") for u in urls) and any(u.endswith("/openapi.json") for u in urls)
    for url in urls:
        target = urljoin(api_url + page, url)
        assert urlsplit(target).netloc == urlsplit(api_url).netloc, url
        asset = httpx.get(target, timeout=30)
        assert asset.status_code == 200, url
        suffix = os.path.splitext(urlsplit(target).path)[1]
        assert asset.headers["content-type"].split(";")[0] in _TYPES[suffix], url
        assert len(asset.content) > 100, url


def test_docs_routes_are_not_in_the_api_schema(api_url: str) -> None:
    paths = httpx.get(api_url + "/openapi.json", timeout=30).json()["paths"]
    assert not [p for p in paths if p.startswith(("/docs", "/redoc"))]


@pytest.fixture(scope="module")
def offline_driver() -> Iterator[object]:
    """Headless Chromium that can reach only 127.0.0.1 (every other host name fails
    to resolve) and logs every request it makes."""
    flags = ("--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1", "--disable-background-networking",
             "--disable-component-update")
    with headless_chromium((1100, 900), flags, logging={"performance": "ALL"}) as drv:
        yield drv


def _requested(driver) -> list[str]:
    """The URLs the page has requested since the last call, but those its
    Content-Security-Policy stopped in the browser."""
    urls: dict[str, str] = {}
    blocked = set()
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        params = message["params"]
        if message["method"] == "Network.requestWillBeSent":
            urls[params["requestId"]] = params["request"]["url"]
        elif message["method"] == "Network.loadingFailed" and params.get("blockedReason") == "csp":
            blocked.add(params["requestId"])
    return [url for rid, url in urls.items() if rid not in blocked]


def _render(driver, url: str, selector: str):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    _requested(driver)  # forget earlier pages' requests
    driver.get(url)
    return WebDriverWait(driver, WAIT_S).until(lambda d: d.find_elements(By.CSS_SELECTOR, selector))


def _only_local(driver, api_url: str) -> list[str]:
    requested = _requested(driver)
    assert requested
    outside = [u for u in requested if urlsplit(u).netloc != urlsplit(api_url).netloc
               and not u.startswith(("data:", "blob:", "about:"))]
    assert not outside, f"the page asked other hosts for {outside}"
    return requested


def test_swagger_ui_renders_the_operations_offline(offline_driver, api_url: str) -> None:
    found = _render(offline_driver, api_url + "/docs", '.opblock-summary-path[data-path="/v1/ask"]')
    assert found[0].is_displayed()
    paths = {e.get_attribute("data-path") for e in offline_driver.find_elements("css selector", "[data-path]")}
    assert {"/v1/chat/completions", "/v1/models", "/v1/documents"} <= paths
    requested = _only_local(offline_driver, api_url)
    assert any(u.endswith("/openapi.json") for u in requested)


def test_redoc_renders_the_operations_offline(offline_driver, api_url: str) -> None:
    found = _render(offline_driver, api_url + "/redoc", '[data-section-id$="operation/ask_v1_ask_post"]')
    assert found
    assert "/v1/chat/completions" in offline_driver.find_element("tag name", "body").get_attribute("textContent")
    requested = _only_local(offline_driver, api_url)
    assert any(u.endswith("/openapi.json") for u in requested)
