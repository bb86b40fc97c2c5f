"""Rendering: Jinja2 templates shipped in the package (``templates/``), autoescaped,
and the answer headers every dashboard page carries (its own Content-Security-Policy:
nothing but this server's own style sheet; no script, no frame, no other origin)."""

from __future__ import annotations

from importlib import resources

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.responses import HTMLResponse

__all__ = ["CSP", "Pages", "STATIC"]

#: the dashboard's policy: its own style sheet and inline SVG only; forms post to itself
CSP = ("default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")
_HEADERS = {"Content-Security-Policy": CSP, "Cache-Control": "no-store"}
_ROOT = resources.files("fhir_server.ui")
STATIC = _ROOT / "static"


class Pages:
    """The templates, loaded once (Jinja2's Environment is safe to share between threads
    once set up)."""

    def __init__(self) -> None:
        self.env = Environment(
            loader=FileSystemLoader(str(_ROOT / "templates")),
            autoescape=select_autoescape(("html",)),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )

    def render(self, name: str, status: int = 200, **values) -> HTMLResponse:
        html = self.env.get_template(name).render(**values)
        return HTMLResponse(html, status_code=status, headers=_HEADERS)
