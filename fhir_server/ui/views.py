"""The work pages: the triage queue and one referral (``queue.py``, ``referral.py``
build what they show)."""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.responses import Response

from fhir_server.ui.queue import queue_view
from fhir_server.ui.referral import referral_view
from fhir_server.ui.routes import View

__all__ = ["queue_page", "referral_page"]


def queue_page(view: View) -> Response:
    shown = queue_view(view.runtime, view.ctx, view.query, view.dashboard.labels)

    def link(page: int) -> str:
        return urlencode([("enhet", shown.unit or ""), ("sida", str(page))])

    return view.render("queue.html", "Triagekö", "queue", view=shown, link=link)


def referral_page(view: View) -> Response:
    rid = view.request.path_params["id"]
    shown = referral_view(view.runtime, view.ctx, rid, view.dashboard.labels)
    return view.render("referral.html", f"Kontakt: {shown.patient}", "queue", view=shown)
