"""What every answer gets, whatever produced it: security headers and gzip
compression (one ASGI wrapper, no per-request setup), and redirects of paths with a
trailing slash that do not depend on the ``Host`` header."""

from __future__ import annotations

import gzip
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.responses import Response
from starlette.routing import Match, Router

__all__ = ["Answers", "trailing_slash_redirect", "accepts_gzip"]

#: for API answers; HTML pages (the dashboard) set a policy of their own
_API_CSP = "default-src 'none'; frame-ancestors 'none'"
_SECURITY = (
    (b"x-content-type-options", b"nosniff"),
    # patient data must not sit in shared or browser caches (an answer may choose otherwise)
    (b"cache-control", b"no-store"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
)
_CSP = (b"content-security-policy", _API_CSP.encode())


def accepts_gzip(header: str) -> bool:
    """Whether an ``Accept-Encoding`` value allows gzip (``gzip;q=0`` does not)."""
    for part in header.split(","):
        coding, _, params = part.strip().partition(";")
        if coding.strip().lower() in ("gzip", "*"):
            q = params.strip().removeprefix("q=").strip()
            try:
                return not q or float(q) > 0
            except ValueError:
                return False
    return False


class Answers:
    """Security headers on every answer (``X-Content-Type-Options: nosniff``,
    ``Cache-Control: no-store`` unless the answer set its own, ``X-Frame-Options``,
    ``Referrer-Policy`` and, except on HTML, a content-security policy; the ``server``
    banner is off where uvicorn is configured), and gzip for a complete answer of at
    least ``minimum_size`` bytes when the client accepts it (compressed in a thread
    from ``thread_minimum_size`` on, so a large answer does not hold the event loop)."""

    def __init__(self, app, minimum_size: int = 1400, thread_minimum_size: int = 128 * 1024):
        self.app = app
        self.minimum_size = minimum_size
        self.thread_minimum_size = thread_minimum_size

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        compress = any(k == b"accept-encoding" and accepts_gzip(v.decode("latin-1")) for k, v in scope["headers"])
        held = None

        async def answer(message):
            nonlocal held
            kind = message["type"]
            if kind == "http.response.start":
                raw = message.setdefault("headers", [])
                present = {name.lower(): value for name, value in raw}  # one pass, not one per header
                raw.extend(h for h in _SECURITY if h[0] not in present)
                if _CSP[0] not in present and not present.get(b"content-type", b"").startswith(b"text/html"):
                    raw.append(_CSP)
                if compress and b"content-encoding" not in present:
                    held = message  # decided on seeing the body
                    return
            elif kind == "http.response.body" and held is not None:
                start, held = held, None
                body = message.get("body", b"")
                if message.get("more_body") or len(body) < self.minimum_size:
                    await send(start)  # streamed or small: as it is
                else:
                    if len(body) >= self.thread_minimum_size:
                        body = await run_in_threadpool(gzip.compress, body, 6)
                    else:
                        body = gzip.compress(body, 6)
                    headers = MutableHeaders(scope=start)
                    headers["content-encoding"] = "gzip"
                    headers["content-length"] = str(len(body))
                    headers.add_vary_header("Accept-Encoding")
                    await send(start)
                    message = {"type": "http.response.body", "body": body}
            await send(message)

        await self.app(scope, receive, answer)


def trailing_slash_redirect(router: Router, keep: frozenset[str]):
    """A ``default`` for ``router`` (with its own ``redirect_slashes`` off): a path that
    matches nothing but would without its trailing slash is answered 307 with a
    relative ``Location`` (Starlette's own redirect writes the absolute URL of the
    ``Host`` header, which a client or proxy may have set to anything)."""
    fallback = router.default

    async def default(scope, receive, send):
        path = scope.get("path", "")
        if scope["type"] == "http" and path.endswith("/") and path not in keep:
            stripped = {**scope, "path": path.rstrip("/")}
            if any(route.matches(stripped)[0] == Match.FULL for route in router.routes):
                # the path as the client sent it (percent-encoded): a decoded one may hold
                # characters (NUL, CR, LF) that no header may carry
                raw = scope.get("raw_path") or path.encode("utf-8")
                location = quote(raw.decode("latin-1").rstrip("/"), safe="/%:@!$&'()*+,;=-._~")
                query = scope.get("query_string", b"").decode("latin-1")
                location += f"?{quote(query, safe='=&%+/:@!$()*,;?-._~')}" if query else ""
                return await Response(status_code=307, headers={"Location": location})(scope, receive, send)
        await fallback(scope, receive, send)

    return default
