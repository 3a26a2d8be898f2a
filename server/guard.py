"""Requests from where they should come: the Host a browser was sent to, and
writes only from the server's own pages (pure ASGI middleware).

* **DNS rebinding.** A page on ``attacker.example`` can make its own name resolve
  to 127.0.0.1 and then read and write this server as if same-origin; its
  requests still carry ``Host: attacker.example``. So the Host must be one of
  the server's own names (``localhost``, ``127.0.0.1``, ``::1``, the address it
  listens on) or of ``allowed_hosts`` (``RAG_ALLOWED_HOSTS``, for a server behind a
  proxy or on a LAN; ``*.example.org`` matches subdomains, ``*`` any host), any
  port; otherwise 400.
* **Cross-site writes.** A page from another origin can send a "simple" POST
  (a form, ``multipart/form-data``, ``text/plain``, or ``fetch`` with
  ``mode: "no-cors"``) to a server on 127.0.0.1 without any preflight, and with
  no API key set the server would act on it. Browsers say where a request comes
  from: ``Sec-Fetch-Site`` (``same-origin``, ``same-site``, ``cross-site``,
  ``none`` for a typed URL) and ``Origin``. A state-changing request (any method
  but GET, HEAD, OPTIONS) is refused with 403 when ``Sec-Fetch-Site`` says it is
  not same-origin, or its ``Origin`` is neither the server's own origin nor one of
  ``allowed_origins`` (``RAG_CORS_ORIGINS``, which also opens CORS to them).
  Requests that carry neither header (curl, SDKs, scripts: not a browser acting
  for a page) are not affected; the API key, when set, guards them.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

from rag.errors import ForbiddenError, InputError
from server.middleware import _send_error

LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def split_host(value: str) -> str:
    """The host name of a Host header value, port removed, lower case ("[::1]:80" -> "::1")."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1:value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def default_hosts(bind: str) -> list[str]:
    """The names a local server answers to: the loopback names, and the address it
    listens on unless that is a wildcard (0.0.0.0, ::), which names no host."""
    hosts = list(LOCAL_HOSTS)
    try:
        wildcard = ipaddress.ip_address(bind).is_unspecified
    except ValueError:
        wildcard = False
    if bind and not wildcard and bind.lower() not in hosts:
        hosts.append(bind.lower())
    return hosts


def host_allowed(host: str, allowed: Iterable[str]) -> bool:
    for pattern in allowed:
        pattern = pattern.strip().lower()
        if pattern == "*" or pattern == host or (pattern.startswith("*.") and host.endswith(pattern[1:])):
            return True
    return False


class RequestOriginMiddleware:
    """400 for a Host the server does not answer to; 403 for a browser's write
    that does not come from the server's own pages (see the module)."""

    def __init__(self, app: ASGIApp, allowed_hosts: Iterable[str], allowed_origins: Iterable[str] = ()) -> None:
        self.app = app
        self.allowed_hosts = [h.lower() for h in allowed_hosts]
        self.allowed_origins = {o.rstrip("/").lower() for o in allowed_origins}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope.get("headers", [])}
        host_header = headers.get("host", "")
        host = split_host(host_header)
        if not host_allowed(host, self.allowed_hosts):
            await _send_error(send, InputError(
                f"this server does not answer to the host {host_header!r}: add it to RAG_ALLOWED_HOSTS"))
            return
        if scope["method"] not in SAFE_METHODS:
            reason = self._cross_site(headers, host_header)
            if reason:
                await _send_error(send, ForbiddenError(f"cross-site write refused: {reason}"))
                return
        await self.app(scope, receive, send)

    def _cross_site(self, headers: dict[str, str], host_header: str) -> str | None:
        """Why a write is cross-site, or None if it is not (or is not a browser's)."""
        origin = headers.get("origin", "").rstrip("/").lower()
        allowed = origin and origin in self.allowed_origins
        site = headers.get("sec-fetch-site", "").lower()
        if site and site not in ("same-origin", "none") and not allowed:
            return f"the browser says the request is {site} (Sec-Fetch-Site)"
        # the origin's host and port against the Host header (the scheme may differ behind a TLS proxy)
        if origin and not allowed and origin.split("://", 1)[-1] != host_header.strip().lower():
            return f"Origin {origin} is not this server's"
        return None
