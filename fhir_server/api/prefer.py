"""The ``Prefer`` header (RFC 7240, R4 http.html#ops): return=, handling= and respond-async
(R4 async.html, the Bulk Data kick-off)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Preference", "parse_prefer"]

_RETURNS = {"minimal": "minimal", "representation": "representation", "operationoutcome": "OperationOutcome"}


@dataclass(frozen=True)
class Preference:
    return_pref: str = "representation"
    strict: bool = False
    lenient: bool = False
    respond_async: bool = False


def parse_prefer(header: str | None) -> Preference:
    if not header:
        return Preference()
    return_pref, handling, respond_async = "representation", None, False
    for token in header.replace(";", ",").split(","):
        name, _, value = token.strip().partition("=")
        name, value = name.strip().lower(), value.strip().strip('"').lower()
        if name == "return" and value in _RETURNS:
            return_pref = _RETURNS[value]
        elif name == "handling":
            handling = value
        elif name == "respond-async":
            respond_async = True
    return Preference(return_pref, handling == "strict", handling == "lenient", respond_async)
