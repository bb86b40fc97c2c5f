"""What every answer gets, whatever produced it: security headers, and redirects of
paths with a trailing slash that do not depend on the ``Host`` header."""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.responses import Response
from starlette.routing import Match, Router

__all__ = ["SecurityHeaders", "trailing_slash_redirect"]

#: for API answers; HTML pages (the dashboard) set a policy of their own
_API_CSP = "default-src 'none'; frame-ancestors 'none'"


class SecurityHeaders:
    """``X-Content-Type-Options: nosniff`` everywhere; ``Cache-Control: no-store`` unless
    the answer chose its own (patient data must not sit in shared or browser caches);
    framing and content-security policy; ``Referrer-Policy: no-referrer``. (The
    ``server`` banner is switched off where uvicorn is configured.)"""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def with_headers(message):
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("x-content-type-options", "nosniff")
                headers.setdefault("cache-control", "no-store")
                headers.setdefault("x-frame-options", "DENY")
                headers.setdefault("referrer-policy", "no-referrer")
                if not headers.get("content-type", "").startswith("text/html"):
                    headers.setdefault("content-security-policy", _API_CSP)
            await send(message)

        await self.app(scope, receive, with_headers)


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
                query = scope.get("query_string", b"").decode("latin-1")
                location = stripped["path"] + (f"?{query}" if query else "")
                return await Response(status_code=307, headers={"Location": location})(scope, receive, send)
        await fallback(scope, receive, send)

    return default
