"""The base URL a client reached the server at, for every absolute URL in an answer
(``Location``, ``fullUrl``, paging links).

``--base-url`` pins it. Otherwise it follows the request: the ``Host`` header (what
the client typed: ``localhost`` or ``127.0.0.1``, so fhirpy's same-base check on
paging links holds), and, with ``EVI_TRUST_PROXY``, the proxy's ``Forwarded``
(RFC 7239) or ``X-Forwarded-Proto`` / ``-Host`` / ``-Prefix``. A host or scheme that
is not well-formed is never echoed into links: the server's own socket address is
used instead.
"""

from __future__ import annotations

import re

from starlette.requests import Request

from fhir_server.settings import Settings

__all__ = ["request_base", "MOUNT"]

#: where the FHIR API is mounted
MOUNT = "/fhir"

_HOST = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252})|\[[0-9A-Fa-f:.]{2,45}\])(?::[0-9]{1,5})?$")
_PREFIX = re.compile(r"^(?:/[A-Za-z0-9_~-][A-Za-z0-9._~-]*)*$")
_SCHEMES = frozenset({"http", "https"})


def request_base(request: Request, settings: Settings) -> str:
    if settings.base_url:
        return settings.base_url.rstrip("/")
    scheme, host, prefix = request.scope.get("scheme", "http"), request.headers.get("host"), ""
    if settings.trust_proxy:
        scheme, host, prefix = _forwarded(request, scheme, host)
    if scheme not in _SCHEMES:
        scheme = "http"
    if not host or not _HOST.match(host):
        host = _socket_host(request)
    return f"{scheme}://{host}{prefix}{MOUNT}"


def _forwarded(request: Request, scheme: str, host: str | None) -> tuple[str, str | None, str]:
    headers = request.headers
    forwarded = headers.get("forwarded")
    if forwarded:
        # the first element is the proxy nearest the client
        for pair in forwarded.split(",", 1)[0].split(";"):
            name, _, value = pair.strip().partition("=")
            value = value.strip().strip('"')
            if name.lower() == "proto" and value:
                scheme = value.lower()
            elif name.lower() == "host" and value:
                host = value
    else:
        if headers.get("x-forwarded-proto"):
            scheme = headers["x-forwarded-proto"].split(",", 1)[0].strip().lower()
        if headers.get("x-forwarded-host"):
            host = headers["x-forwarded-host"].split(",", 1)[0].strip()
    prefix = (headers.get("x-forwarded-prefix") or "").split(",", 1)[0].strip().rstrip("/")
    return scheme, host, prefix if _PREFIX.match(prefix) else ""


def _socket_host(request: Request) -> str:
    server = request.scope.get("server")
    if not server:
        return "localhost"
    address, port = server[0], server[1]
    if ":" in str(address):
        address = f"[{address}]"
    return f"{address}:{port}" if port else str(address)
